"""One webhook request in, one answer out: the listener's logic, free of any server.

The ASGI application and the framework adapters translate their request into
the few values :class:`WebhookHandler` needs and send back its :class:`Answer`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from . import _answers as answers
from ._answers import Answer
from ._cloudevents import CloudEventError, parse_cloudevents, to_params
from ._delivery import MAX_KEPT_HEADER, Delivery, kept_header
from ._events import TwilioEvent
from ._form import FormError, is_form_content_type, parse_form
from ._logging import FirstWarning
from ._observe import Observer, Refusal, Rejection
from ._routing import to_event
from ._signature import SignatureVerifier

__all__ = ["WebhookHandler", "is_json_content_type", "normalize_public_url"]

logger = logging.getLogger("twilio_trigger")

_TOKEN_HEADER = "i-twilio-idempotency-token"  # noqa: S105 - a header name

#: The request headers an inbox keeps beside the event (bounded), to show them
#: again.  The idempotency token is kept only as such information: no signature
#: covers it, so it is not part of the delivery's key.
KEPT_HEADERS = (
    b"i-twilio-idempotency-token",
    b"x-home-region",
    b"user-agent",
    b"x-twilio-webhooks-signature-settings",
    b"content-type",
)


def _kept(value: bytes) -> str:
    """A header's value as the inbox keeps it: bounded and printable (Twilio's are
    short and plain, decided in C; anything else is cut by :func:`kept_header`)."""
    text = value.decode("latin-1")
    if len(text) <= MAX_KEPT_HEADER and text.isprintable():
        return text
    return kept_header(text)


def is_json_content_type(value: bytes | None) -> bool:
    """True for ``application/json`` (an Event Streams webhook sink's batch)."""
    if value is None:
        return False
    media_type = value.partition(b";")[0].strip().lower()
    return media_type in (b"application/json", b"application/cloudevents-batch+json")


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


class WebhookHandler:
    """Checks, decodes, verifies, routes and dispatches one webhook request."""

    __slots__ = (
        "_delivery",
        "_max_body",
        "_max_params",
        "_observer",
        "_public_url",
        "_unknown_types",
        "_verifier",
    )

    def __init__(
        self,
        delivery: Delivery,
        verifier: SignatureVerifier | None,
        *,
        public_url: str | None = None,
        max_params: int = 1000,
        max_body_bytes: int = 256 * 1024,
    ) -> None:
        self._delivery = delivery
        self._verifier = verifier
        self._public_url = public_url
        self._max_params = max_params
        self._max_body = max_body_bytes
        self._observer: Observer = delivery.observer
        self._unknown_types = FirstWarning(256)  # CloudEvent types

    @property
    def max_body_bytes(self) -> int:
        """The largest body accepted; a longer one is answered by :meth:`too_large`."""
        return self._max_body

    def url_for(self, scheme: str, host: str, path: str, query: str) -> str:
        """The URL Twilio requested: ``public_url`` when set, else the request's own."""
        base = self._public_url or f"{scheme}://{host}{path}"
        return f"{base}?{query}" if query else base

    def precheck(
        self,
        content_type: bytes | None,
        signature: bytes | None,
        length: int = -1,
        remote: str | None = None,
    ) -> Answer | None:
        """The answer to give before reading the body (415, 403, 413), or ``None`` to go on.

        *length* is the declared ``Content-Length``, -1 when unknown; *remote*
        the client's address, for the log of refusals.  Each of these answers
        asks for the connection to be closed: the body stays unread.
        """
        if not is_form_content_type(content_type) and not is_json_content_type(content_type):
            return self._reject(
                Rejection.CONTENT_TYPE, answers.UNSUPPORTED_MEDIA_TYPE, remote, closing=True
            )
        if signature is None and self._verifier is not None:
            return self._reject(
                Rejection.SIGNATURE_MISSING, answers.SIGNATURE_MISSING, remote, closing=True
            )
        if length > self._max_body:
            return self.too_large(remote)
        return None

    def too_large(self, remote: str | None = None) -> Answer:
        """The answer to a body found longer than ``max_body_bytes`` while reading it."""
        return self._reject(Rejection.TOO_LARGE, answers.PAYLOAD_TOO_LARGE, remote, closing=True)

    def refuse(self, reason: str, answer: Answer, remote: str | None = None) -> Answer:
        """*answer* to a request refused for *reason* (a :class:`Rejection`), told and
        counted; the connection is to be closed after it."""
        return self._reject(reason, answer, remote, closing=True)

    def _reject(
        self,
        reason: str,
        answer: Answer,
        remote: str | None,
        urls: tuple[str, ...] = (),
        *,
        closing: bool = False,
    ) -> Answer:
        observer = self._observer
        message = answer.body.decode("utf-8", "replace").strip()
        observer.rejected(Refusal(reason, answer.status, message, remote, urls))
        observer.answered(answer.status)
        return answers.closing(answer) if closing else answer

    def _bad_signature(self, url: str, remote: str | None) -> Answer:
        verifier = self._verifier
        urls = () if verifier is None else verifier.checked_urls(url)
        return self._reject(Rejection.SIGNATURE_INVALID, answers.SIGNATURE_INVALID, remote, urls)

    @property
    def delivery(self) -> Delivery:
        return self._delivery

    async def handle(
        self,
        url: str,
        signature: bytes | None,
        body: bytes,
        idempotency_token: str | None = None,
        *,
        content_type: bytes | None = None,
        settings: bytes | None = None,
        headers: Mapping[bytes, bytes] | None = None,
        remote: str | None = None,
    ) -> Answer:
        """The answer to a POST of *body* to *url* that passed :meth:`precheck`.

        *idempotency_token* is the ``I-Twilio-Idempotency-Token`` header: unsigned,
        so kept as information only (with an inbox), never as the delivery's
        identity, which comes from signed content (:func:`delivery_key`).
        *settings* is the ``X-Twilio-Webhooks-Signature-Settings`` header of a
        request signed with a shared key.  A JSON *content_type* is an Event
        Streams batch; anything else a form.  With an inbox, the
        :data:`KEPT_HEADERS` of *headers* (lower-case names) are kept, bounded.
        *remote* is the client's address, for the log of refusals.
        """
        kept: list[tuple[str, str]] = []
        if self._delivery.inbox is not None:
            if headers is not None:
                kept = [
                    (name.decode("latin-1"), _kept(headers[name]))
                    for name in KEPT_HEADERS
                    if name in headers
                ]
            elif idempotency_token:
                kept.append((_TOKEN_HEADER, kept_header(idempotency_token)))
        if is_json_content_type(content_type):
            return await self._handle_cloudevents(url, signature, body, settings, kept, remote)
        try:
            params = parse_form(body, self._max_params)
        except FormError as error:
            reason = Rejection.BY_STATUS.get(error.status, Rejection.BAD_PAYLOAD)
            return self._reject(reason, answers.reject(error.status, error.message), remote)
        # Without repeated names (Twilio's usual form) one dict serves both the
        # signature and the event.
        named = dict(params)
        single = named if len(named) == len(params) else None
        verifier = self._verifier
        if verifier is not None and not verifier.verify(
            url, params, signature or b"", single, settings
        ):
            return self._bad_signature(url, remote)
        event = to_event(params, single)
        if event is None:
            return self._reject(Rejection.BAD_PAYLOAD, answers.NO_STATUS, remote)
        answer = await self._delivery.accept(event, headers=kept)
        self._observer.answered(answer.status)
        return answer

    async def _handle_cloudevents(
        self,
        url: str,
        signature: bytes | None,
        body: bytes,
        settings: bytes | None,
        kept: list[tuple[str, str]],
        remote: str | None,
    ) -> Answer:
        # Signed over the URL alone, which carries the body's SHA-256.
        verifier = self._verifier
        if verifier is not None and not verifier.verify_json(url, body, signature or b"", settings):
            return self._bad_signature(url, remote)
        # Every CloudEvent is checked before any is dispatched: a batch with a
        # bad one is refused whole, and none of it runs.
        batch: list[tuple[str, TwilioEvent]] = []
        try:
            for cloud_event in parse_cloudevents(body):
                params = to_params(cloud_event)
                if params is None:
                    self._unknown(cloud_event.type, cloud_event.id)
                    continue
                event = to_event(params)
                if event is None:
                    raise CloudEventError("a CloudEvent carries no status")
                batch.append((cloud_event.id, event))
        except CloudEventError as error:
            return self._reject(Rejection.BAD_PAYLOAD, answers.reject(400, error.message), remote)
        # One at a time, in order (statuses of one SID arrive in one batch);
        # each deduplicated by its id, so that a batch sent again after a
        # failure runs only the events that failed.
        failed: Answer | None = None
        seen: set[str] = set()
        for event_id, event in batch:
            if event_id in seen:  # twice in one batch: once is enough, even if it fails
                continue
            seen.add(event_id)
            answer = await self._delivery.accept(
                event, replies=False, headers=kept, event_id=event_id
            )
            if answer.status >= 300 and failed is None:
                failed = answer
        answer = failed or answers.acknowledged
        self._observer.answered(answer.status)
        return answer

    def _unknown(self, kind: str, event_id: str) -> None:
        logger.log(
            self._unknown_types.level(kind),
            "acknowledged CloudEvent %s of type %s without dispatching it: twilio-trigger "
            "maps only message, inbound message and call status events",
            event_id,
            kind,
        )
