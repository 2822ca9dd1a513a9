"""The rows of the status callbacks of messages, recordings and calls.

``SMS``, ``RECORDING`` and ``CALL``, with the message and call statuses Twilio
documents, their ranks in a SID's order, and which of their requests wait for a
reply (an inbound message, a call's own request); their event classes are in
``events/status.py``.  ``KINDS`` tries ``CALL`` late, after the verbs' results that
carry its ``CallStatus``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import payloads
from ..events import CallStatusEvent, RecordingStatusEvent, SmsStatusChangeEvent, TwilioEvent
from ..services import CallStatusService, RecordingStatusService, SmsStatusService
from .kind import Kind


def _sms_waits(event: TwilioEvent) -> bool:
    # An inbound message may be answered with messages.
    return (event.status or "").strip().lower() == "received"


def _states_a_status_or_none(first: Mapping[str, str]) -> bool:
    # A message whose status is named but blank is no inbound message's: its
    # status is not implied (and no other group of the row holds for it).
    return bool(first.get("MessageStatus") or first.get("SmsStatus")) or (
        "MessageStatus" not in first and "SmsStatus" not in first
    )


def _call_waits(event: TwilioEvent) -> bool:
    # A voice request that is not a status callback (no CallbackSource: an
    # incoming call, an answered outbound call) must say what the call does.
    return not event.get("CallbackSource")


def _is_status_callback(event: TwilioEvent) -> bool:
    # A call's status callbacks are deliveries Twilio may send twice; its
    # requests for TwiML are not: a <Redirect> back to the same URL (a hold
    # loop, a menu asked again) repeats SID, status, path and query, and must
    # run its callback each time, as a verb's result does.  Nor are they placed
    # in the call's order: the callbacks are numbered from 0 (SequenceNumber)
    # among themselves, a call's `completed` often 0, which a request's status
    # rank (ringing: 1) would have made stale.
    return not _call_waits(event)


#: Message statuses, in Twilio's spelling: the nine the first version of this
#: package knew, then those Twilio added.
_MESSAGE_STATUSES = (
    "accepted", "queued", "sending", "sent", "failed", "delivered", "undelivered",
    "receiving", "received", "scheduled", "canceled", "read", "partially_delivered",
)  # fmt: skip
_MESSAGE_RANKS = {
    "accepted": 0, "scheduled": 0, "receiving": 0,
    "queued": 1, "received": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "partially_delivered": 4,
    "read": 5,
}  # fmt: skip
_CALL_STATUSES = (
    "queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
    "no-answer", "canceled",
)  # fmt: skip
#: Used only when a call's status callback has no SequenceNumber.
_CALL_RANKS = {
    "queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2,
    "completed": 3, "busy": 3, "failed": 3, "no-answer": 3, "canceled": 3,
}  # fmt: skip


SMS = Kind(
    name="sms",
    event_class=SmsStatusChangeEvent,
    service_class=SmsStatusService,
    # An inbound message states SmsStatus=received in practice, but Twilio's own
    # list of its parameters has no status: one with NumMedia (every inbound
    # message has it, "0" without media) and no status is received.
    signals=(("MessageStatus",), ("SmsStatus",), ("MessageSid", "NumMedia")),
    implied_status=(("MessageSid", "NumMedia"), "received"),
    test=_states_a_status_or_none,
    # A request with a CallStatus too is a call's: CallStatus decides before
    # MessageStatus, whichever the request lists first.
    yields_to=("CallStatus",),
    route_by=("MessageStatus", "SmsStatus"),
    sid_params=("MessageSid", "SmsSid", "SmsMessageSid"),
    events=_MESSAGE_STATUSES,
    sid_prefixes=("SM", "MM"),
    payload=payloads.sms_status_params,
    ranks=_MESSAGE_RANKS,
    answer="twiml",
    waits_for_reply=_sms_waits,
    text_reply="message",
    cloudevent_types=(
        "com.twilio.messaging.message.",
        "com.twilio.messaging.inbound-message.received",
    ),
)

RECORDING = Kind(
    name="recording",
    event_class=RecordingStatusEvent,
    service_class=RecordingStatusService,
    signals=(("RecordingStatus",),),
    route_by=("RecordingStatus",),
    sid_params=("RecordingSid",),
    # failed: a <Record> recording's, as Twilio's table of that verb lists.
    events=("in-progress", "completed", "absent", "failed"),
    sid_prefixes=("RE",),
    payload=payloads.recording_status_params,
    ranks={"in-progress": 0, "completed": 1, "absent": 1, "failed": 1},
)

CALL = Kind(
    name="call",
    event_class=CallStatusEvent,
    service_class=CallStatusService,
    signals=(("CallStatus",),),
    route_by=("CallStatus",),
    sid_params=("CallSid",),
    events=_CALL_STATUSES,
    sid_prefixes=("CA",),
    payload=payloads.call_status_params,
    variants={"inbound": payloads.inbound_call_params},
    ranks=_CALL_RANKS,
    sequence_param="SequenceNumber",
    ordered=_is_status_callback,
    answer="twiml",
    waits_for_reply=_call_waits,
    text_reply="twiml",
    reply_inline=True,
    deduplicates=_is_status_callback,
    broad=True,
    cloudevent_types=(
        "com.twilio.voice.status-callback.call.",
        "com.twilio.voice.webhook.status-callback.call.",
    ),
)
