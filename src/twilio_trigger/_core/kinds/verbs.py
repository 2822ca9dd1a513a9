"""The rows of voice's TwiML verbs' results, and of the callbacks they make.

``TRANSCRIPTION``, ``GATHER_PARTIAL``, ``DIAL``, ``ENQUEUE``, ``DEQUEUE``,
``QUEUE_WAIT``, ``PAY_STATUS``, ``PAY``, ``RECORD``, ``GATHER`` and ``AMD``, in the
order ``KINDS`` tries them, with what they share: ``_DRIVES_CALL`` (a result that
drives the live call: TwiML, answered inline, never taken for a copy) and
``_ABOUT_CALL`` (a notification the call does not wait for).  Every row goes to a
``CallStatusService``; their event classes, each a ``CallStatusEvent``, are in
``events/verbs.py``.
"""

from __future__ import annotations

from typing import Any

from .. import payloads
from ..events import (
    DequeueEvent,
    DialEvent,
    EnqueueEvent,
    GatherEvent,
    GatherPartialEvent,
    MachineDetectionEvent,
    PayEvent,
    PayStatusEvent,
    QueueWaitEvent,
    RecordEvent,
    TranscriptionEvent,
)
from ..services import CallStatusService
from .kind import Kind, _always, _never

#: A verb's result drives a live call: TwiML, inline, never taken for a copy.
_DRIVES_CALL: dict[str, Any] = {
    "service_class": CallStatusService,
    "answer": "twiml",
    "waits_for_reply": _always,
    "reply_inline": True,
    "deduplicates": _never,
    "sid_prefixes": ("CA",),
    "excludes": ("CallbackSource",),
}
#: A voice notification: about a call, but the call does not wait for it.
_ABOUT_CALL: dict[str, Any] = {"service_class": CallStatusService, "sid_prefixes": ("CA",)}

TRANSCRIPTION = Kind(
    name="transcription",
    event_class=TranscriptionEvent,
    signals=(("TranscriptionSid",), ("TranscriptionStatus",)),
    route_by=("TranscriptionStatus",),
    sid_params=("TranscriptionSid",),
    events=("completed", "failed"),
    payload=payloads.transcription_params,
    callback="on_transcription",
    # A transcription's events (a real-time one's start, each part, its end) and
    # their numbers tell apart what shares its SID.
    key_params=("ErrorCode", "TranscriptionEvent", "SequenceId", "SequenceNumber"),
    **{**_ABOUT_CALL, "sid_prefixes": ("TR",)},
)

GATHER_PARTIAL = Kind(
    name="gather_partial",
    event_class=GatherPartialEvent,
    # Either part may be empty (all of it stable, or none yet): either tells.
    signals=(("UnstableSpeechResult",), ("StableSpeechResult",)),
    route_by=(),
    sid_params=("CallSid",),
    events=(),
    payload=payloads.gather_partial_params,
    callback="on_gather_partial",
    # Never taken for a copy: a second speech <Gather> in the call numbers its
    # partial results afresh, and a caller who says the same again ("yes") sends
    # the same parameters; nothing signed tells them apart.
    deduplicates=_never,
    key_params=(),
    **_ABOUT_CALL,
)

DIAL = Kind(
    name="dial",
    event_class=DialEvent,
    signals=(("DialCallStatus",),),
    route_by=("DialCallStatus",),
    sid_params=("CallSid",),
    events=("completed", "answered", "busy", "no-answer", "failed", "canceled"),
    payload=payloads.dial_params,
    callback="on_dial",
    **_DRIVES_CALL,
)

ENQUEUE = Kind(
    name="enqueue",
    event_class=EnqueueEvent,
    signals=(("QueueResult",),),
    route_by=("QueueResult",),
    sid_params=("CallSid",),
    events=(
        "bridged",
        "bridging-in-process",
        "error",
        "hangup",
        "leave",
        "redirected",
        "redirected-from-bridged",
        "queue-full",
        "system-error",
    ),
    payload=payloads.enqueue_params,
    callback="on_enqueue",
    **_DRIVES_CALL,
)

DEQUEUE = Kind(
    name="dequeue",
    event_class=DequeueEvent,
    signals=(("DequeingCallSid",),),
    route_by=(),
    sid_params=("CallSid",),
    events=(),
    payload=payloads.dequeue_params,
    callback="on_dequeue",
    **_DRIVES_CALL,
)

