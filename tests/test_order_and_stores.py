"""Status order, the in-memory stores, backoff and delivery keys: pure units, no server.

Events come from the package's own payload factories (``twilio_trigger.testing``),
which build the parameters Twilio sends; nothing here touches the network or a file.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from twilio_trigger import SmsStatusChangeEvent
from twilio_trigger._delivery import MAX_KEPT_HEADER, delivery_key, kept_header
from twilio_trigger._order import Position, Standing, rank_of, settle
from twilio_trigger._signature import signed_payload
from twilio_trigger._worker import backoff_delay
from twilio_trigger.stores import Claim
from twilio_trigger.stores.memory import MemoryDeliveryStore, MemoryStatusStore
from twilio_trigger.testing import call_event, sms_event

_T = TypeVar("_T")

SID = "SM" + "0123456789abcdef" * 2
CALL_SID = "CA" + "fedcba9876543210" * 2


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


class Clock:
    """A clock the test moves by hand (stands in for ``time.monotonic``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- rank_of ---------------------------------------------------------------------
#: The message lifecycle, spelled out: each group ranks below the next.
MESSAGE_LIFECYCLE = [
    ["accepted", "scheduled"],
    ["queued"],
    ["sending"],
    ["sent"],
    ["delivered", "undelivered", "failed"],
    ["read"],
]


def _message_rank(status: str) -> int:
    rank = rank_of(sms_event(status, sid=SID))
    assert rank is not None, status
    return rank


def test_message_statuses_rank_in_lifecycle_order() -> None:
    ranks = [[_message_rank(status) for status in group] for group in MESSAGE_LIFECYCLE]
    for group, group_ranks in zip(MESSAGE_LIFECYCLE, ranks, strict=True):
        assert len(set(group_ranks)) == 1, f"{group} should share a rank: {group_ranks}"
    firsts = [group_ranks[0] for group_ranks in ranks]
    assert firsts == sorted(firsts)
    assert len(set(firsts)) == len(firsts), f"groups must rank strictly apart: {firsts}"


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("accepted", "queued"),
        ("scheduled", "queued"),
        ("queued", "sending"),
        ("sending", "sent"),
        ("sent", "delivered"),
        ("sent", "undelivered"),
        ("sent", "failed"),
        ("delivered", "read"),
        ("accepted", "read"),
    ],
)
def test_message_status_ranks_below_the_next(lower: str, higher: str) -> None:
    assert _message_rank(lower) < _message_rank(higher)


def test_message_status_rank_ignores_case_and_spaces() -> None:
    event = sms_event("delivered", sid=SID, MessageStatus=" Delivered ", SmsStatus=" Delivered ")
    assert rank_of(event) == _message_rank("delivered")


def test_unknown_message_status_has_no_rank() -> None:
    assert rank_of(sms_event("teleported", sid=SID)) is None


def test_call_rank_is_its_sequence_number() -> None:
    assert rank_of(call_event("ringing", sid=CALL_SID, SequenceNumber="7")) == 7
    assert rank_of(call_event("completed", sid=CALL_SID, SequenceNumber="0")) == 0
    # The sequence number wins over the status's usual place.
    assert rank_of(call_event("completed", sid=CALL_SID, SequenceNumber="1")) == 1


@pytest.mark.parametrize("sequence", [None, "", "abc", "-1", "1.5", "99999999999"])
def test_call_rank_falls_back_to_status_without_a_usable_sequence_number(
    sequence: str | None,
) -> None:
    def rank(status: str) -> int | None:
        return rank_of(call_event(status, sid=CALL_SID, SequenceNumber=sequence))

    assert rank("queued") == rank("initiated")
    ranks = [rank(s) for s in ("initiated", "ringing", "in-progress", "completed")]
    assert None not in ranks
    assert ranks == sorted(ranks)  # type: ignore[type-var]
    assert len(set(ranks)) == 4
    for final in ("busy", "failed", "no-answer", "canceled"):
        assert rank(final) == rank("completed")
    assert rank("teleported") is None


# -- settle ----------------------------------------------------------------------
def test_first_event_of_a_sid_has_no_previous_status_and_becomes_current() -> None:
    standing, position = settle(None, "queued", 1)
    assert standing == Standing(None, False)
    assert position == Position("queued", 1, None)


def test_higher_rank_becomes_current_and_names_the_one_before() -> None:
    standing, position = settle(Position("queued", 1, None), "sent", 3)
    assert standing == Standing("queued", False)
    assert position == Position("sent", 3, "queued")


def test_retry_of_the_current_status_reports_the_status_before_it() -> None:
    known = Position("sent", 3, "queued")
    standing, position = settle(known, "sent", 3)
    assert standing == Standing("queued", False)
    assert position is None  # unchanged


def test_retry_of_the_first_status_reports_no_previous_status() -> None:
    standing, position = settle(Position("queued", 1, None), "queued", 1)
    assert standing == Standing(None, False)
    assert position is None


