"""An expiring, bounded map that Python's garbage collector never walks.

A listener remembers up to ``dedup_max_entries`` deliveries and SIDs for a day.
Kept as Python objects (a tuple and a named tuple per entry, in an OrderedDict),
each full collection of the collector walks every one of them, and its pauses
grow with the entries kept: tens of milliseconds at 100,000.  Here nothing per
entry is a container the collector tracks:

* the map is a plain ``dict`` from 16-byte digests to ``bytes`` values: a dict
  that holds only such atomic keys and values is never tracked by the collector;
* a value is its expiry and its sequence number, packed, then the caller's bytes;
* the order of entries (oldest first) is a ring of digests in one ``bytearray``,
  where the sequence number of an entry's latest put is its slot.

An entry put again takes a new slot; its old slot is then stale (the sequence
number in the map is not that slot's) and is skipped when the front of the ring
reaches it.  The ring holds twice the limit: when it is full, the live slots
are copied to the front of a fresh ring, which frees at least half of it, so
each put costs a constant time on average.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = ["DIGEST", "PackedExpiring"]

#: The length of a key: a digest (see ``memory._digest``).
DIGEST = 16
_HEADER = struct.Struct("<dq")  # expiry (the clock's seconds), sequence number
_HEAD = _HEADER.size
_EXPIRED_PER_PUT = 4  # expired entries dropped from the front at each put, at most


class PackedExpiring:
    """Keys (:data:`DIGEST` bytes) to values (bytes) that expire *ttl* seconds after
    their latest put, at most *limit* of them: past it, the oldest is dropped.

    Entries are in the order of their latest put, which is also the order of
    expiry (one *ttl* for all), so expiry and eviction both take from the front.
    """

    __slots__ = ("_capacity", "_clock", "_entries", "_head", "_limit", "_ring", "_tail", "_ttl")

    def __init__(self, ttl: float, limit: int, clock: Callable[[], float]) -> None:
        if limit < 1:
            raise ValueError(f"a limit of at least 1 entry, got {limit}")
        self._entries: dict[bytes, bytes] = {}
        self._ttl = ttl
        self._limit = limit
        self._clock = clock
        self._capacity = 2 * limit  # slots of the ring
        self._ring = bytearray(self._capacity * DIGEST)
        self._head = 0  # the sequence number of the oldest slot in use
        self._tail = 0  # the sequence number the next put takes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> bytes | None:
        """The value of *key*, unless it is absent or has expired (then it is dropped)."""
        found = self._entries.get(key)
        if found is None:
            return None
        expiry, _ = _HEADER.unpack_from(found)
        if expiry <= self._clock():
            del self._entries[key]  # its slot is stale now
            return None
        return found[_HEAD:]

    def put(self, key: bytes, value: bytes) -> None:
        """Remember *value* for *key* for *ttl* seconds from now, as the newest entry."""
        if len(key) != DIGEST:
            raise ValueError(f"a key is {DIGEST} bytes, got {len(key)}")
        if self._tail - self._head == self._capacity:
            self._compact()
        now = self._clock()
        sequence = self._tail
        self._tail += 1
        start = (sequence % self._capacity) * DIGEST
        self._ring[start : start + DIGEST] = key
        self._entries[key] = _HEADER.pack(now + self._ttl, sequence) + value
        # Drop what expired (a few at a time) and what is over the limit.
        for _ in range(_EXPIRED_PER_PUT):
            oldest = self._front()
            if oldest is None or _HEADER.unpack_from(self._entries[oldest])[0] > now:
                break
            self._drop_front(oldest)
        while len(self._entries) > self._limit:
            oldest = self._front()
            if oldest is None:  # cannot be: every entry has a live slot
                break
            self._drop_front(oldest)

    def _live(self, sequence: int) -> bytes | None:
        """The key in slot *sequence* when that slot is its entry's latest."""
        start = (sequence % self._capacity) * DIGEST
        key = bytes(self._ring[start : start + DIGEST])
        found = self._entries.get(key)
        if found is None or _HEADER.unpack_from(found)[1] != sequence:
            return None
        return key

    def _front(self) -> bytes | None:
        """The key of the oldest entry, stale slots before it passed over."""
        while self._head < self._tail:
            key = self._live(self._head)
            if key is not None:
                return key
            self._head += 1
        return None

    def _drop_front(self, key: bytes) -> None:
        del self._entries[key]
        self._head += 1

    def _compact(self) -> None:
        """Copy the live slots, in order, to the front of a fresh ring."""
        ring = bytearray(self._capacity * DIGEST)
        entries = self._entries
        moved = 0
        for sequence in range(self._head, self._tail):
            key = self._live(sequence)
            if key is None:
                continue
            start = moved * DIGEST
            ring[start : start + DIGEST] = key
            entries[key] = (
                _HEADER.pack(_HEADER.unpack_from(entries[key])[0], moved) + (entries[key][_HEAD:])
            )
            moved += 1
        self._ring, self._head, self._tail = ring, 0, moved
