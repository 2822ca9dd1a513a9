"""The registry of kinds (``kinds/``): looking a kind up by name, by event and by
service, a row's callbacks and ranks, and recognising a request's kind.

``tests/e2e/test_kinds.py`` checks every row end to end (payloads, the test kit,
``twilio-trigger send``, metrics, the inspector); this file the lookups themselves.
"""

from __future__ import annotations

import pytest

from tests.services import Tracker
from twilio_trigger import (
    CallStatusEvent,
    CallStatusService,
    Listener,
    RecordingStatusEvent,
    RecordingStatusService,
    ServiceError,
    SmsStatusChangeEvent,
    SmsStatusService,
)
from twilio_trigger._core.kinds import (
    FALLBACK,
    KINDS,
    kind_named,
    kind_of_event,
    kind_of_service,
    recognise,
)


@pytest.fixture
def listener() -> Listener:
    return Listener(0, auth_tokens=["t"])


def test_the_class_instead_of_an_instance_is_refused(listener: Listener) -> None:
    with pytest.raises(ServiceError, match="instance"):
        listener.attach(Tracker)
    assert listener.services == ()


@pytest.mark.parametrize("thing", [object(), "service", 3, None, SmsStatusChangeEvent({})])
def test_a_non_service_is_refused(listener: Listener, thing: object) -> None:
    with pytest.raises(ServiceError, match="SmsStatusService"):
        listener.attach(thing)


def test_a_class_of_both_kinds_is_refused(listener: Listener) -> None:
    class Both(SmsStatusService, CallStatusService):  # type: ignore[misc]
        pass

    with pytest.raises(ServiceError, match="both"):
        listener.attach(Both())
    assert listener.services == ()


# -- kind_named, kind_of_event -----------------------------------------------------------
def test_kind_named_finds_each_row_and_refuses_another_name() -> None:
    assert [kind_named(kind.name) for kind in KINDS] == list(KINDS)
    for unknown in ("SMS", "calls", "", "message"):
        with pytest.raises(KeyError):
            kind_named(unknown)


def test_kind_of_event_finds_the_row_of_a_subclass_of_an_event_class() -> None:
    class Outbound(CallStatusEvent):
        __slots__ = ()

    class Twice(Outbound):
        __slots__ = ()

    event = Twice([("CallSid", "CA1"), ("CallStatus", "ringing")])
    assert kind_of_event(event) is kind_named("call")
    assert kind_of_event(SmsStatusChangeEvent({"MessageStatus": "sent"})) is kind_named("sms")
    assert kind_of_event(RecordingStatusEvent({})) is kind_named("recording")


# -- kind_of_service -------------------------------------------------------------------
def test_kind_of_service_gives_the_row_of_each_base_class() -> None:
    class Recordings(RecordingStatusService):
        pass

    assert kind_of_service(Tracker()) is kind_named("sms")
    assert kind_of_service(Recordings()) is kind_named("recording")
    assert kind_of_service(CallStatusService()) is kind_named("call")


def test_kind_of_service_shows_how_to_attach_an_instance_of_a_class() -> None:
    with pytest.raises(ServiceError) as caught:
        kind_of_service(Tracker)
    assert str(caught.value) == "attach an instance, not the class: attach(Tracker())"


def test_kind_of_service_names_every_base_class_for_a_non_service() -> None:
    class Lookalike:
        def on_delivered(self, event: SmsStatusChangeEvent) -> None:
            pass

    with pytest.raises(ServiceError) as caught:
        kind_of_service(Lookalike())
    message = str(caught.value)
    assert message.startswith("Lookalike is not a service")
    assert "subclass twilio_trigger." in message
    for kind in KINDS:
        assert kind.service_class.__name__ in message


def test_kind_of_service_names_both_base_classes_of_a_service_of_two_kinds() -> None:
    class Both(RecordingStatusService, CallStatusService):  # type: ignore[misc]
        pass

    with pytest.raises(ServiceError) as caught:
        kind_of_service(Both())
    message = str(caught.value)
    assert "Both subclasses both" in message
    assert "RecordingStatusService" in message
    assert "CallStatusService" in message
    assert "SmsStatusService" not in message