def test_lower_rank_is_stale_and_changes_nothing() -> None:
    known = Position("delivered", 4, "sent")
    standing, position = settle(known, "sent", 3)
    assert standing == Standing("delivered", True)
    assert position is None


def test_equal_rank_with_another_status_is_not_stale_and_becomes_current() -> None:
    known = Position("undelivered", 4, "sent")
    standing, position = settle(known, "delivered", 4)
    assert standing == Standing("undelivered", False)
    assert position == Position("delivered", 4, "undelivered")


def test_call_sequence_settles_by_number() -> None:
    standing, first = settle(None, "completed", 3)
    assert first is not None
    standing, position = settle(first, "ringing", 1)
    assert standing == Standing("completed", True)
    assert position is None


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


# -- backoff_delay -----------------------------------------------------------------
def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    rng = random.Random(1234)
    for attempt in range(1, 12):
        full = 0.5 * 2 ** (attempt - 1)
        for _ in range(200):
            delay = backoff_delay(attempt, 0.5, 10_000.0, rng)
            assert full / 2 <= delay <= full, (attempt, delay)


def test_backoff_mean_doubles_with_each_attempt() -> None:
    rng = random.Random(99)

    def mean(attempt: int) -> float:
        return sum(backoff_delay(attempt, 1.0, 10_000.0, rng) for _ in range(500)) / 500

    means = [mean(attempt) for attempt in range(1, 8)]
    for before, after in itertools.pairwise(means):
        assert 1.7 < after / before < 2.3, means


def test_backoff_is_capped() -> None:
    rng = random.Random(7)
    for attempt in (8, 20, 100, 1000):
        for _ in range(50):
            delay = backoff_delay(attempt, 1.0, 60.0, rng)
            assert 30.0 <= delay <= 60.0, (attempt, delay)


def test_backoff_has_jitter_spread_over_its_range() -> None:
    rng = random.Random(5)
    delays = [backoff_delay(4, 1.0, 300.0, rng) for _ in range(1000)]  # full delay 8 s
    assert len(set(delays)) > 900
    assert min(delays) < 4.2
    assert max(delays) > 7.8


# -- delivery_key ----------------------------------------------------------------------
# The key is made of signed content only (DESIGN §2, "Identity"): the unsigned
# I-Twilio-Idempotency-Token header is no argument of it, so no header can change it.
def test_the_same_event_has_the_same_key() -> None:
    # Two payloads of one delivery differ in fields that are not its identity.
    first = sms_event("delivered", sid=SID, Body="one")
    again = sms_event("delivered", sid=SID, Body="two")
    assert first.get("MessagingServiceSid") != again.get("MessagingServiceSid")
    assert delivery_key(first) == delivery_key(again)
    assert delivery_key(first) == f"e:sms:{SID}:delivered::"  # readable where it can be


@pytest.mark.parametrize(
    ("other_status", "other_overrides"),
    [
        ("sent", {}),  # the status
        ("delivered", {"MessageSid": "SM" + "9" * 32, "SmsSid": "SM" + "9" * 32}),  # the SID
        ("delivered", {"ErrorCode": "30003"}),  # the error code
    ],
)
def test_message_key_distinguishes_sid_status_and_error_code(
    other_status: str, other_overrides: dict[str, str]
) -> None:
    base = sms_event("delivered", sid=SID)
    other = sms_event(other_status, sid=SID, **other_overrides)
    assert delivery_key(base) != delivery_key(other)


def test_message_key_distinguishes_error_codes_of_one_status() -> None:
    first = sms_event("failed", sid=SID, ErrorCode="30008")
    second = sms_event("failed", sid=SID, ErrorCode="30003")
    assert delivery_key(first) != delivery_key(second)


def test_call_key_distinguishes_sequence_numbers() -> None:
    first = call_event("in-progress", sid=CALL_SID, SequenceNumber="2")
    second = call_event("in-progress", sid=CALL_SID, SequenceNumber="3")
    again = call_event("in-progress", sid=CALL_SID, SequenceNumber="2")
    assert delivery_key(first) != delivery_key(second)
    assert delivery_key(first) == delivery_key(again)


def test_key_distinguishes_kinds() -> None:
    sid = "XX" + "1" * 32
    message = sms_event("failed", sid=sid)
    call = call_event("failed", sid=sid, SequenceNumber=None, ErrorCode="30008")
    message_no_error = sms_event("failed", sid=sid, ErrorCode=None)
    call_no_error = call_event("failed", sid=sid, SequenceNumber=None)
    assert delivery_key(message) != delivery_key(call)
    assert delivery_key(message_no_error) != delivery_key(call_no_error)


def test_a_cloudevent_is_keyed_by_its_id_alone() -> None:
    # Event Streams signs the body, and so the id: Twilio resends a batch with the
    # same ids, and two events of one SID and status are still two events.
    event = sms_event("delivered", sid=SID)
    same_status = sms_event("delivered", sid=SID)
    assert delivery_key(event, "EZ" + "1" * 32) == delivery_key(same_status, "EZ" + "1" * 32)
    assert delivery_key(event, "EZ" + "1" * 32) != delivery_key(event, "EZ" + "2" * 32)
    assert delivery_key(event, "EZ" + "1" * 32) != delivery_key(event)


