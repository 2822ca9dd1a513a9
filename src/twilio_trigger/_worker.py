"""The workers that dispatch events from the durable inbox, with retries and dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from ._core.events import TwilioEvent
from ._core.routing import event_of_kind
from ._dispatch import Outcome, Result, describe_error
from ._identity import place
from ._observe import Attempt, EventLog, Observer
from ._transaction import entry_transactions
from .inbox import Entry, Inbox, State, UnreachableError

__all__ = ["WorkerPool", "backoff_delay"]

logger = logging.getLogger("twilio_trigger")

_PRUNE_EVERY = 60.0  # seconds between removals of done entries past their retention


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempt + 1``: exponential, capped, with jitter.

    Half the delay is fixed and half random ("equal jitter"), so that events that
    failed together do not all come back at the same moment.
    """
    delay = min(cap, base * 2.0 ** (attempt - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


class WorkerPool:
    """Takes due entries from the inbox and runs up to *concurrency* of them at once."""

    def __init__(
        self,
        inbox: Inbox,
        handle: Callable[[TwilioEvent], Awaitable[Result]],
        *,
        concurrency: int,
        max_attempts: int,
        backoff: float,
        backoff_max: float,
        retention: float,
        poll_interval: float = 0.5,
        observer: Observer | None = None,
    ) -> None:
        self._inbox = inbox
        self._observer = observer if observer is not None else EventLog()
        self._handle = handle
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._retention = retention
        self._poll = poll_interval
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        # The failure to read the inbox told last (its type and message), until a read works.
        self._failing: tuple[str, str] | None = None
        #: Whether dispatch is paused, as last read from the inbox.
        self.paused = False
        self._next_look = 0.0  # time.monotonic() when the pause setting is read next

    def wake(self) -> None:
        """New events are in the inbox: look now rather than at the next poll."""
        self._wakeup.set()

    def recheck(self) -> None:
        """The pause setting was changed here: read it now rather than at the next poll."""
        self._next_look = 0.0
        self._wakeup.set()

    async def _look(self) -> bool:
        """Read whether dispatch is paused, at most once per poll interval (not per
        event: the wake-ups of a busy listener come per event); tell a change.
        Whether the inbox was read."""
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + self._poll
        paused = await self._inbox.paused()
        if paused == self.paused:
            return True
        self.paused = paused
        if paused:
            logger.info(
                "dispatch is paused (%s): events are stored and acknowledged, none is "
                "dispatched until it is resumed",
                self._inbox.location,
            )
        else:
            logger.info("dispatch resumed (%s)", self._inbox.location)
        return True

    def start(self) -> None:
        self._stopping = False
        self._inbox.watch(self.wake)  # other processes' events, where the inbox can tell
        self._loop_task = asyncio.create_task(self._loop(), name="twilio-trigger-workers")

    async def stop(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Take no new entries; let running ones finish for up to *timeout* seconds.

        Entries still running then are cancelled and stay ``running`` in the
        inbox, which makes them pending again when it is next opened.
        """
        self._stopping = True
        self._wakeup.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    async def _loop(self) -> None:
        next_prune = 0.0
        this = asyncio.current_task()
        while not self._stopping:
            self._wakeup.clear()
            try:
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + _PRUNE_EVERY
                    await self._inbox.purge(State.DONE, self._retention)
                looked = await self._look()
                free = 0 if self.paused else self._concurrency - len(self._running)
                entries = await self._inbox.claim(free) if free > 0 else []
                if (free > 0 or looked) and self._failing is not None:
                    self._failing = None
                    logger.info("the inbox can be read again")
                for entry in entries:
                    task = asyncio.create_task(self._process(entry))
                    self._running.add(task)
                    task.add_done_callback(self._finished)
                if entries and len(self._running) < self._concurrency:
                    continue  # there may be more due right now
                wait = self._poll
                if self.paused:  # running callbacks finish; nothing new until resumed
                    wait = max(0.01, self._next_look - time.monotonic())
                elif free > 0 and not entries:
                    due = await self._inbox.next_due()
                    if due is not None:
                        # Due now yet not claimed: another process holds it for
                        # a moment (a shared inbox); look again shortly.
                        wait = min(wait, max(0.01, due - time.time()))
            except UnreachableError:  # told once per outage by the inbox
                wait = self._poll
            except Exception as error:
                self._read_failed(error)
                wait = self._poll
            if this is not None and this.cancelling():
                # Cancelled, and the cancellation swallowed by what was awaited
                # (redis-py 8's commands do): end as if it had come through, or a
                # loop closed without stop() would wait for this one forever.
                raise asyncio.CancelledError
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    def _read_failed(self, error: Exception) -> None:
        """Tell a failure to read the inbox with its traceback, once: the same
        failure again at every poll is told at DEBUG until a read works."""
        failure = (type(error).__name__, str(error)[:500])
        if failure == self._failing:
            logger.debug("the inbox could not be read again (%s)", failure[0])
            return
        self._failing = failure
        logger.error(
            "the inbox could not be read; trying again every %.1f s, told again once "
            "it can be read or fails otherwise",
            self._poll,
            exc_info=error,
        )

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()  # a slot is free

    async def _process(self, entry: Entry) -> None:
        event = event_of_kind(entry.kind, entry.params)
        if event is None:  # an entry of a kind this version does not know
            await self._inbox.bury(entry.id, f"no kind {entry.kind!r} is known to this version")
            return
        place(event, entry.headers)
        # A callback that takes a transaction gets this entry's: its writes commit
        # with the entry's outcome (a PostgreSQL inbox).
        entry_transactions.set(self._inbox.transaction_source(entry.id))
        try:
            result = await self._handle(event)
        except Exception as failure:  # a store failed: an attempt like any other
            result = Result(Outcome.FAILED, None, failure)
        if result.still_running is not None:
            # A sync callback cannot be stopped: wait for it before deciding, so
            # that a retry never runs beside it.
            late_error = await result.still_running
            logger.warning(
                "%s for %s %s ran past its time limit and %s in the end",
                result.callback,
                event.kind,
                event.sid,
                "failed" if late_error else "succeeded",
            )
            outcome = Outcome.FAILED if late_error else Outcome.HANDLED
            result = result._replace(
                outcome=outcome, error=late_error or result.error, still_running=None
            )
        number, most = entry.attempts, self._max_attempts
        try:
            if result.outcome.ok:
                await self._inbox.succeed(entry.id)
                self._observer.finished(event, result, Attempt(number, most, entry=entry.id))
                return
            error = describe_error(result.error) if result.error else result.outcome.value
            if number >= most:
                await self._inbox.bury(entry.id, error)
                self._observer.finished(
                    event, result, Attempt(number, most, dead_letter=entry.id, entry=entry.id)
                )
            else:
                delay = backoff_delay(number, self._backoff, self._backoff_max, self._rng)
                await self._inbox.retry(entry.id, error, time.time() + delay)
                self._observer.finished(
                    event, result, Attempt(number, most, retry_in=delay, entry=entry.id)
                )
        except UnreachableError:  # the outage is told once, by the inbox
            logger.debug(
                "could not record the outcome of inbox entry %d: the inbox cannot be "
                "reached; it will be dispatched again",
                entry.id,
            )
        except Exception:
            logger.exception("could not record the outcome of inbox entry %d", entry.id)
