"""Recognising a request's kind (``_core/kinds/`` ``recognise``): every row of the fact
sheet's table of shared parameters that cause misrouting, empty values, the ``excludes``
and ``test`` rules, the kinds preferred at a service's path and the claim by path alone;
and the kinds of each service base class.

Fact sheet: /work/shared/reference/twilio-webhook-families.md, §0 "Shared parameters that
cause misrouting" (and §1-§5 for each family's parameters).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from twilio_trigger import (
    CallStatusService,
    ConferenceService,
    ConversationsService,
    DebuggerService,
    FallbackService,
    RecordingStatusService,
    ServiceError,
    SmsStatusService,
    TaskRouterService,
)
from twilio_trigger._core.kinds import (
    KINDS,
    kind_named,
    kind_of_service,
    kinds_of_service,
    recognise,
    service_base,
)
from twilio_trigger._core.services import ServiceBase
from twilio_trigger.testing import (
    assignment_params,
    call_status_params,
    conference_params,
    conversations_params,
    debugger_params,
    dequeue_params,
    dial_params,
    enqueue_params,
    gather_params,
    gather_partial_params,
    inbound_call_params,
    machine_detection_params,
    pay_params,
    pay_status_params,
    queue_wait_params,
    record_params,
    recording_status_params,
    sms_status_params,
    taskrouter_params,
    transcription_params,
    unknown_params,
)

CA = "CA" + "0" * 32
CA2 = "CA" + "1" * 32
REC_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
#: What every TwiML request on a live call carries.
LIVE = {"CallSid": CA, "AccountSid": "AC1", "From": "+15558675310", "To": "+14155550143"}
PROGRESS = {"CallbackSource": "call-progress-events"}


def name_of(first: dict[str, str], prefer: Sequence[str] = ()) -> str | None:
    """The name of the kind recognised (``None``: no kind, the fallback's)."""
    kind = recognise(first, tuple(kind_named(name) for name in prefer))
    return None if kind is None else kind.name


# -- the fact sheet's §0 table, row by row: (parameters, the kind they are) --------------------
MISROUTING: list[tuple[str, dict[str, str], str | None]] = [
    # EventType: Conversations, TaskRouter, messaging status callbacks.
    (
        "EventType onMessageAdded",
        {"EventType": "onMessageAdded", "ConversationSid": "CH1"},
        "conversations",
    ),
    (
        "EventType onMessageAdd",
        {"EventType": "onMessageAdd", "ConversationSid": "CH1"},
        "conversations",
    ),
    (
        "EventType task.created",
        {"EventType": "task.created", "WorkspaceSid": "WS1", "ResourceType": "Task"},
        "taskrouter",
    ),
    (
        "EventType READ message",
        {"EventType": "READ", "MessageSid": "SM1", "MessageStatus": "read"},
        "sms",
    ),
    (
        "EventType DELIVERED message",
        {"EventType": "DELIVERED", "MessageSid": "SM1", "MessageStatus": "delivered"},
        "sms",
    ),
    (
        "EventType UNDELIVERED message",
        {
            "EventType": "UNDELIVERED",
            "MessageSid": "SM1",
            "MessageStatus": "undelivered",
            "ErrorCode": "30003",
        },
        "sms",
    ),
    (
        "EventType READ with SmsStatus",
        {"EventType": "READ", "SmsSid": "SM1", "SmsStatus": "read"},
        "sms",
    ),
    # StatusCallbackEvent: conferences, Video rooms, <Connect><Conversation>.
    (
        "conference participant-join",
        {
            "ConferenceSid": "CF1",
            "StatusCallbackEvent": "participant-join",
            "CallSid": CA,
            "SequenceNumber": "1",
        },
        "conference",
    ),
    (
        "conference conference-end",
        {"ConferenceSid": "CF1", "StatusCallbackEvent": "conference-end", "SequenceNumber": "5"},
        "conference",
    ),
    (
        "video room-created",
        {
            "RoomSid": "RM1",
            "StatusCallbackEvent": "room-created",
            "RoomName": "r",
            "RoomStatus": "in-progress",
            "SequenceNumber": "0",
        },
        None,
    ),
    (
        "video participant-connected",
        {
            "RoomSid": "RM1",
            "StatusCallbackEvent": "participant-connected",
            "ParticipantSid": "PA1",
            "SequenceNumber": "3",
        },
        None,
    ),
    (
        "video track-added",
        {"RoomSid": "RM1", "StatusCallbackEvent": "track-added", "TrackSid": "MT1"},
        None,
    ),
    (
        "connect conversation call-initiated",
        {**LIVE, "StatusCallbackEvent": "call-initiated", "CallStatus": "initiated", **PROGRESS},
        "call",
    ),
    # CallStatus=in-progress: every live-call request, the verbs' results, child legs.
    (
        "live call TwiML request",
        {**LIVE, "CallStatus": "in-progress", "Direction": "inbound"},
        "call",
    ),
    (
        "gather digits while in progress",
        {**LIVE, "CallStatus": "in-progress", "Digits": "1"},
        "gather",
    ),
    (
        "gather speech while in progress",
        {**LIVE, "CallStatus": "in-progress", "SpeechResult": "yes", "Confidence": "0.9"},
        "gather",
    ),
    (
        "child leg status callback",
        {
            **LIVE,
            "CallStatus": "in-progress",
            "ParentCallSid": CA2,
            "Direction": "outbound-dial",
            **PROGRESS,
        },
        "call",
    ),
    (
        "status callback with digits",
        {**LIVE, "CallStatus": "completed", "Digits": "1", **PROGRESS},
        "call",
    ),
    # Digits: Gather action, Record action (Digits=hangup).
    (
        "gather action digits",
        {**LIVE, "CallStatus": "in-progress", "Digits": "1234", "FinishedOnKey": "#"},
        "gather",
    ),
    (
        "record action hangup",
        {
            **LIVE,
            "CallStatus": "completed",
            "Digits": "hangup",
            "RecordingUrl": REC_URL,
            "RecordingDuration": "14",
        },
        "record",
    ),
    (
        "record action key",
        {
            **LIVE,
            "CallStatus": "in-progress",
            "Digits": "#",
            "RecordingUrl": REC_URL,
            "RecordingDuration": "3",
            "RecordingSid": "RE1",
        },
        "record",
    ),
    # RecordingUrl: Record action, Dial action with record, child leg completed, Record=true
    # status callback, recording status, transcription, legacy conference-record-end.
    (
        "dial action with record",
        {
            **LIVE,
            "CallStatus": "in-progress",
            "DialCallStatus": "completed",
            "DialCallSid": CA2,
            "RecordingUrl": REC_URL,
            "RecordingDuration": "32",
        },
        "dial",
    ),
    (
        "child leg completed with recording",
        {
            **LIVE,
            "CallStatus": "completed",
            "ParentCallSid": CA2,
            "RecordingUrl": REC_URL,
            "RecordingDuration": "30",
            "RecordingSid": "RE1",
            **PROGRESS,
        },
        "call",
    ),
    (
        "call status callback Record=true",
        {
            **LIVE,
            "CallStatus": "completed",
            "RecordingUrl": REC_URL,
            "RecordingDuration": "30",
            **PROGRESS,
        },
        "call",
    ),
    (
        "recording status callback",
        {
            "CallSid": CA,
            "RecordingSid": "RE1",
            "RecordingUrl": REC_URL,
            "RecordingStatus": "completed",
            "RecordingDuration": "14",
            "RecordingSource": "RecordVerb",
        },
        "recording",
    ),
    (
        "conference recording status",
        {
            "ConferenceSid": "CF1",
            "RecordingSid": "RE1",
            "RecordingUrl": REC_URL,
            "RecordingStatus": "completed",
            "RecordingSource": "Conference",
        },
        "recording",
    ),
    (
        "transcribe callback",
        {
            **LIVE,
            "CallStatus": "completed",
            "TranscriptionSid": "TR1",
            "TranscriptionStatus": "completed",
            "TranscriptionText": "hi",
            "RecordingSid": "RE1",
            "RecordingUrl": REC_URL,
        },
        "transcription",
    ),
    (
        "transcribe callback failed",
        {
            **LIVE,
            "TranscriptionSid": "TR1",
            "TranscriptionStatus": "failed",
            "RecordingUrl": REC_URL,
        },
        "transcription",
    ),
    (
        "legacy conference-record-end",
        {
            "ConferenceSid": "CF1",
            "EventName": "conference-record-end",
            "RecordingUrl": REC_URL,
            "Duration": "60",
            "RecordingFileSize": "1000",
        },
        None,
    ),
    # AnsweredBy: sync AMD, call status callbacks, async AMD, <Number amdStatusCallback>.
    (
        "sync AMD TwiML request",
        {
            **LIVE,
            "CallStatus": "in-progress",
            "AnsweredBy": "human",
            "MachineDetectionDuration": "2100",
        },
        "call",
    ),
    (
        "status callback with AnsweredBy",
        {**LIVE, "CallStatus": "completed", "AnsweredBy": "machine_start", **PROGRESS},
        "call",
    ),
    (
        "async AMD callback",
        {
            "CallSid": CA,
            "AccountSid": "AC1",
            "AnsweredBy": "machine_end_beep",
            "MachineDetectionDuration": "4210",
        },
        "amd",
    ),
    (
        "async AMD with a status callback source",
        {"CallSid": CA, "AnsweredBy": "human", "MachineDetectionDuration": "900", **PROGRESS},
        None,
    ),
    ("AnsweredBy alone", {"CallSid": CA, "AnsweredBy": "human"}, None),
    # SequenceNumber: call status, conference, Video room, Gather partial.
    (
        "call status with sequence",
        {**LIVE, "CallStatus": "ringing", "SequenceNumber": "1", **PROGRESS},
        "call",
    ),
    (
        "gather partial with sequence",
        {
            **LIVE,
            "CallStatus": "in-progress",
            "UnstableSpeechResult": "I'd like",
            "StableSpeechResult": "I'd",
            "SequenceNumber": "2",
        },
        "gather_partial",
    ),
    # Timestamp: voice and conference (RFC 2822), debugger (ISO), TaskRouter, assignment.
    (
        "debugger with timestamp",
        {
            "Sid": "NO1",
            "Level": "ERROR",
            "PayloadType": "application/json",
            "Payload": "{}",
            "Timestamp": "2020-01-01T23:28:54Z",
        },
        "debugger",
    ),
    (
        "taskrouter with timestamp",
        {"EventType": "worker.activity.update", "WorkspaceSid": "WS1", "Timestamp": "1699986600"},
        "taskrouter",
    ),
    (
        "assignment with timestamp",
        {
            "ReservationSid": "WR1",
            "WorkerAttributes": "{}",
            "TaskAttributes": "{}",
            "Timestamp": "1699986600",
        },
        "assignment",
    ),
    # The other signals of the summary table.
    ("dial action", {**LIVE, "CallStatus": "in-progress", "DialCallStatus": "no-answer"}, "dial"),
    (
        "enqueue action",
        {**LIVE, "CallStatus": "in-progress", "QueueResult": "hangup", "QueueSid": "QU1"},
        "enqueue",
    ),
    (
        "enqueue waitUrl position",
        {**LIVE, "CallStatus": "in-progress", "QueuePosition": "2", "QueueSid": "QU1"},
        "queue_wait",
    ),
    (
        "enqueue waitUrl size",
        {**LIVE, "CallStatus": "in-progress", "CurrentQueueSize": "4"},
        "queue_wait",
    ),
    (
        "enqueue waitUrl average",
        {**LIVE, "CallStatus": "in-progress", "AvgQueueTime": "40"},
        "queue_wait",
    ),
    (
        "queue url dequeue",
        {
            **LIVE,
            "CallStatus": "in-progress",
            "QueueSid": "QU1",
            "QueueTime": "9",
            "DequeingCallSid": CA2,
        },
        "dequeue",
    ),
    (
        "pay action",
        {
            **LIVE,
            "CallStatus": "in-progress",
            "Result": "success",
            "PaymentConfirmationCode": "ch_1",
        },
        "pay",
    ),
    (
        "pay status callback",
        {"CallSid": CA, "AccountSid": "AC1", "For": "payment-card-number", "Attempt": "1"},
        "pay_status",
    ),
    (
        "pay status with result",
        {"CallSid": CA, "For": "payment-processing", "Attempt": "2", "Result": "success"},
        "pay_status",
    ),
    (
        "assignment callback",
        {
            "ReservationSid": "WR1",
            "WorkerAttributes": "{}",
            "TaskAttributes": "{}",
            "WorkspaceSid": "WS1",
        },
        "assignment",
    ),
    (
        "reservation event callback",
        {
            "EventType": "reservation.created",
            "WorkspaceSid": "WS1",
            "ReservationSid": "WR1",
            "WorkerAttributes": "{}",
            "TaskAttributes": "{}",
        },
        "taskrouter",
    ),
]


@pytest.mark.parametrize(
    ("first", "expected"),
    [(first, expected) for _, first, expected in MISROUTING],
    ids=[label for label, _, _ in MISROUTING],
)
def test_each_row_of_the_misrouting_table(first: dict[str, str], expected: str | None) -> None:
    assert name_of(first) == expected


#: Each kind's own payload factory: recognised as that kind, without a path.
FACTORIES: list[tuple[str, dict[str, str]]] = [
    ("gather", gather_params("digits")),
    ("gather", gather_params("speech")),
    ("call", gather_params("empty")),  # only a path tells an empty Gather result
    ("gather_partial", gather_partial_params()),
    ("transcription", transcription_params("completed")),
    ("transcription", transcription_params("failed")),
    ("dial", dial_params("answered")),
    ("record", record_params("completed")),
    ("record", record_params("hangup")),
    ("enqueue", enqueue_params("queue-full")),
    ("queue_wait", queue_wait_params("1")),
    ("dequeue", dequeue_params()),
    ("pay", pay_params("success")),
    ("pay", pay_params("validation-error")),
    ("pay_status", pay_status_params("payment-processing")),
    ("amd", machine_detection_params("fax")),
    ("conference", conference_params("announcement-end")),
    ("conversations", conversations_params("onDeliveryUpdated")),
    ("conversations", conversations_params("onUserUpdate")),
    ("taskrouter", taskrouter_params("task-queue.expression.updated")),
    ("assignment", assignment_params()),
    ("debugger", debugger_params("warning")),
    ("recording", recording_status_params("absent")),
    ("call", call_status_params("in-progress")),
    ("call", inbound_call_params("ringing")),
    ("sms", sms_status_params("read")),
]


@pytest.mark.parametrize(
    ("kind", "first"), FACTORIES, ids=[f"{i}-{kind}" for i, (kind, _) in enumerate(FACTORIES)]
)
def test_each_factorys_payload_is_recognised_as_its_kind(kind: str, first: dict[str, str]) -> None:
    assert name_of(first) == kind


def test_an_unknown_family_is_no_kind() -> None:
    assert name_of(unknown_params("room-ended")) is None
    assert name_of({}) is None
    assert name_of({"AccountSid": "AC1", "CallSid": CA}) is None


# -- empty values count as absent --------------------------------------------------------------
EMPTIES: list[tuple[str, dict[str, str], str | None]] = [
    (
        "empty Digits",
        {**LIVE, "CallStatus": "in-progress", "Digits": "", "SpeechResult": ""},
        "call",
    ),
    ("empty DialCallStatus", {**LIVE, "CallStatus": "in-progress", "DialCallStatus": ""}, "call"),
    ("empty RecordingStatus", {**LIVE, "CallStatus": "completed", "RecordingStatus": ""}, "call"),
    ("empty ConferenceSid", {"ConferenceSid": "", "StatusCallbackEvent": "participant-join"}, None),
    ("empty StatusCallbackEvent", {"ConferenceSid": "CF1", "StatusCallbackEvent": ""}, None),
    ("empty CallSid", {"CallSid": "", "Digits": "1"}, None),
    (
        "empty RecordingDuration",
        {**LIVE, "CallStatus": "in-progress", "RecordingUrl": REC_URL, "RecordingDuration": ""},
        "call",
    ),
    (
        "empty QueueResult",
        {**LIVE, "CallStatus": "in-progress", "QueueResult": "", "QueuePosition": ""},
        "call",
    ),
    ("empty Attempt", {"CallSid": CA, "For": "postal-code", "Attempt": ""}, None),
    ("empty Result", {**LIVE, "CallStatus": "in-progress", "Result": ""}, "call"),
    (
        "empty MachineDetectionDuration",
        {"CallSid": CA, "AnsweredBy": "human", "MachineDetectionDuration": ""},
        None,
    ),
    ("empty EventType", {"EventType": "", "WorkspaceSid": "WS1", "ConversationSid": "CH1"}, None),
    ("empty WorkspaceSid", {"EventType": "task.created", "WorkspaceSid": ""}, None),
    ("empty Payload", {"Level": "ERROR", "PayloadType": "application/json", "Payload": ""}, None),
    (
        "empty TaskAttributes",
        {"ReservationSid": "WR1", "WorkerAttributes": "{}", "TaskAttributes": ""},
        None,
    ),
    (
        "empty UnstableSpeechResult",
        {**LIVE, "CallStatus": "in-progress", "UnstableSpeechResult": ""},
        "call",
    ),
    (
        "empty TranscriptionSid",
        {**LIVE, "CallStatus": "completed", "TranscriptionSid": "", "TranscriptionStatus": ""},
        "call",
    ),
    ("empty DequeingCallSid", {**LIVE, "CallStatus": "in-progress", "DequeingCallSid": ""}, "call"),
    (
        "empty MessageStatus and SmsStatus",
        {"MessageSid": "SM1", "MessageStatus": "", "SmsStatus": ""},
        None,
    ),
    # An empty excluding parameter excludes nothing.
    (
        "empty CallbackSource",
        {**LIVE, "CallStatus": "in-progress", "Digits": "1", "CallbackSource": ""},
        "gather",
    ),
    (
        "empty CallbackSource on a record",
        {**LIVE, "RecordingUrl": REC_URL, "RecordingDuration": "3", "CallbackSource": ""},
        "record",
    ),
    (
        "empty CallStatus on async AMD",
        {"CallSid": CA, "AnsweredBy": "human", "MachineDetectionDuration": "1", "CallStatus": ""},
        "amd",
    ),
    (
        "empty EventType on an assignment",
        {
            "ReservationSid": "WR1",
            "WorkerAttributes": "{}",
            "TaskAttributes": "{}",
            "EventType": "",
        },
        "assignment",
    ),
]


@pytest.mark.parametrize(
    ("first", "expected"),
    [(first, expected) for _, first, expected in EMPTIES],
    ids=[label for label, _, _ in EMPTIES],
)
def test_empty_values_count_as_absent(first: dict[str, str], expected: str | None) -> None:
    assert name_of(first) == expected
    assert name_of(first, [kind.name for kind in KINDS]) == expected


# -- excludes and test -------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["call-progress-events", "anything"])
@pytest.mark.parametrize(
    ("verb", "first"),
    [
        ("gather", {**LIVE, "CallStatus": "in-progress", "Digits": "1"}),
        ("gather", {**LIVE, "CallStatus": "in-progress", "SpeechResult": "yes"}),
        (
            "record",
            {**LIVE, "CallStatus": "completed", "RecordingUrl": REC_URL, "RecordingDuration": "3"},
        ),
        ("dial", {**LIVE, "CallStatus": "completed", "DialCallStatus": "busy"}),
        ("enqueue", {**LIVE, "CallStatus": "completed", "QueueResult": "hangup"}),
        ("dequeue", {**LIVE, "CallStatus": "completed", "DequeingCallSid": CA2}),
        ("queue_wait", {**LIVE, "CallStatus": "completed", "QueuePosition": "1"}),
        ("pay", {**LIVE, "CallStatus": "completed", "Result": "success"}),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_callback_source_makes_a_verbs_result_a_call_status_callback(
    verb: str, first: dict[str, str], source: str
) -> None:
    assert name_of(first) == verb
    assert name_of({**first, "CallbackSource": source}) == "call"
    # Not even at a path whose service has only the verb's callback.
    assert name_of({**first, "CallbackSource": source}, [verb]) == "call"
    assert name_of({**first, "CallbackSource": source}, [verb, "call"]) == "call"


def test_the_amd_kind_is_excluded_by_a_call_status_or_a_callback_source() -> None:
    amd = {"CallSid": CA, "AnsweredBy": "human", "MachineDetectionDuration": "1200"}
    assert name_of(amd) == "amd"
    assert name_of({**amd, "CallStatus": "in-progress"}) == "call"
    assert name_of({**amd, **PROGRESS}) is None
    assert name_of({**amd, "CallStatus": "completed", **PROGRESS}) == "call"


def test_an_event_type_on_an_assignment_makes_it_no_assignment() -> None:
    first = {"ReservationSid": "WR1", "WorkerAttributes": "{}", "TaskAttributes": "{}"}
    assert name_of(first) == "assignment"
    assert name_of({**first, "EventType": "onMessageAdded"}) == "conversations"
    assert name_of({**first, "EventType": "reservation.created"}) is None  # no WorkspaceSid
    assert name_of({**first, "EventType": "READ"}) is None


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("onMessageAdded", "conversations"),
        ("onMessageAdd", "conversations"),
        ("onConversationStateUpdated", "conversations"),
        ("onDeliveryUpdated", "conversations"),
        ("onX", "conversations"),  # the shape decides, not the list
        ("onmessageadded", None),
        ("OnMessageAdded", None),
        ("on", None),
        ("on1Thing", None),
        ("message.added", None),
        ("READ", None),
        ("DELIVERED", None),
    ],
)
def test_the_conversations_test_is_the_event_types_shape(
    event_type: str, expected: str | None
) -> None:
    assert name_of({"EventType": event_type, "ConversationSid": "CH1"}) == expected


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ({"EventType": "task.created", "WorkspaceSid": "WS1"}, "taskrouter"),
        ({"EventType": "task-queue.expression.updated", "WorkspaceSid": "WS1"}, "taskrouter"),
        ({"EventType": "anything.with.a.dot", "WorkspaceSid": "WS1"}, "taskrouter"),
        ({"EventType": "task.created"}, None),
        ({"EventType": "taskcreated", "WorkspaceSid": "WS1"}, None),
        ({"EventType": "READ", "WorkspaceSid": "WS1"}, None),
        ({"EventType": "READ", "MessageStatus": "read", "WorkspaceSid": "WS1"}, "sms"),
    ],
    ids=lambda value: None,
)
def test_the_taskrouter_test_needs_a_dotted_event_type_and_a_workspace(
    first: dict[str, str], expected: str | None
) -> None:
    assert name_of(first) == expected


