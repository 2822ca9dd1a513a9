"""The PostgreSQL inbox: one table, shared by every listener and worker naming it.

- **Storing**: events that arrive together are inserted by one statement
  (``INSERT ... SELECT FROM unnest(...) ON CONFLICT (key) DO NOTHING``), which
  in autocommit mode is its own transaction: the answer waits for its commit,
  and many events share one commit (one WAL flush) under load.  A copy of a
  stored event (same delivery key), from any listener, inserts nothing.  The
  same statement notifies the workers (``pg_notify``), delivered at commit.
- **Working**: a worker claims due entries with ``FOR UPDATE SKIP LOCKED``,
  setting them ``running`` with its name and a lease of ``claim_idle``
  seconds, renewed while their callbacks run.  An entry whose lease lapsed
  (its worker died) is claimed again by any worker.  Workers wait on
  ``LISTEN`` for new events, and poll slowly besides.
- **Exactly-once effects**: a callback that takes a transaction runs it on a
  connection that first locks the entry's row (still this worker's, still
  running), then marks it done in the same transaction: the callback's writes
  and the entry's outcome commit together, or roll back together.
- **Counters**: each statement that stores, finishes or replays entries adds
  what it did to the counters (events received, handled, failed attempts...)
  in a data-modifying ``WITH`` of its own, so that the count commits with the
  change.  A count is spread over rows, one per writing connection (its backend
  pid modulo 64), so that inserts committing at once do not wait on one row.
- **Outages**: an operation that cannot reach the database raises
  :class:`~twilio_trigger.inbox.UnreachableError` (the listener answers 503),
  and the outage is told once when it begins and once when it ends.

Needs ``pip install 'twilio-trigger[postgres]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from .._logging import shown_url
from .._options import OPTIONS
from .._postgres import Database, in_transaction
from .._postgres_schema import prepare, quoted
from .._transaction import LeaseLostError, TransactionalCallback
from . import (
    COLUMNS,
    Counters,
    Entry,
    Inbox,
    Search,
    SearchPage,
    State,
    UnreachableError,
    counters_of,
    encode_headers,
    entry_of_row,
)
from ._gates import pace_step
from ._group import Group
from ._search import check_page, page_of, sql_where

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from .._core.events import TwilioEvent

__all__ = ["PostgresInbox"]

logger = logging.getLogger("twilio_trigger")

_POOL = "twilio-trigger-inbox"
# The fields of the JSON rows of a batch: a new event's, an outcome's.
_PUT_FIELDS = ("k", "kd", "sd", "st", "p", "r", "h")
_OUTCOME_FIELDS = ("id", "st", "er", "at", "fin")
_MAX_ERROR = 16_000  # characters of a traceback kept per entry
_BATCH = 500  # events at most per insert
_PARALLEL_INSERTS = 3  # inserts under way at once (each commit waits for the disk)
_STATEMENT_TIMEOUT = 10.0  # seconds an operation may take before it counts as failed
_PURGE_BATCH = 5_000  # rows per delete when purging
_SHARDS = 64  # rows per count: a connection adds to the one its backend pid picks
#: What an outcome (the entry's new state) counts.
_OUTCOME_COUNTS = (
    "(VALUES ('done', 'handled'), ('pending', 'failed_attempts'), "
    "('dead', 'failed_attempts'), ('dead', 'dead_lettered'))"
)


def _add_counts(counters: str, counts: str) -> str:
    """The body of a ``WITH`` that adds to the *counters* table the ``(name, value)``
    rows of the query *counts*, in the statement that made the change they count.

    Each connection adds to its own row of each count (its shard), and the rows
    are written in the order of their names, so that two statements on the same
    shard wait for each other at most, never deadlock."""
    return (
        f"INSERT INTO {counters} AS c (name, shard, value) SELECT n.name, "
        f"mod(pg_backend_pid(), {_SHARDS}), n.value FROM ({counts}) AS n(name, value) "
        f"WHERE n.value > 0 ORDER BY n.name "
        f"ON CONFLICT (name, shard) DO UPDATE SET value = c.value + excluded.value"
    )


# The first key of the advisory locks that paces and places take (the second is the name).
_GATE_LOCKS = 0x7477_6700
_T = TypeVar("_T")


def _storable(text: str | None) -> str | None:
    """*text* as a PostgreSQL text column can hold it: without NUL characters
    (the parameters, kept whole as JSON, escape theirs)."""
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


class _Transactions:
    """The transaction source of one inbox entry (or, without one, of inline dispatch)."""

    __slots__ = ("_entry_id", "_inbox")

    def __init__(self, inbox: PostgresInbox, entry_id: int | None) -> None:
        self._inbox = inbox
        self._entry_id = entry_id

    async def run(
        self,
        function: TransactionalCallback,
        event: TwilioEvent,
        succeeded: Callable[[object], bool],
    ) -> object:
        inbox, entry_id = self._inbox, self._entry_id
        e = inbox.tables

        def untimed() -> contextlib.AbstractAsyncContextManager[AsyncConnection[Any]]:
            # The callback's time limit is the dispatcher's, not the inbox's.
            return inbox.connection(timed=False)

        if entry_id is None:
            result, _ = await in_transaction(untimed, function, event, succeeded)
            return result

        async def lock(connection: AsyncConnection[Any]) -> None:
            # Locked for the whole transaction: no other worker can take the
            # entry over meanwhile, lease or not.
            cursor = await connection.execute(
                f"SELECT 1 FROM {e} WHERE id = %s AND worker = %s AND state = 'running' FOR UPDATE",
                (entry_id, inbox.worker),
            )
            if await cursor.fetchone() is None:
                raise LeaseLostError(f"inbox entry {entry_id} was taken over by another worker")

        async def done(connection: AsyncConnection[Any]) -> None:
            counted = _add_counts(inbox.counter_table, "SELECT 'handled', count(*) FROM done")
            await connection.execute(
                f"WITH done AS (UPDATE {e} SET state = 'done', finished_at = %s, "
                f"worker = NULL, lease_until = NULL WHERE id = %s RETURNING 1), "
                f"counted AS ({counted}) SELECT 1",
                (time.time(), entry_id),
            )

        result, committed = await in_transaction(
            untimed, function, event, succeeded, before=lock, after=done
        )
        if committed:
            inbox.committed.add(entry_id)
        return result


_Connecting = AbstractAsyncContextManager["AsyncConnection[Any]"]


class _OnLoop:
    """The rows an inbox is writing on one event loop (a listener runs on one; a
    test may use one inbox from two, each with connections of its own)."""

    __slots__ = ("outcomes", "puts")

    def __init__(self, puts: Group, outcomes: Group) -> None:
        self.puts = puts
        self.outcomes = outcomes


class PostgresInbox(Inbox):
    """The inbox in the PostgreSQL database at *url*, in *schema*, shared by every
    process that names them.

    A running entry whose worker has not renewed its lease for *claim_idle*
    seconds is taken over by another.  The tables are created or upgraded at
    :meth:`open` when *migrate*; otherwise a missing or old version is an error
    that says to run ``twilio-trigger inbox migrate``.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = OPTIONS.postgres_schema.default,
        claim_idle: float = OPTIONS.claim_idle.default,
        migrate: bool = OPTIONS.postgres_migrate.default,
        connections: int = 16,
    ) -> None:
        self.location = shown_url(url)
        self.schema = schema
        self.migrate = migrate
        self._url = url
        self._schema = quoted(schema)
        #: The events table, as SQL names it.
        self.tables = f"{self._schema}.events"
        self._settings = f"{self._schema}.settings"
        #: The counters' table, as SQL names it.
        self.counter_table = f"{self._schema}.counters"
        self._channel = f"{schema}.inbox"[:63]
        self._claim_idle = claim_idle
        self._connections = max(4, connections)
        #: This process's name in the entries it runs.
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"[:120]
        #: Entries whose callback's transaction marked them done.
        self.committed: set[int] = set()
        self._db = Database(
            url,
            what="PostgreSQL inbox",
            pool=_POOL,
            max_size=self._connections,
            statement_timeout=_STATEMENT_TIMEOUT,
        )
        self._loops: dict[asyncio.AbstractEventLoop, _OnLoop] = {}
        self._running: set[int] = set()  # entries this process runs: their leases renewed
        self._heartbeat: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self._wake: Callable[[], None] | None = None
        self._opened = False

    # -- connections -------------------------------------------------------------
    def _here(self) -> _OnLoop:
        loop = asyncio.get_running_loop()
        here = self._loops.get(loop)
        if here is None:
            for gone in [other for other in self._loops if other.is_closed()]:
                del self._loops[gone]
            here = self._loops[loop] = _OnLoop(
                Group(self._insert, _PARALLEL_INSERTS, _BATCH), Group(self._record, 1, _BATCH)
            )
        return here

    def connection(
        self, *, timed: bool = True
    ) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """A connection from the pool (see :meth:`Database.connection`)."""
        return self._db.connection(timed=timed)

    async def _execute(
        self, query: str, args: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        return await self._db.execute(query, args)

    # -- opening -------------------------------------------------------------------
    async def open(self) -> int:
        async with self.connection() as connection:
            await prepare(connection, self.schema, allowed=self.migrate, location=self.location)
        self._opened = True
        # A dead worker's entries are taken over once their leases lapse.
        return 0

    async def migrate_schema(self) -> tuple[int, int]:
        """Create or upgrade the tables, whatever ``migrate`` says (the command line's
        ``inbox migrate``); return the versions before and after."""
        from .._postgres_schema import migrate

        async with self.connection() as connection:
            return await migrate(connection, self.schema)

    # -- storing -------------------------------------------------------------------
    async def put(
        self,
        key: str,
        kind: str,
        sid: str | None,
        status: str | None,
        params: Sequence[tuple[str, str]],
        headers: Sequence[tuple[str, str]] = (),
    ) -> bool:
        here = self._here()
        kept = _storable(encode_headers(headers)) if headers else None
        # The parameters go as a JSON value of the batch's document, encoded once,
        # and are kept as its text.
        row = (key, kind, _storable(sid), _storable(status), params, time.time(), kept)
        added: bool = await here.puts.add(row)
        return added

    async def _insert(self, rows: list[tuple[Any, ...]]) -> list[bool]:
        # The rows travel as one JSON document: psycopg's dumping of text arrays
        # escapes each element in Python, several times the cost of the insert.
        document = json.dumps(
            [dict(zip(_PUT_FIELDS, row, strict=True)) for row in rows], ensure_ascii=False
        )
        params = "p::text"
        if "\\u0000" in document:
            # A parameter holds a NUL, which PostgreSQL's JSON cannot turn into
            # text: those rows' parameters travel as JSON text in a string instead
            # (encoded twice; rare, so the common batch is not).
            document = json.dumps(
                [
                    dict(zip(_PUT_FIELDS, (*row[:4], json.dumps(row[4]), *row[5:]), strict=True))
                    for row in rows
                ],
                ensure_ascii=False,
            )
            params = "(p #>> '{}')"
        counted = _add_counts(self.counter_table, "SELECT 'received', count(*) FROM added")
        query = (
            f"WITH added AS (INSERT INTO {self.tables} (key, kind, sid, status, params, "
            f"received_at, state, next_attempt_at, headers) SELECT k, kd, sd, st, {params}, "
            f"r, 'pending', r, h FROM json_to_recordset(%s::json) AS t(k text, kd text, "
            f"sd text, st text, p json, r float8, h text) "
            f"ON CONFLICT (key) DO NOTHING RETURNING key), counted AS ({counted}) "
            f"SELECT key, pg_notify(%s, %s) FROM added"
        )
        # Its own notifications tell this process nothing: its workers were woken.
        args = (document, self._channel, self.worker)
        for attempt in (1, 2):
            try:
                found = await self._execute(query, args)
            except UnreachableError:
                # A connection broken before it was used (the database restarted):
                # inserting again is safe, a copy inserts nothing.
                if attempt == 2:
                    raise
                continue
            # Two copies in one batch: the first is the one stored.
            added = {row[0] for row in found}
            results = []
            for row in rows:
                results.append(row[0] in added)
                added.discard(row[0])
            return results
        raise AssertionError("unreachable")

    # -- working -------------------------------------------------------------------
    def watch(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        if self._listening is None or self._listening.done():
            self._listening = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        import psycopg

        delay = 0.5
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name="twilio-trigger",
                )
                async with connection:
                    await connection.execute(f'LISTEN "{self._channel}"')
                    delay = 0.5
                    if self._wake is not None:
                        self._wake()  # stored while nobody listened
                    async for notice in connection.notifies():
                        if self._wake is not None and notice.payload != self.worker:
                            self._wake()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: S110 - the outage is told by the operations
                pass
            # The workers poll meanwhile; listen again once the database is back.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _beat(self) -> None:
        # A live worker renews the leases of the entries it runs, so that nobody
        # takes them over.  Rows locked by a callback's transaction are skipped:
        # the lock keeps them, and renewing would wait for it.
        e = self.tables
        while True:
            await asyncio.sleep(self._claim_idle / 3)
            held = list(self._running)
            if not held:
                continue
            try:
                await self._execute(
                    f"UPDATE {e} SET lease_until = %s WHERE id IN (SELECT id FROM {e} "
                    f"WHERE id = ANY(%s) AND worker = %s AND state = 'running' "
                    f"FOR UPDATE SKIP LOCKED)",
                    (time.time() + self._claim_idle, held, self.worker),
                )
            except UnreachableError:
                continue  # told already; try again at the next beat
            except Exception:
                logger.warning("could not renew the inbox's leases", exc_info=True)

    async def claim(self, limit: int) -> list[Entry]:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        e = self.tables
        now = time.time()
        rows = await self._execute(
            f"WITH due AS (SELECT id FROM {e} WHERE state = 'pending' "
            f"AND next_attempt_at <= %(now)s ORDER BY next_attempt_at, id LIMIT %(limit)s "
            f"FOR UPDATE SKIP LOCKED), lapsed AS (SELECT id FROM {e} WHERE state = 'running' "
            f"AND lease_until < %(now)s ORDER BY lease_until LIMIT %(limit)s "
            f"FOR UPDATE SKIP LOCKED), chosen AS (SELECT id FROM due UNION ALL "
            f"SELECT id FROM lapsed LIMIT %(limit)s) "
            f"UPDATE {e} SET state = 'running', attempts = attempts + 1, worker = %(me)s, "
            f"lease_until = %(lease)s FROM chosen WHERE {e}.id = chosen.id RETURNING "
            + ", ".join(f"{e}.{column.strip()}" for column in COLUMNS.split(",")),
            {"now": now, "limit": limit, "me": self.worker, "lease": now + self._claim_idle},
        )
        entries = sorted((entry_of_row(row) for row in rows), key=lambda entry: entry.id)
        self._running.update(entry.id for entry in entries)
        return entries

    async def _finish(self, entry_id: int, state: State, error: str | None, at: float) -> None:
        self._running.discard(entry_id)
        if entry_id in self.committed:  # its transaction marked it done already
            self.committed.discard(entry_id)
            return
        finished = None if state is State.PENDING else time.time()
        text = None if error is None else _storable(error[-_MAX_ERROR:])
        await self._here().outcomes.add((entry_id, state.value, text, at, finished))

    async def _record(self, rows: list[tuple[Any, ...]]) -> list[None]:
        """The outcomes of entries, by one statement: only where the entry is still
        this worker's and running (not taken over after its lease lapsed)."""
        e = self.tables
        document = json.dumps(
            [dict(zip(_OUTCOME_FIELDS, row, strict=True)) for row in rows], ensure_ascii=False
        )
        counted = _add_counts(
            self.counter_table,
            f"SELECT n.name, count(*) FROM changed JOIN {_OUTCOME_COUNTS} AS n(state, name) "
            f"ON n.state = changed.state GROUP BY n.name",
        )
        await self._execute(
            f"WITH changed AS (UPDATE {e} SET state = o.st, "
            f"last_error = coalesce(o.er, {e}.last_error), "
            f"next_attempt_at = o.at, finished_at = o.fin, worker = NULL, "
            f"lease_until = NULL FROM json_to_recordset(%s::json) AS o(id bigint, st text, "
            f"er text, at float8, fin float8) "
            f"WHERE {e}.id = o.id AND {e}.worker = %s AND {e}.state = 'running' "
            f"RETURNING {e}.state), counted AS ({counted}) SELECT 1",
            (document, self.worker),
        )
        return [None] * len(rows)

    async def succeed(self, entry_id: int) -> None:
        await self._finish(entry_id, State.DONE, None, time.time())

    async def retry(self, entry_id: int, error: str, at: float) -> None:
        await self._finish(entry_id, State.PENDING, error, at)

    async def bury(self, entry_id: int, error: str) -> None:
        await self._finish(entry_id, State.DEAD, error, time.time())

    def transaction_source(self, entry_id: int | None) -> _Transactions:
        return _Transactions(self, entry_id)

    async def next_due(self) -> float | None:
        rows = await self._execute(
            f"SELECT min(next_attempt_at) FROM {self.tables} WHERE state = 'pending'"
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    # -- looking -------------------------------------------------------------------
    async def stats(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        rows = await self._execute(f"SELECT state, count(*) FROM {self.tables} GROUP BY state")
        for state, number in rows:
            counts[State(state)] = int(number)
        return counts

    async def backlog(self) -> dict[State, int]:
        # Each count is a range of a partial index: done entries are not read.
        e = self.tables
        rows = await self._execute(
            f"SELECT (SELECT count(*) FROM {e} WHERE state = 'pending'), "
            f"(SELECT count(*) FROM {e} WHERE state = 'running'), "
            f"(SELECT count(*) FROM {e} WHERE state = 'dead')"
        )
        pending, running, dead = rows[0]
        return {State.PENDING: pending, State.RUNNING: running, State.DEAD: dead}

    async def counters(self) -> Counters:
        rows = await self._execute(
            f"SELECT name, sum(value) FROM {self.counter_table} GROUP BY name"
        )
        counts = {str(name): int(value) for name, value in rows}
        return counters_of(counts, counts.get("since_ms", 0) / 1000)

    async def setting(self, name: str) -> str | None:
        rows = await self._execute(f"SELECT value FROM {self._settings} WHERE name = %s", (name,))
        return str(rows[0][0]) if rows else None

    async def settings(self) -> dict[str, str]:
        # Names that start with "~" are the paces and places below, not settings.
        rows = await self._execute(
            f"SELECT name, value FROM {self._settings} WHERE NOT starts_with(name, '~')"
        )
        return {str(name): str(value) for name, value in rows}

    async def defer(self, entry_id: int, at: float, hold: str | None = None) -> None:
        self._running.discard(entry_id)
        e = self.tables
        # With a hold, the entry is remembered in the same statement.
        remember = (
            ""
            if hold is None
            else f", held AS (INSERT INTO {self._settings} (name, value, updated_at) "
            f"SELECT %(hold)s || id::text, %(at)s::text, %(at)s FROM changed "
            f"ON CONFLICT (name) DO UPDATE SET value = excluded.value) "
        )
        await self._execute(
            f"WITH changed AS (UPDATE {e} SET state = 'pending', "
            f"attempts = greatest(0, attempts - 1), next_attempt_at = %(at)s, worker = NULL, "
            f"lease_until = NULL WHERE id = %(id)s AND worker = %(me)s AND state = 'running' "
            f"RETURNING id){remember} SELECT count(*) FROM changed",
            {"at": at, "id": entry_id, "me": self.worker, "hold": f"~hold:{hold}:"},
        )

    async def release(self, hold: str) -> int:
        prefix = f"~hold:{hold}:"
        rows = await self._execute(
            f"WITH gone AS (DELETE FROM {self._settings} WHERE starts_with(name, %(p)s) "
            f"RETURNING substr(name, %(from)s)::bigint AS id), "
            f"hastened AS (UPDATE {self.tables} SET next_attempt_at = %(now)s FROM gone "
            f"WHERE {self.tables}.id = gone.id AND state = 'pending' RETURNING 1) "
            f"SELECT count(*) FROM hastened",
            {"p": prefix, "from": len(prefix) + 1, "now": time.time()},
        )
        return int(rows[0][0])

    # Paces and places: rows of the settings table named "~pace:NAME" (the time
    # the next token is due) and "~place:NAME:HOLDER" (the end of the lease),
    # on the database's clock, changed under a transaction-level advisory lock
    # of the name so that processes take turns.
    async def _gate(
        self, name: str, change: Callable[[AsyncConnection[Any], float], Awaitable[_T]]
    ) -> _T:
        async with self.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s)), "
                "extract(epoch FROM clock_timestamp())::float8",
                (_GATE_LOCKS, f"{self.schema}.{name}"),
            )
            row = await cursor.fetchone()
            assert row is not None
            return await change(connection, float(row[1]))

    async def pace(self, name: str, interval: float, burst: int) -> float:
        key = f"~pace:{name}"

        async def step(connection: AsyncConnection[Any], now: float) -> float:
            cursor = await connection.execute(
                f"SELECT value FROM {self._settings} WHERE name = %s", (key,)
            )
            row = await cursor.fetchone()
            wait, due = pace_step(None if row is None else float(row[0]), now, interval, burst)
            if wait == 0.0:
                await connection.execute(self._upsert, (key, repr(due), now))
            return wait

        return await self._gate(f"pace:{name}", step)

    async def enter(self, name: str, holder: str, limit: int, lease: float) -> bool:
        prefix = f"~place:{name}:"

        async def take(connection: AsyncConnection[Any], now: float) -> bool:
            s = self._settings
            await connection.execute(
                f"DELETE FROM {s} WHERE starts_with(name, %s) AND value::float8 <= %s",
                (prefix, now),
            )
            cursor = await connection.execute(
                f"SELECT count(*), coalesce(bool_or(name = %s), false) FROM {s} "
                f"WHERE starts_with(name, %s)",
                (prefix + holder, prefix),
            )
            row = await cursor.fetchone()
            assert row is not None
            if not row[1] and row[0] >= limit:
                return False
            await connection.execute(self._upsert, (prefix + holder, repr(now + lease), now))
            return True

        return await self._gate(f"place:{name}", take)

    async def leave(self, name: str, holder: str) -> None:
        await self._execute(
            f"DELETE FROM {self._settings} WHERE name = %s", (f"~place:{name}:{holder}",)
        )

    @property
    def _upsert(self) -> str:
        return (
            f"INSERT INTO {self._settings} (name, value, updated_at) VALUES (%s, %s, %s) "
            f"ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
            f"updated_at = excluded.updated_at"
        )

    async def set_setting(self, name: str, value: str) -> None:
        await self._execute(
            f"INSERT INTO {self._settings} (name, value, updated_at) VALUES (%s, %s, %s) "
            f"ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
            f"updated_at = excluded.updated_at",
            (name, value, time.time()),
        )

    async def check(self) -> None:
        if not self._opened:
            await self.open()
            return
        await self._execute("SELECT 1")

    async def entries(self, state: State | None = None, limit: int = 50) -> list[Entry]:
        where, args = ("WHERE state = %s", (state.value,)) if state else ("", ())
        rows = await self._execute(
            f"SELECT {COLUMNS} FROM {self.tables} {where} ORDER BY id DESC LIMIT %s",
            (*args, limit),
        )
        return [entry_of_row(row) for row in rows]

    async def search(
        self, search: Search, *, limit: int = 50, before_id: int | None = None
    ) -> SearchPage:
        """The entries *search* finds, by one query newest first (by the primary
        key).  No index serves a number, error code or text: those read the
        parameters (as ``jsonb``) of the rows the other filters leave, until the
        page is full."""
        check_page(limit, before_id)
        where, args = sql_where(search, before_id, postgres=True)
        rows = await self._execute(
            f"SELECT {COLUMNS} FROM {self.tables} {where} ORDER BY id DESC LIMIT %s",
            (*args, limit + 1),
        )
        return page_of([entry_of_row(row) for row in rows], limit)

    async def get(self, entry_id: int) -> Entry | None:
        rows = await self._execute(
            f"SELECT {COLUMNS} FROM {self.tables} WHERE id = %s",
            (entry_id,),
        )
        return entry_of_row(rows[0]) if rows else None

    async def replay(
        self, entry_ids: Sequence[int] | None = None, *, only: State | None = None
    ) -> int:
        which = "state = 'dead'" if entry_ids is None else "id = ANY(%(ids)s)"
        if entry_ids is not None and only is not None:
            which += f" AND state = '{only.value}'"  # a State's value, not given text
        counted = _add_counts(self.counter_table, "SELECT 'replayed', count(*) FROM again")
        rows = await self._execute(
            f"WITH again AS (UPDATE {self.tables} SET state = 'pending', attempts = 0, "
            f"next_attempt_at = %(now)s, finished_at = NULL, worker = NULL, "
            f"lease_until = NULL WHERE state <> 'running' AND {which} RETURNING 1), "
            f"counted AS ({counted}) "
            f"SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify(%(channel)s, '') END "
            f"FROM again",
            {"now": time.time(), "ids": list(entry_ids or ()), "channel": self._channel},
        )
        return int(rows[0][0])

    async def purge(self, state: State, older_than: float) -> int:
        # In bounded batches: a day of done events is not deleted by one statement.
        e = self.tables
        cutoff = time.time() - older_than
        total = 0
        while True:
            rows = await self._execute(
                f"WITH gone AS (DELETE FROM {e} WHERE id IN (SELECT id FROM {e} "
                f"WHERE state = %s AND finished_at <= %s LIMIT %s) RETURNING 1) "
                f"SELECT count(*) FROM gone",
                (state.value, cutoff, _PURGE_BATCH),
            )
            count = int(rows[0][0])
            total += count
            if count < _PURGE_BATCH:
                return total

    async def close(self) -> None:
        for task in (self._heartbeat, self._listening):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._heartbeat = self._listening = None
        here = self._loops.pop(asyncio.get_running_loop(), None)
        if here is not None:
            await here.puts.finish()
            await here.outcomes.finish()
        await self._db.close()
