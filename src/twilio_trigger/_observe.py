"""What the listener tells about its work: the event log, and metrics when asked for.

The request path calls an :class:`Observer` at a few points: a request
rejected, an answer given, an event received, an event finished.  The
:class:`EventLog` writes one log record per finished event; the Prometheus
metrics (``twilio_trigger.metrics``) count the same calls.  Nothing here
does I/O beyond ``logging``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final, NamedTuple

from ._dispatch import Outcome, Result
from ._events import TwilioEvent

__all__ = ["Attempt", "EventLog", "Observer", "Observers", "Rejection", "parse_level"]

logger = logging.getLogger("twilio_trigger")


class Rejection:
    """Why a request was refused before its event could be trusted (a metric label)."""

    SIGNATURE_MISSING: Final = "signature_missing"
    SIGNATURE_INVALID: Final = "signature_invalid"
    CONTENT_TYPE: Final = "content_type"
    TOO_LARGE: Final = "too_large"
    BAD_PAYLOAD: Final = "bad_payload"

    ALL: Final = (SIGNATURE_MISSING, SIGNATURE_INVALID, CONTENT_TYPE, TOO_LARGE, BAD_PAYLOAD)

    #: The reason behind a status a request's form was refused with.
    BY_STATUS: Final = {400: BAD_PAYLOAD, 413: TOO_LARGE, 415: CONTENT_TYPE}


class Attempt(NamedTuple):
    """An inbox worker's attempt at an event, and a failure's fate."""

    number: int
    of: int  # max_attempts
    retry_in: float | None = None  # seconds before the next attempt
    dead_letter: int | None = None  # the entry kept as a dead letter
    entry: int | None = None  # the inbox entry attempted


class Observer:
    """Told what the listener does.  This base ignores everything."""

    __slots__ = ()

    def rejected(self, reason: str) -> None:
        """A webhook request was refused (a :class:`Rejection` value)."""

    def answered(self, status: int) -> None:
        """The webhook path answered a request with *status*."""

    def received(self, event: TwilioEvent) -> None:
        """A verified event arrived."""

    def finished(
        self,
        event: TwilioEvent,
        result: Result,
        attempt: Attempt | None = None,
    ) -> None:
        """The event was handled (or found a duplicate, stale, unhandled).

        From the inbox's workers, *attempt* says which it was and a failure's fate.
        """


class Observers(Observer):
    """Several observers told the same things, in order."""

    __slots__ = ("_all",)

    def __init__(self, observers: Sequence[Observer]) -> None:
        self._all = tuple(observers)

    def rejected(self, reason: str) -> None:
        for observer in self._all:
            observer.rejected(reason)

    def answered(self, status: int) -> None:
        for observer in self._all:
            observer.answered(status)

    def received(self, event: TwilioEvent) -> None:
        for observer in self._all:
            observer.received(event)

    def finished(
        self,
        event: TwilioEvent,
        result: Result,
        attempt: Attempt | None = None,
    ) -> None:
        for observer in self._all:
            observer.finished(event, result, attempt)


def parse_level(name: str) -> int:
    """A level name (debug, info, warning, error, critical) as a ``logging`` level."""
    level = logging.getLevelName(name.strip().upper())
    if not isinstance(level, int) or level == logging.NOTSET:
        raise ValueError(f"unknown log level {name!r}: use debug, info, warning or error")
    return level


class EventLog(Observer):
    """One log record per finished event, with its fields as record attributes.

    Events that need nothing more are logged at *level*.  A failure is logged
    with its traceback: at ERROR when it is final (answered 500, or a dead
    letter), at WARNING when the inbox will try it again.
    """

    __slots__ = ("_level",)

    def __init__(self, level: int = logging.INFO) -> None:
        self._level = level

    def finished(
        self,
        event: TwilioEvent,
        result: Result,
        attempt: Attempt | None = None,
    ) -> None:
        outcome = result.outcome
        failed = not outcome.ok
        retry_in = None if attempt is None else attempt.retry_in
        if failed:
            level = logging.WARNING if retry_in is not None else logging.ERROR
        else:
            level = self._level
        if not logger.isEnabledFor(level):
            return
        fields: dict[str, object] = {
            "kind": event.kind,
            "sid": event.sid,
            "status": event.status,
            "callback": result.callback,
            "outcome": outcome.value,
        }
        message = "%s %s (%s)"
        args: list[object] = [event.kind, event.sid, event.status]
        if result.callback is not None:
            message += " -> %s"
            args.append(result.callback)
        message += ": %s"
        args.append(outcome.value.replace("_", " "))
        if result.seconds is not None:
            milliseconds = round(result.seconds * 1000.0, 3)
            fields["duration_ms"] = milliseconds
            message += " in %.1f ms"
            args.append(milliseconds)
        exc_info = None
        if failed:
            error = result.error
            if outcome is Outcome.TIMED_OUT:
                message += " (past its time limit)"
            elif error is not None:
                fields["error"] = type(error).__name__
                message += " with %s"
                args.append(type(error).__name__)
                exc_info = (type(error), error, error.__traceback__)
        if event.stale:
            fields["previous_status"] = event.previous_status
            message += " after %s"
            args.append(event.previous_status)
        if attempt is not None:
            fields["attempt"] = attempt.number
        if attempt is not None and (failed or attempt.number > 1):
            message += "; attempt %d of %d"
            args.extend((attempt.number, attempt.of))
            if retry_in is not None:
                fields["retry_in_s"] = round(retry_in, 3)
                message += ", next in %.1f s"
                args.append(retry_in)
            elif attempt.dead_letter is not None:
                fields["dead_letter"] = attempt.dead_letter
                message += ": kept as dead letter %d"
                args.append(attempt.dead_letter)
        logger.log(level, message, *args, exc_info=exc_info, extra=fields)
