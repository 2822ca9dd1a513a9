"""Attaching services to a listener, and routing an event to its callback."""

from __future__ import annotations

import asyncio

import pytest

from twilio_trigger import (
    CALL_CALLBACKS,
    SMS_CALLBACKS,
    CallStatusEvent,
    CallStatusService,
    Listener,
    ServiceError,
    SmsStatusChangeEvent,
    SmsStatusService,
)
from twilio_trigger._dispatch import Dispatcher, Outcome
from twilio_trigger._routing import callback_for, to_event
from twilio_trigger._services import resolve_callbacks

# DESIGN.md §1, in its order.
DESIGN_SMS = [
    "on_accepted", "on_queued", "on_sending", "on_sent", "on_failed", "on_delivered",
    "on_undelivered", "on_receiving", "on_received", "on_scheduled", "on_canceled", "on_read",
    "on_partially_delivered",
]  # fmt: skip
DESIGN_CALL = [
    "on_queued", "on_initiated", "on_ringing", "on_in_progress", "on_completed", "on_busy",
    "on_failed", "on_no_answer", "on_canceled",
]  # fmt: skip


@pytest.fixture
def listener() -> Listener:
    return Listener(0, auth_tokens=["t"])


class Tracker(SmsStatusService):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    async def on_delivered(self, event: SmsStatusChangeEvent) -> None:
        self.seen.append(("delivered", event.sid))

    def on_failed(self, event: SmsStatusChangeEvent) -> None:
        self.seen.append(("failed", event.sid))


class Calls(CallStatusService):
    async def on_completed(self, event: CallStatusEvent) -> None:
        pass


def dispatch(dispatcher: Dispatcher, params: list[tuple[str, str]]) -> Outcome:
    event = to_event(params)
    assert event is not None
    return asyncio.run(dispatcher.dispatch(event)).outcome


def test_callback_names_are_those_of_the_design() -> None:
    assert list(SMS_CALLBACKS) == DESIGN_SMS
    assert list(CALL_CALLBACKS) == DESIGN_CALL
    assert (len(SMS_CALLBACKS), len(CALL_CALLBACKS)) == (13, 9)
    assert SmsStatusService.callback_names == SMS_CALLBACKS
    assert CallStatusService.callback_names == CALL_CALLBACKS


# -- attach / detach -------------------------------------------------------------------


def test_a_valid_service_attaches_and_detaches(listener: Listener) -> None:
    tracker, calls = Tracker(), Calls()
    listener.attach(tracker)
    listener.attach(calls)
    assert listener.services == (tracker, calls)
    listener.detach(tracker)
    assert list(listener.services) == [calls]
    listener.attach(Tracker())  # the SMS slot is free again
    assert len(listener.services) == 2


def test_resolved_callbacks_know_sync_from_async() -> None:
    table = resolve_callbacks(Tracker())
    assert set(table) == {"on_delivered", "on_failed"}
    assert table["on_delivered"].is_async
    assert not table["on_failed"].is_async
    assert table["on_failed"].label == "Tracker.on_failed"


def test_attached_callbacks_are_called() -> None:
    dispatcher = Dispatcher()
    tracker = Tracker()
    dispatcher.attach(tracker)
    assert dispatch(dispatcher, [("MessageSid", "SM1"), ("MessageStatus", "delivered")]) is (
        Outcome.HANDLED
    )
    assert dispatch(dispatcher, [("MessageSid", "SM2"), ("MessageStatus", "failed")]) is (
        Outcome.HANDLED
    )
    assert dispatch(dispatcher, [("MessageSid", "SM3"), ("MessageStatus", "sent")]) is (
        Outcome.NO_CALLBACK
    )
    assert dispatch(dispatcher, [("CallSid", "CA1"), ("CallStatus", "busy")]) is (
        Outcome.NO_SERVICE
    )
    assert tracker.seen == [("delivered", "SM1"), ("failed", "SM2")]


def test_a_misspelt_callback_is_refused_with_the_valid_names(listener: Listener) -> None:
    class Typo(SmsStatusService):
        def on_deliverd(self, event: SmsStatusChangeEvent) -> None:
            pass

    with pytest.raises(ServiceError) as caught:
        listener.attach(Typo())
    message = str(caught.value)
    assert "on_deliverd" in message
    for name in SMS_CALLBACKS:
        assert name in message
    assert listener.services == ()


