"""The `inbox` commands on a real SQLite inbox file, filled as a listener fills it.

What the commands change is read back through the inbox itself, on its own
connection, once each command has returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.runtime.test_inbox_sqlite import with_inbox
from twilio_trigger.inbox import Entry, State
from twilio_trigger.inbox.sqlite import SQLiteInbox
from twilio_trigger.testing import call_status_params, sms_status_params

from .conftest import invoke

_T = TypeVar("_T")

DELIVERED = "SM" + "d" * 32
FAILED = "SM" + "f" * 32
RINGING = "CA" + "c" * 32
TRACEBACK = 'Traceback (most recent call last):\n  File "app.py"\nValueError: no such order'


@dataclass(frozen=True)
class Filled:
    """An inbox file with one event done, one dead and one pending, and its URL."""

    path: Path
    done: int
    dead: int
    pending: int

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def entry(self, entry_id: int) -> Entry | None:
        return with_inbox(self.path, lambda inbox: inbox.get(entry_id))

    def stats(self) -> dict[State, int]:
        return with_inbox(self.path, lambda inbox: inbox.stats())


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    path = tmp_path / "events.db"

    async def fill(inbox: SQLiteInbox) -> tuple[int, int, int]:
        delivered = sms_status_params("delivered", sid=DELIVERED)
        failed = sms_status_params("failed", sid=FAILED, ErrorCode=30003)
        ringing = call_status_params("ringing", sid=RINGING)
        await inbox.put("k1", "sms", DELIVERED, "delivered", list(delivered.items()))
        await inbox.put("k2", "sms", FAILED, "failed", list(failed.items()))
        done, dead = await inbox.claim(2)
        await inbox.succeed(done.id)
        await inbox.bury(dead.id, TRACEBACK)
        await inbox.put("k3", "call", RINGING, "ringing", list(ringing.items()))
        (pending,) = await inbox.entries(State.PENDING)
        return done.id, dead.id, pending.id

    return Filled(path, *with_inbox(path, fill))


# -- where the inbox is ------------------------------------------------------------------
def test_without_an_inbox_it_is_a_usage_error() -> None:
    result = invoke("inbox", "stats")
    assert result.exit_code == 2
    assert "no inbox: pass --inbox sqlite:///path/events.db or set TWILIO_TRIGGER_INBOX" in (
        result.output
    )


def test_the_inbox_comes_from_the_environment(filled: Filled) -> None:
    result = invoke("inbox", "stats", env={"TWILIO_TRIGGER_INBOX": filled.url})
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"inbox {filled.url}\n")


def test_a_missing_inbox_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    result = invoke("inbox", "list", "--inbox", f"sqlite:///{path}")
    assert result.exit_code == 1
    assert f"Error: no inbox at {path}" in result.output
    assert not path.exists()


def test_an_inbox_url_of_another_scheme_is_refused() -> None:
    result = invoke("inbox", "stats", "--inbox", "ftp://example.com/events")
    assert result.exit_code == 2
    assert "inbox must be a URL such as sqlite:///events.db" in result.output


def test_a_file_that_is_not_an_inbox_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the droids" * 100)
    result = invoke("inbox", "stats", "--inbox", f"sqlite:///{path}")
    assert result.exit_code == 1
    assert f"Error: cannot read the inbox sqlite:///{path}: " in result.output


# -- stats, list, show -------------------------------------------------------------------
def test_stats_counts_each_state(filled: Filled) -> None:
    result = invoke("inbox", "stats", "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    now, counted = result.output.split("counted since")
    counts = dict(re.findall(r"^  (\w+) +(\d+)$", now, re.MULTILINE))
    assert counts == {"pending": "1", "running": "0", "done": "1", "dead": "1"}
    assert re.search(r"^  received +3$", counted, re.MULTILINE), counted


def test_list_shows_every_event_newest_first(filled: Filled) -> None:
    result = invoke("inbox", "list", "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == [
        "ID", "RECEIVED", "KIND", "STATUS", "SID", "STATE", "TRIES", "LAST", "ERROR",
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == [str(filled.pending), str(filled.dead),
                                                str(filled.done)]  # fmt: skip
    assert [row.split()[3:5] for row in rows] == [
        ["call", "ringing"], ["sms", "failed"], ["sms", "delivered"],
    ]  # fmt: skip
    dead = rows[1]
    assert FAILED in dead
    assert dead.split()[6:8] == ["dead", "1"]
    assert dead.endswith("ValueError: no such order")  # the last line of the error


def test_list_dead_shows_the_dead_letters_only(filled: Filled) -> None:
    result = invoke("inbox", "list", "--dead", "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()[1:]
    assert len(rows) == 1
    assert rows[0].split()[0] == str(filled.dead)


def test_list_by_state_and_limit(filled: Filled) -> None:
    done = invoke("inbox", "list", "--state", "done", "--inbox", filled.url)
    assert [row.split()[0] for row in done.output.splitlines()[1:]] == [str(filled.done)]
    limited = invoke("inbox", "list", "--limit", "1", "--inbox", filled.url)
    assert [row.split()[0] for row in limited.stdout.splitlines()[1:]] == [str(filled.pending)]


def test_list_says_when_no_event_is_in_a_state(filled: Filled) -> None:
    result = invoke("inbox", "list", "--state", "running", "--inbox", filled.url)
    assert result.exit_code == 0
    assert result.output == "no events in state running\n"


def test_list_rejects_an_unknown_state(filled: Filled) -> None:
    result = invoke("inbox", "list", "--state", "lost", "--inbox", filled.url)
    assert result.exit_code == 2
    assert "'lost' is not one of" in result.output


def test_show_prints_an_event_its_parameters_and_its_error(filled: Filled) -> None:
    result = invoke("inbox", "show", str(filled.dead), "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"event {filled.dead}: sms {FAILED} (failed)"
    assert lines[1].split() == ["state", "dead"]
    assert lines[2].split() == ["attempts", "1"]
    assert lines[5].split() == ["delivery", "key", "k2"]
    assert "next attempt" not in result.output  # a dead letter has none
    shown = dict(line.split(None, 1) for line in lines[7 : lines.index("  last error")])
    assert shown["MessageSid"] == FAILED
    assert shown["ErrorCode"] == "30003"
    assert lines[-1] == "    ValueError: no such order"


def test_list_and_show_escape_what_came_in_a_request(tmp_path: Path) -> None:
    # A request's values reach the terminal escaped: no colour change, no forged line.
    path = tmp_path / "events.db"
    hostile = "\x1b[31mred\nforged line\u202e"

    async def fill(inbox: SQLiteInbox) -> int:
        params = [*sms_status_params("failed", sid=FAILED).items(), ("Body", hostile)]
        await inbox.put("k\x1b", "sms", FAILED + "\x1b[2J", "failed\n", params)
        (entry,) = await inbox.entries()
        return entry.id

    entry_id = with_inbox(path, fill)
    for args in (["list"], ["show", str(entry_id)]):
        result = invoke("inbox", *args, "--inbox", f"sqlite:///{path}")
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output, args
        assert "\u202e" not in result.output, args
        assert "forged line" not in result.output.splitlines()[-1], args
    assert "\\x1b[31mred\\nforged line\\u202e" in result.output


def test_show_of_a_pending_event_says_when_it_runs_next(filled: Filled) -> None:
    result = invoke("inbox", "show", str(filled.pending), "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    assert f"event {filled.pending}: call {RINGING} (ringing)" in result.output
    assert re.search(r"^  next attempt   \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", result.output, re.M)
    assert re.search(r"^  finished       -$", result.output, re.M)
    assert "last error" not in result.output


def test_show_of_a_missing_event_fails(filled: Filled) -> None:
    result = invoke("inbox", "show", "999", "--inbox", filled.url)
    assert result.exit_code == 1
    assert "Error: no event 999 in the inbox" in result.output


# -- replay ------------------------------------------------------------------------------
def test_replay_dead_makes_the_dead_letters_pending_with_fresh_attempts(filled: Filled) -> None:
    result = invoke("inbox", "replay", "--dead", "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    assert result.output == "1 event pending again\n"
    entry = filled.entry(filled.dead)
    assert entry is not None
    assert (entry.state, entry.attempts, entry.finished_at) == (State.PENDING, 0, None)
    assert filled.stats()[State.DEAD] == 0


def test_replay_by_id(filled: Filled) -> None:
    result = invoke("inbox", "replay", str(filled.done), str(filled.dead), "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    assert result.output == "2 events pending again\n"
    assert filled.stats()[State.PENDING] == 3


def test_replay_says_which_ids_it_could_not_replay(filled: Filled) -> None:
    result = invoke("inbox", "replay", str(filled.done), "999", "--inbox", filled.url)
    assert result.exit_code == 0
    assert result.stderr == "1 of the events given are missing or running now\n"
    assert result.stdout == "1 event pending again\n"
    missing = invoke("inbox", "replay", "998", "999", "--inbox", filled.url)
    assert missing.exit_code == 1
    assert missing.stdout == "0 events pending again\n"


@pytest.mark.parametrize("args", [[], ["--dead", "1"]])
def test_replay_needs_ids_or_dead_not_both(filled: Filled, args: list[str]) -> None:
    result = invoke("inbox", "replay", *args, "--inbox", filled.url)
    assert result.exit_code == 2
    assert "give event IDs or --dead (not both)" in result.output
    assert filled.stats()[State.DEAD] == 1


# -- purge -------------------------------------------------------------------------------
def test_purge_keeps_what_finished_more_recently_than_the_age(filled: Filled) -> None:
    result = invoke("inbox", "purge", "--dead", "--older-than", "7d", "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    assert result.output == "0 dead events purged\n"
    assert filled.entry(filled.dead) is not None


def test_purge_deletes_the_dead_letters_old_enough(filled: Filled) -> None:
    result = invoke("inbox", "purge", "--dead", "--older-than", "0s", "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    assert result.output == "1 dead event purged\n"
    assert filled.entry(filled.dead) is None
    assert filled.stats() == {State.PENDING: 1, State.RUNNING: 0, State.DONE: 1, State.DEAD: 0}


def test_purge_done_deletes_handled_events_only(filled: Filled) -> None:
    result = invoke("inbox", "purge", "--done", "--older-than", "0", "--inbox", filled.url)
    assert result.exit_code == 0, result.output
    assert result.output == "1 done event purged\n"
    assert filled.stats() == {State.PENDING: 1, State.RUNNING: 0, State.DONE: 0, State.DEAD: 1}


def test_purge_needs_to_be_told_what(filled: Filled) -> None:
    result = invoke("inbox", "purge", "--older-than", "1d", "--inbox", filled.url)
    assert result.exit_code == 2
    assert "say what to purge: --dead or --done" in result.output


@pytest.mark.parametrize(
    ("age", "message"),
    [
        ("soon", "'soon' is not a duration such as 45s, 30m, 12h or 7d"),
        ("3y", "'3y' is not a duration"),
        ("-1h", "a duration is not negative"),
    ],
)
def test_purge_rejects_an_age_that_is_not_a_duration(
    filled: Filled, age: str, message: str
) -> None:
    result = invoke("inbox", "purge", "--dead", "--older-than", age, "--inbox", filled.url)
    assert result.exit_code == 2
    assert message in result.output
    assert filled.stats()[State.DEAD] == 1
