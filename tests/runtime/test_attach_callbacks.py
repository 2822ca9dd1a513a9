"""Services and single callbacks at paths (``_dispatch.py``): a function's kind from its
annotation or its name, sync and async callbacks, detach, services of one base class at
several paths and listener-wide, the FallbackService, the warning for an unrecognised
webhook, and the paths a listener accepts.

Events are built as the listener builds them (``to_event`` with the path's preferred
kinds, then ``event._at(path, query)``) and dispatched with ``Dispatcher.dispatch``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping

import pytest

import twilio_trigger as twilio
from twilio_trigger import (
    CallStatusEvent,
    CallStatusService,
    ConferenceEvent,
    DialEvent,
    FallbackService,
    GatherEvent,
    Listener,
    ServiceError,
    SmsStatusChangeEvent,
    TwilioEvent,
)
from twilio_trigger._core.routing import to_event, unrecognised_event
from twilio_trigger._dispatch import Dispatcher
from twilio_trigger._invoke import Outcome, Result
from twilio_trigger.testing import (
    call_status_params,
    conference_params,
    dial_params,
    enqueue_params,
    gather_params,
    sms_status_params,
    unknown_params,
)


@pytest.fixture
def listener() -> Listener:
    return Listener(0, auth_tokens=["t"], path="/twilio")


def dispatcher_of(listener: Listener) -> Dispatcher:
    dispatcher = listener._dispatcher
    assert isinstance(dispatcher, Dispatcher)
    return dispatcher


def event_at(
    dispatcher: Dispatcher, params: Mapping[str, str], path: str | None = None, query: str = ""
) -> TwilioEvent:
    """The event of *params* as the listener makes it for a request at *path*."""
    pairs = list(params.items())
    prefer = dispatcher.paths.get(path, ()) if path is not None else ()
    event = to_event(pairs, prefer=prefer)
    if event is None:
        event = unrecognised_event(pairs)
    if path is not None:
        event._at(path, query)
    return event


def run(
    dispatcher: Dispatcher, params: Mapping[str, str], path: str | None = None, query: str = ""
) -> tuple[Result, TwilioEvent]:
    event = event_at(dispatcher, params, path, query)
    return asyncio.run(dispatcher.dispatch(event)), event


class Seen:
    """What the callbacks below were called with, and on which thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, TwilioEvent]] = []
        self.threads: list[threading.Thread] = []

    def add(self, name: str, event: TwilioEvent) -> str:
        self.calls.append((name, event))
        self.threads.append(threading.current_thread())
        return f"<Response><Say>{name}</Say></Response>"


SEEN = Seen()


@pytest.fixture(autouse=True)
def _fresh_seen() -> None:
    SEEN.calls.clear()
    SEEN.threads.clear()


# -- single callbacks: the module's own functions, as a user writes them -----------------------
def main_menu(event: GatherEvent) -> str:
    return SEEN.add("main_menu", event)


async def async_menu(event: GatherEvent) -> str:
    await asyncio.sleep(0)
    return SEEN.add("async_menu", event)


def after_dial(event: DialEvent) -> str:
    return SEEN.add("after_dial", event)


def on_gather(event):  # type: ignore[no-untyped-def]
    return SEEN.add("on_gather", event)


def on_delivered(event):  # type: ignore[no-untyped-def]
    return SEEN.add("on_delivered", event)


async def on_dial(event):  # type: ignore[no-untyped-def]
    return SEEN.add("on_dial", event)


def on_failed(event):  # type: ignore[no-untyped-def]
    return SEEN.add("on_failed", event)


def handle(event):  # type: ignore[no-untyped-def]
    return SEEN.add("handle", event)


def everything(event: TwilioEvent) -> None:
    SEEN.add("everything", event)


def on_conference_start(event: ConferenceEvent) -> None:
    SEEN.add("on_conference_start", event)


def on_teleported(event):  # type: ignore[no-untyped-def]
    return SEEN.add("on_teleported", event)


def unknown_annotation(event: NoSuchEvent) -> None:  # type: ignore[name-defined]  # noqa: F821
    SEEN.add("unknown_annotation", event)


