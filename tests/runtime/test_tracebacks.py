"""A callback's traceback starts at the user's own frame: the frames of the package's
dispatch, of asyncio and of the thread pool a sync callback ran in are dropped, from
the error and from the errors it is chained to; the inspector's page shows each
distinct traceback of an event once.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import twilio_trigger
from twilio_trigger import SmsStatusChangeEvent, SmsStatusService
from twilio_trigger._core.payloads import sms_event
from twilio_trigger._dispatch import Dispatcher
from twilio_trigger._inspector import _pages, _static
from twilio_trigger._inspector._activity import AttemptRecord
from twilio_trigger._invoke import Deadlines, Outcome, Result, describe_error
from twilio_trigger._logging import parse_level, trim_traceback
from twilio_trigger.inbox import Entry, State

HERE = str(Path(__file__).resolve())
PACKAGE = str(Path(twilio_trigger.__file__).resolve().parent)
INTERNAL = (PACKAGE, f"{Path(asyncio.__file__).parent}", "concurrent/futures")


class CarrierError(RuntimeError):
    """What the callbacks here raise."""


def look_up(sid: str | None) -> None:
    raise CarrierError(f"the carrier's lookup exploded for {sid}")


class Messages(SmsStatusService):
    async def on_delivered(self, event: SmsStatusChangeEvent) -> None:
        look_up(event.sid)

    def on_sent(self, event: SmsStatusChangeEvent) -> None:  # in the thread pool
        look_up(event.sid)

    def on_failed(self, event: SmsStatusChangeEvent) -> None:
        try:
            look_up(event.sid)
        except CarrierError as error:
            raise ValueError("could not tell the customer") from error


def dispatched(status: str, deadlines: Deadlines | None = None) -> Result:
    dispatcher = Dispatcher()
    dispatcher.attach(Messages())
    return asyncio.run(dispatcher.dispatch(sms_event(status), deadlines))


def frames(error: BaseException) -> list[traceback.FrameSummary]:
    return list(traceback.extract_tb(error.__traceback__))


def files(error: BaseException) -> list[str]:
    return [frame.filename for frame in frames(error)]


@pytest.mark.parametrize("status", ["delivered", "sent"], ids=["async", "sync"])
def test_a_callbacks_traceback_starts_at_its_own_frame(status: str) -> None:
    result = dispatched(status)
    assert result.outcome is Outcome.FAILED
    assert isinstance(result.error, CarrierError)
    # The callback, then what it called: nothing of the dispatch, asyncio or the pool.
    assert [(f.filename, f.name) for f in frames(result.error)] == [
        (HERE, f"on_{status}"),
        (HERE, "look_up"),
    ]
    text = describe_error(result.error)
    assert text.startswith(f'Traceback (most recent call last):\n  File "{HERE}"'), text
    assert text.endswith(f"CarrierError: {result.error}")
    for internal in INTERNAL:
        assert internal not in text, (internal, text)


def test_the_cause_of_a_callbacks_error_is_kept() -> None:
    result = dispatched("failed")  # sync: raised in the thread pool, from a cause
    error = result.error
    assert isinstance(error, ValueError)
    assert isinstance(error.__cause__, CarrierError)
    assert [f.name for f in frames(error)] == ["on_failed"]
    assert [f.name for f in frames(error.__cause__)] == ["on_failed", "look_up"]
    text = describe_error(error)
    assert "The above exception was the direct cause of the following exception:" in text
    assert text.count("Traceback (most recent call last):") == 2
    assert all(internal not in text for internal in INTERNAL), text


def test_chained_errors_are_trimmed_the_same_way() -> None:
    # A cause that came out of a thread pool: its traceback starts in the pool's code.
    with ThreadPoolExecutor(1) as pool:
        cause = pool.submit(look_up, "SM1").exception()
    assert cause is not None
    assert "concurrent/futures" in files(cause)[0]  # the pool's frame, first
    try:
        raise ValueError("could not tell the customer") from cause
    except ValueError as caught:
        error = caught
    assert trim_traceback(error) is error
    assert [f.name for f in frames(cause)] == ["look_up"]
    assert [f.name for f in frames(error)] == ["test_chained_errors_are_trimmed_the_same_way"]
    text = "".join(traceback.TracebackException.from_exception(error).format())
    assert "concurrent/futures" not in text
    assert "CarrierError: the carrier's lookup exploded for SM1" in text


def test_an_error_with_no_frame_of_the_users_is_left_whole() -> None:
    # The package's own error, raised in a thread: every frame is internal.
    with ThreadPoolExecutor(1) as pool:
        error = pool.submit(parse_level, "loud").exception()
    assert error is not None
    before = files(error)
    assert trim_traceback(error).__traceback__ is not None
    assert files(error) == before
    assert any(name.startswith(PACKAGE) for name in before)


def test_a_chain_with_a_cycle_and_a_group_ends() -> None:
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(look_up, "SM1").exception()
        second = pool.submit(look_up, "SM2").exception()
    assert isinstance(first, CarrierError)
    assert isinstance(second, CarrierError)
    first.__context__, second.__context__ = second, first  # a cycle
    group = ExceptionGroup("both", [first])
    trim_traceback(group)
    assert [f.name for f in frames(first)] == ["look_up"]
    assert [f.name for f in frames(second)] == ["look_up"]


def test_a_late_sync_callbacks_error_starts_at_its_own_frame() -> None:
    release = threading.Event()

    class Slow(SmsStatusService):
        def on_sent(self, event: SmsStatusChangeEvent) -> None:
            assert release.wait(30), "the test never released the callback"
            look_up(event.sid)

    async def scenario() -> BaseException | None:
        dispatcher = Dispatcher()
        dispatcher.attach(Slow())
        result = await dispatcher.dispatch(sms_event("sent"), Deadlines(0.05))
        assert result.outcome is Outcome.TIMED_OUT
        assert result.still_running is not None
        release.set()
        return await asyncio.wait_for(result.still_running, 30)

    late = asyncio.run(scenario())
    assert isinstance(late, CarrierError)
    assert [f.name for f in frames(late)] == ["on_sent", "look_up"]


# -- the inspector's page: each distinct traceback once ------------------------------------
def entry(last_error: str | None, state: State = State.DEAD, attempts: int = 3) -> Entry:
    return Entry(
        id=7, key="k", kind="sms", sid="SM1", status="sent", params=(("MessageSid", "SM1"),),
        received_at=1.0e9, state=state, attempts=attempts, next_attempt_at=1.0e9,
        last_error=last_error, finished_at=1.0e9,
    )  # fmt: skip


def attempt(number: int, error: str | None) -> AttemptRecord:
    return AttemptRecord(
        1.0e9 + number, number, "failed" if error else "handled", "M.on_sent", 1.0, error
    )


def page(entry: Entry, history: list[AttemptRecord]) -> str:
    row = {"callback": "M.on_sent", "outcome": "dead_letter"}
    return _pages.event(row, entry, history, _static.assets())


def traceback_of(message: str) -> str:
    frame = '  File "app.py", line 3, in on_sent'
    return f"Traceback (most recent call last):\n{frame}\nCarrierError: {message}"


def test_the_same_error_on_every_attempt_is_shown_once() -> None:
    error = traceback_of("down <for> SM1")
    shown = page(entry(error), [attempt(1, error), attempt(2, error), attempt(3, error)])
    assert shown.count("Traceback (most recent call last):") == 1
    assert "<pre id='last-error'>" in shown
    assert shown.count("same as the last error, above") == 3
    assert "CarrierError: down &lt;for&gt; SM1" in shown  # escaped, as ever


def test_distinct_errors_are_each_shown_once() -> None:
    first, second = traceback_of("timed out"), traceback_of("refused")
    history = [attempt(1, first), attempt(2, second), attempt(3, first), attempt(4, second)]
    shown = page(entry(second, attempts=4), history)
    # The last error above; the other once, in the attempt that first had it.
    assert shown.count("Traceback (most recent call last):") == 2
    assert shown.count("CarrierError: timed out") == 1
    assert shown.count("same error as attempt 1") == 1
    assert shown.count("same as the last error, above") == 2


def test_a_last_error_kept_shortened_is_still_the_same_error() -> None:
    # The inboxes keep the end of a long traceback: it is the same error still.
    long = traceback_of("x" * 20_000)
    shown = page(entry(long[-16_000:]), [attempt(1, long), attempt(2, long)])
    assert shown.count("Traceback (most recent call last):") == 0  # the start was cut
    assert shown.count("same as the last error, above") == 2


def test_without_a_last_error_the_attempts_show_each_error_once() -> None:
    # A handled event shows no last error: the first failed attempt shows it.
    error = traceback_of("down")
    history = [attempt(1, error), attempt(2, error), attempt(3, None)]
    shown = page(entry(error, state=State.DONE), history)
    assert "last-error" not in shown
    assert shown.count("Traceback (most recent call last):") == 1
    assert shown.count("same error as attempt 1") == 1