def test_a_field_holding_the_separator_cannot_pass_for_two_fields() -> None:
    # "A:B" + "C" and "A" + "B:C" join to the same text: such keys are hashed whole.
    first = sms_event("C", sid="SMA:B", SmsSid=None)
    second = sms_event("B:C", sid="SMA", SmsSid=None)
    assert delivery_key(first) != delivery_key(second)
    assert delivery_key(first, "x:y") != delivery_key(first, "x")


@pytest.mark.parametrize("length", [65, 100_000, 2 * 1024 * 1024])
def test_a_long_signed_identity_gives_a_bounded_key(length: int) -> None:
    long_sid = "SM" + "a" * length
    first = sms_event("delivered", sid=long_sid)
    other = sms_event("delivered", sid=long_sid[:-1] + "b")  # differs in its last character
    keys = {delivery_key(first), delivery_key(other)}
    cloud_keys = {
        delivery_key(first, "CE" + "x" * length),
        delivery_key(first, "CE" + "y" * length),
    }
    assert len(keys) == 2
    assert len(cloud_keys) == 2
    assert max(len(key) for key in keys | cloud_keys) <= 100
    # The same identity, hashed, is the same key (another payload of it).
    assert delivery_key(first) == delivery_key(sms_event("delivered", sid=long_sid))


def test_a_key_carries_no_character_that_could_disturb_a_log_or_a_redis_key() -> None:
    hostile = sms_event("delivered\n", sid="SM1\r\nX-Forged: yes", SmsSid=None)
    for key in (delivery_key(hostile), delivery_key(hostile, "id\n\x1b[31m")):
        assert key.isascii()
        assert key.isprintable()
        assert " " not in key


def _no_sid(params: list[tuple[str, str]]) -> SmsStatusChangeEvent:
    event = SmsStatusChangeEvent(params)
    assert event.sid is None
    return event


NO_SID = [("AccountSid", "AC" + "0" * 32), ("MessageStatus", "received"), ("Body", "hello")]


def test_an_event_without_sid_is_keyed_by_all_its_signed_parameters() -> None:
    # Without a SID the identity fields would be the status alone: every such
    # event would collapse into the first one.
    first = _no_sid(NO_SID)
    other_body = _no_sid([*NO_SID[:2], ("Body", "hello again")])
    other_account = _no_sid([("AccountSid", "AC" + "1" * 32), *NO_SID[1:]])
    keys = {delivery_key(event) for event in (first, other_body, other_account)}
    assert len(keys) == 3
    assert all(key.startswith("p:sms:#") and len(key) <= 100 for key in keys)


def test_an_event_without_sid_keeps_its_key_under_what_its_signature_ignores() -> None:
    # Twilio signs the parameters sorted by name, each distinct value once: a
    # reordered body, or a value repeated, carries the same signature, and so
    # must be the same delivery.
    first = _no_sid(NO_SID)
    reordered = _no_sid(list(reversed(NO_SID)))
    repeated = _no_sid([*NO_SID, ("Body", "hello")])
    assert delivery_key(first) == delivery_key(reordered) == delivery_key(repeated)
    # A second, different value of a name is signed: another delivery.
    assert delivery_key(first) != delivery_key(_no_sid([*NO_SID, ("Body", "bye")]))
    assert signed_payload(NO_SID) == signed_payload(list(reversed(NO_SID)))


# -- kept_header -------------------------------------------------------------------------
def test_a_usual_header_is_kept_as_it_came() -> None:
    token = "3c6b7b5e-8f1a-4d1e-9c62-0f5a1e2b3c4d"
    assert kept_header(token) == token
    assert kept_header("TwilioProxy/1.1") == "TwilioProxy/1.1"


@pytest.mark.parametrize("length", [MAX_KEPT_HEADER + 1, 2 * 1024 * 1024])
def test_a_long_header_keeps_its_start_its_length_and_a_digest(length: int) -> None:
    value = "a" * length
    kept = kept_header(value)
    assert len(kept) <= 2 * MAX_KEPT_HEADER
    assert kept.startswith("a" * 64)
    assert f"{length} characters" in kept
    assert kept != kept_header(value[:-1] + "b")  # two made-up tokens stay apart


def test_a_kept_header_cannot_break_a_line_or_grow_by_its_escapes() -> None:
    # The inbox stores headers one per line; a log or a terminal shows them.
    assert kept_header("a\nb\r\x1b[31m") == "a\\nb\\r\\x1b[31m"
    for hostile in ("\x1b" * MAX_KEPT_HEADER, "\u2028" * MAX_KEPT_HEADER):
        kept = kept_header(hostile)
        assert len(kept) <= 2 * MAX_KEPT_HEADER
        assert kept.isprintable()
