"""The Redis stores against a real Redis: claims, leases, expiry, status order, memory.

Every test works under its own key prefix (``prefix`` fixture) on the shared Redis at
127.0.0.1:6379 and deletes its keys afterwards; without that Redis the tests skip,
or fail when ``TWILIO_TRIGGER_REQUIRE_REDIS=1``.  Async store calls run with
``asyncio.run`` inside plain tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.redis_support import keys_under, prefix, redis_url
from twilio_trigger._core.order import Position, Standing, settle
from twilio_trigger.stores import Claim
from twilio_trigger.stores.memory import MemoryStatusStore
from twilio_trigger.stores.redis import RedisDeliveryStore, RedisStatusStore, connect

__all__ = ["prefix", "redis_url"]  # the fixtures, imported for pytest to find

_T = TypeVar("_T")

#: Long enough that nothing expires during a test unless the test says so.
LONG = 60.0
#: A lease or ttl a test lets run out: long enough that the few Redis calls made
#: before it ends fit in it even on a loaded machine, and slept past.
SHORT = 1.0
PAST_SHORT = SHORT + 0.3


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def token_key() -> str:
    """A delivery key as the listener makes it from an I-Twilio-Idempotency-Token."""
    return f"t:{uuid.uuid4()}"


def sid_key() -> str:
    """A status key as the listener makes it: the event's kind and SID."""
    return f"sms:SM{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def deliveries(
    url: str, key_prefix: str, *, ttl: float = LONG, lease: float = LONG
) -> AsyncIterator[RedisDeliveryStore]:
    store = RedisDeliveryStore(connect(url), prefix=key_prefix, ttl=ttl, lease=lease)
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def statuses(
    url: str, key_prefix: str, *, ttl: float = LONG
) -> AsyncIterator[RedisStatusStore]:
    store = RedisStatusStore(connect(url), prefix=key_prefix, ttl=ttl)
    try:
        yield store
    finally:
        await store.close()


# -- claims ----------------------------------------------------------------------------
def test_claim_then_busy_then_done_after_complete(redis_url: str, prefix: str) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with deliveries(redis_url, prefix) as first, deliveries(redis_url, prefix) as other:
            seen = [await first.claim(key), await first.claim(key), await other.claim(key)]
            await first.complete(key)
            seen += [await first.claim(key), await other.claim(key)]
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.BUSY, Claim.BUSY, Claim.DONE, Claim.DONE]


def test_release_lets_the_next_claim_acquire(redis_url: str, prefix: str) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with deliveries(redis_url, prefix) as first, deliveries(redis_url, prefix) as other:
            seen = [await first.claim(key)]
            await first.release(key)
            seen += [await other.claim(key), await first.claim(key)]
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.ACQUIRED, Claim.BUSY]


def test_release_does_not_forget_a_completed_delivery(redis_url: str, prefix: str) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with deliveries(redis_url, prefix) as store:
            seen = [await store.claim(key)]
            await store.complete(key)
            await store.release(key)  # a late release of the same key, e.g. another copy's
            seen.append(await store.claim(key))
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.DONE]
    assert keys_under(redis_url, prefix) == [f"{prefix}d:{key}"]


def test_a_late_release_does_not_free_another_listeners_claim(redis_url: str, prefix: str) -> None:
    # A's lease ran out while its callback still ran; B claimed the retry.  A's callback
    # then fails and A releases: B's claim must stand, or a third copy runs beside B's.
    key = token_key()

    async def scenario() -> list[Claim]:
        async with (
            deliveries(redis_url, prefix, lease=SHORT) as a,
            deliveries(redis_url, prefix, lease=LONG) as b,
            deliveries(redis_url, prefix) as c,
        ):
            seen = [await a.claim(key)]
            await asyncio.sleep(PAST_SHORT)
            seen.append(await b.claim(key))
            await a.release(key)
            seen.append(await c.claim(key))
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.ACQUIRED, Claim.BUSY]


def test_release_of_an_unknown_key_is_harmless(redis_url: str, prefix: str) -> None:
    key = token_key()

    async def scenario() -> Claim:
        async with deliveries(redis_url, prefix) as store:
            await store.release(key)
            return await store.claim(key)

    assert run(scenario()) is Claim.ACQUIRED


