"""The `inbox` commands on a real PostgreSQL inbox, filled as a listener fills it.

Each test works in a schema of its own (``pg_schema``) in the run's database,
named to the commands by ``TWILIO_TRIGGER_POSTGRES_SCHEMA`` (or ``--schema`` for
``migrate``).  What the commands change is read back through the inbox itself, on
connections of its own, once each command has returned.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from click.testing import Result

from tests.postgres_support import free_port, pg_schema, postgres_database, scalar
from twilio_trigger.inbox import Entry, State
from twilio_trigger.inbox.postgres import PostgresInbox
from twilio_trigger.testing import call_status_params, sms_status_params

from .conftest import invoke

__all__ = ["pg_schema", "postgres_database"]  # the fixtures, imported for pytest to find

_T = TypeVar("_T")

DELIVERED = "SM" + "d" * 32
FAILED = "SM" + "f" * 32
RINGING = "CA" + "c" * 32
TRACEBACK = 'Traceback (most recent call last):\n  File "app.py"\nValueError: no such order'
SCHEMA_VARIABLE = "TWILIO_TRIGGER_POSTGRES_SCHEMA"
SRC = Path(__file__).resolve().parents[2] / "src"


def with_inbox(url: str, schema: str, work: Callable[[PostgresInbox], Awaitable[_T]]) -> _T:
    """Run *work* on the inbox in *schema*, opened and closed around it."""

    async def session() -> _T:
        inbox = PostgresInbox(url, schema=schema)
        await inbox.open()
        try:
            return await work(inbox)
        finally:
            await inbox.close()

    return asyncio.run(session())


def sql(schema: str, text: str) -> str:
    """*text* with ``{s}`` made the quoted *schema* (a name the fixture made)."""
    return text.replace("{s}", f'"{schema}"')


@dataclass(frozen=True)
class Filled:
    """A PostgreSQL inbox with one event done, one dead and one pending."""

    url: str
    schema: str
    done: int
    dead: int
    pending: int

    @property
    def env(self) -> dict[str, str]:
        return {SCHEMA_VARIABLE: self.schema}

    def run(self, *args: str) -> Result:
        """``twilio-trigger inbox ARGS --inbox URL``, the schema from the environment."""
        return invoke("inbox", *args, "--inbox", self.url, env=self.env)

    def entry(self, entry_id: int) -> Entry | None:
        return with_inbox(self.url, self.schema, lambda inbox: inbox.get(entry_id))

    def stats(self) -> dict[State, int]:
        return with_inbox(self.url, self.schema, lambda inbox: inbox.stats())


@pytest.fixture
def filled(postgres_database: str, pg_schema: str) -> Filled:
    async def fill(inbox: PostgresInbox) -> tuple[int, int, int]:
        delivered = sms_status_params("delivered", sid=DELIVERED, Body="Grüße ✓")
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

    return Filled(postgres_database, pg_schema, *with_inbox(postgres_database, pg_schema, fill))


def versions(url: str, schema: str) -> object:
    return scalar(
        url, sql(schema, "SELECT array_agg(version ORDER BY version) FROM {s}.schema_version")
    )


def schema_exists(url: str, schema: str) -> bool:
    return scalar(url, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)) == 1


# -- migrate ---------------------------------------------------------------------------------------
def test_migrate_creates_the_tables_then_says_they_are_there(
    postgres_database: str, pg_schema: str
) -> None:
    first = invoke("inbox", "migrate", "--inbox", postgres_database, "--schema", pg_schema)
    assert first.exit_code == 0, first.output
    assert re.fullmatch(
        rf"schema {pg_schema} of postgresql://\S+/\S+: tables created to version 3\n", first.output
    ), first.output
    assert versions(postgres_database, pg_schema) == [1, 2, 3]
    again = invoke("inbox", "migrate", "--inbox", postgres_database, "--schema", pg_schema)
    assert again.exit_code == 0, again.output
    assert again.output.endswith(": the tables are at version 3 already\n"), again.output
    assert f"schema {pg_schema} of " in again.output
    assert versions(postgres_database, pg_schema) == [1, 2, 3]

    # The tables made are those the inbox uses: it opens them without migrating.
    async def opened() -> bool:
        inbox = PostgresInbox(postgres_database, schema=pg_schema, migrate=False)
        try:
            await inbox.open()
            return await inbox.put("k1", "sms", DELIVERED, "sent", [("MessageStatus", "sent")])
        finally:
            await inbox.close()

    assert asyncio.run(opened()) is True


def test_migrate_takes_the_schema_from_the_environment(
    postgres_database: str, pg_schema: str
) -> None:
    result = invoke(
        "inbox", "migrate", "--inbox", postgres_database, env={SCHEMA_VARIABLE: pg_schema}
    )
    assert result.exit_code == 0, result.output
    assert f"schema {pg_schema} of " in result.output
    assert "created to version 3" in result.output
    assert versions(postgres_database, pg_schema) == [1, 2, 3]


def test_migrate_takes_the_inbox_from_the_environment(
    postgres_database: str, pg_schema: str
) -> None:
    result = invoke(
        "inbox",
        "migrate",
        "--schema",
        pg_schema,
        env={"TWILIO_TRIGGER_INBOX": postgres_database},
    )
    assert result.exit_code == 0, result.output
    assert versions(postgres_database, pg_schema) == [1, 2, 3]


def test_migrate_hides_the_password_of_the_url(postgres_database: str, pg_schema: str) -> None:
    # The shared cluster trusts every connection: any password is accepted.
    url = postgres_database.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
    result = invoke("inbox", "migrate", "--inbox", url, "--schema", pg_schema)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "postgres:***@" in result.output


def test_migrate_of_a_sqlite_inbox_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    result = invoke("inbox", "migrate", "--inbox", f"sqlite:///{path}")
    assert result.exit_code == 2, result.output
    assert "only a postgresql:// inbox has tables to create" in result.output
    assert not path.exists()


@pytest.mark.parametrize("name", ["Bad-Name", "1abc", "a b"])
def test_migrate_refuses_a_schema_that_is_not_a_name(postgres_database: str, name: str) -> None:
    result = invoke("inbox", "migrate", "--inbox", postgres_database, "--schema", name)
    assert result.exit_code == 2, result.output
    assert "is not a schema name" in result.output


def test_migrate_refuses_tables_of_a_newer_release(postgres_database: str, pg_schema: str) -> None:
    assert (
        invoke("inbox", "migrate", "--inbox", postgres_database, "--schema", pg_schema).exit_code
        == 0
    )
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(sql(pg_schema, "INSERT INTO {s}.schema_version (version) VALUES (7)"))
    result = invoke("inbox", "migrate", "--inbox", postgres_database, "--schema", pg_schema)
    assert result.exit_code == 1, result.output
    assert "newer" in result.output
    assert "Traceback" not in result.output
    assert versions(postgres_database, pg_schema) == [1, 2, 3, 7]


# -- stats, list, show -----------------------------------------------------------------------------
def test_stats_counts_each_state(filled: Filled) -> None:
    result = filled.run("stats")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("inbox postgresql://")
    counts = dict(re.findall(r"^  (\w+) +(\d+)$", result.output.split("counted")[0], re.MULTILINE))
    assert counts == {"pending": "1", "running": "0", "done": "1", "dead": "1"}


def test_stats_of_another_schema_is_another_inbox(filled: Filled, postgres_database: str) -> None:
    other = filled.schema + "_other"
    with_inbox(postgres_database, other, lambda inbox: inbox.stats())
    try:
        result = invoke("inbox", "stats", "--inbox", filled.url, env={SCHEMA_VARIABLE: other})
    finally:
        with psycopg.connect(postgres_database, autocommit=True) as connection:
            connection.execute(sql(other, "DROP SCHEMA IF EXISTS {s} CASCADE"))
    assert result.exit_code == 0, result.output
    counts = dict(re.findall(r"^  (\w+) +(\d+)$", result.output.split("counted")[0], re.MULTILINE))
    assert counts == {"pending": "0", "running": "0", "done": "0", "dead": "0"}


def test_list_shows_every_event_newest_first(filled: Filled) -> None:
    result = filled.run("list")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == [
        "ID", "RECEIVED", "KIND", "STATUS", "SID", "STATE", "TRIES", "LAST", "ERROR",
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == [
        str(filled.pending), str(filled.dead), str(filled.done),
    ]  # fmt: skip
    assert [row.split()[3:5] for row in rows] == [
        ["call", "ringing"], ["sms", "failed"], ["sms", "delivered"],
    ]  # fmt: skip
    dead = rows[1]
    assert FAILED in dead
    assert dead.split()[6:8] == ["dead", "1"]
    assert dead.endswith("ValueError: no such order")


def test_list_by_state_and_limit(filled: Filled) -> None:
    dead = filled.run("list", "--dead")
    assert dead.exit_code == 0, dead.output
    assert [row.split()[0] for row in dead.output.splitlines()[1:]] == [str(filled.dead)]
    done = filled.run("list", "--state", "done")
    assert [row.split()[0] for row in done.output.splitlines()[1:]] == [str(filled.done)]
    limited = filled.run("list", "--limit", "1")
    assert [row.split()[0] for row in limited.stdout.splitlines()[1:]] == [str(filled.pending)]
    running = filled.run("list", "--state", "running")
    assert running.exit_code == 0
    assert running.output == "no events in state running\n"


def test_show_prints_an_event_its_parameters_and_its_error(filled: Filled) -> None:
    result = filled.run("show", str(filled.dead))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"event {filled.dead}: sms {FAILED} (failed)"
    assert lines[1].split() == ["state", "dead"]
    assert lines[2].split() == ["attempts", "1"]
    assert lines[5].split() == ["delivery", "key", "k2"]
    assert "next attempt" not in result.output
    shown = dict(line.split(None, 1) for line in lines[7 : lines.index("  last error")])
    assert shown["MessageSid"] == FAILED
    assert shown["ErrorCode"] == "30003"
    assert lines[-1] == "    ValueError: no such order"


def test_show_keeps_non_ascii_parameters(filled: Filled) -> None:
    result = filled.run("show", str(filled.done))
    assert result.exit_code == 0, result.output
    assert re.search(r"^    Body +Grüße ✓$", result.output, re.M), result.output
    assert re.search(r"^  finished       \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", result.output, re.M)


def test_show_of_a_pending_event_says_when_it_runs_next(filled: Filled) -> None:
    result = filled.run("show", str(filled.pending))
    assert result.exit_code == 0, result.output
    assert f"event {filled.pending}: call {RINGING} (ringing)" in result.output
    assert re.search(r"^  next attempt   \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", result.output, re.M)
    assert re.search(r"^  finished       -$", result.output, re.M)
    assert "last error" not in result.output


def test_show_of_a_missing_event_fails(filled: Filled) -> None:
    result = filled.run("show", "999999")
    assert result.exit_code == 1
    assert "Error: no event 999999 in the inbox" in result.output


# -- replay, purge ---------------------------------------------------------------------------------
def test_replay_dead_makes_the_dead_letters_pending_with_fresh_attempts(filled: Filled) -> None:
    result = filled.run("replay", "--dead")
    assert result.exit_code == 0, result.output
    assert result.output == "1 event pending again\n"
    entry = filled.entry(filled.dead)
    assert entry is not None
    assert (entry.state, entry.attempts, entry.finished_at) == (State.PENDING, 0, None)
    assert filled.stats() == {State.PENDING: 2, State.RUNNING: 0, State.DONE: 1, State.DEAD: 0}


def test_replay_by_id(filled: Filled) -> None:
    result = filled.run("replay", str(filled.done), str(filled.dead))
    assert result.exit_code == 0, result.output
    assert result.output == "2 events pending again\n"
    assert filled.stats()[State.PENDING] == 3


def test_replay_says_which_ids_it_could_not_replay(filled: Filled) -> None:
    result = filled.run("replay", str(filled.done), "999999")
    assert result.exit_code == 0
    assert result.stderr == "1 of the events given are missing or running now\n"
    assert result.stdout == "1 event pending again\n"
    missing = filled.run("replay", "999998", "999999")
    assert missing.exit_code == 1
    assert missing.stdout == "0 events pending again\n"


def test_replay_leaves_a_running_event_alone(filled: Filled) -> None:
    async def take(inbox: PostgresInbox) -> list[Entry]:
        return await inbox.claim(5)

    (running,) = with_inbox(filled.url, filled.schema, take)
    result = filled.run("replay", str(running.id))
    assert result.exit_code == 1
    assert result.stdout == "0 events pending again\n"
    entry = filled.entry(running.id)
    assert entry is not None
    assert entry.state is State.RUNNING


def test_purge_keeps_what_finished_more_recently_than_the_age(filled: Filled) -> None:
    result = filled.run("purge", "--dead", "--older-than", "7d")
    assert result.exit_code == 0, result.output
    assert result.output == "0 dead events purged\n"
    assert filled.entry(filled.dead) is not None


def test_purge_deletes_the_dead_letters_old_enough(filled: Filled) -> None:
    result = filled.run("purge", "--dead", "--older-than", "0s")
    assert result.exit_code == 0, result.output
    assert result.output == "1 dead event purged\n"
    assert filled.entry(filled.dead) is None
    assert filled.stats() == {State.PENDING: 1, State.RUNNING: 0, State.DONE: 1, State.DEAD: 0}


def test_purge_done_deletes_handled_events_only(filled: Filled) -> None:
    result = filled.run("purge", "--done", "--older-than", "0")
    assert result.exit_code == 0, result.output
    assert result.output == "1 done event purged\n"
    assert filled.stats() == {State.PENDING: 1, State.RUNNING: 0, State.DONE: 0, State.DEAD: 1}


# -- no tables, no database ------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["stats"], ["list"], ["show", "1"], ["replay", "--dead"]])
def test_a_schema_without_tables_says_to_migrate(
    postgres_database: str, pg_schema: str, command: list[str]
) -> None:
    result = invoke(
        "inbox", *command, "--inbox", postgres_database, env={SCHEMA_VARIABLE: pg_schema}
    )
    assert result.exit_code == 1, result.output
    assert "cannot read the inbox" in result.output
    assert "`twilio-trigger inbox migrate`" in result.output
    assert "Traceback" not in result.output
    assert not schema_exists(postgres_database, pg_schema)  # looking made nothing


def test_an_unreachable_database_fails_in_one_line_without_its_password() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/x"
    result = invoke("inbox", "stats", "--inbox", url)
    assert result.exit_code == 1, result.output
    assert "Error: cannot read the inbox postgresql://postgres:***@127.0.0.1:" in result.output
    assert "secret" not in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_console_script_tells_an_unreachable_database_without_traceback_or_password() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/x"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "PYTHON"))}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run(
        [sys.executable, "-m", "twilio_trigger", "inbox", "list", "--inbox", url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "Error: cannot read the inbox postgresql://postgres:***@127.0.0.1:" in done.stderr
    assert "secret" not in done.stderr
    assert "Traceback" not in done.stderr
