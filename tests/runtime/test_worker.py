"""The inbox's workers (``_worker.py``): retry backoff, and a cancelled loop ending."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from twilio_trigger._core.events import TwilioEvent
from twilio_trigger._invoke import Outcome, Result
from twilio_trigger._worker import WorkerPool, backoff_delay
from twilio_trigger.inbox import Entry, State, UnreachableError
from twilio_trigger.inbox.sqlite import SQLiteInbox
from twilio_trigger.testing import sms_status_params


class SwallowingInbox(SQLiteInbox):
    """A real SQLite inbox whose reads, like redis-py 8's commands, eat a cancellation."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0
        self.swallowed = 0
        self.reading = asyncio.Event()

    async def claim(self, limit: int) -> list[Entry]:
        self.reads += 1
        self.reading.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.swallowed += 1  # and carry on as if nothing had happened
        return await super().claim(limit)


async def handled(event: TwilioEvent) -> Result:
    return Result(Outcome.HANDLED)


def test_a_cancelled_worker_loop_ends_though_a_read_swallowed_it(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, bool]:
        inbox = SwallowingInbox(tmp_path / "events.db")
        await inbox.open()
        pool = WorkerPool(
            inbox,
            handled,
            concurrency=2,
            max_attempts=3,
            backoff=1.0,
            backoff_max=10.0,
            retention=60.0,
            poll_interval=30.0,  # long: the loop must not end only because a poll did
        )
        pool.start()
        loop_task = pool._loop_task
        assert loop_task is not None
        await inbox.reading.wait()  # cancelled while a read is under way
        loop_task.cancel()
        done, _ = await asyncio.wait([loop_task], timeout=10)
        await inbox.close()
        return inbox.swallowed, bool(done) and loop_task.cancelled()

    swallowed, ended = asyncio.run(scenario())
    assert swallowed == 1  # the read did eat the cancellation
    assert ended, "the worker loop went on after its cancellation was swallowed"


# -- backoff_delay -----------------------------------------------------------------
def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    rng = random.Random(1234)
    for attempt in range(1, 12):
        full = 0.5 * 2 ** (attempt - 1)
        for _ in range(200):
            delay = backoff_delay(attempt, 0.5, 10_000.0, rng)
            assert full / 2 <= delay <= full, (attempt, delay)


def test_backoff_mean_doubles_with_each_attempt() -> None:
    rng = random.Random(99)

    def mean(attempt: int) -> float:
        return sum(backoff_delay(attempt, 1.0, 10_000.0, rng) for _ in range(500)) / 500

    means = [mean(attempt) for attempt in range(1, 8)]
    for before, after in itertools.pairwise(means):
        assert 1.7 < after / before < 2.3, means


def test_backoff_is_capped() -> None:
    rng = random.Random(7)
    for attempt in (8, 20, 100, 1000):
        for _ in range(50):
            delay = backoff_delay(attempt, 1.0, 60.0, rng)
            assert 30.0 <= delay <= 60.0, (attempt, delay)


def test_backoff_has_jitter_spread_over_its_range() -> None:
    rng = random.Random(5)
    delays = [backoff_delay(4, 1.0, 300.0, rng) for _ in range(1000)]  # full delay 8 s
    assert len(set(delays)) > 900
    assert min(delays) < 4.2
    assert max(delays) > 7.8


# -- an outcome the inbox cannot record yet ----------------------------------------
class Impatient(SQLiteInbox):
    """A real SQLite inbox that waits 50 ms, not 10 s, for another writer's lock."""

    busy_ms = 50


