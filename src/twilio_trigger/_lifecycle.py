"""The life of the delivery machinery: stores, inbox and workers started on the
event loop that uses them and stopped with it, and whether each part can be
reached now (readiness, for the health endpoint)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TypeVar

from ._alerts import Alerts
from ._control import Control
from ._exceptions import ConfigurationError
from ._invoke import no_transactions
from ._limits import Limit
from ._options import OPTIONS
from ._pipeline import Pipeline
from ._postgres_schema import SchemaError
from ._worker import WorkerPool
from .inbox import Inbox, State
from .stores import DeliveryStore, StatusStore

__all__ = ["READY_TIMEOUT", "ControlPolicy", "Lifecycle", "RetryPolicy", "StoreFactory"]

logger = logging.getLogger("twilio_trigger")

_T = TypeVar("_T")

#: Seconds a readiness check may take before its part counts as unreachable.
READY_TIMEOUT = 2.0
#: Seconds the alerts still queued at shutdown get to reach their hooks.
_ALERTS_DRAIN = 5.0
#: Seconds the inbox and the stores get to close at shutdown (their last writes
#: included): a database that does not answer must not hold the stop for ever.
CLOSE_TIMEOUT = 10.0

StoreFactory = Callable[[], tuple[DeliveryStore, StatusStore]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the inbox's workers retry a failing callback."""

    workers: int = 4
    max_attempts: int = 5
    backoff: float = 1.0
    backoff_max: float = 300.0


@dataclass(frozen=True, slots=True)
class ControlPolicy:
    """How the inbox's workers hold callbacks back: the ``limits`` option, the
    listener's breaker, and the longest a dead process holds a place."""

    limits: tuple[tuple[str, Limit], ...] = ()
    breaker: int = 0
    cooldown: float = 30.0
    lease: float = 60.0