@pytest.mark.parametrize(
    ("function", "expected"),
    [(main_menu, "main_menu"), (async_menu, "async_menu")],
    ids=["sync", "async"],
)
def test_a_function_annotated_with_gather_event_is_on_gather(
    listener: Listener, function: object, expected: str
) -> None:
    listener.attach(function, path="/voice/menu")
    dispatcher = dispatcher_of(listener)
    assert [kind.name for kind in dispatcher.paths["/voice/menu"]] == ["gather"]
    (service,) = listener.services
    assert isinstance(service, CallStatusService)
    result, event = run(dispatcher, gather_params("digits"), "/voice/menu", "step=2")
    assert result.outcome is Outcome.HANDLED
    assert result.value == f"<Response><Say>{expected}</Say></Response>"
    assert [(name, type(seen)) for name, seen in SEEN.calls] == [(expected, GatherEvent)]
    assert SEEN.calls[0][1] is event
    assert event.path == "/voice/menu"
    assert event.query == {"step": ("2",)}
    assert result.callback is not None
    assert result.callback.endswith(".on_gather")


def test_a_gather_with_nothing_entered_reaches_the_path_callback(listener: Listener) -> None:
    listener.attach(main_menu, path="/voice/menu")
    dispatcher = dispatcher_of(listener)
    result, event = run(dispatcher, gather_params("empty"), "/voice/menu")
    assert isinstance(event, GatherEvent)
    assert result.outcome is Outcome.HANDLED
    assert [name for name, _ in SEEN.calls] == ["main_menu"]
    # The same request at the listener's own path is the call's own.
    result, event = run(dispatcher, gather_params("empty"))
    assert type(event) is CallStatusEvent
    assert result.outcome is Outcome.NO_SERVICE


def test_a_sync_function_runs_in_a_worker_thread_and_an_async_one_on_the_loop(
    listener: Listener,
) -> None:
    listener.attach(main_menu, path="/voice/sync")
    listener.attach(after_dial, path="/voice/dial")
    listener.attach(on_dial)  # async, listener-wide
    dispatcher = dispatcher_of(listener)
    run(dispatcher, gather_params("digits"), "/voice/sync")
    run(dispatcher, dial_params("busy"))
    assert [name for name, _ in SEEN.calls] == ["main_menu", "on_dial"]
    assert SEEN.threads[0] is not threading.main_thread()
    assert SEEN.threads[1] is threading.main_thread()


def test_a_function_annotated_with_dial_event_is_on_dial(listener: Listener) -> None:
    listener.attach(after_dial, path="/voice/dial")
    dispatcher = dispatcher_of(listener)
    assert [kind.name for kind in dispatcher.paths["/voice/dial"]] == ["dial"]
    result, event = run(dispatcher, dial_params("no-answer"), "/voice/dial")
    assert isinstance(event, DialEvent)
    assert result.outcome is Outcome.HANDLED
    assert [name for name, _ in SEEN.calls] == ["after_dial"]


def test_a_function_named_on_gather_without_an_annotation(listener: Listener) -> None:
    listener.attach(on_gather, path="/voice/menu")
    dispatcher = dispatcher_of(listener)
    result, event = run(dispatcher, gather_params("speech"), "/voice/menu")
    assert isinstance(event, GatherEvent)
    assert result.outcome is Outcome.HANDLED
    assert [name for name, _ in SEEN.calls] == ["on_gather"]


def test_a_function_named_on_delivered_is_an_sms_callback(listener: Listener) -> None:
    listener.attach(on_delivered)
    (service,) = listener.services
    assert isinstance(service, twilio.SmsStatusService)
    dispatcher = dispatcher_of(listener)
    result, event = run(dispatcher, sms_status_params("delivered"))
    assert isinstance(event, SmsStatusChangeEvent)
    assert result.outcome is Outcome.HANDLED
    assert [name for name, _ in SEEN.calls] == ["on_delivered"]
    assert run(dispatcher, sms_status_params("sent"))[0].outcome is Outcome.NO_CALLBACK


def test_an_async_function_named_on_dial(listener: Listener) -> None:
    listener.attach(on_dial, path="/voice/dial")
    result, _ = run(dispatcher_of(listener), dial_params("completed"), "/voice/dial")
    assert result.outcome is Outcome.HANDLED
    assert result.value == "<Response><Say>on_dial</Say></Response>"


