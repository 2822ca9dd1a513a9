"""The part of the PostgreSQL inbox every other part stands on: its database and its writes.

:class:`PostgresCore` holds the names of the inbox's tables (its events, its
settings, its counters, in the schema :mod:`twilio_trigger._postgres_schema`
makes), this process's name in the entries it runs, and the pool of connections
(:class:`~twilio_trigger._postgres.Database`).  On each event loop it groups the
rows being written (``inbox/_group.py``): the new events, inserted many at once
by one statement that counts and notifies too, and the outcomes of entries,
recorded the same way.  :func:`add_counts` is how a statement counts what it
changed, in the statement itself.  The workers' side
(:mod:`~twilio_trigger.inbox._postgres_work`), the operators' side
(:mod:`~twilio_trigger.inbox._postgres_admin`) and :class:`PostgresInbox`, which
stores, are built on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from .._logging import shown_url
from .._options import OPTIONS
from .._postgres import Database
from .._postgres_schema import quoted
from . import Inbox, UnreachableError
from ._group import STORE_WAIT, Group

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = ["PostgresCore", "add_counts", "storable"]

_POOL = "twilio-trigger-inbox"
# The fields of the JSON rows of a batch: a new event's, an outcome's.
_PUT_FIELDS = ("k", "kd", "sd", "st", "p", "r", "h")
_OUTCOME_FIELDS = ("id", "st", "er", "at", "fin")
_BATCH = 500  # events at most per insert
_PARALLEL_INSERTS = 3  # inserts under way at once (each commit waits for the disk)
_STATEMENT_TIMEOUT = 10.0  # seconds an operation may take before it counts as failed
_SHARDS = 64  # rows per count: a connection adds to the one its backend pid picks
#: What an outcome (the entry's new state) counts.
_OUTCOME_COUNTS = (
    "(VALUES ('done', 'handled'), ('pending', 'failed_attempts'), "
    "('dead', 'failed_attempts'), ('dead', 'dead_lettered'))"
)


def add_counts(counters: str, counts: str) -> str:
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


def storable(text: str | None) -> str | None:
    """*text* as a PostgreSQL text column can hold it: without NUL characters
    (the parameters, kept whole as JSON, escape theirs)."""
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


class _OnLoop:
    """The rows an inbox is writing on one event loop (a listener runs on one; a
    test may use one inbox from two, each with connections of its own)."""

    __slots__ = ("outcomes", "puts")

    def __init__(self, puts: Group, outcomes: Group) -> None:
        self.puts = puts
        self.outcomes = outcomes


class PostgresCore(Inbox):
    """What the parts of a PostgreSQL inbox share; its arguments are those of
    :class:`~twilio_trigger.inbox.postgres.PostgresInbox`."""

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
                Group(self._insert, _PARALLEL_INSERTS, _BATCH, limit=STORE_WAIT, late=self._late),
                Group(self._record, 1, _BATCH),
            )
        return here

    def _late(self, limit: float) -> BaseException:
        # A server that stops answering holds an insert for the statement's limit,
        # then psycopg's cancel and close: the requests are answered before that.
        return self._db.outage.unreachable(TimeoutError(f"no answer within {limit:g} s"))

    def connection(
        self, *, timed: bool = True
    ) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """A connection from the pool (see :meth:`Database.connection`)."""
        return self._db.connection(timed=timed)

    async def _execute(
        self, query: str, args: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        return await self._db.execute(query, args)

    # -- the grouped writes: new events, outcomes ----------------------------------
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
        counted = add_counts(self.counter_table, "SELECT 'received', count(*) FROM added")
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

    async def _record(self, rows: list[tuple[Any, ...]]) -> list[None]:
        """The outcomes of entries, by one statement: only where the entry is still
        this worker's and running (not taken over after its lease lapsed)."""
        e = self.tables
        document = json.dumps(
            [dict(zip(_OUTCOME_FIELDS, row, strict=True)) for row in rows], ensure_ascii=False
        )
        counted = add_counts(
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
