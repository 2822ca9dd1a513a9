"""SignatureVerifier: is a request signed by Twilio, and if not, why not.

Public as ``twilio_trigger.SignatureVerifier``: :meth:`~SignatureVerifier.check`
raises :class:`SignatureError` saying why a request is not authentic;
:meth:`~SignatureVerifier.verify` and :meth:`~SignatureVerifier.verify_json` are the
listener's fast ``bool`` checks, and :meth:`~SignatureVerifier.explain_form` /
:meth:`~SignatureVerifier.explain_json` say why one of those failed.  The
algorithms themselves are in :mod:`.signature`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha1
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._exceptions import SignatureError
from .form import FormError, parse_form
from .signature import (
    _BODY_HASH_PARAM,
    _HASHES,
    HMAC_SHA1,
    SETTINGS_HEADER,
    SIGNATURE_HEADER,
    SignatureSettings,
    _encoded_forms,
    _Keyed,
    _search,
    body_sha256,
    normalize_public_url,
    parse_signature_settings,
    signed_payload,
)

__all__ = ["FormParams", "RawBody", "SignatureError", "SignatureVerifier"]

_URL_CACHE_SIZE = 512
_SETTINGS_CACHE_SIZE = 64
#: The longest URL and settings header kept in those caches.  They are filled
#: before a signature is checked, so by anyone: a long one (the head allows 32
#: KiB) is worked out again each time instead of held (512 of them held 80 MB).
#: Twilio's are far shorter.
_CACHED_LENGTH = 2048
# The most parameters check() decodes from a raw form body (Twilio sends a few dozen).
_MAX_PARAMS = 10_000
_JSON_TYPES = ("application/json", "application/cloudevents-batch+json")
_PROXY_HINT = (
    "check that the auth token is the account's (TWILIO_AUTH_TOKEN); if the server is "
    "behind a proxy, load balancer, tunnel or API gateway, pass public_url=<the URL "
    "configured in Twilio> (TWILIO_TRIGGER_PUBLIC_URL, --public-url)"
)
_PUBLIC_URL_HINT = (
    "check that the auth token is the account's (TWILIO_AUTH_TOKEN), and check that "
    "public_url is the URL configured in Twilio"
)

#: A form as check() takes it: a mapping (a value or a list of values per name;
#: a ``getlist`` method is used when present) or ``(name, value)`` pairs.
FormParams = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]
#: A raw body as check() takes it: a JSON body, or a form body not decoded yet.
RawBody = bytes | bytearray | memoryview | str


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header *name* in *headers*, whatever the case of its name."""
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = headers.get(lower)
        if value is None:
            for key, item in headers.items():
                if key.lower() == lower:
                    return item
    return value


def _is_json(content_type: str | None) -> bool:
    # As the listener decides: a JSON media type is an Event Streams batch,
    # anything else a form.
    if not content_type:
        return False
    return content_type.partition(";")[0].strip().lower() in _JSON_TYPES


def _raw(body: RawBody) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _form_pairs(params: FormParams | RawBody) -> list[tuple[str, str]]:
    """*params* as ``(name, value)`` pairs; a raw body is decoded (``FormError``)."""
    if isinstance(params, str | bytes | bytearray | memoryview):
        return parse_form(_raw(params), _MAX_PARAMS)
    if isinstance(params, Mapping):
        getlist = getattr(params, "getlist", None)  # werkzeug, Django, Starlette
        pairs: list[tuple[str, str]] = []
        for name in params:
            values = getlist(name) if callable(getlist) else params[name]
            if isinstance(values, str):
                pairs.append((name, values))
            else:
                pairs.extend((name, value) for value in values)
        return pairs
    return [(name, value) for name, value in params]


def _quoted(value: bytes | str, limit: int = 80) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return repr(text if len(text) <= limit else text[:limit] + "...")


