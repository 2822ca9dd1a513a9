"""In-process stores, bounded in count and age so that memory stays flat under any load,
and kept packed (:mod:`._packed`) so that the garbage collector never walks them."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable
from hashlib import blake2b

from .._core.order import Position, Standing, settle
from . import Claim, DeliveryStore, StatusStore
from ._packed import PackedExpiring

__all__ = ["MemoryDeliveryStore", "MemoryStatusStore"]


def _digest(key: str) -> bytes:
    # 16 bytes per remembered key, however long the key is.
    return blake2b(key.encode("utf-8"), digest_size=16).digest()


# A delivery's value: done without a reply, or the reply it was answered with.
_DONE = b"\x00"
_REPLY = b"\x01"
# A SID's position: its rank, then its status and the one before, each as UTF-8
# after its length (the one before: -1 for none).
_RANK = struct.Struct("<qi")
_PREVIOUS = struct.Struct("<i")


def _packed_position(position: Position) -> bytes:
    status = position.status.encode("utf-8", "surrogatepass")
    head = _RANK.pack(position.rank, len(status)) + status
    if position.previous is None:
        return head + _PREVIOUS.pack(-1)
    previous = position.previous.encode("utf-8", "surrogatepass")
    return head + _PREVIOUS.pack(len(previous)) + previous


def _position(packed: bytes) -> Position:
    rank, length = _RANK.unpack_from(packed)
    at = _RANK.size
    status = packed[at : at + length].decode("utf-8", "surrogatepass")
    at += length
    (length,) = _PREVIOUS.unpack_from(packed, at)
    at += _PREVIOUS.size
    previous = None if length < 0 else packed[at : at + length].decode("utf-8", "surrogatepass")
    return Position(status, rank, previous)


class MemoryDeliveryStore(DeliveryStore):
    """Handled deliveries, remembered in this process for *ttl* seconds (at most *limit*)."""

    def __init__(
        self, *, ttl: float, limit: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # Done deliveries, with the reply each was answered with (see _DONE, _REPLY).
        self._done = PackedExpiring(ttl, limit, clock)
        # Keys being handled; an Event only once a second copy waits for one.
        self._busy: dict[bytes, asyncio.Event | None] = {}
        # The latest key and its digest: a delivery's claim and completion share it.
        self._last: tuple[str, bytes] = ("", _digest(""))

    def __len__(self) -> int:
        return len(self._done)

    def _digest(self, key: str) -> bytes:
        last = self._last
        if last[0] == key:
            return last[1]
        digest = _digest(key)
        self._last = (key, digest)
        return digest

    async def claim(self, key: str) -> Claim:
        digest = self._digest(key)
        if digest in self._busy:
            return Claim.BUSY
        if self._done.get(digest) is not None:
            return Claim.DONE
        self._busy[digest] = None
        return Claim.ACQUIRED

    async def complete(self, key: str, reply: bytes | None = None) -> None:
        digest = self._digest(key)
        self._done.put(digest, _DONE if reply is None else _REPLY + reply)
        finished = self._busy.pop(digest, None)
        if finished is not None:
            finished.set()

    async def reply_of(self, key: str) -> bytes | None:
        done = self._done.get(_digest(key))
        return done[1:] if done is not None and done[:1] == _REPLY else None

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
        self._positions = PackedExpiring(ttl, limit, clock)

    def __len__(self) -> int:
        return len(self._positions)

    async def observe(self, key: str, status: str, rank: int) -> Standing:
        digest = _digest(key)
        known = self._positions.get(digest)
        standing, position = settle(None if known is None else _position(known), status, rank)
        if position is not None:
            self._positions.put(digest, _packed_position(position))
        return standing