# -- Kind.callback_for -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "value", "callback"),
    [
        ("sms", "delivered", "on_delivered"),
        ("sms", "Delivered", "on_delivered"),
        ("sms", "  PARTIALLY_DELIVERED\t", "on_partially_delivered"),
        ("call", "in-progress", "on_in_progress"),
        ("call", " No-Answer ", "on_no_answer"),
        ("recording", "ABSENT", "on_absent"),
    ],
)
def test_callback_for_tolerates_case_and_surrounding_spaces(
    kind: str, value: str, callback: str
) -> None:
    assert kind_named(kind).callback_for(value) == callback


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("sms", None),
        ("sms", ""),
        ("sms", "   "),
        ("sms", "teleported"),
        ("sms", "on_delivered"),  # a callback's name is not a status
        ("sms", "de livered"),  # spaces inside are not forgiven
        ("sms", "ringing"),  # another kind's status
        ("call", "in progress"),
        ("call", "delivered"),
        ("recording", "completed!"),
    ],
)
def test_callback_for_refuses_values_the_kind_does_not_know(kind: str, value: str | None) -> None:
    assert kind_named(kind).callback_for(value) is None


def test_each_kinds_callbacks_are_on_and_its_documented_events() -> None:
    for kind in KINDS:
        if kind.callback is not None:
            # One callback for every event of the kind (a verb's result, ...).
            assert kind.callbacks == (kind.callback,)
            assert {kind.callback_for(event) for event in (*kind.events, None)} == {kind.callback}
            continue
        assert kind.events
        if kind.name == "conversations":
            # onMessageAdded -> on_message_added
            expected = tuple(
                "on_"
                + "".join(f"_{c.lower()}" if c.isupper() else c for c in event[2:]).lstrip("_")
                for event in kind.events
            )
        else:
            expected = tuple(
                "on_" + event.replace("-", "_").replace(".", "_").lower() for event in kind.events
            )
        assert kind.callbacks == expected
        assert [kind.callback_for(event) for event in kind.events] == list(kind.callbacks)


def test_the_callbacks_of_the_new_families_are_those_of_the_design() -> None:
    conference = kind_named("conference").callbacks
    assert conference == (
        "on_conference_start", "on_conference_end", "on_participant_join",
        "on_participant_leave", "on_participant_mute", "on_participant_unmute",
        "on_participant_hold", "on_participant_unhold", "on_participant_modify",
        "on_participant_speech_start", "on_participant_speech_stop",
        "on_announcement_end", "on_announcement_fail",
    )  # fmt: skip
    conversations = kind_named("conversations")
    assert conversations.callback_for("onMessageAdded") == "on_message_added"
    assert conversations.callback_for("onConversationStateUpdated") == (
        "on_conversation_state_updated"
    )
    assert conversations.callback_for("onMessageAdd") == "on_message_add"
    assert conversations.callback_for("onDeliveryUpdated") == "on_delivery_updated"
    taskrouter = kind_named("taskrouter")
    assert taskrouter.callback_for("task.created") == "on_task_created"
    assert taskrouter.callback_for("reservation.accepted") == "on_reservation_accepted"
    assert taskrouter.callback_for("task-queue.expression.updated") == (
        "on_task_queue_expression_updated"
    )
    assert taskrouter.callback_for("worker.activity.update") == "on_worker_activity_update"
    assert taskrouter.callback_for("task.made-up") is None
    for name, callback in (
        ("gather", "on_gather"), ("dial", "on_dial"), ("record", "on_record"),
        ("enqueue", "on_enqueue"), ("queue_wait", "on_queue_wait"), ("dequeue", "on_dequeue"),
        ("pay", "on_pay"), ("pay_status", "on_pay_status"), ("transcription", "on_transcription"),
        ("gather_partial", "on_gather_partial"), ("amd", "on_machine_detection"),
        ("assignment", "on_assignment"), ("other", "on_event"),
    ):  # fmt: skip
        assert kind_named(name).callbacks == (callback,)


# -- Kind.rank ---------------------------------------------------------------------------
#: What every status callback of a call carries (a request for TwiML does not).
_CALLBACK = {"CallbackSource": "call-progress-events"}


