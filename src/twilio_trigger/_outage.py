"""An outage of the database behind an inbox or a store, told once.

While a database (PostgreSQL, Redis) cannot be reached, every request that
needs it is answered 503, and the log would say so with a traceback per
request.  :class:`Outage` says it once instead: an ERROR when the outage
begins, with its reason on one line, and an INFO when it ends, with how long
it lasted and how many requests were refused meanwhile.  Each failure is
raised as :class:`OutageError`, an :class:`~twilio_trigger.inbox.UnreachableError`
that knows its outage: whoever answers a request 503 for it calls
:func:`refused`, so that the count is of requests, not of the operations that
failed (a worker's polls, readiness probes).

While an outage lasts, the methods it watches (:func:`watched`) try the database
one at a time: the first to come tries it, with the client's usual time limits
(a host that drops packets costs seconds), and the others wait for it at most
:data:`OUTAGE_WAIT`: if it succeeds within that time, the outage is over and
they go on; if not, they fail, quickly, as the PostgreSQL inbox's do when its
pool has no connection to give.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from ._logging import printable, shown_url
from .inbox import UnreachableError

__all__ = ["OUTAGE_WAIT", "Outage", "OutageError", "not_answering", "refused", "watched"]

logger = logging.getLogger("twilio_trigger")

#: The longest reason told (a server's message may be long).
_MAX_REASON = 300
#: Seconds an operation waits, during an outage, for the one trying the database.
OUTAGE_WAIT = 0.5


class OutageError(UnreachableError):
    """The database cannot be reached now; the :class:`Outage` that told it is
    :attr:`outage` (``None`` for one made elsewhere)."""

    def __init__(self, message: str, outage: Outage | None = None) -> None:
        super().__init__(message)
        self.outage = outage


#: Whether this process answers requests: a worker's (``Listener.work``) answers
#: none, and its outage lines say what waits instead of what is answered 503.
_answering = True


@contextlib.contextmanager
def not_answering() -> Iterator[None]:
    """While this process only dispatches (a worker), its outages say so."""
    global _answering
    before, _answering = _answering, False
    try:
        yield
    finally:
        _answering = before


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class Outage:
    """Tells once that the *what* at *url* cannot be reached, and once that it can
    again, rather than a traceback per request.

    *errors* gives the exceptions that mean the database cannot be reached
    (rather than a bug), for :meth:`catches`; asked once, when first needed, so
    that the driver is imported only by those that use it.
    """

    def __init__(
        self,
        what: str,
        url: str,
        errors: Callable[[], tuple[type[BaseException], ...]] | None = None,
    ) -> None:
        #: What is told in :class:`OutageError`'s message ("Redis inbox").
        self.what = what
        #: What the log names: with its URL, without a password.
        self.name = f"{what} {shown_url(url)}"
        self._errors = errors
        self._caught: tuple[type[BaseException], ...] | None = None
        self._lock = threading.Lock()  # stores of two listeners' loops may share one
        self._since: float | None = None
        self._failures = 0
        self._refused = 0
        self._reason = ""  # the last failure's, for the operations that waited in vain
        self._trying = False  # an operation is trying the database during the outage
        self._trier: asyncio.Task[Any] | None = None  # the task it runs in
        # Operations waiting for the one trying: woken, on their loops, when it ends.
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def catches(self, error: BaseException) -> bool:
        """Whether *error* means that the database cannot be reached."""
        if isinstance(error, UnreachableError):
            return False  # told already, by whoever raised it
        if self._caught is None:
            self._caught = () if self._errors is None else self._errors()
        return isinstance(error, self._caught)

    def reason(self, error: BaseException) -> str:
        """Why *error* happened, on one line, bounded and escaped."""
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        # One line: a connection error's text may span several.
        return printable(" ".join(text.split())[:_MAX_REASON])

    def failed(self, error: BaseException) -> str:
        """Count a failure to reach the database (told when it is the first); return its reason."""
        reason = self.reason(error)
        with self._lock:
            self._failures += 1
            self._reason = reason
            if self._since is not None:
                return reason
            self._since = time.monotonic()
        logger.error(
            "the %s cannot be reached (%s): %s until it can",
            self.name,
            reason,
            "events are answered 503" if _answering else "dispatch waits",
            extra={"reason": reason},
        )
        return reason

    def unreachable(self, error: BaseException) -> OutageError:
        """The error to raise for *error*, counted (and told when it is the first)."""
        reason = self.failed(error)
        return OutageError(f"the {self.what} cannot be reached: {reason}", self)

    async def admit(self, wait: float = OUTAGE_WAIT) -> bool:
        """Before an operation on the database during this outage: ``True`` when it
        is the one to try the database (then call :meth:`tried` after it),
        ``False`` when the outage is over, or when the operation trying is this
        task's own (one watched method calling another).  While another operation
        is trying, waits for it at most *wait* seconds, then raises
        :class:`OutageError`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        task = asyncio.current_task()
        while True:
            with self._lock:
                if self._since is None:
                    return False
                if not self._trying:
                    self._trying, self._trier = True, task
                    return True
                if task is not None and self._trier is task:
                    return False  # within the operation trying: it goes on
                woken: asyncio.Future[None] = loop.create_future()
                self._waiting.append((loop, woken))
                reason = self._reason
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                async with asyncio.timeout(left):
                    await woken
            except BaseException as error:  # timed out, or cancelled: not waiting now
                with self._lock, contextlib.suppress(ValueError):
                    self._waiting.remove((loop, woken))
                if not isinstance(error, TimeoutError):
                    raise
                raise OutageError(
                    f"the {self.what} cannot be reached: {reason} "
                    f"(waited {wait:g} s for another operation trying it)",
                    self,
                ) from None

    def tried(self) -> None:
        """The operation :meth:`admit` let try the database has ended, however:
        those waiting for it look again (the outage may be over)."""
        with self._lock:
            self._trying, self._trier = False, None
            waiting, self._waiting = self._waiting, []
        for loop, woken in waiting:
            with contextlib.suppress(RuntimeError):  # that loop is closed: none waits
                loop.call_soon_threadsafe(_wake, woken)

    def refused(self) -> None:
        """A request was answered 503 because of this outage."""
        with self._lock:
            if self._since is not None:
                self._refused += 1

    def recovered(self, started: float | None = None) -> None:
        """The database answered again: tell how long it was away, once.

        *started* is when the operation that succeeded began (``time.monotonic()``):
        one begun before the outage was told proves nothing (a statement that
        completed as the server went down, on a connection the crash had not
        reached yet), and is ignored, so that the outage is not told twice.
        """
        with self._lock:
            since = self._since
            if since is None or (started is not None and started < since):
                return
            self._since = None
            failures, self._failures = self._failures, 0
            count, self._refused = self._refused, 0
        seconds = time.monotonic() - since
        refusals = f"{_plural(count, 'request')} refused (answered 503) meanwhile, "
        logger.info(
            "the %s can be reached again, after %.1f s: %s%s failed",
            self.name,
            seconds,
            refusals if _answering else "",
            _plural(failures, "operation"),
            extra={"refused": count, "failed": failures, "outage_s": round(seconds, 3)},
        )


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


