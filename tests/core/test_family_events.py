"""The events of the new webhook families (``_core/events/``): each attribute reads its
Twilio parameter and converts it; absent or malformed values read ``None`` and never
raise; JSON parameters are parsed, bounded and must be objects; ``path`` and ``query``.

The tables below name every parameter attribute the new classes define: a test checks
that they cover them all, so an attribute added without a row here fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import twilio_trigger as twilio
from twilio_trigger import (
    AssignmentEvent,
    CallStatusEvent,
    ConferenceEvent,
    ConversationsEvent,
    DebuggerEvent,
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
    TaskRouterEvent,
    TranscriptionEvent,
    TwilioEvent,
)
from twilio_trigger._core.events import _Param
from twilio_trigger._core.vocabulary import (
    CONVERSATIONS_POST_EVENTS,
    CONVERSATIONS_PRE_EVENTS,
    TASKROUTER_EVENT_TYPES,
)
from twilio_trigger.testing import (
    assignment_params,
    conference_params,
    conversations_params,
    debugger_params,
    dequeue_params,
    dial_params,
    enqueue_params,
    gather_params,
    gather_partial_params,
    machine_detection_params,
    pay_params,
    pay_status_params,
    queue_wait_params,
    record_params,
    taskrouter_params,
    transcription_params,
)

# -- the conversions, and what each must refuse ------------------------------------------------
TEXT, INT, FLOAT, BOOL, RFC2822, ISO, EPOCH = "text", "int", "float", "bool", "rfc", "iso", "epoch"

#: Malformed values of each conversion: every one reads None.
MALFORMED: dict[str, tuple[str, ...]] = {
    TEXT: (),
    INT: ("", " ", "4.2", "abc", "1e3", "+-1", "0x10", "\u0663", "9" * 31, "12 34", "--1"),
    FLOAT: ("", "abc", "nan", "NaN", "inf", "-Infinity", "1e400", "0,9"),
    BOOL: ("", "yes", "no", "1", "0", "t", "truthy", "on"),
    RFC2822: (
        "",
        "garbage",
        "2017-06-01T20:48:32Z",
        "Thu, 1 Jun 99999 20:48:32 +0000",
        "Thu, 31 Feb 2017 20:48:32 +0000",
        "Thu, 1 Jun 2017 25:61:99 +0000",
        "Thu, 1 Jun 2017 20:48:32 +9999",
    ),
    ISO: ("", "x", "Tue, 14 Nov 2023 18:31:05 +0000", "2023-13-40T00:00:00Z", "99999-01-01"),
    EPOCH: ("", "abc", "-5", "1.5e9", "99999999999999999999", "2023-13-40T00:00:00Z"),
}


def _dt(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


#: Well-formed values of each conversion, and what they read as.
WELL_FORMED: dict[str, tuple[tuple[str, object], ...]] = {
    TEXT: (("a value, as sent", "a value, as sent"), ("  spaced  ", "  spaced  ")),
    INT: (("42", 42), (" 7 ", 7), ("-3", -3), ("0", 0), ("9" * 30, int("9" * 30))),
    FLOAT: (("0.9216", 0.9216), ("1", 1.0), (" 0.5 ", 0.5), ("-0.25", -0.25)),
    BOOL: (("true", True), ("True", True), (" TRUE ", True), ("false", False), ("FALSE", False)),
    RFC2822: (
        ("Thu, 1 Jun 2017 20:48:32 +0000", _dt(2017, 6, 1, 20, 48, 32)),
        ("Thu, 1 Jun 2017 20:48:32 -0000", _dt(2017, 6, 1, 20, 48, 32)),
        ("Thu, 01 Jun 2017 22:48:32 +0200", _dt(2017, 6, 1, 20, 48, 32)),
        ("Tue, 14 Nov 2023 18:30:00 GMT", _dt(2023, 11, 14, 18, 30)),
    ),
    ISO: (
        ("2023-11-14T18:31:05Z", _dt(2023, 11, 14, 18, 31, 5)),
        ("2023-11-14T19:31:05+01:00", _dt(2023, 11, 14, 18, 31, 5)),
        ("2023-11-14T18:31:05", _dt(2023, 11, 14, 18, 31, 5)),  # naive: taken as UTC
        ("2023-11-14T18:31:05.250Z", _dt(2023, 11, 14, 18, 31, 5, 250000)),
    ),
    EPOCH: (
        ("1699986600", _dt(2023, 11, 14, 18, 30)),
        (" 1699986600 ", _dt(2023, 11, 14, 18, 30)),
        ("0", _dt(1970, 1, 1)),
        ("2023-11-14T18:30:00Z", _dt(2023, 11, 14, 18, 30)),
        ("2023-11-14T18:30:00.123Z", _dt(2023, 11, 14, 18, 30, 0, 123000)),
        ("Tue, 14 Nov 2023 18:30:00 +0000", _dt(2023, 11, 14, 18, 30)),
    ),
}

# -- every parameter attribute of the new classes: attribute -> (Twilio name, conversion) ------
_PAYMENT = {
    "payment_method": ("PaymentMethod", TEXT),
    "payment_card_number": ("PaymentCardNumber", TEXT),
    "payment_card_type": ("PaymentCardType", TEXT),
    "expiration_date": ("ExpirationDate", TEXT),
    "security_code": ("SecurityCode", TEXT),
    "payment_card_postal_code": ("PaymentCardPostalCode", TEXT),
    "bank_account_number": ("BankAccountNumber", TEXT),
    "bank_routing_number": ("BankRoutingNumber", TEXT),
    "bank_account_type": ("BankAccountType", TEXT),
}
_TASKROUTER = {
    "event_type": ("EventType", TEXT),
    "event_description": ("EventDescription", TEXT),
    "workspace_sid": ("WorkspaceSid", TEXT),
    "workspace_name": ("WorkspaceName", TEXT),
    "resource_type": ("ResourceType", TEXT),
    "resource_sid": ("ResourceSid", TEXT),
    "timestamp": ("Timestamp", EPOCH),
    "timestamp_ms": ("TimestampMs", INT),
    "task_sid": ("TaskSid", TEXT),
    "task_age": ("TaskAge", INT),
    "task_priority": ("TaskPriority", INT),
    "task_assignment_status": ("TaskAssignmentStatus", TEXT),
    "task_canceled_reason": ("TaskCanceledReason", TEXT),
    "task_completed_reason": ("TaskCompletedReason", TEXT),
    "task_channel_sid": ("TaskChannelSid", TEXT),
    "task_channel_unique_name": ("TaskChannelUniqueName", TEXT),
    "task_queue_sid": ("TaskQueueSid", TEXT),
    "task_queue_name": ("TaskQueueName", TEXT),
    "task_queue_target_expression": ("TaskQueueTargetExpression", TEXT),
    "reservation_sid": ("ReservationSid", TEXT),
    "worker_sid": ("WorkerSid", TEXT),
    "worker_name": ("WorkerName", TEXT),
    "worker_activity_sid": ("WorkerActivitySid", TEXT),
    "worker_activity_name": ("WorkerActivityName", TEXT),
    "worker_previous_activity_sid": ("WorkerPreviousActivitySid", TEXT),
    "worker_time_in_previous_activity": ("WorkerTimeInPreviousActivity", INT),
    "worker_channel_available": ("WorkerChannelAvailable", BOOL),
    "worker_channel_available_capacity": ("WorkerChannelAvailableCapacity", INT),
    "workflow_sid": ("WorkflowSid", TEXT),
    "workflow_name": ("WorkflowName", TEXT),
    "activity_sid": ("ActivitySid", TEXT),
    "activity_name": ("ActivityName", TEXT),
    "activity_available": ("ActivityAvailable", BOOL),
}
FIELDS: dict[type[TwilioEvent], dict[str, tuple[str, str]]] = {
    GatherEvent: {
        "digits": ("Digits", TEXT),
        "speech_result": ("SpeechResult", TEXT),
        "confidence": ("Confidence", FLOAT),
        "finished_on_key": ("FinishedOnKey", TEXT),
    },
    GatherPartialEvent: {
        "unstable_speech_result": ("UnstableSpeechResult", TEXT),
        "stable_speech_result": ("StableSpeechResult", TEXT),
        "stability": ("Stability", FLOAT),
    },
    TranscriptionEvent: {
        "transcription_sid": ("TranscriptionSid", TEXT),
        "transcription_text": ("TranscriptionText", TEXT),
        "transcription_status": ("TranscriptionStatus", TEXT),
        "transcription_url": ("TranscriptionUrl", TEXT),
    },
    DialEvent: {
        "dial_call_status": ("DialCallStatus", TEXT),
        "dial_call_sid": ("DialCallSid", TEXT),
        "dial_call_duration": ("DialCallDuration", INT),
        "dial_bridged": ("DialBridged", BOOL),
        "queue_sid": ("QueueSid", TEXT),
        "queue_time": ("QueueTime", INT),
    },
    RecordEvent: {"digits": ("Digits", TEXT)},
    EnqueueEvent: {
        "queue_result": ("QueueResult", TEXT),
        "queue_sid": ("QueueSid", TEXT),
        "queue_time": ("QueueTime", INT),
    },
    QueueWaitEvent: {
        "queue_position": ("QueuePosition", INT),
        "queue_sid": ("QueueSid", TEXT),
        "queue_time": ("QueueTime", INT),
        "avg_queue_time": ("AvgQueueTime", INT),
        "current_queue_size": ("CurrentQueueSize", INT),
        "max_queue_size": ("MaxQueueSize", INT),
    },
    DequeueEvent: {
        "queue_sid": ("QueueSid", TEXT),
        "queue_time": ("QueueTime", INT),
        "dequeing_call_sid": ("DequeingCallSid", TEXT),
    },
    PayEvent: {
        **_PAYMENT,
        "result": ("Result", TEXT),
        "profile_id": ("ProfileId", TEXT),
        "payment_token": ("PaymentToken", TEXT),
        "payment_confirmation_code": ("PaymentConfirmationCode", TEXT),
        "payment_error": ("PaymentError", TEXT),
        "pay_error_code": ("PayErrorCode", INT),
        "connector_error": ("ConnectorError", TEXT),
    },
    PayStatusEvent: {
        **_PAYMENT,
        "for_": ("For", TEXT),
        "error_type": ("ErrorType", TEXT),
        "attempt": ("Attempt", INT),
    },
    MachineDetectionEvent: {},
    ConferenceEvent: {
        "conference_sid": ("ConferenceSid", TEXT),
        "friendly_name": ("FriendlyName", TEXT),
        "status_callback_event": ("StatusCallbackEvent", TEXT),
        "sequence_number": ("SequenceNumber", INT),
        "timestamp": ("Timestamp", RFC2822),
        "call_sid": ("CallSid", TEXT),
        "participant_label": ("ParticipantLabel", TEXT),
        "muted": ("Muted", BOOL),
        "hold": ("Hold", BOOL),
        "coaching": ("Coaching", BOOL),
        "call_sid_to_coach": ("CallSidToCoach", TEXT),
        "end_conference_on_exit": ("EndConferenceOnExit", BOOL),
        "start_conference_on_enter": ("StartConferenceOnEnter", BOOL),
        "participant_call_status": ("ParticipantCallStatus", TEXT),
        "reason_participant_left": ("ReasonParticipantLeft", TEXT),
        "reason_conference_ended": ("ReasonConferenceEnded", TEXT),
        "reason": ("Reason", TEXT),
        "call_sid_ending_conference": ("CallSidEndingConference", TEXT),
        "participant_label_ending_conference": ("ParticipantLabelEndingConference", TEXT),
        "reason_announcement_failed": ("ReasonAnnouncementFailed", TEXT),
        "announce_url": ("AnnounceUrl", TEXT),
    },
    ConversationsEvent: {
        "event_type": ("EventType", TEXT),
        "source": ("Source", TEXT),
        "client_identity": ("ClientIdentity", TEXT),
        "conversation_sid": ("ConversationSid", TEXT),
        "chat_service_sid": ("ChatServiceSid", TEXT),
        "messaging_service_sid": ("MessagingServiceSid", TEXT),
        "message_sid": ("MessageSid", TEXT),
        "index": ("Index", INT),
        "body": ("Body", TEXT),
        "author": ("Author", TEXT),
        "participant_sid": ("ParticipantSid", TEXT),
        "friendly_name": ("FriendlyName", TEXT),
        "unique_name": ("UniqueName", TEXT),
        "state": ("State", TEXT),
        "identity": ("Identity", TEXT),
        "role_sid": ("RoleSid", TEXT),
        "user_sid": ("UserSid", TEXT),
        "date_created": ("DateCreated", ISO),
        "date_updated": ("DateUpdated", ISO),
        "date_removed": ("DateRemoved", ISO),
        "last_read_message_index": ("LastReadMessageIndex", INT),
        "state_from": ("StateFrom", TEXT),
        "state_to": ("StateTo", TEXT),
        "state_updated": ("StateUpdated", ISO),
        "reason": ("Reason", TEXT),
        "delivery_receipt_sid": ("DeliveryReceiptSid", TEXT),
        "channel_message_sid": ("ChannelMessageSid", TEXT),
        "delivery_status": ("Status", TEXT),
        "message_body": ("MessageBody", TEXT),
        "is_online": ("isOnline", BOOL),
        "is_notifiable": ("isNotifiable", BOOL),
    },
    TaskRouterEvent: _TASKROUTER,
    AssignmentEvent: _TASKROUTER,
}

#: Attributes every voice event inherits from CallStatusEvent that the new ones rely on.
INHERITED_VOICE = {
    "call_sid": ("CallSid", TEXT),
    "from_": ("From", TEXT),
    "to": ("To", TEXT),
    "direction": ("Direction", TEXT),
    "call_status": ("CallStatus", TEXT),
    "recording_url": ("RecordingUrl", TEXT),
    "recording_sid": ("RecordingSid", TEXT),
    "recording_duration": ("RecordingDuration", INT),
    "answered_by": ("AnsweredBy", TEXT),
    "machine_detection_duration": ("MachineDetectionDuration", INT),
}
VOICE_CLASSES = [klass for klass in FIELDS if issubclass(klass, CallStatusEvent)]


def _own_params(klass: type[TwilioEvent]) -> dict[str, _Param[Any]]:
    """The parameter attributes *klass* adds to the base class of its family."""
    stop = {CallStatusEvent, TwilioEvent, object}
    found: dict[str, _Param[Any]] = {}
    for base in klass.__mro__:
        if base in stop:
            continue
        for name, value in vars(base).items():
            if isinstance(value, _Param):
                found.setdefault(name, value)
    return found


def _rows() -> list[tuple[type[TwilioEvent], str, str, str]]:
    rows = [
        (klass, attribute, twilio_name, conversion)
        for klass, fields in FIELDS.items()
        for attribute, (twilio_name, conversion) in fields.items()
    ]
    rows += [
        (klass, attribute, twilio_name, conversion)
        for klass in VOICE_CLASSES
        for attribute, (twilio_name, conversion) in INHERITED_VOICE.items()
    ]
    return rows


ROWS = _rows()


def _row_id(row: tuple[type[TwilioEvent], str, str, str]) -> str:
    return f"{row[0].__name__}.{row[1]}"


def test_the_tables_name_every_parameter_attribute_of_the_new_classes() -> None:
    for klass, fields in FIELDS.items():
        declared = _own_params(klass)
        assert set(declared) == set(fields), klass.__name__
        for attribute, (twilio_name, _) in fields.items():
            assert declared[attribute].twilio_name == twilio_name, (klass, attribute)


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_each_attribute_reads_its_parameter_converted(
    row: tuple[type[TwilioEvent], str, str, str],
) -> None:
    klass, attribute, twilio_name, conversion = row
    for raw, expected in WELL_FORMED[conversion]:
        event = klass({twilio_name: raw})
        value = getattr(event, attribute)
        assert value == expected, (raw, value)
        assert type(value) is type(expected), (raw, value)
        if isinstance(expected, datetime):
            assert isinstance(value, datetime)
            assert value.utcoffset() is not None  # always aware


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_each_attribute_reads_none_when_absent_or_malformed(
    row: tuple[type[TwilioEvent], str, str, str],
) -> None:
    klass, attribute, twilio_name, conversion = row
    assert getattr(klass({}), attribute) is None
    assert getattr(klass({"Unrelated": "1"}), attribute) is None
    for raw in MALFORMED[conversion]:
        assert getattr(klass({twilio_name: raw}), attribute) is None, raw


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_each_attribute_reads_the_first_of_repeated_values(
    row: tuple[type[TwilioEvent], str, str, str],
) -> None:
    klass, attribute, twilio_name, conversion = row
    (first, expected), *_ = WELL_FORMED[conversion]
    event = klass([(twilio_name, first), (twilio_name, "something else entirely")])
    assert getattr(event, attribute) == expected


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_attributes_cannot_be_set(row: tuple[type[TwilioEvent], str, str, str]) -> None:
    klass, attribute, _, _ = row
    event = klass({})
    with pytest.raises(AttributeError, match="immutable"):
        setattr(event, attribute, "x")


def test_a_taskrouter_timestamp_beyond_the_calendar_reads_none() -> None:
    # Twelve digits pass the epoch check, but the year 33658 is no datetime's.
    for raw in ("999999999999", "253402300800"):
        assert TaskRouterEvent({"Timestamp": raw}).timestamp is None, raw
        assert AssignmentEvent({"Timestamp": raw}).timestamp is None, raw
    assert TaskRouterEvent({"Timestamp": "253402300799"}).timestamp == _dt(9999, 12, 31, 23, 59, 59)


def test_a_conference_timestamp_keeps_its_offset() -> None:
    moment = ConferenceEvent({"Timestamp": "Thu, 01 Jun 2017 22:48:32 +0200"}).timestamp
    assert moment is not None
    assert moment.utcoffset() == timedelta(hours=2)
    assert moment == _dt(2017, 6, 1, 20, 48, 32)


# -- status and sid: the registry's route_by and sid_params, read by each class ----------------
STATUS_AND_SID: list[tuple[type[TwilioEvent], dict[str, str], str | None, str | None]] = [
    (GatherEvent, {"CallSid": "CA1", "CallStatus": "in-progress", "Digits": "1"}, None, "CA1"),
    (GatherPartialEvent, {"CallSid": "CA1", "UnstableSpeechResult": "hi"}, None, "CA1"),
    (
        TranscriptionEvent,
        {"TranscriptionSid": "TR1", "TranscriptionStatus": "failed", "CallSid": "CA1"},
        "failed",
        "TR1",
    ),
    (DialEvent, {"CallSid": "CA1", "DialCallStatus": "busy", "CallStatus": "x"}, "busy", "CA1"),
    (RecordEvent, {"CallSid": "CA1", "RecordingSid": "RE1"}, None, "CA1"),
    (EnqueueEvent, {"CallSid": "CA1", "QueueResult": "hangup"}, "hangup", "CA1"),
    (QueueWaitEvent, {"CallSid": "CA1", "QueuePosition": "2"}, None, "CA1"),
    (DequeueEvent, {"CallSid": "CA1", "DequeingCallSid": "CA2"}, None, "CA1"),
    (PayEvent, {"CallSid": "CA1", "Result": "success"}, "success", "CA1"),
    (PayStatusEvent, {"CallSid": "CA1", "For": "postal-code"}, "postal-code", "CA1"),
    (MachineDetectionEvent, {"CallSid": "CA1", "AnsweredBy": "fax"}, "fax", "CA1"),
    (
        ConferenceEvent,
        {"ConferenceSid": "CF1", "StatusCallbackEvent": "participant-join", "CallSid": "CA1"},
        "participant-join",
        "CF1",
    ),
    (
        ConversationsEvent,
        {"EventType": "onMessageAdded", "ConversationSid": "CH1", "MessageSid": "IM1"},
        "onMessageAdded",
        "IM1",
    ),
    (
        ConversationsEvent,
        {"EventType": "onConversationUpdated", "ConversationSid": "CH1"},
        "onConversationUpdated",
        "CH1",
    ),
    (
        TaskRouterEvent,
        {"EventType": "task.created", "ResourceSid": "WT1", "WorkspaceSid": "WS1"},
        "task.created",
        "WT1",
    ),
    (AssignmentEvent, {"ReservationSid": "WR1", "TaskSid": "WT1"}, None, "WR1"),
]


@pytest.mark.parametrize(
    ("klass", "params", "status", "sid"),
    STATUS_AND_SID,
    ids=[f"{row[0].__name__}-{i}" for i, row in enumerate(STATUS_AND_SID)],
)
def test_status_and_sid_come_from_the_kinds_parameters(
    klass: type[TwilioEvent], params: dict[str, str], status: str | None, sid: str | None
) -> None:
    event = klass(params)
    assert event.status == status
    assert event.sid == sid


# -- realistic payloads ------------------------------------------------------------------------
def test_voice_events_read_the_payload_factories() -> None:
    speech = GatherEvent(gather_params("speech", sid="CA" + "1" * 32))
    assert speech.speech_result == "I'd like to check my order status."
    assert speech.confidence == pytest.approx(0.9216)
    assert speech.digits is None
    assert speech.call_sid == "CA" + "1" * 32
    assert speech.call_status == "in-progress"
    digits = GatherEvent(gather_params("digits"))
    assert (digits.digits, digits.finished_on_key, digits.confidence) == ("1", "#", None)
    partial = GatherPartialEvent(gather_partial_params())
    assert partial.stability == pytest.approx(0.7)
    assert partial.sequence_number == 1
    failed = TranscriptionEvent(transcription_params("failed"))
    assert failed.transcription_status == "failed"
    assert failed.transcription_text is None
    dial = DialEvent(dial_params("completed"))
    assert (dial.dial_call_duration, dial.dial_bridged) == (32, True)
    assert DialEvent(dial_params("busy")).dial_bridged is False
    answered = DialEvent(dial_params("answered"))
    assert (answered.dial_call_sid, answered.dial_call_duration) == (None, None)
    record = RecordEvent(record_params("hangup"))
    assert (record.digits, record.recording_duration) == ("hangup", 14)
    assert record.recording_sid is not None
    assert record.recording_sid.startswith("RE")
    assert record.recording_url is not None
    assert record.recording_sid in record.recording_url
    enqueue = EnqueueEvent(enqueue_params("bridged"))
    assert (enqueue.queue_result, enqueue.queue_time) == ("bridged", 38)
    assert EnqueueEvent(enqueue_params("queue-full")).queue_time is None
    wait = QueueWaitEvent(queue_wait_params("5"))
    assert (wait.queue_position, wait.current_queue_size, wait.avg_queue_time) == (5, 5, 40)
    assert wait.max_queue_size == 100
    dequeue = DequeueEvent(dequeue_params())
    assert dequeue.dequeing_call_sid is not None
    assert dequeue.dequeing_call_sid.startswith("CA")
    assert dequeue.queue_time == 95
    pay = PayEvent(pay_params("success"))
    assert pay.payment_card_number == "xxxx-xxxxxx-x4001"
    assert pay.payment_confirmation_code is not None
    assert pay.pay_error_code is None
    assert PayEvent(pay_params("caller-hung-up")).pay_error_code == 64008
    stage = PayStatusEvent(pay_status_params("security-code", ErrorType="invalid-security-code"))
    assert (stage.for_, stage.attempt, stage.error_type) == (
        "security-code",
        1,
        "invalid-security-code",
    )
    amd = MachineDetectionEvent(machine_detection_params("human"))
    assert (amd.answered_by, amd.machine_detection_duration) == ("human", 4210)
    assert amd.callback_source is None
    assert amd.call_status is None


def test_voice_events_are_call_events() -> None:
    for klass in VOICE_CLASSES:
        assert issubclass(klass, CallStatusEvent)
    for other in (ConferenceEvent, ConversationsEvent, TaskRouterEvent, DebuggerEvent):
        assert not issubclass(other, CallStatusEvent)
    assert issubclass(AssignmentEvent, TaskRouterEvent)


def test_conference_events_read_the_payload_factory() -> None:
    join = ConferenceEvent(conference_params("participant-join", sid="CF" + "2" * 32))
    assert join.conference_sid == "CF" + "2" * 32
    assert join.timestamp is not None
    assert join.timestamp.tzinfo is not None
    assert (join.muted, join.hold, join.coaching, join.start_conference_on_enter) == (
        False,
        False,
        False,
        True,
    )
    assert join.sequence_number == 1
    assert ConferenceEvent(conference_params("participant-mute")).muted is True
    assert ConferenceEvent(conference_params("participant-hold")).hold is True
    end = ConferenceEvent(conference_params("conference-end"))
    assert end.reason_conference_ended == "last-participant-left"
    assert end.call_sid is None
    assert end.muted is None
    fail = ConferenceEvent(conference_params("announcement-fail"))
    assert fail.reason_announcement_failed == "Internal error"


def test_taskrouter_events_read_the_payload_factory() -> None:
    event = TaskRouterEvent(taskrouter_params("worker.activity.update"))
    assert event.timestamp == _dt(2023, 11, 14, 18, 30)
    assert event.timestamp_ms == 1699986600123
    assert event.worker_time_in_previous_activity == 35
    assert event.worker_attributes == {"skills": ["english", "billing"]}
    assert event.task_attributes is None
    channel = TaskRouterEvent(taskrouter_params("worker.channel.availability.update"))
    assert (channel.worker_channel_available, channel.worker_channel_available_capacity) == (
        True,
        2,
    )
    activity = TaskRouterEvent(taskrouter_params("activity.updated"))
    assert activity.activity_available is True
    task = TaskRouterEvent(taskrouter_params("task.created"))
    assert task.task_attributes == {"type": "support", "from": "+15558675310"}
    assert (task.task_age, task.task_priority) == (12, 0)
    assignment = AssignmentEvent(assignment_params(sid="WR" + "3" * 32))
    assert assignment.reservation_sid == "WR" + "3" * 32
    assert assignment.timestamp == _dt(2023, 11, 14, 18, 30)
    assert assignment.task_attributes == {"type": "support", "from": "+15558675310"}
    assert assignment.worker_attributes == {"skills": ["english", "billing"]}


def test_every_taskrouter_payload_has_a_timestamp_and_its_type() -> None:
    for event_type in TASKROUTER_EVENT_TYPES:
        event = TaskRouterEvent(taskrouter_params(event_type))
        assert event.event_type == event_type
        assert event.timestamp == _dt(2023, 11, 14, 18, 30)


# -- JSON parameters ---------------------------------------------------------------------------
#: (event class, parameter, how the parsed value is read)
JSON_OBJECTS: list[tuple[type[TwilioEvent], str, Callable[[Any], object]]] = [
    (ConversationsEvent, "Attributes", lambda event: event.attributes),
    (TaskRouterEvent, "TaskAttributes", lambda event: event.task_attributes),
    (TaskRouterEvent, "WorkerAttributes", lambda event: event.worker_attributes),
    (AssignmentEvent, "TaskAttributes", lambda event: event.task_attributes),
    (AssignmentEvent, "WorkerAttributes", lambda event: event.worker_attributes),
    (DebuggerEvent, "Payload", lambda event: event.payload),
]
JSON_IDS = [f"{klass.__name__}.{name}" for klass, name, _ in JSON_OBJECTS]
LIMIT = 256 * 1024


@pytest.mark.parametrize(("klass", "name", "read"), JSON_OBJECTS, ids=JSON_IDS)
def test_a_json_object_parameter_is_parsed_into_a_read_only_mapping(
    klass: type[TwilioEvent], name: str, read: Callable[[Any], object]
) -> None:
    document = {"order": "A-1042", "nested": {"n": [1, 2.5, None, True]}, "é": "ü"}
    value = read(klass({name: json.dumps(document)}))
    assert isinstance(value, Mapping)
    assert dict(value) == document
    with pytest.raises(TypeError):
        value["order"] = "changed"  # type: ignore[index]
    assert read(klass({name: "{}"})) == {}


@pytest.mark.parametrize(("klass", "name", "read"), JSON_OBJECTS, ids=JSON_IDS)
@pytest.mark.parametrize(
    "raw",
    ["[1, 2]", '"text"', "42", "true", "null", "", "{", "{'single': 1}", "not json", "{}{}"],
)
def test_a_json_parameter_that_is_no_object_reads_none(
    klass: type[TwilioEvent], name: str, read: Callable[[Any], object], raw: str
) -> None:
    assert read(klass({name: raw})) is None
    assert read(klass({})) is None


@pytest.mark.parametrize(("klass", "name", "read"), JSON_OBJECTS, ids=JSON_IDS)
def test_a_deeply_nested_json_parameter_reads_none_without_raising(
    klass: type[TwilioEvent], name: str, read: Callable[[Any], object]
) -> None:
    depth = 40_000  # within the size bound, far beyond the recursion limit
    nested_object = '{"a":' * depth + "1" + "}" * depth
    assert len(nested_object) < LIMIT
    assert read(klass({name: nested_object})) is None
    assert read(klass({name: "[" * 200_000})) is None
    huge_number = '{"n": ' + "9" * 5000 + "}"  # past Python's int digit limit
    assert read(klass({name: huge_number})) is None


@pytest.mark.parametrize(("klass", "name", "read"), JSON_OBJECTS, ids=JSON_IDS)
def test_a_json_parameter_over_256_kib_reads_none(
    klass: type[TwilioEvent], name: str, read: Callable[[Any], object]
) -> None:
    def document(length: int) -> str:
        text = '{"a":"' + "x" * (length - 8) + '"}'
        assert len(text) == length
        return text

    assert read(klass({name: document(LIMIT)})) is not None
    assert read(klass({name: document(LIMIT + 1)})) is None


def test_conversations_media_is_a_tuple_of_mappings() -> None:
    items = [{"Sid": "ME1", "ContentType": "image/jpeg", "Size": 1}, {"Sid": "ME2"}]
    media = ConversationsEvent({"Media": json.dumps(items)}).media
    assert isinstance(media, tuple)
    assert [dict(item) for item in media] == items
    with pytest.raises(TypeError):
        media[0]["Sid"] = "x"  # type: ignore[index]
    mixed = ConversationsEvent({"Media": json.dumps([{"Sid": "ME1"}, "x", 3, None, [1]])})
    assert [dict(item) for item in mixed.media] == [{"Sid": "ME1"}]
    factory = ConversationsEvent(conversations_params("onMessageAdded")).media
    assert len(factory) == 1
    assert factory[0]["ContentType"] == "image/jpeg"


@pytest.mark.parametrize(
    "raw", ['{"Sid": "ME1"}', '"x"', "", "[", "null", "[" * 200_000, "[" + " " * LIMIT + "]"]
)
def test_conversations_media_that_is_no_list_reads_empty(raw: str) -> None:
    assert ConversationsEvent({"Media": raw}).media == ()
    assert ConversationsEvent({}).media == ()


def test_conversations_messaging_binding_gathers_the_dotted_parameters() -> None:
    event = ConversationsEvent(
        [
            ("EventType", "onParticipantAdd"),
            ("MessagingBinding.ProxyAddress", "+14155550143"),
            ("MessagingBinding.Address", "+15558675310"),
            ("MessagingBinding.Address", "+15558675311"),
            ("MessagingBinding.Type", "SMS"),
            ("MessagingBinding", "not a dotted name"),
            ("XMessagingBinding.Address", "not the prefix"),
        ]
    )
    binding = event.messaging_binding
    assert dict(binding) == {
        "ProxyAddress": "+14155550143",
        "Address": "+15558675310",
        "Type": "SMS",
    }
    with pytest.raises(TypeError):
        binding["Type"] = "CHAT"  # type: ignore[index]
    assert ConversationsEvent({"EventType": "onMessageAdded"}).messaging_binding == {}
    added = ConversationsEvent(conversations_params("onConversationAdd")).messaging_binding
    assert set(added) == {"ProxyAddress", "Address", "ProjectedAddress", "AuthorAddress"}


def test_conversations_events_read_the_payload_factory() -> None:
    added = ConversationsEvent(conversations_params("onMessageAdded", sid="CH" + "4" * 32))
    assert added.conversation_sid == "CH" + "4" * 32
    assert added.index == 3
    assert added.attributes == {"order": "A-1042"}
    assert added.date_created is not None
    assert added.date_created.tzinfo is not None
    assert added.author == "agent-alice"
    pre = ConversationsEvent(conversations_params("onMessageAdd"))
    assert (pre.message_sid, pre.index) == (None, None)
    delivery = ConversationsEvent(conversations_params("onDeliveryUpdated"))
    assert delivery.delivery_status == "delivered"
    assert delivery.error_code == 0
    user = ConversationsEvent(conversations_params("onUserUpdated"))
    assert (user.is_online, user.is_notifiable) == (True, True)
    assert user.date_updated == _dt(2023, 11, 14, 18, 31, 5)
    state = ConversationsEvent(conversations_params("onConversationStateUpdated"))
    assert (state.state_from, state.state_to, state.reason) == ("active", "inactive", "TIMER")
    assert state.state_updated == _dt(2023, 11, 14, 18, 31, 5)
    removed = ConversationsEvent(conversations_params("onMessageRemoved"))
    assert removed.date_removed == _dt(2023, 11, 14, 18, 32, 40)
    participant = ConversationsEvent(conversations_params("onParticipantUpdated"))
    assert participant.last_read_message_index == 3


def _subject_sid(event_type: str) -> str:
    # The SID of what the event is about; before it exists, of where it is made.
    if event_type == "onConversationAdd":
        return "ChatServiceSid"
    if event_type in ("onMessageAdd", "onParticipantAdd"):
        return "ConversationSid"  # onMessageAdd's ParticipantSid is its author's
    if event_type == "onDeliveryUpdated":
        return "MessageSid"
    for subject in ("Message", "Participant", "User", "Conversation"):
        if event_type.startswith(f"on{subject}"):
            return f"{subject}Sid"
    raise AssertionError(event_type)


@pytest.mark.parametrize("event_type", CONVERSATIONS_PRE_EVENTS + CONVERSATIONS_POST_EVENTS)
def test_a_conversations_events_sid_is_that_of_what_it_is_about(event_type: str) -> None:
    params = conversations_params(event_type)
    assert ConversationsEvent(params).sid == params[_subject_sid(event_type)]


def test_there_are_twenty_three_conversations_event_types() -> None:
    assert len(CONVERSATIONS_PRE_EVENTS) == 10
    assert len(CONVERSATIONS_POST_EVENTS) == 13
    assert not set(CONVERSATIONS_PRE_EVENTS) & set(CONVERSATIONS_POST_EVENTS)


@pytest.mark.parametrize(
    ("event_type", "pre"),
    [(name, True) for name in CONVERSATIONS_PRE_EVENTS]
    + [(name, False) for name in CONVERSATIONS_POST_EVENTS],
)
def test_is_pre_event_for_each_conversations_event_type(event_type: str, pre: bool) -> None:
    assert ConversationsEvent({"EventType": event_type}).is_pre_event is pre
    assert ConversationsEvent(conversations_params(event_type)).is_pre_event is pre


def test_is_pre_event_is_false_without_an_event_type() -> None:
    assert ConversationsEvent({}).is_pre_event is False
    assert ConversationsEvent({"EventType": ""}).is_pre_event is False


# -- DebuggerEvent's payload properties --------------------------------------------------------
def _debugger(payload: object) -> DebuggerEvent:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return DebuggerEvent({"Level": "ERROR", "PayloadType": "application/json", "Payload": text})


FAILED_WEBHOOK = {
    "resource_sid": "CA" + "5" * 32,
    "service_sid": "MG" + "6" * 32,
    "error_code": "11200",
    "more_info": {"msg": "An attempt to retrieve content failed", "sourceComponent": "14100"},
    "webhook": {
        "type": "application/json",
        "request": {
            "method": "POST",
            "url": "https://hooks.example.com/twilio",
            "headers": {"User-Agent": "TwilioProxy/1.1"},
            "parameters": {"CallSid": "CA" + "5" * 32},
        },
        "response": {"status_code": 502, "headers": {}, "body": "bad gateway"},
    },
}


def test_debugger_properties_read_the_payload() -> None:
    event = _debugger(FAILED_WEBHOOK)
    assert event.error_code == 11200
    assert event.alert_code == 11200
    assert event.resource_sid == "CA" + "5" * 32
    assert event.service_sid == "MG" + "6" * 32
    assert event.more_info == FAILED_WEBHOOK["more_info"]
    assert event.webhook == FAILED_WEBHOOK["webhook"]
    assert event.webhook_request is not None
    assert event.webhook_request["url"] == "https://hooks.example.com/twilio"
    assert event.webhook_response is not None
    assert event.webhook_response["status_code"] == 502
    for mapping in (event.more_info, event.webhook, event.webhook_request):
        with pytest.raises(TypeError):
            mapping["x"] = 1  # type: ignore[index]


def test_debugger_properties_of_the_payload_factory() -> None:
    event = DebuggerEvent(debugger_params("error"))
    assert event.error_code is not None
    assert event.payload is not None
    assert event.timestamp is not None
    assert event.timestamp.tzinfo is not None


@pytest.mark.parametrize(
    ("error_code", "expected"),
    [
        ("11200", 11200),
        (11200, 11200),
        (" 30003 ", 30003),
        ("", None),
        ("x", None),
        ("11200.0", None),
        (11200.0, None),
        (True, None),
        (None, None),
        ([11200], None),
        ({"code": 1}, None),
    ],
)
def test_debugger_error_code_converts_only_whole_numbers(
    error_code: object, expected: object
) -> None:
    event = _debugger({"error_code": error_code})
    assert event.error_code == expected
    assert event.alert_code == expected


def test_debugger_error_code_is_the_payloads_not_a_top_level_parameter() -> None:
    only_top = DebuggerEvent({"ErrorCode": "30003", "Payload": "{}"})
    assert only_top.error_code is None
    both = DebuggerEvent({"ErrorCode": "30003", "Payload": '{"error_code": "11200"}'})
    assert both.error_code == 11200


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"service_sid": None, "more_info": None, "webhook": None},
        {"service_sid": 12, "more_info": "text", "webhook": ["a"]},
        {"more_info": [1], "webhook": {"request": "text", "response": 502}},
        {"webhook": {"request": None, "response": [1]}},
        "[]",
        "not json",
        "",
    ],
)
def test_debugger_properties_read_none_for_missing_or_wrong_shapes(payload: object) -> None:
    event = _debugger(payload)
    assert event.service_sid is None
    assert event.resource_sid is None
    assert event.more_info is None
    assert event.webhook_request is None
    assert event.webhook_response is None
    assert event.error_code is None
    if not (isinstance(payload, dict) and isinstance(payload.get("webhook"), dict)):
        assert event.webhook is None


def test_debugger_properties_without_a_payload() -> None:
    event = DebuggerEvent({"Level": "ERROR"})
    assert event.payload is None
    for name in (
        "error_code",
        "alert_code",
        "resource_sid",
        "service_sid",
        "more_info",
        "webhook",
        "webhook_request",
        "webhook_response",
    ):
        assert getattr(event, name) is None, name


def test_debugger_properties_of_a_payload_over_the_bound_read_none() -> None:
    padding = "x" * LIMIT
    event = _debugger({**FAILED_WEBHOOK, "padding": padding})
    assert event.payload is None
    assert event.error_code is None
    assert event.webhook is None
    assert _debugger("[" * 200_000).payload is None


# -- path and query ----------------------------------------------------------------------------
EVERY_CLASS = [TwilioEvent, *FIELDS, DebuggerEvent, twilio.CallStatusEvent]


@pytest.mark.parametrize("klass", EVERY_CLASS, ids=lambda klass: klass.__name__)
def test_path_and_query_are_empty_until_the_listener_places_the_event(
    klass: type[TwilioEvent],
) -> None:
    event = klass({"CallSid": "CA1"})
    assert event.path is None
    assert event.query == {}
    assert len(event.query) == 0


@pytest.mark.parametrize("klass", EVERY_CLASS, ids=lambda klass: klass.__name__)
def test_at_sets_the_path_and_the_raw_query(klass: type[TwilioEvent]) -> None:
    event = klass({"CallSid": "CA1"})
    event._at("/voice/menu", "step=2&lang=en&step=3&blank=&bare&name=Ana+Lu&enc=%2Fa%26b%3D")
    assert event.path == "/voice/menu"
    assert dict(event.query) == {
        "step": ("2", "3"),
        "lang": ("en",),
        "blank": ("",),
        "bare": ("",),
        "name": ("Ana Lu",),
        "enc": ("/a&b=",),
    }
    assert list(event.query) == ["step", "lang", "blank", "bare", "name", "enc"]
    with pytest.raises(TypeError):
        event.query["step"] = ("9",)  # type: ignore[index]
    assert event["CallSid"] == "CA1"  # the parameters are not the query's


def test_an_empty_query_reads_an_empty_mapping() -> None:
    event = GatherEvent({"CallSid": "CA1"})
    event._at("/voice/menu", "")
    assert event.path == "/voice/menu"
    assert event.query == {}


def test_the_query_does_not_mix_with_the_parameters() -> None:
    event = GatherEvent({"Digits": "1", "CallSid": "CA1"})
    event._at("/", "Digits=9&menu=main")
    assert event.digits == "1"
    assert event.query["Digits"] == ("9",)
    assert "menu" not in event


def test_path_and_query_cannot_be_set() -> None:
    event = GatherEvent({})
    with pytest.raises(AttributeError):
        event.path = "/x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        event.query = {}  # type: ignore[misc]
