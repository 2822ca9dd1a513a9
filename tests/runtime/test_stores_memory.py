"""The in-memory duplicate and status stores (``stores/memory.py``), on a clock the
tests move by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from twilio_trigger._core.order import Standing
from twilio_trigger.stores import Claim
from twilio_trigger.stores.memory import MemoryDeliveryStore, MemoryStatusStore

_T = TypeVar("_T")


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


class Clock:
    """A clock the test moves by hand (stands in for ``time.monotonic``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- MemoryStatusStore -------------------------------------------------------------
def test_status_store_tells_each_event_how_it_stands() -> None:
    async def scenario() -> list[Standing]:
        store = MemoryStatusStore(ttl=60, limit=10)
        return [
            await store.observe("sms:A", "queued", 1),
            await store.observe("sms:A", "delivered", 4),
            await store.observe("sms:A", "sent", 3),
            await store.observe("sms:A", "delivered", 4),
            await store.observe("sms:B", "sent", 3),
        ]

    assert run(scenario()) == [
        Standing(None, False),
        Standing("queued", False),
        Standing("delivered", True),
        Standing("queued", False),  # a retry of delivered: the status before it
        Standing(None, False),  # another SID knows nothing of A
    ]


def test_status_store_is_bounded_by_its_limit_and_forgets_the_oldest() -> None:
    async def scenario() -> tuple[int, Standing, Standing]:
        store = MemoryStatusStore(ttl=3600, limit=3)
        for number in range(10):
            await store.observe(f"sms:SM{number}", "delivered", 4)
        size = len(store)
        forgotten = await store.observe("sms:SM0", "sent", 3)
        remembered = await store.observe("sms:SM9", "sent", 3)
        return size, forgotten, remembered

    size, forgotten, remembered = run(scenario())
    assert size == 3
    assert forgotten == Standing(None, False)
    assert remembered == Standing("delivered", True)


def test_status_store_forgets_after_its_ttl() -> None:
    clock = Clock()

    async def scenario() -> tuple[Standing, Standing]:
        store = MemoryStatusStore(ttl=10, limit=100, clock=clock)
        await store.observe("sms:A", "delivered", 4)
        clock.now += 9
        within = await store.observe("sms:A", "sent", 3)
        clock.now += 2
        after = await store.observe("sms:A", "sent", 3)
        return within, after

    within, after = run(scenario())
    assert within == Standing("delivered", True)
    assert after == Standing(None, False)


# -- MemoryDeliveryStore ----------------------------------------------------------
def test_claim_complete_release_semantics() -> None:
    async def scenario() -> list[Claim]:
        store = MemoryDeliveryStore(ttl=60, limit=100)
        seen = [await store.claim("a")]  # new
        seen.append(await store.claim("a"))  # being handled
        await store.complete("a")
        seen.append(await store.claim("a"))  # handled: a duplicate
        seen.append(await store.claim("a"))  # still a duplicate
        seen.append(await store.claim("b"))
        await store.release("b")  # failed: forgotten
        seen.append(await store.claim("b"))  # a retry runs
        seen.append(await store.claim("b"))
        return seen

    assert run(scenario()) == [
        Claim.ACQUIRED,
        Claim.BUSY,
        Claim.DONE,
        Claim.DONE,
        Claim.ACQUIRED,
        Claim.ACQUIRED,
        Claim.BUSY,
    ]


def test_interleaved_deliveries_are_each_completed_under_their_own_key() -> None:
    # The store remembers the digest of the latest key: a completion of another
    # key must not take it.
    async def scenario() -> list[Claim]:
        store = MemoryDeliveryStore(ttl=60, limit=100)
        assert await store.claim("a") is Claim.ACQUIRED
        assert await store.claim("b") is Claim.ACQUIRED
        await store.complete("a")
        seen = [await store.claim("a"), await store.claim("b")]
        await store.complete("b")
        seen.append(await store.claim("b"))
        return seen

    assert run(scenario()) == [Claim.DONE, Claim.BUSY, Claim.DONE]


def test_released_delivery_is_not_remembered() -> None:
    async def scenario() -> int:
        store = MemoryDeliveryStore(ttl=60, limit=100)
        await store.claim("a")
        await store.release("a")
        return len(store)

    assert run(scenario()) == 0


def test_handled_delivery_expires_after_ttl() -> None:
    clock = Clock()

    async def scenario() -> list[Claim]:
        store = MemoryDeliveryStore(ttl=10, limit=100, clock=clock)
        await store.claim("a")
        await store.complete("a")
        clock.now += 9.9
        seen = [await store.claim("a")]
        clock.now += 0.1  # exactly ttl after completion
        seen.append(await store.claim("a"))
        return seen

    assert run(scenario()) == [Claim.DONE, Claim.ACQUIRED]


def test_expired_entries_are_dropped_as_new_ones_arrive() -> None:
    clock = Clock()

    async def scenario() -> list[int]:
        store = MemoryDeliveryStore(ttl=10, limit=1000, clock=clock)
        for number in range(3):
            await store.claim(f"old{number}")
            await store.complete(f"old{number}")
        sizes = [len(store)]
        clock.now += 11
        for number in range(3):
            await store.claim(f"new{number}")
            await store.complete(f"new{number}")
        sizes.append(len(store))
        return sizes

    assert run(scenario()) == [3, 3]


def test_limit_evicts_the_oldest_delivery() -> None:
    async def scenario() -> tuple[int, list[Claim]]:
        store = MemoryDeliveryStore(ttl=3600, limit=3)
        for number in range(4):
            await store.claim(f"k{number}")
            await store.complete(f"k{number}")
        size = len(store)
        seen = [await store.claim(f"k{number}") for number in (1, 2, 3, 0)]
        return size, seen

    size, seen = run(scenario())
    assert size == 3
    assert seen == [Claim.DONE, Claim.DONE, Claim.DONE, Claim.ACQUIRED]


def test_wait_returns_when_the_busy_key_is_released() -> None:
    async def scenario() -> tuple[bool, Claim]:
        store = MemoryDeliveryStore(ttl=60, limit=100)
        assert await store.claim("a") is Claim.ACQUIRED
        released = asyncio.Event()

        async def release_later() -> None:
            await asyncio.sleep(0.05)
            released.set()
            await store.release("a")

        task = asyncio.create_task(release_later())
        # A 60 s wait: only the release can end it before the 10 s deadline.
        await asyncio.wait_for(store.wait("a", 60.0), 10.0)
        await task
        return released.is_set(), await store.claim("a")

    assert run(scenario()) == (True, Claim.ACQUIRED)


def test_wait_returns_when_the_busy_key_is_completed() -> None:
    async def scenario() -> Claim:
        store = MemoryDeliveryStore(ttl=60, limit=100)
        await store.claim("a")
        asyncio.get_running_loop().call_later(0.05, asyncio.ensure_future, store.complete("a"))
        await asyncio.wait_for(store.wait("a", 60.0), 10.0)
        return await store.claim("a")

    assert run(scenario()) is Claim.DONE


def test_wait_on_a_key_nobody_holds_returns_at_once() -> None:
    async def scenario() -> None:
        store = MemoryDeliveryStore(ttl=60, limit=100)
        await asyncio.wait_for(store.wait("nobody", 60.0), 10.0)

    run(scenario())


def test_wait_gives_up_after_its_timeout() -> None:
    async def scenario() -> Claim:
        store = MemoryDeliveryStore(ttl=60, limit=100)
        await store.claim("a")
        await asyncio.wait_for(store.wait("a", 0.05), 10.0)
        return await store.claim("a")

    assert run(scenario()) is Claim.BUSY
