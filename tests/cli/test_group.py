"""The group: help, version, and the one-line errors of the console script's ``main``."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import twilio_trigger

from .conftest import invoke, run_main

COMMANDS = ("demo", "inbox", "run", "send", "sign", "verify", "worker")


def test_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: twilio-trigger [OPTIONS] COMMAND [ARGS]...")
    listed = result.output.split("Commands:")[1].split()
    for command in COMMANDS:
        assert command in listed
    assert "twilio-trigger demo" in result.output


def test_short_help_option_is_the_same_as_long() -> None:
    assert invoke("-h").output == invoke("--help").output


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help_with_an_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: twilio-trigger {command} ")
    assert "Example" in result.output


@pytest.mark.parametrize("command", ["stats", "list", "show", "replay", "purge"])
def test_each_inbox_command_has_help(command: str) -> None:
    result = invoke("inbox", command, "-h")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: twilio-trigger inbox {command} ")
    assert "--inbox URL" in result.output


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"twilio-trigger, version {twilio_trigger.__version__}\n"


def test_an_unknown_command_is_a_usage_error() -> None:
    result = invoke("launch")
    assert result.exit_code == 2
    assert "No such command 'launch'" in result.output


def test_main_succeeds_with_status_0(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "--version")
    assert outcome.code == 0
    assert outcome.stdout == f"twilio-trigger, version {twilio_trigger.__version__}\n"
    assert outcome.stderr == ""


def test_main_prints_a_usage_error_on_one_line_with_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    outcome = run_main(capsys, "sign", "--url", "https://hooks.example.com/sms", "A=1")
    assert outcome.code == 2
    assert outcome.stdout == ""
    assert outcome.stderr == (
        "Error: no auth token: pass --auth-token or set TWILIO_AUTH_TOKEN "
        "(see 'twilio-trigger sign --help')\n"
    )


def test_main_joins_clicks_multi_line_messages(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "send", "fax", "delivered")
    assert outcome.code == 2
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: Invalid value for '{")
    assert "'fax' is not one of" in lines[0]
    assert lines[0].endswith("(see 'twilio-trigger send --help')")


def test_main_prints_a_failure_on_one_line_with_status_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outcome = run_main(capsys, "inbox", "stats", "--inbox", f"sqlite:///{tmp_path}/none.db")
    assert outcome.code == 1
    assert outcome.stderr == f"Error: no inbox at {tmp_path}/none.db\n"


def test_the_version_is_the_installed_distributions() -> None:
    assert twilio_trigger.__version__ == importlib.metadata.version("twilio-trigger")


@pytest.mark.parametrize(
    "command",
    [
        [str(Path(sys.executable).parent / "twilio-trigger")],
        [sys.executable, "-m", "twilio_trigger"],
    ],
    ids=["console-script", "python-m"],
)
def test_both_ways_of_running_it_print_the_same_version(command: list[str]) -> None:
    result = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    expected = importlib.metadata.version("twilio-trigger")
    assert result.stdout == f"twilio-trigger, version {expected}\n"
    assert result.stderr == ""


def test_importing_main_runs_nothing() -> None:
    # Only `python -m twilio_trigger` runs the command, not an import of the module.
    result = subprocess.run(
        [sys.executable, "-c", "import twilio_trigger.__main__; print('imported')"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "imported\n", "")


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twilio_trigger", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"twilio-trigger, version {twilio_trigger.__version__}\n"