def test_a_message_status_callback_with_an_event_type_stays_a_message() -> None:
    read = sms_status_params("read", EventType="READ")
    assert name_of(read) == "sms"
    lower = sms_status_params("delivered", EventType="onmessageadded")
    assert name_of(lower) == "sms"


# -- prefer: the kinds whose callbacks a path's service defines --------------------------------
def test_a_preferred_kind_is_tried_first() -> None:
    both = {**LIVE, "CallStatus": "in-progress", "RecordingStatus": "completed", "Digits": "1"}
    assert name_of(both) == "recording"
    assert name_of(both, ["gather"]) == "gather"
    assert name_of(both, ["call"]) == "call"  # a recording is another service's
    assert name_of(both, ["call", "gather"]) == "gather"  # gather claims before broad call
    message_and_call = {"CallStatus": "busy", "MessageStatus": "sent"}
    assert name_of(message_and_call) == "call"
    assert name_of(message_and_call, ["sms"]) == "sms"


def test_a_preferred_kind_that_does_not_recognise_the_request_is_passed_over() -> None:
    ringing = {**LIVE, "CallStatus": "ringing"}
    assert name_of(ringing, ["sms"]) == "call"
    assert name_of(ringing, ["conference", "conversations"]) == "call"
    assert name_of({"MessageStatus": "sent"}, ["call", "gather"]) == "sms"
    assert name_of({}, [kind.name for kind in KINDS]) is None


