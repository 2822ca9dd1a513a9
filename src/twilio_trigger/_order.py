"""Where a status stands in its SID's lifecycle, without any I/O.

Twilio sends status callbacks in no guaranteed order.  Message statuses follow
a lifecycle; call events carry a ``SequenceNumber``.  A *rank* places an event
in that order; an event ranked below what was already seen for its SID is
*stale*.
"""

from __future__ import annotations

from typing import NamedTuple

from ._events import TwilioEvent

__all__ = ["Position", "Standing", "rank_of", "settle"]

_MESSAGE_RANKS = {
    "accepted": 0, "scheduled": 0, "receiving": 0,
    "queued": 1, "received": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "partially_delivered": 4,
    "read": 5,
}  # fmt: skip
# Used only when a call event has no SequenceNumber.
_CALL_RANKS = {
    "queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2,
    "completed": 3, "busy": 3, "failed": 3, "no-answer": 3, "canceled": 3,
}  # fmt: skip
_RECORDING_RANKS = {"in-progress": 0, "completed": 1, "absent": 1}


def rank_of(event: TwilioEvent) -> int | None:
    """The event's place in its SID's order, or ``None`` when it has none (unknown status)."""
    status = (event.status or "").strip().lower()
    if event.kind == "call":
        sequence = event.get("SequenceNumber") or ""
        if sequence.isascii() and sequence.isdigit() and len(sequence) < 10:
            return int(sequence)
        return _CALL_RANKS.get(status)
    if event.kind == "recording":
        return _RECORDING_RANKS.get(status)
    return _MESSAGE_RANKS.get(status)


class Position(NamedTuple):
    """What is remembered of a SID: its most advanced status and the one before."""

    status: str
    rank: int
    previous: str | None


class Standing(NamedTuple):
    """How one event relates to what was seen before it for its SID."""

    previous_status: str | None
    stale: bool


def settle(known: Position | None, status: str, rank: int) -> tuple[Standing, Position | None]:
    """The standing of an event, and the position to remember (``None``: unchanged).

    A repeat of the current status (a retry) reports the status before it; an
    event ranked below the current one is stale and changes nothing; an equal
    rank (``delivered`` after ``undelivered``) is not stale and becomes current.
    """
    if known is None:
        return Standing(None, False), Position(status, rank, None)
    if status == known.status:
        return Standing(known.previous, False), None
    if rank < known.rank:
        return Standing(known.status, True), None
    return Standing(known.status, False), Position(status, rank, known.status)
