"""Status callbacks and the webhooks they follow: a message's status and an inbound
message; a call's status and an incoming call; a recording's status; and the typed
events of the three.  These are the payloads Programmable Messaging and Voice send
about a message, a call or a recording itself (the event classes of
:mod:`..events.status`, the rows of ``sms``, ``call`` and ``recording``); a TwiML
verb's callbacks start from the incoming call's parameters defined here
(:mod:`.verbs`), and Event Streams' CloudEvents of messages and calls from these
(:mod:`.event_streams`).
"""

from __future__ import annotations

from ..events import CallStatusEvent, RecordingStatusEvent, SmsStatusChangeEvent
from ._common import ACCOUNT_SID, CUSTOMER_NUMBER, TWILIO_NUMBER, _apply, _geography, new_sid

# Error codes Twilio documents for failed and undelivered messages.
_MESSAGE_ERRORS = {"failed": "30008", "undelivered": "30003"}


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


def sms_event(
    status: str = "delivered", *, sid: str | None = None, **overrides: object
) -> SmsStatusChangeEvent:
    """A :class:`SmsStatusChangeEvent` with realistic parameters, to call a callback directly."""
    return SmsStatusChangeEvent(sms_status_params(status, sid=sid, **overrides))


_CALL_SEQUENCE = {
    "queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2, "completed": 3,
    "busy": 2, "failed": 1, "no-answer": 2, "canceled": 2,
}  # fmt: skip
_CALL_SIP_CODES = {"completed": 200, "busy": 486, "failed": 404, "no-answer": 487, "canceled": 487}


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
