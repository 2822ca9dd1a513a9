"""Pausing dispatch: the setting kept in the inbox (SQLite, Redis, PostgreSQL alike),
the PostgreSQL migration that adds its table, and the workers that honour it.

The backends are real (a SQLite file, a key prefix of its own on the shared Redis,
a schema of its own in PostgreSQL).  The worker tests wait for state (how often
the workers read the setting, what the inbox holds), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.inbox_backends import BACKENDS, Backend, backend_of, session_of
from tests.postgres_support import pg_schema, postgres_database, scalar
from tests.redis_support import MEMORY, prefix, redis_url
from twilio_trigger._core.events import TwilioEvent
from twilio_trigger._invoke import Outcome, Result
from twilio_trigger._postgres_schema import _MIGRATIONS, SCHEMA_VERSION
from twilio_trigger._worker import WorkerPool
from twilio_trigger.inbox import Inbox, State
from twilio_trigger.inbox.postgres import PostgresInbox
from twilio_trigger.inbox.redis import RedisInbox
from twilio_trigger.inbox.sqlite import SQLiteInbox
from twilio_trigger.testing import sms_status_params

__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest

LOGGER = "twilio_trigger"
#: How long a test waits for something that should happen at once.
PATIENCE = 15.0


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return backend_of(request.param, request, tmp_path)


def sms(number: int) -> list[tuple[str, str]]:
    return list(sms_status_params("delivered", sid=f"SM{number:032d}").items())


async def put(inbox: Inbox, number: int) -> None:
    assert await inbox.put(f"key-{number}", "sms", f"SM{number:032d}", "delivered", sms(number))


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for *condition*, looking every few milliseconds, for at most :data:`PATIENCE`."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.01)


# -- the setting, on every backend ------------------------------------------------------
def test_a_fresh_inbox_is_not_paused_and_the_pause_is_kept_for_the_next_inbox_object(
    backend: Backend,
) -> None:
    async def pause(inbox: Inbox) -> tuple[bool, bool]:
        before = await inbox.paused()
        await inbox.set_paused(True)
        await inbox.set_paused(True)  # twice is once
        return before, await inbox.paused()

    assert backend.session(pause) == (False, True)
    # A new inbox object on the same store (a restarted process) sees it.
    assert backend.session(lambda inbox: inbox.paused()) is True

    async def resume(inbox: Inbox) -> bool:
        await inbox.set_paused(False)
        return await inbox.paused()

    assert backend.session(resume) is False
    assert backend.session(lambda inbox: inbox.paused()) is False


def test_the_pause_is_shared_by_inbox_objects_open_at_once(backend: Backend) -> None:
    async def work(one: Inbox) -> list[bool]:
        other = backend.make()
        await other.open()
        try:
            seen = [await other.paused()]
            await one.set_paused(True)
            seen.append(await other.paused())
            await other.set_paused(False)
            seen.append(await one.paused())
            return seen
        finally:
            await other.close()

    assert backend.session(work) == [False, True, False]


def test_pausing_leaves_the_events_alone(backend: Backend) -> None:
    async def work(inbox: Inbox) -> tuple[dict[State, int], int]:
        await put(inbox, 1)
        await inbox.set_paused(True)
        await put(inbox, 2)  # still stored while paused
        return await inbox.stats(), len(await inbox.entries())

    counts, listed = backend.session(work)
    assert counts[State.PENDING] == 2
    assert listed == 2


def test_a_sqlite_file_made_before_settings_gets_their_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    # The tables of a file made by an earlier version: events, no settings.
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL "
            "UNIQUE, kind TEXT NOT NULL, sid TEXT, status TEXT, params TEXT NOT NULL, "
            "received_at REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL "
            "DEFAULT 0, next_attempt_at REAL NOT NULL, last_error TEXT, finished_at REAL, "
            "headers TEXT)"
        )
        connection.execute(
            "INSERT INTO events (key, kind, params, received_at, state, next_attempt_at) "
            "VALUES ('old', 'sms', '[]', 1, 'pending', 1)"
        )
    connection.close()
    session = session_of(lambda: SQLiteInbox(path))

    async def work(inbox: Inbox) -> tuple[bool, bool, int]:
        before = await inbox.paused()
        await inbox.set_paused(True)
        return before, await inbox.paused(), (await inbox.stats())[State.PENDING]

    assert session(work) == (False, True, 1)
    assert session(lambda inbox: inbox.paused()) is True


def test_postgres_tables_at_version_one_are_upgraded_to_keep_settings(
    postgres_database: str, pg_schema: str
) -> None:
    assert SCHEMA_VERSION == 3
    s = f'"{pg_schema}"'
    # The tables as the first release made them, with an event in them.
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {s}")
        connection.execute(
            f"CREATE TABLE {s}.schema_version (version integer PRIMARY KEY, "
            f"applied_at timestamptz NOT NULL DEFAULT now())"
        )
        connection.execute(_MIGRATIONS[0].replace("{s}", s))
        connection.execute(f"INSERT INTO {s}.schema_version (version) VALUES (1)")
        connection.execute(
            f"INSERT INTO {s}.events (key, kind, params, received_at, state, next_attempt_at) "
            f"VALUES ('old', 'sms', '[]', 1, 'pending', 1)"
        )
    assert scalar(postgres_database, "SELECT to_regclass(%s)", (f"{s}.settings",)) is None

    async def migrate_then_pause(inbox: Inbox) -> tuple[tuple[int, int], bool, bool, int]:
        assert isinstance(inbox, PostgresInbox)
        versions = await inbox.migrate_schema()  # open() did it: nothing left to do
        before = await inbox.paused()
        await inbox.set_paused(True)
        return versions, before, await inbox.paused(), (await inbox.stats())[State.PENDING]

    session = session_of(lambda: PostgresInbox(postgres_database, schema=pg_schema))
    assert session(migrate_then_pause) == ((3, 3), False, True, 1)
    versions = scalar(
        postgres_database, f"SELECT array_agg(version ORDER BY version) FROM {s}.schema_version"
    )
    assert versions == [1, 2, 3]
    assert scalar(postgres_database, f"SELECT value FROM {s}.settings") == "1"
    assert session(lambda inbox: inbox.paused()) is True


# -- the workers ---------------------------------------------------------------------------
class CountingInbox(SQLiteInbox):
    """A real SQLite inbox that counts how often the workers read the settings."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.looks = 0

    async def settings(self) -> dict[str, str]:  # the workers read the pause with the rest
        self.looks += 1
        return await super().settings()


