"""Where the `inbox` commands take --inbox and --schema from: after the command's
name, before it (``inbox --inbox URL stats``, as every example writes it), or the
environment; the command's own flag wins, then the group's, then the variable.

A bad value is blamed on the flag or the variable it came from.  Each command
runs on a real SQLite inbox file; PostgreSQL's --schema: test_inbox_options_postgres.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.test_inbox_sqlite import with_inbox
from twilio_trigger.inbox import State
from twilio_trigger.inbox.sqlite import SQLiteInbox
from twilio_trigger.testing import sms_status_params

from .conftest import invoke

DELIVERED = "SM" + "d" * 32
FAILED = "SM" + "f" * 32


def make_inbox(path: Path, dead: bool = True) -> str:
    """An inbox file with one pending event (and a dead letter), and its URL."""

    async def fill(inbox: SQLiteInbox) -> None:
        failed = sms_status_params("failed", sid=FAILED)
        await inbox.put("k1", "sms", FAILED, "failed", list(failed.items()))
        if dead:
            (claimed,) = await inbox.claim(1)
            await inbox.bury(claimed.id, "ValueError: no such order")
        delivered = sms_status_params("delivered", sid=DELIVERED)
        await inbox.put("k2", "sms", DELIVERED, "delivered", list(delivered.items()))

    with_inbox(path, fill)
    return f"sqlite:///{path}"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return make_inbox(tmp_path / "events.db")


# Each command, with arguments that succeed on the inbox above.
COMMANDS = {
    "stats": [],
    "list": ["--dead"],
    "show": ["1"],
    "replay": ["--dead"],
    "purge": ["--dead", "--older-than", "0s"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_inbox_can_be_named_before_the_command(url: str, command: str) -> None:
    result = invoke("inbox", "--inbox", url, command, *COMMANDS[command])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_inbox_can_be_named_after_the_command(url: str, command: str) -> None:
    result = invoke("inbox", command, *COMMANDS[command], "--inbox", url)
    assert result.exit_code == 0, result.output


def test_before_the_command_it_is_the_inbox_looked_into(url: str, tmp_path: Path) -> None:
    result = invoke("inbox", "--inbox", url, "list", "--dead")
    assert result.exit_code == 0, result.output
    assert FAILED in result.output
    assert DELIVERED not in result.output  # pending, not dead
    # and what a command changes is in that file
    replayed = invoke("inbox", "--inbox", url, "replay", "--dead")
    assert replayed.output == "1 event pending again\n"
    counts = with_inbox(tmp_path / "events.db", lambda inbox: inbox.stats())
    assert counts[State.DEAD] == 0
    assert counts[State.PENDING] == 2


def test_the_commands_own_inbox_wins_over_the_groups(url: str, tmp_path: Path) -> None:
    other = make_inbox(tmp_path / "other.db", dead=False)
    result = invoke("inbox", "--inbox", other, "stats", "--inbox", url)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"inbox {url}\n")
    assert f"  {'dead':<8} {1:>8}\n" in result.output  # other.db has no dead letter


def test_the_groups_inbox_wins_over_the_environment(url: str, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    result = invoke("inbox", "--inbox", url, "stats", env={"TWILIO_TRIGGER_INBOX": missing})
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"inbox {url}\n")


def test_the_environment_still_names_the_inbox(url: str) -> None:
    result = invoke("inbox", "list", env={"TWILIO_TRIGGER_INBOX": url})
    assert result.exit_code == 0, result.output
    assert FAILED in result.output


def test_the_help_says_where_the_options_go() -> None:
    group = invoke("inbox", "--help")
    assert "--inbox URL" in group.output
    assert "--schema NAME" in group.output
    assert "the command's own value wins" in " ".join(group.output.split())
    for command in COMMANDS:
        own = invoke("inbox", command, "--help")
        assert "--schema NAME" in own.output, command
        assert "the command's own wins" in " ".join(own.output.split()), command


# -- a bad value names where it came from -----------------------------------------------
def test_a_bad_inbox_flag_is_blamed_on_the_flag() -> None:
    for args in (["--inbox", "sqlite://events.db", "stats"], ["stats", "--inbox", "sqlite://x"]):
        result = invoke("inbox", *args)
        assert result.exit_code == 2, result.output
        assert "Invalid value for --inbox: --inbox must be a URL" in result.output
        assert "TWILIO_TRIGGER_INBOX" not in result.output


def test_a_bad_inbox_variable_is_blamed_on_the_variable() -> None:
    result = invoke("inbox", "stats", env={"TWILIO_TRIGGER_INBOX": "sqlite://events.db"})
    assert result.exit_code == 2, result.output
    assert "Error: TWILIO_TRIGGER_INBOX must be a URL such as sqlite:///events.db" in (
        result.output
    )
    assert "--inbox" not in result.output.split("(see")[0]


def test_a_bad_schema_names_the_flag_or_the_variable(url: str) -> None:
    flag = invoke("inbox", "--schema", "Bad-Name", "stats", "--inbox", url)
    assert flag.exit_code == 2, flag.output
    assert "Invalid value for --schema: 'Bad-Name' is not a schema name" in flag.output
    variable = invoke(
        "inbox", "stats", "--inbox", url, env={"TWILIO_TRIGGER_POSTGRES_SCHEMA": "Bad-Name"}
    )
    assert variable.exit_code == 2, variable.output
    assert "Error: TWILIO_TRIGGER_POSTGRES_SCHEMA: 'Bad-Name' is not a schema name" in (
        variable.output
    )


def test_a_bad_redis_prefix_names_its_variable() -> None:
    result = invoke(
        "inbox",
        "stats",
        "--inbox",
        "redis://127.0.0.1:6379/0",
        env={"TWILIO_TRIGGER_REDIS_PREFIX": "two words"},
    )
    assert result.exit_code == 2, result.output
    assert "Error: TWILIO_TRIGGER_REDIS_PREFIX must be a non-empty key prefix" in result.output
