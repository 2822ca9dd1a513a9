"""What the listener tells about its work: the event log, and metrics when asked for.

The request path calls an :class:`Observer` at a few points: a request
rejected, an answer given, an event received, an event finished.  The
:class:`EventLog` writes one log record per finished event; the Prometheus
metrics (``twilio_trigger.metrics``) count the same calls.  Nothing here
does I/O beyond ``logging``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

from ._core.events import TwilioEvent
from ._invoke import Outcome, Result
from ._logging import (
    bounded,
    parse_level,  # still imported from here
    printable,
    url_names_only,
)
from .inbox import UnreachableError

__all__ = [
    "Attempt",
    "EventLog",
    "Observer",
    "Observers",
    "Refusal",
    "RefusalLog",
    "Rejection",
    "parse_level",
]

logger = logging.getLogger("twilio_trigger")

#: Characters of an event's SID or status that its log line shows.
_MAX_FIELD = 100


class Rejection:
    """Why a request was refused before its event could be trusted (a metric label)."""

    SIGNATURE_MISSING: Final = "signature_missing"
    SIGNATURE_INVALID: Final = "signature_invalid"
    CONTENT_TYPE: Final = "content_type"
    TOO_LARGE: Final = "too_large"
    BAD_PAYLOAD: Final = "bad_payload"
    #: HTTP Basic credentials that are not among those configured.
    CREDENTIALS: Final = "credentials_invalid"
    # Refused by the listener's own server, before the request reached the webhook.
    MALFORMED: Final = "malformed_request"
    HEAD_TOO_LARGE: Final = "head_too_large"
    TIMEOUT: Final = "timeout"
    CONNECTIONS: Final = "too_many_connections"
    PIPELINED: Final = "too_many_pipelined"

    ALL: Final = (
        SIGNATURE_MISSING,
        SIGNATURE_INVALID,
        CONTENT_TYPE,
        TOO_LARGE,
        BAD_PAYLOAD,
        CREDENTIALS,
        MALFORMED,
        HEAD_TOO_LARGE,
        TIMEOUT,
        CONNECTIONS,
        PIPELINED,
    )

    #: The reason behind a status a request's form was refused with.
    BY_STATUS: Final = {400: BAD_PAYLOAD, 413: TOO_LARGE, 415: CONTENT_TYPE}


class Refusal(NamedTuple):
    """A request refused, as told to observers: never a secret, never a body."""

    reason: str  # a Rejection value
    status: int  # the answer given (0: the connection was closed without one)
    message: str  # what was wrong, in a few words
    remote: str | None = None  # the client's address, as the server saw it
    #: For a signature that matched nothing: the URL forms it was checked against.
    urls: tuple[str, ...] = ()
    #: Says why in more words, when the refusal is told (not for each one counted).
    explain: Callable[[], str | None] | None = None


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

    def rejected(self, refusal: Refusal) -> None:
        """A request was refused, by the webhook or by the server before it."""

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

    def breaker(self, callback: str, *, opened: bool, here: bool) -> None:
        """The breaker of *callback* opened (or closed): by this process (*here*),
        or by another, as this one just read from the inbox."""

    def held(self, callback: str, reason: str) -> None:
        """An event of *callback* was given back to the inbox for later, held back
        by its ``concurrency`` or ``rate`` limit."""

    def flush(self) -> None:
        """The listener stops: tell what is still held back (counted refusals)."""


class Observers(Observer):
    """Several observers told the same things, in order."""

    __slots__ = ("_all",)

    def __init__(self, observers: Sequence[Observer]) -> None:
        self._all = tuple(observers)

    def rejected(self, refusal: Refusal) -> None:
        for observer in self._all:
            observer.rejected(refusal)

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

    def breaker(self, callback: str, *, opened: bool, here: bool) -> None:
        for observer in self._all:
            observer.breaker(callback, opened=opened, here=here)

    def held(self, callback: str, reason: str) -> None:
        for observer in self._all:
            observer.held(callback, reason)

    def flush(self) -> None:
        for observer in self._all:
            observer.flush()


#: The longest client address, URL form and explanation a refusal's line shows.
_MAX_REMOTE = 100
_MAX_URL = 300
_MAX_URLS = 8
_MAX_WHY = 4000

_VERIFY_HINT = (
    "`twilio-trigger verify --url URL --signature SIGNATURE --body BODY` says which URL "
    "and token a request was signed with"
)
_SIGNATURE_HINT = (
    "check that the auth token is the account's (TWILIO_AUTH_TOKEN); if Twilio calls "
    "another URL (a proxy, a tunnel, a mount), set public_url to it; " + _VERIFY_HINT
)
#: Twilio signs every request: one without a signature is not Twilio's.
_MISSING_HINT = (
    "Twilio signs every webhook, so this request is not Twilio's (`twilio-trigger send` "
    "sends a signed one for a test)"
)


class RefusalLog:
    """Refused requests told at WARNING, at most one line per reason a *window*.

    The first refusal of a reason is told whole (what, why, from where, and for
    a signature the URLs it was checked against); the next ones within *window*
    seconds are only counted, and told as one line when that reason next comes
    after the window, or at :meth:`flush`.  A flood of refusals therefore costs
    the log a few lines a minute.
    """

    __slots__ = ("_clock", "_lock", "_windows", "window")

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()  # adapters refuse from their threads
        self._windows: dict[str, list[float]] = {}  # reason -> [start, count not told]

    def told(self, refusal: Refusal) -> None:
        now = self._clock()
        with self._lock:
            window = self._windows.get(refusal.reason)
            if window is not None and now - window[0] < self.window:
                window[1] += 1
                return
            self._windows[refusal.reason] = [now, 0]
        if window is not None and window[1]:
            self._summary(refusal.reason, int(window[1]), now - window[0])
        self._tell(refusal)

    def flush(self) -> None:
        """Tell the refusals counted and not told yet."""
        now = self._clock()
        with self._lock:
            pending = [(reason, int(w[1]), now - w[0]) for reason, w in self._windows.items()]
            for window in self._windows.values():
                window[1] = 0
        for reason, count, seconds in pending:
            self._summary(reason, count, seconds)

    @staticmethod
    def _summary(reason: str, count: int, seconds: float) -> None:
        if count:
            logger.warning(
                "refused %d more request%s (%s) in the last %.0f s, not logged one by one",
                count,
                "" if count == 1 else "s",
                reason,
                seconds,
                extra={"reason": reason, "refused": count},
            )

    @staticmethod
    def _tell(refusal: Refusal) -> None:
        # Bounded, and the URLs' query values left out (a message's body, a phone
        # number): the log keeps what identifies the mistake.  The line escapes
        # what it shows; the record's fields keep the values (a JSON log escapes
        # them as JSON), cut to the same lengths.
        remote = refusal.remote
        status = f"answered {refusal.status}" if refusal.status else "closed without an answer"
        message = "refused a request from %s (%s): %s"
        args: list[object] = [
            bounded(remote, _MAX_REMOTE) if remote else "an unknown address",
            status,
            printable(refusal.message),
        ]
        fields: dict[str, object] = {"reason": refusal.reason, "status": refusal.status}
        if remote:
            fields["remote"] = remote[:_MAX_REMOTE]
        why = refusal.explain() if refusal.explain is not None else None
        urls = [url_names_only(url)[:_MAX_URL] for url in refusal.urls[:_MAX_URLS]]
        if urls:
            fields["urls"] = urls
        if why:
            # The verifier's own account: the URL forms tried, and what to do.
            fields["why"] = why[:_MAX_WHY]
            message += ": %s; %s"
            args += [bounded(why, _MAX_WHY), _VERIFY_HINT]
        elif urls:
            message += "; checked against %s; %s"
            args += [", ".join(bounded(url, _MAX_URL) for url in urls), _SIGNATURE_HINT]
        elif refusal.reason == Rejection.SIGNATURE_INVALID:
            message += "; %s"
            args.append(_SIGNATURE_HINT)
        elif refusal.reason == Rejection.SIGNATURE_MISSING:
            message += "; %s"
            args.append(_MISSING_HINT)
        logger.warning(message, *args, extra=fields)


class EventLog(Observer):
    """One log record per finished event, with its fields as record attributes.

    Events that need nothing more are logged at *level*.  A failure is logged
    with its traceback: at ERROR when it is final (answered 500, or a dead
    letter), at WARNING when the inbox will try it again.  Refused requests
    are told by a :class:`RefusalLog`.
    """

    __slots__ = ("_level", "refusals")

    def __init__(self, level: int = logging.INFO) -> None:
        self._level = level
        self.refusals = RefusalLog()

    def rejected(self, refusal: Refusal) -> None:
        self.refusals.told(refusal)

    def flush(self) -> None:
        self.refusals.flush()

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
        # Twilio's SIDs and statuses are a few dozen characters; a signed request
        # can still carry any (a captured one re-split): each is cut in the line
        # and in the record's fields, which a JSON log escapes itself.
        sid, status = event.sid, event.status
        if sid is not None and len(sid) > _MAX_FIELD:
            sid = sid[: _MAX_FIELD - 1] + "…"
        if status is not None and len(status) > _MAX_FIELD:
            status = status[: _MAX_FIELD - 1] + "…"
        fields: dict[str, object] = {
            "kind": event.kind,
            "sid": sid,
            "status": status,
            "callback": result.callback,
            "outcome": outcome.value,
        }
        # "sms SM… (delivered)"; a verb's result has no status, a fallback's event
        # perhaps no SID either: only what there is.
        message = "%s"
        args: list[object] = [event.kind]
        if sid is not None:
            message += " %s"
            args.append(sid if sid.isprintable() else bounded(sid, _MAX_FIELD))
        if status is not None:
            message += " (%s)"
            args.append(status if status.isprintable() else bounded(status, _MAX_FIELD))
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
                # A database that went away while the callback's transaction ran is
                # an outage, told once by its Outage: no traceback per event.
                if not isinstance(error, UnreachableError):
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
