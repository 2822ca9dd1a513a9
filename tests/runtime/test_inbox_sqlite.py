"""The SQLite inbox on real files: every operation, durability, recovery, group commit.

What the inbox says is checked, where it matters, against the file itself read
with a separate ``sqlite3`` connection.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from twilio_trigger.inbox import Entry, State, open_inbox
from twilio_trigger.inbox.sqlite import SQLiteInbox
from twilio_trigger.testing import call_status_params, sms_status_params

_T = TypeVar("_T")

SID = "SM" + "0123456789abcdef" * 2


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def with_inbox(path: Path, work: Callable[[SQLiteInbox], Awaitable[_T]]) -> _T:
    """Run *work* on an inbox at *path*, opened and closed around it."""

    async def session() -> _T:
        inbox = SQLiteInbox(path)
        await inbox.open()
        try:
            return await work(inbox)
        finally:
            await inbox.close()

    return run(session())


def rows(path: Path, where: str = "1", *args: object) -> list[tuple[Any, ...]]:
    """``(id, key, state, attempts)`` of the file's rows, read independently of the inbox."""
    with sqlite3.connect(path) as connection:
        found = connection.execute(
            f"SELECT id, key, state, attempts FROM events WHERE {where} ORDER BY id",
            args,
        ).fetchall()
    connection.close()
    return found


def params(status: str = "delivered", sid: str = SID) -> list[tuple[str, str]]:
    return list(sms_status_params(status, sid=sid).items())


async def put(inbox: SQLiteInbox, key: str, status: str = "delivered", sid: str = SID) -> bool:
    return await inbox.put(key, "sms", sid, status, params(status, sid))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()  # the inbox makes its file, not its folder
    return folder / "events.db"


# -- put, get, duplicates --------------------------------------------------------------
def test_put_stores_a_pending_entry_with_its_parameters(path: Path) -> None:
    sent = [*params("delivered"), ("Body", "second value \U0001f4e6"), ("Body", "é ü")]

    async def work(inbox: SQLiteInbox) -> tuple[bool, Entry | None, dict[State, int]]:
        added = await inbox.put("k1", "sms", SID, "delivered", sent)
        (entry,) = await inbox.entries()
        return added, await inbox.get(entry.id), await inbox.stats()

    before = time.time()
    added, entry, stats = with_inbox(path, work)
    assert added is True
    assert entry is not None
    assert (entry.key, entry.kind, entry.sid, entry.status) == ("k1", "sms", SID, "delivered")
    assert entry.params == tuple(sent)  # order, repeats and unicode kept
    assert entry.state is State.PENDING
    assert entry.attempts == 0
    assert entry.last_error is None
    assert entry.finished_at is None
    assert before - 1 <= entry.received_at <= time.time() + 1
    assert entry.next_attempt_at == pytest.approx(entry.received_at)
    assert stats == {State.PENDING: 1, State.RUNNING: 0, State.DONE: 0, State.DEAD: 0}
    assert rows(path) == [(entry.id, "k1", "pending", 0)]


