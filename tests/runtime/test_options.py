"""The options table: one declaration per option, and everything derived from it agrees."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from twilio_trigger import ConfigurationError, Listener
from twilio_trigger._config import ENVIRONMENT, RENAMED, Settings, _told
from twilio_trigger._options import OPTIONS, SECTIONS, click_options, markdown_table

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
RENAMED_PARAMETERS = {"workers"}  # deprecated names, kept for one release


def test_every_option_is_a_parameter_of_the_listener_with_the_table_default() -> None:
    parameters = inspect.signature(Listener).parameters
    current = [name for name in parameters if name not in RENAMED_PARAMETERS]
    assert current == [option.name for option in OPTIONS]
    for option in OPTIONS:
        assert parameters[option.name].default == option.default, option.name
    assert set(parameters) - set(current) == set(RENAMED) == RENAMED_PARAMETERS
    for old in RENAMED:
        assert parameters[old].default is None
    assert next(iter(parameters.values())).kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(parameters.values())[1:])


def test_every_option_is_a_setting_with_the_table_default() -> None:
    fields = dataclasses.fields(Settings)
    assert [f.name for f in fields] == [option.name for option in OPTIONS]
    for f, option in zip(fields, OPTIONS, strict=True):
        assert f.default == option.default, option.name
    defaults = Settings.resolve({}, {})
    for option in OPTIONS:
        assert getattr(defaults, option.name) == option.default


def test_each_default_is_a_value_its_parser_accepts() -> None:
    for option in OPTIONS:
        if option.default is not None:
            assert option.parse(option.default, option.name) == option.default, option.name
            text = option.text(option.default)
            if text:
                assert option.parse(text, option.env) == option.default, option.name


def test_the_environment_variables_come_from_the_table() -> None:
    assert {option.name: option.env for option in OPTIONS} == ENVIRONMENT
    variables = [option.env for option in OPTIONS]
    assert len(set(variables)) == len(variables)
    assert all(v.startswith("TWILIO_TRIGGER_") or v == "TWILIO_AUTH_TOKEN" for v in variables)


def test_every_option_has_one_line_of_help_and_a_section() -> None:
    for option in OPTIONS:
        assert option.help, option.name
        assert "\n" not in option.help, option.name
        assert option.section in SECTIONS
    assert OPTIONS["port"] is OPTIONS.port
    with pytest.raises(KeyError):
        OPTIONS["workers"]


# -- docs/configuration.md ------------------------------------------------------------------------
ROW = re.compile(r"^\| `(\w+)` \| `(\w+)` \| (.+?) \| .* \|$", re.M)


def test_the_configuration_tables_are_those_of_the_table() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    for section in SECTIONS:
        block = re.search(
            rf"<!-- options-table: {section}\b[^>]*-->\n(.*?)<!-- /options-table -->", text, re.S
        )
        assert block is not None, f"docs/configuration.md has no table of the {section} options"
        assert block.group(1) == markdown_table(section) + "\n", (
            f"docs/configuration.md's {section} options differ from "
            f"src/twilio_trigger/_options.py: run scripts/options-table"
        )


def test_the_configuration_page_shows_every_option_once_with_its_default() -> None:
    rows = ROW.findall(CONFIGURATION.read_text(encoding="utf-8"))
    shown = {name: (variable, default) for name, variable, default in rows}
    assert len(rows) == len(shown), "an option is in two tables"
    for option in OPTIONS:
        assert option.name in shown, f"docs/configuration.md misses {option.name}"
        assert shown[option.name] == (option.env, option.shown_default), option.name


def test_the_script_finds_the_configuration_page_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "options-table"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# -- the command line's flags ----------------------------------------------------------
@click.command()
@click_options("port", "file_mode", "verify_signatures", "concurrency", "inbox")
def command(**flags: object) -> None:
    click.echo(repr(sorted(flags.items())))


def test_click_options_parse_with_the_tables_parsers() -> None:
    runner = CliRunner()
    result = runner.invoke(command, ["--port", "0", "--file-mode", "640", "--concurrency", "8"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == repr(
        [
            ("concurrency", 8),
            ("file_mode", 0o640),
            ("inbox", None),
            ("port", 0),
            ("verify_signatures", None),
        ]
    )
    assert OPTIONS.file_mode.text(0o640) == "640"
    result = runner.invoke(command, ["--verify-signatures"])
    assert "('verify_signatures', True)" in result.output


def test_click_options_refuse_what_the_parser_refuses() -> None:
    result = CliRunner().invoke(command, ["--port", "70000"])
    assert result.exit_code == 2
    assert "--port must be between 0 and 65535" in result.output
    result = CliRunner().invoke(command, ["--inbox", "mysql://db/x"])
    assert result.exit_code == 2
    assert "sqlite:///events.db" in result.output


def test_click_options_show_the_default_in_their_help() -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert "[default: 8090]" in result.output
    assert "[default: 600]" in result.output


# -- concurrency, formerly workers -------------------------------------------------------
def test_concurrency_from_argument_environment_and_default() -> None:
    variable = "TWILIO_TRIGGER_CONCURRENCY"
    assert Settings.resolve({"concurrency": 2}, {variable: "3"}).concurrency == 2
    assert Settings.resolve({}, {variable: "3"}).concurrency == 3
    assert Settings.resolve({}, {}).concurrency == 4
    with pytest.raises(ConfigurationError, match=variable):
        Settings.resolve({}, {variable: "0"})
    assert Listener(0, concurrency=7).settings.concurrency == 7


def test_the_former_name_workers_still_works_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="workers is deprecated: use concurrency"):
        listener = Listener(0, workers=3)
    assert listener.settings.concurrency == 3


def test_the_warning_points_at_the_caller() -> None:
    with pytest.warns(DeprecationWarning, match="workers") as caught:
        Listener(0, workers=3)
    assert caught[0].filename == __file__


def test_the_former_variable_still_works_with_a_warning_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # In the log, which the command line shows: a DeprecationWarning would be
    # hidden there, and it is an operator's setting, not code.
    caplog.set_level(logging.WARNING, logger="twilio_trigger")
    _told.discard("TWILIO_TRIGGER_WORKERS")
    environ = {"TWILIO_TRIGGER_WORKERS": "6"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings.resolve({}, environ).concurrency == 6
        assert Settings.resolve({}, environ).concurrency == 6  # said once
    assert [r.getMessage() for r in caplog.records] == [
        "TWILIO_TRIGGER_WORKERS is deprecated: set TWILIO_TRIGGER_CONCURRENCY instead "
        "(the same value)"
    ]
    with pytest.raises(ConfigurationError, match="WORKERS"):
        Settings.resolve({}, {"TWILIO_TRIGGER_WORKERS": "many"})
    # The new variable, or an argument, wins, and nothing more is said.
    caplog.clear()
    _told.discard("TWILIO_TRIGGER_WORKERS")
    both = {"TWILIO_TRIGGER_WORKERS": "6", "TWILIO_TRIGGER_CONCURRENCY": "2"}
    assert Settings.resolve({}, both).concurrency == 2
    assert Settings.resolve({"concurrency": 1}, environ).concurrency == 1
    assert caplog.records == []


def test_the_former_and_the_new_name_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        Listener(0, workers=2, concurrency=3)


@pytest.mark.parametrize(
    ("given", "meant"), [("auth_token", "auth_tokens"), ("prot", "port"), ("inbx", "inbox")]
)
def test_a_misspelt_option_names_the_one_meant(given: str, meant: str) -> None:
    make: Any = Listener  # a keyword the signature does not have, on purpose
    with pytest.raises(TypeError) as raised:
        make(**{given: "x"})
    assert str(raised.value) == (
        f"Listener() got an unexpected keyword argument {given!r}: did you mean {meant}? "
        "(the options are in docs/configuration.md)"
    )


def test_an_unknown_option_like_none_is_named_without_a_guess() -> None:
    make: Any = Listener
    with pytest.raises(TypeError, match=r"argument 'zzz' \(the options are in"):
        make(zzz=1)
