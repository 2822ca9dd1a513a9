"""The inbox's workers keep more in flight than the callbacks they run: entries claimed
ahead of a free place, and outcomes recorded after the place is freed; never more than
``concurrency`` callbacks at once, and what was claimed ahead is given back, its
attempt not counted, when the workers stop or dispatch is paused.

On a real SQLite inbox; the callbacks wait on events the tests set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from twilio_trigger._core.events import TwilioEvent
from twilio_trigger._invoke import Outcome, Result
from twilio_trigger._worker import WorkerPool
from twilio_trigger.inbox import PAUSED, State
from twilio_trigger.inbox.sqlite import SQLiteInbox
from twilio_trigger.testing import sms_status_params


class Gate:
    """A callback that waits until the gate opens, counting the callbacks inside."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.inside = 0
        self.most = 0
        self.started = 0
        self.changed = asyncio.Event()

    async def __call__(self, event: TwilioEvent) -> Result:
        self.inside += 1
        self.started += 1
        self.most = max(self.most, self.inside)
        self.changed.set()
        try:
            await self.open.wait()
        finally:
            self.inside -= 1
        return Result(Outcome.HANDLED)


#: The longest any state is waited for.
PATIENCE = 10.0


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for *condition*, looking every few milliseconds, for at most :data:`PATIENCE`."""
    deadline = time.monotonic() + PATIENCE
    while True:
        if await condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.01)


_Inbox = TypeVar("_Inbox", bound=SQLiteInbox)


async def filled(inbox: _Inbox, count: int) -> _Inbox:
    """*inbox*, opened, with *count* status callbacks stored."""
    await inbox.open()
    for number in range(count):
        params = sms_status_params("delivered")
        await inbox.put(
            f"k{number}", "sms", params["MessageSid"], "delivered", list(params.items())
        )
    return inbox


async def drained(pool: WorkerPool, inbox: SQLiteInbox, total: int, what: str) -> None:
    """Wait until *total* entries are done, then stop the workers and close the inbox."""

    async def all_done() -> bool:
        return await count(inbox, State.DONE) == total

    await until(all_done, what)
    await pool.stop(5)
    await inbox.close()


def pool_of(
    inbox: SQLiteInbox, handle: Callable[[TwilioEvent], Awaitable[Result]], concurrency: int
) -> WorkerPool:
    return WorkerPool(
        inbox,
        handle,
        concurrency=concurrency,
        max_attempts=3,
        backoff=1.0,
        backoff_max=10.0,
        retention=3600.0,
        poll_interval=0.05,
    )


async def count(inbox: SQLiteInbox, state: State) -> int:
    return (await inbox.stats())[state]


async def started(inbox: SQLiteInbox, gate: Gate, concurrency: int, claimed: int) -> WorkerPool:
    """Workers for *inbox* running *gate*, once *claimed* entries are claimed."""
    pool = pool_of(inbox, gate, concurrency)
    pool.start()

    async def claimed_so() -> bool:
        return await count(inbox, State.RUNNING) == claimed

    await until(claimed_so, f"{claimed} entries claimed")
    return pool


def test_entries_are_claimed_ahead_but_no_more_than_concurrency_callbacks_run(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        inbox = await filled(SQLiteInbox(tmp_path / "events.db"), 30)
        gate = Gate()
        pool = await started(inbox, gate, concurrency=3, claimed=12)  # 3 run, 9 wait
        assert gate.inside == 3
        gate.open.set()

        await drained(pool, inbox, 30, "every entry done")
        assert gate.most == 3
        assert gate.started == 30

    asyncio.run(scenario())


def test_stopping_gives_back_what_was_claimed_ahead_without_counting_an_attempt(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        inbox = await filled(SQLiteInbox(tmp_path / "events.db"), 20)
        gate = Gate()  # never opened: the two callbacks are cancelled at the stop
        pool = await started(inbox, gate, concurrency=2, claimed=8)
        await pool.stop(0.05)
        pending = await inbox.entries(State.PENDING, limit=100)
        running = await inbox.entries(State.RUNNING, limit=100)
        await inbox.close()
        assert len(running) == 2  # cancelled mid-callback: pending again at the next open
        assert len(pending) == 18
        assert all(entry.attempts == 0 for entry in pending)
        assert gate.started == 2

    asyncio.run(scenario())


def test_a_pause_gives_back_what_was_claimed_ahead(tmp_path: Path) -> None:
    async def scenario() -> None:
        inbox = await filled(SQLiteInbox(tmp_path / "events.db"), 20)
        gate = Gate()
        pool = await started(inbox, gate, concurrency=2, claimed=8)
        await inbox.set_setting(PAUSED, "1")
        pool.recheck()

        async def given_back() -> bool:
            return await count(inbox, State.RUNNING) == 2  # the two callbacks under way

        await until(given_back, "the entries claimed ahead given back")
        pending = await inbox.entries(State.PENDING, limit=100)
        assert all(entry.attempts == 0 for entry in pending)
        gate.open.set()

        async def two_done() -> bool:
            return await count(inbox, State.DONE) == 2

        await until(two_done, "the two callbacks under way done")
        assert gate.started == 2  # nothing new while paused
        await inbox.set_setting(PAUSED, "0")
        pool.recheck()

        await drained(pool, inbox, 20, "every entry done once resumed")

    asyncio.run(scenario())


class SlowRecords(SQLiteInbox):
    """A real SQLite inbox whose records of success wait until the test lets them."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.records = asyncio.Event()

    async def succeed(self, entry_id: int) -> None:
        await self.records.wait()
        await super().succeed(entry_id)


def test_a_place_is_free_once_the_callback_ends_not_once_its_outcome_is_recorded(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        inbox = await filled(SlowRecords(tmp_path / "events.db"), 3)
        started: list[str | None] = []

        async def quick(event: TwilioEvent) -> Result:
            started.append(event.sid)
            return Result(Outcome.HANDLED)

        pool = pool_of(inbox, quick, concurrency=1)
        pool.start()

        async def all_started() -> bool:
            return len(started) == 3

        # One place, and no outcome recorded yet: all three ran one after the other.
        await until(all_started, "three callbacks run while no outcome could be recorded")
        assert await count(inbox, State.DONE) == 0
        inbox.records.set()

        await drained(pool, inbox, 3, "the three outcomes recorded")

    asyncio.run(scenario())


class SharedSQLite(SQLiteInbox):
    """A real SQLite inbox that says it is shared, as a Redis or PostgreSQL one is, and
    counts the workers' looks at its settings (one per poll of their loop)."""

    shared = True

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.looks = 0

    async def settings(self) -> dict[str, str]:
        self.looks += 1
        return await super().settings()


def test_a_shared_inbox_is_never_claimed_ahead(tmp_path: Path) -> None:
    async def scenario() -> None:
        inbox = await filled(SharedSQLite(tmp_path / "events.db"), 10)
        gate = Gate()
        pool = await started(inbox, gate, concurrency=2, claimed=2)

        async def both_inside() -> bool:
            return gate.inside == 2

        await until(both_inside, "two callbacks running")
        looks = inbox.looks

        async def polled() -> bool:
            return inbox.looks >= looks + 3

        await until(polled, "three more polls of the workers' loop")
        # Still only the two it runs: another process's workers could take the rest.
        assert await count(inbox, State.RUNNING) == 2
        gate.open.set()

        await drained(pool, inbox, 10, "every entry done")

    asyncio.run(scenario())
