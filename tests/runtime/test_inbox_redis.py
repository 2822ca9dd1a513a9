"""The Redis inbox against the shared Redis: every operation, two workers, takeover;
and against private redis-servers: what a Redis that loses its data is told, and how
events wait for the confirmation their durability asks for.

Each test works under its own key prefix (deleted afterwards); without Redis the
tests skip, or fail when ``TWILIO_TRIGGER_REQUIRE_REDIS=1``.  What the inbox says
is checked, where it matters, against the keys themselves read with a separate
client.  The shared Redis keeps nothing on disk, so the inbox opens it with
``durability="memory"``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis
from redis.asyncio import Redis

from tests.redis_support import (
    MEMORY,
    RedisServer,
    keys_under,
    own_redis,
    prefix,
    redis_url,
    waitaof_redis,
)
from twilio_trigger.inbox import Entry, State, UnreachableError, open_inbox
from twilio_trigger.inbox.redis import NotStoredError, RedisInbox
from twilio_trigger.testing import sms_status_params

__all__ = ["own_redis", "prefix", "redis_url", "waitaof_redis"]  # fixtures, for pytest

_T = TypeVar("_T")

SID = "SM" + "0123456789abcdef" * 2


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def with_inbox(
    url: str,
    key_prefix: str,
    work: Callable[[RedisInbox], Awaitable[_T]],
    *,
    claim_idle: float = 60.0,
    retention: float = 3600.0,
) -> _T:
    """Run *work* on a Redis inbox under *key_prefix*, opened and closed around it."""

    async def session() -> _T:
        inbox = RedisInbox(
            url, prefix=key_prefix, claim_idle=claim_idle, retention=retention, durability=MEMORY
        )
        await inbox.open()
        try:
            return await work(inbox)
        finally:
            await inbox.close()

    return run(session())


def params(status: str = "delivered", sid: str = SID) -> list[tuple[str, str]]:
    return list(sms_status_params(status, sid=sid).items())


async def put(inbox: RedisInbox, key: str, status: str = "delivered", sid: str = SID) -> bool:
    return await inbox.put(key, "sms", sid, status, params(status, sid))


async def drain(inbox: RedisInbox) -> list[Entry]:
    """Claim until nothing more is due."""
    claimed: list[Entry] = []
    while batch := await inbox.claim(50):
        claimed.extend(batch)
    return claimed


# -- open, put, duplicates ---------------------------------------------------------
def test_open_is_idempotent_and_an_empty_inbox_counts_nothing(redis_url: str, prefix: str) -> None:
    async def work(inbox: RedisInbox) -> tuple[int, int, dict[State, int], list[Entry]]:
        first = await inbox.open()  # a second open on the same inbox
        other = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
        try:
            second = await other.open()  # and a third, from another object
        finally:
            await other.close()
        return first, second, await inbox.stats(), await inbox.claim(10)

    first, second, stats, claimed = with_inbox(redis_url, prefix, work)
    assert (first, second) == (0, 0)
    assert stats == dict.fromkeys(State, 0)
    assert claimed == []
    client = redis.Redis.from_url(redis_url)
    try:
        groups = client.xinfo_groups(f"{prefix}inbox:stream")
    finally:
        client.close()
    assert [g["name"] for g in groups] == [b"workers"]


def test_open_inbox_selects_redis_for_a_redis_url(redis_url: str, prefix: str) -> None:
    inbox = open_inbox(redis_url, prefix=prefix, claim_idle=5.0)
    assert isinstance(inbox, RedisInbox)
    assert inbox.location == redis_url
    run(inbox.close())


def test_put_stores_a_pending_entry_and_refuses_a_copy(redis_url: str, prefix: str) -> None:
    sent = [*params(), ("Body", "second value \U0001f4e6"), ("Body", "é ü")]

    async def work(inbox: RedisInbox) -> tuple[bool, bool, list[Entry], dict[State, int]]:
        added = await inbox.put("k1", "sms", SID, "delivered", sent)
        again = await inbox.put("k1", "sms", SID, "delivered", sent)
        return added, again, await inbox.entries(), await inbox.stats()

    before = time.time()
    added, again, entries, stats = with_inbox(redis_url, prefix, work)
    assert (added, again) == (True, False)
    (entry,) = entries
    assert entry.key == "k1"
    assert entry.kind == "sms"
    assert entry.sid == SID
    assert entry.status == "delivered"
    assert entry.params == tuple(sent)
    assert entry.state is State.PENDING
    assert entry.attempts == 0
    assert before - 1 <= entry.received_at <= time.time() + 1
    assert entry.last_error is None
    assert entry.finished_at is None
    assert stats[State.PENDING] == 1
    assert sum(stats.values()) == 1


def test_a_copy_is_refused_from_another_inbox_object_too(redis_url: str, prefix: str) -> None:
    assert with_inbox(redis_url, prefix, lambda inbox: put(inbox, "same")) is True
    assert with_inbox(redis_url, prefix, lambda inbox: put(inbox, "same")) is False
    assert with_inbox(redis_url, prefix, lambda inbox: inbox.stats())[State.PENDING] == 1


# -- claim, succeed --------------------------------------------------------------------
def test_claim_runs_entries_with_attempt_one(redis_url: str, prefix: str) -> None:
    async def work(inbox: RedisInbox) -> tuple[list[Entry], list[Entry], dict[State, int]]:
        for n in range(3):
            await put(inbox, f"k{n}", sid=f"SM{n:032d}")
        claimed = await inbox.claim(10)
        return claimed, await inbox.claim(10), await inbox.stats()

    claimed, again, stats = with_inbox(redis_url, prefix, work)
    assert sorted(e.key for e in claimed) == ["k0", "k1", "k2"]
    assert all(e.attempts == 1 and e.state is State.RUNNING for e in claimed)
    assert again == []
    assert stats[State.RUNNING] == 3
    assert stats[State.PENDING] == 0


def test_claim_honours_its_limit(redis_url: str, prefix: str) -> None:
    async def work(inbox: RedisInbox) -> tuple[int, int, int]:
        for n in range(5):
            await put(inbox, f"k{n}")
        first = len(await inbox.claim(2))
        second = len(await inbox.claim(2))
        return first, second, len(await inbox.claim(2))

    assert with_inbox(redis_url, prefix, work) == (2, 2, 1)


def test_succeed_makes_the_entry_done(redis_url: str, prefix: str) -> None:
    async def work(inbox: RedisInbox) -> tuple[Entry | None, dict[State, int], list[Entry]]:
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        await inbox.succeed(entry.id)
        return await inbox.get(entry.id), await inbox.stats(), await inbox.claim(5)

    before = time.time()
    entry, stats, claimed = with_inbox(redis_url, prefix, work)
    assert entry is not None
    assert entry.state is State.DONE
    assert entry.attempts == 1
    assert entry.finished_at is not None
    assert before - 1 <= entry.finished_at <= time.time() + 1
    assert stats == {State.PENDING: 0, State.RUNNING: 0, State.DONE: 1, State.DEAD: 0}
    assert claimed == []


# -- retry -------------------------------------------------------------------------------
def test_a_retried_entry_is_claimable_only_once_due(redis_url: str, prefix: str) -> None:
    async def work(inbox: RedisInbox) -> dict[str, Any]:
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        at = time.time() + 1.0  # room for the four calls below, even on a loaded machine
        await inbox.retry(entry.id, "boom: carrier down", at)
        seen: dict[str, Any] = {
            "at": at,
            "waiting": await inbox.get(entry.id),
            "stats": await inbox.stats(),
            "next_due": await inbox.next_due(),
            "early": await inbox.claim(5),
        }
        await asyncio.sleep(max(0.0, at + 0.1 - time.time()))
        seen["late"] = await inbox.claim(5)
        seen["next_due_after"] = await inbox.next_due()
        return seen

    seen = with_inbox(redis_url, prefix, work)
    waiting = seen["waiting"]
    assert waiting.state is State.PENDING
    assert waiting.last_error == "boom: carrier down"
    assert abs(waiting.next_attempt_at - seen["at"]) < 0.001
    assert seen["stats"][State.PENDING] == 1
    assert seen["stats"][State.RUNNING] == 0
    assert seen["next_due"] is not None
    assert abs(seen["next_due"] - seen["at"]) < 0.001
    assert seen["early"] == []
    (late,) = seen["late"]
    assert late.id == waiting.id
    assert late.attempts == 2
    assert late.state is State.RUNNING
    assert seen["next_due_after"] is None


# -- bury, replay, purge -------------------------------------------------------------------
def test_bury_keeps_a_dead_letter(redis_url: str, prefix: str) -> None:
    async def work(inbox: RedisInbox) -> tuple[list[Entry], dict[State, int], list[Entry]]:
        await put(inbox, "dead-one", sid="SM" + "1" * 32)
        await put(inbox, "done-one", sid="SM" + "2" * 32)
        claimed = {e.key: e for e in await inbox.claim(5)}
        await inbox.bury(claimed["dead-one"].id, "Traceback ...\nValueError: nope")
        await inbox.succeed(claimed["done-one"].id)
        return await inbox.entries(State.DEAD), await inbox.stats(), await inbox.claim(5)

    dead, stats, claimed = with_inbox(redis_url, prefix, work)
    (entry,) = dead
    assert entry.key == "dead-one"
    assert entry.state is State.DEAD
    assert entry.last_error == "Traceback ...\nValueError: nope"
    assert entry.finished_at is not None
    assert stats == {State.PENDING: 0, State.RUNNING: 0, State.DONE: 1, State.DEAD: 1}
    assert claimed == []


def _bury_all(count: int) -> Callable[[RedisInbox], Awaitable[list[int]]]:
    async def work(inbox: RedisInbox) -> list[int]:
        for n in range(count):
            await put(inbox, f"k{n}", sid=f"SM{n:032d}")
        ids = []
        for entry in await drain(inbox):
            await inbox.bury(entry.id, f"failed {entry.key}")
            ids.append(entry.id)
        return sorted(ids)

    return work


def test_replay_of_given_ids_makes_them_claimable_with_fresh_attempts(
    redis_url: str, prefix: str
) -> None:
    ids = with_inbox(redis_url, prefix, _bury_all(3))
    assert len(ids) == 3

    async def work(inbox: RedisInbox) -> tuple[int, dict[State, int], list[Entry], list[Entry]]:
        count = await inbox.replay(ids[:2])
        stats = await inbox.stats()
        return count, stats, await drain(inbox), await inbox.entries(State.DEAD)

    count, stats, claimed, dead = with_inbox(redis_url, prefix, work)
    assert count == 2
    assert stats == {State.PENDING: 2, State.RUNNING: 0, State.DONE: 0, State.DEAD: 1}
    assert sorted(e.id for e in claimed) == ids[:2]
    assert all(e.attempts == 1 for e in claimed)
    assert [e.id for e in dead] == [ids[2]]


def test_replay_without_ids_replays_every_dead_letter(redis_url: str, prefix: str) -> None:
    ids = with_inbox(redis_url, prefix, _bury_all(4))

    async def work(inbox: RedisInbox) -> tuple[int, list[Entry], list[Entry], dict[State, int]]:
        count = await inbox.replay()
        claimed = await drain(inbox)
        for entry in claimed:
            await inbox.succeed(entry.id)
        return count, claimed, await inbox.entries(State.DEAD), await inbox.stats()

    count, claimed, dead, stats = with_inbox(redis_url, prefix, work)
    assert count == 4
    assert sorted(e.id for e in claimed) == ids
    assert all(e.attempts == 1 and e.state is State.RUNNING for e in claimed)
    assert dead == []
    assert stats == {State.PENDING: 0, State.RUNNING: 0, State.DONE: 4, State.DEAD: 0}


def test_replay_skips_running_and_missing_entries(redis_url: str, prefix: str) -> None:
    async def work(inbox: RedisInbox) -> tuple[int, list[Entry]]:
        await put(inbox, "k1")
        (entry,) = await inbox.claim(1)
        count = await inbox.replay([entry.id, 999_999])
        return count, await inbox.claim(5)

    count, claimed = with_inbox(redis_url, prefix, work)
    assert count == 0
    assert claimed == []


def test_purge_deletes_dead_letters(redis_url: str, prefix: str) -> None:
    ids = with_inbox(redis_url, prefix, _bury_all(2))

    async def work(inbox: RedisInbox) -> tuple[int, int, list[Entry], list[Entry | None]]:
        kept = await inbox.purge(State.DEAD, 3600)  # none finished an hour ago
        purged = await inbox.purge(State.DEAD, 0)
        return kept, purged, await inbox.entries(), [await inbox.get(i) for i in ids]

    kept, purged, remaining, got = with_inbox(redis_url, prefix, work)
    assert (kept, purged) == (0, 2)
    assert remaining == []
    assert got == [None, None]
    assert with_inbox(redis_url, prefix, lambda inbox: inbox.stats()) == dict.fromkeys(State, 0)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists(*(f"{prefix}inbox:e:{i}" for i in ids)) == 0
    finally:
        client.close()


# -- stats ---------------------------------------------------------------------------------
def test_stats_count_every_state(redis_url: str, prefix: str) -> None:
    async def work(inbox: RedisInbox) -> dict[State, int]:
        for n in range(10):
            await put(inbox, f"k{n}", sid=f"SM{n:032d}")
        claimed = await inbox.claim(7)  # 3 left pending
        for entry in claimed[:2]:
            await inbox.succeed(entry.id)  # 2 done
        for entry in claimed[2:3]:
            await inbox.bury(entry.id, "dead")  # 1 dead
        for entry in claimed[3:4]:
            await inbox.retry(entry.id, "later", time.time() + 60)  # 1 more pending
        return await inbox.stats()  # 3 running

    stats = with_inbox(redis_url, prefix, work)
    assert stats == {State.PENDING: 4, State.RUNNING: 3, State.DONE: 2, State.DEAD: 1}


# -- two workers ----------------------------------------------------------------------------
def test_two_inboxes_claiming_concurrently_never_share_an_entry(
    redis_url: str, prefix: str
) -> None:
    total = 200

    async def work() -> tuple[set[int], list[list[int]]]:
        first = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
        second = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
        await first.open()
        await second.open()
        try:
            ids: set[int] = set()
            for n in range(total):
                assert await put(first, f"k{n}", sid=f"SM{n:032d}")
            ids = {e.id for e in await first.entries(limit=total + 10)}

            async def worker(inbox: RedisInbox) -> list[int]:
                mine: list[int] = []
                while batch := await inbox.claim(7):
                    for entry in batch:
                        mine.append(entry.id)
                        await inbox.succeed(entry.id)
                    await asyncio.sleep(0)
                return mine

            got = await asyncio.gather(worker(first), worker(second))
            return ids, list(got)
        finally:
            await first.close()
            await second.close()

    ids, (one, two) = run(work())
    assert len(ids) == total
    assert len(one) == len(set(one))
    assert len(two) == len(set(two))
    assert set(one) & set(two) == set()
    assert set(one) | set(two) == ids
    assert one, "the first worker claimed nothing"
    assert two, "the second worker claimed nothing"


def test_an_abandoned_running_entry_is_taken_over_after_claim_idle(
    redis_url: str, prefix: str
) -> None:
    async def work() -> dict[str, Any]:
        dead = RedisInbox(redis_url, prefix=prefix, claim_idle=1.0, durability=MEMORY)
        alive = RedisInbox(redis_url, prefix=prefix, claim_idle=1.0, durability=MEMORY)
        await dead.open()
        await alive.open()
        try:
            await put(dead, "k1", sid="SM" + "a" * 32)
            await put(dead, "k2", sid="SM" + "b" * 32)
            taken = await dead.claim(5)
            await dead.close()  # the worker dies: it never finishes them
            seen: dict[str, Any] = {"taken": taken, "early": await alive.claim(5)}
            await asyncio.sleep(1.2)
            over = await alive.claim(5)
            seen["over"] = over
            for entry in over:
                await alive.succeed(entry.id)
            seen["stats"] = await alive.stats()
            seen["after"] = await alive.claim(5)
            return seen
        finally:
            await alive.close()

    seen = run(work())
    assert len(seen["taken"]) == 2
    assert seen["early"] == []
    over = seen["over"]
    assert sorted(e.id for e in over) == sorted(e.id for e in seen["taken"])
    assert all(e.attempts == 2 and e.state is State.RUNNING for e in over)
    assert seen["stats"] == {State.PENDING: 0, State.RUNNING: 0, State.DONE: 2, State.DEAD: 0}
    assert seen["after"] == []


def test_a_dead_letter_is_told_on_the_dead_letter_stream_and_purged_from_it(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> tuple[list[Any], int]:
        inbox = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
        client = Redis.from_url(redis_url)
        try:
            await inbox.open()
            await inbox.put(
                "t:dead", "sms", "SM" + "d" * 32, "failed", [("MessageStatus", "failed")]
            )
            (entry,) = await inbox.claim(10)
            await inbox.bury(entry.id, "RuntimeError: no luck")
            letters: Any = await client.xrange(f"{prefix}inbox:dead-letters")
            await inbox.purge(State.DEAD, 0)
            left: int = await client.xlen(f"{prefix}inbox:dead-letters")
            return letters, left
        finally:
            await inbox.close()
            await client.aclose()

    letters, left = asyncio.run(scenario())
    assert len(letters) == 1
    fields = {k.decode(): v.decode() for k, v in letters[0][1].items()}
    assert fields["sid"] == "SM" + "d" * 32
    assert fields["status"] == "failed"
    assert fields["attempts"] == "1"
    assert fields["error"] == "RuntimeError: no luck"
    assert left == 0


def test_the_headers_given_are_kept_with_the_entry(redis_url: str, prefix: str) -> None:
    headers = [("x-home-region", "us1"), ("user-agent", "TwilioProxy/1.1")]

    async def work(inbox: RedisInbox) -> list[Entry]:
        await inbox.put("with", "sms", SID, "delivered", params(), headers)
        await inbox.put("without", "sms", SID, "sent", params("sent"))
        return await inbox.entries()

    without, kept = with_inbox(redis_url, prefix, work)
    assert (kept.key, kept.headers) == ("with", tuple(headers))
    assert (without.key, without.headers) == ("without", ())


# -- a Redis that loses its data ----------------------------------------------------------
def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The ERRORs of the package, but the outage a restart is (its closed connections:
    told once, see tests/e2e/test_bad_day_logs.py)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "twilio_trigger"
        and r.levelno == logging.ERROR
        and "cannot be reached" not in r.getMessage()
    ]


async def reconnected(call: Callable[[], Awaitable[_T]]) -> _T:
    """*call* once the client's connections to the restarted Redis are replaced: the
    first command on a connection the restart closed fails, as a worker's poll would."""
    for _ in range(5):
        try:
            return await call()
        except UnreachableError:
            continue
    return await call()


