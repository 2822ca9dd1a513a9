"""Twilio's request signature (``X-Twilio-Signature``), without any I/O.

The algorithm, as Twilio documents it: take the full URL Twilio requested; for
a form POST append, for every parameter name in code-point order, the name and
each of its distinct values in code-point order; HMAC-SHA1 the UTF-8 string
with the auth token; base64-encode.  Twilio is inconsistent about the port
(voice over HTTPS drops it, messaging keeps it), so a URL is accepted with or
without its port, as twilio-python does.

A JSON body (Event Streams webhook sinks) is not signed as parameters: Twilio
adds the query parameter ``bodySHA256``, the lowercase hex SHA-256 of the raw
body, and signs the full URL (that parameter included) alone.

A Webhook Rule makes Twilio sign with a SharedKey secret instead of the auth
token, with the algorithm it names (HMAC-SHA256), and say so in the header
``X-Twilio-Webhooks-Signature-Settings: key=<sharedKeyId>,algorithm=HMAC_SHA256``.
The signed string is the same.  Without that header, or without ``algorithm=``
in it, the signature is the legacy HMAC-SHA1 with the auth token.

:class:`SignatureVerifier` is public (``twilio_trigger.SignatureVerifier``):
:meth:`~SignatureVerifier.check` raises :class:`SignatureError` saying why a
request is not authentic; :meth:`~SignatureVerifier.verify` and
:meth:`~SignatureVerifier.verify_json` are the listener's fast ``bool`` checks,
and :meth:`~SignatureVerifier.explain_form` / :meth:`~SignatureVerifier.explain_json`
say why one of those failed.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha1, sha256
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "HMAC_SHA1",
    "HMAC_SHA256",
    "SETTINGS_HEADER",
    "SIGNATURE_HEADER",
    "SignatureSettings",
    "body_sha256",
    "compute_json_signature",
    "compute_signature",
    "host_without_port",
    "json_url",
    "normalize_public_url",
    "parse_signature_settings",
    "signature_settings",
    "signed_payload",
    "url_variants",
]

#: The legacy algorithm (auth token), and the one SharedKey signing names.
HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"
#: The header that says a request was signed with a SharedKey, and how.
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
#: The header that carries the signature.
SIGNATURE_HEADER = "X-Twilio-Signature"

_HASHES: dict[str, Any] = {HMAC_SHA1: sha1, HMAC_SHA256: sha256}
_DEFAULT_PORTS = {"https": 443, "http": 80}
_BODY_HASH_PARAM = "bodySHA256"


# A configured secret and its position: the index that matching() reports.
_Keyed = tuple[tuple[int, "hmac.HMAC"], ...]


def _hash_for(algorithm: str) -> Any:
    digest = _HASHES.get(algorithm.upper())
    if digest is None:
        raise ValueError(f"unsupported webhook signature algorithm: {algorithm!r}")
    return digest


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


def compute_signature(
    url: str, params: Iterable[tuple[str, str]], token: str, algorithm: str = HMAC_SHA1
) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a form POST of *params* to *url*.

    *token* is the auth token, or the SharedKey secret with *algorithm*
    ``HMAC_SHA256`` (any case).  An unsupported algorithm raises ``ValueError``.
    """
    digestmod = _hash_for(algorithm)
    message = url + signed_payload(list(params))
    digest = hmac.new(token.encode("utf-8"), message.encode("utf-8"), digestmod).digest()
    return base64.b64encode(digest).decode("ascii")


def body_sha256(body: bytes) -> str:
    """The ``bodySHA256`` Twilio adds to the URL of a JSON POST: lowercase hex SHA-256."""
    return sha256(body).hexdigest()


def json_url(url: str, body: bytes) -> str:
    """*url* as Twilio requests it for a JSON POST of *body*: with ``bodySHA256=`` appended."""
    base, hash_mark, fragment = url.partition("#")
    _, question_mark, query = base.partition("?")
    if not question_mark:
        separator = "?"
    elif not query or query.endswith("&"):
        separator = ""
    else:
        separator = "&"
    return f"{base}{separator}{_BODY_HASH_PARAM}={body_sha256(body)}{hash_mark}{fragment}"


