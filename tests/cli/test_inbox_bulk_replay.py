"""`twilio-trigger inbox replay` with the options of `inbox list`, on a real SQLite
file, a key prefix of its own on the shared Redis and a schema of its own in
PostgreSQL: the count, the confirmation, the progress, and the decoys untouched."""

from __future__ import annotations

import asyncio
import math
import os
import pty
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.inbox_backends import BACKENDS, backend_of
from tests.postgres_support import pg_schema, postgres_database
from tests.redis_support import prefix, redis_url
from tests.runtime.test_inbox_bulk_replay import Filled, fill, replayed_only, states
from twilio_trigger.cli import _inbox, cli
from twilio_trigger.inbox import Inbox, State
from twilio_trigger.inbox.sqlite import SQLiteInbox

__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest

ON_FAILED_DEAD = ("old_failed_dead", "failed_dead", "failed_dead_other_code", "call_failed_dead")


@dataclass
class Backend:
    """A filled inbox, how to reach it from the command line, and its sessions."""

    options: list[str]
    env: dict[str, str]
    session: Callable[[Callable[[Inbox], Awaitable[Any]]], Any]
    filled: Filled

    def replay(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(
            cli, ["inbox", "replay", *self.options, *args], input=input, env=self.env,
            prog_name="twilio-trigger",
        )  # fmt: skip

    def states(self) -> dict[str, tuple[State, int]]:
        return states(self.session, self.filled)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    inbox = backend_of(request.param, request, tmp_path)
    return Backend(inbox.options, inbox.env, inbox.session, fill(inbox.session))


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone answers at a terminal (click's runner has none: see the pty test)."""
    monkeypatch.setattr(_inbox, "_can_ask", lambda: True)


def test_confirmed_replays_only_what_the_options_find(backend: Backend, terminal: None) -> None:
    before = backend.states()
    result = backend.replay("--dead", "--callback", "on_failed", "--since", "1d", input="y\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("4 dead letters found\nReplay 4 events? [y/N]: ")
    assert result.stdout.endswith("\n4 events pending again\n")
    assert "  4 of 4 replayed\n" in result.stderr
    replayed_only(before, backend.states(), *ON_FAILED_DEAD)


def test_declined_replays_nothing(backend: Backend, terminal: None) -> None:
    before = backend.states()
    result = backend.replay("--callback", "on_failed", input="n\n")
    assert result.exit_code == 1
    assert "4 dead letters found\nReplay 4 events? [y/N]: " in result.stdout
    assert "Aborted!" in result.stderr
    assert backend.states() == before


def test_yes_replays_without_asking(backend: Backend) -> None:
    before = backend.states()
    since = _iso(math.ceil(backend.filled.boundary * 1e6) / 1e6)
    result = backend.replay(
        "--outcome", "failed", "--error-code", "30003", "--since", since, "--yes"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 dead letters found\n2 events pending again\n"
    replayed_only(before, backend.states(), "failed_dead", "undelivered_dead")


def test_done_events_only_with_outcome_done(backend: Backend) -> None:
    before = backend.states()
    result = backend.replay("--outcome", "done", "--kind", "sms", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2 done events (their callbacks run again) found\n")
    replayed_only(before, backend.states(), "failed_done", "delivered_done")


def test_without_a_terminal_nor_yes_it_refuses(backend: Backend) -> None:
    before = backend.states()
    result = backend.replay("--callback", "on_failed", input="y\n")
    assert result.exit_code == 2
    assert "no terminal to confirm replaying 4 events: add --yes" in result.output
    assert backend.states() == before


def test_nothing_found_replays_nothing(backend: Backend) -> None:
    before = backend.states()
    result = backend.replay("--callback", "on_delivered", "--yes")
    assert (result.exit_code, result.stdout) == (0, "no dead letters found: nothing to replay\n")
    assert backend.states() == before


@pytest.mark.parametrize("outcome", ["pending", "running"])
def test_pending_and_running_are_refused(backend: Backend, outcome: str) -> None:
    before = backend.states()
    result = backend.replay("--state", outcome, "--yes")
    assert result.exit_code == 2
    assert "pending and running events are not replayed" in result.output
    assert backend.states() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--callback", "on_nothing"], "is not one an event goes to"),
        (["--error-code", "3'; DROP--"], "error_code must be digits"),
        (["--since", "yesterday-ish"], "is not a date"),
        (["--text", "x" * 201], "text is longer than 200 characters"),
        (["--sid", "SM\x1b[31m"], "sid must not hold control characters"),
        (["--dead", "--outcome", "done"], "--dead, --state and --outcome disagree"),
        (["--callback", "on_failed", "7"], "give event IDs or --dead (not both)"),
        (["--dead", "--callback", "on_failed", "7"], "give event IDs or --dead (not both)"),
    ],
)
def test_hostile_or_contradictory_options_are_usage_errors(
    backend: Backend, args: list[str], message: str
) -> None:
    before = backend.states()
    result = backend.replay(*args, "--yes")
    assert result.exit_code == 2
    assert message in result.output
    assert "\x1b" not in result.output
    assert backend.states() == before


def test_ids_and_dead_alone_work_as_before(backend: Backend) -> None:
    ids = backend.filled.ids
    by_id = backend.replay(str(ids["failed_done"]))
    assert (by_id.exit_code, by_id.stdout) == (0, "1 event pending again\n")
    every = backend.replay("--dead")  # no question asked: as before
    assert (every.exit_code, every.stdout) == (0, "5 events pending again\n")
    now = backend.states()
    assert {name for name, (state, _) in now.items() if state is State.DEAD} == set()
    # Running (pending again on SQLite, whose only process was gone): not replayed.
    assert now["failed_running"][1] == 1
    assert now["delivered_done"][0] is State.DONE


def test_a_real_terminal_is_asked(tmp_path: Path) -> None:
    """The console script on a pseudo-terminal: the question, the answer typed, the
    replay."""

    def session(work: Callable[[Inbox], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            inbox = SQLiteInbox(tmp_path / "events.db")
            await inbox.open()
            try:
                return await work(inbox)
            finally:
                await inbox.close()

        return asyncio.run(go())

    filled = fill(session)
    before = states(session, filled)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    command = [sys.executable, "-m", "twilio_trigger", "inbox", "replay"]
    process = subprocess.Popen(
        [*command, "--inbox", f"sqlite:///{tmp_path / 'events.db'}", "--callback", "on_failed"],
        stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    try:
        while b"[y/N]: " not in seen:
            chunk = _read(leader)
            assert chunk, seen
            seen += chunk
        os.write(leader, b"y\n")
        while True:
            chunk = _read(leader)
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    text = seen.decode().replace("\r\n", "\n")
    assert "4 dead letters found\nReplay 4 events? [y/N]: " in text
    assert "4 events pending again" in text
    replayed_only(before, states(session, filled), *ON_FAILED_DEAD)


def _read(descriptor: int) -> bytes:
    """What the terminal shows next (``b""`` once the process has closed it)."""
    try:
        return os.read(descriptor, 4096)
    except OSError:  # EIO: every writer has closed it
        return b""


def _iso(epoch: float) -> str:
    """An epoch time as the ISO time (with its offset) that --since takes."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()
