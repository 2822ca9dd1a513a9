"""The part of the SQLite inbox every other part stands on: its file and its writer thread.

:class:`SQLiteCore` opens the inbox's file (its folder checked, or made, and the
file made with ``file_mode`` before SQLite opens it; see
:mod:`twilio_trigger.inbox.sqlite`), makes or upgrades its tables, and runs the
thread that owns the one connection: :meth:`~SQLiteCore._run` hands it an
operation, and the thread runs the operations waiting at that moment in one
transaction, adds what they counted (:func:`counted`) to the counters once and
commits once, then wakes each event loop once with its results.  It also sets the
mode of files found with another (:meth:`~SQLiteCore._set_modes`).  The workers'
side (:mod:`~twilio_trigger.inbox._sqlite_work`), the operators' side
(:mod:`~twilio_trigger.inbox._sqlite_admin`) and :class:`SQLiteInbox`, which
stores, are built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from .._exceptions import ConfigurationError
from .._logging import printable
from .._outage import OUTAGE_WAIT, Outage
from . import Inbox
from ._group import STORE_WAIT
from ._sqlite_lock import hold, let_go

__all__ = ["SINCE", "SQLiteCore", "counted", "folder_mode"]

logger = logging.getLogger("twilio_trigger")

_T = TypeVar("_T")

#: SQLite's primary result codes that mean the file refuses statements for now:
#: BUSY and LOCKED (another writer's lock held past busy_timeout), READONLY, IOERR,
#: FULL, CANTOPEN, PROTOCOL.
_REFUSED = frozenset({5, 6, 8, 10, 13, 14, 15})
_BATCH = 1024
#: Milliseconds SQLite waits for another connection's lock: usually, less than
#: Twilio's 15 s for an answer (see STORE_WAIT); while the file refuses writes,
#: one outage's wait (the operations queued meanwhile fail with the batch that
#: waited, rather than each wait in turn).
_BUSY_TIMEOUT = round(STORE_WAIT * 1000)
_BUSY_TIMEOUT_IN_OUTAGE = round(OUTAGE_WAIT * 1000)

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
SINCE = "since_ms"
_COUNT = (
    "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) "
    "DO UPDATE SET value = value + excluded.value"
)
_Operation = Callable[[sqlite3.Connection], Any]
# An operation, and the event loop and future that wait for its result.
_Request = tuple[_Operation, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _refused(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF in _REFUSED


_SQLITE_IOERR = 10


def _file_of(path: Path) -> tuple[int, int] | None:
    """The file at *path* (its device and inode), ``None`` when there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _file_gone(path: Path) -> sqlite3.OperationalError:
    # A refusal (SQLITE_IOERR): answered 503 and told once, as a full disk is.
    error = sqlite3.OperationalError(
        f"the file {printable(str(path))} was deleted or replaced while the inbox had it "
        f"open: what is written now would be lost (put it back, or restart)"
    )
    error.sqlite_errorcode = _SQLITE_IOERR
    return error


def _wake(
    batch: list[_Request], outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]
) -> None:
    # One wake-up per event loop and batch, not one per operation.
    by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for (_, loop, _), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append(outcome)
    for loop, results in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            loop.call_soon_threadsafe(_deliver, results)


