"""Realistic Twilio payloads: what each kind of webhook sends, to test and to demonstrate.

The test kit (:mod:`twilio_trigger.testing`), ``twilio-trigger send`` and the
demo all build their requests here.  Factories take Twilio's parameter names as
keyword overrides; a value of ``None`` removes the parameter.  Every call makes
fresh SIDs unless told.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

from .events import CallStatusEvent, RecordingStatusEvent, SmsStatusChangeEvent
from .vocabulary import (
    CONVERSATIONS_POST_EVENTS,
    CONVERSATIONS_PRE_EVENTS,
    TASKROUTER_EVENT_TYPES,
)

__all__ = [
    "ACCOUNT_SID",
    "CONVERSATIONS_POST_EVENTS",
    "CONVERSATIONS_PRE_EVENTS",
    "CUSTOMER_NUMBER",
    "TASKROUTER_EVENT_TYPES",
    "TWILIO_NUMBER",
    "assignment_params",
    "call_cloudevent",
    "call_event",
    "call_status_params",
    "cloudevent",
    "cloudevent_for",
    "conference_params",
    "conversations_params",
    "debugger_params",
    "dequeue_params",
    "dial_params",
    "enqueue_params",
    "gather_params",
    "gather_partial_params",
    "inbound_call_params",
    "inbound_message_cloudevent",
    "inbound_sms_params",
    "machine_detection_params",
    "message_cloudevent",
    "new_sid",
    "pay_params",
    "pay_status_params",
    "queue_wait_params",
    "record_params",
    "recording_event",
    "recording_status_params",
    "sms_event",
    "sms_status_params",
    "taskrouter_params",
    "transcription_params",
    "unknown_params",
]

ACCOUNT_SID = "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978"
TWILIO_NUMBER = "+14155550143"
CUSTOMER_NUMBER = "+15558675310"


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


_CONVERSATIONS_TYPES = {
    "Conversation": "conversation",
    "ConversationState": "conversation-state",
    "Message": "message",
    "Participant": "participant",
    "User": "user",
}


def cloudevent_for(params: Mapping[str, str], *, id: str | None = None) -> dict[str, object]:
    """The CloudEvent Event Streams sends for the same event as a webhook's *params*:
    a call's (``CallStatus``), an inbound message's (``received``), a message
    status's, a Conversations post-event's or a Debugger alert's (an error log).

    :class:`ValueError` for a webhook Event Streams does not carry.
    """
    event_type = params.get("EventType", "")
    if event_type.startswith("on") and event_type.endswith(("Added", "Updated", "Removed")):
        action = next(a for a in ("Added", "Updated", "Removed") if event_type.endswith(a))
        resource = _CONVERSATIONS_TYPES.get(event_type[2 : -len(action)])
        if resource is None:
            raise ValueError(f"Event Streams does not carry {event_type}")
        # PascalCase data, as the webhook's but for the body and the binding.
        pascal: dict[str, object] = {}
        binding: dict[str, str] = {}
        for name, value in params.items():
            if name.startswith("MessagingBinding."):
                binding[name.partition(".")[2]] = value
            elif name == "Body":
                pascal["MessageBody"] = value
            elif name != "EventType":
                pascal[name] = value
        if binding:
            pascal["MessagingBinding"] = binding
        return cloudevent(f"com.twilio.conversations.{resource}.{action.lower()}", pascal, id=id)
    if params.get("PayloadType") and params.get("Level"):
        payload = json.loads(params.get("Payload") or "{}")
        error: dict[str, object] = {
            "sid": params.get("Sid"),
            "account_sid": params.get("AccountSid"),
            "level": params.get("Level"),
            "date_created": params.get("Timestamp"),
            "product_name": "Programmable Voice",
            **(payload if isinstance(payload, dict) else {}),
        }
        return cloudevent("com.twilio.error-logs.error.logged", error, id=id)
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


def debugger_params(
    level: str = "error", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A Console Debugger alert as Twilio posts it: a webhook of the account failed (11200).

    *level* is sent in upper case (``ERROR``, ``WARNING``), as Twilio's example
    shows; ``Payload`` is JSON text.
    """
    call = new_sid("CA")
    hook = "https://hooks.example.com/voice"
    payload = {
        "resource_sid": call,
        "service_sid": None,
        "error_code": "11200",
        "more_info": {
            "msg": f"An attempt to retrieve content from {hook} returned the HTTP status code 502",
            "Msg": "Bad Gateway",
            "sourceComponent": "12000",
            "ErrorCode": "11200",
            "httpResponse": "502",
            "url": hook,
            "LogLevel": level.upper(),
        },
        "webhook": {
            "type": "application/json",
            "request": {
                "method": "POST",
                "url": hook,
                "headers": {"X-Twilio-Signature": "bm90IGEgcmVhbCBzaWduYXR1cmU="},
                "parameters": {"CallSid": call, "AccountSid": ACCOUNT_SID},
            },
            "response": {"status_code": 502, "headers": {}, "body": "Bad Gateway"},
        },
    }
    params = {
        "Sid": sid or new_sid("NO"),
        "AccountSid": ACCOUNT_SID,
        "ParentAccountSid": "",
        "Timestamp": "2023-11-14T18:30:00Z",
        "Level": level.upper(),
        "PayloadType": "application/json",
        "Payload": json.dumps(payload, separators=(",", ":")),
    }
    return _apply(params, overrides)


