"""How `run` and `worker` find the user's listener, and how they say they cannot.

Every case here fails before anything is served; serving is tested with real
processes in tests/test_cli.py and tests/e2e/.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import invoke

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working directory, for the user's modules; they are forgotten after the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("cli_load_"):
            del sys.modules[name]


def write(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


@pytest.mark.parametrize("command", ["run", "worker"])
def test_a_missing_module_is_a_usage_error(folder: Path, command: str) -> None:
    result = invoke(command, "cli_load_absent")
    assert result.exit_code == 2
    assert "no module named 'cli_load_absent' (run from the folder that holds it)" in (
        result.output
    )


def test_a_missing_file_is_a_usage_error(folder: Path) -> None:
    result = invoke("run", "nowhere/cli_load_app.py")
    assert result.exit_code == 2
    assert "no file nowhere/cli_load_app.py" in result.output


def test_a_module_without_a_listener_is_a_usage_error(folder: Path) -> None:
    write(folder, "cli_load_empty", "VALUE = 1\n")
    result = invoke("run", "cli_load_empty")
    assert result.exit_code == 2
    assert "no Listener at the top of cli_load_empty" in result.output


def test_several_listeners_are_named_for_the_user_to_choose(folder: Path) -> None:
    write(
        folder,
        "cli_load_two",
        """
        import twilio_trigger as twilio

        second = twilio.Listener(path="/calls")
        first = twilio.Listener()
        """,
    )
    result = invoke("run", "cli_load_two")
    assert result.exit_code == 2
    assert "several listeners, say which: cli_load_two:first, cli_load_two:second" in (
        result.output
    )


def test_an_attribute_must_exist_and_be_a_listener(folder: Path) -> None:
    write(folder, "cli_load_named", "import logging\n\nlog = logging.getLogger(__name__)\n")
    absent = invoke("worker", "cli_load_named:listener")
    assert absent.exit_code == 2
    assert "cli_load_named has no 'listener'" in absent.output
    other = invoke("run", "cli_load_named:log")
    assert other.exit_code == 2
    assert "cli_load_named:log is a Logger, not a twilio_trigger.Listener" in other.output


def test_a_module_that_raises_on_import_fails_in_one_line(folder: Path) -> None:
    write(folder, "cli_load_broken", "raise RuntimeError('no database configured')\n")
    result = invoke("run", "cli_load_broken")
    assert result.exit_code == 1
    assert result.output == (
        "Error: importing cli_load_broken failed: RuntimeError: no database configured\n"
    )


def test_a_missing_import_is_blamed_not_the_users_module(folder: Path) -> None:
    write(folder, "cli_load_orders", "import cli_load_orders_db  # not there\n")
    result = invoke("run", "cli_load_orders")
    assert result.exit_code == 1
    assert "importing cli_load_orders failed: No module named 'cli_load_orders_db'" in (
        result.output
    )


def test_a_file_path_is_loaded_from_its_folder(folder: Path) -> None:
    app = folder / "app"
    app.mkdir()
    write(app, "cli_load_file", "import cli_load_helper\n")
    write(app, "cli_load_helper", "VALUE = 2\n")
    result = invoke("run", str(app / "cli_load_file.py"))
    assert result.exit_code == 2  # its own folder is on the path: the helper is found
    assert f"no Listener at the top of {app / 'cli_load_file.py'}" in result.output
