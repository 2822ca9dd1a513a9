"""One webhook request in, one answer out: the listener's logic, free of any server.

The ASGI application and the framework adapters translate their request into
the few values :class:`WebhookHandler` needs and send back its :class:`Answer`.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ._core import answers
from ._core.answers import Answer
from ._core.cloudevents import (
    CloudEventError,
    convert,
    json_object_params,
    parse_cloudevents,
)
from ._core.events import TwilioEvent
from ._core.form import FormError, is_form_content_type, parse_form, utf8_or_no_charset
from ._core.kinds import Kind
from ._core.routing import of_kind, to_event, unrecognised_event
from ._core.verifier import SignatureError, SignatureVerifier
from ._identity import PATH_HEADER, kept_header
from ._logging import url_names_only
from ._observe import Observer, Refusal, Rejection

__all__ = [
    "PATH_HEADER",
    "Acceptor",
    "WebhookHandler",
    "declared_length",
    "is_json_content_type",
]

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


class Acceptor(Protocol):
    """What the handler hands a verified event to (:class:`._delivery.Delivery` is one)."""

    @property
    def observer(self) -> Observer:
        """Told of every refusal and answer."""
        ...

    @property
    def keeps_headers(self) -> bool:
        """Whether :meth:`accept` keeps the request's headers (an inbox shows them again)."""
        ...

    async def accept(
        self,
        event: TwilioEvent,
        *,
        replies: bool = True,
        headers: Sequence[tuple[str, str]] = (),
        event_id: str | None = None,
    ) -> Answer:
        """The answer to a verified *event*: see :meth:`._pipeline.Pipeline.accept`."""
        ...


A = TypeVar("A", bound=Acceptor)


def is_json_content_type(value: bytes | None) -> bool:
    """True for ``application/json`` (an Event Streams webhook sink's batch), with
    no charset or UTF-8 (JSON's only encoding between systems, RFC 8259)."""
    if value is None:
        return False
    media_type, _, parameters = value.partition(b";")
    if media_type.strip().lower() not in (
        b"application/json",
        b"application/cloudevents-batch+json",
    ):
        return False
    return utf8_or_no_charset(parameters)


def declared_length(value: object) -> int:
    """A ``Content-Length`` value (bytes or str) as :meth:`WebhookHandler.precheck`
    takes it: -1 when absent or not digits; too many digits to convert cheaply
    count as ``2**63``.

    The ASGI application parses it inline instead: it is on every request's path.
    """
    if not isinstance(value, (bytes, str)) or not value.isdigit():
        return -1
    return int(value) if len(value) < 19 else 2**63


def _why(error: SignatureError | None) -> str | None:
    """Why a signature was refused, as the log and the refused requests tell it: the
    URLs in it with their query's names but not its values (a GET webhook carries
    a message's body and phone numbers there)."""
    if error is None:
        return None
    text = str(error)
    queried = {url for url in (*error.urls, error.url) if url and "?" in url}
    for url in sorted(queried, key=len, reverse=True):  # a URL may begin another
        text = text.replace(url, url_names_only(url))
    return text


