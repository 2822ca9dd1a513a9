"""The SQLite inbox: one file, written by one thread, commits grouped.

Every operation is a small function run by the inbox's own thread on its own
connection.  The thread takes all operations waiting at that moment, runs them
in one transaction and commits once, so that under load many events share one
fsync (``synchronous=FULL`` in WAL mode: a commit is on disk when it returns).
Each operation is one SQL statement, atomic by itself: one that fails undoes
nothing of the others of its batch.  What the operations of a batch count is
added to the counters once, just before the commit, so that a change and its
count are durable together; should that fail, the whole batch fails, and none
of it is acknowledged.

One listener process per inbox file: opening it makes every ``running`` entry
pending again, since the process that was running them is gone.

Its folder must exist: a mistyped path fails at start instead of leaving a
fresh, empty inbox where nobody looks.  Asked to (``create_folders``), the inbox
makes the missing folders itself.

The file holds phone numbers and message bodies, so it is private: made with
``file_mode`` (0600 by default) and the folders it makes with the same mode plus
the execute bits (0700), whatever the umask.  SQLite makes the ``-wal`` and
``-shm`` files itself, later, with the mode of the database file, which is why
the file is made before SQLite opens it (no umask change: it would be
process-wide, under other threads).  When the listener opens the inbox, files
found with another mode (made by an earlier version under umask 022: 0644) are
set to ``file_mode``, said in a warning; folders that existed are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from .._exceptions import ConfigurationError
from .._logging import printable
from . import (
    COLUMNS,
    Counters,
    Entry,
    Inbox,
    Search,
    SearchPage,
    State,
    counters_of,
    encode_headers,
    entry_of_row,
)
from ._gates import pace_step
from ._search import check_page, page_of, sql_where

__all__ = ["SQLiteInbox", "folder_mode"]

logger = logging.getLogger("twilio_trigger")

_T = TypeVar("_T")
_BATCH = 1024
_MAX_ERROR = 16_000  # characters of a traceback kept per entry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    sid TEXT,
    status TEXT,
    params TEXT NOT NULL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    finished_at REAL,
    headers TEXT
);
CREATE INDEX IF NOT EXISTS events_due ON events (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
#: The counter that holds when the inbox began counting, in milliseconds since the epoch.
_SINCE = "since_ms"
_UPSERT = (
    "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)
_COUNT = (
    "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) "
    "DO UPDATE SET value = value + excluded.value"
)
_Operation = Callable[[sqlite3.Connection], Any]
# An operation, and the event loop and future that wait for its result.
_Request = tuple[_Operation, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _deliver(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in outcomes:
        if future.done():  # the waiter was cancelled
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


class _Connection(sqlite3.Connection):
    """The inbox's connection, which keeps what the operations of the batch under
    way counted, to add them to the counters once, with the batch (see
    :meth:`SQLiteInbox._run_batch`)."""

    counts: dict[str, int]


def _counted(
    connection: sqlite3.Connection, change: Callable[[], _T], counts: Callable[[_T], dict[str, int]]
) -> _T:
    """Run *change* (one statement, atomic by itself), then keep what *counts* says of
    its result for the counters, which the batch writes before it commits: the
    change and its count are durable together, or neither."""
    value = change()
    pending = cast(_Connection, connection).counts
    for name, number in counts(value).items():
        if number:
            pending[name] = pending.get(name, 0) + number
    return value


def folder_mode(file_mode: int) -> int:
    """The mode of a folder made for files of *file_mode*: each read bit with its
    execute bit (0600 → 0700, 0640 → 0750), without which the folder cannot be entered."""
    return file_mode | (file_mode & 0o444) >> 2


def _make_folders(folder: Path, mode: int) -> None:
    missing: list[Path] = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs, left as it is
        # The umask may have taken bits the mode asks for (it never adds any).
        handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(handle, mode)
        finally:
            os.close(handle)


def _make_file(path: Path, mode: int, *, link: bool = True) -> None:
    try:
        # O_EXCL: never through a symbolic link, never a file someone else made.
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        target = Path(os.path.realpath(path))
        if link and target != path.absolute() and not os.path.lexists(target):
            # A link made ahead to where the file is to be: SQLite would make
            # the file there with its own mode.
            _make_file(target, mode, link=False)
        return
    try:
        os.fchmod(handle, mode)
    finally:
        os.close(handle)


def _outcome_counts(state: State, changed: int) -> dict[str, int]:
    """What an attempt's outcome *state* counts, for *changed* entries."""
    if state is State.DONE:
        return {"handled": changed}
    if state is State.DEAD:
        return {"failed_attempts": changed, "dead_lettered": changed}
    return {"failed_attempts": changed}  # a retry


