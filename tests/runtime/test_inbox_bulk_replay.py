"""Replaying what a search finds: the same contract on SQLite, Redis and PostgreSQL.

Each test fills a real inbox (a SQLite file, a key prefix of its own on the
shared Redis, a schema of its own in PostgreSQL) with named events in every
state, replays a filtered set, and checks the state and attempts of every
event: those found are pending with fresh attempts, every decoy is as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.inbox_backends import BACKENDS, Session, backend_of
from tests.postgres_support import pg_schema, postgres_database
from tests.redis_support import prefix, redis_url
from twilio_trigger.inbox import Entry, Inbox, Search, State

__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest


@pytest.fixture(params=BACKENDS)
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Session[Any]:
    """One backend's inbox: the same contract is run on each."""
    return backend_of(request.param, request, tmp_path).session


def sms(number: int, status: str, code: str | None = None) -> list[tuple[str, str]]:
    pairs = [("MessageSid", f"SM{number:032d}"), ("MessageStatus", status)]
    return pairs + ([("ErrorCode", code)] if code else [])


#: name: (kind, status, ErrorCode, what happens to it), in the order received.  Events
#: named ``old_*`` are received before the boundary, the others after it.
EVENTS: dict[str, tuple[str, str, str | None, str]] = {
    "old_failed_dead": ("sms", "failed", "30003", "dead"),
    "failed_dead": ("sms", "failed", "30003", "dead"),
    "failed_dead_other_code": ("sms", "failed", "30005", "dead"),
    "undelivered_dead": ("sms", "undelivered", "30003", "dead"),
    "call_failed_dead": ("call", "failed", None, "dead"),
    "failed_done": ("sms", "failed", "30003", "done"),
    "failed_retried": ("sms", "failed", "30003", "retried"),
    "failed_running": ("sms", "failed", "30003", "running"),
    "delivered_done": ("sms", "delivered", None, "done"),
}


@dataclass
class Filled:
    ids: dict[str, int] = field(default_factory=dict)
    boundary: float = 0.0


def after(moment: float) -> float:
    """The clock's time once it has passed *moment* (a few microseconds at most)."""
    while (now := time.time()) <= moment:
        continue
    return now


async def put_with_outcome(inbox: Inbox, name: str, number: int, outcome: str) -> int:
    """Store one event and give it *outcome*; its id."""
    kind, status, code, _ = EVENTS.get(name, ("sms", "failed", "30003", outcome))
    params = sms(number, status, code)
    assert await inbox.put(f"key-{name}", kind, f"SM{number:032d}", status, params)
    claimed: list[Entry] = []
    while not claimed:  # the only due entry: every other one is finished or later
        claimed = await inbox.claim(1)
    entry_id = claimed[0].id
    assert claimed[0].key == f"key-{name}"
    if outcome == "done":
        await inbox.succeed(entry_id)
    elif outcome == "dead":
        await inbox.bury(entry_id, "Traceback\nValueError: CRM down")
    elif outcome == "retried":
        await inbox.retry(entry_id, "Traceback\nValueError: once", time.time() + 3600)
    return entry_id


def fill(session: Session[Filled]) -> Filled:
    """The inbox holds :data:`EVENTS`, in that order, with their outcomes."""

    async def work(inbox: Inbox) -> Filled:
        filled = Filled()
        for number, (name, (*_, outcome)) in enumerate(EVENTS.items()):
            if name == "failed_dead":
                last = await inbox.get(filled.ids["old_failed_dead"])
                assert last is not None
                filled.boundary = after(last.received_at)
                after(filled.boundary + 0.001)  # a margin for a time written to the µs
            filled.ids[name] = await put_with_outcome(inbox, name, number, outcome)
        return filled

    return session(work)


def states(session: Session[Any], filled: Filled) -> dict[str, tuple[State, int]]:
    """Each named event's state and attempts."""

    async def work(inbox: Inbox) -> dict[str, tuple[State, int]]:
        found = {}
        for name, entry_id in filled.ids.items():
            entry = await inbox.get(entry_id)
            assert entry is not None
            found[name] = (entry.state, entry.attempts)
        return found

    result: dict[str, tuple[State, int]] = session(work)
    return result


def replayed_only(
    before: dict[str, tuple[State, int]], now: dict[str, tuple[State, int]], *names: str
) -> None:
    """The events *names* are pending with fresh attempts; every other one is as before."""
    for name, was in before.items():
        if name in names:
            assert now[name] == (State.PENDING, 0), name
            assert was[0] is not State.PENDING, name
        else:
            assert now[name] == was, name


def count_and_replay(session: Session[Any], search: Search) -> tuple[int, int]:
    async def work(inbox: Inbox) -> tuple[int, int]:
        return await inbox.count_matching(search), await inbox.replay_matching(search)

    result: tuple[int, int] = session(work)
    return result


# -- what is replayed ---------------------------------------------------------------------
def test_every_dead_letter_of_one_callback(session: Session[Any]) -> None:
    filled = fill(session)
    before = states(session, filled)
    assert count_and_replay(session, Search(callback="on_failed")) == (4, 4)
    replayed_only(
        before, states(session, filled),
        "old_failed_dead", "failed_dead", "failed_dead_other_code", "call_failed_dead",
    )  # fmt: skip


def test_every_failure_with_one_error_code_in_a_time_window(session: Session[Any]) -> None:
    filled = fill(session)
    before = states(session, filled)
    search = Search(outcome="failed", error_code="30003", since=filled.boundary)
    assert count_and_replay(session, search) == (2, 2)
    # Not the old one, nor 30005, nor the done, retried and running failures.
    replayed_only(before, states(session, filled), "failed_dead", "undelivered_dead")


