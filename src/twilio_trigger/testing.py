"""Test kit: realistic Twilio payloads, signatures, and an in-process test client.

Unit-test a service without a server, without Twilio and without a network::

    import twilio_trigger as twilio
    from twilio_trigger.testing import TestClient

    def test_delivered_is_recorded():
        listener = twilio.Listener(auth_tokens=["test-token"])
        tracker = DeliveryTracker()
        listener.attach(tracker)
        with TestClient(listener) as client:
            answer = client.send_sms("delivered", sid="SM" + "1" * 32)
        assert answer.status_code == 200
        assert tracker.delivered == ["SM" + "1" * 32]

Payload factories take Twilio's parameter names as keyword overrides; a value
of ``None`` removes the parameter.  Every call makes fresh SIDs unless told.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlencode

from ._asgi import WebhookApp
from ._events import CallStatusEvent, RecordingStatusEvent, SmsStatusChangeEvent
from ._signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    compute_json_signature,
    compute_signature,
    json_url,
    signature_settings,
)

if TYPE_CHECKING:
    from ._listener import Listener

__all__ = [
    "TestClient",
    "TestResponse",
    "call_cloudevent",
    "call_event",
    "call_status_params",
    "cloudevent",
    "cloudevent_for",
    "inbound_call_params",
    "inbound_message_cloudevent",
    "inbound_sms_params",
    "message_cloudevent",
    "new_sid",
    "recording_event",
    "recording_status_params",
    "sign",
    "sign_json",
    "sms_event",
    "sms_status_params",
]

_T = TypeVar("_T")

ACCOUNT_SID = "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978"
TWILIO_NUMBER = "+14155550143"
CUSTOMER_NUMBER = "+15558675310"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

Params = Mapping[str, str] | Iterable[tuple[str, str]]

# Error codes Twilio documents for failed and undelivered messages.
_MESSAGE_ERRORS = {"failed": "30008", "undelivered": "30003"}
_CALL_SEQUENCE = {
    "queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2, "completed": 3,
    "busy": 2, "failed": 1, "no-answer": 2, "canceled": 2,
}  # fmt: skip
_CALL_SIP_CODES = {"completed": 200, "busy": 486, "failed": 404, "no-answer": 487, "canceled": 487}


def new_sid(prefix: str) -> str:
    """A fresh SID: the two-letter *prefix* (``SM``, ``CA``, ...) and 32 hex digits."""
    if len(prefix) != 2 or not prefix.isalpha():
        raise ValueError(f"a SID prefix is two letters, such as SM or CA, got {prefix!r}")
    return prefix.upper() + uuid.uuid4().hex


def _apply(params: dict[str, str], overrides: Mapping[str, object]) -> dict[str, str]:
    for name, value in overrides.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return params


def _geography(origin: str, destination: str) -> dict[str, str]:
    return {
        "FromCity": origin,
        "FromState": "CA" if origin == "SAN FRANCISCO" else "NY",
        "FromZip": "94105" if origin == "SAN FRANCISCO" else "11201",
        "FromCountry": "US",
        "ToCity": destination,
        "ToState": "CA" if destination == "SAN FRANCISCO" else "NY",
        "ToZip": "94105" if destination == "SAN FRANCISCO" else "11201",
        "ToCountry": "US",
    }


def sms_status_params(
    status: str = "delivered", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A message status callback as Twilio sends it for *status* (about 20 parameters).

    ``received`` and ``receiving`` give an inbound message webhook instead
    (:func:`inbound_sms_params`).  ``failed`` and ``undelivered`` carry an
    ``ErrorCode``; ``delivered`` and ``undelivered`` a ``RawDlrDoneDate``; ``read``
    is a WhatsApp read receipt.
    """
    if status in ("received", "receiving"):
        return inbound_sms_params(status, sid=sid, **overrides)
    sid = sid or new_sid("SM")
    params = {
        "ApiVersion": "2010-04-01",
        "AccountSid": ACCOUNT_SID,
        "MessagingServiceSid": new_sid("MG"),
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": TWILIO_NUMBER,
        "To": CUSTOMER_NUMBER,
        "Body": "Your Acme verification code is 482910. It expires in 10 minutes.",
        "NumSegments": "1",
        "NumMedia": "0",
        **_geography("SAN FRANCISCO", "BROOKLYN"),
    }
    if status in _MESSAGE_ERRORS:
        params["ErrorCode"] = _MESSAGE_ERRORS[status]
    if status in ("delivered", "undelivered"):
        params["RawDlrDoneDate"] = "2311141830"
    if status == "read":
        params.update(
            From=f"whatsapp:{TWILIO_NUMBER}",
            To=f"whatsapp:{CUSTOMER_NUMBER}",
            ChannelPrefix="whatsapp",
            ChannelInstallSid=new_sid("XE"),
            ChannelToAddress=CUSTOMER_NUMBER,
            EventType="READ",
        )
    return _apply(params, overrides)


