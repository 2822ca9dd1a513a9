"""What this process saw of each attempt at an inbox entry, and its own counters
(shown when the inbox keeps none, and for the duplicates, which only the process sees)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import NamedTuple

from .._core.events import TwilioEvent
from .._invoke import Outcome, Result, describe_error
from .._observe import Attempt, Observer

__all__ = ["Activity", "AttemptRecord"]


class AttemptRecord(NamedTuple):
    """One attempt at an inbox entry, as this process saw it."""

    at: float
    number: int
    outcome: str
    callback: str | None
    milliseconds: float | None
    error: str | None  # with its traceback


#: An attempt as kept: :class:`AttemptRecord`'s fields in a plain tuple.
_Kept = tuple[float, int, str, str | None, float | None, str | None]


class Activity(Observer):
    """This process's counters since :attr:`started`, and the attempts at each inbox
    entry (the latest ones).

    Each entry's attempts are kept as a plain tuple of plain tuples of strings and
    numbers, which Python's garbage collector stops tracking the first time it
    sees them: the attempts at 10,000 entries, kept for as long as the process
    runs, do not lengthen its collections (as lists of named tuples, they were
    20,000 objects or more that each full collection walked).
    """

    def __init__(self, limit: int = 10_000) -> None:
        #: When this process began counting (seconds since the epoch).
        self.started = time.time()
        self.counts = {
            "received": 0, "handled": 0, "failed_attempts": 0, "dead_lettered": 0,
            "duplicates": 0,
        }  # fmt: skip
        self._limit = limit
        self._attempts: OrderedDict[int, tuple[_Kept, ...]] = OrderedDict()

    def received(self, event: TwilioEvent) -> None:
        self.counts["received"] += 1

    def finished(self, event: TwilioEvent, result: Result, attempt: Attempt | None = None) -> None:
        outcome = result.outcome
        if outcome is Outcome.DUPLICATE:
            self.counts["duplicates"] += 1
        elif not outcome.ok:
            self.counts["failed_attempts"] += 1
            if attempt is not None and attempt.dead_letter is not None:
                self.counts["dead_lettered"] += 1
        elif outcome is Outcome.HANDLED:
            self.counts["handled"] += 1
        if attempt is None or attempt.entry is None:
            return
        error = None if result.error is None else describe_error(result.error)
        milliseconds = None if result.seconds is None else round(result.seconds * 1000, 3)
        record: _Kept = (
            time.time(),
            attempt.number,
            outcome.value,
            result.callback,
            milliseconds,
            error,
        )
        history = self._attempts.pop(attempt.entry, ())
        if error is not None:
            # The same error again (a retry that failed the same way): kept once.
            same = next((old[5] for old in history if old[5] == error), None)
            if same is not None:
                record = (*record[:5], same)
        self._attempts[attempt.entry] = (*history[-19:], record)
        while len(self._attempts) > self._limit:
            self._attempts.popitem(last=False)

    def attempts(self, entry_id: int) -> list[AttemptRecord]:
        return [AttemptRecord(*kept) for kept in self._attempts.get(entry_id, ())]
