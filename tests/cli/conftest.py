"""The command line run in-process with click's ``CliRunner``: no server, no subprocess.

``invoke`` runs a command as click runs it; ``run_main`` runs the console script's
``main``, which prints every error on one line, and returns its exit status.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import CliRunner, Result

from twilio_trigger.cli import cli, main


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No TWILIO_* variable leaks in, nor out (`run` and `worker` write their flags
    into the environment); sys.path is as it was after each test."""
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            del os.environ[name]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``twilio-trigger ARGS`` through click, as its standalone mode does."""
    return CliRunner().invoke(cli, list(args), env=env, prog_name="twilio-trigger")


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    """Run the console script's ``main(ARGS)``: its exit status and what it printed."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    code = exited.value.code
    captured = capsys.readouterr()
    return Outcome(code if isinstance(code, int) else 1, captured.out, captured.err)
