"""What happens to one verified event: received, then dispatched right away
(inline, run once per delivery and placed in its SID's order) or stored
durably for the workers (inbox); its reply shaped into the answer, its outcome
told to the observers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Required, TypedDict, Unpack

from ._core import answers
from ._core.answers import Answer
from ._core.events import TwilioEvent
from ._core.kinds import Kind, kind_of_event
from ._core.order import rank_of
from ._core.replies import (
    FIXED_ANSWERS,
    Reject,
    expects_reply,
    receipt_for,
    reply_answer,
    silent_answer,
)
from ._dedup import DUPLICATE, Once
from ._dispatch import Dispatcher
from ._identity import delivery_key
from ._invoke import Deadlines, Outcome, Result
from ._logging import FirstWarning
from ._observe import EventLog, Observer
from ._outage import refused
from .inbox import Inbox, NotStoredError, UnreachableError
from .stores import DeliveryStore, StatusStore

if TYPE_CHECKING:
    from ._worker import WorkerPool

__all__ = ["Pipeline", "PipelineOptions"]

logger = logging.getLogger("twilio_trigger")


class _StoreUnavailableError(Exception):
    """A store could not be reached: the event must not be acknowledged."""


_STALE = Result(Outcome.STALE)
_ANSWERS = {
    Outcome.FAILED: answers.CALLBACK_FAILED,
    Outcome.TIMED_OUT: answers.CALLBACK_TIMED_OUT,
}


class PipelineOptions(TypedDict, total=False):
    """What a :class:`Pipeline` is made with (and a :class:`._delivery.Delivery`)."""

    #: Run each delivery once (default ``True``): *deliveries* is ignored without.
    deduplicate: bool
    deliveries: Required[DeliveryStore | None]
    statuses: Required[StatusStore | None]
    skip_stale: Required[bool]
    callback_timeout: Required[float]
    #: Store events for the workers instead of dispatching them inline (default ``None``).
    inbox: Inbox | None
    #: Told what happens (default ``None``: an :class:`EventLog`).
    observer: Observer | None


class Pipeline:
    """Deduplication, status order, time limit, reply, and inline or durable dispatch.

    What it starts with, and the workers it wakes, are wired by the lifecycle
    (:class:`._lifecycle.Lifecycle`): :attr:`start`, :attr:`workers` and
    :meth:`use_stores`.
    """

    def __init__(self, dispatcher: Dispatcher, **options: Unpack[PipelineOptions]) -> None:
        observer = options.get("observer")
        deduplicate = options.get("deduplicate", True)
        callback_timeout = options["callback_timeout"]
        self._dispatcher = dispatcher
        self._observer = observer if observer is not None else EventLog()
        self._deduplicate = deduplicate
        self._deliveries = options["deliveries"] if deduplicate else None
        self._statuses = options["statuses"]
        self._skip_stale = options["skip_stale"]
        self._callback_timeout = callback_timeout
        self._deadlines = Deadlines(callback_timeout)
        # Kinds Twilio waits for less long (a Conversations pre-event: 5 s).
        self._short_deadlines: dict[float, Deadlines] = {}
        self._inbox = options.get("inbox")
        self._once = Once(self.run, self._finish, self._observer, callback_timeout)
        self._dropped = FirstWarning()  # callbacks whose replies could not be sent
        #: Awaited before the next event, when set (the lifecycle's startup).
        self.start: Callable[[], Awaitable[None]] | None = None
        #: The inbox's workers, woken when an event is stored.
        self.workers: WorkerPool | None = None

    @property
    def inbox(self) -> Inbox | None:
        return self._inbox

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    @property
    def observer(self) -> Observer:
        return self._observer

    @property
    def stores(self) -> tuple[DeliveryStore | None, StatusStore | None]:
        """The duplicate store (``None`` when not deduplicating) and the status store."""
        return self._deliveries, self._statuses

    def use_stores(self, deliveries: DeliveryStore, statuses: StatusStore | None) -> None:
        """Use these stores from now on (made on the loop that uses them)."""
        self._deliveries = deliveries if self._deduplicate else None
        self._statuses = statuses

    def callback_label(self, event: TwilioEvent) -> str | None:
        """The attached callback an event goes to (``Service.on_status``), if any."""
        return self._dispatcher.label_for(event)

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
        caller (:func:`~._identity.kept_header`; the webhook handler does it).  A
        voice request that asks what the call does is always handled inline:
        the call waits for the answer, and a stored event could not give it.

        *event_id* is the CloudEvent ``id`` of an Event Streams delivery, signed
        through the body's SHA-256.  The ``I-Twilio-Idempotency-Token`` header,
        unsigned, is never part of the delivery's key (see
        :func:`~._identity.delivery_key`); to see it again, keep it in *headers*.
        """
        if self.start is not None:
            await self.start()
        self._observer.received(event)
        kind = kind_of_event(event)
        if self._inbox is not None and not (replies and kind.reply_inline and expects_reply(event)):
            return await self._store(kind, event, event_id, headers)
        store = self._deliveries
        once = kind.deduplicates
        # A CloudEvent's id names one event: a copy of it is always one.
        if store is None or (once is not None and event_id is None and not once(event)):
            try:
                return self._finish(event, await self.run(event, replying=replies))
            except _StoreUnavailableError as error:
                refused(error)
                return answers.STORE_UNAVAILABLE
        key = delivery_key(event, event_id)
        try:
            return await self._once.accept(store, key, event, replies)
        except (_StoreUnavailableError, UnreachableError) as error:  # an outage is told once
            refused(error)
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

    def _finish(self, event: TwilioEvent, result: Result) -> Answer:
        self._observer.finished(event, result)
        if isinstance(result.value, Answer):
            return result.value
        # The usual answer of the event's kind is one look-up (event._row: its kind).
        return _ANSWERS.get(result.outcome) or FIXED_ANSWERS.get(event._row) or silent_answer(event)

    def _reply(self, event: TwilioEvent, result: Result, replying: bool) -> Result:
        """The result with its reply made the answer, or failed when it cannot be one."""
        if result.error is not None and isinstance(result.error, Reject) and expects_reply(event):
            # Raised (or returned) to block a pre-event: a decision, not a failure.
            result = result._replace(outcome=Outcome.HANDLED, error=None, value=result.error)
        if result.value is None or result.outcome is not Outcome.HANDLED:
            return result
        if not expects_reply(event):
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
            answer = reply_answer(event, result.value)
        except Exception as error:  # ReplyError, or a __str__ that raised
            return result._replace(outcome=Outcome.FAILED, error=error, value=None)
        return result._replace(value=answer)

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
                except UnreachableError as error:  # told once per outage by the store
                    raise _StoreUnavailableError from error
                except Exception as error:
                    logger.exception(
                        "the status store failed for %s %s (%s)", event.kind, event.sid, status
                    )
                    raise _StoreUnavailableError from error
                event._place(standing.previous_status, standing.stale)
                if standing.stale and self._skip_stale and event._row.replaces:
                    return _STALE
        kind = event._row
        if kind.time_limit is None or kind.time_limit >= self._callback_timeout:
            return await self._dispatcher.dispatch(event, self._deadlines)
        return await self._dispatcher.dispatch(event, self._deadlines_for(kind))

    def _deadlines_for(self, kind: Kind) -> Deadlines:
        limit = kind.time_limit
        if limit is None or limit >= self._callback_timeout:
            return self._deadlines
        deadlines = self._short_deadlines.get(limit)
        if deadlines is None:
            deadlines = self._short_deadlines[limit] = Deadlines(limit)
        return deadlines

    async def _store(
        self,
        kind: Kind,
        event: TwilioEvent,
        event_id: str | None,
        headers: Sequence[tuple[str, str]],
    ) -> Answer:
        assert self._inbox is not None
        once = kind.deduplicates
        if self._deduplicate and (once is None or event_id is not None or once(event)):
            key = delivery_key(event, event_id)
        else:
            key = uuid.uuid4().hex
        try:
            added = await self._inbox.put(
                key, event.kind, event.sid, event.status, event.params, headers
            )
        except UnreachableError as error:  # told once per outage by the inbox
            refused(error)
            return answers.INBOX_UNAVAILABLE
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
            if self.workers is not None:
                self.workers.wake()
        else:
            self._observer.finished(event, DUPLICATE)
        return receipt_for(kind)
