"""The operators' side of the SQLite inbox: what the command line and the inspector use.

:class:`SQLiteAdmin` counts the entries by state, lists, searches and reads them,
replays and purges them, reads the counters, and reads and writes the settings
(such as whether dispatch is paused, which workers read too).  None of it is on
the path of an event: each call is one operation of the writer thread of
:class:`~twilio_trigger.inbox._sqlite_core.SQLiteCore`, a query or two; a search is
one query, its filters in SQL (:mod:`~twilio_trigger.inbox._search`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from . import COLUMNS, Counters, Entry, Search, SearchPage, State, counters_of, entry_of_row
from ._search import check_page, page_of, sql_where
from ._sqlite_core import SINCE, SQLiteCore, counted

__all__ = ["SQLiteAdmin"]


class SQLiteAdmin(SQLiteCore):
    """The operators' methods of a SQLite inbox (see the module)."""

    async def stats(self) -> dict[State, int]:
        def count(connection: sqlite3.Connection) -> dict[State, int]:
            counts = dict.fromkeys(State, 0)
            for state, number in connection.execute(
                "SELECT state, count(*) FROM events GROUP BY state"
            ):
                counts[State(state)] = number
            return counts

        return await self._run(count)

    async def backlog(self) -> dict[State, int]:
        def count(connection: sqlite3.Connection) -> dict[State, int]:
            # One index range per state: done entries, kept for a day, are not scanned.
            return {
                state: connection.execute(
                    "SELECT count(*) FROM events WHERE state = ?", (state.value,)
                ).fetchone()[0]
                for state in (State.PENDING, State.RUNNING, State.DEAD)
            }

        return await self._run(count)

    async def setting(self, name: str) -> str | None:
        def select(connection: sqlite3.Connection) -> str | None:
            row = connection.execute(
                "SELECT value FROM settings WHERE name = ?", (name,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(select)

    async def settings(self) -> dict[str, str]:
        def select(connection: sqlite3.Connection) -> dict[str, str]:
            # Names that start with "~" are the paces and places below, not settings.
            rows = connection.execute(
                "SELECT name, value FROM settings WHERE substr(name, 1, 1) <> '~'"
            ).fetchall()
            return {str(name): str(value) for name, value in rows}

        return await self._run(select)

    async def set_setting(self, name: str, value: str) -> None:
        now = time.time()

        def upsert(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (name, value, now),
            )

        await self._run(upsert)

    async def entries(self, state: State | None = None, limit: int = 50) -> list[Entry]:
        def select(connection: sqlite3.Connection) -> list[Entry]:
            where, args = ("WHERE state = ?", (state.value,)) if state else ("", ())
            rows = connection.execute(
                f"SELECT {COLUMNS} FROM events {where} ORDER BY id DESC LIMIT ?",  # noqa: S608
                (*args, limit),
            )
            return [entry_of_row(row) for row in rows]

        return await self._run(select)

    async def search(
        self, search: Search, *, limit: int = 50, before_id: int | None = None
    ) -> SearchPage:
        """The entries *search* finds, by one query newest first; a search by number,
        error code or text reads the parameters of the rows the others leave."""
        check_page(limit, before_id)
        where, args = sql_where(search, before_id, postgres=False)

        def select(connection: sqlite3.Connection) -> list[Entry]:
            rows = connection.execute(
                f"SELECT {COLUMNS} FROM events {where} ORDER BY id DESC LIMIT ?",  # noqa: S608
                (*args, limit + 1),
            )
            return [entry_of_row(row) for row in rows]

        return page_of(await self._run(select), limit)

    async def get(self, entry_id: int) -> Entry | None:
        def select(connection: sqlite3.Connection) -> Entry | None:
            row = connection.execute(
                f"SELECT {COLUMNS} FROM events WHERE id = ?",  # noqa: S608
                (entry_id,),
            ).fetchone()
            return None if row is None else entry_of_row(row)

        return await self._run(select)

    async def replay(
        self, entry_ids: Sequence[int] | None = None, *, only: State | None = None
    ) -> int:
        now = time.time()

        def reset(connection: sqlite3.Connection) -> int:
            return counted(connection, lambda: again(connection), lambda n: {"replayed": n})

        def again(connection: sqlite3.Connection) -> int:
            base = (
                "UPDATE events SET state = 'pending', attempts = 0, next_attempt_at = ?, "
                "finished_at = NULL WHERE state != 'running'"
            )
            if entry_ids is None:
                return connection.execute(base + " AND state = 'dead'", (now,)).rowcount
            if only is not None:
                base += f" AND state = '{only.value}'"  # a State's value, not given text
            marks = ",".join("?" * len(entry_ids))
            return connection.execute(f"{base} AND id IN ({marks})", (now, *entry_ids)).rowcount

        return await self._run(reset)

    async def counters(self) -> Counters:
        def select(connection: sqlite3.Connection) -> Counters:
            counts = dict(connection.execute("SELECT name, value FROM counters").fetchall())
            return counters_of(counts, counts.get(SINCE, 0) / 1000)

        return await self._run(select)

    async def purge(self, state: State, older_than: float) -> int:
        cutoff = time.time() - older_than

        def delete(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "DELETE FROM events WHERE state = ? AND finished_at <= ?",
                (state.value, cutoff),
            ).rowcount

        return await self._run(delete)
