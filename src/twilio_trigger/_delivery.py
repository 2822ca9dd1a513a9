"""What happens to a verified event: deduplicated, placed in order, then dispatched
right away (inline) or stored durably and dispatched by workers (inbox)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from . import _answers as answers
from ._answers import Answer
from ._dispatch import Deadlines, Dispatcher, Outcome, Result
from ._events import TwilioEvent
from ._exceptions import ConfigurationError
from ._logging import FirstWarning, printable
from ._observe import EventLog, Observer
from ._order import rank_of
from ._signature import signed_payload
from ._twiml import expects_twiml, reply_body
from ._worker import WorkerPool
from .inbox import Inbox, NotStoredError, State
from .stores import Claim, DeliveryStore, StatusStore

__all__ = ["Delivery", "RetryPolicy", "delivery_key", "kept_header"]

logger = logging.getLogger("twilio_trigger")

#: Seconds a readiness check may take before its part counts as unreachable.
READY_TIMEOUT = 2.0


class _StoreUnavailableError(Exception):
    """A store could not be reached: the event must not be acknowledged."""


#: A key made of fields that each match this is kept readable (it shows in the
#: inspector and ``inbox show``); anything else is hashed, so that a key is always
#: bounded and a field holding the separator cannot pass for two fields.
_MAX_PLAIN_IDENTITY = 256
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _digest(text: str) -> str:
    # surrogatepass: a form value may decode to a lone surrogate; it must hash, not raise.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def delivery_key(event: TwilioEvent, event_id: str | None = None) -> str:
    """What identifies one delivery, made only of what its signature covers.

    *event_id* is a CloudEvent's ``id`` (signed through the body's SHA-256): an
    Event Streams delivery is that.  A webhook is its kind, SID, status,
    ``ErrorCode`` and ``SequenceNumber``, which Twilio's retries repeat; one
    without a SID is the whole of its signed parameters, so that two distinct
    events never share a key.  Never the ``I-Twilio-Idempotency-Token`` header:
    no signature covers it, and a made-up one would run a signed request again.
    Every key is bounded (at most ~330 characters): a longer identity is hashed.
    """
    if event_id is not None:
        if _PLAIN_ID.fullmatch(event_id):
            return "ce:" + event_id
        return "ce:#" + _digest(event_id)
    sid = event.sid
    if not sid:
        # In Twilio's signed order (names sorted, repeated values deduplicated):
        # reordering or repeating a parameter keeps the signature, and the key.
        return f"p:{event.kind}:#{_digest(signed_payload(event.params))}"
    identity = ":".join(
        (
            event.kind,
            sid,
            event.status or "",
            event.get("ErrorCode") or "",
            event.get("SequenceNumber") or "",
        )
    )
    # Twilio's are short, printable, and without the separator (checked in C: this
    # runs for every event): anything else is hashed, so no field can pass for two.
    if len(identity) <= _MAX_PLAIN_IDENTITY and identity.count(":") == 4 and identity.isprintable():
        return "e:" + identity
    fields = [event.kind, sid, event.status, event.get("ErrorCode"), event.get("SequenceNumber")]
    return f"e:{event.kind}:#{_digest(json.dumps(fields))}"


#: Characters of a request header kept beside an event (Twilio's are far shorter).
MAX_KEPT_HEADER = 256
_KEPT_HEAD = 64  # of a longer value, the characters kept before its digest


def kept_header(value: str) -> str:
    """*value* as the inbox keeps it: bounded, and safe to print.

    A value that is too long, or shows too long once its control characters are
    escaped, keeps its start, its length and a digest, so that two long values
    (two made-up idempotency tokens) can still be told apart.
    """
    shown = printable(value[: MAX_KEPT_HEADER + 1])
    if len(value) <= MAX_KEPT_HEADER and len(shown) <= MAX_KEPT_HEADER:
        return shown
    head = printable(value[:_KEPT_HEAD])
    return f"{head}... ({len(value)} characters, sha256 {_digest(value)[:16]})"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the inbox's workers retry a failing callback."""

    workers: int = 4
    max_attempts: int = 5
    backoff: float = 1.0
    backoff_max: float = 300.0