def test_an_outcome_the_inbox_refuses_is_recorded_once_it_takes_writes_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Another process holds SQLite's write lock when the callback ends: the
    # outcome cannot be written.  Nobody takes over a SQLite inbox's entries while
    # its process runs, so the worker tries again until the lock is gone, instead
    # of leaving the entry running until the next start.  The file refusing
    # writes is an outage, told once by the inbox: the entry's own lines are DEBUG.
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")
    path = tmp_path / "events.db"
    other = sqlite3.connect(path, isolation_level=None)
    runs: list[str] = []

    async def locking(event: TwilioEvent) -> Result:
        runs.append(str(event.sid))
        other.execute("BEGIN IMMEDIATE")  # held while the outcome is written
        return Result(Outcome.HANDLED, "Service.on_delivered")

    def told(text: str) -> bool:
        return any(text in r.getMessage() for r in caplog.records)

    async def scenario() -> State:
        inbox = Impatient(path)
        await inbox.open()
        params = list(sms_status_params("delivered").items())
        assert await inbox.put("key-1", "sms", params[0][1], "delivered", params)
        pool = WorkerPool(
            inbox, locking, concurrency=1, max_attempts=3, backoff=0.05, backoff_max=0.1,
            retention=60.0, poll_interval=0.05,
        )  # fmt: skip
        pool.start()
        try:
            await until(lambda: told("could not record the outcome of inbox entry"))
            # Not written yet (read through the writer holding the lock).
            assert other.execute("SELECT state FROM events").fetchall() == [("running",)]
            other.execute("ROLLBACK")  # the other writer is done
            await until(lambda: told("recorded the outcome of inbox entry"))
            (entry,) = await inbox.entries()
            return entry.state
        finally:
            await pool.stop(5.0)
            await inbox.close()

    try:
        assert asyncio.run(scenario()) is State.DONE
    finally:
        other.close()
    assert len(runs) == 1  # recorded, not run again
    warned = [r for r in caplog.records if "could not record the outcome" in r.getMessage()]
    assert len(warned) == 1  # told once, whatever the number of tries
    assert warned[0].levelno == logging.DEBUG
    assert warned[0].exc_info is None  # one line, no traceback
    outage = [
        r.levelno
        for r in caplog.records
        if "cannot be reached" in r.getMessage() and r.levelno > logging.DEBUG
    ]
    assert outage == [logging.ERROR]


