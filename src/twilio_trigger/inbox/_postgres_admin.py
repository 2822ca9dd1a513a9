"""The operators' side of the PostgreSQL inbox: what the command line and the inspector use.

:class:`PostgresAdmin` counts the entries by state (all of them, or only those
not done, which the partial indexes count without reading the done ones), lists,
searches and reads them, replays them (waking the workers), purges finished
ones in bounded batches, reads the counters, and reads and writes the settings
every process of the inbox shares (such as whether dispatch is paused, which
workers read too).  None of it is on the path of an event: each call is one
statement (a purge, one per batch) on the tables
:class:`~twilio_trigger.inbox._postgres_core.PostgresCore` names.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from . import COLUMNS, Counters, Entry, Search, SearchPage, State, counters_of, entry_of_row
from ._postgres_core import PostgresCore, add_counts
from ._search import check_page, page_of, sql_where

__all__ = ["PostgresAdmin"]

_PURGE_BATCH = 5_000  # rows per delete when purging


class PostgresAdmin(PostgresCore):
    """The operators' methods of a PostgreSQL inbox (see the module)."""

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

    # -- settings ------------------------------------------------------------------
    async def setting(self, name: str) -> str | None:
        rows = await self._execute(f"SELECT value FROM {self._settings} WHERE name = %s", (name,))
        return str(rows[0][0]) if rows else None

    async def settings(self) -> dict[str, str]:
        # Names that start with "~" are the paces and places of _postgres_work, not settings.
        rows = await self._execute(
            f"SELECT name, value FROM {self._settings} WHERE NOT starts_with(name, '~')"
        )
        return {str(name): str(value) for name, value in rows}

    async def set_setting(self, name: str, value: str) -> None:
        await self._execute(
            f"INSERT INTO {self._settings} (name, value, updated_at) VALUES (%s, %s, %s) "
            f"ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
            f"updated_at = excluded.updated_at",
            (name, value, time.time()),
        )

    # -- replaying and purging -----------------------------------------------------
    async def replay(
        self, entry_ids: Sequence[int] | None = None, *, only: State | None = None
    ) -> int:
        which = "state = 'dead'" if entry_ids is None else "id = ANY(%(ids)s)"
        if entry_ids is not None and only is not None:
            which += f" AND state = '{only.value}'"  # a State's value, not given text
        counted = add_counts(self.counter_table, "SELECT 'replayed', count(*) FROM again")
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