class Handler:
    """Records the SIDs dispatched; holds each callback until :attr:`gate` is set."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, event: TwilioEvent) -> Result:
        self.started.append(str(event.sid))
        await self.gate.wait()
        self.finished.append(str(event.sid))
        return Result(Outcome.HANDLED)


def pool_of(inbox: Inbox, handler: Handler, poll: float) -> WorkerPool:
    return WorkerPool(
        inbox, handler, concurrency=4, max_attempts=3, backoff=1.0, backoff_max=10.0,
        retention=3600.0, poll_interval=poll,
    )  # fmt: skip


def paused_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER
        and record.levelno == logging.INFO
        and record.getMessage().startswith(("dispatch is paused", "dispatch resumed"))
    ]


def test_paused_workers_dispatch_nothing_and_drain_once_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    path = tmp_path / "events.db"

    async def scenario() -> None:
        inbox = CountingInbox(path)
        await inbox.open()
        handler = Handler()
        handler.gate.clear()
        pool = pool_of(inbox, handler, poll=0.05)
        pool.start()
        try:
            await put(inbox, 1)
            await until(lambda: handler.started == [f"SM{1:032d}"], "the first event to start")
            # Another process (the command line) pauses dispatch while a callback runs.
            other = SQLiteInbox(path)
            await other.set_paused(True)
            await until(lambda: pool.paused, "the workers to see the pause")
            for number in range(2, 7):
                await put(inbox, number)
                pool.wake()  # as the listener does for each event stored
            looked = inbox.looks
            await until(lambda: inbox.looks >= looked + 3, "three more reads of the setting")
            handler.gate.set()  # the running callback finishes, paused or not
            await until(lambda: len(handler.finished) == 1, "the running callback to end")
            looked = inbox.looks
            await until(lambda: inbox.looks >= looked + 3, "three more reads of the setting")
            assert handler.started == [f"SM{1:032d}"]
            counts = await inbox.stats()
            assert (counts[State.DONE], counts[State.PENDING], counts[State.RUNNING]) == (1, 5, 0)

            await other.set_paused(False)
            await until(lambda: len(handler.finished) == 6, "every event to be dispatched")
            await until(lambda: pool.paused is False, "the workers to see the resume")
            await other.close()
            assert sorted(handler.finished) == [f"SM{n:032d}" for n in range(1, 7)]
        finally:
            await pool.stop(5.0)
            counts = await inbox.stats()
            await inbox.close()
        assert counts[State.DONE] == 6

    asyncio.run(scenario())
    assert paused_lines(caplog) == [
        f"dispatch is paused (sqlite:///{path}): events are stored and acknowledged, none "
        f"is dispatched until it is resumed",
        f"dispatch resumed (sqlite:///{path})",
    ]


def test_the_setting_is_read_once_per_poll_interval_not_per_wake(tmp_path: Path) -> None:
    path = tmp_path / "events.db"

    async def scenario() -> tuple[int, int, list[str]]:
        inbox = CountingInbox(path)
        await inbox.open()
        await inbox.set_paused(True)
        handler = Handler()
        pool = pool_of(inbox, handler, poll=60.0)  # no poll comes during the test
        pool.start()
        try:
            await until(lambda: pool.paused, "the workers to read the pause")
            for number in range(20):
                await put(inbox, number)
                pool.wake()
                for _ in range(10):  # let the loop run after each wake-up
                    await asyncio.sleep(0)
            after_wakes = inbox.looks
            await inbox.set_paused(False)
            pool.recheck()  # what this process's own resume does
            await until(lambda: len(handler.finished) == 20, "every event to be dispatched")
            return after_wakes, inbox.looks, handler.started
        finally:
            await pool.stop(5.0)
            await inbox.close()

    after_wakes, at_end, started = asyncio.run(scenario())
    assert after_wakes == 1  # 20 wake-ups, no poll: the setting was read at start only
    assert at_end == 2
    assert len(started) == 20


class CountingRedisInbox(RedisInbox):
    """A real Redis inbox that counts how often the workers read the settings."""

    looks = 0

    async def settings(self) -> dict[str, str]:  # the workers read the pause with the rest
        self.looks += 1
        return await super().settings()


def test_a_paused_shared_inbox_stops_every_process_workers(redis_url: str, prefix: str) -> None:
    async def scenario() -> tuple[list[str], list[str], dict[State, int]]:
        operator = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
        workers = [CountingRedisInbox(redis_url, prefix=prefix, durability=MEMORY) for _ in "ab"]
        for inbox in (operator, *workers):
            await inbox.open()
        await operator.set_paused(True)
        handlers = [Handler(), Handler()]
        pools = [pool_of(inbox, h, poll=0.05) for inbox, h in zip(workers, handlers, strict=True)]
        for pool in pools:
            pool.start()
        try:
            await until(lambda: all(pool.paused for pool in pools), "both pools to see it")
            for number in range(8):
                await put(operator, number)
            looked = [inbox.looks for inbox in workers]
            await until(
                lambda: all(w.looks >= n + 3 for w, n in zip(workers, looked, strict=True)),
                "three more reads of the setting by each pool",
            )
            counts = await operator.stats()
            await operator.set_paused(False)
            await until(
                lambda: sum(len(h.finished) for h in handlers) == 8, "every event dispatched"
            )
            return handlers[0].finished, handlers[1].finished, counts
        finally:
            for pool in pools:
                await pool.stop(5.0)
            for inbox in (operator, *workers):
                await inbox.close()

    first, second, counts_while_paused = asyncio.run(scenario())
    assert counts_while_paused[State.PENDING] == 8
    assert counts_while_paused[State.RUNNING] == 0
    assert sorted(first + second) == [f"SM{n:032d}" for n in range(8)]
