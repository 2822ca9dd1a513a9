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
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha1, sha256
from typing import Any, NamedTuple
from urllib.parse import SplitResult, parse_qs, urlsplit

__all__ = [
    "HMAC_SHA1",
    "HMAC_SHA256",
    "SETTINGS_HEADER",
    "SignatureSettings",
    "SignatureVerifier",
    "body_sha256",
    "compute_json_signature",
    "compute_signature",
    "json_url",
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

_HASHES: dict[str, Any] = {HMAC_SHA1: sha1, HMAC_SHA256: sha256}
_DEFAULT_PORTS = {"https": 443, "http": 80}
_URL_CACHE_SIZE = 512
_SETTINGS_CACHE_SIZE = 64
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
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed host or port: nothing to vary
        return (url,)
    host = _host_of(parts)
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


class SignatureVerifier:
    """Checks ``X-Twilio-Signature`` values against auth tokens and SharedKey secrets.

    Several tokens serve key rotation and subaccounts: a signature made with any
    of them is accepted.  *shared_keys* are the SharedKey secrets of Webhook
    Rules, as a mapping ``{key id: secret}`` (the header's ``key=`` then picks
    the secret) or as bare secrets (each is tried).  A request with a settings
    header that names an algorithm is checked against the shared keys only,
    one without against the auth tokens only.  The HMAC key schedule of each
    secret is computed once.
    """

    __slots__ = (
        "_settings_cache",
        "_shared",
        "_shared_ids",
        "_token_macs",
        "_url_cache",
    )

    def __init__(
        self,
        tokens: Iterable[str] = (),
        shared_keys: Mapping[str, str] | Iterable[str] = (),
    ) -> None:
        self._token_macs: _Keyed = tuple(
            enumerate(hmac.new(t.encode("utf-8"), digestmod=sha1) for t in tokens)
        )
        if isinstance(shared_keys, str):
            raise TypeError("shared_keys must be a mapping {key id: secret} or secrets, not a str")
        secrets: list[str]
        if isinstance(shared_keys, Mapping):
            self._shared_ids: dict[str, int] | None = {
                key_id: index for index, key_id in enumerate(shared_keys)
            }
            secrets = list(shared_keys.values())
        else:
            self._shared_ids = None
            secrets = list(shared_keys)
        if any(not secret for secret in secrets):
            raise ValueError("a shared key secret must not be empty")
        self._shared: dict[str, _Keyed] = {
            name: tuple(
                (index, hmac.new(secret.encode("utf-8"), digestmod=digestmod))
                for index, secret in enumerate(secrets)
            )
            for name, digestmod in _HASHES.items()
        }
        if not self._token_macs and not secrets:
            raise ValueError("SignatureVerifier needs at least one auth token or shared key")
        self._url_cache: dict[str, tuple[bytes, ...]] = {}
        self._settings_cache: dict[bytes | str, _Keyed] = {}

    # -- what is configured ------------------------------------------------

    @property
    def token_count(self) -> int:
        """How many auth tokens are configured."""
        return len(self._token_macs)

    @property
    def shared_key_count(self) -> int:
        """How many SharedKey secrets are configured."""
        return len(self._shared[HMAC_SHA1])

    @property
    def shared_key_ids(self) -> tuple[str, ...] | None:
        """The SharedKey ids in configured order, or ``None`` for bare secrets."""
        return None if self._shared_ids is None else tuple(self._shared_ids)

    # -- internals ---------------------------------------------------------

    def _variants(self, url: str) -> tuple[bytes, ...]:
        variants = self._url_cache.get(url)
        if variants is None:
            variants = _encoded_forms(url)
            if len(self._url_cache) >= _URL_CACHE_SIZE:
                self._url_cache.clear()
            self._url_cache[url] = variants
        return variants

    def _keyed(self, settings: bytes | str | None) -> _Keyed:
        """The secrets (with their indexes) to try for a request with *settings*."""
        if settings is None:
            return self._token_macs
        keyed = self._settings_cache.get(settings)
        if keyed is None:
            keyed = self._select(parse_signature_settings(settings))
            if len(self._settings_cache) >= _SETTINGS_CACHE_SIZE:
                self._settings_cache.clear()
            self._settings_cache[settings] = keyed
        return keyed

    def _select(self, parsed: SignatureSettings | None) -> _Keyed:
        if parsed is None:  # no algorithm named: the legacy signature
            return self._token_macs
        candidates = self._shared.get(parsed.algorithm)
        if candidates is None:  # an algorithm not supported
            return ()
        if self._shared_ids is None or parsed.key_id is None:
            return candidates
        index = self._shared_ids.get(parsed.key_id)
        return () if index is None else (candidates[index],)

    def checked_urls(self, url: str) -> tuple[str, ...]:
        """The URL forms a signature for a request to *url* is checked against."""
        return tuple(form.decode("utf-8", "replace") for form in _encoded_forms(url))

    # -- form POSTs --------------------------------------------------------

    def verify(
        self,
        url: str,
        params: Sequence[tuple[str, str]],
        signature: bytes,
        single: Mapping[str, str] | None = None,
        settings: bytes | str | None = None,
    ) -> bool:
        """True when *signature* is Twilio's signature of *params* posted to *url*.

        *settings* is the raw ``X-Twilio-Webhooks-Signature-Settings`` header,
        ``None`` when the request has none.
        """
        return self.matching(url, params, signature, single, settings) is not None

    def matching(
        self,
        url: str,
        params: Sequence[tuple[str, str]],
        signature: bytes,
        single: Mapping[str, str] | None = None,
        settings: bytes | str | None = None,
    ) -> tuple[int, str] | None:
        """Which secret (by index) and which URL form produced *signature*, if any.

        The index is that of an auth token in the order configured, unless
        *settings* names an algorithm (:func:`parse_signature_settings` is not
        ``None``): then it is that of a shared key, in the order configured
        (the mapping's order for ``{key id: secret}``).
        """
        keyed = self._token_macs if settings is None else self._keyed(settings)
        if not keyed:
            return None
        payload = signed_payload(params, single).encode("utf-8")
        return _search(keyed, self._variants(url), payload, signature)

    # -- JSON POSTs --------------------------------------------------------

    def verify_json(
        self, url: str, body: bytes, signature: bytes, settings: bytes | str | None = None
    ) -> bool:
        """True when *signature* is Twilio's signature of a JSON POST of *body* to *url*.

        *url* must carry ``bodySHA256``, the lowercase hex SHA-256 of *body*
        (compared exactly, as twilio-python does); the signature is over *url*
        alone, with or without its port.  Secrets and algorithm as for :meth:`verify`.
        """
        return self.matching_json(url, body, signature, settings) is not None

    def matching_json(
        self, url: str, body: bytes, signature: bytes, settings: bytes | str | None = None
    ) -> tuple[int, str] | None:
        """As :meth:`matching`, for a JSON POST (see :meth:`verify_json`)."""
        keyed = self._keyed(settings)
        if not keyed:
            return None
        # The first value, percent-decoded, as twilio-python reads it.
        given = parse_qs(urlsplit(url).query).get(_BODY_HASH_PARAM)
        if not given:
            return None
        expected = body_sha256(body).encode("ascii")
        if not hmac.compare_digest(given[0].encode("utf-8"), expected):
            return None
        # Every JSON URL is new (its hash): the URL cache is left to form POSTs.
        return _search(keyed, _encoded_forms(url), b"", signature)
