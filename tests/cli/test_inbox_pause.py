"""`twilio-trigger inbox pause`, `inbox resume` and what `inbox stats` says of a
pause, on a real SQLite file, a key prefix of its own on the shared Redis and a
schema of its own in PostgreSQL: the setting the inbox keeps is read back by a
fresh inbox object, as a restarted listener would."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import invoke
from tests.inbox_backends import BACKENDS, Backend, backend_of, session_of
from tests.postgres_support import pg_schema, postgres_database
from tests.redis_support import prefix, redis_url
from twilio_trigger.inbox import Inbox, State
from twilio_trigger.inbox.sqlite import SQLiteInbox

__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest

PAUSED_LINE = "dispatch paused: events are stored, none dispatched (`inbox resume`)"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    made = backend_of(request.param, request, tmp_path)

    async def one_event(inbox: Inbox) -> None:  # the file and the tables exist
        await inbox.put("key-1", "sms", "SM" + "1" * 32, "delivered", [("MessageSid", "x")])

    made.session(one_event)
    return made


def test_pause_then_resume_is_kept_in_the_inbox(backend: Backend) -> None:
    paused = invoke("inbox", "pause", *backend.options, env=backend.env)
    assert paused.exit_code == 0, paused.output
    assert " is paused: events are stored, none dispatched until `twilio-trigger inbox " in (
        paused.output
    )
    assert backend.session(lambda inbox: inbox.paused()) is True

    stats = invoke("inbox", "stats", *backend.options, env=backend.env)
    assert stats.exit_code == 0, stats.output
    assert PAUSED_LINE in stats.output
    assert "pending         1" in stats.output

    again = invoke("inbox", "pause", *backend.options, env=backend.env)
    assert " is already paused" in again.output, again.output

    resumed = invoke("inbox", "resume", *backend.options, env=backend.env)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.rstrip().endswith(" resumed"), resumed.output
    assert backend.session(lambda inbox: inbox.paused()) is False
    stats = invoke("inbox", "stats", *backend.options, env=backend.env)
    assert stats.exit_code == 0, stats.output
    assert "dispatch paused" not in stats.output

    twice = invoke("inbox", "resume", *backend.options, env=backend.env)
    assert twice.exit_code == 0, twice.output
    assert "was not paused" in twice.output
    # The event was left alone throughout.
    counts = backend.session(lambda inbox: inbox.stats())
    assert counts[State.PENDING] == 1


def test_the_options_go_before_the_command_name_too(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    session = session_of(lambda: SQLiteInbox(path))
    session(lambda inbox: inbox.stats())  # the file exists
    result = invoke("inbox", "--inbox", f"sqlite:///{path}", "pause")
    assert result.exit_code == 0, result.output
    assert session(lambda inbox: inbox.paused()) is True
    stats = invoke("inbox", "--inbox", f"sqlite:///{path}", "stats")
    assert PAUSED_LINE in stats.output


def test_pausing_a_missing_sqlite_inbox_fails_and_makes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    result = invoke("inbox", "pause", "--inbox", f"sqlite:///{path}")
    assert result.exit_code == 1
    assert f"no inbox at {path}" in result.output
    assert not path.exists()


def test_pause_needs_an_inbox() -> None:
    result = invoke("inbox", "pause")
    assert result.exit_code == 2
    assert "no inbox" in result.output