def test_an_annotation_tells_an_ambiguous_name_apart(listener: Listener) -> None:
    def on_failed(event: CallStatusEvent) -> None:  # the call's on_failed, not a message's
        SEEN.add("on_failed", event)

    listener.attach(on_failed)
    (service,) = listener.services
    assert isinstance(service, CallStatusService)
    dispatcher = dispatcher_of(listener)
    assert run(dispatcher, call_status_params("failed"))[0].outcome is Outcome.HANDLED
    assert run(dispatcher, sms_status_params("failed"))[0].outcome is Outcome.NO_SERVICE
    assert [name for name, _ in SEEN.calls] == ["on_failed"]


def test_an_annotation_of_a_kind_with_many_callbacks_needs_a_callback_name(
    listener: Listener,
) -> None:
    def menu(event: CallStatusEvent) -> None:
        pass

    with pytest.raises(ServiceError, match="name it after one of them") as raised:
        listener.attach(menu)
    assert "on_ringing" in str(raised.value)
    assert not listener.services
    listener.attach(on_conference_start)
    (service,) = listener.services
    assert isinstance(service, twilio.ConferenceService)


def test_a_twilio_event_annotation_is_a_fallback(listener: Listener) -> None:
    listener.attach(everything)
    (service,) = listener.services
    assert isinstance(service, FallbackService)
    result, event = run(dispatcher_of(listener), unknown_params("room-created"))
    assert type(event) is TwilioEvent
    assert result.outcome is Outcome.HANDLED
    assert [name for name, _ in SEEN.calls] == ["everything"]


@pytest.mark.parametrize("function", [handle, lambda event: None, unknown_annotation, print])
def test_a_function_whose_kind_cannot_be_told_is_refused(
    listener: Listener, function: object
) -> None:
    with pytest.raises(ServiceError, match="cannot tell which callback") as raised:
        listener.attach(function, path="/voice/menu")
    message = str(raised.value)
    assert "annotate its event" in message
    assert "on_gather" in message
    assert listener.services == ()
    assert dispatcher_of(listener).paths == {}


def test_on_failed_without_an_annotation_is_ambiguous(listener: Listener) -> None:
    # on_failed is both a message's and a call's callback.
    with pytest.raises(ServiceError, match=r"cannot tell which callback on_failed is"):
        listener.attach(on_failed)
    assert listener.services == ()


def test_a_name_no_kind_has_is_refused(listener: Listener) -> None:
    with pytest.raises(ServiceError, match="on_teleported"):
        listener.attach(on_teleported)


def test_detach_a_function(listener: Listener) -> None:
    listener.attach(main_menu, path="/voice/menu")
    listener.attach(on_delivered)
    dispatcher = dispatcher_of(listener)
    listener.detach(main_menu)
    assert dispatcher.paths == {}
    assert len(listener.services) == 1
    result, _ = run(dispatcher, gather_params("digits"), "/voice/menu")
    assert result.outcome is Outcome.NO_SERVICE
    assert SEEN.calls == []
    with pytest.raises(ServiceError, match="not attached"):
        listener.detach(main_menu)
    listener.detach(on_delivered)
    assert not listener.services
    listener.attach(main_menu, path="/voice/menu")  # attachable again
    assert run(dispatcher, gather_params("digits"), "/voice/menu")[0].outcome is Outcome.HANDLED


def test_a_function_attached_twice_at_one_path_is_refused(listener: Listener) -> None:
    listener.attach(main_menu, path="/voice/menu")
    with pytest.raises(ServiceError, match="already attached at /voice/menu"):
        listener.attach(async_menu, path="/voice/menu")
    listener.attach(async_menu, path="/voice/other")
    assert len(listener.services) == 2


# -- services of one base class at several paths -----------------------------------------------
class Menu(CallStatusService):
    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[TwilioEvent] = []

    def on_gather(self, event: GatherEvent) -> str:
        self.seen.append(event)
        return f"<Response><Say>{self.name}</Say></Response>"


class Calls(CallStatusService):
    def __init__(self) -> None:
        self.seen: list[tuple[str, TwilioEvent]] = []

    def on_gather(self, event: GatherEvent) -> str:
        self.seen.append(("on_gather", event))
        return "<Response><Say>listener-wide</Say></Response>"

    def on_ringing(self, event: CallStatusEvent) -> None:
        self.seen.append(("on_ringing", event))


