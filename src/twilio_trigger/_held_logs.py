"""The log of a start-up, held back until it succeeds.

A command that cannot start says why in one line; the log lines of its attempt
(uvicorn's, a database's outage, what came before them) would only repeat it.
:class:`HeldLogs` keeps what the root logger's handlers would write while a
start-up runs; the start-up ends the hold with :func:`logs_started` (written) or
:func:`logs_failed` (dropped).  Apart from the server so that the command line
can hold logs without loading uvicorn.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import TracebackType

__all__ = ["HeldLogs", "logs_failed", "logs_started"]


class _Keeper(logging.Handler):
    """The root logger's one handler while logs are held: it gives them to the hold."""

    def __init__(self, held: HeldLogs) -> None:
        super().__init__()
        self._held = held

    def emit(self, record: logging.LogRecord) -> None:
        self._held.keep(record)


class HeldLogs:
    """What the root logger's handlers would write during a start-up, kept back.

    A command that cannot start says why in one line; the log lines of its
    attempt (uvicorn's, a database's outage, what preceded them) would only
    repeat it.  While the hold lasts, records reaching the root logger are
    kept; :meth:`release` writes them as they would have been written and lets
    the next ones through, :meth:`drop` forgets them and those that follow
    until the hold ends.  Ending the hold releases what is still held.  The
    start-up, wherever it runs, ends the current hold with :func:`logs_started`
    or :func:`logs_failed`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keeper = _Keeper(self)
        self._handlers: list[logging.Handler] | None = None  # the root's, while held
        self._records: list[logging.LogRecord] = []
        self._dropping = False

    def hold(self) -> HeldLogs:
        global _held
        root = logging.getLogger()
        with self._lock:
            if self._handlers is None:
                self._handlers = list(root.handlers)
                root.handlers = [self._keeper]
        _held = self
        return self

    def keep(self, record: logging.LogRecord) -> None:
        # What the message says now, not what its arguments say when written (a
        # record that cannot be formatted is left for its handler to report).
        with contextlib.suppress(Exception):
            record.msg, record.args = record.getMessage(), None
        with self._lock:
            if not self._dropping:
                self._records.append(record)

    def release(self) -> None:
        """Write what is held, and let the next records through."""
        records = self._end()
        root = logging.getLogger()
        for record in records:
            # As Logger.callHandlers would have: the root's handlers, else the last resort.
            handlers = root.handlers
            if not handlers and logging.lastResort is not None and not _handled_below(record):
                handlers = [logging.lastResort]
            for handler in handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)

    def drop(self) -> None:
        """Forget what is held, and what comes until the hold ends."""
        with self._lock:
            self._dropping = True
            self._records = []

    def _end(self) -> list[logging.LogRecord]:
        global _held
        if _held is self:
            _held = None
        root = logging.getLogger()
        with self._lock:
            handlers, self._handlers = self._handlers, None
            records, self._records = self._records, []
            if handlers is not None:
                if root.handlers == [self._keeper]:
                    root.handlers = handlers
                else:  # set up anew meanwhile: that set-up stays
                    root.removeHandler(self._keeper)
            return [] if self._dropping else records

    def __enter__(self) -> HeldLogs:
        return self.hold()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._dropping:
            self._end()
        else:
            self.release()


def _handled_below(record: logging.LogRecord) -> bool:
    """Whether a logger under the root handled *record* (no last resort then)."""
    found: logging.Logger | None = logging.getLogger(record.name)
    while found is not None and found.parent is not None:  # the root is not looked at
        if found.handlers:
            return True
        found = found.parent
    return False


_held: HeldLogs | None = None


def logs_started() -> None:
    """The start-up succeeded: the current hold's records are written."""
    held = _held
    if held is not None:
        held.release()


def logs_failed() -> None:
    """The start-up failed, and says why itself: the current hold's records are dropped."""
    held = _held
    if held is not None:
        held.drop()
