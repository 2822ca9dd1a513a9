"""Dispatch control on every backend: a callback's concurrency and rate limits, its
breaker, and the inbox's paces, places and give-backs they are built on.

The backends are real (a SQLite file, a key prefix of its own on the shared Redis,
a schema of its own in PostgreSQL); on Redis and PostgreSQL two worker pools on
two inbox objects stand for two processes.  The tests record when each callback
started and ended and check the limits on those records; they wait for state,
never for a fixed time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.inbox_backends import BACKENDS, Backend, backend_of
from tests.postgres_support import pg_schema, postgres_database
from tests.redis_support import prefix, redis_url
from twilio_trigger import Alert, Limit
from twilio_trigger._alerts import Alerts
from twilio_trigger._control import BREAKER, LIMIT, Control
from twilio_trigger._core.events import TwilioEvent
from twilio_trigger._invoke import Outcome, Result
from twilio_trigger._observe import Observer
from twilio_trigger._worker import WorkerPool
from twilio_trigger.inbox import Entry, Inbox, State
from twilio_trigger.testing import sms_status_params

__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest

LOGGER = "twilio_trigger"
PATIENCE = 20.0


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return backend_of(request.param, request, tmp_path)


def sid(number: int) -> str:
    return f"SM{number:032d}"


async def put(inbox: Inbox, number: int, status: str = "delivered") -> None:
    params = list(sms_status_params(status, sid=sid(number)).items())
    assert await inbox.put(f"key-{number}-{status}", "sms", sid(number), status, params)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.005)


class Recorder:
    """A callback that records when each event started and ended, how many ran at
    once, and fails while :attr:`failing`."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.starts: list[tuple[float, str]] = []
        self.ends: list[str] = []
        self.succeeded: list[str] = []
        self.running = 0
        self.most = 0
        self.failing = False

    async def __call__(self, event: TwilioEvent) -> Result:
        self.starts.append((time.monotonic(), str(event.sid)))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.seconds)  # the downstream system's time
        finally:
            self.running -= 1
        self.ends.append(str(event.sid))
        if self.failing:
            return Result(Outcome.FAILED, "Service.on_delivered", RuntimeError("CRM said 503"))
        self.succeeded.append(str(event.sid))
        return Result(Outcome.HANDLED, "Service.on_delivered")


class Told(Observer):
    """Records what the control tells its observer."""

    def __init__(self) -> None:
        self.breakers: list[tuple[str, bool, bool]] = []
        self.held_back: list[tuple[str, str]] = []

    def breaker(self, callback: str, *, opened: bool, here: bool) -> None:
        self.breakers.append((callback, opened, here))

    def held(self, callback: str, reason: str) -> None:
        self.held_back.append((callback, reason))


def pool_of(
    inbox: Inbox,
    handler: Recorder,
    *,
    limit: Limit | None = None,
    concurrency: int = 4,
    max_attempts: int = 20,
    observer: Observer | None = None,
    alerts: Alerts | None = None,
    cooldown: float = 30.0,
) -> WorkerPool:
    control = Control(
        inbox,
        limits=[] if limit is None else [("on_delivered", limit)],
        cooldown=cooldown,
        lease=30.0,
        observer=observer,
        alerts=alerts,
    )
    return WorkerPool(
        inbox, handler, concurrency=concurrency, max_attempts=max_attempts, backoff=0.02,
        backoff_max=0.05, retention=3600.0, poll_interval=0.05, observer=observer,
        control=control, alerts=alerts,
    )  # fmt: skip


def processes(backend: Backend) -> int:
    """Inbox objects (standing for processes) to share the inbox: one for SQLite."""
    return 1 if backend.options[1].startswith("sqlite") else 2


async def run_pools(
    backend: Backend,
    handler: Recorder,
    events: int,
    done: Callable[[], bool],
    **options: object,
) -> list[Entry]:
    """Put *events* events, run a pool per process until *done*; the entries then."""
    inboxes = [backend.make() for _ in range(processes(backend))]
    for inbox in inboxes:
        await inbox.open()
    pools = [pool_of(inbox, handler, **options) for inbox in inboxes]  # type: ignore[arg-type]
    try:
        for number in range(events):
            await put(inboxes[0], number)
        for pool in pools:
            pool.start()
        await until(done, "every event to be handled")
        for pool in pools:
            await pool.stop(5.0)
        return await inboxes[0].entries(limit=100)
    finally:
        for pool in pools:
            await pool.stop(5.0)
        for inbox in inboxes:
            await inbox.close()