class SQLiteInbox(Inbox):
    """The inbox in the SQLite file at *path*, created if missing, in a folder that
    must exist unless *create_folders* (then missing folders are made too).

    Never shared: one listener process per file.

    The file and the folders it makes get *file_mode* (folders: see
    :func:`folder_mode`) whatever the umask; :meth:`open` sets the file and its
    ``-wal`` and ``-shm`` to *file_mode* when they exist with another mode.
    """

    shared = False

    def __init__(
        self, path: str | Path, *, file_mode: int = 0o600, create_folders: bool = False
    ) -> None:
        self.path = Path(path)
        self.file_mode = file_mode
        self.create_folders = create_folders
        self.location = f"sqlite:///{self.path}"
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._on_exit: list[Callable[[], None]] = []  # told when the writer thread ends

    # -- the writer thread ---------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        folder = self.path.parent
        if self.create_folders:
            _make_folders(folder, folder_mode(self.file_mode))
        elif not os.path.lexists(folder):
            raise ConfigurationError(
                f"the folder {printable(str(folder))} does not exist (create it, or end the "
                f"inbox URL with ?create_folders=1 to have it created)"
            )
        # SQLite would make the file with 0644 less the umask; made here with the
        # mode asked for, it passes that mode on to the -wal and -shm files.
        _make_file(self.path, self.file_mode)
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=10000")
        connection.executescript(_SCHEMA)
        columns = {row[1] for row in connection.execute("PRAGMA table_info(events)")}
        if "headers" not in columns:  # a file made before headers were kept
            connection.execute("ALTER TABLE events ADD COLUMN headers TEXT")
        # Counting begins when the table is made (with a file made before, now).
        connection.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (_SINCE, round(time.time() * 1000)),
        )
        return connection

    def _serve(self, connection: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    batch.append(item)
                self._run_batch(connection, batch)
        finally:
            connection.close()
            for tell in self._on_exit:
                tell()

    @staticmethod
    def _run_batch(connection: sqlite3.Connection, batch: list[_Request]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        counts = cast(_Connection, connection).counts = {}
        try:
            connection.execute("BEGIN IMMEDIATE")
            for operation, _, future in batch:
                try:
                    value = operation(connection)
                except sqlite3.DatabaseError as error:
                    if not connection.in_transaction:  # a fatal error ended it
                        raise
                    outcomes.append((future, None, error))
                except Exception as error:
                    outcomes.append((future, None, error))
                else:
                    outcomes.append((future, value, None))
            # What the batch counted, once per counter: a failure here fails the
            # batch, as its commit would.
            connection.executemany(_COUNT, counts.items())
            connection.execute("COMMIT")
        except Exception as error:  # the commit itself failed: nothing is durable
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            outcomes = [(future, None, error) for _, _, future in batch]
        # One wake-up per event loop and batch, not one per operation.
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_, loop, _), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append(outcome)
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_deliver, results)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            connection = self._connect()  # errors (bad path, not a database) surface here
            self._thread = threading.Thread(
                target=self._serve, args=(connection,), name="twilio-trigger-inbox", daemon=True
            )
            self._thread.start()

    async def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._thread is None:
            await asyncio.to_thread(self._start)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._queue.put((operation, loop, future))
        return await future

    def _set_modes(self) -> None:
        """Give the file, its -wal and its -shm the mode asked for, if they exist."""
        mode = self.file_mode
        # The database may be a link the user made; SQLite keeps its -wal and
        # -shm beside the file the link leads to.
        real = Path(os.path.realpath(self.path))
        for path in (real, real.with_name(real.name + "-wal"), real.with_name(real.name + "-shm")):
            flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
            try:
                handle = os.open(path, flags)
            except OSError:
                continue  # missing (or not ours to open): SQLite will say so if it matters
            try:
                found = os.fstat(handle)
                was = stat.S_IMODE(found.st_mode) & 0o777
                if not stat.S_ISREG(found.st_mode) or was == mode:
                    continue
                try:
                    os.fchmod(handle, mode)
                except OSError as error:
                    logger.warning(
                        "the inbox file %s has mode %03o, not %03o, and cannot be changed "
                        "(%s): chmod it, or set file_mode to %03o",
                        path, was, mode, error.strerror or error, was,
                    )  # fmt: skip
                    continue
                # Taking bits away may lock out a reader someone set up: said loudly,
                # with how to keep them.
                logger.log(
                    logging.WARNING if was & ~mode else logging.INFO,
                    "the inbox file %s had mode %03o: set to %03o (file_mode; set it, or "
                    "TWILIO_TRIGGER_FILE_MODE, to %03o to keep the old one)",
                    path, was, mode, was,
                )  # fmt: skip
            finally:
                os.close(handle)

    # -- Inbox ---------------------------------------------------------------
    async def open(self) -> int:
        # Before SQLite opens the file: the -wal and -shm it makes take its mode.
        await asyncio.to_thread(self._set_modes)

        def recover(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "UPDATE events SET state = 'pending', next_attempt_at = ? WHERE state = 'running'",
                (time.time(),),
            )
            return cursor.rowcount

        return await self._run(recover)

    async def put(
        self,
        key: str,
        kind: str,
        sid: str | None,
        status: str | None,
        params: Sequence[tuple[str, str]],
        headers: Sequence[tuple[str, str]] = (),
    ) -> bool:
        now = time.time()
        kept = encode_headers(headers) if headers else None
        row = (key, kind, sid, status, json.dumps(params, ensure_ascii=False), now, now, kept)

        def insert(connection: sqlite3.Connection) -> bool:
            def add() -> bool:
                cursor = connection.execute(
                    "INSERT INTO events (key, kind, sid, status, params, received_at, state, "
                    "next_attempt_at, headers) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) "
                    "ON CONFLICT (key) DO NOTHING",
                    row,
                )
                return cursor.rowcount == 1

            return _counted(connection, add, lambda added: {"received": int(added)})

        return await self._run(insert)

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

            _counted(connection, change, lambda changed: _outcome_counts(state, changed))

        await self._run(update)

    async def next_due(self) -> float | None:
        def earliest(connection: sqlite3.Connection) -> float | None:
            row = connection.execute(
                "SELECT min(next_attempt_at) FROM events WHERE state = 'pending'"
            ).fetchone()
            return None if row is None else row[0]

        return await self._run(earliest)

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

    async def check(self) -> None:
        folder = self.path.parent

        def probe(connection: sqlite3.Connection) -> None:
            # An open database in WAL mode can still be written after its folder
            # stops being writable, but SQLite could not create its journal files
            # to open it again: a listener there is not ready.  The write lock,
            # taken by the batch this runs in, is checked too.
            handle, name = tempfile.mkstemp(dir=folder, prefix=".twilio-trigger-ready-")
            try:
                os.write(handle, b"ok")
            finally:
                os.close(handle)
                os.unlink(name)

        await self._run(probe)

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
            return _counted(connection, lambda: again(connection), lambda n: {"replayed": n})

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
            return counters_of(counts, counts.get(_SINCE, 0) / 1000)

        return await self._run(select)

    async def purge(self, state: State, older_than: float) -> int:
        cutoff = time.time() - older_than

        def delete(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "DELETE FROM events WHERE state = ? AND finished_at <= ?",
                (state.value, cutoff),
            ).rowcount

        return await self._run(delete)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def end() -> None:
            if not ended.done():
                ended.set_result(None)

        def tell() -> None:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(end)

        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._on_exit[:] = [tell]
        # Waited for on the loop, not in a thread: at interpreter exit the
        # thread pools may be gone already.
        self._queue.put(None)
        await ended
