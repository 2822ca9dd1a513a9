"""Calling the callbacks (``_dispatch.py``): the Dispatcher's services, the outcome of
each event, sync and async callbacks, returned errors and time limits.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from tests.services import Calls, Tracker
from twilio_trigger import (
    FallbackService,
    Listener,
    ServiceError,
    SmsStatusChangeEvent,
    SmsStatusService,
    TwilioEvent,
)
from twilio_trigger._core.payloads import call_event, sms_event
from twilio_trigger._core.routing import to_event
from twilio_trigger._dispatch import Dispatcher
from twilio_trigger._invoke import Deadlines, Outcome, Result, describe_error


@pytest.fixture
def listener() -> Listener:
    return Listener(0, auth_tokens=["t"])


def dispatch(dispatcher: Dispatcher, params: list[tuple[str, str]]) -> Outcome:
    event = to_event(params)
    assert event is not None
    return asyncio.run(dispatcher.dispatch(event)).outcome


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


# -- sync and async callbacks -------------------------------------------------------------
class Where(SmsStatusService):
    """Notes the thread each callback ran on, and returns what it is told to."""

    def __init__(self) -> None:
        self.threads: dict[str, int] = {}
        self.returns: object = None

    async def on_delivered(self, event: SmsStatusChangeEvent) -> object:
        self.threads["on_delivered"] = threading.get_ident()
        return self.returns

    def on_sent(self, event: SmsStatusChangeEvent) -> object:
        self.threads["on_sent"] = threading.get_ident()
        return self.returns


def run_dispatch(
    dispatcher: Dispatcher, status: str, deadlines: Deadlines | None = None
) -> tuple[Result, int]:
    """Dispatch an event of *status*; the result and the event loop's thread."""

    async def scenario() -> tuple[Result, int]:
        result = await dispatcher.dispatch(sms_event(status), deadlines)
        return result, threading.get_ident()

    return asyncio.run(scenario())


def test_async_callbacks_run_on_the_loop_and_sync_ones_in_a_worker_thread() -> None:
    where, dispatcher = Where(), Dispatcher()
    dispatcher.attach(where)
    async_result, loop_thread = run_dispatch(dispatcher, "delivered")
    sync_result, _ = run_dispatch(dispatcher, "sent")
    assert (async_result.outcome, async_result.callback) == (Outcome.HANDLED, "Where.on_delivered")
    assert (sync_result.outcome, sync_result.callback) == (Outcome.HANDLED, "Where.on_sent")
    assert where.threads["on_delivered"] == loop_thread
    assert where.threads["on_sent"] != loop_thread
    assert async_result.seconds is not None
    assert async_result.seconds >= 0


def test_what_a_callback_returns_is_kept_as_the_results_value() -> None:
    where, dispatcher = Where(), Dispatcher()
    dispatcher.attach(where)
    where.returns = "Thanks!"
    for status in ("delivered", "sent"):
        result, _ = run_dispatch(dispatcher, status)
        assert (result.outcome, result.value, result.error) == (Outcome.HANDLED, "Thanks!", None)


@pytest.mark.parametrize("status", ["delivered", "sent"], ids=["async", "sync"])
def test_an_exception_returned_counts_as_a_failure(status: str) -> None:
    where, dispatcher = Where(), Dispatcher()
    dispatcher.attach(where)
    returned = LookupError("the order is gone")
    where.returns = returned
    result, _ = run_dispatch(dispatcher, status)
    assert result.outcome is Outcome.FAILED
    assert result.error is returned
    assert result.value is None
    assert not result.outcome.ok


@pytest.mark.parametrize("status", ["delivered", "sent"], ids=["async", "sync"])
def test_an_exception_raised_is_a_failure_with_its_traceback(status: str) -> None:
    class Raising(SmsStatusService):
        async def on_delivered(self, event: SmsStatusChangeEvent) -> None:
            raise KeyError("carrier")

        def on_sent(self, event: SmsStatusChangeEvent) -> None:
            raise KeyError("carrier")

    dispatcher = Dispatcher()
    dispatcher.attach(Raising())
    result, _ = run_dispatch(dispatcher, status)
    assert result.outcome is Outcome.FAILED
    assert isinstance(result.error, KeyError)
    described = describe_error(result.error)
    assert described.startswith("Traceback (most recent call last):")
    assert described.endswith("KeyError: 'carrier'")
    assert f"in on_{status}" in described


def test_a_sync_wrapper_returning_a_coroutine_is_awaited() -> None:
    ran: list[str] = []

    async def later(event: SmsStatusChangeEvent) -> None:
        ran.append(event.status or "")

    class Wrapped(SmsStatusService):
        def on_sent(self, event: SmsStatusChangeEvent) -> object:
            return later(event)

    dispatcher = Dispatcher()
    dispatcher.attach(Wrapped())
    result, _ = run_dispatch(dispatcher, "sent")
    assert result.outcome is Outcome.HANDLED
    assert ran == ["sent"]


def test_the_outcomes_that_need_another_attempt() -> None:
    assert {outcome for outcome in Outcome if not outcome.ok} == {
        Outcome.FAILED,
        Outcome.TIMED_OUT,
    }