# -- the inbox's paces, places and give-backs -------------------------------------------------
def test_a_pace_lets_a_burst_through_then_says_how_long_to_wait(backend: Backend) -> None:
    async def work(inbox: Inbox) -> tuple[list[float], float]:
        waits = [await inbox.pace("start:on_sent", 10.0, 3) for _ in range(4)]
        other = await inbox.pace("start:on_failed", 10.0, 1)  # a pace of its own
        return waits, other

    waits, other = backend.session(work)
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 9.0 < waits[3] <= 10.0  # the fourth waits for the next token, nothing counted
    assert other == 0.0


def test_places_are_limited_shared_renewed_given_back_and_lapse(backend: Backend) -> None:
    async def work(inbox: Inbox) -> list[bool]:
        other = backend.make()  # another process
        await other.open()
        try:
            taken = [
                await inbox.enter("run:on_sent", "a", 2, 30.0),
                await other.enter("run:on_sent", "b", 2, 30.0),
                await inbox.enter("run:on_sent", "c", 2, 30.0),  # full
                await other.enter("run:on_sent", "a", 2, 30.0),  # a holder renews its own
            ]
            await other.leave("run:on_sent", "b")
            taken.append(await inbox.enter("run:on_sent", "c", 2, 30.0))  # b's place
            taken.append(await inbox.enter("run:on_failed", "d", 1, 30.0))  # its own places
            # A place whose holder died lapses after its lease.
            taken.append(await inbox.enter("trial:on_sent", "dead", 1, 0.2))
            taken.append(await other.enter("trial:on_sent", "alive", 1, 30.0))
            deadline = time.monotonic() + PATIENCE
            while not await other.enter("trial:on_sent", "alive", 1, 30.0):
                assert time.monotonic() < deadline, "the lease never lapsed"
                await asyncio.sleep(0.02)
            return taken
        finally:
            await other.close()

    assert backend.session(work) == [True, True, False, True, True, True, True, False]


def test_an_entry_given_back_is_pending_due_later_with_its_attempt_uncounted(
    backend: Backend,
) -> None:
    async def work(inbox: Inbox) -> tuple[int, State, float, int, list[int]]:
        await put(inbox, 1)
        [entry] = await inbox.claim(5)
        assert entry.attempts == 1
        later = time.time() + 600
        await inbox.defer(entry.id, later)
        again = await inbox.get(entry.id)
        assert again is not None
        claimed = await inbox.claim(5)  # not due yet
        return (
            again.attempts,
            again.state,
            again.next_attempt_at,
            len(claimed),
            [e.id for e in await inbox.entries(State.PENDING)],
        )

    attempts, state, due, claimed, pending = backend.session(work)
    assert (attempts, state, claimed) == (0, State.PENDING, 0)
    assert due > time.time() + 500
    assert len(pending) == 1


def test_the_settings_come_in_one_read(backend: Backend) -> None:
    async def work(inbox: Inbox) -> dict[str, str]:
        await inbox.set_paused(True)
        await inbox.set_setting(LIMIT + "on_sent", Limit(rate=2).json())
        await inbox.pace("start:on_sent", 1.0, 1)  # kept by the inbox, not a setting
        await inbox.enter("run:on_sent", "a", 1, 30.0)
        return await inbox.settings()

    assert backend.session(work) == {"dispatch_paused": "1", "limit:on_sent": '{"rate": 2.0}'}


