"""What an inbox holds and says: its entries and their states, what it counts,
the errors a write may end in, and how the SQL inboxes keep an entry in a row.

Shared by the interface (:mod:`twilio_trigger.inbox`, which re-exports every name
here), its search and its backends; it imports nothing of theirs.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COLUMNS",
    "COUNTS",
    "PAUSED",
    "Counters",
    "Entry",
    "NotStoredError",
    "State",
    "UnreachableError",
    "counters_of",
    "decode_headers",
    "encode_headers",
    "entry_of_row",
]


#: The setting that pauses dispatch ("1") or lets it run ("0", or never set).
PAUSED = "dispatch_paused"


class NotStoredError(Exception):
    """The inbox could not store an event as durably as it was asked to (a replica
    or the disk did not confirm it in time): the event is not acknowledged."""


class UnreachableError(NotStoredError):
    """The inbox's (or a store's) database cannot be reached now.

    The inbox or store that raises it tells the outage in the log once, when it
    starts and when it ends: whoever catches it need not log it again.
    """


class State(enum.Enum):
    """Where an inbox entry stands."""

    PENDING = "pending"  # waiting for its (next) attempt
    RUNNING = "running"  # a worker is dispatching it
    DONE = "done"  # its callback succeeded (or it had none); kept to spot duplicates
    DEAD = "dead"  # every attempt failed: a dead letter


@dataclass(frozen=True, slots=True)
class Entry:
    """One event in the inbox, with its history."""

    id: int
    key: str
    kind: str
    sid: str | None
    status: str | None
    params: tuple[tuple[str, str], ...]
    received_at: float  # seconds since the epoch, as every time here
    state: State
    attempts: int
    next_attempt_at: float
    last_error: str | None
    finished_at: float | None
    #: The request headers worth seeing again (idempotency token, region, user agent...).
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def error_line(self) -> str | None:
        """The last line of :attr:`last_error` that is not blank, stripped: what a
        traceback says failed.  ``None`` when there is none."""
        if not self.last_error:
            return None
        lines = [line for line in self.last_error.strip().splitlines() if line.strip()]
        return lines[-1].strip() if lines else None


@dataclass(frozen=True, slots=True)
class Counters:
    """What an inbox has counted since it began to (:attr:`since`), for every process
    of the inbox and across restarts: each count is kept by the same atomic write as
    the change it counts."""

    #: Events stored (a copy the inbox refused is not one).
    received: int = 0
    #: Entries whose dispatch succeeded (or that had no callback): done.
    handled: int = 0
    #: Attempts that failed, each retry and each dead letter: an event may fail several.
    failed_attempts: int = 0
    #: Events whose every attempt failed: the dead letters made (replayed ones included).
    dead_lettered: int = 0
    #: Entries made pending again by a replay.
    replayed: int = 0
    #: When the inbox began counting (seconds since the epoch; 0.0: unknown).
    since: float = 0.0


#: The names of the counts of :class:`Counters`, as the inboxes keep them.
COUNTS = ("received", "handled", "failed_attempts", "dead_lettered", "replayed")


def counters_of(counts: dict[str, int], since: float) -> Counters:
    """The :class:`Counters` of the counts an inbox keeps by name (others ignored)."""
    return Counters(**{name: int(counts.get(name, 0)) for name in COUNTS}, since=since)


#: The columns of an entry's row in the SQL inboxes (SQLite, PostgreSQL), in order.
COLUMNS = (
    "id, key, kind, sid, status, params, received_at, state, attempts, "
    "next_attempt_at, last_error, finished_at, headers"
)


def entry_of_row(row: Sequence[Any]) -> Entry:
    """The entry a SQL inbox's row of :data:`COLUMNS` holds (parameters as JSON)."""
    return Entry(
        id=row[0],
        key=row[1],
        kind=row[2],
        sid=row[3],
        status=row[4],
        params=tuple((name, value) for name, value in json.loads(row[5])),
        received_at=row[6],
        state=State(row[7]),
        attempts=row[8],
        next_attempt_at=row[9],
        last_error=row[10],
        finished_at=row[11],
        headers=decode_headers(row[12]),
    )


def encode_headers(headers: Sequence[tuple[str, str]]) -> str:
    """Headers as stored: ``name: value`` lines (a header value holds no line break)."""
    return "\n".join([f"{name}: {value}" for name, value in headers])


def decode_headers(text: str | None) -> tuple[tuple[str, str], ...]:
    """The headers :func:`encode_headers` stored."""
    if not text:
        return ()
    pairs = (line.partition(": ") for line in text.split("\n"))
    return tuple((name, value) for name, _, value in pairs)
