"""Errors in the command line's words: a bad value names the flag or the variable it
came from, and the library's messages name flags and variables, not Python's
keyword arguments (``inbox=...``).

Every case fails before anything is served.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from twilio_trigger.cli._common import cli_wording

from .conftest import invoke

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
RUN_FLAGS = {"host", "port", "path", "public_url", "inbox", "concurrency", "store", "inspector"}
WORKER_FLAGS = {"inbox", "concurrency"}


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cli_wording_app.py in the working directory: a listener with no option of its own."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cli_wording_app.py").write_text(
        textwrap.dedent(
            """
            import twilio_trigger as twilio

            listener = twilio.Listener(host="127.0.0.1")
            """
        ),
        encoding="utf-8",
    )
    yield tmp_path
    sys.modules.pop("cli_wording_app", None)


# -- a bad value names where it came from -------------------------------------------------
BAD = {
    "inbox": "sqlite://events.db",  # two slashes: no path
    "port": "eighty",
    "path": "hooks",
    "store": "ftp://cache",
    "concurrency": "0",
    "public_url": "ftp://hooks.example.com/",
}


@pytest.mark.parametrize("option", sorted(BAD))
def test_a_bad_flag_is_blamed_on_the_flag(app: Path, option: str) -> None:
    flag = "--" + option.replace("_", "-")
    result = invoke("run", "cli_wording_app", flag, BAD[option])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}'" in result.output
    assert "TWILIO_TRIGGER_" not in result.output


@pytest.mark.parametrize("option", sorted(BAD))
def test_a_bad_variable_is_blamed_on_the_variable(app: Path, option: str) -> None:
    variable = f"TWILIO_TRIGGER_{option.upper()}"
    result = invoke("run", "cli_wording_app", env={variable: BAD[option]})
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {variable}")
    assert "--" + option.replace("_", "-") not in result.output


# -- the library's messages, in flags and variables ---------------------------------------
def test_run_without_a_token_names_the_variable_not_keyword_arguments(app: Path) -> None:
    result = invoke("run", "cli_wording_app", "--port", "0")
    assert result.exit_code == 1, result.output
    assert result.output == (
        "Error: no auth token to verify Twilio's signatures with: set TWILIO_AUTH_TOKEN "
        "(set TWILIO_TRIGGER_VERIFY_SIGNATURES=false only for local experiments)\n"
    )


def test_the_inspector_without_an_inbox_names_the_flag(app: Path) -> None:
    result = invoke("run", "cli_wording_app", "--inspector", env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 2, result.output
    assert "pass --inbox URL or set TWILIO_TRIGGER_INBOX" in result.output
    assert "inbox=" not in result.output
    assert "inspector=True" not in result.output


@pytest.mark.parametrize(
    ("message", "flags", "expected"),
    [
        (
            "work() dispatches from an inbox: pass inbox=... or set TWILIO_TRIGGER_INBOX",
            WORKER_FLAGS,
            "work() dispatches from an inbox: pass --inbox URL or set TWILIO_TRIGGER_INBOX",
        ),
        (
            "on_sent takes a transaction (its second argument), which only a postgresql:// "
            "inbox or store gives: set inbox= or store= to a PostgreSQL URL",
            RUN_FLAGS,
            "on_sent takes a transaction (its second argument), which only a postgresql:// "
            "inbox or store gives: set --inbox or --store to a PostgreSQL URL",
        ),
        (
            "set inbox= or store= to a PostgreSQL URL",
            WORKER_FLAGS,
            "set --inbox or TWILIO_TRIGGER_STORE to a PostgreSQL URL",
        ),
        (
            "redis_durability=fsync answers 200 only once an event is on disk: choose "
            "another mode with redis_durability (TWILIO_TRIGGER_REDIS_DURABILITY): memory",
            RUN_FLAGS,
            "TWILIO_TRIGGER_REDIS_DURABILITY=fsync answers 200 only once an event is on disk: "
            "choose another mode with TWILIO_TRIGGER_REDIS_DURABILITY: memory",
        ),
        (
            "set redis_wait_timeout (TWILIO_TRIGGER_REDIS_WAIT_TIMEOUT) to 2 or more",
            RUN_FLAGS,
            "set TWILIO_TRIGGER_REDIS_WAIT_TIMEOUT to 2 or more",
        ),
        (
            "the inspector needs inspector=True and port (TWILIO_TRIGGER_PORT)",
            RUN_FLAGS,
            "the inspector needs --inspector and --port or TWILIO_TRIGGER_PORT",
        ),
        (
            # Words that are no option, and a URL's query, are left alone.
            "the folder /x does not exist (end the URL with ?create_folders=1); workers=2",
            RUN_FLAGS,
            "the folder /x does not exist (end the URL with ?create_folders=1); workers=2",
        ),
    ],
)
def test_python_wording_becomes_the_command_lines(
    message: str, flags: set[str], expected: str
) -> None:
    assert cli_wording(message, flags) == expected
