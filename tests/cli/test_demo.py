"""`demo --once`, in-process: its listener on a free loopback port, its scripted events.

Waiting for Ctrl-C after the script is tested with a real process in tests/test_cli.py.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator

import pytest

from .conftest import invoke


@pytest.fixture(autouse=True)
def _package_logger_restored() -> Iterator[None]:
    """The demo takes over the package's logger, as its own process may: give it back."""
    logger = logging.getLogger("twilio_trigger")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_demo_once_sends_every_scripted_event_to_its_callback() -> None:
    result = invoke("demo", "--once", "--port", "0")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "twilio-trigger demo"
    assert re.fullmatch(r"  listening on   http://127\.0\.0\.1:\d+/", lines[1])
    assert re.fullmatch(r"  auth token     [0-9a-f]{32}   \(generated for this run\)", lines[2])
    outcomes = [line.split()[0] for line in lines if re.match(r"  (ok |BAD) ", line)]
    assert outcomes == ["ok"] * len(outcomes)
    assert f"All {len(outcomes)} events were dispatched to the expected callback." in lines
    assert "DeliveryTracker.on_failed" in result.output
    assert "CallTracker.on_busy" in result.output
    # the trackers' log lines, each under the event that caused it
    assert re.search(r"^        sms SM\w+: new → queued$", result.output, re.MULTILINE)


def test_demo_on_a_port_in_use_fails_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("demo", "--once", "--port", str(port))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert str(port) in result.output