class SignatureVerifier:
    """Checks that requests were signed by Twilio, with auth tokens or SharedKey secrets.

    Several *auth_tokens* serve key rotation and subaccounts: a signature made
    with any of them is accepted.  *shared_keys* are the SharedKey secrets of
    Webhook Rules, as a mapping ``{key id: secret}`` (the header's ``key=`` then
    picks the secret) or as bare secrets (each is tried).  A request with a
    settings header that names an algorithm is checked against the shared keys
    only, one without against the auth tokens only.  A URL is accepted with or
    without its port.  The HMAC key schedule of each secret is computed once,
    so make one verifier and keep it (e.g. at module level in a Lambda).

    *public_url* is the URL configured in Twilio, for a server that cannot see
    it (behind a proxy, load balancer or API gateway): :meth:`check` then signs
    over it, with the query string of the URL it is given appended.

    :meth:`check` is the method to call from your own server: it returns when
    the request is authentic and raises :class:`SignatureError` otherwise,
    saying why.  For AWS Lambda behind an API Gateway HTTP API (payload 2.0)::

        import base64, os
        import twilio_trigger as twilio

        verifier = twilio.SignatureVerifier(
            auth_tokens=[os.environ["TWILIO_AUTH_TOKEN"]],
            public_url="https://hooks.example.com/sms",  # as configured in Twilio
        )

        def handler(event, context):
            body = event.get("body") or ""
            raw = base64.b64decode(body) if event.get("isBase64Encoded") else body
            try:
                verifier.check("?" + event.get("rawQueryString", ""), raw, event["headers"])
            except twilio.SignatureError as error:
                print(f"refused ({error.reason}): {error}")
                return {"statusCode": 403}
            ...

    :meth:`verify` and :meth:`verify_json` answer ``True`` or ``False`` at the
    least cost, for a hot path; :meth:`explain_form` and :meth:`explain_json`
    then say why a request failed.
    """

    def __init__(
        self,
        auth_tokens: Iterable[str] = (),
        shared_keys: Mapping[str, str] | Iterable[str] = (),
        *,
        public_url: str | None = None,
    ) -> None:
        if isinstance(auth_tokens, str):
            raise TypeError("auth_tokens must be a list of tokens, not a str")
        self._token_macs: _Keyed = tuple(
            enumerate(hmac.new(t.encode("utf-8"), digestmod=sha1) for t in auth_tokens)
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
        self._public_url: str | None = None
        if public_url is not None:
            self._public_url = normalize_public_url(public_url)

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

    @property
    def public_url(self) -> str | None:
        """The URL :meth:`check` signs over instead of the one it is given, if set."""
        return self._public_url

    # -- internals ---------------------------------------------------------

    def _variants(self, url: str) -> tuple[bytes, ...]:
        variants = self._url_cache.get(url)
        if variants is None:
            variants = _encoded_forms(url)
            if len(url) > _CACHED_LENGTH:
                return variants
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
            if len(settings) > _CACHED_LENGTH:
                return keyed
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

    # -- the public check, and why a request failed ----------------------------

    def check(
        self,
        url: str,
        params_or_body: FormParams | RawBody,
        headers: Mapping[str, str],
    ) -> None:
        """Return if Twilio signed this request; raise :class:`SignatureError` if not.

        *url* is the full URL the request was made to, query string included;
        with ``public_url`` set, only its query string is used (``"?a=1"`` will
        do).  *params_or_body* is the form, as a mapping or as ``(name, value)``
        pairs, or the raw body as received (bytes or str).  *headers* are the
        request's headers, their names in any case: ``X-Twilio-Signature``,
        ``X-Twilio-Webhooks-Signature-Settings`` when Twilio signed with a
        shared key, and ``Content-Type``: a JSON one (Event Streams) makes the
        raw body be checked against the URL's ``bodySHA256``; anything else is
        a form.  A JSON request given parsed parameters raises ``TypeError``:
        its signature covers the raw bytes.
        """
        url = self._url_for(url)
        signature = _header(headers, SIGNATURE_HEADER)
        settings = _header(headers, SETTINGS_HEADER)
        encoded = signature.encode("utf-8") if signature else b""
        error: SignatureError | None
        if _is_json(_header(headers, "Content-Type")):
            body = self._json_body(params_or_body)
            if encoded and self.verify_json(url, body, encoded, settings):
                return
            error = self.explain_json(url, body, signature, settings)
        else:
            try:
                params = _form_pairs(params_or_body)
            except FormError as bad:
                raise self._bad_body(url, bad) from None
            if encoded and self.verify(url, params, encoded, None, settings):
                return
            error = self.explain_form(url, params, signature, settings)
        # explain_*() search as verify*() do: a None here cannot happen, and
        # would not let the request through.
        raise error or SignatureError(f"the signature does not match ({url})", url=url)

    def explain(
        self,
        url: str,
        params_or_body: FormParams | RawBody,
        headers: Mapping[str, str],
    ) -> SignatureError | None:
        """Why :meth:`check` refuses this request, or ``None`` if it is authentic.

        The error is returned, not raised: to log a failure found by another way.
        """
        try:
            self.check(url, params_or_body, headers)
        except SignatureError as error:
            return error
        return None

    def explain_form(
        self,
        url: str,
        params: Sequence[tuple[str, str]],
        signature: bytes | str | None,
        settings: bytes | str | None = None,
        *,
        public: bool | None = None,
    ) -> SignatureError | None:
        """Why :meth:`verify` refuses a form POST, or ``None`` if it accepts it.

        The arguments are :meth:`verify`'s (*signature* ``None`` or empty when the
        request has none); *url* is used as given (no ``public_url``).  *public*
        says whether *url* is a configured public URL (by default, whether this
        verifier has one), which the advice on a mismatch depends on.  Made for
        the failure path: it costs about as much as :meth:`verify` again.
        """
        return self._explain(url, signature, settings, signed_payload(params), None, public)

    def explain_json(
        self,
        url: str,
        body: bytes,
        signature: bytes | str | None,
        settings: bytes | str | None = None,
        *,
        public: bool | None = None,
    ) -> SignatureError | None:
        """Why :meth:`verify_json` refuses a JSON POST, or ``None`` if it accepts it.

        As :meth:`explain_form`; a body whose SHA-256 is not the URL's
        ``bodySHA256`` gives :attr:`SignatureError.BODY_HASH_MISMATCH`.
        """
        return self._explain(url, signature, settings, "", body, public)

    def _url_for(self, url: str) -> str:
        public = self._public_url
        if public is None:
            return url
        query = urlsplit(url).query
        return f"{public}?{query}" if query else public

    @staticmethod
    def _json_body(body: FormParams | RawBody) -> bytes:
        if not isinstance(body, str | bytes | bytearray | memoryview):
            raise TypeError(
                "a JSON request is signed over its raw body: pass the body as "
                f"received (bytes or str), not {type(body).__name__}"
            )
        return _raw(body)

    @staticmethod
    def _bad_body(url: str, error: FormError) -> SignatureError:
        return SignatureError(
            f"the form body cannot be read ({error.message}), so Twilio cannot have signed it",
            reason=SignatureError.BAD_BODY,
            url=url,
        )

    def _explain(
        self,
        url: str,
        signature: bytes | str | None,
        settings: bytes | str | None,
        payload: str,
        body: bytes | None,
        public: bool | None = None,
    ) -> SignatureError | None:
        if public is None:
            public = self._public_url is not None
        if not signature:
            return SignatureError(
                f"the request has no {SIGNATURE_HEADER} header",
                reason=SignatureError.MISSING_SIGNATURE,
                url=url,
            )
        encoded = signature.encode("utf-8") if isinstance(signature, str) else signature
        parsed = parse_signature_settings(settings)
        malformed = bool(settings) and parsed is None
        keyed = self._select(parsed)
        fields: dict[str, Any] = {"url": url}
        if parsed is None:
            fields["algorithm"] = HMAC_SHA1
            fields["tokens_tried"] = len(keyed)
            what = _count(len(keyed), "auth token")
        else:
            fields["algorithm"] = parsed.algorithm
            fields["key_id"] = parsed.key_id
            fields["shared_keys_tried"] = len(keyed)
            if self._shared_ids is None:
                what = _count(len(keyed), "shared key")
            else:
                ids = tuple(self._shared_ids)
                fields["key_ids_tried"] = tuple(ids[index] for index, _ in keyed)
                what = _count(len(keyed), "shared key", fields["key_ids_tried"])
        if not keyed:
            return self._unusable(parsed, settings, fields)
        forms = _encoded_forms(url)
        if body is not None:
            given = parse_qs(urlsplit(url).query).get(_BODY_HASH_PARAM)
            actual = body_sha256(body)
            fields["body_sha256"] = actual
            if not given:
                fields["tokens_tried"] = fields["shared_keys_tried"] = 0
                fields["key_ids_tried"] = ()
                return SignatureError(
                    f"the JSON request's URL carries no {_BODY_HASH_PARAM} query parameter, "
                    f"so its body is not signed ({url})",
                    reason=SignatureError.MISSING_BODY_HASH,
                    **fields,
                )
            fields["url_body_sha256"] = given[0]
            if given[0] != actual:
                url_signed = _search(keyed, forms, b"", encoded) is not None
                fields["urls"] = _decoded(forms)
                return SignatureError(
                    f"the body's SHA-256 is {actual}, not the {_BODY_HASH_PARAM} "
                    f"{_quoted(given[0])} of the URL: the body was changed after Twilio "
                    "signed it (pass the raw body exactly as received, not re-encoded); "
                    + (
                        "the signature of the URL itself is valid"
                        if url_signed
                        else "the signature does not match the URL either"
                    ),
                    reason=SignatureError.BODY_HASH_MISMATCH,
                    **fields,
                )
        if _search(keyed, forms, payload.encode("utf-8"), encoded) is not None:
            return None
        fields["urls"] = _decoded(forms)
        mismatch = (
            f"the signature is not the {fields['algorithm']} signature of "
            f"{'its URL' if body is not None else 'it'} by {what}, for any URL form tried: "
            + ", ".join(fields["urls"])
        )
        if malformed:
            return SignatureError(
                f"the {SETTINGS_HEADER} header {_quoted(settings or '')} names no algorithm, "
                f"so the request was checked as signed with an auth token: {mismatch}",
                reason=SignatureError.MALFORMED_SETTINGS,
                **fields,
            )
        return SignatureError(
            f"the request is not signed by Twilio: {mismatch}; "
            + (_PUBLIC_URL_HINT if public else _PROXY_HINT),
            reason=SignatureError.MISMATCH,
            **fields,
        )

    def _unusable(
        self,
        parsed: SignatureSettings | None,
        settings: bytes | str | None,
        fields: dict[str, Any],
    ) -> SignatureError:
        """Why no configured secret can check a request with these settings."""
        if parsed is None:
            if settings:
                return SignatureError(
                    f"the {SETTINGS_HEADER} header {_quoted(settings)} names no algorithm, "
                    "so the request is taken as signed with an auth token, and none is "
                    "configured",
                    reason=SignatureError.MALFORMED_SETTINGS,
                    **fields,
                )
            return SignatureError(
                f"the request is signed with an auth token (it has no {SETTINGS_HEADER} "
                "header), and only shared keys are configured",
                reason=SignatureError.NO_AUTH_TOKENS,
                **fields,
            )
        if parsed.algorithm not in _HASHES:
            return SignatureError(
                f"the {SETTINGS_HEADER} header names the algorithm "
                f"{_quoted(parsed.algorithm)}, which is not supported "
                f"({', '.join(_HASHES)})",
                reason=SignatureError.UNSUPPORTED_ALGORITHM,
                **fields,
            )
        key = "" if parsed.key_id is None else f" {_quoted(parsed.key_id)}"
        if not self.shared_key_count:
            return SignatureError(
                f"the request is signed with the shared key{key} ({parsed.algorithm}), "
                "and no shared key is configured",
                reason=SignatureError.NO_SHARED_KEYS,
                **fields,
            )
        return SignatureError(
            f"the request is signed with the shared key{key}, which is not configured "
            f"(configured: {', '.join(self._shared_ids or ())})",
            reason=SignatureError.UNKNOWN_KEY,
            **fields,
        )


def _count(number: int, noun: str, names: tuple[str, ...] = ()) -> str:
    """The secrets tried, in words: ``the auth token``, ``any of the 2 shared keys (a, b)``."""
    if number == 1:
        return f"the {noun} {names[0]}" if names else f"the {noun}"
    named = f" ({', '.join(names)})" if names else ""
    return f"any of the {number} {noun}s{named}"


def _decoded(forms: tuple[bytes, ...]) -> tuple[str, ...]:
    return tuple(form.decode("utf-8", "replace") for form in forms)
