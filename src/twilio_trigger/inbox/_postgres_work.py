"""The workers' side of the PostgreSQL inbox: taking entries, running them, recording outcomes.

:class:`PostgresWork` claims due entries for this process's workers (and those
whose lease lapsed, a dead worker's) with ``FOR UPDATE SKIP LOCKED``, renews the
leases of those it runs (a heartbeat), and records their outcomes grouped with
the others that end meanwhile.  A callback that takes a transaction gets one from
:class:`_Transactions`, which locks the entry's row and marks it done in that
same transaction.  The workers wait on ``LISTEN`` for new events
(:meth:`~PostgresWork.watch`).  An entry held back by its limits or its breaker
is given back (:meth:`~PostgresWork.defer`), and the paces and places of those
limits are rows of the settings table, changed under an advisory lock so that
every process takes its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._postgres import in_transaction
from .._transaction import LeaseLostError, TransactionalCallback
from . import COLUMNS, Entry, State, UnreachableError, entry_of_row
from ._gates import pace_step
from ._postgres_core import PostgresCore, add_counts, storable

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from .._core.events import TwilioEvent

__all__ = ["PostgresWork"]

logger = logging.getLogger("twilio_trigger")

_MAX_ERROR = 16_000  # characters of a traceback kept per entry
# The first key of the advisory locks that paces and places take (the second is the name).
_GATE_LOCKS = 0x7477_6700
_T = TypeVar("_T")


class _Transactions:
    """The transaction source of one inbox entry (or, without one, of inline dispatch)."""

    __slots__ = ("_entry_id", "_inbox")

    def __init__(self, inbox: PostgresCore, entry_id: int | None) -> None:
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
            counted = add_counts(inbox.counter_table, "SELECT 'handled', count(*) FROM done")
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


class PostgresWork(PostgresCore):
    """The workers' methods of a PostgreSQL inbox (see the module)."""

    # -- claiming: waking, leases --------------------------------------------------
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

    # -- outcomes ------------------------------------------------------------------
    async def _finish(self, entry_id: int, state: State, error: str | None, at: float) -> None:
        self._running.discard(entry_id)
        if entry_id in self.committed:  # its transaction marked it done already
            self.committed.discard(entry_id)
            return
        finished = None if state is State.PENDING else time.time()
        text = None if error is None else storable(error[-_MAX_ERROR:])
        await self._here().outcomes.add((entry_id, state.value, text, at, finished))

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

    # -- holding back: entries given back, paces and places ------------------------
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
