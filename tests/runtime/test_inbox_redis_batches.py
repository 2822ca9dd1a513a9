"""The Redis inbox's round trips: events stored together share one pipeline and one
confirmation, the entries of a claim start in one pipeline, outcomes recorded
together share one; and scripts Redis forgot are loaded again, not lost.

Counted on private redis-servers with ``INFO commandstats`` (what Redis itself
ran), so the figures are Redis's, not the client's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from redis.asyncio.connection import AbstractConnection

from tests.redis_support import MEMORY, RedisServer, own_redis, waitaof_redis
from twilio_trigger.inbox import Entry, State
from twilio_trigger.inbox.redis import RedisInbox
from twilio_trigger.testing import sms_status_params

__all__ = ["own_redis", "waitaof_redis"]  # fixtures, for pytest


def command(url: str, *args: Any) -> Any:
    """One command on its own connection to the Redis at *url*."""
    client = redis.Redis.from_url(url)
    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def calls(url: str) -> dict[str, int]:
    """Commands Redis ran since its statistics were last reset, by name."""
    client = redis.Redis.from_url(url)
    try:
        stats: dict[str, Any] = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def reset_calls(url: str) -> None:
    command(url, "CONFIG", "RESETSTAT")


def sid(n: int) -> str:
    return f"SM{n:032x}"


async def put(inbox: RedisInbox, n: int) -> bool:
    params = list(sms_status_params("delivered", sid=sid(n)).items())
    return await inbox.put(f"key-{n}", "sms", sid(n), "delivered", params)


def test_events_stored_together_share_one_pipeline_and_one_confirmation(
    waitaof_redis: RedisServer,
) -> None:
    # appendfsync everysec: each WAITAOF waits for the next fsync (up to a second);
    # twenty of them, one per event, would wait twenty times.
    async def scenario() -> tuple[list[bool], dict[str, int], list[Entry]]:
        inbox = RedisInbox(waitaof_redis.url)  # durability "fsync": WAITAOF
        await inbox.open()
        try:
            await put(inbox, 99)  # Redis learns the scripts (a first use loads them)
            reset_calls(waitaof_redis.url)
            added = await asyncio.gather(*(put(inbox, n) for n in range(20)))
            ran = calls(waitaof_redis.url)
            claimed = await inbox.claim(50)
            return added, ran, claimed
        finally:
            await inbox.close()

    added, ran, claimed = asyncio.run(scenario())
    assert added == [True] * 20
    assert ran["waitaof"] == 1  # one confirmation for the twenty
    assert ran["evalsha"] == 40  # each event's write, then its release once confirmed
    assert "script|exists" not in ran
    assert "script" not in ran
    assert sorted(entry.sid or "" for entry in claimed) == [sid(n) for n in [*range(20), 99]]
    assert all(entry.state is State.RUNNING for entry in claimed)


def test_a_claim_starts_its_entries_and_outcomes_are_recorded_together(
    own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Round trips are the client's to count: each time the inbox's connection sends
    # (one command, or a whole pipeline), to the real Redis all the same.
    sent: list[int] = []
    real_send = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        await real_send(self, command, check_health)

    async def scenario() -> tuple[int, int, int, dict[str, int], dict[State, int]]:
        inbox = RedisInbox(own_redis.url, durability=MEMORY)
        await inbox.open()
        try:
            await put(inbox, 99)  # Redis learns the scripts (a first use loads them)
            await inbox.succeed((await inbox.claim(1))[0].id)
            await asyncio.gather(*(put(inbox, n) for n in range(12)))
            reset_calls(own_redis.url)
            monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
            claimed = await inbox.claim(12)
            claiming = len(sent)
            await asyncio.gather(*(inbox.succeed(entry.id) for entry in claimed))
            finishing = len(sent) - claiming
            monkeypatch.undo()
            return len(claimed), claiming, finishing, calls(own_redis.url), await inbox.stats()
        finally:
            await inbox.close()

    claimed, claiming, finishing, ran, stats = asyncio.run(scenario())
    assert claimed == 12
    # The claim: promote due retries, read, then the twelve starts at once (and a look
    # for a silent worker's messages, when one is due: see the last test).
    assert claiming == 3 + ran.get("xautoclaim", 0)
    assert finishing == 1  # twelve outcomes recorded together
    assert ran["evalsha"] == 1 + 12 + 12  # each entry still started and finished
    assert ran["xreadgroup"] == 1
    assert stats[State.DONE] == 13
    assert stats[State.PENDING] == stats[State.RUNNING] == 0


def test_scripts_redis_forgot_are_loaded_again(own_redis: RedisServer) -> None:
    async def scenario() -> tuple[list[bool], list[int], dict[State, int]]:
        inbox = RedisInbox(own_redis.url, durability=MEMORY)
        await inbox.open()
        try:
            first = await asyncio.gather(*(put(inbox, n) for n in range(3)))
            flush(own_redis.url)  # as a restart or SCRIPT FLUSH leaves it
            more = await asyncio.gather(*(put(inbox, n) for n in range(3, 6)))
            flush(own_redis.url)
            claimed = await inbox.claim(10)
            flush(own_redis.url)
            await asyncio.gather(*(inbox.succeed(entry.id) for entry in claimed))
            return [*first, *more], sorted(entry.id for entry in claimed), await inbox.stats()
        finally:
            await inbox.close()

    added, claimed, stats = asyncio.run(scenario())
    assert added == [True] * 6
    assert len(claimed) == 6
    assert stats[State.DONE] == 6


def flush(url: str) -> None:
    command(url, "SCRIPT", "FLUSH")


def test_a_silent_workers_messages_are_looked_for_now_and_then_not_at_every_claim(
    own_redis: RedisServer,
) -> None:
    # A claim that finds nothing to take over does not look again for a while (a
    # quarter of claim_idle, a second at most); one that found a full batch does.
    async def scenario() -> tuple[int, int, list[int]]:
        silent = RedisInbox(own_redis.url, durability=MEMORY, claim_idle=0.2)
        await silent.open()
        try:
            await asyncio.gather(*(put(silent, n) for n in range(30)))
            taken = await silent.claim(30)
        finally:
            await silent.close()  # its entries never finished, its heartbeat stopped
        reset_calls(own_redis.url)
        idle = RedisInbox(own_redis.url, durability=MEMORY, claim_idle=3600)
        await idle.open()
        try:
            for _ in range(20):
                assert await idle.claim(5) == []  # not idle for an hour yet
        finally:
            await idle.close()
        looks = calls(own_redis.url).get("xautoclaim", 0)
        worker = RedisInbox(own_redis.url, durability=MEMORY, claim_idle=0.2)
        await worker.open()
        over: list[int] = []
        try:
            for _ in range(10_000):  # taken over once idle for 0.2 s, a full batch at a time
                over += [entry.id for entry in await worker.claim(10)]
                if len(over) >= 30:
                    break
        finally:
            await worker.close()
        return len(taken), looks, over

    taken, looks, over = asyncio.run(scenario())
    assert taken == 30
    assert 1 <= looks < 20  # not one per claim
    assert len(over) == 30
    assert len(set(over)) == 30