def test_each_event_goes_to_its_paths_service(listener: Listener) -> None:
    sales, support, wide = Menu("sales"), Menu("support"), Calls()
    listener.attach(sales, path="/voice/sales")
    listener.attach(support, path="/voice/support")
    listener.attach(wide)
    dispatcher = dispatcher_of(listener)
    answers = {
        path: run(dispatcher, gather_params("digits"), path)[0].value
        for path in ("/voice/sales", "/voice/support", None)
    }
    assert answers == {
        "/voice/sales": "<Response><Say>sales</Say></Response>",
        "/voice/support": "<Response><Say>support</Say></Response>",
        None: "<Response><Say>listener-wide</Say></Response>",
    }
    assert [event.path for event in sales.seen] == ["/voice/sales"]
    assert [event.path for event in support.seen] == ["/voice/support"]
    assert [event.path for _, event in wide.seen] == [None]
    # A path nobody attached at is the listener's.
    result, _ = run(dispatcher, gather_params("digits"), "/voice/elsewhere")
    assert result.value == "<Response><Say>listener-wide</Say></Response>"


def test_a_callback_missing_at_the_path_falls_back_to_the_listener_wide_service(
    listener: Listener,
) -> None:
    sales, wide = Menu("sales"), Calls()
    listener.attach(sales, path="/voice/sales")
    listener.attach(wide)
    dispatcher = dispatcher_of(listener)
    result, event = run(dispatcher, call_status_params("ringing"), "/voice/sales", "leg=1")
    assert type(event) is CallStatusEvent
    assert result.outcome is Outcome.HANDLED
    assert result.callback == "Calls.on_ringing"
    assert [name for name, _ in wide.seen] == ["on_ringing"]
    assert wide.seen[0][1].path == "/voice/sales"
    assert wide.seen[0][1].query == {"leg": ("1",)}
    assert sales.seen == []
    gathered, _ = run(dispatcher, gather_params("digits"), "/voice/sales")
    assert gathered.callback == "Menu.on_gather"  # the path's own callback comes first
    completed, _ = run(dispatcher, call_status_params("completed"), "/voice/sales")
    assert completed.outcome is Outcome.NO_CALLBACK  # neither service has on_completed


def test_without_a_listener_wide_service_a_missing_callback_is_no_callback(
    listener: Listener,
) -> None:
    listener.attach(Menu("sales"), path="/voice/sales")
    dispatcher = dispatcher_of(listener)
    result, _ = run(dispatcher, call_status_params("busy"), "/voice/sales")
    assert result.outcome is Outcome.NO_CALLBACK
    elsewhere, _ = run(dispatcher, call_status_params("busy"))
    assert elsewhere.outcome is Outcome.NO_SERVICE


def test_attaching_at_the_listeners_own_path_is_listener_wide(listener: Listener) -> None:
    wide = Calls()
    listener.attach(wide, path="/twilio")
    dispatcher = dispatcher_of(listener)
    assert dispatcher.paths == {}
    result, _ = run(dispatcher, gather_params("digits"))
    assert result.callback == "Calls.on_gather"
    with pytest.raises(ServiceError, match="already attached"):
        listener.attach(Calls())  # the listener-wide slot is taken
    listener.attach(Menu("menu"), path="/voice/menu")  # another path is free


@pytest.mark.parametrize(
    "path",
    ["voice/menu", "", "/voice/menu?step=2", "/voice?", "/voice#top", "/voice/\nmenu", " /voice"],
)
def test_a_path_that_is_no_path_is_refused(listener: Listener, path: str) -> None:
    with pytest.raises(ServiceError, match="starts with /"):
        listener.attach(Menu("x"), path=path)
    with pytest.raises(ServiceError, match="starts with /"):
        listener.attach(main_menu, path=path)
    assert listener.services == ()
    assert dispatcher_of(listener).paths == {}


def test_the_health_and_metrics_paths_are_refused() -> None:
    listener = Listener(0, auth_tokens=["t"], health=True)
    with pytest.raises(ServiceError, match="health or metrics"):
        listener.attach(Menu("x"), path=listener.settings.healthz_path)


# -- the FallbackService -----------------------------------------------------------------------
class Fallback(FallbackService):
    def __init__(self) -> None:
        self.seen: list[TwilioEvent] = []

    def on_event(self, event: TwilioEvent) -> None:
        self.seen.append(event)


