"""`demo --once`, in-process: its listener on a free loopback port, its scripted events;
and the `send` command it prints, run as printed from a real demo process.

Waiting for Ctrl-C after the script is tested with a real process in tests/test_cli.py.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import TIMEOUT, Running, clean_env
from twilio_trigger.cli._demo import program

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


def test_the_send_command_it_prints_works_as_printed_from_another_terminal() -> None:
    # Another terminal's PATH need not hold the virtual environment's bin folder,
    # which is where the console script is: the printed command must work without it.
    env = clean_env(PATH="/usr/bin:/bin")
    with Running(["demo", "--port", "0"], env=env) as running:
        output = running.wait_for("Press Ctrl-C")
        lines = output.splitlines()
        command = lines[
            lines.index("Still listening.  Send more events from another terminal, e.g.:") + 1
        ]
        argv = shlex.split(command)
        program = Path(argv[0])
        assert program.is_absolute(), command
        assert program.is_file()
        assert os.access(program, os.X_OK)
        assert argv[1:4] == ["send", "sms", "delivered"]
        sent = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.splitlines()[1].startswith("200 OK")
        running.wait_for(": new → delivered")
        assert running.stop(signal.SIGINT) == 0


def test_the_program_is_python_dash_m_when_not_run_as_the_console_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "argv", ["/somewhere/else/pytest"])
    assert program() == f"{shlex.quote(sys.executable)} -m twilio_trigger"