class Lifecycle:
    """Starts and stops what *pipeline* sends events through, and tells if it is ready.

    *stores*, when given, makes the pipeline's stores on the loop that uses them
    (a Redis client belongs to one loop).  The pipeline's inbox gets workers that
    retry by *retry* and keep done entries *retention* seconds.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        retry: RetryPolicy | None = None,
        control: ControlPolicy | None = None,
        alerts: Alerts | None = None,
        retention: float = OPTIONS.dedup_ttl.default,
        stores: StoreFactory | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._control = control or ControlPolicy()
        self._alerts = alerts
        self._inbox = pipeline.inbox
        self._retry = retry or RetryPolicy()
        self._retention = retention
        self._stores = stores
        self._pool: WorkerPool | None = None
        self._started: asyncio.Task[None] | None = None
        self._stopping = False
        self._failing: dict[str, str] = {}  # readiness failures already logged
        pipeline.start = self.startup  # on the first event, unless started before

    async def startup(self) -> None:
        """Open the inbox and start its workers (once per event loop; idempotent)."""
        self._stopping = False
        started = self._started
        loop = asyncio.get_running_loop()
        if started is None or started.get_loop() is not loop:
            # In a context of its own: the workers must not inherit the context
            # variables (request ids, traces) of the request that started them.
            started = loop.create_task(self._start(), context=contextvars.Context())
            self._started = started
            self._pipeline.start = None
        await asyncio.shield(started)

    async def _start(self) -> None:
        opened: list[Inbox | DeliveryStore | StatusStore] = []
        try:
            await self._open(opened)
        except BaseException:
            # Nothing of a failed start stays open: a database's pool keeps tasks
            # that the end of the event loop would wait for, for ever (psycopg_pool's
            # workers go on waiting when cancelled while they run a task).
            for part in reversed(opened):
                with contextlib.suppress(Exception):
                    await part.close()
            raise

    async def _open(self, opened: list[Inbox | DeliveryStore | StatusStore]) -> None:
        """Open the stores and the inbox and start the workers; what was opened (or
        tried: a failed opening may hold connections) goes in *opened*."""
        pipeline = self._pipeline
        if self._stores is not None:
            pipeline.use_stores(*self._stores())
            for store in pipeline.stores:
                if store is None:
                    continue
                opened.append(store)
                try:
                    await store.open()
                except SchemaError as error:
                    raise ConfigurationError(str(error)) from error
                except Exception as error:
                    raise ConfigurationError(f"cannot open the store: {error}") from error
        inbox = self._inbox
        self._find_transactions()
        if inbox is None:
            return
        opened.append(inbox)
        try:
            recovered = await inbox.open()
        except Exception as error:
            raise ConfigurationError(f"cannot open the inbox {inbox.location}: {error}") from error
        if recovered:
            logger.warning(
                "%d event%s interrupted by the last stop will be dispatched again (%s)",
                recovered,
                "" if recovered == 1 else "s",
                inbox.location,
            )
        policy = self._retry
        self._pool = pipeline.workers = WorkerPool(
            inbox,
            pipeline.run,
            concurrency=policy.workers,
            max_attempts=policy.max_attempts,
            backoff=policy.backoff,
            backoff_max=policy.backoff_max,
            retention=self._retention,
            observer=pipeline.observer,
            control=Control(
                inbox,
                limits=self._control.limits,
                breaker=self._control.breaker,
                cooldown=self._control.cooldown,
                lease=self._control.lease,
                observer=pipeline.observer,
                alerts=self._alerts,
            ),
            alerts=self._alerts,
        )
        self._pool.start()

    def _find_transactions(self) -> None:
        """Give callbacks that take a transaction the inbox's or the store's, and
        refuse to start when neither can give one."""
        pipeline = self._pipeline
        source = None if self._inbox is None else self._inbox.transaction_source(None)
        for store in pipeline.stores:
            make = getattr(store, "transaction_source", None)
            if source is None and make is not None:
                source = make()
        dispatcher = pipeline.dispatcher
        dispatcher.transactions = source
        wanted = dispatcher.transactional()
        if wanted and source is None:
            raise no_transactions(", ".join(wanted))

    async def shutdown(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Stop the workers (running callbacks get *timeout* seconds) and close the inbox."""
        pipeline = self._pipeline
        self._stopping = True
        self._started = None
        pipeline.start = self.startup
        pipeline.observer.flush()
        if self._pool is not None:
            await self._pool.stop(timeout)
            self._pool = pipeline.workers = None
        if self._alerts is not None:  # what the workers raised last reaches the hooks
            await self._alerts.drain(_ALERTS_DRAIN)
        closing = asyncio.ensure_future(self._close())
        done, _ = await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT)
        if not done:
            # Its writes end with the driver's own time limits once cancelled.
            closing.cancel()
            logger.warning(
                "stopping: the inbox and stores did not close within %g s (their database "
                "does not answer?); what they were writing is left to their leases and "
                "the next start",
                CLOSE_TIMEOUT,
            )
        else:
            closing.result()  # what closing raised, raised here

    async def _close(self) -> None:
        """Close the inbox, then the stores (their last writes first)."""
        if self._inbox is not None:
            await self._inbox.close()
        if self._stores is not None:
            for store in self._pipeline.stores:
                if store is not None:
                    await store.close()

    def wake(self) -> None:
        """Entries were made due (a replay): let the workers look now."""
        if self._pool is not None:
            self._pool.wake()

    async def readiness(self) -> dict[str, bool]:
        """Whether each part events go through can be reached now: the inbox, the store.

        Each part gets :data:`READY_TIMEOUT` seconds.  Why a part fails is
        logged (once, until it recovers), never returned: the readiness
        endpoint answers anyone.
        """
        if self._stopping:
            return {"listener": False}
        try:
            await asyncio.wait_for(self.startup(), READY_TIMEOUT)
        except Exception as error:
            return {"startup": self._judge("startup", error)}
        checks: dict[str, Callable[[], Awaitable[None]]] = {}
        if self._inbox is not None:
            checks["inbox"] = self._inbox.check
        deliveries, statuses = self._pipeline.stores
        store = deliveries or statuses
        if store is not None:
            checks["store"] = store.check
        results = await asyncio.gather(
            *(asyncio.wait_for(check(), READY_TIMEOUT) for check in checks.values()),
            return_exceptions=True,
        )
        return {
            name: self._judge(name, result) for name, result in zip(checks, results, strict=True)
        }

    def _judge(self, part: str, error: BaseException | None) -> bool:
        if error is None:
            if self._failing.pop(part, None) is not None:
                logger.warning("ready again: the %s can be reached", part)
            return True
        # Told once per kind of failure: the messages of one outage vary (a
        # temporary file's name, "closed" then "refused"), the kind does not.
        kind = type(error).__name__
        if self._failing.get(part) != kind:
            self._failing[part] = kind
            reason = f"{kind}: {error}" if str(error) else kind
            logger.warning("not ready: the %s cannot be reached (%s)", part, reason)
        return False

    @property
    def control(self) -> ControlPolicy:
        """How the workers hold callbacks back (the options, not what the inbox keeps)."""
        return self._control

    def recheck(self) -> None:
        """The settings kept in the inbox were changed here: the workers read them now."""
        if self._pool is not None:
            self._pool.recheck()

    async def set_paused(self, flag: bool) -> None:
        """Pause dispatch (*flag* true) or resume it, for every process of the
        inbox; this process's workers follow at once, the others within their
        poll interval."""
        if self._inbox is None:
            raise ConfigurationError("there is no inbox: events are dispatched as they come")
        await self._inbox.set_paused(flag)
        if self._pool is not None:
            self._pool.recheck()

    def backlog_from_thread(self, timeout: float) -> dict[State, int] | None:
        """The inbox's backlog, asked from another thread than the running loop's.

        ``None`` when there is no inbox, it is not open, or it does not answer
        within *timeout* seconds.
        """
        return self._from_thread(lambda inbox: inbox.backlog(), timeout)

    def paused_from_thread(self, timeout: float) -> bool | None:
        """Whether dispatch is paused, asked from another thread than the running
        loop's; ``None`` as for :meth:`backlog_from_thread`."""
        return self._from_thread(lambda inbox: inbox.paused(), timeout)

    def _from_thread(
        self, ask: Callable[[Inbox], Coroutine[object, object, _T]], timeout: float
    ) -> _T | None:
        started, inbox = self._started, self._inbox
        if started is None or inbox is None or not started.done():
            return None
        if started.cancelled() or started.exception() is not None:
            return None
        loop = started.get_loop()
        if loop.is_closed():
            return None
        future = asyncio.run_coroutine_threadsafe(ask(inbox), loop)
        try:
            return future.result(timeout)
        except (Exception, concurrent.futures.TimeoutError):
            future.cancel()
            return None
