"""Where a status stands in its SID's lifecycle, without any I/O.

Twilio sends status callbacks in no guaranteed order.  Message statuses follow
a lifecycle; call events carry a ``SequenceNumber`` (each kind's row in the
registry says which).  A *rank* places an event
in that order; an event ranked below what was already seen for its SID is
*stale*.
"""

from __future__ import annotations

from typing import NamedTuple

from .events import TwilioEvent
from .kinds import kind_of_event

__all__ = ["Position", "Standing", "rank_of", "settle"]


def rank_of(event: TwilioEvent) -> int | None:
    """The event's place in its SID's order, or ``None`` when it has none (unknown status).

    Its kind's row says how: a sequence number the event carries (a call's
    ``SequenceNumber``), else the rank of its status.
    """
    return kind_of_event(event).rank(event)


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

    A repeat of the current status at the same rank (a retry) reports the
    status before it; an event ranked below the current one is stale and
    changes nothing; an equal rank (``delivered`` after ``undelivered``) is not
    stale and becomes current.  With sequence numbers, the same status may come
    again at another rank (a conference's ``participant-join`` of each
    participant): it is placed by its rank like any other.
    """
    if known is None:
        return Standing(None, False), Position(status, rank, None)
    if status == known.status and rank == known.rank:
        return Standing(known.previous, False), None
    if rank < known.rank:
        return Standing(known.status, True), None
    return Standing(known.status, False), Position(status, rank, known.status)
