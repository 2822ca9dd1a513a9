"""The inbox's workers (``_worker.py``): retry backoff, and a cancelled loop ending."""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

from twilio_trigger._core.events import TwilioEvent
from twilio_trigger._invoke import Outcome, Result
from twilio_trigger._worker import WorkerPool, backoff_delay
from twilio_trigger.inbox import Entry
from twilio_trigger.inbox.sqlite import SQLiteInbox


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
