"""`twilio-trigger inbox limit`, `inbox limits` and `inbox close-breaker` on a real
SQLite file, a key prefix of its own on the shared Redis and a schema of its own
in PostgreSQL: what they keep is read back by a fresh inbox object, as a running
or restarted listener reads it; closing a breaker makes the events it held due."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cli.conftest import invoke
from tests.inbox_backends import BACKENDS, Backend, backend_of
from tests.postgres_support import pg_schema, postgres_database
from tests.redis_support import prefix, redis_url
from twilio_trigger import Limit
from twilio_trigger._control import BREAKER, LIMIT, BreakerState
from twilio_trigger.inbox import Inbox, State

__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    made = backend_of(request.param, request, tmp_path)

    async def one_event(inbox: Inbox) -> None:  # the file and the tables exist
        await inbox.put("key-1", "sms", "SM" + "1" * 32, "delivered", [("MessageSid", "x")])

    made.session(one_event)
    return made


def kept(backend: Backend) -> dict[str, str]:
    return dict(backend.session(lambda inbox: inbox.settings()))


def test_a_limit_is_kept_merged_shown_and_cleared(backend: Backend) -> None:
    first = invoke(
        "inbox", "limit", "on_delivered", "--rate", "5", *backend.options, env=backend.env
    )
    assert first.exit_code == 0, first.output
    more = invoke(
        "inbox",
        "limit",
        "on_delivered",
        "--concurrency",
        "2",
        "--burst",
        "10",
        *backend.options,
        env=backend.env,
    )
    assert more.exit_code == 0, more.output
    assert "on_delivered: concurrency=2, rate=5, burst=10" in more.output
    assert Limit.from_json(kept(backend)[LIMIT + "on_delivered"]) == Limit(
        concurrency=2, rate=5, burst=10
    )
    shown = invoke("inbox", "limits", *backend.options, env=backend.env)
    assert shown.exit_code == 0, shown.output
    assert "dispatch running" in shown.output
    assert "on_delivered: concurrency=2, rate=5, burst=10" in shown.output

    cleared = invoke("inbox", "limit", "on_delivered", "--clear", *backend.options, env=backend.env)
    assert cleared.exit_code == 0, cleared.output
    assert kept(backend)[LIMIT + "on_delivered"] == ""
    shown = invoke("inbox", "limits", *backend.options, env=backend.env)
    assert "no limit kept, no breaker open" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["on_delivred", "--rate", "5"], "'on_delivred' is not a callback an event goes to"),
        (["on_delivered"], "say what to limit"),
        (["on_delivered", "--rate", "5", "--clear"], "--clear forgets the kept limits"),
        (["on_delivered", "--rate", "inf"], "rate is 0 or more"),
        (["on_delivered", "--burst", "0"], "--burst"),
    ],
)
def test_a_bad_limit_is_refused_and_nothing_kept(
    backend: Backend, args: list[str], message: str
) -> None:
    refused = invoke("inbox", "limit", *args, *backend.options, env=backend.env)
    assert refused.exit_code == 2, refused.output
    assert message in refused.output
    assert not any(name.startswith(LIMIT) for name in kept(backend))


def test_closing_a_breaker_makes_the_events_it_held_due_now(backend: Backend) -> None:
    later = time.time() + 3600

    async def open_and_hold(inbox: Inbox) -> int:
        state = BreakerState(later, time.time(), 5, "ConnectionError: the CRM is down")
        await inbox.set_setting(BREAKER + "on_delivered", state.json())
        [entry] = await inbox.claim(1)
        await inbox.defer(entry.id, later, BREAKER + "on_delivered")
        return entry.id

    entry_id = backend.session(open_and_hold)
    shown = invoke("inbox", "limits", *backend.options, env=backend.env)
    assert "on_delivered: breaker OPEN since" in shown.output, shown.output
    assert "after 5 failures in a row, one event tried in" in shown.output
    assert "last error: ConnectionError: the CRM is down" in shown.output

    closed = invoke("inbox", "close-breaker", "on_delivered", *backend.options, env=backend.env)
    assert closed.exit_code == 0, closed.output
    assert "the breaker of on_delivered is closed" in closed.output

    async def after(inbox: Inbox) -> tuple[str | None, list[int]]:
        return await inbox.setting(BREAKER + "on_delivered"), [
            e.id
            for e in await inbox.claim(5)  # due now, not in an hour
        ]

    state, claimed = backend.session(after)
    assert state == ""
    assert claimed == [entry_id]
    again = invoke("inbox", "close-breaker", "on_delivered", *backend.options, env=backend.env)
    assert "the breaker of on_delivered was not open" in again.output
    shown = invoke("inbox", "limits", *backend.options, env=backend.env)
    assert "breaker OPEN" not in shown.output


def test_entries_given_back_under_a_hold_are_released_only_while_pending(
    backend: Backend,
) -> None:
    async def work(inbox: Inbox) -> tuple[int, int, State]:
        await inbox.put("key-2", "sms", "SM" + "2" * 32, "delivered", [("MessageSid", "y")])
        first, second = await inbox.claim(5)
        later = time.time() + 3600
        await inbox.defer(first.id, later, "breaker:on_sent")
        await inbox.defer(second.id, later, "breaker:on_sent")
        # A release of another hold leaves them alone.
        await inbox.release("nothing:held")
        assert await inbox.claim(5) == []  # not due yet
        released = await inbox.release("breaker:on_sent")
        again = await inbox.release("breaker:on_sent")  # forgotten: nothing the second time
        entry = await inbox.get(first.id)
        assert entry is not None
        return released, again, entry.state

    released, again, state = backend.session(work)
    assert (released, again, state) == (2, 0, State.PENDING)


def test_stats_shows_what_the_inbox_counted(backend: Backend) -> None:
    async def fail_once(inbox: Inbox) -> None:
        [entry] = await inbox.claim(1)
        await inbox.bury(entry.id, "RuntimeError: the CRM is down")

    backend.session(fail_once)
    shown = invoke("inbox", "stats", *backend.options, env=backend.env)
    assert shown.exit_code == 0, shown.output
    lines = [" ".join(line.split()) for line in shown.output.splitlines()]
    assert "received 1" in lines  # the fixture's event
    assert "failed attempts 1" in lines
    assert "events that failed (dead-lettered) 1" in lines
    assert "handled 0" in lines
    assert any(line.startswith("counted since 20") for line in lines), lines
