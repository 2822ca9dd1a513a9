"""Calling one callback: ``async def`` or plain ``def``, within its time limit.

What a call became (:class:`Outcome`, :class:`Result`), the one timer that
cancels callbacks past their limit (:class:`Deadlines`), and :func:`invoke`, the
single path by which every callback runs, inline or from the inbox's workers.
Which callback an event goes to is :mod:`._dispatch`'s business.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import time
import traceback
from concurrent.futures import Executor
from typing import NamedTuple

from ._core.events import TwilioEvent
from ._core.services import Callback
from ._exceptions import ConfigurationError
from ._logging import trim_traceback
from ._threads import callback_threads
from ._transaction import TransactionSource, entry_transactions

__all__ = [
    "Deadlines",
    "Outcome",
    "Result",
    "callback_executor",
    "describe_error",
    "invoke",
    "no_transactions",
]


#: Where sync callbacks run: the process's callback threads (daemon threads that
#: never hold the stop: :mod:`._threads`), unless a framework adapter sets an
#: executor that runs them in the request's own thread.
callback_executor: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "twilio_trigger_callback_executor", default=None
)


class Outcome(enum.Enum):
    """What became of one event."""

    HANDLED = "handled"  # the callback returned normally
    FAILED = "failed"  # the callback raised or returned an Exception
    TIMED_OUT = "timed_out"  # the callback ran past callback_timeout
    NO_SERVICE = "no_service"  # no service of the event's kind is attached
    NO_CALLBACK = "no_callback"  # the service does not define the status's callback
    UNKNOWN_STATUS = "unknown_status"  # a status twilio-trigger does not know
    STALE = "stale"  # older than a status already seen, and skip_stale is on
    DUPLICATE = "duplicate"  # a delivery handled before

    @property
    def ok(self) -> bool:
        """True when the event needs no further attempt."""
        return self not in (Outcome.FAILED, Outcome.TIMED_OUT)


class Result(NamedTuple):
    """The outcome of a dispatch, with what a caller needs to report it."""

    outcome: Outcome
    callback: str | None = None
    error: BaseException | None = None
    #: A sync callback past its time limit goes on in its thread: this finishes with it.
    still_running: asyncio.Future[BaseException | None] | None = None
    #: How long the callback ran (until its time limit, for a late one).
    seconds: float | None = None
    #: What the callback returned, when it returned something other than an Exception.
    value: object = None


def _error_of(result: object) -> BaseException | None:
    # A returned Exception counts as a failure, the same as one raised.
    return result if isinstance(result, Exception) else None


class Deadlines:
    """Cancels callbacks that run past their time limit, with one timer for all of them.

    A timer per call (``asyncio.timeout``) costs about a sixth of the listener's
    throughput under load; here a call only registers its task, and one check,
    every tenth of the limit (at most 0.1 s) while calls are running, cancels the
    late ones.  A limit is thus enforced to within that step.
    """

    __slots__ = ("_expired", "_limit", "_loop", "_running", "_step", "_ticking")

    def __init__(self, limit: float) -> None:
        self._limit = limit
        self._step = min(0.1, limit / 10)
        self._running: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticking = False

    def enter(self) -> asyncio.Task[object]:
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        if loop is not self._loop:  # a new event loop (the listener was restarted)
            self._loop, self._ticking = loop, False
            self._running.clear()
            self._expired.clear()
        self._running[task] = loop.time() + self._limit
        if not self._ticking:
            self._ticking = True
            loop.call_later(self._step, self._tick)
        return task

    def leave(self, task: asyncio.Task[object]) -> bool:
        """Unregister *task*; True when it was cancelled for being late."""
        self._running.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            task.uncancel()
            return True
        return False

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        late = [task for task, deadline in self._running.items() if deadline <= now]
        for task in late:
            del self._running[task]
            self._expired.add(task)
            task.cancel()
        if self._running:
            loop.call_later(self._step, self._tick)
        else:
            self._ticking = False


def _succeeded(result: object) -> bool:
    return _error_of(result) is None


def no_transactions(label: str) -> ConfigurationError:
    return ConfigurationError(
        f"{label} takes a transaction (its second argument), which only a "
        f"postgresql:// inbox or store gives: set inbox= or store= to a PostgreSQL URL, "
        f"or drop the argument"
    )


async def _in_transaction(
    callback: Callback, event: TwilioEvent, transactions: TransactionSource | None
) -> object:
    source = entry_transactions.get() or transactions
    if source is None:
        raise no_transactions(callback.label)
    return await source.run(callback.function, event, _succeeded)  # type: ignore[arg-type]


async def invoke(
    callback: Callback,
    event: TwilioEvent,
    deadlines: Deadlines | None = None,
    transactions: TransactionSource | None = None,
) -> Result:
    """Run *callback* on *event*, within the time limit of *deadlines* if given.

    Sync callbacks run in the process's callback threads, never on the loop.  An
    async callback past its time is cancelled; a sync one cannot be, so its
    thread runs on and :attr:`Result.still_running` tells when it ends.  A
    callback that takes a transaction gets one from the inbox entry being
    dispatched, else from *transactions*.
    """
    label = callback.label
    result: object
    running: asyncio.Future[object] | None = None
    task = None if deadlines is None else deadlines.enter()
    started = time.perf_counter()
    try:
        if callback.transactional:
            result = await _in_transaction(callback, event, transactions)
        elif callback.is_async:
            result = await callback.function(event)  # type: ignore[misc]
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            executor = callback_executor.get() or callback_threads()
            running = loop.run_in_executor(executor, context.run, callback.function, event)
            result = await asyncio.shield(running)
        if asyncio.iscoroutine(result):  # a sync wrapper around a coroutine function
            result = await result
    except asyncio.CancelledError:
        if task is not None and deadlines is not None and deadlines.leave(task):
            task = None
            late = None if running is None else _outcome_of(running)
            seconds = time.perf_counter() - started
            return Result(Outcome.TIMED_OUT, label, TimeoutError("time limit"), late, seconds)
        raise
    except Exception as error:  # told from the callback's own frame on
        seconds = time.perf_counter() - started
        return Result(Outcome.FAILED, label, trim_traceback(error), None, seconds)
    finally:
        if task is not None and deadlines is not None:
            deadlines.leave(task)
    seconds = time.perf_counter() - started
    failure = _error_of(result)
    if failure is None:
        return Result(Outcome.HANDLED, label, None, None, seconds, result)
    return Result(Outcome.FAILED, label, failure, None, seconds)


def _outcome_of(running: asyncio.Future[object]) -> asyncio.Future[BaseException | None]:
    """A future of the late callback's error (``None`` if it succeeded in the end)."""
    finished: asyncio.Future[BaseException | None] = running.get_loop().create_future()

    def settle(done: asyncio.Future[object]) -> None:
        if not finished.done():
            error = done.exception() if not done.cancelled() else None
            if error is not None:
                trim_traceback(error)
            finished.set_result(error if error is not None else _error_of(done.result()))

    running.add_done_callback(settle)
    return finished


def describe_error(error: BaseException) -> str:
    """The error with its traceback, as text to store or show."""
    return "".join(traceback.format_exception(error)).rstrip()