StoreFactory = Callable[[], tuple[DeliveryStore, StatusStore]]

_DUPLICATE = Result(Outcome.DUPLICATE)
_STALE = Result(Outcome.STALE)
_ANSWERS = {
    Outcome.FAILED: answers.CALLBACK_FAILED,
    Outcome.TIMED_OUT: answers.CALLBACK_TIMED_OUT,
}


class Delivery:
    """Deduplication, status order, time limit, and inline or durable dispatch."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        deduplicate: bool = True,
        deliveries: DeliveryStore | None,
        statuses: StatusStore | None,
        skip_stale: bool,
        callback_timeout: float,
        inbox: Inbox | None = None,
        retry: RetryPolicy | None = None,
        retention: float = 86400.0,
        stores: StoreFactory | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._observer = observer if observer is not None else EventLog()
        self._stores = stores
        self._deduplicate = deduplicate
        self._deliveries = deliveries if deduplicate else None
        self._statuses = statuses
        self._skip_stale = skip_stale
        self._timeout = callback_timeout
        self._deadlines = Deadlines(callback_timeout)
        self._inbox = inbox
        self._retry = retry or RetryPolicy()
        self._retention = retention
        self._pool: WorkerPool | None = None
        self._started: asyncio.Task[None] | None = None
        self._late: set[asyncio.Future[BaseException | None]] = set()
        self._endings: set[asyncio.Future[None]] = set()
        self._stopping = False
        self._failing: dict[str, str] = {}  # readiness failures already logged
        self._dropped = FirstWarning()  # callbacks whose replies could not be sent

    @property
    def inbox(self) -> Inbox | None:
        return self._inbox

    @property
    def observer(self) -> Observer:
        return self._observer

    # -- life --------------------------------------------------------------
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
        await asyncio.shield(started)

    async def _start(self) -> None:
        if self._stores is not None:
            # Made on the loop that uses them (a Redis client belongs to one loop).
            deliveries, self._statuses = self._stores()
            self._deliveries = deliveries if self._deduplicate else None
        if self._inbox is None:
            return
        try:
            recovered = await self._inbox.open()
        except Exception as error:
            raise ConfigurationError(
                f"cannot open the inbox {self._inbox.location}: {error}"
            ) from error
        if recovered:
            logger.warning(
                "%d event%s interrupted by the last stop will be dispatched again (%s)",
                recovered,
                "" if recovered == 1 else "s",
                self._inbox.location,
            )
        policy = self._retry
        self._pool = WorkerPool(
            self._inbox,
            self.run,
            concurrency=policy.workers,
            max_attempts=policy.max_attempts,
            backoff=policy.backoff,
            backoff_max=policy.backoff_max,
            retention=self._retention,
            observer=self._observer,
        )
        self._pool.start()

    async def shutdown(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Stop the workers (running callbacks get *timeout* seconds) and close the inbox."""
        self._stopping = True
        self._started = None
        self._observer.flush()
        if self._pool is not None:
            await self._pool.stop(timeout)
            self._pool = None
        if self._inbox is not None:
            await self._inbox.close()
        if self._stores is not None:
            for store in (self._deliveries, self._statuses):
                if store is not None:
                    await store.close()

    def callback_label(self, event: TwilioEvent) -> str | None:
        """The attached callback an event goes to (``Service.on_status``), if any."""
        return self._dispatcher.label_for(event)

    def wake(self) -> None:
        """Entries were made due (a replay): let the workers look now."""
        if self._pool is not None:
            self._pool.wake()

    # -- health --------------------------------------------------------------
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
        store = self._deliveries or self._statuses
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

    def backlog_from_thread(self, timeout: float) -> dict[State, int] | None:
        """The inbox's backlog, asked from another thread than the running loop's.

        ``None`` when there is no inbox, it is not open, or it does not answer
        within *timeout* seconds.
        """
        started, inbox = self._started, self._inbox
        if started is None or inbox is None or not started.done():
            return None
        if started.cancelled() or started.exception() is not None:
            return None
        loop = started.get_loop()
        if loop.is_closed():
            return None
        future = asyncio.run_coroutine_threadsafe(inbox.backlog(), loop)
        try:
            return future.result(timeout)
        except (Exception, concurrent.futures.TimeoutError):
            future.cancel()
            return None

    # -- one event ---------------------------------------------------------
    async def accept(
        self,
        event: TwilioEvent,
        *,
        replies: bool = True,
        headers: Sequence[tuple[str, str]] = (),
        event_id: str | None = None,
    ) -> Answer:
        """The answer to a verified event, once it is handled (inline) or stored (inbox).

        With *replies* (a webhook, not an Event Streams delivery) what the
        callback returns for a request that expects TwiML is the answer.  The
        inbox keeps *headers* beside the event, to show them again: bounded by the
        caller (:func:`kept_header`; the webhook handler does it).  A
        voice request that asks what the call does is always handled inline:
        the call waits for the answer, and a stored event could not give it.

        *event_id* is the CloudEvent ``id`` of an Event Streams delivery, signed
        through the body's SHA-256.  The ``I-Twilio-Idempotency-Token`` header,
        unsigned, is never part of the delivery's key (see :func:`delivery_key`);
        to see it again, keep it in *headers*.
        """
        if self._started is None:
            await self.startup()
        self._observer.received(event)
        if self._inbox is not None and not (
            replies and event.kind == "call" and expects_twiml(event)
        ):
            return await self._store(event, event_id, headers)
        store = self._deliveries
        if store is None:
            try:
                return self._finish(event, await self.run(event, replying=replies))
            except _StoreUnavailableError:
                return answers.STORE_UNAVAILABLE
        key = delivery_key(event, event_id)
        try:
            return await self._accept_once(store, key, event, replies)
        except _StoreUnavailableError:
            return answers.STORE_UNAVAILABLE
        except Exception:
            logger.exception(
                "the duplicate store failed for %s %s (%s); answering 503 so that Twilio "
                "sees a failure",
                event.kind,
                event.sid,
                event.status,
            )
            return answers.STORE_UNAVAILABLE

    async def _accept_once(
        self, store: DeliveryStore, key: str, event: TwilioEvent, replies: bool
    ) -> Answer:
        claim = await store.claim(key)
        if claim is not Claim.ACQUIRED:
            claim = await self._wait_for_copy(store, key, claim)
            if claim is Claim.DONE:
                self._observer.finished(event, _DUPLICATE)
                # A copy of a request answered with a reply (Twilio retrying an
                # incoming call after a timeout) gets the same reply again.
                reply = await store.reply_of(key) if replies and expects_twiml(event) else None
                return answers.twiml(reply) if reply else answers.acknowledged
            if claim is Claim.BUSY:
                return answers.COPY_IN_PROGRESS
        try:
            result = await self.run(event, replying=replies)
        except BaseException:
            await store.release(key)
            raise
        if result.still_running is not None:
            self._settle_late(store, key, result.still_running)
        elif result.outcome.ok:
            reply = result.value.body if isinstance(result.value, Answer) else None
            await store.complete(key, reply)
        else:
            await store.release(key)
        return self._finish(event, result)

    async def _wait_for_copy(self, store: DeliveryStore, key: str, claim: Claim) -> Claim:
        # Another copy of this delivery is being handled: wait for its outcome
        # (at most as long as a callback may take), then claim again.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while claim is Claim.BUSY:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return Claim.BUSY
            await store.wait(key, remaining)
            claim = await store.claim(key)
        return claim

    def _settle_late(
        self, store: DeliveryStore, key: str, finished: asyncio.Future[BaseException | None]
    ) -> None:
        # The sync callback runs on in its thread: the delivery stays claimed
        # until it ends, so that Twilio's retry cannot run beside it.
        self._late.add(finished)
        store.hold(key, finished)

        def settle(done: asyncio.Future[BaseException | None]) -> None:
            self._late.discard(done)
            ending = store.release(key) if done.result() else store.complete(key)
            task = asyncio.ensure_future(ending)
            self._endings.add(task)
            task.add_done_callback(self._endings.discard)

        finished.add_done_callback(settle)

    def _finish(self, event: TwilioEvent, result: Result) -> Answer:
        self._observer.finished(event, result)
        if isinstance(result.value, Answer):
            return result.value
        return _ANSWERS.get(result.outcome, answers.acknowledged)

    def _reply(self, event: TwilioEvent, result: Result, replying: bool) -> Result:
        """The result with its reply made the answer, or failed when it cannot be one."""
        if result.value is None or result.outcome is not Outcome.HANDLED:
            return result
        if not expects_twiml(event):
            return result._replace(value=None)  # what a status callback returns means nothing
        if not replying:
            logger.log(
                self._dropped.level(result.callback),
                "%s returned a reply that cannot be sent: the event came from the inbox "
                "or from Event Streams, after Twilio had its answer (dispatch inline "
                "to reply, or send the message through Twilio's API)",
                result.callback,
            )
            return result._replace(value=None)
        try:
            body = reply_body(event, result.value)
        except Exception as error:  # ReplyError, or a __str__ that raised
            return result._replace(outcome=Outcome.FAILED, error=error, value=None)
        return result._replace(value=answers.twiml(body))

    async def run(self, event: TwilioEvent, *, replying: bool = False) -> Result:
        """Place the event in its SID's order, then dispatch it (within the time limit).

        With *replying*, a reply the callback returns becomes the result's
        ``value`` as the :class:`Answer` to give; without, it is dropped (said once).
        """
        return self._reply(event, await self._run(event), replying)

    async def _run(self, event: TwilioEvent) -> Result:
        statuses = self._statuses
        if statuses is not None and event.sid:
            rank = rank_of(event)
            if rank is not None:
                status = (event.status or "").strip().lower()
                try:
                    standing = await statuses.observe(f"{event.kind}:{event.sid}", status, rank)
                except Exception as error:
                    logger.exception(
                        "the status store failed for %s %s (%s)", event.kind, event.sid, status
                    )
                    raise _StoreUnavailableError from error
                event._place(standing.previous_status, standing.stale)
                if standing.stale and self._skip_stale:
                    return _STALE
        return await self._dispatcher.dispatch(event, self._deadlines)

    async def _store(
        self, event: TwilioEvent, event_id: str | None, headers: Sequence[tuple[str, str]]
    ) -> Answer:
        assert self._inbox is not None
        key = delivery_key(event, event_id) if self._deduplicate else uuid.uuid4().hex
        try:
            added = await self._inbox.put(
                key, event.kind, event.sid, event.status, event.params, headers
            )
        except NotStoredError as error:  # expected while a replica or the disk lags
            logger.error(
                "could not store %s %s (%s) as durably as asked (%s); answering 503 so "
                "that Twilio sees a failure",
                event.kind,
                event.sid,
                event.status,
                error,
            )
            return answers.INBOX_UNAVAILABLE
        except Exception:
            logger.exception(
                "could not store %s %s (%s) in the inbox; answering 503 so that Twilio "
                "sees a failure",
                event.kind,
                event.sid,
                event.status,
            )
            return answers.INBOX_UNAVAILABLE
        if added:
            if self._pool is not None:
                self._pool.wake()
        else:
            self._observer.finished(event, _DUPLICATE)
        return answers.acknowledged