# -- the limits, as workers apply them -------------------------------------------------------
def test_never_more_than_the_concurrency_limit_run_at_once(backend: Backend) -> None:
    handler = Recorder(seconds=0.03)
    told = Told()
    events = 16
    entries = asyncio.run(
        run_pools(
            backend,
            handler,
            events,
            lambda: len(handler.ends) == events,
            limit=Limit(concurrency=2),
            concurrency=4,
            observer=told,
        )
    )
    assert handler.most == 2  # four workers in each process, two places in all
    assert told.held_back  # the others were held, and the metric told so
    assert set(told.held_back) == {("on_delivered", "concurrency")}
    assert sorted(s for _, s in handler.starts) == [sid(n) for n in range(events)]
    # Held back and given back: no attempt counted but the one that ran.
    assert [(e.state, e.attempts) for e in entries] == [(State.DONE, 1)] * events


def test_no_more_than_rate_plus_burst_start_in_any_second(backend: Backend) -> None:
    handler = Recorder()
    events, rate, burst = 14, 4.0, 2
    asyncio.run(
        run_pools(
            backend,
            handler,
            events,
            lambda: len(handler.ends) == events,
            limit=Limit(rate=rate, burst=burst),
            concurrency=4,
        )
    )
    starts = sorted(at for at, _ in handler.starts)
    assert len(starts) == events
    busiest = max(sum(1 for t in starts if first <= t < first + 1.0) for first in starts)
    assert busiest <= rate + burst
    # Held to the rate throughout: after the burst, one start per 1/rate seconds.
    assert starts[-1] - starts[0] >= (events - burst) / rate - 0.25


def test_a_limit_kept_in_the_inbox_overrides_the_option(backend: Backend) -> None:
    handler = Recorder(seconds=0.03)
    events = 10

    async def scenario() -> None:
        inbox = backend.make()
        await inbox.open()
        await inbox.set_setting(LIMIT + "on_delivered", Limit(concurrency=1).json())
        await inbox.close()
        await run_pools(
            backend,
            handler,
            events,
            lambda: len(handler.ends) == events,
            limit=Limit(concurrency=3),
        )

    asyncio.run(scenario())
    assert handler.most == 1


def test_events_of_other_callbacks_are_not_held(backend: Backend) -> None:
    # Only on_delivered is limited; on_sent events run beside it, four at once.
    handler = Recorder(seconds=0.05)

    async def scenario() -> int:
        inbox = backend.make()
        await inbox.open()
        for number in range(8):
            await put(inbox, number, "sent")
        pool = pool_of(inbox, handler, limit=Limit(concurrency=1), concurrency=4)
        pool.start()
        try:
            await until(lambda: len(handler.ends) == 8, "the sent events")
        finally:
            await pool.stop(5.0)
            await inbox.close()
        return handler.most

    assert asyncio.run(scenario()) == 4


