"""Calling the user's callbacks: one path for ``async def`` and plain ``def``."""

from __future__ import annotations

import asyncio
import contextvars
import enum
import inspect
import logging

from ._events import EventKind, TwilioEvent
from ._exceptions import ServiceError
from ._routing import callback_for
from ._services import Callback, resolve_callbacks, service_kind

__all__ = ["Dispatcher", "Outcome", "invoke"]

logger = logging.getLogger("twilio_trigger")

_MAX_HINTS = 1024
_SERVICE_BASE = {"sms": "SmsStatusService", "call": "CallStatusService"}
_EVENT_CLASS = {"sms": "SmsStatusChangeEvent", "call": "CallStatusEvent"}


class Outcome(enum.Enum):
    """What became of one event."""

    HANDLED = "handled"  # the callback returned normally
    FAILED = "failed"  # the callback raised or returned an Exception
    NO_SERVICE = "no_service"  # no service of the event's kind is attached
    NO_CALLBACK = "no_callback"  # the service does not define the status's callback
    UNKNOWN_STATUS = "unknown_status"  # a status twilio-trigger does not know


async def invoke(callback: Callback, event: TwilioEvent) -> BaseException | None:
    """Run *callback* on *event*; the error it signalled, or ``None`` on success.

    Sync callbacks run in the event loop's thread pool, never on the loop.  A
    returned ``Exception`` counts as a failure, as the seed's ``returns error?``.
    """
    try:
        if callback.is_async:
            result = await callback.function(event)  # type: ignore[misc]
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            result = await loop.run_in_executor(None, context.run, callback.function, event)
        if inspect.isawaitable(result):  # a sync wrapper around a coroutine
            result = await result
    except Exception as exc:
        return exc
    return result if isinstance(result, Exception) else None


class Dispatcher:
    """The attached services, and the dispatch of one event to its callback."""

    __slots__ = ("_hinted", "_services", "_tables")

    def __init__(self) -> None:
        self._services: dict[EventKind, object] = {}
        self._tables: dict[EventKind, dict[str, Callback]] = {}
        self._hinted: set[tuple[str, str]] = set()

    @property
    def services(self) -> tuple[object, ...]:
        return tuple(self._services.values())

    def attach(self, service: object) -> None:
        kind = service_kind(service)
        current = self._services.get(kind)
        if current is service:
            raise ServiceError(f"{type(service).__name__} is already attached")
        if current is not None:
            raise ServiceError(
                f"a {_SERVICE_BASE[kind]} ({type(current).__name__}) is already attached; "
                f"a listener takes one service of each kind: detach it first, or put "
                f"the callbacks of {type(service).__name__} in it"
            )
        table = resolve_callbacks(service)
        self._services[kind] = service
        self._tables[kind] = table

    def detach(self, service: object) -> None:
        kind = service_kind(service)
        if self._services.get(kind) is not service:
            raise ServiceError(f"{type(service).__name__} is not attached to this listener")
        del self._services[kind]
        del self._tables[kind]

    async def dispatch(self, event: TwilioEvent) -> Outcome:
        kind = event.kind
        name = callback_for(event)
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
            return Outcome.UNKNOWN_STATUS
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
                _SERVICE_BASE[kind],
                name,
                _EVENT_CLASS[kind],
            )
            return Outcome.NO_SERVICE
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
                _EVENT_CLASS[kind],
                service,
            )
            return Outcome.NO_CALLBACK
        error = await invoke(callback, event)
        if error is None:
            return Outcome.HANDLED
        logger.error(
            "%s failed for %s %s (status %s): %s",
            callback.label,
            kind,
            event.sid,
            event.status,
            type(error).__name__,
            exc_info=(type(error), error, error.__traceback__),
            extra={
                "kind": kind,
                "sid": event.sid,
                "status": event.status,
                "callback": callback.label,
            },
        )
        return Outcome.FAILED

    def _hint(self, kind: str, key: str, message: str, *args: object) -> None:
        # Said once as a warning, then at debug level: a status callback URL
        # set for statuses nobody handles must not flood the log.
        seen = (kind, key) in self._hinted
        if not seen and len(self._hinted) < _MAX_HINTS:
            self._hinted.add((kind, key))
        logger.log(logging.DEBUG if seen else logging.WARNING, message, *args)
