"""What every test run shares: a SIGTERM ends it as Ctrl-C does.

A run stopped by SIGTERM (a CI's or a developer's ``kill``) would end at once,
its fixtures never torn down: the databases made on the shared PostgreSQL, the
private servers started.  As a KeyboardInterrupt, pytest tears them down first.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