QUEUE_WAIT = Kind(
    name="queue_wait",
    event_class=QueueWaitEvent,
    signals=(("QueuePosition",), ("CurrentQueueSize",), ("AvgQueueTime",)),
    route_by=(),
    sid_params=("CallSid",),
    events=(),
    payload=payloads.queue_wait_params,
    callback="on_queue_wait",
    **_DRIVES_CALL,
)

PAY_STATUS = Kind(
    name="pay_status",
    event_class=PayStatusEvent,
    signals=(("For", "Attempt"),),
    route_by=("For",),
    sid_params=("CallSid",),
    events=(
        "payment-card-number",
        "expiration-date",
        "security-code",
        "postal-code",
        "bank-routing-number",
        "bank-account-number",
        "payment-processing",
    ),
    payload=payloads.pay_status_params,
    callback="on_pay_status",
    # Never taken for a copy: a second <Pay> in the call sends its stages again
    # from Attempt 1, with the same parameters as the first <Pay>'s.
    deduplicates=_never,
    key_params=(),
    **_ABOUT_CALL,
)

PAY = Kind(
    name="pay",
    event_class=PayEvent,
    signals=(("Result", "CallSid"),),
    route_by=("Result",),
    sid_params=("CallSid",),
    events=(
        "success",
        "too-many-failed-attempts",
        "payment-connector-error",
        "caller-interrupted-with-star",
        "caller-hung-up",
        "validation-error",
        "internal-error",
    ),
    payload=payloads.pay_params,
    callback="on_pay",
    **_DRIVES_CALL,
)

RECORD = Kind(
    name="record",
    event_class=RecordEvent,
    # A call's status callback with Record=true has a RecordingUrl too, but
    # also a CallbackSource.
    signals=(("RecordingUrl", "RecordingDuration", "CallSid"),),
    route_by=(),
    sid_params=("CallSid",),
    events=(),
    payload=payloads.record_params,
    callback="on_record",
    at_path=(("CallSid",),),
    **{
        **_DRIVES_CALL,
        # The fact sheet's disambiguation: what else carries a RecordingUrl.
        "excludes": (
            "CallbackSource",
            "RecordingStatus",
            "DialCallStatus",
            "TranscriptionSid",
            "TranscriptionStatus",
        ),
    },
)

GATHER = Kind(
    name="gather",
    event_class=GatherEvent,
    # A caller who pressed only the finish key sends an empty Digits, and the
    # key in FinishedOnKey.
    signals=(("Digits", "CallSid"), ("SpeechResult", "CallSid"), ("FinishedOnKey", "CallSid")),
    route_by=(),
    sid_params=("CallSid",),
    events=(),
    payload=payloads.gather_params,
    callback="on_gather",
    # With actionOnEmptyResult, nothing entered: only its path tells.
    at_path=(("CallSid",),),
    **{
        **_DRIVES_CALL,
        # A <Record> action has Digits too, with a RecordingUrl; the other
        # verbs' results are told by their own parameters.
        "excludes": (
            "CallbackSource",
            "RecordingUrl",
            "DialCallStatus",
            "QueueResult",
            "TranscriptionSid",
            "UnstableSpeechResult",
            "StableSpeechResult",
        ),
    },
)

AMD = Kind(
    name="amd",
    event_class=MachineDetectionEvent,
    # The call's own TwiML request carries AnsweredBy too (synchronous
    # detection), with its CallStatus.
    signals=(("AnsweredBy", "MachineDetectionDuration"),),
    route_by=("AnsweredBy",),
    sid_params=("CallSid",),
    events=(
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    ),
    payload=payloads.machine_detection_params,
    callback="on_machine_detection",
    excludes=("CallbackSource", "CallStatus"),
    # At its own path (the AsyncAmdStatusCallback), whether or not the result
    # carries the call's CallStatus: Twilio's list of its parameters is not clear.
    at_path=(("AnsweredBy",),),
    at_path_excludes=("CallbackSource",),
    key_params=(),
    cloudevent_types=("com.twilio.voice.status-callback.amd.",),
    **_ABOUT_CALL,
)