def test_a_busy_claim_expires_with_its_lease(redis_url: str, prefix: str) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with (
            deliveries(redis_url, prefix, lease=SHORT) as dead,
            deliveries(redis_url, prefix, lease=SHORT) as alive,
        ):
            seen = [await dead.claim(key), await alive.claim(key)]
            await asyncio.sleep(PAST_SHORT)  # the claimer died without completing or releasing
            seen.append(await alive.claim(key))
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.BUSY, Claim.ACQUIRED]


def test_done_keys_and_statuses_expire_after_the_ttl(redis_url: str, prefix: str) -> None:
    key, sid = token_key(), sid_key()

    async def scenario() -> tuple[list[Claim], list[Standing], int, int]:
        async with (
            deliveries(redis_url, prefix, ttl=SHORT) as store,
            statuses(redis_url, prefix, ttl=SHORT) as order,
        ):
            claims = [await store.claim(key)]
            await store.complete(key)
            claims.append(await store.claim(key))
            standings = [await order.observe(sid, "delivered", 4)]
            done_ttl = int(await store._client.pttl(f"{prefix}d:{key}"))
            status_ttl = int(await order._client.pttl(f"{prefix}s:{sid}"))
            await asyncio.sleep(PAST_SHORT)
            claims.append(await store.claim(key))
            # Forgotten: a stale "sent" is no longer recognised as stale.
            standings.append(await order.observe(sid, "sent", 3))
            return claims, standings, done_ttl, status_ttl

    claims, standings, done_ttl, status_ttl = run(scenario())
    assert claims == [Claim.ACQUIRED, Claim.DONE, Claim.ACQUIRED]
    assert standings == [Standing(None, False), Standing(None, False)]
    assert 0 < done_ttl <= SHORT * 1000
    assert 0 < status_ttl <= SHORT * 1000


def test_every_key_lives_under_the_prefix(redis_url: str, prefix: str) -> None:
    key, sid = token_key(), sid_key()
    elsewhere = f"{prefix}other:"  # a second deployment on the same Redis

    async def scenario() -> tuple[list[Claim], Standing]:
        async with (
            deliveries(redis_url, prefix) as store,
            statuses(redis_url, prefix) as order,
            deliveries(redis_url, elsewhere) as other,
            statuses(redis_url, elsewhere) as other_order,
        ):
            claims = [await store.claim(key)]
            await store.complete(key)
            await order.observe(sid, "delivered", 4)
            claims.append(await other.claim(key))  # another prefix: another namespace
            return claims, await other_order.observe(sid, "sent", 3)

    claims, standing = run(scenario())
    assert claims == [Claim.ACQUIRED, Claim.ACQUIRED]
    assert standing == Standing(None, False)
    assert keys_under(redis_url, prefix) == sorted(
        [f"{prefix}d:{key}", f"{prefix}s:{sid}", f"{elsewhere}d:{key}", f"{elsewhere}s:{sid}"]
    )


# -- status order ------------------------------------------------------------------------
#: Statuses the listener passes (lowercased, stripped), and some made-up ones.
_STATUSES = st.sampled_from(
    ["accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read",
     "ringing", "in-progress", "completed", "busy", "no-answer", "réçu"]
)  # fmt: skip
#: Mostly small ranks, so that they collide; sometimes the largest SequenceNumbers.
_RANKS = st.integers(0, 6) | st.sampled_from([99_999_999, 999_999_998, 999_999_999])
_STEPS = st.lists(st.tuples(_STATUSES, _RANKS), min_size=1, max_size=8)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=_STEPS)
def test_observe_follows_settle_step_by_step(
    redis_url: str, prefix: str, steps: list[tuple[str, int]]
) -> None:
    key = sid_key()  # a fresh SID for every example

    async def scenario() -> list[tuple[Standing, Standing]]:
        memory = MemoryStatusStore(ttl=LONG, limit=100)
        pairs = []
        async with statuses(redis_url, prefix) as store:
            for status, rank in steps:
                pairs.append(
                    (
                        await store.observe(key, status, rank),
                        await memory.observe(key, status, rank),
                    )
                )
        return pairs

    known: Position | None = None
    for step, (in_redis, in_memory) in zip(steps, run(scenario()), strict=True):
        expected, position = settle(known, *step)
        known = position or known
        assert in_redis == expected, (step, steps)
        assert in_memory == expected, (step, steps)


