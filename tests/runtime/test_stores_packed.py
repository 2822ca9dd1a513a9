"""The packed expiring map under the in-memory stores: it behaves as the plain
ordered map it replaced (compared operation by operation on a clock moved by hand,
split into shards or not), the garbage collector never tracks it, whatever it
holds, and what it allocates stays of one size once it is full."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_trigger._core.order import Position
from twilio_trigger.stores._packed import DIGEST, PackedExpiring
from twilio_trigger.stores.memory import (
    MemoryDeliveryStore,
    MemoryStatusStore,
    _packed_position,
    _position,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Model:
    """The map as it was: an OrderedDict of (expiry, value), the latest put last."""

    def __init__(self, ttl: float, limit: int, clock: Clock) -> None:
        self.entries: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self.ttl, self.limit, self.clock = ttl, limit, clock

    def get(self, key: bytes) -> bytes | None:
        found = self.entries.get(key)
        if found is None:
            return None
        if found[0] <= self.clock():
            del self.entries[key]
            return None
        return found[1]

    def put(self, key: bytes, value: bytes) -> None:
        now = self.clock()
        self.entries[key] = (now + self.ttl, value)
        self.entries.move_to_end(key)
        for _ in range(4):
            oldest = next(iter(self.entries.values()))
            if oldest[0] > now:
                break
            self.entries.popitem(last=False)
        while len(self.entries) > self.limit:
            self.entries.popitem(last=False)


def key(number: int) -> bytes:
    # The low byte first: the shard is chosen by the first bytes.
    return number.to_bytes(DIGEST, "little")


operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 12), st.binary(max_size=6)),
        st.tuples(st.just("get"), st.integers(0, 12), st.just(b"")),
        st.tuples(st.just("tick"), st.integers(0, 30), st.just(b"")),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(
    operations=operations,
    limit=st.integers(1, 6),
    ttl=st.integers(1, 40),
    shards=st.sampled_from([None, 1, 2, 8]),
)
def test_it_behaves_as_the_ordered_map_it_replaced(
    operations: list[tuple[str, int, bytes]], limit: int, ttl: int, shards: int | None
) -> None:
    clock = Clock()
    packed = PackedExpiring(ttl, limit, clock, shards=shards)
    model = Model(ttl, limit, clock)
    for operation, number, value in operations:
        if operation == "put":
            packed.put(key(number), value)
            model.put(key(number), value)
        elif operation == "get":
            assert packed.get(key(number)) == model.get(key(number))
        else:
            clock.now += number
        assert len(packed) == len(model.entries)
    for number in range(13):  # what is left, and its order of eviction
        assert packed.get(key(number)) == model.get(key(number))


def test_many_puts_of_the_same_keys_compact_the_ring_and_keep_the_order() -> None:
    clock = Clock()
    packed = PackedExpiring(3600, 3, clock)
    for _ in range(1000):  # six slots: compacted again and again
        for number in (1, 2, 3):
            packed.put(key(number), b"v%d" % number)
    packed.put(key(1), b"again")  # now 2 is the oldest
    packed.put(key(4), b"four")
    assert [packed.get(key(n)) for n in (1, 2, 3, 4)] == [b"again", None, b"v3", b"four"]


def test_a_key_of_another_length_a_limit_below_one_or_odd_shards_are_refused() -> None:
    with pytest.raises(ValueError, match="a key is 16 bytes"):
        PackedExpiring(1, 1, Clock()).put(b"short", b"")
    with pytest.raises(ValueError, match="a limit of at least 1"):
        PackedExpiring(1, 0, Clock())
    for shards in (0, 3, 1 << 17):
        with pytest.raises(ValueError, match="shards: a power of two"):
            PackedExpiring(1, 1, Clock(), shards=shards)


def test_once_full_it_allocates_only_small_tables_and_never_a_new_ring() -> None:
    # The resident size stays flat only if nothing it allocates again and again
    # is large enough for glibc to take from the heap past its mapping threshold
    # (128 KiB at first): each shard's table stays below it, and the ring is the
    # one allocated at the start (compacted in place).
    clock = Clock()
    limit = 100_000
    packed = PackedExpiring(3600, limit, clock)
    ring = packed._ring
    largest = 0
    for number in range(5 * limit):  # full, evicting, compacting twice
        packed.put(number.to_bytes(8, "little") * 2, b"\x00" * 40)
        if number % 5000 == 0:
            largest = max(largest, *(sys.getsizeof(shard) for shard in packed._shards))
    assert len(packed) == limit
    assert packed._ring is ring
    assert largest < 128 * 1024
    assert 64 <= len(packed._shards) <= 256


@pytest.mark.parametrize("status", ["delivered", "", "a\x00b", "\udcff", "é" * 300])
def test_a_position_packs_and_unpacks_whatever_its_statuses(status: str) -> None:
    for previous in (None, status, "", "queued"):
        position = Position(status, -(2**40), previous)
        assert _position(_packed_position(position)) == position


def test_the_collector_never_tracks_the_stores_however_full() -> None:
    deliveries = MemoryDeliveryStore(ttl=3600, limit=1000)
    statuses = MemoryStatusStore(ttl=3600, limit=1000)

    async def traffic() -> None:
        for number in range(5000):  # full, evicting, compacting
            sid = f"SM{number:032x}"
            await deliveries.claim(sid)
            await deliveries.complete(sid, b"<Response/>" if number % 2 else None)
            for rank, status in enumerate(("queued", "sent", "delivered\x00")):
                await statuses.observe(f"sms:{sid}", status, rank)

    asyncio.run(traffic())
    gc.collect()
    assert len(deliveries) == len(statuses) == 1000
    for packed in (deliveries._done, statuses._positions):
        assert not any(gc.is_tracked(shard) for shard in packed._shards)
        assert not gc.is_tracked(packed._ring)