def test_the_fallback_gets_a_kind_with_no_service_attached(listener: Listener) -> None:
    fallback = Fallback()
    listener.attach(fallback)
    dispatcher = dispatcher_of(listener)
    result, event = run(dispatcher, conference_params("participant-join"))
    assert result.outcome is Outcome.HANDLED
    assert result.callback == "Fallback.on_event"
    assert fallback.seen == [event]
    assert isinstance(event, ConferenceEvent)  # the typed event of its kind
    unknown, other = run(dispatcher, unknown_params("room-ended"))
    assert unknown.outcome is Outcome.HANDLED
    assert type(other) is TwilioEvent
    assert fallback.seen[-1] is other


def test_the_fallback_does_not_get_a_kind_whose_service_lacks_the_callback(
    listener: Listener,
) -> None:
    fallback, wide = Fallback(), Calls()
    listener.attach(fallback)
    listener.attach(wide)
    dispatcher = dispatcher_of(listener)
    result, _ = run(dispatcher, call_status_params("completed"))
    assert result.outcome is Outcome.NO_CALLBACK
    assert fallback.seen == []
    queued, _ = run(dispatcher, enqueue_params("hangup"))  # a CallStatusService kind
    assert queued.outcome is Outcome.NO_CALLBACK
    assert fallback.seen == []


def test_a_fallback_at_a_path_takes_what_comes_there(listener: Listener) -> None:
    wide, local = Fallback(), Fallback()
    listener.attach(wide)
    listener.attach(local, path="/hooks/other")
    dispatcher = dispatcher_of(listener)
    run(dispatcher, unknown_params(), "/hooks/other")
    run(dispatcher, unknown_params())
    assert [event.path for event in local.seen] == ["/hooks/other"]
    assert [event.path for event in wide.seen] == [None]


# -- the warning for an unrecognised webhook ---------------------------------------------------
def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "twilio_trigger" and "no kind recognises" in record.getMessage()
    ]


def test_an_unrecognised_webhook_is_warned_of_once_per_shape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")
    dispatcher = Dispatcher()
    outcomes = [
        run(dispatcher, unknown_params("room-created"))[0].outcome,
        run(dispatcher, unknown_params("room-ended"))[0].outcome,  # same names, other values
        run(dispatcher, unknown_params("room-created", Extra="1"))[0].outcome,  # a new shape
        run(dispatcher, unknown_params("room-created", Extra="2"))[0].outcome,
    ]
    assert outcomes == [Outcome.NO_SERVICE] * 4
    told = records(caplog)
    assert [record.levelno for record in told] == [
        logging.WARNING,
        logging.DEBUG,
        logging.WARNING,
        logging.DEBUG,
    ]
    first = told[0].getMessage()
    for name in ("AccountSid", "RoomSid", "RoomName", "StatusCallbackEvent", "SequenceNumber"):
        assert name in first
    assert "FallbackService" in first
    assert "Extra" not in first
    assert "Extra" in told[2].getMessage()
    assert "room-created" not in first  # names, not values


def test_the_warning_escapes_the_parameter_names(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")
    forged = {
        "Name\nWARNING forged log line": "x",
        "\x1b[31mRed\x1b[0m": "y",
        "Tab\there": "z",
        "Line\u2028Separator": "w",
    }
    result, _ = run(Dispatcher(), forged)
    assert result.outcome is Outcome.NO_SERVICE
    (record,) = records(caplog)
    message = record.getMessage()
    for raw in ("\n", "\x1b", "\t", "\u2028", "\r"):
        assert raw not in message, repr(raw)
    assert "Name\\nWARNING forged log line" in message
    assert "\\x1b[31mRed\\x1b[0m" in message
    assert "Tab\\there" in message


def test_the_warning_names_at_most_40_parameters(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")
    many = {f"Param{index:02d}": "v" for index in range(45)}
    run(Dispatcher(), many)
    (record,) = records(caplog)
    message = record.getMessage()
    assert "Param39" in message
    assert "Param40" not in message
    assert "and 5 more" in message
    exactly = {f"Field{index:02d}": "v" for index in range(40)}
    run(Dispatcher(), exactly)
    last = records(caplog)[-1].getMessage()
    assert "Field39" in last
    assert "more" not in last


def test_a_fallback_silences_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")
    dispatcher = Dispatcher()
    fallback = Fallback()
    dispatcher.attach(fallback)
    assert run(dispatcher, unknown_params())[0].outcome is Outcome.HANDLED
    assert records(caplog) == []
    assert len(fallback.seen) == 1