def test_a_duplicate_key_is_refused(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> list[bool]:
        return [
            await put(inbox, "same"),
            await put(inbox, "same", status="sent"),
            await put(inbox, "other"),
        ]

    assert with_inbox(path, work) == [True, False, True]
    stored = rows(path)
    assert [row[1] for row in stored] == ["same", "other"]


def test_a_duplicate_of_a_finished_entry_is_refused_too(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> bool:
        await put(inbox, "k")
        (entry,) = await inbox.claim(1)
        await inbox.succeed(entry.id)
        return await put(inbox, "k")

    assert with_inbox(path, work) is False
    assert [row[2] for row in rows(path)] == ["done"]


def test_get_of_a_missing_id_is_none(path: Path) -> None:
    assert with_inbox(path, lambda inbox: inbox.get(12345)) is None


# -- claim, succeed, retry, bury --------------------------------------------------------
def test_claim_makes_entries_running_and_counts_the_attempt(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[list[Entry], list[Entry], dict[State, int]]:
        for number in range(3):
            await put(inbox, f"k{number}")
        first = await inbox.claim(10)
        again = await inbox.claim(10)
        return first, again, await inbox.stats()

    first, again, stats = with_inbox(path, work)
    assert [e.key for e in first] == ["k0", "k1", "k2"]
    assert {e.state for e in first} == {State.RUNNING}
    assert {e.attempts for e in first} == {1}
    assert again == []
    assert stats[State.RUNNING] == 3
    assert stats[State.PENDING] == 0


def test_claim_respects_its_limit(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> list[list[str]]:
        for number in range(5):
            await put(inbox, f"k{number}")
        return [[e.key for e in await inbox.claim(n)] for n in (2, 2, 2)]

    assert with_inbox(path, work) == [["k0", "k1"], ["k2", "k3"], ["k4"]]


def test_claim_respects_next_attempt_at(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[list[str], list[str]]:
        await put(inbox, "later")
        await put(inbox, "soon")
        for entry in await inbox.claim(10):
            due = time.time() + 3600 if entry.key == "later" else time.time() - 1
            await inbox.retry(entry.id, "boom", due)
        now = [e.key for e in await inbox.claim(10)]
        # A replay makes "later" due at once.
        (later,) = await inbox.entries(State.PENDING)
        await inbox.replay([later.id])
        return now, [e.key for e in await inbox.claim(10)]

    now, then = with_inbox(path, work)
    assert now == ["soon"]
    assert then == ["later"]


def test_next_due_is_the_earliest_pending_time_or_none(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[float | None, float | None, float]:
        empty = await inbox.next_due()
        await put(inbox, "k")
        (entry,) = await inbox.claim(1)
        at = time.time() + 500
        await inbox.retry(entry.id, "boom", at)
        return empty, await inbox.next_due(), at

    empty, due, at = with_inbox(path, work)
    assert empty is None
    assert due == pytest.approx(at)


def test_succeed_marks_done_with_a_finish_time(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> Entry | None:
        await put(inbox, "k")
        (entry,) = await inbox.claim(1)
        await inbox.succeed(entry.id)
        return await inbox.get(entry.id)

    entry = with_inbox(path, work)
    assert entry is not None
    assert entry.state is State.DONE
    assert entry.attempts == 1
    assert entry.finished_at is not None
    assert entry.last_error is None


def test_retry_keeps_the_error_and_the_next_attempt_adds_one(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[Entry | None, list[Entry]]:
        await put(inbox, "k")
        (entry,) = await inbox.claim(1)
        await inbox.retry(entry.id, "Traceback...\nCallbackError: first", time.time() - 0.001)
        pending = await inbox.get(entry.id)
        return pending, await inbox.claim(1)

    pending, (second,) = with_inbox(path, work)
    assert pending is not None
    assert pending.state is State.PENDING
    assert pending.last_error == "Traceback...\nCallbackError: first"
    assert pending.finished_at is None
    assert second.attempts == 2
    assert second.last_error == "Traceback...\nCallbackError: first"


def test_bury_keeps_a_dead_letter_with_its_last_error(path: Path) -> None:
    long_error = "x" * 30_000 + "THE END"

    async def work(inbox: SQLiteInbox) -> tuple[Entry | None, list[Entry], list[Entry]]:
        await put(inbox, "k")
        await put(inbox, "alive")
        entry = next(e for e in await inbox.claim(2) if e.key == "k")
        await inbox.bury(entry.id, long_error)
        return await inbox.get(entry.id), await inbox.entries(State.DEAD), await inbox.claim(5)

    dead, dead_letters, claimable = with_inbox(path, work)
    assert dead is not None
    assert dead.state is State.DEAD
    assert dead.finished_at is not None
    assert dead.last_error is not None
    assert dead.last_error.endswith("THE END")  # the end of a traceback is what matters
    assert len(dead.last_error) <= 16_000
    assert [e.key for e in dead_letters] == ["k"]
    assert claimable == []  # a dead letter is never claimed


# -- replay, purge, stats, entries ------------------------------------------------------
def _dead_letters(inbox: SQLiteInbox, count: int) -> Awaitable[list[int]]:
    async def make() -> list[int]:
        for number in range(count):
            await put(inbox, f"dead{number}", sid=f"SM{number:032d}")
        ids = []
        for entry in await inbox.claim(count):
            await inbox.bury(entry.id, f"error of {entry.key}")
            ids.append(entry.id)
        return ids

    return make()


def test_replay_given_ids_makes_them_pending_with_fresh_attempts(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[int, Entry | None, Entry | None, int]:
        first, second = await _dead_letters(inbox, 2)
        count = await inbox.replay([first, 999])
        again = await inbox.claim(10)
        return count, await inbox.get(first), await inbox.get(second), len(again)

    count, replayed, untouched, claimed = with_inbox(path, work)
    assert count == 1
    assert replayed is not None
    assert untouched is not None
    assert replayed.state is State.RUNNING  # claimed again after the replay
    assert replayed.attempts == 1  # fresh attempts: 0 after replay, 1 once claimed
    assert replayed.finished_at is None
    assert untouched.state is State.DEAD
    assert claimed == 1


def test_replay_without_ids_takes_every_dead_letter_only(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[int, dict[State, int]]:
        await _dead_letters(inbox, 3)
        await put(inbox, "done")
        (done,) = await inbox.claim(1)
        await inbox.succeed(done.id)
        await put(inbox, "pending")
        count = await inbox.replay()
        return count, await inbox.stats()

    count, stats = with_inbox(path, work)
    assert count == 3
    assert stats == {State.PENDING: 4, State.RUNNING: 0, State.DONE: 1, State.DEAD: 0}
    assert {row[3] for row in rows(path, "state = 'pending'")} == {0}


def test_replay_leaves_running_entries_alone(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[int, Entry | None]:
        await put(inbox, "k")
        (entry,) = await inbox.claim(1)
        return await inbox.replay([entry.id]), await inbox.get(entry.id)

    count, entry = with_inbox(path, work)
    assert count == 0
    assert entry is not None
    assert entry.state is State.RUNNING


def test_replay_of_a_done_entry_runs_it_again(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[int, list[Entry]]:
        await put(inbox, "k")
        (entry,) = await inbox.claim(1)
        await inbox.succeed(entry.id)
        return await inbox.replay([entry.id]), await inbox.claim(1)

    count, (again,) = with_inbox(path, work)
    assert count == 1
    assert again.key == "k"


def test_purge_deletes_entries_of_a_state_finished_long_enough_ago(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> list[int]:
        await _dead_letters(inbox, 2)
        await put(inbox, "done")
        (done,) = await inbox.claim(1)
        await inbox.succeed(done.id)
        await put(inbox, "pending")
        return [
            await inbox.purge(State.DEAD, 3600),  # finished just now: kept
            await inbox.purge(State.DEAD, 0),
            await inbox.purge(State.DEAD, 0),
            await inbox.purge(State.PENDING, 0),  # never finished: never purged
            await inbox.purge(State.DONE, 0),
        ]

    assert with_inbox(path, work) == [0, 2, 0, 0, 1]
    assert [row[1:3] for row in rows(path)] == [("pending", "pending")]


def test_entries_are_newest_first_and_filtered_by_state(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[list[str], list[str], list[str], list[str]]:
        for number in range(5):
            await put(inbox, f"k{number}")
        (first,) = await inbox.claim(1)
        await inbox.succeed(first.id)
        return (
            [e.key for e in await inbox.entries()],
            [e.key for e in await inbox.entries(limit=2)],
            [e.key for e in await inbox.entries(State.DONE)],
            [e.key for e in await inbox.entries(State.PENDING, limit=3)],
        )

    everything, newest, done, pending = with_inbox(path, work)
    assert everything == ["k4", "k3", "k2", "k1", "k0"]
    assert newest == ["k4", "k3"]
    assert done == ["k0"]
    assert pending == ["k4", "k3", "k2"]


def test_call_events_keep_their_kind_and_parameters(path: Path) -> None:
    sent = list(call_status_params("completed", sid="CA" + "1" * 32).items())

    async def work(inbox: SQLiteInbox) -> Entry:
        await inbox.put("c", "call", "CA" + "1" * 32, "completed", sent)
        (entry,) = await inbox.entries()
        return entry

    entry = with_inbox(path, work)
    assert entry.kind == "call"
    assert entry.params == tuple(sent)


# -- durability and recovery --------------------------------------------------------------
def test_entries_survive_closing_and_reopening(path: Path) -> None:
    async def first(inbox: SQLiteInbox) -> None:
        await put(inbox, "pending")
        await put(inbox, "done")
        await put(inbox, "dead")
        for entry in await inbox.claim(10):
            if entry.key == "done":
                await inbox.succeed(entry.id)
            elif entry.key == "dead":
                await inbox.bury(entry.id, "gone")
            else:
                await inbox.retry(entry.id, "later", time.time() + 3600)

    async def second(inbox: SQLiteInbox) -> dict[str, tuple[State, int, str | None]]:
        return {e.key: (e.state, e.attempts, e.last_error) for e in await inbox.entries()}

    with_inbox(path, first)
    assert with_inbox(path, second) == {
        "pending": (State.PENDING, 1, "later"),
        "done": (State.DONE, 1, None),
        "dead": (State.DEAD, 1, "gone"),
    }


def test_open_turns_running_entries_back_to_pending(path: Path) -> None:
    async def interrupted(inbox: SQLiteInbox) -> None:
        for number in range(3):
            await put(inbox, f"k{number}")
        await inbox.claim(2)  # the process "dies" with two entries running

    with_inbox(path, interrupted)
    assert [row[2] for row in rows(path)] == ["running", "running", "pending"]

    async def restart() -> tuple[int, dict[State, int], list[Entry]]:
        inbox = SQLiteInbox(path)
        try:
            recovered = await inbox.open()
            return recovered, await inbox.stats(), await inbox.claim(10)
        finally:
            await inbox.close()

    recovered, stats, claimed = run(restart())
    assert recovered == 2
    assert stats[State.PENDING] == 3
    assert stats[State.RUNNING] == 0
    attempts = {e.key: e.attempts for e in claimed}
    assert attempts == {"k0": 2, "k1": 2, "k2": 1}


def test_reopening_without_interrupted_entries_recovers_none(path: Path) -> None:
    with_inbox(path, lambda inbox: put(inbox, "k"))
    assert run(_open_and_close(path)) == 0


async def _open_and_close(path: Path) -> int:
    inbox = SQLiteInbox(path)
    try:
        return await inbox.open()
    finally:
        await inbox.close()


def test_concurrent_puts_all_land(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> list[bool]:
        return list(
            await asyncio.gather(
                *(put(inbox, f"k{number}", sid=f"SM{number:032d}") for number in range(200))
            )
        )

    added = with_inbox(path, work)
    assert added == [True] * 200
    stored = rows(path)
    assert len(stored) == 200
    assert {row[1] for row in stored} == {f"k{number}" for number in range(200)}


def test_each_put_is_on_disk_when_it_returns(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> list[int]:
        seen = []
        for batch in range(3):
            await asyncio.gather(
                *(put(inbox, f"b{batch}-{n}", sid=f"SM{batch}{n:031d}") for n in range(50))
            )
            # Read by another connection while the inbox is still open.
            seen.append(len(rows(path)))
        return seen

    assert with_inbox(path, work) == [50, 100, 150]


def test_concurrent_puts_of_one_key_store_it_once(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> list[bool]:
        return list(await asyncio.gather(*(put(inbox, "same") for _ in range(50))))

    added = with_inbox(path, work)
    assert sorted(added) == [False] * 49 + [True]
    assert len(rows(path)) == 1


def test_a_failing_operation_does_not_undo_the_others_of_its_batch(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> list[object]:
        good = [put(inbox, f"k{number}", sid=f"SM{number:032d}") for number in range(20)]
        # NOT NULL kind: this insert fails inside the same batch as the others.
        bad = inbox.put("bad", None, SID, "delivered", params())  # type: ignore[arg-type]
        return list(await asyncio.gather(*good, bad, return_exceptions=True))

    results = with_inbox(path, work)
    assert results[:20] == [True] * 20
    assert isinstance(results[20], sqlite3.IntegrityError)
    assert len(rows(path)) == 20


# -- locations --------------------------------------------------------------------------
def test_a_directory_where_the_file_should_be_raises_on_first_use(tmp_path: Path) -> None:
    blocked = tmp_path / "events.db"
    blocked.mkdir()
    inbox = SQLiteInbox(blocked)  # nothing happens yet

    async def attempt() -> None:
        try:
            await inbox.put("k", "sms", SID, "delivered", params())
        finally:
            await inbox.close()

    with pytest.raises(sqlite3.OperationalError):
        run(attempt())
    with pytest.raises(sqlite3.OperationalError):  # and again: it never half-opens
        run(inbox.open())


def test_open_inbox_reads_relative_and_absolute_sqlite_urls(tmp_path: Path) -> None:
    absolute = open_inbox(f"sqlite:///{tmp_path}/events.db")
    assert isinstance(absolute, SQLiteInbox)
    assert absolute.path == tmp_path / "events.db"
    relative = open_inbox("sqlite:///var/events.db")
    assert isinstance(relative, SQLiteInbox)
    assert relative.path == Path("var/events.db")
    assert not relative.path.is_absolute()


@pytest.mark.parametrize(
    "url", ["events.db", "sqlite://events.db", "sqlite:///", "mysql:///db", ""]
)
def test_open_inbox_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        open_inbox(url)


# -- the headers kept beside an event --------------------------------------------------
HEADERS = [("i-twilio-idempotency-token", "4e1c…"), ("user-agent", "TwilioProxy/1.1")]


def test_the_headers_given_are_kept_with_the_entry(path: Path) -> None:
    async def work(inbox: SQLiteInbox) -> tuple[Entry | None, Entry | None]:
        await inbox.put("with", "sms", SID, "delivered", params(), HEADERS)
        await inbox.put("without", "sms", SID, "sent", params("sent"))
        by_key = {entry.key: entry for entry in await inbox.entries()}
        return by_key["with"], by_key["without"]

    kept, none = with_inbox(path, work)
    assert kept is not None
    assert none is not None
    assert kept.headers == tuple(HEADERS)
    assert none.headers == ()


def test_a_file_from_before_headers_were_kept_opens_and_keeps_them(path: Path) -> None:
    # The schema of the first release, with one entry in it.
    with sqlite3.connect(path) as old:
        old.executescript(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL "
            "UNIQUE, kind TEXT NOT NULL, sid TEXT, status TEXT, params TEXT NOT NULL, "
            "received_at REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL "
            "DEFAULT 0, next_attempt_at REAL NOT NULL, last_error TEXT, finished_at REAL);"
            "INSERT INTO events (key, kind, sid, status, params, received_at, state, "
            "next_attempt_at) VALUES ('old', 'sms', 'SM1', 'sent', '[]', 1, 'pending', 1);"
        )
    old.close()

    async def work(inbox: SQLiteInbox) -> list[Entry]:
        await inbox.put("new", "sms", SID, "delivered", params(), HEADERS)
        return await inbox.entries()

    new, previous = with_inbox(path, work)
    assert (new.key, new.headers) == ("new", tuple(HEADERS))
    assert (previous.key, previous.headers) == ("old", ())


class Waiting(SQLiteInbox):
    """A real SQLite inbox that waits 2 s for another writer's lock, 0.1 s during an outage."""

    busy_ms = 2000
    busy_ms_in_outage = 100


def test_what_queued_behind_a_refused_batch_fails_with_it(path: Path) -> None:
    # Another process holds the write lock.  The batch under way waits the busy
    # timeout, then fails; what queued meanwhile fails with it, instead of each
    # batch waiting as long again (a request then waited twice the timeout, past
    # Twilio's 15 s).  During the outage a batch waits the short timeout; once
    # the lock is gone the inbox stores again, with its usual timeout.
    from twilio_trigger.inbox import UnreachableError

    with_inbox(path, lambda inbox: put(inbox, "made"))  # the file exists
    other = sqlite3.connect(path, isolation_level=None)

    async def scenario() -> tuple[list[object], float, object, float, bool, Any]:
        inbox = Waiting(path)
        await inbox.open()
        try:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            first = asyncio.ensure_future(put(inbox, "first"))
            await asyncio.sleep(0)  # its operation is queued
            while not inbox._queue.empty():  # ... and taken by the writer
                assert time.monotonic() - started < 1.0, "the writer never took it"
                await asyncio.sleep(0.001)
            later = [asyncio.ensure_future(put(inbox, f"later-{n}")) for n in range(4)]
            failed = await asyncio.gather(first, *later, return_exceptions=True)
            waited = time.monotonic() - started
            started = time.monotonic()
            during = await asyncio.gather(put(inbox, "during"), return_exceptions=True)
            quick = time.monotonic() - started
            other.execute("ROLLBACK")
            stored = await put(inbox, "after")
            busy = await inbox._run(lambda c: c.execute("PRAGMA busy_timeout").fetchone()[0])
            return list(failed), waited, during[0], quick, stored, busy
        finally:
            await inbox.close()

    try:
        failed, waited, during, quick, stored, busy = run(scenario())
    finally:
        other.close()
    assert all(isinstance(error, UnreachableError) for error in failed), failed
    # One busy timeout (2 s) for all five, not one for the first and one more for the rest.
    assert waited < 3.5, waited
    assert isinstance(during, UnreachableError)
    assert quick < 1.5, quick  # the outage's 0.1 s, not the usual 2 s
    assert stored
    assert busy == 2000
    assert [row[1] for row in rows(path)] == ["made", "after"]


# -- a file deleted under the inbox, a disk that stops answering ----------------------
def test_a_file_deleted_while_open_refuses_writes_instead_of_losing_them(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by a crash audit: after `rm events.db*` the open connection kept
    # writing into the unlinked file, every request was answered 200, /readyz
    # said ready, and a restart found none of them.  Now each write is refused
    # (503), readiness fails, and the log says why, once.
    from twilio_trigger.inbox import UnreachableError

    async def scenario() -> tuple[bool, object, object, list[str]]:
        inbox = SQLiteInbox(path)
        await inbox.open()
        try:
            before = await put(inbox, "before")
            for suffix in ("", "-wal", "-shm"):  # what a cleanup script would do
                os.unlink(f"{path}{suffix}")
            after = await asyncio.gather(put(inbox, "after"), return_exceptions=True)
            ready = await asyncio.gather(inbox.check(), return_exceptions=True)
            return before, after[0], ready[0], sorted(p.name for p in path.parent.iterdir())
        finally:
            await inbox.close()

    caplog.set_level("INFO", logger="twilio_trigger")
    before, after, ready, left = run(scenario())
    assert before is True
    assert isinstance(after, UnreachableError)
    assert isinstance(ready, UnreachableError)
    assert "was deleted or replaced while the inbox had it open" in str(after)
    told = [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(told) == 1
    assert "events.db" not in left  # nothing wrote a new file in its place


class Hurried(SQLiteInbox):
    """A real SQLite inbox that gives a new event's write 0.2 s, not 10 s."""

    store_wait = 0.2


def test_a_write_the_disk_holds_is_answered_in_time_and_kept_when_it_lands(path: Path) -> None:
    # Found by a crash audit: on a disk that stopped answering (fsfreeze), the
    # requests waited 24 s for their writes, past Twilio's 15 s.  A new event's
    # write now fails as an outage after store_wait (the request is answered
    # 503); what it wrote stays written once the disk answers.
    from twilio_trigger.inbox import UnreachableError

    async def scenario() -> tuple[object, float, list[str]]:
        inbox = Hurried(path)
        await inbox.open()
        release = threading.Event()
        try:
            # The writer thread held in a batch, as by an fsync that does not return.
            stalled = asyncio.ensure_future(inbox._run(lambda _: release.wait(30)))
            started = time.monotonic()
            late = await asyncio.gather(put(inbox, "late"), return_exceptions=True)
            waited = time.monotonic() - started
            release.set()
            await stalled
            kept = [entry.key for entry in await inbox.entries()]
            return late[0], waited, kept
        finally:
            release.set()
            await inbox.close()

    late, waited, kept = run(scenario())
    assert isinstance(late, UnreachableError)
    assert "no answer from the file within 0.2 s" in str(late)
    assert waited < 5.0  # the store's limit, not the 30 s the disk held it
    assert kept == ["late"]


def test_an_outage_is_over_when_an_event_is_stored_again_not_when_a_read_passes(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by a crash audit: on a full disk, every read (or claim of nothing)
    # that passed said "can be reached again", and the next write "cannot be
    # reached": 17 of each in 17 s.  A full database (max_page_count) here.
    from twilio_trigger.inbox import UnreachableError

    caplog.set_level("INFO", logger="twilio_trigger")

    def told(text: str) -> int:
        return sum(text in r.getMessage() for r in caplog.records)

    async def scenario() -> tuple[int, int, int, int]:
        inbox = SQLiteInbox(path)
        await inbox.open()
        try:
            assert await put(inbox, "first")
            pages = await inbox._run(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
            await inbox._run(lambda c: c.execute(f"PRAGMA max_page_count={pages}"))
            big = [*params("delivered", SID), ("Body", "x" * 20_000)]
            failed = await asyncio.gather(
                *(inbox.put(f"big-{n}", "sms", SID, "delivered", big) for n in range(3)),
                return_exceptions=True,
            )
            assert all(isinstance(error, UnreachableError) for error in failed), failed
            down = told("cannot be reached")
            for _ in range(3):  # reads, and writes that need no room, pass
                await inbox.entries()
                await inbox.next_due()
                await inbox.claim(5)
            during = told("can be reached again")
            await inbox._run(lambda c: c.execute("PRAGMA max_page_count=1073741823"))
            assert await inbox.put("after", "sms", SID, "delivered", big)
            return down, during, told("can be reached again"), told("cannot be reached")
        finally:
            await inbox.close()

    down, during, back, down_in_all = run(scenario())
    assert (down, during, back, down_in_all) == (1, 0, 1, 1)


_HOLDER = """
import asyncio, sys
from twilio_trigger.inbox.sqlite import SQLiteInbox

async def main() -> None:
    inbox = SQLiteInbox(sys.argv[1])
    await inbox.open()
    print("open", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the test closes it
    await inbox.close()

asyncio.run(main())
"""


def test_a_second_process_cannot_dispatch_from_the_same_file(path: Path) -> None:
    # Found by a crash audit: a second `run` on the same file (an overlapping
    # deploy) started, called the first one's running entries interrupted and
    # made them pending again, to be run beside it.  One process per file is
    # enforced now; the command line can still look in; the next process, once
    # the first has stopped, opens it.
    import subprocess
    import sys

    from twilio_trigger import ConfigurationError

    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        assert holder.stdin is not None
        assert holder.stdout is not None
        try:
            assert holder.stdout.readline() == "open\n"
            with pytest.raises(ConfigurationError, match="another process dispatches from"):
                with_inbox(path, lambda inbox: inbox.stats())
            looked = subprocess.run(
                [sys.executable, "-m", "twilio_trigger", "inbox", "--inbox", f"sqlite:///{path}",
                 "stats"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert looked.returncode == 0, looked.stderr
        finally:
            holder.stdin.close()
            holder.wait(timeout=60)
    assert holder.returncode == 0
    assert with_inbox(path, lambda inbox: put(inbox, "after")) is True