# -- concurrency ---------------------------------------------------------------------------
def test_fifty_concurrent_claims_acquire_exactly_once(redis_url: str, prefix: str) -> None:
    key = token_key()

    async def scenario() -> tuple[list[Claim], list[Claim]]:
        async with contextlib.AsyncExitStack() as stack:
            stores = [
                await stack.enter_async_context(deliveries(redis_url, prefix)) for _ in range(5)
            ]
            claims = await asyncio.gather(*(stores[i % 5].claim(key) for i in range(50)))
            winner = claims.index(Claim.ACQUIRED)
            await stores[winner % 5].complete(key)
            after = await asyncio.gather(*(stores[i % 5].claim(key) for i in range(50)))
            return list(claims), list(after)

    claims, after = run(scenario())
    assert claims.count(Claim.ACQUIRED) == 1, claims
    assert claims.count(Claim.BUSY) == 49, claims
    assert after == [Claim.DONE] * 50


def test_concurrent_observes_keep_the_most_advanced_status(redis_url: str, prefix: str) -> None:
    sid = sid_key()
    lifecycle = [("queued", 1), ("sending", 2), ("sent", 3), ("delivered", 4), ("read", 5)]

    async def scenario() -> tuple[list[Standing], Standing]:
        async with contextlib.AsyncExitStack() as stack:
            stores = [
                await stack.enter_async_context(statuses(redis_url, prefix)) for _ in range(5)
            ]
            standings = await asyncio.gather(
                *(stores[i % 5].observe(sid, *lifecycle[i % 5]) for i in range(25))
            )
            return list(standings), await stores[0].observe(sid, "accepted", 0)

    standings, last = run(scenario())
    assert last == Standing("read", True)
    # Whatever the interleaving, the first to arrive saw nothing before it (so do
    # repeats of its status while it is still the current one, as in settle()).
    assert sum(standing.previous_status is None for standing in standings) >= 1, standings
    assert sum(standing.previous_status is None for standing in standings) <= 5, standings


# -- memory ------------------------------------------------------------------------------
MAX_BYTES_PER_KEY = 300


def test_memory_per_remembered_key_is_small(redis_url: str, prefix: str) -> None:
    key, sid = token_key(), sid_key()

    async def scenario() -> tuple[int, int]:
        async with deliveries(redis_url, prefix) as store, statuses(redis_url, prefix) as order:
            assert await store.claim(key) is Claim.ACQUIRED
            await store.complete(key)
            await order.observe(sid, "sent", 3)
            await order.observe(sid, "delivered", 4)
            client = store._client
            done = await client.memory_usage(f"{prefix}d:{key}", samples=0)
            status = await client.memory_usage(f"{prefix}s:{sid}", samples=0)
            assert done is not None, "the done key is missing"
            assert status is not None, "the status hash is missing"
            return done, status

    done, status = run(scenario())
    sizes = (
        f"MEMORY USAGE: done key {done} bytes, status hash {status} bytes "
        f"(prefix {len(prefix)} chars, limit {MAX_BYTES_PER_KEY})"
    )
    print(sizes)
    assert 0 < done < MAX_BYTES_PER_KEY, sizes
    assert 0 < status < MAX_BYTES_PER_KEY, sizes


# A whitespace-only CallStatus with a SequenceNumber reaches the status store as "":
# settle remembers "" as a status like any other, and so must Redis.
@pytest.mark.parametrize("status", ["", "x"])
def test_observe_matches_settle_for_an_empty_status(
    redis_url: str, prefix: str, status: str
) -> None:
    sid = sid_key()

    async def scenario() -> list[Standing]:
        async with statuses(redis_url, prefix) as store:
            return [
                await store.observe(sid, status, 1),
                await store.observe(sid, "sent", 3),
                await store.observe(sid, "sent", 3),
            ]

    expected = [Standing(None, False), Standing(status, False), Standing(status, False)]
    assert run(scenario()) == expected


def test_a_completed_delivery_keeps_its_reply_for_another_listener(
    redis_url: str, prefix: str
) -> None:
    replied, plain = token_key(), token_key()
    twiml = b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>Caf\xc3\xa9</Say></Response>'

    async def scenario() -> tuple[Claim, bytes | None, Claim, bytes | None, bytes | None]:
        async with deliveries(redis_url, prefix) as first, deliveries(redis_url, prefix) as other:
            await first.claim(replied)
            await first.complete(replied, twiml)
            await first.claim(plain)
            await first.complete(plain)
            return (
                await other.claim(replied),
                await other.reply_of(replied),
                await other.claim(plain),
                await other.reply_of(plain),
                await other.reply_of(token_key()),  # never seen
            )

    assert run(scenario()) == (Claim.DONE, twiml, Claim.DONE, None, None)
