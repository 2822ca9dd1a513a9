"""The PostgreSQL inbox: one table, shared by every listener and worker naming it.

- **Storing**: events that arrive together are inserted by one statement
  (``INSERT ... SELECT FROM json_to_recordset(...) ON CONFLICT (key) DO NOTHING``), which
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

The inbox is put together from parts, each in a module of its own, all on the
state and the writes of ``inbox/_postgres_core.py`` (the tables, the pool, the
grouped inserts and outcomes, the counting): ``_postgres_work.py``, the workers'
side (claim, outcomes, leases, transactions for callbacks, ``LISTEN``, paces and
places); ``_postgres_admin.py``, the operators' side (listing, searching,
replaying, purging, counters, settings).  This module stores events: opening
(and migrating), the put, readiness and closing.

Needs ``pip install 'twilio-trigger[postgres]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from .._postgres_schema import prepare
from . import encode_headers
from ._postgres_admin import PostgresAdmin
from ._postgres_core import storable
from ._postgres_work import PostgresWork

__all__ = ["PostgresInbox"]


class PostgresInbox(PostgresWork, PostgresAdmin):
    """The inbox in the PostgreSQL database at *url*, in *schema*, shared by every
    process that names them.

    A running entry whose worker has not renewed its lease for *claim_idle*
    seconds is taken over by another.  The tables are created or upgraded at
    :meth:`open` when *migrate*; otherwise a missing or old version is an error
    that says to run ``twilio-trigger inbox migrate``.
    """

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
        kept = storable(encode_headers(headers)) if headers else None
        # The parameters go as a JSON value of the batch's document, encoded once,
        # and are kept as its text.
        row = (key, kind, storable(sid), storable(status), params, time.time(), kept)
        added: bool = await here.puts.add(row)
        return added

    # -- readiness and closing -----------------------------------------------------
    async def check(self) -> None:
        if not self._opened:
            await self.open()
            return
        await self._execute("SELECT 1")

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
