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

The inbox is put together from parts, each in a module of its own, all on the
writer thread of ``inbox/_sqlite_core.py`` (the file, its modes and its tables,
the connection, the batches): ``_sqlite_work.py``, the workers' side (claim,
outcomes, paces and places); ``_sqlite_admin.py``, the operators' side (listing,
searching, replaying, purging, counters, settings).  This module stores events:
opening, the put, readiness and closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence

from . import encode_headers
from ._sqlite_admin import SQLiteAdmin
from ._sqlite_core import counted, folder_mode
from ._sqlite_work import SQLiteWork

__all__ = ["SQLiteInbox", "folder_mode"]


class SQLiteInbox(SQLiteWork, SQLiteAdmin):
    """The inbox in the SQLite file at *path*, created if missing, in a folder that
    must exist unless *create_folders* (then missing folders are made too).

    Never shared: one listener process per file.

    The file and the folders it makes get *file_mode* (folders: see
    :func:`folder_mode`) whatever the umask; :meth:`open` sets the file and its
    ``-wal`` and ``-shm`` to *file_mode* when they exist with another mode.
    """

    shared = False

    # -- Inbox ---------------------------------------------------------------
    async def open(self) -> int:
        # Before SQLite opens the file: the -wal and -shm it makes take its mode.
        await asyncio.to_thread(self._set_modes)
        await self._run(lambda _: None)  # the file opened (its folder checked, or made)
        # Then taken for this process, before its running entries are called
        # interrupted: another listener's are not (an overlapping deploy).
        await asyncio.to_thread(self._hold_file)

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

            return counted(connection, add, lambda added: {"received": int(added)})

        return await self._run(insert, limit=self.store_wait, recovers=True)

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
                self._let_file_go()
                return
            self._on_exit[:] = [tell]
        # Waited for on the loop, not in a thread: at interpreter exit the
        # thread pools may be gone already.
        self._queue.put(None)
        await ended
        self._let_file_go()
