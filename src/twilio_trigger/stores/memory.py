"""In-process stores, bounded in count and age so that memory stays flat under any load."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from hashlib import blake2b
from typing import Generic, TypeVar

from .._core.order import Position, Standing, settle
from . import Claim, DeliveryStore, StatusStore

__all__ = ["MemoryDeliveryStore", "MemoryStatusStore"]

_V = TypeVar("_V")


def _digest(key: str) -> bytes:
    # 16 bytes per remembered key, however long the key is.
    return blake2b(key.encode("utf-8"), digest_size=16).digest()


class _Expiring(Generic[_V]):
    """A mapping whose entries expire after *ttl* seconds, the oldest dropped past *limit*.

    Entries are kept in insertion order, which is also expiry order (one ttl
    for all), so expiry and eviction both take from the front: an OrderedDict
    does that in constant time (a plain dict slows down as its front empties).
    """

    __slots__ = ("_clock", "_entries", "_limit", "_ttl")

    def __init__(self, ttl: float, limit: int, clock: Callable[[], float]) -> None:
        self._entries: OrderedDict[bytes, tuple[float, _V]] = OrderedDict()
        self._ttl = ttl
        self._limit = limit
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> _V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[key]
            return None
        return found[1]

    def put(self, key: bytes, value: _V) -> None:
        entries = self._entries
        now = self._clock()
        entries[key] = (now + self._ttl, value)
        entries.move_to_end(key)
        # Drop what expired (a few at a time) and what is over the limit.
        for _ in range(4):
            oldest = next(iter(entries.values()))
            if oldest[0] > now:
                break
            entries.popitem(last=False)
        while len(entries) > self._limit:
            entries.popitem(last=False)


class MemoryDeliveryStore(DeliveryStore):
    """Handled deliveries, remembered in this process for *ttl* seconds (at most *limit*)."""

    def __init__(
        self, *, ttl: float, limit: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # True, or the reply the delivery was answered with.
        self._done: _Expiring[bool | bytes] = _Expiring(ttl, limit, clock)
        # Keys being handled; an Event only once a second copy waits for one.
        self._busy: dict[bytes, asyncio.Event | None] = {}

    def __len__(self) -> int:
        return len(self._done)

    async def claim(self, key: str) -> Claim:
        digest = _digest(key)
        if digest in self._busy:
            return Claim.BUSY
        if self._done.get(digest) is not None:
            return Claim.DONE
        self._busy[digest] = None
        return Claim.ACQUIRED

    async def complete(self, key: str, reply: bytes | None = None) -> None:
        digest = _digest(key)
        self._done.put(digest, True if reply is None else reply)
        finished = self._busy.pop(digest, None)
        if finished is not None:
            finished.set()

    async def reply_of(self, key: str) -> bytes | None:
        done = self._done.get(_digest(key))
        return done if isinstance(done, bytes) else None

    async def release(self, key: str) -> None:
        finished = self._busy.pop(_digest(key), None)
        if finished is not None:
            finished.set()

    async def wait(self, key: str, timeout: float) -> None:  # noqa: ASYNC109
        digest = _digest(key)
        if digest not in self._busy:
            return
        finished = self._busy[digest]
        if finished is None:
            finished = self._busy[digest] = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), timeout)


class MemoryStatusStore(StatusStore):
    """Each SID's most advanced status, remembered for *ttl* seconds (at most *limit* SIDs)."""

    def __init__(
        self, *, ttl: float, limit: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._positions: _Expiring[Position] = _Expiring(ttl, limit, clock)

    def __len__(self) -> int:
        return len(self._positions)

    async def observe(self, key: str, status: str, rank: int) -> Standing:
        digest = _digest(key)
        standing, position = settle(self._positions.get(digest), status, rank)
        if position is not None:
            self._positions.put(digest, position)
        return standing