# -- Voice: TwiML verb callbacks --------------------------------------------------
_RFC2822_TIME = "Tue, 14 Nov 2023 18:30:00 +0000"
_ISO_TIME = "2023-11-14T18:30:00Z"


def _require(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; expected one of: {', '.join(valid)}")


def _live_call(sid: str | None) -> dict[str, str]:
    """The standard parameters of a TwiML request on an answered inbound call."""
    return inbound_call_params("in-progress", sid=sid)


def _recording_url(recording_sid: str) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"


_GATHER_RESULTS: dict[str, dict[str, str]] = {
    "digits": {"Digits": "1", "FinishedOnKey": "#"},
    "speech": {"SpeechResult": "I'd like to check my order status.", "Confidence": "0.9216"},
    "empty": {},
}


def gather_params(
    result: str = "digits", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Gather action>`` URL: the live call's parameters plus what the
    caller entered.  *result* picks the input: ``digits`` (``Digits`` and ``FinishedOnKey``),
    ``speech`` (``SpeechResult`` and ``Confidence``) or ``empty`` (neither, as sent with
    ``actionOnEmptyResult="true"``); *sid* is the ``CallSid``.
    """
    _require("gather result", result, tuple(_GATHER_RESULTS))
    params = _live_call(sid)
    params.update(_GATHER_RESULTS[result])
    return _apply(params, overrides)


def gather_partial_params(
    result: str = "partial", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """An asynchronous ``<Gather partialResultCallback>`` request: an interim speech
    transcript (``UnstableSpeechResult``, ``StableSpeechResult``, ``Stability``,
    ``SequenceNumber``) while the caller is still talking.  *result* accepts only
    ``partial``, the one kind of request this URL gets; *sid* is the ``CallSid``.
    """
    _require("partial gather result", result, ("partial",))
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid or new_sid("CA"),
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "From": CUSTOMER_NUMBER,
        "To": TWILIO_NUMBER,
        "UnstableSpeechResult": "I'd like to check my order",
        "StableSpeechResult": "I'd like to",
        "Stability": "0.7",
        "SequenceNumber": "1",
    }
    return _apply(params, overrides)


def transcription_params(
    status: str = "completed", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A ``<Record transcribeCallback>`` request, sent once Twilio has transcribed a
    recording.  *status* is the ``TranscriptionStatus`` (``completed`` or ``failed``);
    a failed transcription has no ``TranscriptionText``.  *sid* is the
    ``TranscriptionSid``; the recording and the call get fresh SIDs.
    """
    sid = sid or new_sid("TR")
    recording = new_sid("RE")
    params = {
        "TranscriptionSid": sid,
        "TranscriptionText": (
            "Hi, this is Dana about order A-1042. The parcel arrived damaged, please call me back."
        ),
        "TranscriptionStatus": status,
        "TranscriptionUrl": (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Transcriptions/{sid}"
        ),
        "RecordingSid": recording,
        "RecordingUrl": _recording_url(recording),
        "CallSid": new_sid("CA"),
        "AccountSid": ACCOUNT_SID,
        "From": CUSTOMER_NUMBER,
        "To": TWILIO_NUMBER,
        "CallStatus": "completed",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
    }
    if status != "completed":
        del params["TranscriptionText"]
    return _apply(params, overrides)


def dial_params(
    status: str = "completed", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Dial action>`` URL once the dialled party is done with the
    call.  *status* is the ``DialCallStatus`` (``completed``, ``answered`` -- after a
    conference, so no child leg or duration --, ``busy``, ``no-answer``, ``failed``,
    ``canceled``); *sid* is the parent call's ``CallSid``.
    """
    params = _live_call(sid)
    params["DialCallStatus"] = status
    if status != "answered":
        params["DialCallSid"] = new_sid("CA")
        params["DialCallDuration"] = "32" if status == "completed" else "0"
    params["DialBridged"] = "true" if status in ("completed", "answered") else "false"
    return _apply(params, overrides)


_RECORD_ENDINGS = {"completed": "#", "hangup": "hangup"}


def record_params(
    result: str = "completed", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Record action>`` URL when a recording ends.  *result* says
    how: ``completed`` (the caller pressed ``#``) or ``hangup`` (``Digits=hangup``);
    *sid* is the ``CallSid``.  The recording gets a fresh ``RE`` SID.
    """
    _require("record result", result, tuple(_RECORD_ENDINGS))
    recording = new_sid("RE")
    params = _live_call(sid)
    params.update(
        RecordingUrl=_recording_url(recording),
        RecordingDuration="14",
        RecordingSid=recording,
        Digits=_RECORD_ENDINGS[result],
    )
    return _apply(params, overrides)


def enqueue_params(
    result: str = "bridged", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to an ``<Enqueue action>`` URL when the caller leaves the queue.
    *result* is the ``QueueResult`` (``bridged``, ``bridging-in-process``, ``error``,
    ``hangup``, ``leave``, ``redirected``, ``redirected-from-bridged``, ``queue-full``,
    ``system-error``); ``queue-full`` has no ``QueueSid``/``QueueTime``, as the
    caller never got in.  *sid* is the ``CallSid``.
    """
    params = _live_call(sid)
    params["QueueResult"] = result
    if result != "queue-full":
        params.update(QueueSid=new_sid("QU"), QueueTime="38")
    return _apply(params, overrides)


def queue_wait_params(
    position: str = "1", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to an ``<Enqueue waitUrl>``, repeated while the caller waits.
    *position* is the caller's ``QueuePosition``; ``CurrentQueueSize`` is at least
    that.  *sid* is the waiting caller's ``CallSid``.
    """
    position = str(position)
    size = max(3, int(position)) if position.isdigit() else 3
    params = _live_call(sid)
    params.update(
        QueuePosition=position,
        QueueSid=new_sid("QU"),
        QueueTime="12",
        AvgQueueTime="40",
        CurrentQueueSize=str(size),
        MaxQueueSize="100",
    )
    return _apply(params, overrides)


def dequeue_params(
    event: str = "dequeue", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Queue url>``, run on a caller just taken out of a queue
    before the two calls are bridged.  *event* accepts only ``dequeue``; *sid* is the
    dequeued caller's ``CallSid``, ``DequeingCallSid`` (Twilio's spelling) the agent's.
    """
    _require("dequeue event", event, ("dequeue",))
    params = _live_call(sid)
    params.update(QueueSid=new_sid("QU"), QueueTime="95", DequeingCallSid=new_sid("CA"))
    return _apply(params, overrides)


def pay_params(
    result: str = "success", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Pay action>`` URL when ``<Pay>`` ends.  *result* is the
    ``Result`` (``success``, ``too-many-failed-attempts``, ``payment-connector-error``,
    ``caller-interrupted-with-star``, ``caller-hung-up``, ``validation-error``,
    ``internal-error``): ``success`` carries ``PaymentToken`` and
    ``PaymentConfirmationCode``, any other ``PaymentError`` and ``PayErrorCode``.  Card
    details are masked as Twilio sends them.  *sid* is the ``CallSid``.
    """
    params = _live_call(sid)
    params.update(
        Result=result,
        ProfileId="cus_P8h3Zk1VbQ2mXn",
        PaymentMethod="credit-card",
        PaymentCardNumber="xxxx-xxxxxx-x4001",
        PaymentCardType="visa",
        ExpirationDate="1226",
        SecurityCode="xxx",
        PaymentCardPostalCode="94105",
    )
    if result == "success":
        params.update(
            PaymentToken="tok_" + uuid.uuid4().hex[:24],
            PaymentConfirmationCode="ch_a9dc6297cd1a4fb095e61b1a9cf2dd1d",
        )
    else:
        params.update(
            PaymentError="Payment Gateway rejected charge creation.", PayErrorCode="64008"
        )
    return _apply(params, overrides)


# The stages of <Pay> that come after the card number was entered.
_PAY_STAGES_AFTER_CARD = ("expiration-date", "security-code", "postal-code", "payment-processing")


def pay_status_params(
    stage: str = "payment-card-number", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A ``<Pay statusCallback>`` request, sent at each stage of a payment.  *stage* is
    ``For`` (``payment-card-number``, ``expiration-date``, ``security-code``,
    ``postal-code``, ``bank-routing-number``, ``bank-account-number``,
    ``payment-processing``); stages after the card number add the masked
    ``PaymentCardNumber``.  Give ``ErrorType=...`` for a failed attempt.  *sid* is the
    ``CallSid``.
    """
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid or new_sid("CA"),
        "For": stage,
        "Attempt": "1",
    }
    if stage in _PAY_STAGES_AFTER_CARD:
        params["PaymentCardNumber"] = "xxxx-xxxxxx-x4001"
    return _apply(params, overrides)


def machine_detection_params(
    answered_by: str = "machine_end_beep", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The asynchronous answering machine detection callback (``AsyncAmdStatusCallback``).
    *answered_by* is ``AnsweredBy`` (``human``, ``machine_start``, ``machine_end_beep``,
    ``machine_end_silence``, ``machine_end_other``, ``fax``, ``unknown``).  It has no
    ``CallStatus`` and no ``CallbackSource``, which tells it from the call's own
    requests.  *sid* is the ``CallSid``.
    """
    params = {
        "CallSid": sid or new_sid("CA"),
        "AccountSid": ACCOUNT_SID,
        "AnsweredBy": answered_by,
        "MachineDetectionDuration": "4210",
    }
    return _apply(params, overrides)


# -- Voice: conferences ---------------------------------------------------------
# Each StatusCallbackEvent, with a default SequenceNumber in the order of a conference's life.
_CONFERENCE_SEQUENCE = {
    "participant-join": 1, "conference-start": 2,
    "participant-mute": 3, "participant-unmute": 3, "participant-hold": 3,
    "participant-unhold": 3, "participant-modify": 3, "participant-speech-start": 3,
    "participant-speech-stop": 3, "announcement-end": 3, "announcement-fail": 3,
    "participant-leave": 4, "conference-end": 5,
}  # fmt: skip


def conference_params(
    event: str = "participant-join", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A conference status callback (``<Conference statusCallback>``).  *event* is the
    ``StatusCallbackEvent`` (``conference-start``/``-end``, ``participant-join``,
    ``-leave``, ``-mute``, ``-unmute``, ``-hold``, ``-unhold``, ``-modify``,
    ``-speech-start``, ``-speech-stop``, ``announcement-end``/``-fail``); participant
    and announcement events describe the participant, ``participant-leave`` and
    ``conference-end`` say why.  *sid* is the ``ConferenceSid``.
    """
    _require("conference event", event, tuple(_CONFERENCE_SEQUENCE))
    params = {
        "ConferenceSid": sid or new_sid("CF"),
        "FriendlyName": "support-room-42",
        "AccountSid": ACCOUNT_SID,
        "SequenceNumber": str(_CONFERENCE_SEQUENCE[event]),
        "Timestamp": _RFC2822_TIME,
        "StatusCallbackEvent": event,
    }
    if event.startswith(("participant-", "announcement-")):
        params.update(
            CallSid=new_sid("CA"),
            Muted="true" if event == "participant-mute" else "false",
            Hold="true" if event == "participant-hold" else "false",
            Coaching="false",
            EndConferenceOnExit="false",
            StartConferenceOnEnter="true",
            ParticipantLabel="customer",
        )
    if event == "participant-leave":
        params.update(
            ParticipantCallStatus="completed", ReasonParticipantLeft="participant_hung_up"
        )
    elif event == "conference-end":
        params.update(
            ReasonConferenceEnded="last-participant-left",
            Reason="The last participant left the conference",
            CallSidEndingConference=new_sid("CA"),
            ParticipantLabelEndingConference="customer",
        )
    elif event.startswith("announcement-"):
        params["AnnounceUrl"] = "https://hooks.example.com/voice/announcement.xml"
        if event == "announcement-fail":
            params["ReasonAnnouncementFailed"] = "Internal error"
    return _apply(params, overrides)


_DATE_UPDATED = "2023-11-14T18:31:05Z"
_DATE_REMOVED = "2023-11-14T18:32:40Z"


def _conversation_media() -> str:
    media = [
        {
            "Sid": new_sid("ME"),
            "Filename": "damaged-parcel.jpg",
            "ContentType": "image/jpeg",
            "Size": 184320,
        }
    ]
    return json.dumps(media, separators=(",", ":"))


def _conversation_fields(event_type: str, sid: str) -> dict[str, str]:
    fields = {
        "FriendlyName": "Order A-1042 support",
        "UniqueName": "order-a-1042",
        "Attributes": '{"order":"A-1042"}',
        "ChatServiceSid": new_sid("IS"),
        "MessagingServiceSid": new_sid("MG"),
    }
    binding = {
        "MessagingBinding.ProxyAddress": TWILIO_NUMBER,
        "MessagingBinding.Address": CUSTOMER_NUMBER,
        "MessagingBinding.ProjectedAddress": TWILIO_NUMBER,
        "MessagingBinding.AuthorAddress": CUSTOMER_NUMBER,
    }
    if event_type == "onConversationAdd":
        return {
            **fields,
            **binding,
            "MessageBody": "Hi, my parcel for order A-1042 arrived damaged.",
            "Media": _conversation_media(),
            "State": "active",
        }
    dated = {"ConversationSid": sid, "DateCreated": _ISO_TIME}
    if event_type == "onConversationAdded":
        return {**dated, "DateUpdated": _ISO_TIME, **fields, **binding, "State": "active"}
    params = {**dated, "DateUpdated": _DATE_UPDATED, **fields, "State": "active"}
    if event_type == "onConversationRemoved":
        params["DateRemoved"] = _DATE_REMOVED
    return params


def _message_fields(event_type: str, sid: str) -> dict[str, str]:
    content = {
        "Body": "Sorry about that! A replacement ships today.",
        "Author": "agent-alice",
        "ParticipantSid": new_sid("MB"),
        "Attributes": '{"order":"A-1042"}',
        "Media": _conversation_media(),
    }
    if event_type == "onMessageAdd":
        return {"ConversationSid": sid, **content}
    message = {"ConversationSid": sid, "MessageSid": new_sid("IM")}
    if event_type == "onMessageAdded":
        return {
            **message,
            "MessagingServiceSid": new_sid("MG"),
            "Index": "3",
            "DateCreated": _ISO_TIME,
            **content,
        }
    params = {**message, "Index": "3", "DateCreated": _ISO_TIME, "DateUpdated": _DATE_UPDATED}
    params.update(content)
    if event_type == "onMessageRemoved":
        params["DateRemoved"] = _DATE_REMOVED
    return params


def _participant_fields(event_type: str, sid: str) -> dict[str, str]:
    # An SMS participant: no Identity, no ProjectedAddress (Twilio leaves them null).
    params = {
        "ConversationSid": sid,
        "RoleSid": new_sid("RL"),
        "Attributes": '{"customer_id":"C-5310"}',
        "MessagingBinding.ProxyAddress": TWILIO_NUMBER,
        "MessagingBinding.Address": CUSTOMER_NUMBER,
        "MessagingBinding.Type": "SMS",
    }
    if event_type == "onParticipantAdd":
        return params
    params.update(ParticipantSid=new_sid("MB"), DateCreated=_ISO_TIME)
    if event_type != "onParticipantAdded":
        params["DateUpdated"] = _DATE_UPDATED
    if event_type == "onParticipantRemoved":
        params["DateRemoved"] = _DATE_REMOVED
    elif event_type == "onParticipantUpdated":
        params["LastReadMessageIndex"] = "3"
    return params


def _user_fields(event_type: str) -> dict[str, str]:
    params = {"ChatServiceSid": new_sid("IS"), "UserSid": new_sid("US")}
    if event_type in ("onUserAdded", "onUserUpdated"):
        params["DateCreated"] = _ISO_TIME
    if event_type in ("onUserUpdate", "onUserUpdated"):
        params["DateUpdated"] = _DATE_UPDATED
    params.update(
        Identity="agent-alice",
        RoleSid=new_sid("RL"),
        Attributes='{"team":"billing"}',
        FriendlyName="Alice Ng",
    )
    if event_type == "onUserUpdated":
        params.update(isOnline="true", isNotifiable="true")
    return params


def conversations_params(
    event_type: str = "onMessageAdded", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A Conversations webhook: a pre-action event (present tense, ``onMessageAdd``...,
    which can still be refused) or a post-action one (``onMessageAdded``...).
    *event_type* is the ``EventType``, one of :data:`CONVERSATIONS_PRE_EVENTS` and
    :data:`CONVERSATIONS_POST_EVENTS`, and picks the parameters that come with it;
    ``MessagingBinding.*`` names keep their dot, ``Attributes`` and ``Media`` are JSON
    text.  *sid* is the ``ConversationSid`` (unused by ``onConversationAdd`` and the
    user events, which have none).
    """
    _require(
        "Conversations event type", event_type, CONVERSATIONS_PRE_EVENTS + CONVERSATIONS_POST_EVENTS
    )
    sid = sid or new_sid("CH")
    params = {
        "AccountSid": ACCOUNT_SID,
        "EventType": event_type,
        "Source": "SDK",
        "ClientIdentity": "agent-alice",
    }
    if event_type == "onConversationStateUpdated":
        params.update(
            ChatServiceSid=new_sid("IS"),
            StateUpdated=_DATE_UPDATED,
            StateFrom="active",
            StateTo="inactive",
            ConversationSid=sid,
            Reason="TIMER",
            MessagingServiceSid=new_sid("MG"),
        )
    elif event_type == "onDeliveryUpdated":
        params.update(
            ConversationSid=sid,
            ChatServiceSid=new_sid("IS"),
            MessageSid=new_sid("IM"),
            DeliveryReceiptSid=new_sid("DY"),
            ChannelMessageSid=new_sid("SM"),
            ParticipantSid=new_sid("MB"),
            Status="delivered",
            ErrorCode="0",
            DateCreated=_ISO_TIME,
            DateUpdated=_DATE_UPDATED,
        )
    elif event_type.startswith("onConversation"):
        params.update(_conversation_fields(event_type, sid))
    elif event_type.startswith("onMessage"):
        params.update(_message_fields(event_type, sid))
    elif event_type.startswith("onParticipant"):
        params.update(_participant_fields(event_type, sid))
    else:
        params.update(_user_fields(event_type))
    return _apply(params, overrides)


# The first segment of an EventType: its ResourceType and the prefix of that resource's SIDs.
_TASKROUTER_RESOURCES = {
    "activity": ("Activity", "WA"),
    "reservation": ("Reservation", "WR"),
    "task": ("Task", "WT"),
    "task-channel": ("TaskChannel", "TC"),
    "task-queue": ("TaskQueue", "WQ"),
    "worker": ("Worker", "WK"),
    "workflow": ("Workflow", "WW"),
    "workspace": ("Workspace", "WS"),
}
_TASK_STATUS = {
    "reservation.created": "reserved",
    "reservation.accepted": "assigned",
    "reservation.canceled": "canceled",
    "reservation.completed": "completed",
    "reservation.wrapup": "wrapping",
    "task.canceled": "canceled",
    "task.wrapup": "wrapping",
    "task.completed": "completed",
    "task.transfer-initiated": "assigned",
    "task.transfer-attempt-failed": "assigned",
    "task.transfer-failed": "assigned",
    "task.transfer-canceled": "assigned",
    "task.transfer-completed": "assigned",
}
_TASK_ATTRIBUTES = '{"type":"support","from":"+15558675310"}'
_WORKER_ATTRIBUTES = '{"skills":["english","billing"]}'
_TASKROUTER_TIMESTAMP = "1699986600"  # 2023-11-14T18:30:00Z


def _taskrouter_groups(event_type: str) -> tuple[str, ...]:
    """The field groups a TaskRouter event carries, after the common ones."""
    resource, _, action = event_type.partition(".")
    if resource == "activity":
        return ("activity",)
    if resource == "reservation":
        worker = () if action == "failed" else ("worker",)
        return ("task", *worker, "queue", "reservation", "workflow")
    if resource == "task":
        return ("task", "workflow") if action == "created" else ("task", "queue", "workflow")
    if resource == "task-channel":
        return ("channel",)
    if resource == "task-queue":
        if action == "created":
            return ("queue", "target", "operating-unit")
        if action in ("deleted", "expression.updated"):
            return ("queue", "target")
        return ("task", "queue", "workflow")
    if resource == "worker":
        if action == "activity.update":
            return ("worker", "previous-activity")
        if action in ("capacity.update", "channel.availability.update"):
            return ("worker", "worker-channel")
        return ("worker",)
    if resource == "workflow":
        return (
            ("workflow",) if action in ("created", "updated", "deleted") else ("task", "workflow")
        )
    return ()


def _taskrouter_group(group: str, event_type: str, sids: Mapping[str, str]) -> dict[str, str]:
    if group == "task":
        fields = {
            "TaskSid": sids["Task"],
            "TaskAttributes": _TASK_ATTRIBUTES,
            "TaskAge": "12",
            "TaskPriority": "0",
            "TaskAssignmentStatus": _TASK_STATUS.get(event_type, "pending"),
        }
        if event_type == "task.canceled":
            fields["TaskCanceledReason"] = "Customer hung up"
        elif event_type == "task.completed":
            fields["TaskCompletedReason"] = "Replacement parcel sent"
        return fields
    if group == "worker":
        return {
            "WorkerSid": sids["Worker"],
            "WorkerName": "alice",
            "WorkerAttributes": _WORKER_ATTRIBUTES,
            "WorkerActivitySid": sids["Activity"],
            "WorkerActivityName": "Available",
            "WorkerVersion": "3",
            "OperatingUnitSid": sids["OperatingUnit"],
        }
    if group == "previous-activity":
        return {
            "WorkerTimeInPreviousActivity": "35",
            "WorkerTimeInPreviousActivityMs": "35120",
            "WorkerPreviousActivitySid": new_sid("WA"),
        }
    if group == "worker-channel":
        return {
            "WorkerChannelAvailable": "true",
            "WorkerChannelAvailableCapacity": "2",
            "WorkerChannelPreviousCapacity": "1",
            "TaskChannelSid": sids["TaskChannel"],
            "TaskChannelUniqueName": "chat",
            "WorkerChannelTaskCount": "0",
        }
    if group == "queue":
        return {"TaskQueueSid": sids["TaskQueue"], "TaskQueueName": "Billing - English"}
    if group == "target":
        return {"TaskQueueTargetExpression": 'skills HAS "billing"'}
    if group == "operating-unit":
        return {"OperatingUnitSid": sids["OperatingUnit"]}
    if group == "workflow":
        return {"WorkflowSid": sids["Workflow"], "WorkflowName": "Support routing"}
    if group == "reservation":
        return {"ReservationSid": sids["Reservation"]}
    if group == "activity":
        return {
            "ActivitySid": sids["Activity"],
            "ActivityName": "Available",
            "ActivityAvailable": "true",
        }
    if group == "channel":
        return {
            "TaskChannelSid": sids["TaskChannel"],
            "TaskChannelName": "Chat",
            "TaskChannelUniqueName": "chat",
            "TaskChannelOptimizedRouting": "false",
        }
    raise AssertionError(group)  # pragma: no cover


def taskrouter_params(
    event_type: str = "task.created", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A TaskRouter workspace event callback (``EventCallbackUrl``).  *event_type* is the
    ``EventType``, one of :data:`TASKROUTER_EVENT_TYPES`; its first segment gives the
    ``ResourceType`` and the other fields sent (task, worker, queue, workflow...).
    *sid* is the ``ResourceSid`` -- a task's ``WT``, a worker's ``WK``, and so on -- and
    the same SID appears in that resource's own field (``TaskSid``, ``WorkerSid``...).
    """
    _require("TaskRouter event type", event_type, TASKROUTER_EVENT_TYPES)
    resource_type = _TASKROUTER_RESOURCES[event_type.partition(".")[0]][0]
    sids = {name: new_sid(p) for name, p in _TASKROUTER_RESOURCES.values()}
    sids["OperatingUnit"] = new_sid("OU")
    resource_sid = sids[resource_type] = sid or sids[resource_type]
    action = event_type.partition(".")[2].replace(".", " ").replace("-", " ")
    params = {
        "EventType": event_type,
        "AccountSid": ACCOUNT_SID,
        "WorkspaceSid": sids["Workspace"],
        "WorkspaceName": "Acme Support",
        "EventDescription": f"{resource_type} {resource_sid} {action}",
        "ResourceType": resource_type,
        "ResourceSid": resource_sid,
        "Timestamp": _TASKROUTER_TIMESTAMP,
        "TimestampMs": _TASKROUTER_TIMESTAMP + "123",
    }
    for group in _taskrouter_groups(event_type):
        params.update(_taskrouter_group(group, event_type, sids))
    return _apply(params, overrides)


def assignment_params(
    event: str = "reservation", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A TaskRouter assignment callback (a workflow's ``AssignmentCallbackUrl``), sent when
    a reservation offers a task to a worker.  Unlike the event callback it has no
    ``EventType``.  *event* accepts only ``reservation``; *sid* is the ``ReservationSid``.
    """
    _require("assignment event", event, ("reservation",))
    params = {
        "Timestamp": _TASKROUTER_TIMESTAMP,
        "AccountSid": ACCOUNT_SID,
        "WorkspaceSid": new_sid("WS"),
        "WorkflowSid": new_sid("WW"),
        "TaskQueueSid": new_sid("WQ"),
        "WorkerSid": new_sid("WK"),
        "WorkerAttributes": _WORKER_ATTRIBUTES,
        "TaskSid": new_sid("WT"),
        "TaskAttributes": _TASK_ATTRIBUTES,
        "TaskAge": "12",
        "TaskPriority": "0",
        "ReservationSid": sid or new_sid("WR"),
    }
    return _apply(params, overrides)


def unknown_params(
    event: str = "room-created", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A webhook of a family twilio-trigger has no kind for: a Video room's status
    callback (*event* is its ``StatusCallbackEvent``), for a ``FallbackService``."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "RoomSid": sid or new_sid("RM"),
        "RoomName": "support-room-42",
        "RoomStatus": "completed" if event == "room-ended" else "in-progress",
        "RoomType": "group",
        "StatusCallbackEvent": event,
        "SequenceNumber": "0",
        "Timestamp": "2023-11-14T18:30:00.000Z",
    }
    return _apply(params, overrides)
