"""`twilio-trigger inbox list` with search options, on a real SQLite inbox file and
on a real PostgreSQL inbox: the events of ``tests/runtime/test_inbox_search.py``
and their decoys, found by each option."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result

from tests.inbox_backends import session_of
from tests.postgres_support import pg_schema, postgres_database
from tests.runtime.test_inbox_search import ALICE, EVENTS, SMA, Filled, fill, newest_first
from twilio_trigger.inbox.postgres import PostgresInbox
from twilio_trigger.inbox.sqlite import SQLiteInbox

from .conftest import invoke

__all__ = ["pg_schema", "postgres_database"]  # fixtures, for pytest


@pytest.fixture
def sqlite(tmp_path: Path) -> tuple[str, Filled]:
    path = tmp_path / "events.db"
    return f"sqlite:///{path}", fill(session_of(lambda: SQLiteInbox(path)))


def listed(filled: Filled, result: Result) -> list[str]:
    """The names of the events a `list` printed, in its order."""
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    if lines == ["no events"] or lines[0].startswith("no events in state"):
        return []
    by_id = {str(entry_id): name for name, entry_id in filled.ids.items()}
    return [by_id[line.split()[0]] for line in lines[1:]]


def search(url: str, *options: str) -> Result:
    return invoke("inbox", "list", "--inbox", url, *options)


def test_each_option_finds_its_events(sqlite: tuple[str, Filled]) -> None:
    url, filled = sqlite
    assert listed(filled, search(url, "--sid", SMA)) == ["old_delivered"]
    assert listed(filled, search(url, "--number", ALICE)) == ["old_failed", "old_delivered"]
    assert listed(filled, search(url, "--kind", "call")) == ["call_done", "call_failed"]
    assert listed(filled, search(url, "--status", "failed")) == ["call_failed", "old_failed"]
    assert listed(filled, search(url, "--outcome", "failed")) == newest_first(
        "old_failed", "call_failed", "capital_failed"
    )
    assert listed(filled, search(url, "--callback", "on_failed", "--kind", "sms")) == [
        "capital_failed",
        "old_failed",
    ]
    assert listed(filled, search(url, "--error-code", "30003")) == ["old_failed"]
    assert listed(filled, search(url, "--text", "WORLD")) == ["old_delivered"]
    assert listed(filled, search(url, "--text", "%")) == ["percent"]
    # The old flags still work, and agree with --outcome.
    assert listed(filled, search(url, "--dead")) == ["call_failed", "old_failed"]
    assert listed(filled, search(url, "--state", "dead", "--outcome", "dead")) == [
        "call_failed",
        "old_failed",
    ]


def test_since_and_until_take_dates_and_times_ago(sqlite: tuple[str, Filled]) -> None:
    url, filled = sqlite
    boundary = datetime.fromtimestamp(filled.boundary).astimezone().isoformat()
    after = list(EVENTS)[list(EVENTS).index("call_failed") :]
    assert listed(filled, search(url, "--since", boundary)) == newest_first(*after)
    assert listed(filled, search(url, "--until", boundary)) == ["old_failed", "old_delivered"]
    assert listed(filled, search(url, "--since", "1h")) == newest_first(*EVENTS)
    assert listed(filled, search(url, "--until", "1h")) == []
    tomorrow = datetime.fromtimestamp(filled.boundary + 86400).date().isoformat()
    assert listed(filled, search(url, "--until", tomorrow)) == newest_first(*EVENTS)


def test_pages_go_on_with_before(sqlite: tuple[str, Filled]) -> None:
    url, filled = sqlite
    names: list[str] = []
    options = ["--limit", "4"]
    for _ in range(5):
        result = search(url, *options)
        names += listed(filled, result)
        if "more: add --before" not in result.stderr:
            break
        before = result.stderr.split("--before ")[1].split()[0]
        options = ["--limit", "4", "--before", before]
    assert names == newest_first(*EVENTS)  # 9 events: pages of 4, 4 and 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--text", "x" * 201], "text is longer than 200 characters"),
        (["--number", "+1\x00"], "number must not hold control characters"),
        (["--callback", "on_nothing_at_all"], "is not one an event goes to"),
        (["--kind", "fax"], "kind must be one of"),
        (["--since", "yesterday"], "is not a date (2024-05-01)"),
        (["--since", "1e400d"], "since must be a finite time"),
        (["--since", "2h", "--until", "3h"], "since must be before until"),
        (["--dead", "--outcome", "done"], "--dead, --state and --outcome disagree"),
        (["--limit", "501"], "501 is not in the range 1<=x<=500"),
        (["--before", "0"], "0 is not in the range x>=1"),
    ],
)
def test_bad_options_are_usage_errors(
    sqlite: tuple[str, Filled], options: list[str], message: str
) -> None:
    url, _ = sqlite
    result = search(url, *options)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_hostile_text_finds_nothing(sqlite: tuple[str, Filled]) -> None:
    url, filled = sqlite
    for value in ("' OR 1=1 --", "_", "%%", '"]]'):
        assert listed(filled, search(url, "--sid", value)) == []
    assert listed(filled, search(url, "--text", "x'); DROP TABLE events; --")) == []
    assert listed(filled, search(url)) == newest_first(*EVENTS)


def test_search_on_postgresql(postgres_database: str, pg_schema: str) -> None:
    filled = fill(session_of(lambda: PostgresInbox(postgres_database, schema=pg_schema)))
    env = {"TWILIO_TRIGGER_POSTGRES_SCHEMA": pg_schema}
    result = invoke(
        "inbox", "list", "--inbox", postgres_database, "--number", ALICE[1:], "--limit", "2",
        env=env,
    )  # fmt: skip
    assert listed(filled, result) == ["longer_number", "old_failed"]
    assert f"more: add --before {filled.ids['old_failed']}" in result.stderr
    result = invoke(
        "inbox", "list", "--inbox", postgres_database, "--number", ALICE[1:], "--limit", "2",
        "--before", str(filled.ids["old_failed"]), env=env,
    )  # fmt: skip
    assert listed(filled, result) == ["old_delivered"]
    assert "more:" not in result.stderr
    result = invoke(
        "inbox", "list", "--inbox", postgres_database, "--callback", "on_received",
        "--text", "SURE", env=env,
    )  # fmt: skip
    assert listed(filled, result) == ["percent"]