EMPTY_GATHER = {**LIVE, "CallStatus": "in-progress", "Direction": "inbound"}


@pytest.mark.parametrize(
    "prefer",
    [["gather"], ["gather", "call"], ["call", "gather"], ["gather", "call", "sms"]],
    ids=str,
)
def test_a_single_claimer_takes_a_request_by_path_before_a_broad_kind(prefer: list[str]) -> None:
    assert name_of(EMPTY_GATHER) == "call"
    assert name_of(EMPTY_GATHER, prefer) == "gather"
    assert name_of(gather_params("empty"), prefer) == "gather"


@pytest.mark.parametrize("prefer", [["record"], ["record", "call"], ["call", "record"]], ids=str)
def test_a_record_path_claims_a_request_without_a_recording(prefer: list[str]) -> None:
    assert name_of(EMPTY_GATHER, prefer) == "record"
    ended = {**LIVE, "CallStatus": "completed"}
    assert name_of(ended) == "call"
    assert name_of(ended, prefer) == "record"


def test_an_amd_path_claims_a_request_with_answered_by_alone() -> None:
    answered = {"CallSid": CA, "AnsweredBy": "human"}
    assert name_of(answered) is None
    assert name_of(answered, ["amd"]) == "amd"
    assert name_of(answered, ["amd", "call"]) == "amd"
    assert name_of({"CallSid": CA}, ["amd"]) is None  # no AnsweredBy: nothing to claim
    assert name_of({"CallSid": CA, "CallStatus": "in-progress"}, ["amd", "call"]) == "call"