# -- the breaker -----------------------------------------------------------------------
def test_the_breaker_opens_after_n_failures_tries_one_after_cooling_and_closes(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    handler = Recorder()
    handler.failing = True
    told = Told()
    alerts = Alerts()
    raised: list[Alert] = []
    alerts.add(raised.append)
    cooldown = 0.5

    async def state(inbox: Inbox) -> str:
        return await inbox.setting(BREAKER + "on_delivered") or ""

    async def scenario() -> tuple[list[float], list[int], list[Entry]]:
        inbox = backend.make()
        await inbox.open()
        for number in range(5):
            await put(inbox, number)
        pool = pool_of(
            inbox,
            handler,
            limit=Limit(breaker=3, cooldown=cooldown),
            concurrency=1,
            observer=told,
            alerts=alerts,
        )
        opened: list[float] = []
        calls: list[int] = []
        pool.start()
        try:
            seen = ""
            deadline = time.monotonic() + PATIENCE
            while len(opened) < 2:  # opened, then open again after a failed trial
                assert time.monotonic() < deadline, "the breaker did not open twice"
                now_state = await state(inbox)
                if now_state and now_state != seen:
                    seen = now_state
                    opened.append(time.monotonic())
                    calls.append(len(handler.starts))
                await asyncio.sleep(0.005)
            handler.failing = False  # the downstream system is back
            await until(lambda: len(handler.succeeded) == 5, "the events to drain")
            await pool.stop(5.0)
            assert await state(inbox) == ""  # closed
            return opened, calls, await inbox.entries(limit=100)
        finally:
            await pool.stop(5.0)
            await alerts.drain(5.0)
            await inbox.close()

    _, calls, entries = asyncio.run(scenario())
    assert calls[0] == 3  # three failures in a row opened it, nothing ran while open
    assert calls[1] == 4  # one event tried after the cool-down (it failed)
    starts = [at for at, _ in handler.starts]
    assert starts[3] - starts[2] >= cooldown * 0.9  # the trial waited for the cool-down
    assert starts[4] - starts[3] >= cooldown * 0.9  # and the next trial too
    messages = [
        r.getMessage() for r in caplog.records if "breaker of on_delivered" in r.getMessage()
    ]
    assert messages[0].startswith("the breaker of on_delivered opened after 3 failures in a row")
    assert "CRM said 503" in messages[0]
    assert any(m.startswith("the breaker of on_delivered stays open") for m in messages)
    assert messages[-1].startswith("the breaker of on_delivered closed")
    assert ("on_delivered", True, True) in told.breakers
    assert told.breakers[-1] == ("on_delivered", False, True)
    [alert] = [a for a in raised if a.what == "breaker_opened"]
    assert (alert.callback, alert.failures) == ("on_delivered", 3)
    assert alert.error == "RuntimeError: CRM said 503"
    assert "breaker of on_delivered opened after 3 failures" in alert.text
    # No event became a dead letter, and the waits counted no attempt.
    assert [e.state for e in entries] == [State.DONE] * 5
    assert sum(e.attempts for e in entries) == len(handler.starts)


class Counted:
    """The real inbox, counting the places taken through it (renewals included)."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.entered: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inbox, name)

    async def enter(self, name: str, holder: str, limit: int, lease: float) -> bool:
        self.entered.append((name, holder))
        return await self.inbox.enter(name, holder, limit, lease)


def test_a_sync_callback_past_its_limit_keeps_its_place_beyond_the_lease(
    backend: Backend,
) -> None:
    # A plain def callback cannot be stopped at its time limit: it goes on in its
    # thread, and must keep its place of the concurrency limit until it ends, longer
    # than the place's lease (which only frees the places of processes that died).
    lease = 0.3
    told = Told()

    async def work(inbox: Inbox) -> tuple[list[str], list[str], list[str]]:
        counted = Counted(inbox)
        control = Control(
            counted,  # type: ignore[arg-type]
            limits=[("on_delivered", Limit(concurrency=1))],
            lease=lease,
            observer=told,
        )
        late: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        starts: list[str] = []

        async def handler(event: TwilioEvent) -> Result:
            starts.append(str(event.sid))
            if len(starts) == 1:  # past its limit, and still running in its thread
                return Result(Outcome.TIMED_OUT, "Service.on_delivered", still_running=late)
            return Result(Outcome.HANDLED, "Service.on_delivered")

        pool = WorkerPool(
            inbox, handler, concurrency=4, max_attempts=5, backoff=0.02, backoff_max=0.05,
            retention=3600.0, poll_interval=0.05, observer=told, control=control,
        )  # fmt: skip
        await put(inbox, 1)
        pool.start()
        try:
            await until(lambda: len(starts) == 1, "the first callback")
            first = counted.entered[0]
            await put(inbox, 2)
            # Taken, then renewed three times: a whole lease has passed since.
            await until(lambda: counted.entered.count(first) >= 4, "the place's renewals")
            during = list(starts)
            late.set_result(None)  # the thread ends, and with it the place
            await until(lambda: len(starts) == 2, "the second event")
            deadline = time.monotonic() + PATIENCE
            while len(done := await inbox.entries(State.DONE)) < 2:
                assert time.monotonic() < deadline, "the outcomes were never recorded"
                await asyncio.sleep(0.01)
            return during, starts, [str(e.sid) for e in done]
        finally:
            await pool.stop(5.0)

    during, starts, done = backend.session(work)
    assert during == [sid(1)]  # the second waited for the place, beyond its lease
    assert starts == [sid(1), sid(2)]
    assert ("on_delivered", "concurrency") in told.held_back
    assert sorted(done) == [sid(1), sid(2)]