class WebhookHandler(Generic[A]):
    """Checks, decodes, verifies and routes one webhook request, then hands its
    events to an :class:`Acceptor`."""

    __slots__ = (
        "_basic",
        "_challenge",
        "_delivery",
        "_keeps_headers",
        "_max_body",
        "_max_params",
        "_observer",
        "_public_url",
        "_verifier",
        "_wrong_credentials",
    )

    def __init__(
        self,
        delivery: A,
        verifier: SignatureVerifier | None,
        *,
        public_url: str | None = None,
        max_params: int = 1000,
        max_body_bytes: int = 256 * 1024,
        basic_auth: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._delivery = delivery
        # The credentials of HTTP Basic authentication, as the header carries them.
        self._basic = tuple(
            base64.b64encode(f"{user}:{password}".encode()) for user, password in basic_auth
        )
        self._challenge = answers.unauthorized()
        self._wrong_credentials = answers.unauthorized(
            message="wrong credentials: not a user and password of basic_auth"
        )
        self._verifier = verifier
        self._public_url = public_url
        self._max_params = max_params
        self._max_body = max_body_bytes
        self._observer: Observer = delivery.observer
        self._keeps_headers = delivery.keeps_headers

    @property
    def max_body_bytes(self) -> int:
        """The largest body accepted; a longer one is answered by :meth:`too_large`."""
        return self._max_body

    def url_for(
        self, scheme: str, host: str, path: str, query: str, public: str | None = None
    ) -> str:
        """The URL Twilio requested: ``public_url`` (or *public*, that of another
        path) when set, else the request's own."""
        base = public or self._public_url or f"{scheme}://{host}{path}"
        return f"{base}?{query}" if query else base

    def public_url_beside(self, main: str, route: str) -> str | None:
        """``public_url`` for a request at *route*, a path beside the listener's *main*.

        A proxy that maps ``public_url`` to *main* is taken to map the paths beside
        it alike: the end of ``public_url``'s path that is *main* is replaced by
        *route*.  When it does not end with *main*, *route* is its whole path.
        """
        public = self._public_url
        if public is None:
            return None
        parts = urlsplit(public)
        tail = main.rstrip("/")
        path = parts.path.rstrip("/")
        prefix = path[: len(path) - len(tail)] if path.endswith(tail) else ""
        return urlunsplit((parts.scheme, parts.netloc, prefix + route, "", ""))

    @property
    def checks_credentials(self) -> bool:
        """Whether requests must carry HTTP Basic credentials (``basic_auth``)."""
        return bool(self._basic)

    def authorized(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header carries configured Basic credentials.

        Every configured pair is compared, in constant time, whichever matches.
        """
        if authorization is None:
            return False
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return False
        token = token.strip()
        found = False
        for expected in self._basic:
            found |= hmac.compare_digest(token, expected)
        return found

    def precheck(
        self,
        content_type: bytes | None,
        signature: bytes | None,
        length: int = -1,
        remote: str | None = None,
        *,
        authorization: bytes | None = None,
        method: str = "POST",
    ) -> Answer | None:
        """The answer to give before reading the body (401, 415, 403, 413), or ``None``
        to go on.

        *length* is the declared ``Content-Length``, -1 when unknown; *remote*
        the client's address, for the log of refusals; *authorization* the
        ``Authorization`` header, checked when ``basic_auth`` is set; a ``GET``
        *method* carries its parameters in the query and needs no content type.
        Each of these answers asks for the connection to be closed: the body
        stays unread.
        """
        if self._basic and not self.authorized(authorization):
            if authorization is None:
                # Twilio sends its credentials only once challenged: the first
                # request of each exchange comes without them.  Not a refusal.
                self._observer.answered(401)
                return answers.closing(self._challenge)
            # Wrong credentials: refused and told, the pair never shown.
            return self._reject(
                Rejection.CREDENTIALS, self._wrong_credentials, remote, closing=True
            )
        if method == "GET":
            if signature is None and self._verifier is not None:
                return self._reject(
                    Rejection.SIGNATURE_MISSING, answers.SIGNATURE_MISSING, remote, closing=True
                )
            # Its body is ignored, but read to its end: bounded as a POST's.
            return self.too_large(remote) if length > self._max_body else None
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
        explain: Callable[[], str | None] | None = None,
    ) -> Answer:
        observer = self._observer
        message = answer.body.decode("utf-8", "replace").strip()
        observer.rejected(Refusal(reason, answer.status, message, remote, urls, explain))
        observer.answered(answer.status)
        return answers.closing(answer) if closing else answer

    def _bad_signature(
        self, url: str, remote: str | None, explain: Callable[[], str | None] | None = None
    ) -> Answer:
        # *explain* says why (SignatureVerifier.explain_*): it costs another check,
        # so it runs only when the refusal is told, not for each one of a flood.
        verifier = self._verifier
        urls = () if verifier is None else verifier.checked_urls(url)
        return self._reject(
            Rejection.SIGNATURE_INVALID,
            answers.SIGNATURE_INVALID,
            remote,
            urls,
            explain=explain,
        )

    @property
    def delivery(self) -> A:
        """What the handler hands verified events to."""
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
        prefer: Sequence[Kind] = (),
        path: str | None = None,
        query: str = "",
        method: str = "POST",
    ) -> Answer:
        """The answer to a POST of *body* to *url* (or a GET of *url*) that passed
        :meth:`precheck`.

        *idempotency_token* is the ``I-Twilio-Idempotency-Token`` header: unsigned,
        so kept as information only (with an inbox), never as the delivery's
        identity, which comes from signed content (:func:`delivery_key`).
        *settings* is the ``X-Twilio-Webhooks-Signature-Settings`` header of a
        request signed with a shared key.  A JSON *content_type* is an Event
        Streams batch; anything else a form.  With an inbox, the
        :data:`KEPT_HEADERS` of *headers* (lower-case names) are kept, bounded.
        *remote* is the client's address, for the log of refusals.  *prefer*
        are the kinds of the services attached at the request's path: tried first.
        *path* and *query* (raw, as received) are where the request came: the
        event carries them.  A ``GET`` *method* carries the parameters in the
        query, and is signed over the URL alone (*url* must end with *query*).
        """
        kept: list[tuple[str, str]] = []
        if self._keeps_headers:
            if headers is not None:
                kept = [
                    (name.decode("latin-1"), kept_header(headers[name].decode("latin-1")))
                    for name in KEPT_HEADERS
                    if name in headers
                ]
            elif idempotency_token:
                kept.append((_TOKEN_HEADER, kept_header(idempotency_token)))
        if path is not None and self._keeps_headers:
            # Which path's service the inbox's workers hand the event to: kept
            # whole (a signed URL's, bounded by the request head's limit).
            kept.append((PATH_HEADER, f"{path}?{query}" if query else path))
        where = None if path is None else (path, query)
        if method != "GET" and is_json_content_type(content_type):
            return await self._handle_cloudevents(
                url, signature, body, settings, kept, remote, where
            )
        try:
            params = parse_form(
                query.encode("latin-1") if method == "GET" else body, self._max_params
            )
        except FormError as error:
            reason = Rejection.BY_STATUS.get(error.status, Rejection.BAD_PAYLOAD)
            return self._reject(reason, answers.reject(error.status, error.message), remote)
        if not params:
            return self._reject(Rejection.BAD_PAYLOAD, answers.NO_PARAMETERS, remote)
        # Without repeated names (Twilio's usual form) one dict serves both the
        # signature and the event.
        named = dict(params)
        if "" in named or (method == "GET" and "bodySHA256" in named):
            # Never Twilio's, and each makes a signature over the URL alone (an
            # Event Streams batch's, a GET's) pass for a form of made-up
            # parameters: a body of "=" adds nothing to the signed string.
            return self._reject(Rejection.BAD_PAYLOAD, answers.FOREIGN_PARAMETERS, remote)
        single = named if len(named) == len(params) else None
        verifier = self._verifier
        # A GET is signed over its URL alone, query included as received.
        signed: list[tuple[str, str]] = [] if method == "GET" else params
        if verifier is not None and not verifier.verify(
            url, signed, signature or b"", None if method == "GET" else single, settings
        ):
            return self._bad_signature(
                url,
                remote,
                lambda: _why(
                    verifier.explain_form(
                        url, signed, signature, settings, public=self._public_url is not None
                    )
                ),
            )
        event = to_event(params, single, prefer, where)
        if event is None:
            event = unrecognised_event(params, single, where)
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
        where: tuple[str, str] | None,
    ) -> Answer:
        # Signed over the URL alone, which carries the body's SHA-256.
        verifier = self._verifier
        if verifier is not None and not verifier.verify_json(url, body, signature or b"", settings):
            return self._bad_signature(
                url,
                remote,
                lambda: _why(
                    verifier.explain_json(
                        url, body, signature, settings, public=self._public_url is not None
                    )
                ),
            )
        # Every CloudEvent is checked before any is dispatched: a batch with a
        # bad one is refused whole, and none of it runs.
        batch: list[tuple[str, TwilioEvent]] = []
        try:
            for cloud_event in parse_cloudevents(body):
                kind, params = convert(cloud_event)
                if len(params) > self._max_params:  # as for a form: each event's
                    answer = answers.reject(
                        413, f"too many parameters in one event (at most {self._max_params})"
                    )
                    return self._reject(Rejection.TOO_LARGE, answer, remote)
                batch.append((cloud_event.id, of_kind(kind, params, where)))
        except CloudEventError as error:
            # Not Event Streams' array: a signed JSON object is a webhook of a
            # family with no kind (a Link Shortening click), for the fallback.
            fields = json_object_params(body)
            if fields is None:
                answer = answers.reject(400, error.message)
                return self._reject(Rejection.BAD_PAYLOAD, answer, remote)
            if len(fields) > self._max_params:  # as for a form
                answer = answers.reject(413, f"too many parameters (at most {self._max_params})")
                return self._reject(Rejection.TOO_LARGE, answer, remote)
            event = unrecognised_event(fields, None, where)
            answer = await self._delivery.accept(event, headers=kept)
            self._observer.answered(answer.status)
            return answer
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
