"""Errors raised by twilio-trigger to the code that configures it.

Nothing here is raised while the listener handles a webhook: bad requests are
answered with an HTTP status (see docs/answers.md), and a failing
callback is logged and answered with 500.  :class:`SignatureError` is raised
only by ``SignatureVerifier.check``, for servers that verify Twilio's
signatures themselves.

    TwilioTriggerError
     ├── ConfigurationError   an option or environment variable is invalid,
     │                        or the listener cannot start as configured
     ├── ServiceError         a service cannot be attached or detached
     └── SignatureError       a request is not signed by Twilio (and why)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["ConfigurationError", "ServiceError", "SignatureError", "TwilioTriggerError"]


class TwilioTriggerError(Exception):
    """Base class of every error twilio-trigger raises."""


class ConfigurationError(TwilioTriggerError, ValueError):
    """An option or environment variable is invalid, or the listener cannot start."""


class ServiceError(TwilioTriggerError, TypeError):
    """A service object cannot be attached to (or detached from) a listener."""


class SignatureError(TwilioTriggerError):
    """A request's ``X-Twilio-Signature`` does not prove that Twilio sent it, and why.

    ``str(error)`` says it in a sentence; the attributes say it to code.  None of
    them ever holds a secret (an auth token or a shared key's secret).

    ``reason``
        One of the class constants below, e.g. ``SignatureError.MISMATCH``.
    ``url``
        The URL the request was checked for (``public_url`` applied), or ``None``
        when the check stopped before any URL mattered.
    ``urls``
        The exact URL forms the signature was checked against (with and without
        the port, ...), empty when none was tried.
    ``algorithm``
        ``"HMAC_SHA1"`` (auth tokens), or the one the settings header names.
    ``key_id``
        The shared key id the settings header names, or ``None``.
    ``tokens_tried``
        How many auth tokens were tried.
    ``shared_keys_tried`` / ``key_ids_tried``
        How many shared keys were tried, and their ids (empty for bare secrets).
    ``body_sha256`` / ``url_body_sha256``
        For a JSON body: the SHA-256 of the body received, and the ``bodySHA256``
        the URL carries (``None`` when it carries none).
    """

    #: The request has no (or an empty) ``X-Twilio-Signature`` header.
    MISSING_SIGNATURE: ClassVar[str] = "missing_signature"
    #: ``X-Twilio-Webhooks-Signature-Settings`` is present but names no algorithm:
    #: the auth tokens were tried, and none matched.
    MALFORMED_SETTINGS: ClassVar[str] = "malformed_settings"
    #: The settings header names an algorithm Twilio does not sign with.
    UNSUPPORTED_ALGORITHM: ClassVar[str] = "unsupported_algorithm"
    #: Signed with a shared key, but no shared key is configured.
    NO_SHARED_KEYS: ClassVar[str] = "no_shared_keys"
    #: Signed with a shared key whose id is not configured.
    UNKNOWN_KEY: ClassVar[str] = "unknown_key"
    #: Signed with an auth token (no settings header), but none is configured.
    NO_AUTH_TOKENS: ClassVar[str] = "no_auth_tokens"
    #: A form body that cannot be decoded (not UTF-8, too many parameters).
    BAD_BODY: ClassVar[str] = "bad_body"
    #: A JSON body whose URL carries no ``bodySHA256``.
    MISSING_BODY_HASH: ClassVar[str] = "missing_body_hash"
    #: A JSON body whose SHA-256 is not the URL's ``bodySHA256``: the body was
    #: changed after Twilio signed it.
    BODY_HASH_MISMATCH: ClassVar[str] = "body_hash_mismatch"
    #: No configured secret signed this request for any URL form tried.
    MISMATCH: ClassVar[str] = "signature_mismatch"

    def __init__(
        self,
        message: str,
        *,
        reason: str = MISMATCH,
        url: str | None = None,
        urls: tuple[str, ...] = (),
        algorithm: str | None = None,
        key_id: str | None = None,
        tokens_tried: int = 0,
        shared_keys_tried: int = 0,
        key_ids_tried: tuple[str, ...] = (),
        body_sha256: str | None = None,
        url_body_sha256: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.url = url
        self.urls = urls
        self.algorithm = algorithm
        self.key_id = key_id
        self.tokens_tried = tokens_tried
        self.shared_keys_tried = shared_keys_tried
        self.key_ids_tried = key_ids_tried
        self.body_sha256 = body_sha256
        self.url_body_sha256 = url_body_sha256

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword arguments are not in self.args: keep them through pickling.
        return (type(self), (self.message,), dict(self.__dict__))
