"""Data the Redis inbox lost, and the ERROR that tells it.

Each process of a Redis inbox remembers the inbox's marker and the highest id it
saw, and its scripts check both: one that finds them changed says so (a claim
raises :class:`DataLostError`), and the process adopts the data as it is now
(``RedisCore._recover``, in ``inbox/_redis_core.py``) and tells in one ERROR
what was lost (:func:`tell_loss`): which events, from what the process last
counted (:class:`Look`), and what the chosen durability has to do with it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

__all__ = ["DataLostError", "Look", "tell_loss"]

logger = logging.getLogger("twilio_trigger")


class DataLostError(Exception):
    """The inbox's marker or id counter is not what this process saw: data was lost."""

    def __init__(self, marker: str | None, seq: int | None) -> None:
        super().__init__(marker, seq)
        self.marker = marker  # '' when gone; None when only the consumer group is
        self.seq = seq


@dataclass
class Look:
    """The inbox as this process last counted it, to tell what a loss took."""

    unfinished: int = 0
    dead: int = 0
    at: float | None = None  # time.time() of the count; None before the first


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def tell_loss(
    seen: str,
    marker: str | None,
    seq: int | None,
    *,
    location: str,
    durability: str,
    known: int,
    look: Look,
) -> None:
    """Tell, as an ERROR, what the Redis inbox at *location* lost: its marker was
    *seen* and is now *marker* (``''``: gone; ``None``: only its work queue is
    gone, *seq* too), its id counter is now *seq*, and this process had seen ids
    up to *known* and last counted *look*."""
    if marker is None:
        logger.error(
            "the work queue of the Redis inbox %s is gone (its stream or consumer "
            "group was deleted) and is made anew: the events that were waiting in it "
            "stay pending without being dispatched; `twilio-trigger inbox list "
            "--state pending` shows them and `twilio-trigger inbox replay ID` queues "
            "one again",
            location,
        )
        return
    counted = (
        "this process had not counted them yet"
        if look.at is None
        else f"{_plural(look.unfinished, 'event')} not yet dispatched when this "
        f"process last counted, {time.time() - look.at:.1f} s before"
    )
    advice = {
        "memory": "redis_durability=memory accepts this; fsync or replicas:N keep "
        "acknowledged events across a restart",
        "fsync": "redis_durability=fsync was to prevent this: check that this is the "
        "same server, with its append-only file and data folder",
    }.get(durability, "check that the failover promoted a replica that had the data")
    if marker == seen and seq is not None:
        logger.error(
            "the Redis inbox %s went back to an older copy of its data (its id counter "
            "went from %d to %d): the %s stored after that copy (ids %d to %d) are "
            "gone, and Twilio, told they were stored, will not send them again (%s); "
            "events of the copy handled since may run again; %s",
            location,
            known,
            seq,
            _plural(known - seq, "event"),
            seq + 1,
            known,
            counted,
            advice,
        )
        return
    why = (
        "Redis restarted without persistence, failed over to a replica that lacked "
        "it, or was flushed"
        if not marker
        else "another process found it gone and made the inbox anew"
    )
    dead = f"; {_plural(look.dead, 'dead letter')} too" if look.dead else ""
    logger.error(
        "the Redis inbox %s lost its data (%s): gone are %s (ids up to %d), which "
        "Twilio was told were stored and will not send again, and the record of the "
        "events handled before%s; %s",
        location,
        why,
        counted,
        known,
        dead,
        advice,
    )