def test_a_non_broad_preferred_kind_that_recognises_the_request_wins_over_the_claimer() -> None:
    dial = {**LIVE, "CallStatus": "in-progress", "DialCallStatus": "busy"}
    assert name_of(dial, ["gather", "dial", "call"]) == "dial"
    assert name_of(dial, ["dial", "gather"]) == "dial"
    recorded = {
        **LIVE,
        "CallStatus": "in-progress",
        "RecordingUrl": REC_URL,
        "RecordingDuration": "3",
    }
    assert name_of(recorded, ["gather", "record"]) == "record"
    assert name_of(recorded, ["gather", "record", "call"]) == "record"


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ({**LIVE, "CallStatus": "in-progress", "Digits": "1"}, "gather"),
        ({**LIVE, "CallStatus": "in-progress", "DialCallStatus": "completed"}, "dial"),
        (record_params("hangup"), "record"),
        (transcription_params("completed"), "transcription"),
        (gather_partial_params(), "gather_partial"),
        (pay_params("success"), "pay"),
        ({**LIVE, "CallStatus": "ringing"}, "call"),
        (EMPTY_GATHER, "call"),
    ],
    ids=["digits", "dial", "record", "transcription", "partial", "pay", "ringing", "empty"],
)
def test_a_broad_kind_at_a_path_leaves_its_services_other_kinds_their_requests(
    first: dict[str, str], expected: str
) -> None:
    # A path whose service defines only the call's callbacks (on_ringing, whose
    # <Gather> has no action: Twilio posts the result back to the same URL).
    assert name_of(first, ["call"]) == expected
    assert name_of(first, ["call", "sms"]) == expected