def inbound_sms_params(
    status: str = "received", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """An inbound message webhook: ``SmsStatus`` only, the legacy SID aliases, one image."""
    sid = sid or new_sid("MM")
    params = {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "1",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "11201",
        "SmsSid": sid,
        "FromState": "NY",
        "SmsStatus": status,
        "FromCity": "BROOKLYN",
        "Body": "Here's the photo of the damaged parcel \U0001f4e6",
        "FromCountry": "US",
        "To": TWILIO_NUMBER,
        "MessagingServiceSid": new_sid("MG"),
        "ToZip": "94105",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": CUSTOMER_NUMBER,
        "MediaContentType0": "image/jpeg",
        "MediaUrl0": (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}"
            f"/Media/{new_sid('ME')}"
        ),
        "ApiVersion": "2010-04-01",
    }
    return _apply(params, overrides)


def call_status_params(
    status: str = "completed", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A voice status callback as Twilio sends it for *status* (30 to 40 parameters).

    Terminal statuses carry ``CallDuration`` and ``SipResponseCode``; ``completed``
    also the billed ``Duration`` and a recording; ``SequenceNumber`` follows the
    usual order of a call's events.
    """
    sid = sid or new_sid("CA")
    params = {
        "Called": CUSTOMER_NUMBER,
        "ToState": "NY",
        "CallerCountry": "US",
        "Direction": "outbound-api",
        "Timestamp": "Tue, 14 Nov 2023 18:30:00 +0000",
        "CallbackSource": "call-progress-events",
        "CallerState": "CA",
        "ToZip": "11201",
        "SequenceNumber": str(_CALL_SEQUENCE.get(status, 0)),
        "CallSid": sid,
        "To": CUSTOMER_NUMBER,
        "CallerZip": "94105",
        "ToCountry": "US",
        "CalledZip": "11201",
        "ApiVersion": "2010-04-01",
        "CalledCity": "BROOKLYN",
        "CallStatus": status,
        "From": TWILIO_NUMBER,
        "AccountSid": ACCOUNT_SID,
        "CalledCountry": "US",
        "CallerCity": "SAN FRANCISCO",
        "ToCity": "BROOKLYN",
        "FromCountry": "US",
        "Caller": TWILIO_NUMBER,
        "FromCity": "SAN FRANCISCO",
        "CalledState": "NY",
        "FromZip": "94105",
        "FromState": "CA",
        "ParentCallSid": new_sid("CA"),
        "ForwardedFrom": "+16505550199",
        "CallerName": "ACME LOGISTICS",
        "CallToken": '{"parentCallInfoToken":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}',
        "StirVerstat": "TN-Validation-Passed-A",
        "StirPassportToken": "eyJhbGciOiJFUzI1NiIsInR5cCI6InBhc3Nwb3J0In0.eyJhdHRlc3QiOiJBIn0.c2ln",
    }
    if status in ("ringing", "in-progress"):
        params["StirStatus"] = "A"
    if status in _CALL_SIP_CODES:
        params["CallDuration"] = "47" if status == "completed" else "0"
        params["SipResponseCode"] = str(_CALL_SIP_CODES[status])
    if status == "completed":
        recording = new_sid("RE")
        params.update(
            Duration="1",
            RecordingUrl=(
                f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording}"
            ),
            RecordingSid=recording,
            RecordingDuration="45",
        )
    if status in ("in-progress", "completed"):
        params["AnsweredBy"] = "human"
        params["MachineDetectionDuration"] = "2140"
    return _apply(params, overrides)


def inbound_call_params(
    status: str = "ringing", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The voice webhook of an incoming call, which asks for TwiML (no ``CallbackSource``)."""
    sid = sid or new_sid("CA")
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": CUSTOMER_NUMBER,
        "Caller": CUSTOMER_NUMBER,
        "To": TWILIO_NUMBER,
        "Called": TWILIO_NUMBER,
        "CallToken": '{"parentCallInfoToken":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}',
        "StirVerstat": "TN-Validation-Passed-A",
        **_geography("BROOKLYN", "SAN FRANCISCO"),
        "CallerCity": "BROOKLYN",
        "CallerState": "NY",
        "CallerZip": "11201",
        "CallerCountry": "US",
        "CalledCity": "SAN FRANCISCO",
        "CalledState": "CA",
        "CalledZip": "94105",
        "CalledCountry": "US",
    }
    return _apply(params, overrides)