def test_a_call_callback_on_an_sms_service_is_refused(listener: Listener) -> None:
    class Confused(SmsStatusService):
        def on_ringing(self, event: SmsStatusChangeEvent) -> None:
            pass

    with pytest.raises(ServiceError, match="on_ringing"):
        listener.attach(Confused())


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


def test_a_second_service_of_a_kind_is_refused(listener: Listener) -> None:
    first = Tracker()
    listener.attach(first)
    with pytest.raises(ServiceError, match="one service of each kind"):
        listener.attach(Tracker())
    with pytest.raises(ServiceError):
        listener.attach(first)
    assert listener.services == (first,)


def test_detaching_a_service_not_attached_is_refused(listener: Listener) -> None:
    with pytest.raises(ServiceError, match="not attached"):
        listener.detach(Tracker())
    listener.attach(Tracker())
    with pytest.raises(ServiceError, match="not attached"):
        listener.detach(Tracker())  # another instance of the same class
    assert len(listener.services) == 1


def test_a_callback_with_two_required_arguments_is_refused(listener: Listener) -> None:
    class TwoArgs(SmsStatusService):
        def on_sent(self, event: SmsStatusChangeEvent, extra: object) -> None:  # type: ignore[override]
            pass

    with pytest.raises(ServiceError, match="one argument"):
        listener.attach(TwoArgs())


def test_a_callback_with_no_argument_is_refused(listener: Listener) -> None:
    class NoArgs(SmsStatusService):
        def on_sent(self) -> None:  # type: ignore[override]
            pass

    with pytest.raises(ServiceError, match="one argument"):
        listener.attach(NoArgs())


def test_a_callback_with_optional_extra_arguments_is_accepted(listener: Listener) -> None:
    class Optional(SmsStatusService):
        def on_sent(self, event: SmsStatusChangeEvent, extra: object = None) -> None:
            pass

        @staticmethod
        def on_failed(*args: object) -> None:
            pass

    listener.attach(Optional())
    assert len(listener.services) == 1


def test_a_non_callable_callback_is_refused(listener: Listener) -> None:
    class NotCallable(SmsStatusService):
        on_sent = 3  # type: ignore[assignment]

    with pytest.raises(ServiceError, match="not callable"):
        listener.attach(NotCallable())


def test_inherited_callbacks_are_found(listener: Listener) -> None:
    calls: list[str] = []

    class Base(SmsStatusService):
        def on_sent(self, event: SmsStatusChangeEvent) -> None:
            calls.append("base sent")

    class Mixin:
        async def on_delivered(self, event: SmsStatusChangeEvent) -> None:
            calls.append("mixin delivered")

    class Child(Mixin, Base):
        pass

    assert set(resolve_callbacks(Child())) == {"on_sent", "on_delivered"}
    listener.attach(Child())
    dispatcher = Dispatcher()
    dispatcher.attach(Child())
    assert dispatch(dispatcher, [("MessageStatus", "sent")]) is Outcome.HANDLED
    assert dispatch(dispatcher, [("MessageStatus", "delivered")]) is Outcome.HANDLED
    assert calls == ["base sent", "mixin delivered"]


def test_a_misspelling_in_a_user_base_class_is_found(listener: Listener) -> None:
    class Base(CallStatusService):
        def on_complete(self, event: CallStatusEvent) -> None:
            pass

    class Child(Base):
        def on_completed(self, event: CallStatusEvent) -> None:
            pass

    with pytest.raises(ServiceError, match=r"on_complete\b"):
        listener.attach(Child())


# -- the decorator ---------------------------------------------------------------------


def test_the_decorator_returns_the_class_and_attaches_an_instance(listener: Listener) -> None:
    @listener.service
    class Decorated(CallStatusService):
        def on_busy(self, event: CallStatusEvent) -> None:
            pass

    assert isinstance(Decorated, type)
    assert Decorated.__name__ == "Decorated"
    (attached,) = listener.services
    assert type(attached) is Decorated


