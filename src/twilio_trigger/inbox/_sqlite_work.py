"""The workers' side of the SQLite inbox: taking entries, recording how they ended.

:class:`SQLiteWork` claims the due entries (one ``UPDATE ... RETURNING``), records
each attempt's outcome (done, to be retried, or dead) with what it counts, tells
when the next entry is due, gives back an entry held back by its limits or its
breaker (:meth:`~SQLiteWork.defer`, :meth:`~SQLiteWork.release`), and keeps the
paces and places of those limits in the settings table, changed in the write
transaction so that processes on the file take turns.  Each method is one
operation of the writer thread of :class:`~twilio_trigger.inbox._sqlite_core.SQLiteCore`.
"""

from __future__ import annotations

import sqlite3
import time

from . import COLUMNS, Entry, State, entry_of_row
from ._gates import pace_step
from ._sqlite_core import SQLiteCore, counted

__all__ = ["SQLiteWork"]

_MAX_ERROR = 16_000  # characters of a traceback kept per entry
_UPSERT = (
    "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


def _outcome_counts(state: State, changed: int) -> dict[str, int]:
    """What an attempt's outcome *state* counts, for *changed* entries."""
    if state is State.DONE:
        return {"handled": changed}
    if state is State.DEAD:
        return {"failed_attempts": changed, "dead_lettered": changed}
    return {"failed_attempts": changed}  # a retry


class SQLiteWork(SQLiteCore):
    """The workers' methods of a SQLite inbox (see the module)."""

    async def claim(self, limit: int) -> list[Entry]:
        def take(connection: sqlite3.Connection) -> list[Entry]:
            rows = connection.execute(
                f"UPDATE events SET state = 'running', attempts = attempts + 1 WHERE id IN "  # noqa: S608
                f"(SELECT id FROM events WHERE state = 'pending' AND next_attempt_at <= ? "
                f"ORDER BY next_attempt_at, id LIMIT ?) RETURNING {COLUMNS}",
                (time.time(), limit),
            ).fetchall()
            return sorted((entry_of_row(row) for row in rows), key=lambda entry: entry.id)

        return await self._run(take)

    async def succeed(self, entry_id: int) -> None:
        await self._finish(entry_id, State.DONE, None, None)

    async def retry(self, entry_id: int, error: str, at: float) -> None:
        await self._finish(entry_id, State.PENDING, error, at)

    async def bury(self, entry_id: int, error: str) -> None:
        await self._finish(entry_id, State.DEAD, error, None)

    async def _finish(
        self, entry_id: int, state: State, error: str | None, at: float | None
    ) -> None:
        now = time.time()
        finished = None if state is State.PENDING else now
        text = None if error is None else error[-_MAX_ERROR:]

        def update(connection: sqlite3.Connection) -> None:
            def change() -> int:
                return connection.execute(
                    "UPDATE events SET state = ?, last_error = coalesce(?, last_error), "
                    "next_attempt_at = coalesce(?, next_attempt_at), finished_at = ? "
                    "WHERE id = ?",
                    (state.value, text, at, finished, entry_id),
                ).rowcount

            counted(connection, change, lambda changed: _outcome_counts(state, changed))

        await self._run(update)

    async def next_due(self) -> float | None:
        def earliest(connection: sqlite3.Connection) -> float | None:
            row = connection.execute(
                "SELECT min(next_attempt_at) FROM events WHERE state = 'pending'"
            ).fetchone()
            return None if row is None else row[0]

        return await self._run(earliest)

    # Paces and places: rows of the settings table named "~pace:NAME" (the time the
    # next token is due) and "~place:NAME:HOLDER" (the end of the lease), changed
    # in the write transaction, so that processes on this file take turns.
    async def pace(self, name: str, interval: float, burst: int) -> float:
        key = f"~pace:{name}"

        def step(connection: sqlite3.Connection) -> float:
            now = time.time()
            row = connection.execute("SELECT value FROM settings WHERE name = ?", (key,)).fetchone()
            wait, due = pace_step(None if row is None else float(row[0]), now, interval, burst)
            if wait == 0.0:
                connection.execute(_UPSERT, (key, repr(due), now))
            return wait

        return await self._run(step)

    async def enter(self, name: str, holder: str, limit: int, lease: float) -> bool:
        prefix = f"~place:{name}:"

        def take(connection: sqlite3.Connection) -> bool:
            now = time.time()
            connection.execute(
                "DELETE FROM settings WHERE substr(name, 1, ?) = ? AND CAST(value AS REAL) <= ?",
                (len(prefix), prefix, now),
            )
            count, held = connection.execute(
                "SELECT count(*), coalesce(max(name = ?), 0) FROM settings "
                "WHERE substr(name, 1, ?) = ?",
                (prefix + holder, len(prefix), prefix),
            ).fetchone()
            if not held and count >= limit:
                return False
            connection.execute(_UPSERT, (prefix + holder, repr(now + lease), now))
            return True

        return await self._run(take)

    async def leave(self, name: str, holder: str) -> None:
        key = f"~place:{name}:{holder}"
        await self._run(lambda connection: connection.execute(
            "DELETE FROM settings WHERE name = ?", (key,)
        ))  # fmt: skip

    async def defer(self, entry_id: int, at: float, hold: str | None = None) -> None:
        def give_back(connection: sqlite3.Connection) -> None:
            changed = connection.execute(
                "UPDATE events SET state = 'pending', attempts = max(0, attempts - 1), "
                "next_attempt_at = ? WHERE id = ? AND state = 'running'",
                (at, entry_id),
            ).rowcount
            if hold is not None and changed:
                connection.execute(_UPSERT, (f"~hold:{hold}:{entry_id}", repr(at), time.time()))

        await self._run(give_back)

    async def release(self, hold: str) -> int:
        prefix = f"~hold:{hold}:"

        def hasten(connection: sqlite3.Connection) -> int:
            where = "substr(name, 1, ?) = ?"
            released = connection.execute(
                f"UPDATE events SET next_attempt_at = ? WHERE state = 'pending' AND id IN "  # noqa: S608
                f"(SELECT CAST(substr(name, ?) AS INTEGER) FROM settings WHERE {where})",
                (time.time(), len(prefix) + 1, len(prefix), prefix),
            ).rowcount
            connection.execute(f"DELETE FROM settings WHERE {where}", (len(prefix), prefix))  # noqa: S608
            return int(released)

        return await self._run(hasten)