def test_a_claimer_leaves_another_verbs_result_its_kind() -> None:
    # Parameters that give a request to another (non-broad) kind decide, even at a
    # path whose service defines only the claimer's callback.
    dial = {**LIVE, "CallStatus": "in-progress", "DialCallStatus": "busy"}
    assert name_of(dial, ["gather"]) == "dial"
    assert name_of(dial, ["gather", "call"]) == "dial"
    queued = {**LIVE, "CallStatus": "in-progress", "QueueResult": "hangup"}
    assert name_of(queued, ["record", "call"]) == "enqueue"
    digits = {**LIVE, "CallStatus": "in-progress", "Digits": "5"}
    assert name_of(digits, ["amd", "call"]) == "gather"


@pytest.mark.parametrize(
    "prefer",
    [["gather", "record"], ["gather", "record", "call"], ["call", "record", "gather"]],
    ids=str,
)
def test_two_claimers_claim_nothing(prefer: list[str]) -> None:
    assert name_of(EMPTY_GATHER, prefer) == "call"
    assert name_of({**LIVE, "Digits": "1"}, prefer) == "gather"
    assert name_of({**LIVE, "RecordingUrl": REC_URL, "RecordingDuration": "3"}, prefer) == (
        "record"
    )
    assert name_of({"CallSid": CA}, prefer) is None


