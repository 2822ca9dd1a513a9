"""The service base classes and resolving a service's callbacks (``services.py``):
the callbacks a service may define, and the rules attaching one applies.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.services import Tracker
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
from twilio_trigger._core.routing import to_event
from twilio_trigger._core.services import resolve_callbacks
from twilio_trigger._dispatch import Dispatcher
from twilio_trigger._invoke import Outcome

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


def dispatch(dispatcher: Dispatcher, params: list[tuple[str, str]]) -> Outcome:
    event = to_event(params)
    assert event is not None
    return asyncio.run(dispatcher.dispatch(event)).outcome


def test_callback_names_are_those_of_the_design() -> None:
    assert list(SMS_CALLBACKS) == DESIGN_SMS
    assert list(CALL_CALLBACKS) == DESIGN_CALL
    assert (len(SMS_CALLBACKS), len(CALL_CALLBACKS)) == (13, 9)
    assert SmsStatusService.callback_names == SMS_CALLBACKS
    # A call service also receives the results of TwiML verbs, after its statuses.
    assert CallStatusService.callback_names[: len(CALL_CALLBACKS)] == CALL_CALLBACKS
    assert set(CallStatusService.callback_names[len(CALL_CALLBACKS) :]) == {
        "on_gather", "on_gather_partial", "on_transcription", "on_dial", "on_record",
        "on_enqueue", "on_queue_wait", "on_dequeue", "on_pay", "on_pay_status",
        "on_machine_detection",
    }  # fmt: skip


def test_resolved_callbacks_know_sync_from_async() -> None:
    table = resolve_callbacks(Tracker(), SmsStatusService)
    assert set(table) == {"on_delivered", "on_failed"}
    assert table["on_delivered"].is_async
    assert not table["on_failed"].is_async
    assert table["on_failed"].label == "Tracker.on_failed"


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


def test_a_sync_callback_with_two_required_arguments_is_refused(listener: Listener) -> None:
    # A second argument is the transaction, which only a coroutine can use.
    class TwoArgs(SmsStatusService):
        def on_sent(self, event: SmsStatusChangeEvent, extra: object) -> None:  # type: ignore[override]
            pass

    with pytest.raises(
        ServiceError, match=r"coroutine function, async def on_sent\(self, event, tx\)"
    ):
        listener.attach(TwoArgs())


def test_a_callback_with_three_required_arguments_is_refused(listener: Listener) -> None:
    class ThreeArgs(SmsStatusService):
        async def on_sent(self, event: SmsStatusChangeEvent, tx: object, more: object) -> None:  # type: ignore[override]
            pass

    with pytest.raises(ServiceError, match="must accept the event"):
        listener.attach(ThreeArgs())


def test_a_callback_with_no_argument_is_refused(listener: Listener) -> None:
    class NoArgs(SmsStatusService):
        def on_sent(self) -> None:  # type: ignore[override]
            pass

    with pytest.raises(ServiceError, match="must accept the event"):
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

    # mypy cannot match a mixin's method with the base class's callback attribute,
    # a union of the one-argument and the transaction-taking form.
    class Child(Mixin, Base):  # type: ignore[misc]
        pass

    child = Child()
    assert set(resolve_callbacks(child, SmsStatusService)) == {"on_sent", "on_delivered"}
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
