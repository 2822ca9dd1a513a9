"""The counters an inbox keeps (SQLite, Redis, PostgreSQL alike): what each change
counts, that a copy refused counts nothing, that the counts survive a restart and
are the same for every inbox object of one store; and, per backend, how they are
kept (a savepoint in SQLite, the Lua scripts in Redis, a schema upgrade and rows
per connection in PostgreSQL).

The backends are real: a SQLite file, a key prefix of its own on the shared
Redis, a schema of its own in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from redis.asyncio import Redis

from tests.cli.conftest import invoke
from tests.inbox_backends import BACKENDS, Backend, backend_of, session_of
from tests.postgres_support import pg_schema, postgres_database, scalar
from tests.redis_support import MEMORY, prefix, redis_url
from twilio_trigger._core.events import SmsStatusChangeEvent, TwilioEvent
from twilio_trigger._postgres_schema import _MIGRATIONS, SCHEMA_VERSION, SchemaError
from twilio_trigger.inbox import Counters, Inbox, State
from twilio_trigger.inbox.postgres import PostgresInbox
from twilio_trigger.inbox.redis import RedisInbox
from twilio_trigger.inbox.sqlite import SQLiteInbox
from twilio_trigger.testing import sms_status_params

__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return backend_of(request.param, request, tmp_path)


def sid(number: int) -> str:
    return f"SM{number:032d}"


async def put(inbox: Inbox, number: int) -> bool:
    params = list(sms_status_params("delivered", sid=sid(number)).items())
    return await inbox.put(f"key-{number}", "sms", sid(number), "delivered", params)


def counts(counters: Counters) -> dict[str, int]:
    """The counts alone (``since`` is checked on its own)."""
    return {
        "received": counters.received,
        "handled": counters.handled,
        "failed_attempts": counters.failed_attempts,
        "dead_lettered": counters.dead_lettered,
        "replayed": counters.replayed,
    }


ZERO = dict.fromkeys(("received", "handled", "failed_attempts", "dead_lettered", "replayed"), 0)


# -- every backend -----------------------------------------------------------------------
def test_each_change_counts_once_and_a_refused_copy_counts_nothing(backend: Backend) -> None:
    async def work(inbox: Inbox) -> list[dict[str, int] | float]:
        seen: list[dict[str, int] | float] = [counts(await inbox.counters())]
        for number in range(3):
            assert await put(inbox, number)
        assert not await put(inbox, 1)  # a copy: refused, not counted
        seen.append(counts(await inbox.counters()))
        first, second, third = sorted(await inbox.claim(10), key=lambda entry: entry.id)
        await inbox.succeed(first.id)
        await inbox.retry(second.id, "RuntimeError: the first try", time.time())
        await inbox.bury(third.id, "RuntimeError: every try")
        seen.append(counts(await inbox.counters()))
        (again,) = await inbox.claim(10)  # the retried one
        await inbox.bury(again.id, "RuntimeError: the last try")
        seen.append(counts(await inbox.counters()))
        assert await inbox.replay() == 2  # every dead letter
        assert await inbox.replay([first.id], only=State.DEAD) == 0  # done: not replayed
        seen.append(counts(await inbox.counters()))
        for entry in await inbox.claim(10):
            await inbox.succeed(entry.id)
        seen.append(counts(await inbox.counters()))
        seen.append((await inbox.counters()).since)
        return seen

    before = time.time()
    *seen, since = backend.session(work)
    assert seen == [
        ZERO,
        {**ZERO, "received": 3},
        {**ZERO, "received": 3, "handled": 1, "failed_attempts": 2, "dead_lettered": 1},
        {**ZERO, "received": 3, "handled": 1, "failed_attempts": 3, "dead_lettered": 2},
        {"received": 3, "handled": 1, "failed_attempts": 3, "dead_lettered": 2, "replayed": 2},
        {"received": 3, "handled": 3, "failed_attempts": 3, "dead_lettered": 2, "replayed": 2},
    ]
    # Counting began when the inbox was made, which this test did.
    assert isinstance(since, float)
    assert before - 5 <= since <= time.time()


def test_the_counts_survive_a_restart_and_are_shared_by_inbox_objects(backend: Backend) -> None:
    async def first(inbox: Inbox) -> Counters:
        for number in range(2):
            await put(inbox, number)
        (entry,) = await inbox.claim(1)
        await inbox.bury(entry.id, "RuntimeError: no")
        return await inbox.counters()

    made = backend.session(first)
    assert counts(made) == {**ZERO, "received": 2, "failed_attempts": 1, "dead_lettered": 1}

    # A new inbox object on the same store (a restarted process) sees the same.
    later = backend.session(lambda inbox: inbox.counters())
    assert later == made

    async def together(one: Inbox) -> tuple[Counters, Counters]:
        other = backend.make()
        await other.open()
        try:
            await put(other, 7)  # stored by one, seen by both
            await one.replay()
            return await one.counters(), await other.counters()
        finally:
            await other.close()

    seen_by_one, seen_by_other = backend.session(together)
    assert seen_by_one == seen_by_other
    assert counts(seen_by_one) == {
        **ZERO, "received": 3, "failed_attempts": 1, "dead_lettered": 1, "replayed": 1,
    }  # fmt: skip
    assert seen_by_one.since == made.since


def test_purging_and_the_backlog_leave_the_counts_alone(backend: Backend) -> None:
    async def work(inbox: Inbox) -> tuple[Counters, Counters, dict[State, int]]:
        await put(inbox, 1)
        (entry,) = await inbox.claim(1)
        await inbox.succeed(entry.id)
        before = await inbox.counters()
        await inbox.purge(State.DONE, older_than=-60)  # the record goes, the count stays
        return before, await inbox.counters(), await inbox.stats()

    before, after, stats = backend.session(work)
    assert before == after
    assert counts(after) == {**ZERO, "received": 1, "handled": 1}
    assert stats[State.DONE] == 0


# -- SQLite --------------------------------------------------------------------------------
def test_sqlite_a_change_whose_count_fails_is_not_kept(tmp_path: Path) -> None:
    # What a batch counted is written once, before its commit: should that fail,
    # the batch is not kept, so nothing of it is acknowledged as stored.
    path = tmp_path / "events.db"

    async def work() -> tuple[BaseException | bool, bool, str | None, int]:
        inbox = SQLiteInbox(path)
        await inbox.open()
        try:
            await put(inbox, 1)
            # The counters' table taken away from under the inbox: counting fails.
            with sqlite3.connect(path) as other:
                other.execute("DROP TABLE counters")
            other.close()
            (failed,) = await asyncio.gather(put(inbox, 2), return_exceptions=True)
            stored = await inbox.get(2)
            await inbox.set_setting("note", "kept")  # what counts nothing goes on
            return (
                failed,
                stored is None,
                await inbox.setting("note"),
                (await inbox.stats())[State.PENDING],
            )
        finally:
            await inbox.close()

    failed, not_stored, note, pending = asyncio.run(work())
    assert isinstance(failed, sqlite3.OperationalError)
    assert "counters" in str(failed)
    assert not_stored
    assert note == "kept"
    assert pending == 1
    # Opened again, the table is made again and counting begins anew.
    again = session_of(lambda: SQLiteInbox(path))(lambda inbox: inbox.counters())
    assert counts(again) == ZERO
    assert again.since > 0


def test_sqlite_a_file_made_before_counters_gets_their_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
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

    async def work(inbox: Inbox) -> Counters:
        await put(inbox, 1)
        return await inbox.counters()

    before = time.time()
    found = session_of(lambda: SQLiteInbox(path))(work)
    # What happened before the table is not known: counting begins at the upgrade.
    assert counts(found) == {**ZERO, "received": 1}
    assert before - 5 <= found.since <= time.time()


# -- Redis ---------------------------------------------------------------------------------
def redis_hash(url: str, key: str) -> dict[str, str]:
    async def read() -> dict[str, str]:
        client = Redis.from_url(url, decode_responses=True)
        try:
            found = await client.hgetall(key)
            return {str(name): str(value) for name, value in found.items()}
        finally:
            await client.aclose()

    return asyncio.run(read())


def test_redis_counts_in_one_hash_under_the_prefix(redis_url: str, prefix: str) -> None:
    async def work(inbox: Inbox) -> None:
        await put(inbox, 1)
        (entry,) = await inbox.claim(1)
        await inbox.retry(entry.id, "RuntimeError: once", time.time())

    session_of(lambda: RedisInbox(redis_url, prefix=prefix, durability=MEMORY))(work)
    kept = redis_hash(redis_url, f"{prefix}inbox:counters")
    assert set(kept) == {"since_ms", "received", "failed_attempts"}
    assert (kept["received"], kept["failed_attempts"]) == ("1", "1")
    assert int(kept["since_ms"]) <= time.time() * 1000


def test_redis_an_event_withdrawn_is_not_counted(redis_url: str, prefix: str) -> None:
    # The shared Redis has no replica: WAIT 1 never confirms, and the event is withdrawn.
    make = lambda: RedisInbox(  # noqa: E731
        redis_url, prefix=prefix, durability="replicas:1", wait_timeout=0.2
    )

    async def work(inbox: Inbox) -> tuple[BaseException | bool, Counters]:
        (refused,) = await asyncio.gather(put(inbox, 1), return_exceptions=True)
        return refused, await inbox.counters()

    refused, found = session_of(make)(work)
    assert isinstance(refused, Exception)
    assert counts(found) == ZERO


def test_redis_counting_begins_anew_when_its_data_is_gone(redis_url: str, prefix: str) -> None:
    make = lambda: RedisInbox(redis_url, prefix=prefix, durability=MEMORY)  # noqa: E731
    first = session_of(make)(lambda inbox: put(inbox, 1))
    assert first is True
    before = session_of(make)(lambda inbox: inbox.counters())

    async def flush() -> None:
        client = Redis.from_url(redis_url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(flush())
    after = session_of(make)(lambda inbox: inbox.counters())
    assert counts(before) == {**ZERO, "received": 1}
    assert counts(after) == ZERO
    assert after.since >= before.since


# -- PostgreSQL ------------------------------------------------------------------------------
def pg_inbox(database: str, schema: str) -> PostgresInbox:
    return PostgresInbox(database, schema=schema)


def test_postgres_puts_at_once_are_all_counted(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: Inbox) -> tuple[list[bool], Counters]:
        # Many at once: batched inserts, several under way together on their own
        # connections, each counting on its connection's row.
        stored = await asyncio.gather(*(put(inbox, number % 150) for number in range(300)))
        return stored, await inbox.counters()

    stored, found = session_of(lambda: pg_inbox(postgres_database, pg_schema))(work)
    assert sum(stored) == 150  # each number twice: the copies refused
    assert found.received == 150
    s = f'"{pg_schema}"'
    rows = scalar(postgres_database, f"SELECT count(*) FROM {s}.counters WHERE name = 'received'")
    assert isinstance(rows, int)
    assert 1 <= rows <= 64
    total = scalar(
        postgres_database, f"SELECT sum(value) FROM {s}.counters WHERE name = 'received'"
    )
    assert total == 150


def test_postgres_a_transactions_done_is_counted_once(
    postgres_database: str, pg_schema: str
) -> None:
    def event() -> TwilioEvent:
        return SmsStatusChangeEvent(sms_status_params("delivered", sid=sid(1)))

    async def work(inbox: Inbox) -> Counters:
        assert isinstance(inbox, PostgresInbox)
        await put(inbox, 1)
        (entry,) = await inbox.claim(1)

        async def write(the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute("SELECT 1")

        await inbox.transaction_source(entry.id).run(
            write, event(), lambda result: not isinstance(result, Exception)
        )
        await inbox.succeed(entry.id)  # the worker's own completion: nothing more
        return await inbox.counters()

    found = session_of(lambda: pg_inbox(postgres_database, pg_schema))(work)
    assert counts(found) == {**ZERO, "received": 1, "handled": 1}


def test_postgres_an_outcome_after_a_takeover_is_not_counted(
    postgres_database: str, pg_schema: str
) -> None:
    async def work(inbox: Inbox) -> Counters:
        stalled = PostgresInbox(postgres_database, schema=pg_schema, claim_idle=0.3)
        await stalled.open()
        try:
            await put(inbox, 1)
            (lapsing,) = await stalled.claim(1)
            await stalled.close()  # its heartbeat stops: the lease lapses
            deadline = time.monotonic() + 15
            taken: list[Any] = []
            while not taken:  # polling the inbox for the state, as a worker does
                assert time.monotonic() < deadline, "the lease never lapsed"
                taken = await inbox.claim(1)
            await stalled.bury(lapsing.id, "RuntimeError: too late")  # no longer its own
            await inbox.succeed(taken[0].id)
            return await inbox.counters()
        finally:
            await stalled.close()

    found = session_of(lambda: pg_inbox(postgres_database, pg_schema))(work)
    assert counts(found) == {**ZERO, "received": 1, "handled": 1}


def tables_at_version_two(database: str, schema: str) -> str:
    """Make the tables as the release before made them, with an event in them; their
    schema as SQL names it."""
    s = f'"{schema}"'
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {s}")
        connection.execute(
            f"CREATE TABLE {s}.schema_version (version integer PRIMARY KEY, "
            f"applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for number, migration in enumerate(_MIGRATIONS[:2], start=1):
            connection.execute(migration.replace("{s}", s))
            connection.execute(f"INSERT INTO {s}.schema_version (version) VALUES ({number})")
        connection.execute(
            f"INSERT INTO {s}.events (key, kind, params, received_at, state, next_attempt_at) "
            f"VALUES ('old', 'sms', '[]', 1, 'pending', 1)"
        )
    assert scalar(database, "SELECT to_regclass(%s)", (f"{s}.counters",)) is None
    return s


def test_postgres_tables_at_version_two_are_upgraded_to_count(
    postgres_database: str, pg_schema: str
) -> None:
    assert SCHEMA_VERSION == 3
    s = tables_at_version_two(postgres_database, pg_schema)

    async def work(inbox: Inbox) -> tuple[tuple[int, int], Counters, Counters]:
        assert isinstance(inbox, PostgresInbox)
        versions = await inbox.migrate_schema()  # open() did it: nothing left to do
        before = await inbox.counters()
        await put(inbox, 1)
        for entry in await inbox.claim(10):  # the old event and the new one
            await inbox.succeed(entry.id)
        return versions, before, await inbox.counters()

    started = time.time()
    versions, before, after = session_of(lambda: pg_inbox(postgres_database, pg_schema))(work)
    assert versions == (3, 3)
    # Counting begins at the upgrade: the old event was received before it.
    assert counts(before) == ZERO
    assert started - 5 <= before.since <= time.time()
    assert counts(after) == {**ZERO, "received": 1, "handled": 2}
    assert after.since == before.since
    found = scalar(
        postgres_database, f"SELECT array_agg(version ORDER BY version) FROM {s}.schema_version"
    )
    assert found == [1, 2, 3]


def test_postgres_inbox_migrate_upgrades_version_two_for_listeners_that_may_not(
    postgres_database: str, pg_schema: str
) -> None:
    tables_at_version_two(postgres_database, pg_schema)
    fixed = lambda: PostgresInbox(postgres_database, schema=pg_schema, migrate=False)  # noqa: E731
    with pytest.raises(SchemaError, match="tables at version 2; this release needs version 3"):
        session_of(fixed)(lambda inbox: inbox.counters())

    result = invoke("inbox", "migrate", "--inbox", postgres_database, "--schema", pg_schema)
    assert result.exit_code == 0, result.output
    assert result.output.endswith(": tables upgraded from version 2 to version 3\n"), result.output

    async def work(inbox: Inbox) -> Counters:
        await put(inbox, 1)
        return await inbox.counters()

    assert counts(session_of(fixed)(work)) == {**ZERO, "received": 1}