def test_three_claimers_claim_nothing() -> None:
    assert name_of(EMPTY_GATHER, ["gather", "record", "amd", "call"]) == "call"


@pytest.mark.parametrize("prefer", [["gather"], ["gather", "call"], ["record"], ["amd"]], ids=str)
def test_a_status_callback_is_never_claimed_at_a_path(prefer: list[str]) -> None:
    status = call_status_params("completed")
    assert status["CallbackSource"] == "call-progress-events"
    assert name_of(status, prefer) == "call"
    assert name_of({**EMPTY_GATHER, **PROGRESS}, prefer) == "call"
    assert name_of({**LIVE, "AnsweredBy": "human", **PROGRESS}, prefer) is None


def test_a_claimer_does_not_take_other_families() -> None:
    for first in (
        sms_status_params("delivered"),
        conference_params("participant-join"),
        transcription_params("completed"),
        gather_partial_params(),
        pay_status_params("postal-code"),
        conversations_params("onMessageAdded"),
        conversations_params("onMessageAdd"),
        taskrouter_params("task.created"),
        assignment_params(),
        debugger_params("error"),
        unknown_params("room-created"),
    ):
        for prefer in (["gather"], ["gather", "call"], ["record"], ["amd"]):
            assert name_of(first, prefer) == name_of(first), (prefer, first)


