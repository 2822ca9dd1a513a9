"""The inbox's worker loop ends when cancelled, even if what it awaits swallows the
cancellation (redis-py 8's commands do: a cancelled ``await client.ping()`` may
return normally).  Without that, ``asyncio.run`` and a listener's thread hang at
exit, waiting for a loop that never ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from twilio_trigger._dispatch import Outcome, Result
from twilio_trigger._events import TwilioEvent
from twilio_trigger._worker import WorkerPool
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
