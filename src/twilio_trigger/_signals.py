"""The signals that ask a process of the listener's to stop: SIGINT and SIGTERM."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["STOP_SIGNALS", "on_stop_signals"]

#: Ctrl-C, and the stop of a supervisor (systemd, Docker, Kubernetes).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[int, FrameType | None], object]) -> Iterator[None]:
    """*handler* handles SIGINT and SIGTERM while the block runs; the handlers it
    replaced are restored after.  In the main thread only, as ``signal.signal``."""
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, replaced in previous.items():
            signal.signal(sig, replaced)