def test_an_entry_given_back_while_the_inbox_refuses_writes_is_given_back_once_it_takes_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An entry claimed, then held back by its limits (or claimed ahead when
    # dispatch pauses), is given back to the inbox; the file refuses that write
    # (another process holds the lock).  Nobody takes over a SQLite inbox's entry
    # while its process runs: left running, it waited for the next start.  Found by
    # a crash audit with limits and a lock held 12 s: 7 entries running for good.
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")

    async def scenario(other: sqlite3.Connection) -> State:
        inbox = Impatient(other.execute("PRAGMA database_list").fetchone()[2])
        await inbox.open()
        params = list(sms_status_params("delivered").items())
        assert await inbox.put("key-1", "sms", params[0][1], "delivered", params)
        (entry,) = await inbox.claim(1)
        pool = WorkerPool(inbox, _handled, concurrency=1, max_attempts=3, backoff=0.05,
                          backoff_max=0.1, retention=60.0, poll_interval=0.05)  # fmt: skip
        try:
            other.execute("BEGIN IMMEDIATE")
            handing = asyncio.ensure_future(pool._hand_back(entry.id, time.time()))
            await until(lambda: _said(caplog, "could not give inbox entry"))
            assert not handing.done()  # still trying: not left running
            other.execute("ROLLBACK")  # the other writer is done
            await asyncio.wait_for(handing, 20.0)
            (after,) = await inbox.entries()
            return after.state
        finally:
            await inbox.close()

    with contextlib.closing(sqlite3.connect(tmp_path / "events.db", isolation_level=None)) as other:
        assert asyncio.run(scenario(other)) is State.PENDING  # given back: due again
    assert _said(caplog, "gave inbox entry 1 back at last")


async def _handled(event: TwilioEvent) -> Result:
    return Result(Outcome.HANDLED, "Service.on_delivered")


def _said(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records)


async def until(condition: Callable[[], bool], patience: float = 20.0) -> None:
    deadline = time.monotonic() + patience
    while not condition():
        assert time.monotonic() < deadline, "the state waited for never came"
        await asyncio.sleep(0.01)


def test_a_file_that_refuses_writes_is_an_outage_told_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Another writer holds the file's lock past the busy timeout: each put fails
    # as UnreachableError (the pipeline answers 503 and counts it), and the log
    # says so once, not with a traceback per request; once more when it is over.
    caplog.set_level(logging.INFO, logger="twilio_trigger")
    path = tmp_path / "events.db"
    other = sqlite3.connect(path, isolation_level=None)

    async def scenario() -> tuple[list[object], bool]:
        inbox = Impatient(path)
        await inbox.open()
        params = list(sms_status_params("delivered").items())
        try:
            other.execute("BEGIN IMMEDIATE")
            failed = await asyncio.gather(
                *(inbox.put(f"key-{n}", "sms", f"SM{n}", "delivered", params) for n in range(5)),
                return_exceptions=True,
            )
            other.execute("ROLLBACK")
            stored = await inbox.put("key-after", "sms", "SMafter", "delivered", params)
            return list(failed), stored
        finally:
            await inbox.close()

    try:
        failed, stored = asyncio.run(scenario())
    finally:
        other.close()
    assert all(isinstance(error, UnreachableError) for error in failed), failed
    assert stored
    told = [r for r in caplog.records if r.name == "twilio_trigger"]
    down = [r for r in told if "cannot be reached" in r.getMessage()]
    back = [r for r in told if "can be reached again" in r.getMessage()]
    assert len(down) == 1, [r.getMessage() for r in told]
    assert "database is locked" in down[0].getMessage()
    assert down[0].exc_info is None
    assert len(back) == 1


def test_a_stop_while_the_inbox_does_not_answer_ends_in_its_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by a crash audit: SIGTERM while the SQLite disk was frozen waited for
    # the disk (60 s and more), past shutdown_timeout, because the dispatch loop
    # was waiting for a claim.  The loop and the giving back get the stop's time
    # to finish (here 0.5 s), then are cancelled; their entries run at the next start.
    caplog.set_level(logging.WARNING, logger="twilio_trigger")

    async def handle(event: TwilioEvent) -> Result:
        return Result(Outcome.HANDLED, "Service.on_delivered")

    async def scenario() -> float:
        inbox = SQLiteInbox(tmp_path / "events.db")
        await inbox.open()
        pool = WorkerPool(
            inbox, handle, concurrency=1, max_attempts=3, backoff=0.05, backoff_max=0.1,
            retention=60.0, poll_interval=0.05,
        )  # fmt: skip
        entered, release = threading.Event(), threading.Event()

        def hold(_: sqlite3.Connection) -> None:
            entered.set()
            release.wait(60)

        try:
            # The writer thread held in a batch, as by an fsync that does not return;
            # the loop's first read or claim queues behind it.
            stalled = asyncio.ensure_future(inbox._run(hold))
            await until(entered.is_set)
            pool.start()
            await until(lambda: not inbox._queue.empty())
            started = time.monotonic()
            await asyncio.wait_for(pool.stop(0.5), 30.0)
            return time.monotonic() - started
        finally:
            release.set()
            await stalled
            await inbox.close()

    took = asyncio.run(scenario())
    assert took < 15.0  # the stop's limits, not the disk's 60 s
    assert any("did not end within 0.5 s" in r.getMessage() for r in caplog.records)


def test_a_sync_callback_past_its_time_limit_is_told_at_once_not_only_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A plain def callback cannot be stopped: its entry waits for it, however long
    # it runs.  One that never returns was told only at its end: never.
    caplog.set_level(logging.INFO, logger="twilio_trigger")
    sid = "SM" + "\u202e" + "9" * 300  # signed, and hostile: escaped and cut

    def told(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    async def scenario() -> State:
        finished: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

        async def late(event: TwilioEvent) -> Result:
            error = TimeoutError("time limit")
            return Result(Outcome.TIMED_OUT, "Service.on_delivered", error, finished, 10.0)

        inbox = SQLiteInbox(tmp_path / "events.db")
        await inbox.open()
        params = list(sms_status_params("delivered", sid=sid).items())
        assert await inbox.put("key-1", "sms", sid, "delivered", params)
        pool = WorkerPool(
            inbox, late, concurrency=1, max_attempts=3, backoff=0.05, backoff_max=0.1,
            retention=60.0, poll_interval=0.05,
        )  # fmt: skip
        pool.start()
        try:
            await until(lambda: bool(told("is past its time limit")))
            assert not told("in the end")  # still running
            (entry,) = await inbox.entries()
            assert entry.state is State.RUNNING
            finished.set_result(None)  # it returns, at last
            await until(lambda: bool(told("in the end")))
            for _ in range(2000):  # recorded once it ended
                (entry,) = await inbox.entries()
                if entry.state is not State.RUNNING:
                    break
                await asyncio.sleep(0.01)
            return entry.state
        finally:
            await pool.stop(5.0)
            await inbox.close()

    assert asyncio.run(scenario()) is State.DONE
    (now,) = told("is past its time limit")
    assert now == (
        f"Service.on_delivered for sms SM\\u202e{'9' * 91}… is past its time limit "
        "(10.0 s) and runs on in its thread: inbox entry 1 waits for it to end"
    )
    (end,) = told("in the end")
    assert end.endswith("ran past its time limit and succeeded in the end")
    assert "\u202e" not in end
