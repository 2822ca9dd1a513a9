"""One process dispatches from a SQLite inbox file: an advisory lock beside it.

The process that opens the inbox to dispatch (``SQLiteInbox.open``) takes an
exclusive ``flock`` on ``<file>.lock``, never on the database itself (closing any
descriptor of that file would drop SQLite's own POSIX locks).  Another process
is refused with :class:`ConfigurationError`; the inboxes of one process share the
lock; the command line's looks into the inbox never take it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .._exceptions import ConfigurationError
from .._logging import printable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per file is not enforced
    fcntl = None  # type: ignore[assignment]

__all__ = ["hold", "let_go"]

#: The lock files this process holds (one per inbox file), each with its
#: descriptor and how many open inboxes of this process use it.
_HELD: dict[str, tuple[int, int]] = {}
_HELD_LOCK = threading.Lock()


def hold(path: Path, file_mode: int) -> str | None:
    """Take the inbox file at *path* for this process; the lock file held (for
    :func:`let_go`), or ``None`` where such locks cannot be taken."""
    if fcntl is None:
        return None
    real = Path(os.path.realpath(path))
    lock_path = str(real.with_name(real.name + ".lock"))
    with _HELD_LOCK:
        held = _HELD.get(lock_path)
        if held is not None:
            _HELD[lock_path] = (held[0], held[1] + 1)
            return lock_path
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        handle = os.open(lock_path, flags, file_mode)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise ConfigurationError(
                f"another process dispatches from the SQLite inbox {printable(str(path))} "
                f"(one listener process per file: stop it first; listeners that run "
                f"together share a Redis or PostgreSQL inbox)"
            ) from None
        except OSError:  # a filesystem without such locks: not enforced there
            os.close(handle)
            return None
        _HELD[lock_path] = (handle, 1)
        return lock_path


def let_go(lock_path: str) -> None:
    """Release what :func:`hold` took, once the last inbox of this process lets go."""
    with _HELD_LOCK:
        handle, users = _HELD.pop(lock_path)
        if users > 1:
            _HELD[lock_path] = (handle, users - 1)
        else:
            os.close(handle)  # its lock with it
