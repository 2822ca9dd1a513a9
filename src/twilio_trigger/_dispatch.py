"""Calling the user's callbacks: one path for ``async def`` and plain ``def``."""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import time
import traceback
from concurrent.futures import Executor
from typing import NamedTuple

from ._core.events import EventKind, TwilioEvent
from ._core.kinds import Kind, kind_of_event, kind_of_service
from ._core.routing import callback_for
from ._core.services import Callback, resolve_callbacks
from ._exceptions import ServiceError
from ._logging import FirstWarning

__all__ = [
    "Deadlines",
    "Dispatcher",
    "Outcome",
    "Result",
    "callback_executor",
    "describe_error",
    "invoke",
]

logger = logging.getLogger("twilio_trigger")

#: Where sync callbacks run: the event loop's default thread pool, unless a
#: framework adapter sets an executor that runs them in the request's own thread.
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
    # A returned Exception counts as a failure, as the seed's `returns error?`.
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


async def invoke(
    callback: Callback, event: TwilioEvent, deadlines: Deadlines | None = None
) -> Result:
    """Run *callback* on *event*, within the time limit of *deadlines* if given.

    Sync callbacks run in the event loop's thread pool, never on the loop.  An
    async callback past its time is cancelled; a sync one cannot be, so its
    thread runs on and :attr:`Result.still_running` tells when it ends.
    """
    label = callback.label
    result: object
    running: asyncio.Future[object] | None = None
    task = None if deadlines is None else deadlines.enter()
    started = time.perf_counter()
    try:
        if callback.is_async:
            result = await callback.function(event)  # type: ignore[misc]
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            executor = callback_executor.get()
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
    except Exception as error:
        return Result(Outcome.FAILED, label, error, None, time.perf_counter() - started)
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
            finished.set_result(error if error is not None else _error_of(done.result()))

    running.add_done_callback(settle)
    return finished


def describe_error(error: BaseException) -> str:
    """The error with its traceback, as text to store or show."""
    return "".join(traceback.format_exception(error)).rstrip()


class Dispatcher:
    """The attached services, and the dispatch of one event to its callback."""

    __slots__ = ("_hints", "_services", "_tables", "paths")

    def __init__(self) -> None:
        self._services: dict[EventKind, object] = {}
        self._tables: dict[EventKind, dict[str, Callback]] = {}
        self._hints = FirstWarning()
        #: Paths with services attached at them, and their kinds, tried first there.
        #: Read by the ASGI application for every request: changed in place.
        self.paths: dict[str, tuple[Kind, ...]] = {}

    @property
    def services(self) -> tuple[object, ...]:
        return tuple(self._services.values())

    def attach(self, service: object, path: str | None = None) -> None:
        row = kind_of_service(service)
        kind = row.name
        current = self._services.get(kind)
        if current is service:
            raise ServiceError(f"{type(service).__name__} is already attached")
        if current is not None:
            raise ServiceError(
                f"a {row.service_class.__name__} ({type(current).__name__}) is already attached; "
                f"a listener takes one service of each kind: detach it first, or put "
                f"the callbacks of {type(service).__name__} in it"
            )
        table = resolve_callbacks(service, row)
        self._services[kind] = service
        self._tables[kind] = table
        if path is not None:
            self.paths[path] = (*self.paths.get(path, ()), row)

    def detach(self, service: object) -> None:
        kind = kind_of_service(service).name
        if self._services.get(kind) is not service:
            raise ServiceError(f"{type(service).__name__} is not attached to this listener")
        del self._services[kind]
        del self._tables[kind]
        for path, kinds in list(self.paths.items()):
            left = tuple(k for k in kinds if k.name != kind)
            if left:
                self.paths[path] = left
            else:
                del self.paths[path]

    async def dispatch(self, event: TwilioEvent, deadlines: Deadlines | None = None) -> Result:
        """Run the event's callback; events nobody handles are logged and acknowledged."""
        row = kind_of_event(event)
        kind = row.name
        name = row.callback_for(event.status)
        if name is None:
            self._hint(
                kind,
                f"?{event.status}",
                "acknowledged %s %s with status %r, unknown to twilio-trigger, without "
                "dispatching it",
                kind,
                event.sid,
                event.status,
            )
            return Result(Outcome.UNKNOWN_STATUS)
        table = self._tables.get(kind)
        if table is None:
            self._hint(
                kind,
                f"no service {name}",
                "acknowledged %s %s (%s) without dispatching it: no %s is attached; "
                "attach one with `def %s(self, event: twilio_trigger.%s)` to handle it",
                kind,
                event.sid,
                event.status,
                row.service_class.__name__,
                name,
                row.event_class.__name__,
            )
            return Result(Outcome.NO_SERVICE)
        callback = table.get(name)
        if callback is None:
            service = type(self._services[kind]).__name__
            self._hint(
                kind,
                name,
                "acknowledged %s %s (%s) without dispatching it: add "
                "`def %s(self, event: twilio_trigger.%s)` to %s to handle it",
                kind,
                event.sid,
                event.status,
                name,
                row.event_class.__name__,
                service,
            )
            return Result(Outcome.NO_CALLBACK)
        return await invoke(callback, event, deadlines)

    def label_for(self, event: TwilioEvent) -> str | None:
        """The label of the callback *event* would run (``Service.on_status``), if any."""
        name = callback_for(event)
        table = self._tables.get(event.kind)
        callback = None if name is None or table is None else table.get(name)
        return None if callback is None else callback.label

    def _hint(self, kind: str, key: str, message: str, *args: object) -> None:
        # Said once as a warning, then at debug level: a status callback URL
        # set for statuses nobody handles must not flood the log.
        logger.log(self._hints.level((kind, key)), message, *args)
