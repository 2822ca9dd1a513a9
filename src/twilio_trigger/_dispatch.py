"""Which callback an event goes to: the attached services, by path and base class.

:class:`Dispatcher` holds the services attached to a listener (one of each base
class per path, or a bare function made a service of its own) and hands each
event to its callback through :func:`._invoke.invoke`, which runs it in time.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable

from ._core.cloudevents import CLOUDEVENT_TYPE
from ._core.events import TwilioEvent
from ._core.kinds import FALLBACK, KINDS, Kind, kind_of_event, kinds_of_service, service_base
from ._core.services import (
    Callback,
    FallbackService,
    ServiceBase,
    resolve_callbacks,
    takes_transaction,
)
from ._core.wording import a_or_an
from ._exceptions import ServiceError
from ._invoke import Deadlines, Outcome, Result, invoke
from ._logging import FirstWarning, printable
from ._transaction import TransactionSource

__all__ = ["Dispatcher"]

logger = logging.getLogger("twilio_trigger")

#: An unrecognised webhook's warning names at most this many of its parameters;
#: its shape (the names, said once) is at most this long.
_SHOWN_NAMES = 40
_MAX_SHAPE = 2000
#: What a warning shows of one value from a request (a SID, a status, a name).
_MAX_SHOWN = 100


def _shown(value: str | None) -> str:
    """*value*, from a request, as a warning may show it: bounded and escaped."""
    text = value or ""
    if len(text) > _MAX_SHOWN:
        text = text[:_MAX_SHOWN] + f"... ({len(text)} characters)"
    return printable(text)


def _name_of(thing: object) -> str:
    if callable(thing) and not isinstance(thing, ServiceBase | type):
        return str(getattr(thing, "__qualname__", repr(thing)))
    return type(thing).__name__


def _event_class_of(function: Callable[..., object]) -> type | None:
    # The annotation of the callback's event parameter, when it can be read.
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        return None
    hints.pop("return", None)
    hint = next(iter(hints.values()), None)
    return hint if isinstance(hint, type) and issubclass(hint, TwilioEvent) else None


def service_of_callback(function: Callable[..., object]) -> ServiceBase:
    """A service of one callback: *function*, named ``on_<event>`` or annotated
    with its event class (``def menu(event: GatherEvent)``).

    :class:`ServiceError` when neither says which callback it is.
    """
    name = str(getattr(function, "__name__", ""))
    label = str(getattr(function, "__qualname__", name or repr(function)))
    event_class = _event_class_of(function)
    row = None
    if event_class is not None:
        row = next((kind for kind in KINDS if kind.event_class is event_class), None)
    if row is not None:
        if row.callback is not None:
            name = row.callback
        elif name not in row.callbacks:
            raise ServiceError(
                f"{label} takes {a_or_an(event_class.__name__ if event_class else 'event')}, whose "
                f"callbacks are {' '.join(row.callbacks)}: name it after one of them"
            )
        base = row.service_class
    else:
        bases = [kind.service_class for kind in KINDS if name in kind.callbacks]
        bases = list(dict.fromkeys(bases))
        if len(bases) != 1:
            raise ServiceError(
                f"cannot tell which callback {label} is: annotate its event "
                f"(def {name or 'callback'}(event: twilio_trigger.GatherEvent)) or name it "
                f"after the callback (on_gather, on_delivered, ...)"
            )
        base = bases[0]

    def call(event: TwilioEvent) -> object:
        return function(event)

    if takes_transaction(function, label, name or "callback"):

        async def acall_in(event: TwilioEvent, transaction: object) -> object:
            result = function(event, transaction)
            return await result if inspect.isawaitable(result) else result

        method: Callable[..., object] = acall_in
    elif inspect.iscoroutinefunction(function):

        async def acall(event: TwilioEvent) -> object:
            result = function(event)
            return await result if inspect.isawaitable(result) else result

        method = acall
    else:
        method = call
    cls: type[ServiceBase] = type(
        label.replace(".<locals>", ""), (base,), {name: staticmethod(method)}
    )
    service = cls()
    setattr(service, "__wrapped__", function)  # noqa: B010 - found by detach()
    return service


_NOBODY: tuple[None, None] = (None, None)

#: Where a service is attached: a path of its own, or ``None`` for the listener's.
_Slot = tuple[str | None, type[ServiceBase]]


class Dispatcher:
    """The attached services, and the dispatch of one event to its callback.

    A listener takes one service of each base class for its own path, and one
    more of each at any path of its own (``attach(Menu(), path="/voice/menu")``).
    An event that came to a service's own path goes to that service's
    callback, else to the listener-wide service's; an event no attached service
    takes goes to the :class:`FallbackService`, when one is attached.
    """

    __slots__ = (
        "_everywhere",
        "_fallback",
        "_hints",
        "_services",
        "_tables",
        "paths",
        "transactions",
    )

    def __init__(self) -> None:
        self._services: dict[_Slot, object] = {}
        self._tables: dict[_Slot, dict[str, Callback]] = {}
        #: The listener-wide services by base class, with their callbacks.
        self._everywhere: dict[type[ServiceBase], tuple[object, dict[str, Callback]]] = {}
        self._fallback: dict[str | None, Callback] = {}
        self._hints = FirstWarning()
        #: Paths with services attached at them, and the kinds whose callbacks
        #: they define, tried first there.  Read by the ASGI application for
        #: every request: changed in place.
        self.paths: dict[str, tuple[Kind, ...]] = {}
        #: Where callbacks that take a transaction get it when dispatched inline
        #: (a PostgreSQL inbox's or store's), set when the listener starts.
        self.transactions: TransactionSource | None = None

    @property
    def services(self) -> tuple[object, ...]:
        return tuple(self._services.values())

    def transactional(self) -> list[str]:
        """The attached callbacks that take a transaction, by label."""
        return [
            callback.label
            for table in self._tables.values()
            for callback in table.values()
            if callback.transactional
        ]

    def attach(self, service: object, path: str | None = None) -> None:
        if path is not None and (not path.startswith("/") or "?" in path or "#" in path):
            raise ServiceError(f"a service's path starts with / and has no query: {path!r}")
        if callable(service) and not isinstance(service, ServiceBase | type):
            service = service_of_callback(service)
        base = service_base(service)
        slot = (path, base)
        current = self._services.get(slot)
        if current is service:
            raise ServiceError(f"{type(service).__name__} is already attached")
        if current is not None:
            where = "" if path is None else f" at {path}"
            raise ServiceError(
                f"{a_or_an(base.__name__)} ({type(current).__name__}) is already attached{where}; "
                f"a listener takes one service of each kind at each path: detach it "
                f"first, put the callbacks of {type(service).__name__} in it, or attach "
                f"it at a path of its own"
            )
        table = resolve_callbacks(service, base)
        self._services[slot] = service
        self._tables[slot] = table
        if path is None:
            self._everywhere[base] = (service, table)
        if base is FallbackService and "on_event" in table:
            self._fallback[path] = table["on_event"]
        if path is not None:
            own = tuple(
                kind for kind in kinds_of_service(service) if set(kind.callbacks) & set(table)
            )
            self.paths[path] = tuple(
                kind for kind in KINDS if kind in (*self.paths.get(path, ()), *own)
            )

    def detach(self, service: object) -> None:
        slots = [
            slot
            for slot, attached in self._services.items()
            if attached is service or getattr(attached, "__wrapped__", None) is service
        ]
        if slots:
            service = self._services[slots[0]]
        if not slots:
            raise ServiceError(f"{_name_of(service)} is not attached to this listener")
        base = service_base(service)
        for slot in slots:
            path = slot[0]
            del self._services[slot]
            del self._tables[slot]
            if path is None:
                del self._everywhere[base]
            if base is FallbackService:
                self._fallback.pop(path, None)
            if path is not None:
                left = tuple(
                    kind for kind in self.paths.get(path, ()) if kind.service_class is not base
                )
                if left:
                    self.paths[path] = left
                else:
                    self.paths.pop(path, None)

    def _callback(
        self, event: TwilioEvent, row: Kind, name: str
    ) -> tuple[Callback | None, object | None]:
        """The callback *name* for *event* (at its path, else the listener's), and
        the service that has (or lacks) it: ``None`` when no service of its kind
        is attached where it came."""
        base = row.service_class
        where = event._where
        service = None
        if where is not None and self.paths and (path := where[0]) in self.paths:
            table = self._tables.get((path, base))
            if table is not None:
                service = self._services[(path, base)]
                callback = table.get(name)
                if callback is not None:
                    return callback, service
        table = self._tables.get((None, base))
        if table is None:
            return None, service
        return table.get(name), self._services[(None, base)]

    def _fallback_for(self, event: TwilioEvent) -> Callback | None:
        path = event.path
        if path is not None and path in self._fallback:
            return self._fallback[path]
        return self._fallback.get(None)

    async def dispatch(self, event: TwilioEvent, deadlines: Deadlines | None = None) -> Result:
        """Run the event's callback; events nobody handles are logged and acknowledged."""
        row = kind_of_event(event)
        kind = row.name
        if row is FALLBACK:
            return await self._unrecognised(event, deadlines)
        name = row.callback_for(event.status)
        if name is None:
            # A status Twilio added after this version: no service has a callback
            # for it, and a FallbackService receives it as it does what no kind is.
            fallback = self._fallback_for(event)
            if fallback is not None:
                return await invoke(fallback, event, deadlines, self.transactions)
            self._hint(
                kind,
                f"?{_shown(event.status)}",
                "acknowledged %s %s with status %r, unknown to twilio-trigger, without "
                "dispatching it; attach a FallbackService (def on_event(self, event)) "
                "to receive the statuses twilio-trigger does not know yet",
                kind,
                _shown(event.sid),
                _shown(event.status),
            )
            return Result(Outcome.UNKNOWN_STATUS)
        where = event._where
        if self.paths and where is not None and where[0] in self.paths:
            callback, service = self._callback(event, row, name)
        else:  # the usual case: the listener-wide service of the event's class
            service, table = self._everywhere.get(row.service_class, _NOBODY)
            callback = None if table is None else table.get(name)
        if callback is not None:
            return await invoke(callback, event, deadlines, self.transactions)
        if service is None:
            fallback = self._fallback_for(event)
            if fallback is not None:
                return await invoke(fallback, event, deadlines, self.transactions)
            self._hint(
                kind,
                f"no service {name}",
                "acknowledged %s %s (%s) without dispatching it: no %s is attached; "
                "attach one with `def %s(self, event: twilio_trigger.%s)` to handle it",
                kind,
                _shown(event.sid),
                _shown(event.status),
                row.service_class.__name__,
                name,
                row.event_class.__name__,
            )
            return Result(Outcome.NO_SERVICE)
        self._hint(
            kind,
            name,
            "acknowledged %s %s (%s) without dispatching it: add "
            "`def %s(self, event: twilio_trigger.%s)` to %s to handle it",
            kind,
            _shown(event.sid),
            _shown(event.status),
            name,
            row.event_class.__name__,
            type(service).__name__,
        )
        return Result(Outcome.NO_CALLBACK)

    async def _unrecognised(self, event: TwilioEvent, deadlines: Deadlines | None) -> Result:
        fallback = self._fallback_for(event)
        if fallback is not None:
            return await invoke(fallback, event, deadlines, self.transactions)
        cloudevent_type = event.get(CLOUDEVENT_TYPE)
        if cloudevent_type is not None:
            self._hint(
                "other",
                cloudevent_type[:_MAX_SHAPE],
                "acknowledged a CloudEvent of type %s without dispatching it: twilio-trigger "
                "maps message, call, answering machine, Conversations and error-log events; "
                "attach a FallbackService (def on_event(self, event)) to handle others",
                _shown(cloudevent_type),
            )
            return Result(Outcome.NO_SERVICE)
        names = sorted(event.raw)
        shown = names[:_SHOWN_NAMES]
        more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
        self._hint(
            "other",
            " ".join(names)[:_MAX_SHAPE],
            "acknowledged a verified webhook that no kind recognises, with parameters %s%s; "
            "attach a FallbackService (def on_event(self, event)) to handle such webhooks",
            ", ".join(_shown(name) for name in shown),
            more,
        )
        return Result(Outcome.NO_SERVICE)

    def label_for(self, event: TwilioEvent) -> str | None:
        """The label of the callback *event* would run (``Service.on_status``), if any."""
        row = kind_of_event(event)
        if row is FALLBACK:
            fallback = self._fallback_for(event)
            return None if fallback is None else fallback.label
        name = row.callback_for(event.status)
        if name is None:
            fallback = self._fallback_for(event)
            return None if fallback is None else fallback.label
        callback, service = self._callback(event, row, name)
        if callback is None and service is None:
            callback = self._fallback_for(event)
        return None if callback is None else callback.label

    def _hint(self, kind: str, key: str, message: str, *args: object) -> None:
        # Said once as a warning, then at debug level: a status callback URL
        # set for statuses nobody handles must not flood the log.
        logger.log(self._hints.level((kind, key)), message, *args)