def test_done_events_are_replayed_only_when_asked_for(session: Session[Any]) -> None:
    filled = fill(session)
    before = states(session, filled)
    assert (
        count_and_replay(session, Search(kind="sms", status="failed", since=filled.boundary))[0]
        == 2
    )  # the dead ones: failed_dead and failed_dead_other_code
    middle = states(session, filled)
    replayed_only(before, middle, "failed_dead", "failed_dead_other_code")
    assert count_and_replay(session, Search(outcome="done")) == (2, 2)
    replayed_only(middle, states(session, filled), "failed_done", "delivered_done")


@pytest.mark.parametrize("outcome", [State.PENDING, State.RUNNING])
def test_pending_and_running_events_are_never_replayed(
    session: Session[Any], outcome: State
) -> None:
    filled = fill(session)
    before = states(session, filled)
    assert count_and_replay(session, Search(outcome=outcome)) == (0, 0)
    assert states(session, filled) == before


def test_a_search_that_finds_nothing_replays_nothing(session: Session[Any]) -> None:
    filled = fill(session)
    before = states(session, filled)
    for search in (
        Search(callback="on_delivered"),  # done only
        Search(error_code="99999"),
        Search(text="'; UPDATE events SET state = 'pending' --"),
        Search(number="+1555%"),
        Search(sid="SM*"),
    ):
        assert count_and_replay(session, search) == (0, 0)
    assert states(session, filled) == before


# -- batches and progress ------------------------------------------------------------------
def test_batches_report_progress_and_leave_what_changed_meanwhile(session: Session[Any]) -> None:
    """Seven dead letters in batches of three: progress after each; a dead letter
    stored during the replay is left alone, and one replayed by someone else
    meanwhile is not counted again."""

    async def work(inbox: Inbox) -> tuple[list[tuple[int, int]], int, dict[str, State]]:
        ids = [await put_with_outcome(inbox, f"dead{n}", 100 + n, "dead") for n in range(7)]
        decoy = await put_with_outcome(inbox, "done", 200, "done")
        told: list[tuple[int, int]] = []
        late: list[int] = []

        async def progress(done: int, total: int) -> None:
            told.append((done, total))
            if len(told) == 1:  # the three newest are pending again
                assert await inbox.put("key-late", "sms", None, "failed", sms(300, "failed"))
                claimed: list[Entry] = []
                while len(claimed) < 4:
                    claimed += await inbox.claim(10)
                for entry in claimed:
                    if entry.key == "key-late":
                        late.append(entry.id)
                        await inbox.bury(entry.id, "Traceback\nValueError: CRM down")
                    else:  # pending again, for the next attempt
                        await inbox.retry(entry.id, "", time.time() - 1)
                assert await inbox.replay([ids[0]]) == 1  # the oldest: in the last batch

        count = await inbox.replay_matching(Search(kind="sms"), batch=3, progress=progress)
        found = {}
        for name, entry_id in [("late", late[0]), ("taken", ids[0]), ("decoy", decoy)]:
            entry = await inbox.get(entry_id)
            assert entry is not None
            found[name] = entry.state
        for entry_id in ids[1:]:
            entry = await inbox.get(entry_id)
            assert entry is not None
            assert entry.state is State.PENDING
            assert entry.attempts == (0 if entry_id < ids[4] else 1)  # claimed meanwhile
        return told, count, found

    told, count, found = session(work)
    assert told == [(3, 7), (6, 7)]  # the last batch held only the one taken meanwhile
    assert count == 6
    assert found == {"late": State.DEAD, "taken": State.PENDING, "decoy": State.DONE}


def test_a_plain_progress_function_is_called_too(session: Session[Any]) -> None:
    async def work(inbox: Inbox) -> list[tuple[int, int]]:
        for n in range(5):
            await put_with_outcome(inbox, f"dead{n}", n, "dead")
        told: list[tuple[int, int]] = []
        assert await inbox.replay_matching(Search(), batch=2, progress=lambda *a: told.append(a))
        return told

    assert session(work) == [(2, 5), (4, 5), (5, 5)]


@pytest.mark.parametrize("batch", [0, -1, 501, True, 2.5])
def test_a_bad_batch_is_a_value_error(session: Session[Any], batch: Any) -> None:
    async def work(inbox: Inbox) -> None:
        await put_with_outcome(inbox, "dead", 1, "dead")
        with pytest.raises(ValueError, match="limit must be"):
            await inbox.replay_matching(Search(), batch=batch)
        entry = (await inbox.search(Search(), limit=1)).entries[0]
        assert entry.state is State.DEAD

    session(work)


def test_replay_only_in_a_state_leaves_the_others(session: Session[Any]) -> None:
    """``replay(ids, only=...)``, which the bulk replay relies on for entries that
    changed since they were found."""

    async def work(inbox: Inbox) -> tuple[int, list[State]]:
        dead = await put_with_outcome(inbox, "dead", 1, "dead")
        done = await put_with_outcome(inbox, "done", 2, "done")
        retried = await put_with_outcome(inbox, "retried", 3, "retried")
        count = await inbox.replay([dead, done, retried], only=State.DEAD)
        found = [await inbox.get(entry_id) for entry_id in (dead, done, retried)]
        return count, [entry.state for entry in found if entry is not None]

    assert session(work) == (1, [State.PENDING, State.DONE, State.PENDING])