def test_a_recording_status_callback_at_a_record_path_stays_a_recording() -> None:
    # Fact sheet §0: a <Record> action has RecordingUrl and RecordingDuration with no
    # RecordingStatus; a recording status callback (RecordingStatus) carries them too.
    status = recording_status_params("completed")
    assert name_of(status) == "recording"
    assert name_of(status, ["record"]) == "recording"
    assert name_of(status, ["record", "call"]) == "recording"
    assert name_of(status, ["gather", "call"]) == "recording"


def test_a_record_action_at_a_gather_path_stays_a_record() -> None:
    # Fact sheet §0: Digits with a RecordingUrl is a <Record> action (Digits=hangup).
    recorded = record_params("hangup")
    assert name_of(recorded) == "record"
    assert name_of(recorded, ["gather"]) == "record"
    assert name_of(recorded, ["gather", "call"]) == "record"


def test_a_preferred_notification_kind_wins_over_the_claimer() -> None:
    partial = gather_partial_params()
    assert name_of(partial) == "gather_partial"
    assert name_of(partial, ["gather_partial", "gather"]) == "gather_partial"


# -- the kinds of each service base class ------------------------------------------------------
VOICE_KINDS = {
    "call",
    "gather",
    "gather_partial",
    "transcription",
    "dial",
    "record",
    "enqueue",
    "queue_wait",
    "dequeue",
    "pay",
    "pay_status",
    "amd",
}
SERVICE_KINDS: list[tuple[type[ServiceBase], str, set[str]]] = [
    (CallStatusService, "call", VOICE_KINDS),
    (SmsStatusService, "sms", {"sms"}),
    (RecordingStatusService, "recording", {"recording"}),
    (DebuggerService, "debugger", {"debugger"}),
    (ConferenceService, "conference", {"conference"}),
    (ConversationsService, "conversations", {"conversations"}),
    (TaskRouterService, "taskrouter", {"taskrouter", "assignment"}),
    (FallbackService, "other", {"other"}),
]


