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
        "Error: cannot import cli_load_broken: RuntimeError: no database configured "
        "(cli_load_broken.py, line 1)\n"
    )


def test_a_missing_import_is_blamed_not_the_users_module(folder: Path) -> None:
    write(folder, "cli_load_orders", "import cli_load_orders_db  # not there\n")
    result = invoke("run", "cli_load_orders")
    assert result.exit_code == 1
    assert result.output == (
        "Error: cannot import cli_load_orders: ModuleNotFoundError: No module named "
        "'cli_load_orders_db' (cli_load_orders.py, line 1)\n"
    )


def test_a_file_path_is_loaded_from_its_folder(folder: Path) -> None:
    app = folder / "app"
    app.mkdir()
    write(app, "cli_load_file", "import cli_load_helper\n")
    write(app, "cli_load_helper", "VALUE = 2\n")
    result = invoke("run", str(app / "cli_load_file.py"))
    assert result.exit_code == 2  # its own folder is on the path: the helper is found
    assert f"no Listener at the top of {app / 'cli_load_file.py'}" in result.output


# -- where in the user's code the import failed ------------------------------------------------
def test_an_error_on_import_names_the_file_and_line(folder: Path) -> None:
    write(folder, "cli_load_ratio", "import json\n\nx = 1\n\n\n\ny = 1 / 0\n")
    result = invoke("run", "cli_load_ratio.py")
    assert result.exit_code == 1
    assert result.output == (
        "Error: cannot import cli_load_ratio.py: ZeroDivisionError: division by zero "
        "(cli_load_ratio.py, line 7)\n"
    )


def test_a_syntax_error_names_the_file_and_line(folder: Path) -> None:
    write(folder, "cli_load_syntax", "import os\n\ndef handler(:\n    pass\n")
    result = invoke("worker", "cli_load_syntax")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot import cli_load_syntax: SyntaxError: ")
    assert result.output.endswith(" (cli_load_syntax.py, line 3)\n")
    assert len(result.output.splitlines()) == 1


def test_an_error_deeper_in_the_users_code_lists_their_frames_only(folder: Path) -> None:
    write(
        folder,
        "cli_load_orders_db",
        """
        import json


        def connect():
            return json.loads("{not json")
        """,
    )
    write(
        folder, "cli_load_shop", "import cli_load_orders_db\n\ndb = cli_load_orders_db.connect()\n"
    )
    result = invoke("run", "cli_load_shop")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("Error: cannot import cli_load_shop: JSONDecodeError: Expecting")
    assert lines[0].endswith("(cli_load_orders_db.py, line 6)")
    # The user's two frames, outermost first; none of importlib's, json's or the package's.
    assert lines[1:] == [
        "  cli_load_shop.py, line 3, in <module>: db = cli_load_orders_db.connect()",
        '  cli_load_orders_db.py, line 6, in connect: return json.loads("{not json")',
    ]


def test_a_message_with_line_breaks_stays_on_one_line(folder: Path) -> None:
    write(folder, "cli_load_noisy", "raise RuntimeError('first\\nError: forged\\x1b[2J')\n")
    result = invoke("run", "cli_load_noisy")
    assert result.exit_code == 1
    assert result.output == (
        "Error: cannot import cli_load_noisy: RuntimeError: first\\nError: forged\\x1b[2J "
        "(cli_load_noisy.py, line 1)\n"
    )


def test_a_listener_built_with_a_bad_option_names_the_line(folder: Path) -> None:
    write(
        folder,
        "cli_load_badport",
        """
        import twilio_trigger as twilio

        listener = twilio.Listener(port="eighty")
        """,
    )
    result = invoke("run", "cli_load_badport")
    assert result.exit_code == 1
    assert result.output == (
        "Error: port must be a whole number, got 'eighty' (cli_load_badport.py, line 4)\n"
    )