def recording_status_params(
    status: str = "completed", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A recording status callback for *status* (``in-progress``, ``completed``, ``absent``).

    ``CallSid`` is a new call's unless overridden (``CallSid="CA..."``).
    """
    sid = sid or new_sid("RE")
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": new_sid("CA"),
        "RecordingSid": sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}",
        "RecordingStatus": status,
        "RecordingChannels": "1",
        "RecordingStartTime": "Tue, 14 Nov 2023 18:29:13 +0000",
        "RecordingSource": "OutboundAPI",
        "RecordingTrack": "both",
        "ErrorCode": "0",
    }
    if status == "completed":
        params["RecordingDuration"] = "45"
    elif status == "in-progress":
        params["RecordingDuration"] = "-1"
    return _apply(params, overrides)


def sms_event(
    status: str = "delivered", *, sid: str | None = None, **overrides: object
) -> SmsStatusChangeEvent:
    """A :class:`SmsStatusChangeEvent` with realistic parameters, to call a callback directly."""
    return SmsStatusChangeEvent(sms_status_params(status, sid=sid, **overrides))


def call_event(
    status: str = "completed", *, sid: str | None = None, **overrides: object
) -> CallStatusEvent:
    """A :class:`CallStatusEvent` with realistic parameters, to call a callback directly."""
    return CallStatusEvent(call_status_params(status, sid=sid, **overrides))


def recording_event(
    status: str = "completed", *, sid: str | None = None, **overrides: object
) -> RecordingStatusEvent:
    """A :class:`RecordingStatusEvent` with realistic parameters."""
    return RecordingStatusEvent(recording_status_params(status, sid=sid, **overrides))


# -- Event Streams ----------------------------------------------------------------
def cloudevent(
    event_type: str, data: Mapping[str, object], *, id: str | None = None
) -> dict[str, object]:
    """One CloudEvent as an Event Streams webhook sink receives it (one of its array)."""
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": f"/2010-04-01/Accounts/{ACCOUNT_SID}",
        "id": id or new_sid("EZ"),
        "dataschema": "https://events-schemas.twilio.com/",
        "datacontenttype": "application/json",
        "time": "2023-11-14T18:30:00.000Z",
        "data": dict(data),
    }


_CALL_EVENT_NAMES = {"in-progress": "answered", "busy": "completed", "failed": "completed",
                     "no-answer": "completed", "canceled": "completed"}  # fmt: skip


def cloudevent_for(params: Mapping[str, str], *, id: str | None = None) -> dict[str, object]:
    """The CloudEvent Event Streams sends for the same event as a status webhook's
    *params*: a call's (``CallStatus``), an inbound message's (``received``), or a
    message status's."""
    call_status = params.get("CallStatus")
    if call_status:
        data: dict[str, object] = {
            "sid": params.get("CallSid"),
            "timestamp": "2023-11-14T18:30:00.000Z",
            "request": {
                "method": "POST",
                "url": "https://hooks.example.com/",
                "parameters": dict(params),
            },
            "response": {"responseCode": 200, "contentType": "text/xml", "responseBody": ""},
        }
        name = _CALL_EVENT_NAMES.get(call_status, call_status)
        return cloudevent(f"com.twilio.voice.status-callback.call.{name}", data, id=id)
    # Event Streams' data names are the webhook's, camelCase: MessageSid -> messageSid.
    fields: dict[str, object] = {name[:1].lower() + name[1:]: v for name, v in params.items()}
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if status == "received":
        return cloudevent("com.twilio.messaging.inbound-message.received", fields, id=id)
    fields["messageStatus"] = status.upper()
    return cloudevent(f"com.twilio.messaging.message.{status}", fields, id=id)


def _with_data(event: dict[str, object], data: Mapping[str, object]) -> dict[str, object]:
    fields = event["data"]
    assert isinstance(fields, dict)
    fields.update(data)
    event["data"] = {name: value for name, value in fields.items() if value is not None}
    return event


def message_cloudevent(
    status: str = "delivered", *, sid: str | None = None, id: str | None = None, **data: object
) -> dict[str, object]:
    """A ``com.twilio.messaging.message.<status>`` CloudEvent, with the fields of
    :func:`sms_status_params` in camelCase; *data* overrides them (``None`` removes)."""
    return _with_data(cloudevent_for(sms_status_params(status, sid=sid), id=id), data)


def inbound_message_cloudevent(
    *, sid: str | None = None, id: str | None = None, **data: object
) -> dict[str, object]:
    """A ``com.twilio.messaging.inbound-message.received`` CloudEvent."""
    return _with_data(cloudevent_for(inbound_sms_params("received", sid=sid), id=id), data)


def call_cloudevent(
    status: str = "completed", *, sid: str | None = None, id: str | None = None, **params: object
) -> dict[str, object]:
    """A ``com.twilio.voice.status-callback.call.<event>`` CloudEvent carrying the
    status callback of :func:`call_status_params` (*params* override it)."""
    return cloudevent_for(call_status_params(status, sid=sid, **params), id=id)


def sign_json(url: str, body: bytes, token: str) -> tuple[str, str]:
    """The URL with the body's ``bodySHA256`` that Twilio requests, and its signature."""
    signed_url = json_url(url, body)
    return signed_url, compute_json_signature(signed_url, token)


def _pairs(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def sign(url: str, params: Params, token: str, algorithm: str = HMAC_SHA1) -> str:
    """The ``X-Twilio-Signature`` Twilio sends when it POSTs *params* to *url*.

    *algorithm* ``HMAC_SHA256`` with a shared key's secret as *token* gives the
    signature of a request signed with that shared key.
    """
    return compute_signature(url, _pairs(params), token, algorithm)


@dataclass(frozen=True)
class TestResponse:
    """The listener's answer to one request made by :class:`TestClient`."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    #: The exceptions the listener logged while answering (a failing callback's).
    errors: tuple[BaseException, ...] = field(default=())

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


class TestClient:
    """Drives a listener's ASGI application in-process with signed requests.

    No port, no server: each request goes straight into ``listener.asgi`` on an
    event loop the client runs in a background thread, so it works the same from
    pytest, unittest or a script.  In an ``async`` test, use the ``a``-prefixed
    methods to run the request on the test's own loop instead.

    Requests are signed with the listener's first auth token (or *auth_token*)
    over the URL Twilio would have used: the listener's ``public_url`` when set,
    else ``http://testserver`` and its path.  With *shared_key* ``(key_id,
    secret)`` they are signed as a Webhook Rule's shared key signs them
    (HMAC-SHA256, with ``X-Twilio-Webhooks-Signature-Settings``).
    """

    __test__ = False

    def __init__(
        self,
        listener: Listener,
        *,
        auth_token: str | None = None,
        shared_key: tuple[str, str] | None = None,
        host: str = "testserver",
    ) -> None:
        settings = listener.settings
        self._app = listener.asgi
        self._path = settings.path
        self._shutdown_timeout = settings.shutdown_timeout
        self._host = host
        self._base_url = settings.public_url or f"http://{host}{settings.path}"
        tokens = settings.auth_tokens
        self._token = auth_token if auth_token is not None else (tokens[0] if tokens else None)
        self._algorithm = HMAC_SHA1
        self._settings: str | None = None
        if shared_key is not None:
            key_id, self._token = shared_key
            self._algorithm = HMAC_SHA256
            self._settings = signature_settings(key_id, HMAC_SHA256)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- requests ----------------------------------------------------------
    def send_sms(
        self, status: str = "delivered", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """POST a signed message status (or inbound message) webhook."""
        return self.post(sms_status_params(status, sid=sid, **overrides))

    def send_call(
        self, status: str = "completed", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """POST a signed call status webhook."""
        return self.post(call_status_params(status, sid=sid, **overrides))

    def send_recording(
        self, status: str = "completed", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """POST a signed recording status webhook."""
        return self.post(recording_status_params(status, sid=sid, **overrides))

    def post(
        self,
        params: Params,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        body: bytes | None = None,
    ) -> TestResponse:
        """POST *params* as a form, signed unless *signature* is given (``""``: none).

        *body* replaces the encoded form (to send malformed input); *headers*
        add to or replace the ones Twilio sends.
        """
        return self._run(
            self.apost(params, query=query, headers=headers, signature=signature, body=body)
        )

    async def asend_sms(
        self, status: str = "delivered", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """:meth:`send_sms` on the running event loop."""
        return await self.apost(sms_status_params(status, sid=sid, **overrides))

    async def asend_call(
        self, status: str = "completed", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """:meth:`send_call` on the running event loop."""
        return await self.apost(call_status_params(status, sid=sid, **overrides))

    async def asend_recording(
        self, status: str = "completed", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """:meth:`send_recording` on the running event loop."""
        return await self.apost(recording_status_params(status, sid=sid, **overrides))

    async def apost(
        self,
        params: Params,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        body: bytes | None = None,
    ) -> TestResponse:
        """:meth:`post` on the running event loop."""
        pairs = _pairs(params)
        url = f"{self._base_url}?{query}" if query else self._base_url
        if signature is None and self._token is not None:
            signature = compute_signature(url, pairs, self._token, self._algorithm)
        content = urlencode(pairs).encode("ascii") if body is None else body
        return await self._send(FORM_CONTENT_TYPE, content, query, signature, headers)

    def post_events(
        self,
        events: Sequence[Mapping[str, object]],
        *,
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        body: bytes | None = None,
    ) -> TestResponse:
        """POST CloudEvents as an Event Streams webhook sink receives them: a JSON
        array, signed over the URL with its ``bodySHA256`` (see :func:`cloudevent`).

        *body* replaces the JSON (to send malformed input); it is signed all the same.
        """
        return self._run(self.apost_events(events, headers=headers, signature=signature, body=body))

    async def apost_events(
        self,
        events: Sequence[Mapping[str, object]],
        *,
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        body: bytes | None = None,
    ) -> TestResponse:
        """:meth:`post_events` on the running event loop."""
        content = json.dumps(list(events)).encode("utf-8") if body is None else body
        url = json_url(self._base_url, content)
        query = url.partition("?")[2]
        if signature is None and self._token is not None:
            signature = compute_json_signature(url, self._token, self._algorithm)
        return await self._send("application/json", content, query, signature, headers)

    async def _send(
        self,
        content_type: str,
        content: bytes,
        query: str,
        signature: str | None,
        headers: Mapping[str, str] | None,
    ) -> TestResponse:
        sent = {
            "host": self._host,
            "content-type": content_type,
            "content-length": str(len(content)),
            "user-agent": "TwilioProxy/1.1",
            "i-twilio-idempotency-token": str(uuid.uuid4()),
        }
        if signature:
            sent["x-twilio-signature"] = signature
            if self._settings is not None:
                sent["x-twilio-webhooks-signature-settings"] = self._settings
        sent.update({name.lower(): value for name, value in (headers or {}).items()})
        return await self._call(
            [(name.encode("latin-1"), value.encode("latin-1")) for name, value in sent.items()],
            query,
            content,
        )

    async def _call(
        self, headers: Sequence[tuple[bytes, bytes]], query: str, content: bytes
    ) -> TestResponse:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": self._path,
            "raw_path": self._path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "root_path": "",
            "headers": list(headers),
            "client": ("127.0.0.1", 50000),
            "server": (self._host, 80),
        }
        done = asyncio.Event()
        delivered = False
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": content, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        collector = _ErrorCollector()
        logger = logging.getLogger("twilio_trigger")
        logger.addHandler(collector)
        try:
            await self._app(scope, receive, send)
        finally:
            logger.removeHandler(collector)
            done.set()
        return TestResponse(
            status_code=started["status"],
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in started["headers"]},
            body=b"".join(chunks),
            errors=tuple(collector.errors),
        )

    # -- the background event loop ----------------------------------------
    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="twilio-trigger-test-client", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def close(self) -> None:
        """Stop what the listener started on the client's loop (an inbox's workers),
        then the loop itself.  The client can be used again after."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if isinstance(self._app, WebhookApp):
            shutdown = self._app.delivery.shutdown(self._shutdown_timeout)
            asyncio.run_coroutine_threadsafe(shutdown, loop).result()
        asyncio.run_coroutine_threadsafe(loop.shutdown_default_executor(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