def refused(error: BaseException) -> None:
    """A request was answered 503 for *error*: count it in the outage that told it,
    if *error* (or what caused it) is an :class:`OutageError`."""
    current: BaseException | None = error
    for _ in range(8):  # a short chain: the pipeline's own error, then the outage's
        if current is None:
            return
        if isinstance(current, OutageError):
            if current.outage is not None:
                current.outage.refused()
            return
        current = current.__cause__


class Watched(Protocol):
    """What :func:`watched` methods belong to: an object with an :class:`Outage`."""

    @property
    def outage(self) -> Outage: ...


_Self = TypeVar("_Self", bound=Watched)
_Params = ParamSpec("_Params")
_Result = TypeVar("_Result")


def watched(
    method: Callable[Concatenate[_Self, _Params], Awaitable[_Result]],
) -> Callable[Concatenate[_Self, _Params], Coroutine[Any, Any, _Result]]:
    """An async method of an inbox or store whose failures to reach the database
    are raised as :class:`OutageError`, and whose success ends an outage; during
    an outage, it waits a little for another such method trying the database
    (:meth:`Outage.admit`)."""

    @functools.wraps(method)
    async def run(self: _Self, /, *args: _Params.args, **kwargs: _Params.kwargs) -> _Result:
        outage = self.outage
        trying = await outage.admit() if outage.ongoing else False
        started = time.monotonic()
        try:
            try:
                result = await method(self, *args, **kwargs)
            except Exception as error:
                if not outage.catches(error):
                    raise
                raise outage.unreachable(error) from error
            if outage.ongoing:
                outage.recovered(started)
            return result
        finally:
            if trying:  # after the outage was ended, if it was: those waiting go on
                outage.tried()

    return run