def _fail(batch: list[_Request], error: BaseException) -> None:
    _wake(batch, [(future, None, error) for _, _, future in batch])


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # read, so that asyncio does not report it as lost


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
    :meth:`SQLiteCore._run_batch`)."""

    counts: dict[str, int]


def counted(
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


class SQLiteCore(Inbox):
    """What the parts of a SQLite inbox share; its arguments are those of
    :class:`~twilio_trigger.inbox.sqlite.SQLiteInbox`."""

    #: Milliseconds the writer waits for another connection's lock, usually and
    #: while the file refuses writes.
    busy_ms = _BUSY_TIMEOUT
    busy_ms_in_outage = _BUSY_TIMEOUT_IN_OUTAGE
    #: Seconds a new event's write may take before the request is answered 503.
    store_wait = STORE_WAIT

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
        #: Told once when the file refuses the inbox's statements (another writer's
        #: lock held past the busy timeout, a disk error), and once when it takes them.
        self.outage = Outage("SQLite inbox", self.location)
        #: The file the writer opened (device, inode): one deleted or replaced under
        #: it would take writes that no restart finds.
        self._file: tuple[int, int] | None = None
        self._held: str | None = None  # the lock file this inbox holds for its process

    # -- one process per file (see ._sqlite_lock) --------------------------------
    def _hold_file(self) -> None:
        if self._held is None:
            self._held = hold(self.path, self.file_mode)

    def _let_file_go(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            let_go(held)

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
        self._file = _file_of(self.path)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(f"PRAGMA busy_timeout={self.busy_ms}")
        connection.executescript(_SCHEMA)
        columns = {row[1] for row in connection.execute("PRAGMA table_info(events)")}
        if "headers" not in columns:  # a file made before headers were kept
            connection.execute("ALTER TABLE events ADD COLUMN headers TEXT")
        # Counting begins when the table is made (with a file made before, now).
        connection.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (SINCE, round(time.time() * 1000)),
        )
        return connection

    def _serve(self, connection: sqlite3.Connection) -> None:
        refusing = False  # the last batch was refused: waits are short until one passes
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = self._take(batch, _BATCH)
                # One stat a batch: the file must still be the one opened.
                refusal: BaseException | None
                if self._file is not None and _file_of(self.path) != self._file:
                    refusal = _file_gone(self.path)
                    _fail(batch, refusal)
                else:
                    refusal = self._run_batch(connection, batch)
                if refusal is not None:
                    # What was queued while the batch waited fails with it: each
                    # would wait as long again, past Twilio's patience.
                    queued: list[_Request] = []
                    stop = stop or self._take(queued, None)
                    _fail(queued, refusal)
                    if not refusing:
                        connection.execute(f"PRAGMA busy_timeout={self.busy_ms_in_outage}")
                        refusing = True
                elif refusing:
                    connection.execute(f"PRAGMA busy_timeout={self.busy_ms}")
                    refusing = False
                if stop:
                    return
        finally:
            connection.close()
            for tell in self._on_exit:
                tell()

    def _take(self, batch: list[_Request], most: int | None) -> bool:
        """Add the operations queued now to *batch* (up to *most*); ``True`` when
        the queue asked the thread to stop after them."""
        while most is None or len(batch) < most:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _run_batch(
        self, connection: sqlite3.Connection, batch: list[_Request]
    ) -> BaseException | None:
        """Run *batch* in one transaction and wake its waiters; return the error
        when the file refused the whole batch (see ``_REFUSED``)."""
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        counts = cast(_Connection, connection).counts = {}
        refusal: BaseException | None = None
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
            if isinstance(error, sqlite3.OperationalError) and _refused(error):
                refusal = error
        _wake(batch, outcomes)
        return refusal

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            connection = self._connect()  # errors (bad path, not a database) surface here
            self._thread = threading.Thread(
                target=self._serve, args=(connection,), name="twilio-trigger-inbox", daemon=True
            )
            self._thread.start()

    async def _run(
        self,
        operation: Callable[[sqlite3.Connection], _T],
        *,
        limit: float | None = None,
        recovers: bool = False,
    ) -> _T:
        """The result of *operation*, run by the writer thread in its next batch;
        with *limit*, an outage once that many seconds pass without it (a disk
        that stopped answering: the request is answered 503 within Twilio's time,
        and what the operation writes, if it ever does, stays written).

        Any operation the file refuses starts an outage (told once); one that
        *recovers* (a new event stored) ends it.  Not any other: on a full disk,
        reads, claims and outcomes that need no room pass, and each would have
        said it was over until the next event failed."""
        if self._thread is None:
            await asyncio.to_thread(self._start)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        started = time.monotonic()
        self._queue.put((operation, loop, future))
        try:
            if limit is None:
                result = await future
            else:
                try:
                    result = await asyncio.wait_for(asyncio.shield(future), limit)
                except TimeoutError as late:
                    future.add_done_callback(_retrieved)  # whatever comes, nobody waits
                    raise self.outage.unreachable(
                        TimeoutError(f"no answer from the file within {limit:g} s")
                    ) from late
        except sqlite3.OperationalError as error:
            if not _refused(error):
                raise  # a statement's own error (a table taken away): not an outage
            # Answered 503 and told once, as Redis's and PostgreSQL's outages are,
            # rather than with a traceback per request.
            raise self.outage.unreachable(error) from error
        if recovers and self.outage.ongoing:
            self.outage.recovered(started)
        return result

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
