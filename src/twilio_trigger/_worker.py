"""The workers that dispatch events from the durable inbox, with retries and dead letters."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from ._alerts import Alert, Alerts
from ._control import Control, Ticket, callback_name
from ._core.events import TwilioEvent
from ._core.routing import event_of_kind
from ._identity import place
from ._invoke import Outcome, Result, describe_error
from ._logging import bounded
from ._observe import Attempt, EventLog, Observer
from ._transaction import entry_transactions
from .inbox import PAUSED, Entry, Inbox, State, UnreachableError

__all__ = ["WorkerPool", "backoff_delay"]

logger = logging.getLogger("twilio_trigger")

_PRUNE_EVERY = 60.0  # seconds between removals of done entries past their retention
#: The longest SID a line of this module shows (a signed one may be long).
_SHOWN_SID = 100


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
        control: Control | None = None,
        alerts: Alerts | None = None,
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
        self._control = control if control is not None else Control(inbox, observer=observer)
        self._alerts = alerts
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._wakeup = asyncio.Event()
        # Every entry's task, until its outcome is recorded (what stop() waits for).
        self._running: set[asyncio.Task[None]] = set()
        # Of those, the entries whose callback has not ended (what `concurrency`
        # bounds), and those whose outcome is being recorded, their callback over.
        self._busy = 0
        self._settling = 0
        # Outcomes being recorded, their callback over: at most this many.  Under
        # load each record waits behind the commits of the events coming in; so
        # many in flight at once, the workers keep up far better.
        self._depth = 4 * concurrency
        # Entries claimed ahead of a free place, started as places free up: only
        # from an inbox no other process takes entries from (one stuck behind a
        # slow callback here could have run in another worker).  With those
        # running, at most this many.
        self._waiting: collections.deque[Entry] = collections.deque()
        self._ahead = concurrency if inbox.shared else self._depth
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
        """Read the settings kept in the inbox (whether dispatch is paused, each
        callback's limits and breaker), at most once per poll interval (not per
        event: the wake-ups of a busy listener come per event); tell a change of
        the pause.  Whether the inbox was read."""
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + self._poll
        settings = await self._inbox.settings()
        self._control.load(settings)
        paused = settings.get(PAUSED) == "1"
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

        Entries claimed and not started are given back (pending, their attempt
        not counted).  Entries still running at the end are cancelled and stay
        ``running`` in the inbox, which makes them pending again when it is next
        opened (or, shared, when their lease lapses).
        """
        self._stopping = True
        self._wakeup.set()
        # The loop and the giving back wait for the inbox: one whose disk or server
        # stopped answering must not hold the stop (at most the time to finish).
        bound = _CANCELLED_GRACE if timeout is None else min(timeout, _CANCELLED_GRACE)
        if self._loop_task is not None:
            await _within(self._loop_task, bound, "the dispatch loop")
            self._loop_task = None
        await _within(asyncio.ensure_future(self._give_back()), bound, "giving entries back")
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                logger.warning(
                    "stopping: %d callback%s still running after %s s were cancelled; "
                    "their events stay running in the inbox and run again (%s)",
                    len(late),
                    "" if len(late) == 1 else "s",
                    f"{timeout:g}" if timeout is not None else "the time to finish",
                    "when their lease lapses" if self._inbox.shared else "at the next start",
                )
                # A task cancelled while its database does not answer may take the
                # driver's own time to end: not waited for beyond this.
                _, stuck = await asyncio.wait(late, timeout=_CANCELLED_GRACE)
                if stuck:
                    logger.warning(
                        "stopping: %d cancelled callback%s did not end within %g s "
                        "(the inbox does not answer?); left behind",
                        len(stuck),
                        "" if len(stuck) == 1 else "s",
                        _CANCELLED_GRACE,
                    )

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
                if self.paused and self._waiting:
                    await self._give_back()
                room = 0 if self.paused else self._ahead - self._busy - len(self._waiting)
                entries = await self._inbox.claim(room) if room > 0 else []
                if (room > 0 or looked) and self._failing is not None:
                    self._failing = None
                    logger.info("the inbox can be read again")
                self._waiting.extend(entries)
                self._start_waiting()
                if entries and self._busy + len(self._waiting) < self._ahead:
                    continue  # there may be more due right now
                wait = self._poll
                if self.paused:  # running callbacks finish; nothing new until resumed
                    wait = max(0.01, self._next_look - time.monotonic())
                elif room > 0 and not entries:
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

    def _dead_letter(
        self, entry: Entry, kind: str, callback: str | None, error: str | None
    ) -> None:
        if self._alerts is None:
            return
        alert = Alert(
            "dead_letter", callback, time.time(), error=error, kind=kind, sid=entry.sid,
            status=entry.status, entry=entry.id, attempts=entry.attempts,
        )  # fmt: skip
        self._alerts.raise_(alert)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()  # a place may be free

    def _leave(self) -> None:
        """An entry's callback has ended: its place is free for the next one."""
        self._busy -= 1
        self._start_waiting()
        self._wakeup.set()

    def _start_waiting(self) -> None:
        """Start entries claimed ahead while places are free (not once the workers'
        loop has ended: stopped, or cancelled with the event loop's end)."""
        loop_task = self._loop_task
        if loop_task is None or loop_task.done():
            return
        while (
            self._waiting and self._busy < self._concurrency and not (self.paused or self._stopping)
        ):
            entry = self._waiting.popleft()
            self._busy += 1
            task = asyncio.create_task(self._process(entry))
            self._running.add(task)
            task.add_done_callback(self._finished)

    async def _give_back(self) -> None:
        """Give the entries claimed ahead back to the inbox, their attempt not counted."""
        entries = list(self._waiting)
        self._waiting.clear()
        now = time.time()
        for entry in entries:
            try:
                await self._hand_back(entry.id, now)
            except Exception:
                logger.exception("could not give inbox entry %d back", entry.id)

    async def _hand_back(self, entry_id: int, at: float, hold: str | None = None) -> None:
        """Give *entry_id* back to the inbox, due at *at* (see :meth:`Inbox.defer`).

        A shared inbox's entry that cannot be given back is taken over once its
        lease lapses; nobody takes over an entry of this process's own inbox
        (SQLite), which would stay running until the next start: it is given
        back as soon as the inbox takes writes again (unless the pool stops)."""
        tries = 0
        while True:
            try:
                await self._inbox.defer(entry_id, at, hold)
            except UnreachableError as error:  # the outage is told once, by the inbox
                if self._inbox.shared or self._stopping:
                    return
                tries += 1
                if tries == 1:
                    logger.debug(
                        "could not give inbox entry %d back (%s); trying again until it can be",
                        entry_id,
                        _last_line(error),
                    )
                await asyncio.sleep(min(_MOST_BETWEEN_TRIES, 0.1 * 2**tries))
                continue
            if tries:
                logger.debug("gave inbox entry %d back at last", entry_id)
            return

    async def _process(self, entry: Entry) -> None:
        # The entry holds one of the `concurrency` places until its callback has
        # ended, not until its outcome is recorded: under load that write waits
        # behind the commits of the events coming in, and the next entry's
        # callback need not wait for it.  At most `_depth` outcomes are recorded
        # so at once; past that, an entry keeps its place until its own is.
        place_held = True
        settling = False
        try:
            event = event_of_kind(entry.kind, entry.params)
            if event is None:  # an entry of a kind this version does not know
                error = f"no kind {entry.kind!r} is known to this version"
                await self._inbox.bury(entry.id, error)
                self._dead_letter(entry, entry.kind, None, error)
                return
            place(event, entry.headers)
            callback = callback_name(event)
            ticket = await self._admit(entry, callback)
            if ticket is None:
                return
            # A callback that takes a transaction gets this entry's: its writes commit
            # with the entry's outcome (a PostgreSQL inbox).
            entry_transactions.set(self._inbox.transaction_source(entry.id))
            try:
                result = await self._handle(event)
            except Exception as failure:  # a store failed: an attempt like any other
                result = Result(Outcome.FAILED, None, failure)
            # A sync callback past its time limit still runs: it keeps its place; so
            # does one under limits or a breaker, until they are told how it went
            # (the next event's admission depends on it).
            if (
                result.still_running is None
                and ticket.callback is None
                and self._settling < self._depth
            ):
                self._settling += 1
                settling = True
                place_held = False
                self._leave()
            keeping = None
            if result.still_running is not None and (ticket.running or ticket.trial):
                keeping = asyncio.ensure_future(self._control.keep(ticket, result.still_running))
            final = result
            try:
                final = await self._settle(entry, event, result, callback)
            finally:
                if keeping is not None:
                    keeping.cancel()
                await self._release(ticket, final)
        finally:
            if settling:
                self._settling -= 1
            if place_held:
                self._leave()

    async def _admit(self, entry: Entry, callback: str | None) -> Ticket | None:
        """Leave to run the callback of *entry* now, or ``None``: its limits or its
        breaker hold it back, and it was given back to the inbox for later."""
        try:
            try:
                admitted = await self._control.admit(callback, entry.id)
            except UnreachableError:  # its limits cannot be read or taken: later
                await self._hand_back(entry.id, time.time())
                return None
            if isinstance(admitted, Ticket):
                return admitted
            await self._hand_back(entry.id, admitted.at, admitted.hold)
            logger.debug(
                "inbox entry %d (%s) held back until %.3f", entry.id, callback, admitted.at
            )
        except Exception:
            logger.exception(
                "could not apply the limits of %s to inbox entry %d; it will be dispatched again",
                callback,
                entry.id,
            )
        return None

    async def _release(self, ticket: Ticket, result: Result) -> None:
        if ticket.callback is None:
            return
        try:
            await self._control.finished(
                ticket,
                ok=result.outcome.ok,
                seconds=result.seconds,
                error=_last_line(result.error),
            )
        except UnreachableError:
            pass
        except Exception:
            logger.exception("could not record the end of %s in its limits", ticket.callback)

    async def _settle(
        self, entry: Entry, event: TwilioEvent, result: Result, callback: str | None
    ) -> Result:
        """Record the outcome of *entry*'s attempt; the result, once a late sync
        callback has ended."""
        if result.still_running is not None:
            # A sync callback cannot be stopped: wait for it before deciding, so
            # that a retry never runs beside it.  Told now, for one that never ends.
            sid = bounded(event.sid or "", _SHOWN_SID)
            took = "" if result.seconds is None else f" ({result.seconds:.1f} s)"
            logger.warning(
                "%s for %s %s is past its time limit%s and runs on in its thread: "
                "inbox entry %d waits for it to end",
                result.callback,
                event.kind,
                sid,
                took,
                entry.id,
            )
            late_error = await result.still_running
            logger.warning(
                "%s for %s %s ran past its time limit and %s in the end",
                result.callback,
                event.kind,
                sid,
                "failed" if late_error else "succeeded",
            )
            outcome = Outcome.FAILED if late_error else Outcome.HANDLED
            result = result._replace(
                outcome=outcome, error=late_error or result.error, still_running=None
            )
        tries = 0
        at_last = logging.INFO  # the level of the line that says it was recorded at last
        while True:
            try:
                attempt = await self._record(entry, result)
                break
            except UnreachableError as error:  # the outage is told once, by the inbox
                failure: BaseException = error
            except Exception as error:
                failure = error
            if self._inbox.shared or self._stopping:
                # A shared inbox's entry is taken over once its lease lapses, and
                # run again; a stopped one's is found interrupted at the next start.
                logger.debug(
                    "could not record the outcome of inbox entry %d (%s); it will be "
                    "dispatched again",
                    entry.id,
                    _last_line(failure),
                )
                return result
            # Nobody else takes over an entry of this process's own inbox (SQLite):
            # left running, it would wait for the next start.  Its outcome is
            # known, so it is recorded as soon as the inbox takes writes again.
            tries += 1
            if tries == 1:
                # An outage is told once by the inbox, not once per entry it holds.
                outage = isinstance(failure, UnreachableError)
                at_last = logging.DEBUG if outage else logging.INFO
                logger.log(
                    logging.DEBUG if outage else logging.WARNING,
                    "could not record the outcome of inbox entry %d (%s); trying again "
                    "until it can be",
                    entry.id,
                    _last_line(failure),
                )
            await asyncio.sleep(min(_MOST_BETWEEN_TRIES, 0.1 * 2**tries))
        if tries:
            logger.log(at_last, "recorded the outcome of inbox entry %d at last", entry.id)
        self._observer.finished(event, result, attempt)
        if attempt.dead_letter is not None:
            told = describe_error(result.error) if result.error else result.outcome.value
            self._dead_letter(entry, event.kind, callback, _last_line(result.error) or told)
        return result

    async def _record(self, entry: Entry, result: Result) -> Attempt:
        """Record *result* as the outcome of *entry*'s attempt: what the attempt was."""
        number, most = entry.attempts, self._max_attempts
        if result.outcome.ok:
            await self._inbox.succeed(entry.id)
            return Attempt(number, most, entry=entry.id)
        error = describe_error(result.error) if result.error else result.outcome.value
        if number >= most:
            await self._inbox.bury(entry.id, error)
            return Attempt(number, most, dead_letter=entry.id, entry=entry.id)
        delay = backoff_delay(number, self._backoff, self._backoff_max, self._rng)
        await self._inbox.retry(entry.id, error, time.time() + delay)
        return Attempt(number, most, retry_in=delay, entry=entry.id)


#: Seconds at most between two tries to record an outcome the inbox refused.
_MOST_BETWEEN_TRIES = 2.0


async def _within(task: asyncio.Future[None], seconds: float, what: str) -> None:
    """Wait for *task* up to *seconds*, then cancel it (and wait a moment more)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        task.result()
        return
    task.cancel()
    await asyncio.wait({task}, timeout=_CANCELLED_GRACE)
    logger.warning(
        "stopping: %s did not end within %g s (the inbox does not answer?); cancelled; "
        "its entries run again at the next start",
        what,
        seconds,
    )


#: Seconds a stop waits for the callbacks it cancelled to end.
_CANCELLED_GRACE = 5.0


def _last_line(error: BaseException | None) -> str | None:
    """What an error says, on one line and bounded: ``ValueError: CRM said 503``."""
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return " ".join(text.split())[:300]