@pytest.mark.parametrize(
    ("base", "main", "kinds"), SERVICE_KINDS, ids=[base.__name__ for base, _, _ in SERVICE_KINDS]
)
def test_the_kinds_of_each_service_class(
    base: type[ServiceBase], main: str, kinds: set[str]
) -> None:
    class Mine(base):  # type: ignore[valid-type,misc]
        pass

    class Deeper(Mine):
        pass

    for service in (base(), Mine(), Deeper()):
        found = kinds_of_service(service)
        names = [kind.name for kind in found]
        assert names[0] == main
        assert set(names) == kinds
        assert len(names) == len(kinds)
        assert kind_of_service(service) is found[0] is kind_named(main)
        assert service_base(service) is base
        assert all(kind.service_class is base for kind in found)
    assert base.kind == main
    assert set(base.kinds) == kinds
    assert base.kinds[0] == main
    callbacks = {name for kind in kinds for name in kind_named(kind).callbacks}
    assert set(base.callback_names) == callbacks


def test_every_kind_belongs_to_exactly_one_service_class() -> None:
    covered: list[str] = []
    for base, _, kinds in SERVICE_KINDS:
        covered += [kind.name for kind in kinds_of_service(base())]
        assert {kind.name for kind in KINDS if kind.service_class is base} == kinds
    assert sorted(covered) == sorted(kind.name for kind in KINDS)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (CallStatusService, SmsStatusService),
        (ConferenceService, CallStatusService),
        (TaskRouterService, ConversationsService),
        (FallbackService, DebuggerService),
    ],
    ids=lambda base: base.__name__,
)
def test_a_class_of_two_service_bases_is_refused(
    first: type[ServiceBase], second: type[ServiceBase]
) -> None:
    both = type("Both", (first, second), {})()
    for lookup in (service_base, kind_of_service, kinds_of_service):
        with pytest.raises(ServiceError, match="subclasses both") as raised:
            lookup(both)
        assert first.__name__ in str(raised.value)
        assert second.__name__ in str(raised.value)


@pytest.mark.parametrize("thing", [object(), "CallStatusService", 3, None, KINDS[0]])
def test_a_non_service_is_refused(thing: object) -> None:
    for lookup in (service_base, kind_of_service, kinds_of_service):
        with pytest.raises(ServiceError, match="is not a service"):
            lookup(thing)


def test_a_service_class_instead_of_an_instance_is_refused() -> None:
    with pytest.raises(ServiceError, match=r"attach\(CallStatusService\(\)\)"):
        service_base(CallStatusService)
