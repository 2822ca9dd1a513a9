"""Where a status stands in its SID's order (``order.py``): ranks and settling.

Events come from the package's own payload factories; nothing here touches the
network or a file.
"""

from __future__ import annotations

import pytest

from twilio_trigger._core.order import Position, Standing, rank_of, settle
from twilio_trigger._core.payloads import call_event, sms_event

SID = "SM" + "0123456789abcdef" * 2
CALL_SID = "CA" + "fedcba9876543210" * 2


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


def test_the_same_status_at_a_higher_rank_moves_on_and_at_a_lower_one_is_stale() -> None:
    # A conference's events are ranked by SequenceNumber: two participants' mutes
    # are two events of one status, each with its own rank.
    known = Position("participant-mute", 3, "participant-join")
    standing, position = settle(known, "participant-mute", 5)
    assert standing == Standing("participant-mute", False)
    assert position == Position("participant-mute", 5, "participant-mute")
    assert position is not None
    late, unchanged = settle(position, "participant-mute", 4)
    assert late == Standing("participant-mute", True)
    assert unchanged is None
    again, same = settle(position, "participant-mute", 5)  # a retry of the last one
    assert again == Standing("participant-mute", False)
    assert same is None