def test_the_decorator_refuses_a_class_needing_arguments(listener: Listener) -> None:
    class NeedsArgs(SmsStatusService):
        def __init__(self, database: str) -> None:
            self.database = database

    with pytest.raises(ServiceError, match="NeedsArgs"):
        listener.service(NeedsArgs)
    assert listener.services == ()


def test_the_decorator_applies_the_attach_rules(listener: Listener) -> None:
    class Typo(SmsStatusService):
        def on_recieved(self, event: SmsStatusChangeEvent) -> None:
            pass

    with pytest.raises(ServiceError, match="on_recieved"):
        listener.service(Typo)
    with pytest.raises(ServiceError):
        listener.service(Tracker())  # type: ignore[type-var]


# -- routing ---------------------------------------------------------------------------


def test_call_status_wins_over_message_status() -> None:
    event = to_event([("MessageStatus", "delivered"), ("CallStatus", "completed")])
    assert isinstance(event, CallStatusEvent)
    assert callback_for(event) == "on_completed"


def test_message_status_routes_to_sms() -> None:
    event = to_event([("MessageSid", "SM1"), ("MessageStatus", "sent")])
    assert isinstance(event, SmsStatusChangeEvent)
    assert event.sid == "SM1"
    assert callback_for(event) == "on_sent"


def test_sms_status_alone_routes_to_sms() -> None:
    event = to_event([("SmsSid", "SM1"), ("SmsStatus", "received")])
    assert isinstance(event, SmsStatusChangeEvent)
    assert event.status == "received"
    assert callback_for(event) == "on_received"


def test_empty_status_values_count_as_absent() -> None:
    event = to_event([("CallStatus", ""), ("MessageStatus", "delivered")])
    assert isinstance(event, SmsStatusChangeEvent)
    assert callback_for(event) == "on_delivered"
    event = to_event([("MessageStatus", ""), ("SmsStatus", "sent")])
    assert isinstance(event, SmsStatusChangeEvent)
    assert callback_for(event) == "on_sent"
    assert to_event([("CallStatus", ""), ("MessageStatus", ""), ("SmsStatus", "")]) is None
    assert to_event([("MessageSid", "SM1"), ("Body", "hi")]) is None
    assert to_event([]) is None


def test_routing_keeps_every_parameter() -> None:
    params = [("CallStatus", "ringing"), ("X", "1"), ("X", "2")]
    event = to_event(params)
    assert event is not None
    assert event.params == tuple(params)
    assert event.getall("X") == ("1", "2")


@pytest.mark.parametrize(
    ("params", "callback"),
    [
        ([("CallStatus", "in-progress")], "on_in_progress"),
        ([("CallStatus", "no-answer")], "on_no_answer"),
        ([("CallStatus", "Ringing")], "on_ringing"),
        ([("CallStatus", " busy ")], "on_busy"),
        ([("MessageStatus", "Delivered")], "on_delivered"),
        ([("MessageStatus", "partially_delivered")], "on_partially_delivered"),
        ([("SmsStatus", "UNDELIVERED")], "on_undelivered"),
        ([("MessageStatus", "exploded")], None),
        ([("CallStatus", "exploded")], None),
        ([("MessageStatus", "in-progress")], None),  # a call status on a message
        ([("MessageStatus", "ringing")], None),
        ([("CallStatus", "delivered")], None),  # a message status on a call
        ([("CallStatus", "on_busy")], None),
    ],
)
def test_callback_for(params: list[tuple[str, str]], callback: str | None) -> None:
    event = to_event(params)
    assert event is not None
    assert callback_for(event) == callback


@pytest.mark.parametrize("name", SMS_CALLBACKS)
def test_every_sms_status_has_its_callback(name: str) -> None:
    status = name.removeprefix("on_")
    event = to_event([("MessageStatus", status)])
    assert event is not None
    assert callback_for(event) == name


@pytest.mark.parametrize("name", CALL_CALLBACKS)
def test_every_call_status_has_its_callback(name: str) -> None:
    status = name.removeprefix("on_").replace("_", "-")
    event = to_event([("CallStatus", status)])
    assert event is not None
    assert callback_for(event) == name