def test_rank_prefers_the_sequence_parameter_to_the_status() -> None:
    call = kind_named("call")
    assert call.sequence_param == "SequenceNumber"
    late_ringing = CallStatusEvent({**_CALLBACK, "CallStatus": "ringing", "SequenceNumber": "9"})
    early_completed = CallStatusEvent(
        {**_CALLBACK, "CallStatus": "completed", "SequenceNumber": "0"}
    )
    assert call.rank(late_ringing) == 9
    assert call.rank(early_completed) == 0
    unnumbered = CallStatusEvent({**_CALLBACK, "CallStatus": "completed"})
    assert call.rank(unnumbered) == call.ranks["completed"]


@pytest.mark.parametrize("sequence", ["", "x1", "-3", "+3", "1e3", "٣", "1234567890"])
def test_rank_falls_back_to_the_status_for_an_unusable_sequence(sequence: str) -> None:
    call = kind_named("call")
    event = CallStatusEvent({**_CALLBACK, "CallStatus": " Ringing ", "SequenceNumber": sequence})
    assert call.rank(event) == call.ranks["ringing"]


@pytest.mark.parametrize("status", ["ringing", "in-progress", "completed"])
def test_a_calls_request_for_twiml_has_no_place_in_its_order(status: str) -> None:
    # Its status's rank is no sequence number: compared with the callbacks'
    # (numbered from 0), a `ringing` request made the call's `completed` stale.
    call = kind_named("call")
    assert call.rank(CallStatusEvent({"CallStatus": status, "Direction": "inbound"})) is None
    assert call.rank(CallStatusEvent({"CallStatus": status, "SequenceNumber": "3"})) is None


def test_rank_of_a_kind_without_a_sequence_parameter_ignores_one() -> None:
    sms = kind_named("sms")
    assert sms.sequence_param is None
    event = SmsStatusChangeEvent({"MessageStatus": "sent", "SequenceNumber": "99"})
    assert sms.rank(event) == sms.ranks["sent"]
    assert sms.rank(SmsStatusChangeEvent({"MessageStatus": "teleported"})) is None
    assert sms.rank(SmsStatusChangeEvent({})) is None


# -- recognise ------------------------------------------------------------------------------
def test_the_registry_keeps_its_order_of_precedence() -> None:
    # The order is precedence (the first kind to recognise a request wins); the rows
    # are in the modules of their families and kinds/__init__.py puts them in order.
    assert [kind.name for kind in KINDS] == [
        "sms", "recording", "conference", "transcription", "gather_partial", "dial",
        "enqueue", "dequeue", "queue_wait", "pay_status", "pay", "record", "gather", "amd",
        "call", "debugger", "conversations", "assignment", "taskrouter", "other",
    ]  # fmt: skip
    assert KINDS[-1] is FALLBACK


def test_recognise_tries_the_kinds_in_the_registrys_order() -> None:
    everything = {"RecordingStatus": "completed", "CallStatus": "completed", "SmsStatus": "sent"}
    assert recognise(everything) is kind_named("recording")
    assert recognise({"CallStatus": "busy", "MessageStatus": "sent"}) is kind_named("call")
    assert recognise({"SmsStatus": "received"}) is kind_named("sms")
    assert recognise({"MessageStatus": "sent"}) is kind_named("sms")


def test_recognise_tries_the_preferred_kinds_first() -> None:
    first = {"RecordingStatus": "completed", "CallStatus": "completed", "MessageStatus": "sent"}
    assert recognise(first, (kind_named("sms"),)) is kind_named("sms")
    assert recognise(first, (kind_named("call"), kind_named("sms"))) is kind_named("call")
    # A preferred kind that does not recognise the request is passed over.
    assert recognise({"CallStatus": "ringing"}, (kind_named("sms"),)) is kind_named("call")


def test_recognise_counts_empty_values_as_absent() -> None:
    assert recognise({"RecordingStatus": "", "CallStatus": "ringing"}) is kind_named("call")
    assert recognise({"CallStatus": "", "MessageStatus": "", "SmsStatus": "x"}) is kind_named("sms")
    assert recognise({"CallStatus": "", "MessageStatus": "", "SmsStatus": ""}) is None
    assert recognise({"CallSid": "CA1", "MessageSid": "SM1"}) is None
    assert recognise({}, KINDS) is None
