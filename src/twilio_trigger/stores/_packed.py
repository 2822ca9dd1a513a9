"""An expiring, bounded map that Python's garbage collector never walks.

A listener remembers up to ``dedup_max_entries`` deliveries and SIDs for a day.
Kept as Python objects (a tuple and a named tuple per entry, in an OrderedDict),
each full collection of the collector walks every one of them, and its pauses
grow with the entries kept: tens of milliseconds at 100,000.  Here nothing per
entry is a container the collector tracks:

* the map is plain ``dict`` objects from 16-byte digests to ``bytes`` values: a
  dict that holds only such atomic keys and values is never tracked by the
  collector;
* a value is its expiry and its sequence number, packed, then the caller's bytes;
* the order of entries (oldest first) is a ring of digests in one ``bytearray``,
  where the sequence number of an entry's latest put is its slot.

An entry put again takes a new slot; its old slot is then stale (the sequence
number in the map is not that slot's) and is skipped when the front of the ring
reaches it.  The ring holds twice the limit: when it is full, the live slots
are moved together, in place, which frees at least half of it, so each put
costs a constant time on average.

The memory stays flat once the map is full, as the process's resident size
shows, not only as Python counts it.  Keys come and go, so a dict is rebuilt
(its table allocated anew) every so often; one table for 100,000 entries is
10 MB, which glibc first maps and unmaps, then, having raised its threshold
for mapping to the size of the first table freed, takes from the heap, where
the table freed leaves a hole that the process keeps: the resident size grew
by a tenth, once, long after the map was full.  So the map is split into
shards chosen by the digest's first bytes, of about 1,000 entries each, whose
tables (under 100 KB) stay below glibc's first threshold and are reused as
they are freed; and the ring is allocated once.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = ["DIGEST", "PackedExpiring"]

#: The length of a key: a digest (see ``memory._digest``).
DIGEST = 16
_HEADER = struct.Struct("<dq")  # expiry (the clock's seconds), sequence number
_HEAD = _HEADER.size
_pack = _HEADER.pack
_unpack = _HEADER.unpack_from
_unpack_key = struct.Struct(f"{DIGEST}s").unpack_from  # a key of the ring, as bytes
_EXPIRED_PER_PUT = 4  # expired entries dropped from the front at each put, at most
_PER_SHARD = 1024  # entries per shard of the map, about (see the module's docstring)
_MAX_SHARDS = 1 << 16  # chosen by the digest's first two bytes at most


def _shards_for(limit: int) -> int:
    """A power of two: shards enough for about :data:`_PER_SHARD` entries each."""
    return min(_MAX_SHARDS, 1 << max(0, (limit - 1).bit_length() - 10))


class PackedExpiring:
    """Keys (:data:`DIGEST` bytes) to values (bytes) that expire *ttl* seconds after
    their latest put, at most *limit* of them: past it, the oldest is dropped.
    The map is split into *shards* (a power of two; by default one per
    :data:`_PER_SHARD` entries of the limit).

    Entries are in the order of their latest put, which is also the order of
    expiry (one *ttl* for all), so expiry and eviction both take from the front.
    """

    __slots__ = (
        "_capacity",
        "_clock",
        "_count",
        "_head",
        "_limit",
        "_mask",
        "_ring",
        "_shards",
        "_tail",
        "_ttl",
    )

    def __init__(
        self, ttl: float, limit: int, clock: Callable[[], float], *, shards: int | None = None
    ) -> None:
        if limit < 1:
            raise ValueError(f"a limit of at least 1 entry, got {limit}")
        if shards is None:
            shards = _shards_for(limit)
        elif shards < 1 or shards > _MAX_SHARDS or shards & (shards - 1):
            raise ValueError(f"shards: a power of two from 1 to {_MAX_SHARDS}, got {shards}")
        # The map, split: a key's shard is its first two bytes, masked.
        self._shards: list[dict[bytes, bytes]] = [{} for _ in range(shards)]
        self._mask = shards - 1
        self._count = 0  # entries in all the shards
        self._ttl = ttl
        self._limit = limit
        self._clock = clock
        self._capacity = 2 * limit  # slots of the ring
        self._ring = bytearray(self._capacity * DIGEST)
        self._head = 0  # the sequence number of the oldest slot in use
        self._tail = 0  # the sequence number the next put takes

    def __len__(self) -> int:
        return self._count

    def _shard(self, key: bytes) -> dict[bytes, bytes]:
        return self._shards[(key[0] | key[1] << 8) & self._mask]

    def get(self, key: bytes) -> bytes | None:
        """The value of *key*, unless it is absent or has expired (then it is dropped)."""
        shard = self._shards[(key[0] | key[1] << 8) & self._mask]
        found = shard.get(key)
        if found is None:
            return None
        expiry, _ = _HEADER.unpack_from(found)
        if expiry <= self._clock():
            del shard[key]  # its slot is stale now
            self._count -= 1
            return None
        return found[_HEAD:]

    def put(self, key: bytes, value: bytes) -> None:
        """Remember *value* for *key* for *ttl* seconds from now, as the newest entry."""
        if len(key) != DIGEST:
            raise ValueError(f"a key is {DIGEST} bytes, got {len(key)}")
        if self._tail - self._head == self._capacity:
            self._compact()
        # Once the map is full, every put also drops an entry: this runs twice per
        # request at the defaults, so it keeps to locals.
        ring, capacity, shards, mask = self._ring, self._capacity, self._shards, self._mask
        now = self._clock()
        sequence = self._tail
        self._tail = tail = sequence + 1
        start = (sequence % capacity) * DIGEST
        ring[start : start + DIGEST] = key
        shard = shards[(key[0] | key[1] << 8) & mask]
        count = self._count
        if key not in shard:
            count += 1
        shard[key] = _pack(now + self._ttl, sequence) + value
        # Drop what expired (a few at a time) and what is over the limit, from
        # the front: entries expire in the order of their puts.
        limit = self._limit
        head = self._head
        expired = 0
        while head < tail:
            (oldest,) = _unpack_key(ring, (head % capacity) * DIGEST)
            shard = shards[(oldest[0] | oldest[1] << 8) & mask]
            found = shard.get(oldest)
            if found is not None:
                expiry, latest = _unpack(found)
                if latest == head:  # the oldest entry
                    if expired < _EXPIRED_PER_PUT and expiry <= now:
                        expired += 1
                    elif count <= limit:
                        break
                    del shard[oldest]
                    count -= 1
            head += 1  # dropped, or a stale slot passed over
        self._head = head
        self._count = count

    def _live(self, sequence: int) -> bytes | None:
        """The key in slot *sequence* when that slot is its entry's latest."""
        start = (sequence % self._capacity) * DIGEST
        key = bytes(self._ring[start : start + DIGEST])
        found = self._shard(key).get(key)
        if found is None or _HEADER.unpack_from(found)[1] != sequence:
            return None
        return key

    def _compact(self) -> None:
        """Move the live slots together, in order, in place: from the front on, each
        takes the next free slot, which is never one still to be read."""
        ring, capacity = self._ring, self._capacity
        to = self._head  # the sequence number the next live slot takes
        for sequence in range(self._head, self._tail):
            key = self._live(sequence)
            if key is None:
                continue
            if to != sequence:
                start = (to % capacity) * DIGEST
                ring[start : start + DIGEST] = key
                shard = self._shard(key)
                found = shard[key]
                shard[key] = _HEADER.pack(_HEADER.unpack_from(found)[0], to) + found[_HEAD:]
            to += 1
        self._tail = to