def compute_json_signature(url_with_hash: str, token: str, algorithm: str = HMAC_SHA1) -> str:
    """The ``X-Twilio-Signature`` of a JSON POST: over the URL alone (see :func:`json_url`)."""
    return compute_signature(url_with_hash, (), token, algorithm)


def signature_settings(key_id: str, algorithm: str = HMAC_SHA256) -> str:
    """The ``X-Twilio-Webhooks-Signature-Settings`` value for SharedKey *key_id*.

    The algorithm is not checked, so that tests can name one that is not supported.
    """
    return f"key={key_id},algorithm={algorithm}"


class SignatureSettings(NamedTuple):
    """What ``X-Twilio-Webhooks-Signature-Settings`` says: the key id and the algorithm."""

    key_id: str | None  # None when the header names no key
    algorithm: str  # upper case, as given: it may be one that is not supported


def parse_signature_settings(value: bytes | str | None) -> SignatureSettings | None:
    """The SharedKey settings of a request, or ``None`` for the legacy auth-token signature.

    As twilio-python reads the header: comma-separated ``name=value`` fields,
    spaces around either ignored, names matched exactly, the first non-empty
    ``algorithm`` and ``key`` taken, the algorithm upper-cased.  An absent or
    empty header, or one without ``algorithm=``, means the legacy signature.
    Bytes that are not UTF-8 are replaced (U+FFFD), so they match no key id.
    """
    if not value:
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    key_id: str | None = None
    algorithm: str | None = None
    for field in text.split(","):
        name, equals, content = field.partition("=")
        if not equals:
            continue
        name = name.strip()
        content = content.strip()
        if not content:
            continue
        if name == "algorithm" and algorithm is None:
            algorithm = content.upper()
        elif name == "key" and key_id is None:
            key_id = content
    if algorithm is None:
        return None
    return SignatureSettings(key_id, algorithm)


def host_without_port(host: str) -> str:
    """A ``host[:port]`` (a netloc, a ``Host`` header) without its port; the
    brackets of an IPv6 literal stay: ``[::1]:8091`` gives ``[::1]``."""
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
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed host or port: nothing to vary
        return (url,)
    # Without user information, which Twilio drops before signing.
    host = host_without_port(parts.netloc.rpartition("@")[2])
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme, 80)
    paths = ("/", "") if parts.path in ("", "/") else (parts.path,)
    return tuple(
        parts._replace(netloc=netloc, path=path).geturl()
        for path in paths
        for netloc in (host, f"{host}:{port}")
    )


def _encoded_forms(url: str) -> tuple[bytes, ...]:
    # The URL as the request had it is the likeliest: it comes first.
    forms = sorted(url_variants(url), key=lambda form: form != url)
    return tuple(form.encode("utf-8") for form in forms)


def _search(
    keyed: _Keyed, variants: tuple[bytes, ...], payload: bytes, signature: bytes
) -> tuple[int, str] | None:
    # Each comparison takes constant time; stopping at the first match tells a
    # timing observer only which form matched, nothing about the secret.
    for variant in variants:
        for index, base in keyed:
            mac = base.copy()
            mac.update(variant)
            mac.update(payload)
            if hmac.compare_digest(base64.b64encode(mac.digest()), signature):
                return index, variant.decode("utf-8")
    return None


def normalize_public_url(url: str) -> str:
    """*url* checked and reduced to what Twilio signs: no fragment, no user information.

    The fragment (``#rc=2&rp=5xx`` connection overrides) never reaches the server
    and is not signed; Twilio drops user information before signing too.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"public_url must be an absolute http(s) URL, got {url!r}")
    if parts.query:
        raise ValueError(
            "public_url must not carry a query string: the query string of each "
            "request is appended to it"
        )
    try:
        parts.port  # noqa: B018 - raises for a malformed port
    except ValueError:
        raise ValueError(f"public_url has an invalid port: {url!r}") from None
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
