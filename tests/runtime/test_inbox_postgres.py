"""The PostgreSQL inbox against a real PostgreSQL: every operation, group commit,
two workers and their leases, notifications, the schema and its versions,
callbacks' transactions, and outages.

Each test works in a schema of its own (``pg_schema``) in the run's database
(``postgres_database``), or on a cluster of its own (``own_postgres``) when it
stops the database.  What the inbox says is checked, where it matters, against
the tables themselves read on a separate connection (``scalar``).  Async inbox
calls run with ``asyncio.run`` inside plain tests.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, TypeVar

import psycopg
import pytest

from tests.postgres_support import (
    PostgresCluster,
    free_port,
    own_postgres,
    pg_schema,
    postgres_database,
    scalar,
)
from twilio_trigger import ConfigurationError, Listener, SmsStatusChangeEvent, TwilioEvent
from twilio_trigger._config import Settings
from twilio_trigger._postgres_schema import SCHEMA_VERSION, SchemaError
from twilio_trigger._transaction import LeaseLostError
from twilio_trigger.inbox import Entry, State, UnreachableError, open_inbox
from twilio_trigger.inbox.postgres import PostgresInbox
from twilio_trigger.testing import sms_status_params

__all__ = ["own_postgres", "pg_schema", "postgres_database"]  # fixtures, for pytest

_T = TypeVar("_T")

SID = "SM" + "0123456789abcdef" * 2
#: Long enough that no lease lapses during a test unless the test says so.
LONG = 60.0
#: How long a test waits for something that should happen at once.
PATIENCE = 15.0
#: How long a test watches for a notification that must not come (one comes in
#: milliseconds).
QUIET = 1.0


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def with_inbox(
    url: str,
    schema: str,
    work: Callable[[PostgresInbox], Awaitable[_T]],
    *,
    claim_idle: float = LONG,
) -> _T:
    """Run *work* on a PostgreSQL inbox in *schema*, opened and closed around it."""

    async def session() -> _T:
        inbox = PostgresInbox(url, schema=schema, claim_idle=claim_idle)
        await inbox.open()
        try:
            return await work(inbox)
        finally:
            await inbox.close()

    return run(session())


def params(status: str = "delivered", sid: str = SID) -> list[tuple[str, str]]:
    return list(sms_status_params(status, sid=sid).items())


async def put(inbox: PostgresInbox, key: str, status: str = "delivered", sid: str = SID) -> bool:
    return await inbox.put(key, "sms", sid, status, params(status, sid))


async def drain(inbox: PostgresInbox) -> list[Entry]:
    """Claim until nothing more is due."""
    claimed: list[Entry] = []
    while batch := await inbox.claim(50):
        claimed.extend(batch)
    return claimed


async def eventually(
    call: Callable[[], Awaitable[_T]], ready: Callable[[_T], bool], what: str
) -> _T:
    """*call* again until *ready* says yes of what it returns, within :data:`PATIENCE`."""
    deadline = time.monotonic() + PATIENCE
    while True:
        got = await call()
        if ready(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}; last: {got!r}")
        await asyncio.sleep(0.05)


def sql(schema: str, text: str) -> str:
    """*text* with ``{s}`` made the quoted *schema* (a name the fixture made)."""
    return text.replace("{s}", f'"{schema}"')


def event(sid: str = SID) -> TwilioEvent:
    return SmsStatusChangeEvent(sms_status_params("delivered", sid=sid))


def not_an_exception(result: object) -> bool:
    return not isinstance(result, Exception)


# -- open, put, duplicates ------------------------------------------------------------------
def test_open_creates_the_tables_of_a_fresh_schema_at_the_latest_version(
    postgres_database: str, pg_schema: str
) -> None:
    async def work(inbox: PostgresInbox) -> tuple[int, dict[State, int], list[Entry]]:
        again = await inbox.open()  # a second open changes nothing
        return again, await inbox.stats(), await inbox.claim(10)

    again, stats, claimed = with_inbox(postgres_database, pg_schema, work)
    assert again == 0
    assert stats == dict.fromkeys(State, 0)
    assert claimed == []
    assert SCHEMA_VERSION == 3
    versions = scalar(
        postgres_database,
        sql(pg_schema, "SELECT array_agg(version ORDER BY version) FROM {s}.schema_version"),
    )
    assert versions == [1, 2, 3]
    for table in ("events", "deliveries", "statuses", "settings", "counters", "schema_version"):
        assert scalar(
            postgres_database,
            "SELECT to_regclass(%s) IS NOT NULL",
            (sql(pg_schema, "{s}.") + table,),
        )


def test_open_inbox_selects_postgres_for_either_scheme_and_hides_the_password(
    pg_schema: str,
) -> None:
    for url in (
        "postgresql://ops:hunter2@db.internal:5432/app",
        "postgres://ops:hunter2@db.internal/app",
    ):
        inbox = open_inbox(url, schema=pg_schema, claim_idle=5.0)
        assert isinstance(inbox, PostgresInbox)
        assert inbox.schema == pg_schema
        assert inbox.tables == sql(pg_schema, "{s}.events")
        assert "hunter2" not in inbox.location
        assert "db.internal" in inbox.location


def test_an_invalid_schema_name_is_refused() -> None:
    for name in ("Bad-Name", "1starts_with_digit", 'x"; DROP TABLE y; --', "a" * 64, ""):
        with pytest.raises(ValueError, match="not a schema name"):
            PostgresInbox("postgresql://postgres@127.0.0.1/x", schema=name)


def test_put_stores_a_pending_entry_and_refuses_a_copy(
    postgres_database: str, pg_schema: str
) -> None:
    sent = [*params(), ("Body", "second value \U0001f4e6"), ("Body", "é ü ß 漢字"), ("Empty", "")]

    async def work(inbox: PostgresInbox) -> tuple[bool, bool, list[Entry], dict[State, int]]:
        added = await inbox.put("k1", "sms", SID, "delivered", sent)
        again = await inbox.put("k1", "sms", SID, "delivered", sent)
        return added, again, await inbox.entries(), await inbox.stats()

    before = time.time()
    added, again, entries, stats = with_inbox(postgres_database, pg_schema, work)
    assert (added, again) == (True, False)
    (entry,) = entries
    assert entry.key == "k1"
    assert entry.kind == "sms"
    assert entry.sid == SID
    assert entry.status == "delivered"
    assert entry.params == tuple(sent)
    assert entry.state is State.PENDING
    assert entry.attempts == 0
    assert before - 1 <= entry.received_at <= time.time() + 1
    assert entry.next_attempt_at == entry.received_at
    assert entry.last_error is None
    assert entry.finished_at is None
    assert entry.headers == ()
    assert stats == {State.PENDING: 1, State.RUNNING: 0, State.DONE: 0, State.DEAD: 0}
    # Stored as text in the row, non-ASCII characters as themselves.
    stored = scalar(
        postgres_database, sql(pg_schema, "SELECT params FROM {s}.events WHERE key = %s"), ("k1",)
    )
    assert isinstance(stored, str)
    assert "漢字" in stored


def test_a_copy_is_refused_from_another_inbox_object_too(
    postgres_database: str, pg_schema: str
) -> None:
    assert with_inbox(postgres_database, pg_schema, lambda inbox: put(inbox, "same")) is True
    assert with_inbox(postgres_database, pg_schema, lambda inbox: put(inbox, "same")) is False
    assert with_inbox(postgres_database, pg_schema, lambda inbox: inbox.stats())[State.PENDING] == 1


def test_two_copies_in_one_concurrent_batch_store_one_entry(
    postgres_database: str, pg_schema: str
) -> None:
    async def work(inbox: PostgresInbox) -> tuple[list[bool], list[Entry]]:
        got = await asyncio.gather(
            put(inbox, "dup"),
            put(inbox, "other", sid="SM" + "1" * 32),
            put(inbox, "dup"),
            put(inbox, "dup"),
        )
        return list(got), await inbox.entries()

    got, entries = with_inbox(postgres_database, pg_schema, work)
    assert got[1] is True
    assert sorted([got[0], got[2], got[3]]) == [False, False, True]
    assert sorted(e.key for e in entries) == ["dup", "other"]


def test_a_nul_in_a_parameter_is_stored_and_read_back_whole(
    postgres_database: str, pg_schema: str
) -> None:
    # PostgreSQL's JSON cannot turn \u0000 into text: such a batch takes the slow path,
    # and the parameter comes back as it was sent (a form value may hold %00).
    sent, plain = [*params(), ("Body", "before\x00after")], params("sent")

    async def work(inbox: PostgresInbox) -> tuple[list[bool], list[Entry]]:
        got = await asyncio.gather(
            inbox.put("nul", "sms", SID, "delivered", sent),
            inbox.put("plain", "sms", SID, "sent", plain),  # in the same batch
        )
        return list(got), await inbox.entries()

    got, entries = with_inbox(postgres_database, pg_schema, work)
    assert got == [True, True]
    kept = {entry.key: entry for entry in entries}
    assert kept["nul"].params == tuple(sent)
    assert kept["plain"].params == tuple(plain)


def test_the_headers_given_are_kept_with_the_entry(postgres_database: str, pg_schema: str) -> None:
    headers = [
        ("x-home-region", "us1"),
        ("user-agent", "TwilioProxy/1.1"),
        ("i-twilio-idempotency-token", "é-tok"),
    ]

    async def work(inbox: PostgresInbox) -> list[Entry]:
        await inbox.put("with", "sms", SID, "delivered", params(), headers)
        await inbox.put("without", "sms", SID, "sent", params("sent"))
        return await inbox.entries()

    without, kept = with_inbox(postgres_database, pg_schema, work)
    assert (kept.key, kept.headers) == ("with", tuple(headers))
    assert (without.key, without.headers) == ("without", ())


# -- group commit ----------------------------------------------------------------------------
def test_concurrent_puts_share_few_transactions(postgres_database: str, pg_schema: str) -> None:
    total = 200

    async def work(inbox: PostgresInbox) -> list[bool]:
        got = await asyncio.gather(*(put(inbox, f"k{n}", sid=f"SM{n:032d}") for n in range(total)))
        return list(got)

    got = with_inbox(postgres_database, pg_schema, work)
    assert got == [True] * total
    assert scalar(postgres_database, sql(pg_schema, "SELECT count(*) FROM {s}.events")) == total
    # Rows inserted by one statement (one transaction, one commit) share their xmin.
    transactions = scalar(
        postgres_database,
        sql(pg_schema, "SELECT count(DISTINCT xmin::text::bigint) FROM {s}.events"),
    )
    assert isinstance(transactions, int)
    assert 1 <= transactions < 50


# -- claim, succeed, retry, bury -------------------------------------------------------------
def test_claim_runs_due_entries_with_attempt_one(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[list[Entry], list[Entry], dict[State, int]]:
        for n in range(3):
            await put(inbox, f"k{n}", sid=f"SM{n:032d}")
        claimed = await inbox.claim(10)
        return claimed, await inbox.claim(10), await inbox.stats()

    claimed, again, stats = with_inbox(postgres_database, pg_schema, work)
    assert [e.key for e in claimed] == ["k0", "k1", "k2"]  # in id order
    assert all(e.attempts == 1 and e.state is State.RUNNING for e in claimed)
    assert again == []
    assert stats == {State.PENDING: 0, State.RUNNING: 3, State.DONE: 0, State.DEAD: 0}
    workers = scalar(
        postgres_database, sql(pg_schema, "SELECT count(DISTINCT worker) FROM {s}.events")
    )
    assert workers == 1
    leases = scalar(
        postgres_database,
        sql(
            pg_schema,
            "SELECT bool_and(lease_until > extract(epoch from now()) + 30) FROM {s}.events",
        ),
    )
    assert leases is True


def test_claim_honours_its_limit(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[int, int, int]:
        for n in range(5):
            await put(inbox, f"k{n}")
        first = len(await inbox.claim(2))
        second = len(await inbox.claim(2))
        return first, second, len(await inbox.claim(2))

    assert with_inbox(postgres_database, pg_schema, work) == (2, 2, 1)


def test_succeed_makes_the_entry_done(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[Entry | None, dict[State, int], list[Entry]]:
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        await inbox.succeed(entry.id)
        return await inbox.get(entry.id), await inbox.stats(), await inbox.claim(5)

    before = time.time()
    entry, stats, claimed = with_inbox(postgres_database, pg_schema, work)
    assert entry is not None
    assert entry.state is State.DONE
    assert entry.attempts == 1
    assert entry.finished_at is not None
    assert before - 1 <= entry.finished_at <= time.time() + 1
    assert stats == {State.PENDING: 0, State.RUNNING: 0, State.DONE: 1, State.DEAD: 0}
    assert claimed == []
    worker = scalar(
        postgres_database, sql(pg_schema, "SELECT worker FROM {s}.events WHERE key = %s"), ("k1",)
    )
    assert worker is None


def test_a_retried_entry_is_claimable_only_once_due(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> dict[str, Any]:
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        at = time.time() + 1.0  # room for the calls below, even on a loaded machine
        await inbox.retry(entry.id, "boom: carrier down", at)
        seen: dict[str, Any] = {
            "at": at,
            "waiting": await inbox.get(entry.id),
            "stats": await inbox.stats(),
            "next_due": await inbox.next_due(),
            "early": await inbox.claim(5),
        }
        # Time must pass for it to be due: wait for the moment, then claim once.
        await asyncio.sleep(max(0.0, at + 0.05 - time.time()))
        seen["late"] = await inbox.claim(5)
        seen["next_due_after"] = await inbox.next_due()
        return seen

    seen = with_inbox(postgres_database, pg_schema, work)
    waiting = seen["waiting"]
    assert waiting.state is State.PENDING
    assert waiting.last_error == "boom: carrier down"
    assert waiting.attempts == 1
    assert waiting.finished_at is None
    assert abs(waiting.next_attempt_at - seen["at"]) < 0.001
    assert seen["stats"][State.PENDING] == 1
    assert seen["stats"][State.RUNNING] == 0
    assert seen["next_due"] is not None
    assert abs(seen["next_due"] - seen["at"]) < 0.001
    assert seen["early"] == []
    (late,) = seen["late"]
    assert late.id == waiting.id
    assert late.attempts == 2
    assert late.state is State.RUNNING
    assert late.last_error == "boom: carrier down"  # kept until it is replaced
    assert seen["next_due_after"] is None


def test_next_due_is_the_earliest_pending_entry(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[float | None, float | None, float]:
        empty = await inbox.next_due()
        await put(inbox, "a", sid="SM" + "a" * 32)
        await put(inbox, "b", sid="SM" + "b" * 32)
        first, second = await inbox.claim(2)
        later = time.time() + 300
        await inbox.retry(first.id, "x", later)
        await inbox.retry(second.id, "y", later + 100)
        return empty, await inbox.next_due(), later

    empty, due, later = with_inbox(postgres_database, pg_schema, work)
    assert empty is None
    assert due is not None
    assert abs(due - later) < 0.001


def test_bury_keeps_a_dead_letter(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[list[Entry], dict[State, int], list[Entry]]:
        await put(inbox, "dead-one", sid="SM" + "1" * 32)
        await put(inbox, "done-one", sid="SM" + "2" * 32)
        claimed = {e.key: e for e in await inbox.claim(5)}
        await inbox.bury(claimed["dead-one"].id, "Traceback ...\nValueError: nope é")
        await inbox.succeed(claimed["done-one"].id)
        return await inbox.entries(State.DEAD), await inbox.stats(), await inbox.claim(5)

    dead, stats, claimed = with_inbox(postgres_database, pg_schema, work)
    (entry,) = dead
    assert entry.key == "dead-one"
    assert entry.state is State.DEAD
    assert entry.last_error == "Traceback ...\nValueError: nope é"
    assert entry.error_line == "ValueError: nope é"
    assert entry.finished_at is not None
    assert stats == {State.PENDING: 0, State.RUNNING: 0, State.DONE: 1, State.DEAD: 1}
    assert claimed == []


def test_a_long_error_keeps_its_end(postgres_database: str, pg_schema: str) -> None:
    error = "x" * 20_000 + "\nValueError: the end"

    async def work(inbox: PostgresInbox) -> Entry | None:
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        await inbox.bury(entry.id, error)
        return await inbox.get(entry.id)

    entry = with_inbox(postgres_database, pg_schema, work)
    assert entry is not None
    assert entry.last_error is not None
    assert entry.last_error.endswith("ValueError: the end")
    assert len(entry.last_error) < len(error)


# -- stats, backlog, entries, get --------------------------------------------------------------
def test_stats_and_backlog_count_every_state(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[dict[State, int], dict[State, int]]:
        await asyncio.gather(*(put(inbox, f"k{n}", sid=f"SM{n:032d}") for n in range(10)))
        claimed = await inbox.claim(7)  # 3 left pending
        for entry in claimed[:2]:
            await inbox.succeed(entry.id)  # 2 done
        for entry in claimed[2:3]:
            await inbox.bury(entry.id, "dead")  # 1 dead
        for entry in claimed[3:4]:
            await inbox.retry(entry.id, "later", time.time() + 60)  # 1 more pending
        return await inbox.stats(), await inbox.backlog()  # 3 running

    stats, backlog = with_inbox(postgres_database, pg_schema, work)
    assert stats == {State.PENDING: 4, State.RUNNING: 3, State.DONE: 2, State.DEAD: 1}
    assert backlog == {State.PENDING: 4, State.RUNNING: 3, State.DEAD: 1}


def test_entries_are_newest_first_by_state_and_limit(
    postgres_database: str, pg_schema: str
) -> None:
    async def work(inbox: PostgresInbox) -> dict[str, Any]:
        for n in range(5):
            await put(inbox, f"k{n}", sid=f"SM{n:032d}")
        first, second = await inbox.claim(2)  # k0, k1
        await inbox.succeed(first.id)
        await inbox.bury(second.id, "no")
        return {
            "all": await inbox.entries(),
            "two": await inbox.entries(limit=2),
            "pending": await inbox.entries(State.PENDING),
            "pending_one": await inbox.entries(State.PENDING, 1),
            "done": await inbox.entries(State.DONE),
            "dead": await inbox.entries(State.DEAD),
            "running": await inbox.entries(State.RUNNING),
            "got": await inbox.get(second.id),
            "missing": await inbox.get(999_999),
        }

    seen = with_inbox(postgres_database, pg_schema, work)
    assert [e.key for e in seen["all"]] == ["k4", "k3", "k2", "k1", "k0"]
    ids = [e.id for e in seen["all"]]
    assert ids == sorted(ids, reverse=True)
    assert [e.key for e in seen["two"]] == ["k4", "k3"]
    assert [e.key for e in seen["pending"]] == ["k4", "k3", "k2"]
    assert [e.key for e in seen["pending_one"]] == ["k4"]
    assert [e.key for e in seen["done"]] == ["k0"]
    assert [e.key for e in seen["dead"]] == ["k1"]
    assert seen["running"] == []
    got = seen["got"]
    assert got is not None
    assert (got.key, got.state, got.last_error) == ("k1", State.DEAD, "no")
    assert dict(got.params)["MessageSid"] == f"SM{1:032d}"
    assert seen["missing"] is None


# -- replay, purge ------------------------------------------------------------------------------
def _bury_all(count: int) -> Callable[[PostgresInbox], Awaitable[list[int]]]:
    async def work(inbox: PostgresInbox) -> list[int]:
        for n in range(count):
            await put(inbox, f"k{n}", sid=f"SM{n:032d}")
        ids = []
        for entry in await drain(inbox):
            await inbox.bury(entry.id, f"failed {entry.key}")
            ids.append(entry.id)
        return sorted(ids)

    return work


def test_replay_of_given_ids_makes_them_claimable_with_fresh_attempts(
    postgres_database: str, pg_schema: str
) -> None:
    ids = with_inbox(postgres_database, pg_schema, _bury_all(3))
    assert len(ids) == 3

    async def work(
        inbox: PostgresInbox,
    ) -> tuple[int, Entry | None, dict[State, int], list[Entry], list[Entry]]:
        count = await inbox.replay(ids[:2])
        replayed = await inbox.get(ids[0])
        stats = await inbox.stats()
        return count, replayed, stats, await drain(inbox), await inbox.entries(State.DEAD)

    count, replayed, stats, claimed, dead = with_inbox(postgres_database, pg_schema, work)
    assert count == 2
    assert replayed is not None
    assert (replayed.state, replayed.attempts, replayed.finished_at) == (State.PENDING, 0, None)
    assert stats == {State.PENDING: 2, State.RUNNING: 0, State.DONE: 0, State.DEAD: 1}
    assert sorted(e.id for e in claimed) == ids[:2]
    assert all(e.attempts == 1 for e in claimed)
    assert [e.id for e in dead] == [ids[2]]


def test_replay_without_ids_replays_every_dead_letter_and_no_running_entry(
    postgres_database: str, pg_schema: str
) -> None:
    ids = with_inbox(postgres_database, pg_schema, _bury_all(4))

    async def work(inbox: PostgresInbox) -> dict[str, Any]:
        await put(inbox, "running", sid="SM" + "r" * 32)
        (running,) = await inbox.claim(1)
        count = await inbox.replay(None)
        claimed = await drain(inbox)
        for entry in claimed:
            await inbox.succeed(entry.id)
        return {
            "running": running,
            "count": count,
            "claimed": claimed,
            "dead": await inbox.entries(State.DEAD),
            "still": await inbox.get(running.id),
            "stats": await inbox.stats(),
        }

    seen = with_inbox(postgres_database, pg_schema, work)
    assert seen["count"] == 4
    assert sorted(e.id for e in seen["claimed"]) == ids
    assert all(e.attempts == 1 and e.state is State.RUNNING for e in seen["claimed"])
    assert seen["dead"] == []
    still = seen["still"]
    assert still is not None
    assert (still.state, still.attempts) == (State.RUNNING, 1)
    assert seen["stats"] == {State.PENDING: 0, State.RUNNING: 1, State.DONE: 4, State.DEAD: 0}


def test_replay_skips_running_and_missing_entries(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[int, list[Entry], Entry | None]:
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        count = await inbox.replay([entry.id, 999_999])
        return count, await inbox.claim(5), await inbox.get(entry.id)

    count, claimed, entry = with_inbox(postgres_database, pg_schema, work)
    assert count == 0
    assert claimed == []
    assert entry is not None
    assert (entry.state, entry.attempts) == (State.RUNNING, 1)


def test_replay_of_a_done_entry_runs_it_again(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[int, list[Entry]]:
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        await inbox.succeed(entry.id)
        return await inbox.replay([entry.id]), await inbox.claim(5)

    count, claimed = with_inbox(postgres_database, pg_schema, work)
    assert count == 1
    assert [(e.key, e.attempts) for e in claimed] == [("k1", 1)]


def test_purge_deletes_old_entries_of_a_state_in_batches(
    postgres_database: str, pg_schema: str
) -> None:
    old = 5_003  # more than one batch of 5,000

    async def work(inbox: PostgresInbox) -> dict[str, Any]:
        await put(inbox, "recent-dead", sid="SM" + "1" * 32)
        await put(inbox, "recent-done", sid="SM" + "2" * 32)
        await put(inbox, "pending", sid="SM" + "3" * 32)
        dead, done = await inbox.claim(2)
        await inbox.bury(dead.id, "no")
        await inbox.succeed(done.id)
        async with inbox.connection() as connection:
            long_ago = time.time() - 7200
            await connection.execute(
                sql(
                    inbox.schema,
                    "INSERT INTO {s}.events (key, kind, sid, status, params, received_at, state, "
                    "attempts, next_attempt_at, last_error, finished_at) SELECT st || '-' || g, "
                    "'sms', NULL, 'failed', '[]', %s, st, 1, %s, 'old', %s "
                    "FROM generate_series(1, %s) g, unnest(ARRAY['dead', 'done']) st",
                ),
                (long_ago, long_ago, long_ago, old),
            )
        seen: dict[str, Any] = {"before": await inbox.stats()}
        seen["kept"] = await inbox.purge(State.DEAD, 3 * 3600)  # none that old
        seen["dead"] = await inbox.purge(State.DEAD, 3600)
        seen["after_dead"] = await inbox.stats()
        seen["done"] = await inbox.purge(State.DONE, 3600)
        seen["after_done"] = await inbox.stats()
        seen["rest"] = await inbox.purge(State.DEAD, 0)
        seen["left"] = await inbox.entries()
        return seen

    seen = with_inbox(postgres_database, pg_schema, work)
    assert seen["before"] == {
        State.PENDING: 1,
        State.RUNNING: 0,
        State.DONE: old + 1,
        State.DEAD: old + 1,
    }
    assert seen["kept"] == 0
    assert seen["dead"] == old
    assert seen["after_dead"] == {
        State.PENDING: 1,
        State.RUNNING: 0,
        State.DONE: old + 1,
        State.DEAD: 1,
    }
    assert seen["done"] == old
    assert seen["after_done"] == {State.PENDING: 1, State.RUNNING: 0, State.DONE: 1, State.DEAD: 1}
    assert seen["rest"] == 1
    assert sorted(e.key for e in seen["left"]) == ["pending", "recent-done"]


def test_purge_never_deletes_pending_or_running_entries(
    postgres_database: str, pg_schema: str
) -> None:
    async def work(inbox: PostgresInbox) -> tuple[list[int], dict[State, int]]:
        await put(inbox, "a", sid="SM" + "a" * 32)
        await put(inbox, "b", sid="SM" + "b" * 32)
        await inbox.claim(1)
        counts = [await inbox.purge(state, 0) for state in State]
        return counts, await inbox.stats()

    counts, stats = with_inbox(postgres_database, pg_schema, work)
    assert counts == [0, 0, 0, 0]
    assert stats == {State.PENDING: 1, State.RUNNING: 1, State.DONE: 0, State.DEAD: 0}


# -- two workers ---------------------------------------------------------------------------------
def test_two_inboxes_claiming_concurrently_never_share_an_entry(
    postgres_database: str, pg_schema: str
) -> None:
    total = 200

    async def work() -> tuple[set[int], list[list[int]]]:
        first = PostgresInbox(postgres_database, schema=pg_schema)
        second = PostgresInbox(postgres_database, schema=pg_schema)
        await first.open()
        await second.open()
        try:
            added = await asyncio.gather(
                *(put(first, f"k{n}", sid=f"SM{n:032d}") for n in range(total))
            )
            assert all(added)
            ids = {e.id for e in await first.entries(limit=total + 10)}

            async def worker(inbox: PostgresInbox) -> list[int]:
                mine: list[int] = []
                while batch := await inbox.claim(7):
                    for entry in batch:
                        mine.append(entry.id)
                        await inbox.succeed(entry.id)
                return mine

            got = await asyncio.gather(worker(first), worker(second), worker(first), worker(second))
            return ids, list(got)
        finally:
            await first.close()
            await second.close()

    ids, got = run(work())
    everything = [entry_id for mine in got for entry_id in mine]
    assert len(ids) == total
    assert len(everything) == len(set(everything)) == total
    assert set(everything) == ids
    assert got[0] + got[2], "the first inbox claimed nothing"
    assert got[1] + got[3], "the second inbox claimed nothing"
    done = scalar(
        postgres_database, sql(pg_schema, "SELECT count(*) FROM {s}.events WHERE state = 'done'")
    )
    assert done == total
    attempts = scalar(postgres_database, sql(pg_schema, "SELECT max(attempts) FROM {s}.events"))
    assert attempts == 1


def test_an_abandoned_entry_is_taken_over_after_its_lease_and_the_old_worker_finishes_nothing(
    postgres_database: str, pg_schema: str
) -> None:
    async def work() -> dict[str, Any]:
        stalled = PostgresInbox(postgres_database, schema=pg_schema, claim_idle=0.5)
        alive = PostgresInbox(postgres_database, schema=pg_schema, claim_idle=LONG)
        await stalled.open()
        await alive.open()
        try:
            await put(stalled, "k1", sid="SM" + "a" * 32)
            await put(stalled, "k2", sid="SM" + "b" * 32)
            taken = await stalled.claim(5)
            # The worker stalls: its heartbeat stops (closing stops it), its entries
            # unfinished.
            await stalled.close()
            seen: dict[str, Any] = {"taken": taken, "early": await alive.claim(5)}
            over = await eventually(lambda: alive.claim(5), bool, "the lapsed leases")
            over += await alive.claim(5)  # the other one, if it lapsed a moment later
            if len(over) < 2:
                over += await eventually(lambda: alive.claim(5), bool, "the second lapsed lease")
            seen["over"] = over
            # The stalled worker wakes up and finishes them: nothing changes.
            await stalled.succeed(over[0].id)
            await stalled.bury(over[1].id, "late")
            seen["after_late"] = [await alive.get(e.id) for e in over]
            seen["workers"] = scalar(
                postgres_database,
                sql(pg_schema, "SELECT array_agg(DISTINCT worker) FROM {s}.events"),
            )
            for entry in over:
                await alive.succeed(entry.id)
            seen["stats"] = await alive.stats()
            seen["after"] = await alive.claim(5)
            return seen
        finally:
            await stalled.close()
            await alive.close()

    seen = run(work())
    assert len(seen["taken"]) == 2
    assert seen["early"] == []
    over = seen["over"]
    assert sorted(e.id for e in over) == sorted(e.id for e in seen["taken"])
    assert all(e.attempts == 2 and e.state is State.RUNNING for e in over)
    for entry in seen["after_late"]:
        assert entry is not None
        assert (entry.state, entry.attempts, entry.last_error) == (State.RUNNING, 2, None)
    assert len(seen["workers"]) == 1  # the one that took them over
    assert seen["stats"] == {State.PENDING: 0, State.RUNNING: 0, State.DONE: 2, State.DEAD: 0}
    assert seen["after"] == []


def test_the_heartbeat_keeps_a_live_workers_leases(postgres_database: str, pg_schema: str) -> None:
    claim_idle = 0.6

    async def work() -> dict[str, Any]:
        holder = PostgresInbox(postgres_database, schema=pg_schema, claim_idle=claim_idle)
        other = PostgresInbox(postgres_database, schema=pg_schema, claim_idle=claim_idle)
        await holder.open()
        await other.open()
        try:
            await put(holder, "k1")
            (entry,) = await holder.claim(1)
            first_lease = scalar(
                postgres_database, sql(pg_schema, "SELECT lease_until FROM {s}.events")
            )
            # Several lease lengths: the other inbox must never get it.
            stolen: list[Entry] = []
            looks = 0
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                stolen += await other.claim(5)
                looks += 1
                await asyncio.sleep(0.05)
            last_lease = scalar(
                postgres_database, sql(pg_schema, "SELECT lease_until FROM {s}.events")
            )
            await holder.succeed(entry.id)
            return {
                "stolen": stolen,
                "looks": looks,
                "first": first_lease,
                "last": last_lease,
                "entry": await holder.get(entry.id),
            }
        finally:
            await holder.close()
            await other.close()

    seen = run(work())
    assert seen["looks"] > 5
    assert seen["stolen"] == []
    assert isinstance(seen["first"], float)
    assert isinstance(seen["last"], float)
    assert seen["last"] > seen["first"] + 1.0  # renewed, several times
    entry = seen["entry"]
    assert entry is not None
    assert (entry.state, entry.attempts) == (State.DONE, 1)


# -- watch -------------------------------------------------------------------------------------
def test_watch_wakes_another_inbox_when_an_event_is_stored_or_replayed(
    postgres_database: str, pg_schema: str
) -> None:
    async def work() -> dict[str, Any]:
        writer = PostgresInbox(postgres_database, schema=pg_schema)
        watcher = PostgresInbox(postgres_database, schema=pg_schema)
        await writer.open()
        await watcher.open()
        woken = asyncio.Event()
        calls: list[float] = []

        def wake() -> None:
            calls.append(time.monotonic())
            woken.set()

        try:
            watcher.watch(wake)
            # Once listening, it wakes once (for what was stored while nobody listened).
            await asyncio.wait_for(woken.wait(), PATIENCE)
            woken.clear()
            seen: dict[str, Any] = {"listening": len(calls)}
            assert await put(writer, "k1")
            await asyncio.wait_for(woken.wait(), PATIENCE)
            seen["stored"] = len(calls)
            woken.clear()
            (entry,) = await writer.claim(1)
            await writer.bury(entry.id, "no")
            await writer.replay([entry.id])
            await asyncio.wait_for(woken.wait(), PATIENCE)
            seen["replayed"] = len(calls)
            woken.clear()
            # A copy stores nothing, and wakes nobody.
            assert not await put(writer, "k1")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(woken.wait(), QUIET)
            seen["after_copy"] = len(calls)
            return seen
        finally:
            await writer.close()
            await watcher.close()

    seen = run(work())
    assert seen["listening"] == 1
    assert seen["stored"] == 2
    assert seen["replayed"] == 3
    assert seen["after_copy"] == 3


def test_watch_ignores_other_schemas(postgres_database: str, pg_schema: str) -> None:
    other_schema = pg_schema + "_other"

    async def work() -> int:
        writer = PostgresInbox(postgres_database, schema=other_schema)
        watcher = PostgresInbox(postgres_database, schema=pg_schema)
        # Another process on the watcher's schema (its own events wake nobody in it).
        neighbour = PostgresInbox(postgres_database, schema=pg_schema)
        await writer.open()
        await watcher.open()
        woken = asyncio.Event()
        calls: list[int] = []

        def wake() -> None:
            calls.append(1)
            woken.set()

        try:
            watcher.watch(wake)
            await asyncio.wait_for(woken.wait(), PATIENCE)
            woken.clear()
            assert await put(writer, "elsewhere")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(woken.wait(), QUIET)
            assert await put(neighbour, "here")
            await asyncio.wait_for(woken.wait(), PATIENCE)
            return len(calls)
        finally:
            await writer.close()
            await watcher.close()
            await neighbour.close()

    try:
        calls = run(work())
    finally:
        with psycopg.connect(postgres_database, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{other_schema}" CASCADE')
    assert calls == 2


# -- the schema ------------------------------------------------------------------------------------
def test_without_migrate_an_empty_schema_is_an_error_naming_the_command(
    postgres_database: str, pg_schema: str
) -> None:
    async def work() -> None:
        inbox = PostgresInbox(postgres_database, schema=pg_schema, migrate=False)
        try:
            await inbox.open()
        finally:
            await inbox.close()

    with pytest.raises(SchemaError) as caught:
        run(work())
    message = str(caught.value)
    assert "`twilio-trigger inbox migrate" in message
    assert pg_schema in message
    assert "no tables" in message
    made = scalar(
        postgres_database, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (pg_schema,)
    )
    assert made == 0  # nothing was created


def test_a_listener_that_cannot_start_leaves_nothing_running(
    postgres_database: str, pg_schema: str
) -> None:
    # A start that fails on the inbox's schema must close the pool it opened: its
    # workers, still waiting, would keep the end of the event loop waiting for ever
    # (psycopg_pool's workers go on waiting when cancelled while they run a task).
    listener = Listener(
        0,
        auth_tokens=["a-token"],
        inbox=postgres_database,
        postgres_schema=pg_schema,
        postgres_migrate=False,
    )

    async def start() -> tuple[list[dict[str, Any]], set[asyncio.Task[Any]]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "lifespan.startup"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        await listener.asgi({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        left = asyncio.all_tasks() - {asyncio.current_task()}
        return sent, {task for task in left if not task.done()}

    sent, left = run(start())
    assert [message["type"] for message in sent] == ["lifespan.startup.failed"]
    assert "twilio-trigger inbox migrate" in sent[0]["message"]
    assert left == set(), sorted(repr(task) for task in left)


def test_without_migrate_a_migrated_schema_opens(postgres_database: str, pg_schema: str) -> None:
    async def work() -> tuple[tuple[int, int], tuple[int, int], bool]:
        admin = PostgresInbox(postgres_database, schema=pg_schema, migrate=False)
        first = await admin.migrate_schema()  # what `inbox migrate` does
        second = await admin.migrate_schema()
        await admin.close()
        inbox = PostgresInbox(postgres_database, schema=pg_schema, migrate=False)
        try:
            await inbox.open()
            return first, second, await put(inbox, "k1")
        finally:
            await inbox.close()

    assert run(work()) == ((0, SCHEMA_VERSION), (SCHEMA_VERSION, SCHEMA_VERSION), True)


def test_tables_of_a_newer_version_are_refused(postgres_database: str, pg_schema: str) -> None:
    with_inbox(postgres_database, pg_schema, lambda inbox: inbox.stats())
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(
            sql(pg_schema, "INSERT INTO {s}.schema_version (version) VALUES (%s)"),
            (SCHEMA_VERSION + 1,),
        )

    async def opening(migrate: bool) -> None:
        inbox = PostgresInbox(postgres_database, schema=pg_schema, migrate=migrate)
        try:
            await inbox.open()
        finally:
            await inbox.close()

    async def migrating() -> None:
        inbox = PostgresInbox(postgres_database, schema=pg_schema)
        try:
            await inbox.migrate_schema()
        finally:
            await inbox.close()

    for attempt in (opening(True), opening(False), migrating()):
        with pytest.raises(SchemaError, match="newer") as caught:
            run(attempt)
        assert f"version {SCHEMA_VERSION + 1}" in str(caught.value)
    versions = scalar(
        postgres_database,
        sql(pg_schema, "SELECT array_agg(version ORDER BY version) FROM {s}.schema_version"),
    )
    assert versions == [*range(1, SCHEMA_VERSION + 2)]


def test_inboxes_opening_a_fresh_schema_together_all_succeed(
    postgres_database: str, pg_schema: str
) -> None:
    async def work() -> list[int]:
        inboxes = [PostgresInbox(postgres_database, schema=pg_schema) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(inbox.open() for inbox in inboxes)))
        finally:
            for inbox in inboxes:
                await inbox.close()

    assert run(work()) == [0, 0, 0, 0]
    versions = scalar(
        postgres_database,
        sql(pg_schema, "SELECT array_agg(version ORDER BY version) FROM {s}.schema_version"),
    )
    assert versions == [1, 2, 3]
    assert with_inbox(postgres_database, pg_schema, lambda inbox: put(inbox, "k1")) is True


def test_check_opens_an_inbox_not_yet_opened(postgres_database: str, pg_schema: str) -> None:
    async def work() -> dict[State, int]:
        inbox = PostgresInbox(postgres_database, schema=pg_schema)
        try:
            await inbox.check()
            await inbox.check()
            return await inbox.stats()
        finally:
            await inbox.close()

    assert run(work()) == dict.fromkeys(State, 0)


# -- callbacks' transactions ----------------------------------------------------------------------
async def effects_table(inbox: PostgresInbox) -> None:
    """A table of the test's own, beside the inbox's, for callbacks to write to."""
    async with inbox.connection() as connection:
        await connection.execute(
            sql(
                inbox.schema,
                "CREATE TABLE IF NOT EXISTS {s}.effects "
                "(id serial PRIMARY KEY, note text NOT NULL)",
            )
        )


def effects(url: str, schema: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            sql(schema, "SELECT note FROM {s}.effects ORDER BY id")
        ).fetchall()
    return [row[0] for row in rows]


def test_a_callbacks_writes_and_the_entry_done_commit_together(
    postgres_database: str, pg_schema: str
) -> None:
    async def work(inbox: PostgresInbox) -> dict[str, Any]:
        await effects_table(inbox)
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        seen: dict[str, Any] = {}

        async def write(the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(
                sql(pg_schema, "INSERT INTO {s}.effects (note) VALUES (%s)"),
                (the_event["MessageSid"],),
            )
            # Not visible outside the transaction yet.
            seen["outside"] = effects(postgres_database, pg_schema)

        seen["result"] = await inbox.transaction_source(entry.id).run(
            write, event(), not_an_exception
        )
        seen["done"] = await inbox.get(entry.id)
        await inbox.succeed(entry.id)  # the worker's own completion afterwards: nothing more
        seen["after"] = await inbox.get(entry.id)
        seen["committed"] = set(inbox.committed)
        seen["claimed"] = await inbox.claim(5)
        return seen

    seen = with_inbox(postgres_database, pg_schema, work)
    assert seen["outside"] == []
    assert seen["result"] is None
    assert effects(postgres_database, pg_schema) == [SID]
    done = seen["done"]
    assert done is not None
    assert done.state is State.DONE
    assert done.finished_at is not None
    assert seen["after"] == done
    assert seen["committed"] == set()
    assert seen["claimed"] == []


def test_a_callback_that_raises_commits_nothing_and_the_entry_can_be_retried(
    postgres_database: str, pg_schema: str
) -> None:
    async def work(inbox: PostgresInbox) -> dict[str, Any]:
        await effects_table(inbox)
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)

        async def fail(the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(
                sql(pg_schema, "INSERT INTO {s}.effects (note) VALUES ('half-done')")
            )
            raise RuntimeError("carrier down")

        seen: dict[str, Any] = {}
        with pytest.raises(RuntimeError, match="carrier down"):
            await inbox.transaction_source(entry.id).run(fail, event(), not_an_exception)
        seen["running"] = await inbox.get(entry.id)
        await inbox.retry(entry.id, "RuntimeError: carrier down", time.time())
        seen["retried"] = await inbox.get(entry.id)
        seen["again"] = await inbox.claim(1)
        return seen

    seen = with_inbox(postgres_database, pg_schema, work)
    assert effects(postgres_database, pg_schema) == []
    running = seen["running"]
    assert running is not None
    assert (running.state, running.finished_at) == (State.RUNNING, None)
    retried = seen["retried"]
    assert retried is not None
    assert (retried.state, retried.last_error) == (State.PENDING, "RuntimeError: carrier down")
    (again,) = seen["again"]
    assert again.attempts == 2


def test_a_callback_returning_a_failure_rolls_back(postgres_database: str, pg_schema: str) -> None:
    declined = ValueError("declined")

    async def work(inbox: PostgresInbox) -> tuple[object, Entry | None]:
        await effects_table(inbox)
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)

        async def decline(
            the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]
        ) -> object:
            await connection.execute(
                sql(pg_schema, "INSERT INTO {s}.effects (note) VALUES ('not kept')")
            )
            return declined

        result = await inbox.transaction_source(entry.id).run(decline, event(), not_an_exception)
        return result, await inbox.get(entry.id)

    result, entry = with_inbox(postgres_database, pg_schema, work)
    assert result is declined
    assert effects(postgres_database, pg_schema) == []
    assert entry is not None
    assert entry.state is State.RUNNING


def test_a_taken_over_entry_refuses_its_transaction(postgres_database: str, pg_schema: str) -> None:
    async def work() -> dict[str, Any]:
        stalled = PostgresInbox(postgres_database, schema=pg_schema, claim_idle=0.5)
        alive = PostgresInbox(postgres_database, schema=pg_schema)
        await stalled.open()
        await alive.open()
        called: list[str] = []

        async def write(the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]) -> None:
            called.append("called")

        try:
            await effects_table(alive)
            await put(stalled, "k1")
            (entry,) = await stalled.claim(1)
            await stalled.close()  # its heartbeat stops
            (over,) = await eventually(lambda: alive.claim(5), bool, "the lapsed lease")
            seen: dict[str, Any] = {"over": over}
            with pytest.raises(LeaseLostError):
                await stalled.transaction_source(entry.id).run(write, event(), not_an_exception)
            seen["called"] = list(called)
            seen["entry"] = await alive.get(entry.id)
            await alive.transaction_source(entry.id).run(write, event(), not_an_exception)
            seen["finally"] = await alive.get(entry.id)
            seen["called_after"] = list(called)
            return seen
        finally:
            await stalled.close()
            await alive.close()

    seen = run(work())
    assert seen["over"].attempts == 2
    assert seen["called"] == []
    assert seen["entry"].state is State.RUNNING
    assert seen["finally"].state is State.DONE
    assert seen["called_after"] == ["called"]


def test_a_running_transaction_keeps_its_entry_past_the_lease(
    postgres_database: str, pg_schema: str
) -> None:
    # The callback's transaction locks the entry's row: even once its lease has
    # lapsed (the heartbeat skips locked rows), no other worker takes it.
    async def work() -> dict[str, Any]:
        holder = PostgresInbox(postgres_database, schema=pg_schema, claim_idle=0.5)
        other = PostgresInbox(postgres_database, schema=pg_schema)
        await holder.open()
        await other.open()
        seen: dict[str, Any] = {}
        try:
            await effects_table(holder)
            await put(holder, "k1")
            (entry,) = await holder.claim(1)

            async def slow(
                the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]
            ) -> None:
                await connection.execute(
                    sql(pg_schema, "INSERT INTO {s}.effects (note) VALUES ('once')")
                )

                def lapsed(lease: object) -> bool:
                    return isinstance(lease, float) and lease < time.time()

                async def lease() -> object:
                    return scalar(
                        postgres_database, sql(pg_schema, "SELECT lease_until FROM {s}.events")
                    )

                await eventually(lease, lapsed, "the lease to lapse")
                seen["during"] = await other.claim(5)

            await holder.transaction_source(entry.id).run(slow, event(), not_an_exception)
            seen["after"] = await other.claim(5)
            seen["entry"] = await other.get(entry.id)
            return seen
        finally:
            await holder.close()
            await other.close()

    seen = run(work())
    assert seen["during"] == []
    assert seen["after"] == []
    assert seen["entry"].state is State.DONE
    assert effects(postgres_database, pg_schema) == ["once"]


def test_a_plain_transaction_commits_or_rolls_back(postgres_database: str, pg_schema: str) -> None:
    async def work(inbox: PostgresInbox) -> tuple[object, object]:
        await effects_table(inbox)
        source = inbox.transaction_source(None)

        async def write(the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]) -> str:
            await connection.execute(
                sql(pg_schema, "INSERT INTO {s}.effects (note) VALUES ('kept')")
            )
            return "ok"

        async def fail(the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(
                sql(pg_schema, "INSERT INTO {s}.effects (note) VALUES ('dropped')")
            )
            raise RuntimeError("no")

        async def decline(
            the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]
        ) -> object:
            await connection.execute(
                sql(pg_schema, "INSERT INTO {s}.effects (note) VALUES ('declined')")
            )
            return ValueError("declined")

        kept = await source.run(write, event(), not_an_exception)
        with pytest.raises(RuntimeError):
            await source.run(fail, event(), not_an_exception)
        declined = await source.run(decline, event(), not_an_exception)
        return kept, declined

    kept, declined = with_inbox(postgres_database, pg_schema, work)
    assert kept == "ok"
    assert isinstance(declined, ValueError)
    assert effects(postgres_database, pg_schema) == ["kept"]


# -- outages --------------------------------------------------------------------------------------
def told(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "twilio_trigger" and r.levelno == level and text in r.getMessage()
    ]


def pool_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("psycopg.pool") and r.levelno >= logging.WARNING
    ]


def test_an_unreachable_database_is_an_error_told_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="psycopg.pool")
    caplog.set_level(logging.INFO, logger="twilio_trigger")
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/nowhere"

    async def work() -> list[BaseException]:
        inbox = PostgresInbox(url)
        failures: list[BaseException] = []
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: put(inbox, "k1"),
            lambda: inbox.claim(5),
            lambda: put(inbox, "k2"),
            inbox.stats,
            inbox.open,
        ]
        try:
            for call in calls:
                try:
                    await call()
                except Exception as error:
                    failures.append(error)
        finally:
            await inbox.close()
        return failures

    failures = run(work())
    assert len(failures) == 5
    assert all(isinstance(f, UnreachableError) for f in failures), failures
    assert all("the PostgreSQL inbox cannot be reached" in str(f) for f in failures)
    (error,) = told(caplog, logging.ERROR, "cannot be reached")
    assert "hunter2" not in error
    assert "127.0.0.1" in error
    assert told(caplog, logging.INFO, "can be reached again") == []
    assert pool_warnings(caplog) == []
    assert all("hunter2" not in r.getMessage() for r in caplog.records)


def test_the_inbox_comes_back_with_the_database(
    own_postgres: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_trigger")

    async def work() -> dict[str, Any]:
        inbox = PostgresInbox(own_postgres.url, schema="twilio_trigger")
        await inbox.open()
        try:
            assert await put(inbox, "before")
            own_postgres.stop()
            failures: list[BaseException] = []
            for call in (lambda: put(inbox, "during"), lambda: inbox.claim(5), inbox.stats):
                try:
                    await call()
                except Exception as error:
                    failures.append(error)
            seen: dict[str, Any] = {
                "failures": failures,
                "errors_during": told(caplog, logging.ERROR, "cannot be reached"),
            }
            own_postgres.start()

            async def attempt() -> bool:
                try:
                    return await put(inbox, "after")
                except UnreachableError:
                    return False

            seen["stored"] = await eventually(attempt, bool, "the database to come back")
            seen["claimed"] = await inbox.claim(5)
            seen["stats"] = await inbox.stats()
            return seen
        finally:
            await inbox.close()

    seen = run(work())
    assert len(seen["failures"]) == 3
    assert all(isinstance(f, UnreachableError) for f in seen["failures"]), seen["failures"]
    assert len(seen["errors_during"]) == 1
    assert len(told(caplog, logging.ERROR, "cannot be reached")) == 1
    (back,) = told(caplog, logging.INFO, "can be reached again")
    # No request was refused: the inbox was used directly, not through a listener.
    failed = re.search(
        r": 0 requests refused \(answered 503\) meanwhile, (\d+) operations failed$", back
    )
    assert failed is not None, back
    assert int(failed[1]) >= 3  # and the puts tried while the database came back
    assert sorted(e.key for e in seen["claimed"]) == ["after", "before"]
    # The failed connection attempts of the outage are told once, by the inbox, not
    # by psycopg_pool (it may still say it discarded the connections the restart broke).
    assert [w for w in pool_warnings(caplog) if not w.startswith("discarding ")] == []
    assert seen["stats"][State.RUNNING] == 2


# -- options --------------------------------------------------------------------------------------
def test_a_bad_schema_name_is_a_configuration_error() -> None:
    for name in ("Bad-Name", "9lives", "a b"):
        with pytest.raises(ConfigurationError, match="postgres_schema"):
            Listener(0, postgres_schema=name)
    with pytest.raises(ConfigurationError, match="TWILIO_TRIGGER_POSTGRES_SCHEMA"):
        Settings.resolve({}, {"TWILIO_TRIGGER_POSTGRES_SCHEMA": "Bad-Name"})


def test_postgres_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_TRIGGER_POSTGRES_SCHEMA", "from_env")
    monkeypatch.setenv("TWILIO_TRIGGER_POSTGRES_MIGRATE", "0")
    settings = Listener(0).settings
    assert (settings.postgres_schema, settings.postgres_migrate) == ("from_env", False)
    explicit = Listener(0, postgres_schema="explicit", postgres_migrate=True).settings
    assert (explicit.postgres_schema, explicit.postgres_migrate) == ("explicit", True)
    monkeypatch.delenv("TWILIO_TRIGGER_POSTGRES_SCHEMA")
    monkeypatch.delenv("TWILIO_TRIGGER_POSTGRES_MIGRATE")
    default = Listener(0).settings
    assert (default.postgres_schema, default.postgres_migrate) == ("twilio_trigger", True)
    with pytest.raises(ConfigurationError, match="TWILIO_TRIGGER_POSTGRES_MIGRATE"):
        Settings.resolve({}, {"TWILIO_TRIGGER_POSTGRES_MIGRATE": "perhaps"})


@pytest.mark.parametrize(
    ("inbox", "store"),
    [
        ("postgres://ops@db.internal:5432/app", "postgresql://ops@db.internal:5432/app"),
        ("postgresql://ops:pw@db.internal/app", "postgres://ops@db.internal/app"),
    ],
)
def test_postgres_urls_are_accepted_for_inbox_and_store(inbox: str, store: str) -> None:
    settings = Listener(0, inbox=inbox, store=store).settings
    assert (settings.inbox, settings.store) == (inbox, store)
    from_env = Settings.resolve({}, {"TWILIO_TRIGGER_INBOX": inbox, "TWILIO_TRIGGER_STORE": store})
    assert (from_env.inbox, from_env.store) == (inbox, store)
