"""Twilio's request signature (``X-Twilio-Signature``), without any I/O.

The algorithm, as Twilio documents it: take the full URL Twilio requested; for
a form POST append, for every parameter name in code-point order, the name and
each of its distinct values in code-point order; HMAC-SHA1 the UTF-8 string
with the auth token; base64-encode.  Twilio is inconsistent about the port
(voice over HTTPS drops it, messaging keeps it), so a URL is accepted with or
without its port, as twilio-python does.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha1
from urllib.parse import SplitResult, urlsplit

__all__ = ["SignatureVerifier", "compute_signature", "signed_payload", "url_variants"]

_DEFAULT_PORTS = {"https": 443, "http": 80}
_URL_CACHE_SIZE = 512


def signed_payload(
    params: Sequence[tuple[str, str]], single: Mapping[str, str] | None = None
) -> str:
    """The parameter part of the signed string: ``name + value`` in Twilio's order.

    *single* may pass ``dict(params)`` when the caller has it already.
    """
    if single is None:
        single = dict(params)
    if len(single) == len(params):  # the usual case: no repeated names
        return "".join([name + single[name] for name in sorted(single)])
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    return "".join([name + value for name in sorted(grouped) for value in sorted(grouped[name])])


def compute_signature(url: str, params: Iterable[tuple[str, str]], token: str) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a form POST of *params* to *url*."""
    message = url + signed_payload(list(params))
    digest = hmac.new(token.encode("utf-8"), message.encode("utf-8"), sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _host_of(parts: SplitResult) -> str:
    # The netloc without user information (Twilio drops it before signing) and
    # without the port; brackets of an IPv6 literal stay.
    host = parts.netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.partition(":")[0]


def url_variants(url: str) -> tuple[str, ...]:
    """The URL forms a signature may have been computed over: without and with the port.

    ``https://host/p`` gives ``https://host/p`` and ``https://host:443/p``;
    ``http://host:8080/p`` gives ``http://host/p`` and ``http://host:8080/p``.
    A URL configured in Twilio as a bare host (``https://host``) is signed without
    the slash that its requests carry, so for the root path both forms are given.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: nothing to vary
        return (parts.geturl(),)
    host = _host_of(parts)
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme, 80)
    paths = ("/", "") if parts.path in ("", "/") else (parts.path,)
    return tuple(
        parts._replace(netloc=netloc, path=path).geturl()
        for path in paths
        for netloc in (host, f"{host}:{port}")
    )


class SignatureVerifier:
    """Checks ``X-Twilio-Signature`` values against one or more auth tokens.

    Several tokens serve key rotation and subaccounts: a signature made with any
    of them is accepted.  The HMAC key schedule of each token is computed once.
    """

    __slots__ = ("_macs", "_url_cache")

    def __init__(self, tokens: Iterable[str]) -> None:
        self._macs = tuple(hmac.new(t.encode("utf-8"), digestmod=sha1) for t in tokens)
        if not self._macs:
            raise ValueError("SignatureVerifier needs at least one auth token")
        self._url_cache: dict[str, tuple[bytes, ...]] = {}

    def _variants(self, url: str) -> tuple[bytes, ...]:
        variants = self._url_cache.get(url)
        if variants is None:
            # The URL as the request had it is the likeliest: try it first.
            forms = sorted(url_variants(url), key=lambda form: form != url)
            variants = tuple(form.encode("utf-8") for form in forms)
            if len(self._url_cache) >= _URL_CACHE_SIZE:
                self._url_cache.clear()
            self._url_cache[url] = variants
        return variants

    def verify(
        self,
        url: str,
        params: Sequence[tuple[str, str]],
        signature: bytes,
        single: Mapping[str, str] | None = None,
    ) -> bool:
        """True when *signature* is Twilio's signature of *params* posted to *url*."""
        return self.matching(url, params, signature, single) is not None

    def matching(
        self,
        url: str,
        params: Sequence[tuple[str, str]],
        signature: bytes,
        single: Mapping[str, str] | None = None,
    ) -> tuple[int, str] | None:
        """Which token (by index) and which URL form produced *signature*, if any.

        Each comparison takes constant time; stopping at the first match tells
        a timing observer only which form matched, nothing about the token.
        """
        payload = signed_payload(params, single).encode("utf-8")
        for variant in self._variants(url):
            for index, base in enumerate(self._macs):
                mac = base.copy()
                mac.update(variant)
                mac.update(payload)
                if hmac.compare_digest(base64.b64encode(mac.digest()), signature):
                    return index, variant.decode("utf-8")
        return None
