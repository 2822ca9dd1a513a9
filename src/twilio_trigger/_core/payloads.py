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

__all__ = [
    "ACCOUNT_SID",
    "CUSTOMER_NUMBER",
    "TWILIO_NUMBER",
    "call_cloudevent",
    "call_event",
    "call_status_params",
    "cloudevent",
    "cloudevent_for",
    "debugger_params",
    "inbound_call_params",
    "inbound_message_cloudevent",
    "inbound_sms_params",
    "message_cloudevent",
    "new_sid",
    "recording_event",
    "recording_status_params",
    "sms_event",
    "sms_status_params",
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