# -- time limits ---------------------------------------------------------------------------
def test_an_async_callback_past_its_time_limit_is_cancelled() -> None:
    cancelled = threading.Event()

    class Stuck(SmsStatusService):
        async def on_delivered(self, event: SmsStatusChangeEvent) -> None:
            try:
                await asyncio.Event().wait()  # never set: only the time limit ends it
            except asyncio.CancelledError:
                cancelled.set()
                raise

    dispatcher = Dispatcher()
    dispatcher.attach(Stuck())
    result, _ = run_dispatch(dispatcher, "delivered", Deadlines(0.05))
    assert result.outcome is Outcome.TIMED_OUT
    assert result.callback == "Stuck.on_delivered"
    assert isinstance(result.error, TimeoutError)
    assert result.still_running is None  # nothing goes on: it was cancelled
    assert cancelled.is_set()
    assert not result.outcome.ok


def test_a_sync_callback_past_its_time_limit_is_told_and_finishes_in_its_thread() -> None:
    release = threading.Event()
    finished = threading.Event()

    class Slow(SmsStatusService):
        def on_sent(self, event: SmsStatusChangeEvent) -> object:
            assert release.wait(30), "the test never released the callback"
            finished.set()
            return ValueError("late and failed")

    async def scenario() -> tuple[Result, BaseException | None]:
        dispatcher = Dispatcher()
        dispatcher.attach(Slow())
        result = await dispatcher.dispatch(sms_event("sent"), Deadlines(0.05))
        assert not finished.is_set()  # told of the time limit while it still runs
        release.set()
        assert result.still_running is not None
        late = await asyncio.wait_for(result.still_running, 30)
        return result, late

    result, late = asyncio.run(scenario())
    assert result.outcome is Outcome.TIMED_OUT
    assert isinstance(result.error, TimeoutError)
    assert finished.is_set()
    assert isinstance(late, ValueError)  # what it returned in the end, a failure
    assert str(late) == "late and failed"


def test_a_time_limit_shared_by_calls_on_successive_event_loops_lets_each_finish() -> None:
    where, dispatcher = Where(), Dispatcher()
    dispatcher.attach(where)
    deadlines = Deadlines(30.0)
    for status in ("delivered", "sent", "delivered"):
        result, _ = run_dispatch(dispatcher, status, deadlines)  # a new loop each time
        assert result.outcome is Outcome.HANDLED


def test_a_status_twilio_added_later_reaches_the_fallback_service() -> None:
    # Twilio adds statuses (delivery_unknown, a new call status): no service can
    # have a callback for one yet, and a FallbackService receives it, typed as
    # its kind's event, with its status as sent.
    class Everything(FallbackService):
        def __init__(self) -> None:
            self.events: list[TwilioEvent] = []

        def on_event(self, event: TwilioEvent) -> None:
            self.events.append(event)

    dispatcher, everything = Dispatcher(), Everything()
    dispatcher.attach(Tracker())
    dispatcher.attach(everything)
    result, _ = run_dispatch(dispatcher, "delivery_unknown")
    assert (result.outcome, result.callback) == (Outcome.HANDLED, "Everything.on_event")
    assert dispatcher.label_for(sms_event("delivery_unknown")) == "Everything.on_event"
    (event,) = everything.events
    assert isinstance(event, SmsStatusChangeEvent)
    assert event.status == "delivery_unknown"
    # A known status without a callback stays the service's business: not the fallback's.
    assert run_dispatch(dispatcher, "sent")[0].outcome is Outcome.NO_CALLBACK
    assert len(everything.events) == 1


# -- events nobody handles -----------------------------------------------------------------
def test_events_nobody_handles_are_told_once_as_a_warning_then_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")
    dispatcher = Dispatcher()
    dispatcher.attach(Tracker())
    outcomes = [run_dispatch(dispatcher, status)[0].outcome for status in ("sent", "sent")]
    assert outcomes == [Outcome.NO_CALLBACK, Outcome.NO_CALLBACK]
    unknown = [run_dispatch(dispatcher, "teleported")[0].outcome for _ in range(2)]
    assert unknown == [Outcome.UNKNOWN_STATUS, Outcome.UNKNOWN_STATUS]
    levels = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "twilio_trigger"]
    assert [level for level, _ in levels] == [
        logging.WARNING,
        logging.DEBUG,
        logging.WARNING,
        logging.DEBUG,
    ]
    assert "def on_sent(self, event: twilio_trigger.SmsStatusChangeEvent)" in levels[0][1]
    assert "Tracker" in levels[0][1]
    assert "'teleported'" in levels[2][1]


def test_label_for_names_the_callback_an_event_would_run() -> None:
    dispatcher = Dispatcher()
    dispatcher.attach(Tracker())
    assert dispatcher.label_for(sms_event("delivered")) == "Tracker.on_delivered"
    assert dispatcher.label_for(sms_event("sent")) is None
    assert dispatcher.label_for(sms_event("teleported")) is None
    assert dispatcher.label_for(call_event("completed")) is None


def test_a_path_keeps_the_kinds_attached_at_it_until_they_are_detached() -> None:
    dispatcher = Dispatcher()
    tracker, calls = Tracker(), Calls()
    dispatcher.attach(tracker, path="/hooks")
    dispatcher.attach(calls, path="/hooks")
    assert [kind.name for kind in dispatcher.paths["/hooks"]] == ["sms", "call"]
    dispatcher.detach(tracker)
    assert [kind.name for kind in dispatcher.paths["/hooks"]] == ["call"]
    dispatcher.detach(calls)
    assert dispatcher.paths == {}