def test_a_redis_back_empty_is_an_error_counting_what_was_lost(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> dict[str, Any]:
        inbox = RedisInbox(own_redis.url, durability=MEMORY)
        await inbox.open()
        try:
            for n in range(3):
                await put(inbox, f"k{n}", sid=f"SM{n:032d}")
            (running,) = await inbox.claim(1)  # one running, two waiting
            caplog.clear()
            own_redis.stop()  # no persistence: it comes back empty
            own_redis.start()
            seen: dict[str, Any] = {"after": await reconnected(lambda: inbox.claim(5))}
            seen["errors"] = errors(caplog)
            await inbox.succeed(running.id)  # its callback ends after the loss
            assert await put(inbox, "new", sid="SM" + "9" * 32)
            seen["fresh"] = await inbox.claim(5)
            seen["stats"] = await inbox.stats()
            return seen
        finally:
            await inbox.close()

    seen = run(scenario())
    assert seen["after"] == []
    (error,) = seen["errors"]
    assert "lost its data" in error
    assert "3 events not yet dispatched" in error
    assert "ids up to 3" in error
    assert "redis_durability=memory" in error
    # Ids go on from the highest seen, so no new event takes a lost one's id, and
    # the outcome of an entry claimed before the loss is not written anywhere.
    (fresh,) = seen["fresh"]
    assert fresh.id == 4
    assert fresh.sid == "SM" + "9" * 32
    assert seen["stats"] == {State.PENDING: 0, State.RUNNING: 1, State.DONE: 0, State.DEAD: 0}
    assert "twilio-trigger:inbox:e:1" not in keys_under(own_redis.url, "twilio-trigger:")


def test_a_redis_back_from_an_older_copy_is_an_error_naming_the_ids_lost(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> tuple[list[str], list[Entry], bool]:
        inbox = RedisInbox(own_redis.url, durability=MEMORY)
        client = Redis.from_url(own_redis.url)
        await inbox.open()
        try:
            for n in range(2):
                await put(inbox, f"old{n}", sid=f"SM{n:032d}")
            await client.save()  # the copy it will come back from
            for n in range(3):
                await put(inbox, f"new{n}", sid=f"SM{n + 2:032d}")
            caplog.clear()
            own_redis.stop()
            own_redis.start()  # loads the copy: two events, seq 2
            claimed = await reconnected(lambda: drain(inbox))
            added = await put(inbox, "after", sid="SM" + "8" * 32)
            return errors(caplog), claimed + await inbox.claim(5), added
        finally:
            await inbox.close()
            await client.aclose()

    found, claimed, added = run(scenario())
    (error,) = found
    assert "went back to an older copy" in error
    assert "went from 5 to 2" in error
    assert "the 3 events stored after that copy (ids 3 to 5)" in error
    assert added
    # What the copy held is dispatched; the next event does not reuse a lost id.
    assert sorted(e.id for e in claimed) == [1, 2, 6]


def test_a_deleted_stream_is_made_anew_and_told(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def work(inbox: RedisInbox) -> tuple[list[Entry], list[str], list[Entry]]:
        await put(inbox, "k1")
        (entry,) = await inbox.entries()
        client = Redis.from_url(redis_url)
        try:
            await client.delete(f"{prefix}inbox:stream")
        finally:
            await client.aclose()
        caplog.clear()
        nothing = await inbox.claim(5)
        told = errors(caplog)
        await inbox.replay([entry.id])  # what the error says to do
        return nothing, told, await inbox.claim(5)

    nothing, told, replayed = with_inbox(redis_url, prefix, work)
    assert nothing == []
    (error,) = told
    assert "work queue" in error
    assert "inbox replay ID" in error
    assert [e.key for e in replayed] == ["k1"]


# -- durability: held until confirmed -----------------------------------------------------
def test_an_event_not_confirmed_is_withdrawn_and_never_claimed(redis_url: str, prefix: str) -> None:
    # The shared Redis has no replica: WAIT 1 never confirms.
    async def scenario() -> dict[str, Any]:
        listener = RedisInbox(redis_url, prefix=prefix, durability="replicas:1", wait_timeout=0.5)
        worker = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
        await listener.open()
        await worker.open()
        try:
            storing = asyncio.ensure_future(put(listener, "k1"))
            claimed: list[Entry] = []
            looks = 0
            while not storing.done():  # a worker polling all along
                claimed += await worker.claim(5)
                looks += 1
            refused = storing.exception()
            again = await asyncio.gather(put(listener, "k1"), return_exceptions=True)
            claimed += await worker.claim(5)
            return {
                "claimed": claimed,
                "looks": looks,
                "refused": refused,
                "again": again[0],
                "entries": await worker.entries(),
                "stats": await worker.stats(),
            }
        finally:
            await listener.close()
            await worker.close()

    seen = run(scenario())
    assert seen["looks"] > 1
    assert isinstance(seen["refused"], NotStoredError)
    assert "0 of the 1 replicas required confirmed the event within 0.5 s" in str(seen["refused"])
    assert isinstance(seen["again"], NotStoredError)  # Twilio's retry: refused too
    assert seen["claimed"] == []
    assert seen["entries"] == []
    assert seen["stats"] == dict.fromkeys(State, 0)
    stored = [k for k in keys_under(redis_url, prefix) if ":e:" in k or ":k:" in k]
    assert stored == []


def test_waitaof_confirmed_events_are_taken_at_once_even_if_put_aside(
    waitaof_redis: RedisServer,
) -> None:
    # appendfsync everysec: each write waits for the next fsync, up to a second, while
    # a worker polls; it puts the held event aside, and must take it once confirmed,
    # not when the hold would lapse (30 s later).
    async def scenario() -> dict[str, Any]:
        listener = RedisInbox(waitaof_redis.url)
        worker = RedisInbox(waitaof_redis.url, durability=MEMORY)
        await listener.open()
        await worker.open()
        try:
            taken: list[Entry] = []
            added = []
            for n in range(3):
                storing = asyncio.ensure_future(put(listener, f"k{n}", sid=f"SM{n:032d}"))
                while not storing.done():
                    taken += await worker.claim(5)
                added.append(storing.result())
            deadline = time.monotonic() + 10
            while len(taken) < 3 and time.monotonic() < deadline:
                taken += await worker.claim(5)
            client = Redis.from_url(waitaof_redis.url)
            try:
                holds = [await client.hget(f"twilio-trigger:inbox:e:{e.id}", "hold") for e in taken]
            finally:
                await client.aclose()
            return {
                "added": added,
                "taken": taken,
                "holds": holds,
                "confirm": listener._durability.confirm,
            }
        finally:
            await listener.close()
            await worker.close()

    seen = run(scenario())
    assert seen["confirm"] == (("WAITAOF", 1, 0, 2000),)
    assert seen["added"] == [True, True, True]
    assert sorted(e.key for e in seen["taken"]) == ["k0", "k1", "k2"]
    assert seen["holds"] == [None, None, None]
    # An event put aside while held got its attempt time moved; at least one was.
    aside = [e for e in seen["taken"] if e.next_attempt_at != e.received_at]
    assert aside, "no event was put aside while it waited: the test proved nothing"
