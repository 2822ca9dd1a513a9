"""The registry of kinds: everything that tells one kind of webhook from another.

A *kind* is one family of Twilio webhooks (message status, call status, the
result of a ``<Gather>``, a conference event, ...).  Its row says how a
request is recognised, which event class carries it and which service base
class receives it, which parameter picks the callback and the callbacks that
exist, how its events are ordered, what Twilio waits for as the answer and how
long, how a delivery is identified, its SIDs and CloudEvent types, and how the
test kit builds one.  Routing, dispatch, ordering, duplicate keys, replies,
metrics, the inspector, ``twilio-trigger send``, the demo and the test kit all
read these rows; adding a kind is adding a row (with its event class, service
class and payload factory).

Each row is in the module of its family, named as the module of its event
class in ``events/``: ``status.py`` (messages, recordings, calls), ``verbs.py``
(the results of TwiML verbs), ``conferences.py``, ``debugger.py``,
``conversations.py`` and ``taskrouter.py``; ``kind.py`` holds the ``Kind``
dataclass, and the fallback row is here.  ``KINDS`` puts them in order here, and
only here, because the order is the precedence between families, which no
family's module sees on its own (a verb's result carries its call's
``CallStatus``, so the verbs are tried before the call's own kind: see the
comment on ``KINDS``).  The lookups built from ``KINDS`` at import (by name, by
event, by service, recognising a request) are here too.

No I/O here: this package is part of the pure core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from ..._exceptions import ServiceError
from .. import payloads
from ..events import TwilioEvent
from ..services import FallbackService, ServiceBase
from . import conferences, conversations, debugger, status, taskrouter, verbs
from .kind import Answer, Kind
from .kind import PayloadFactory as PayloadFactory
from .kind import Receipt as Receipt
from .kind import TextReply as TextReply

__all__ = [
    "FALLBACK",
    "KINDS",
    "Answer",
    "Kind",
    "by_parameters",
    "kind_named",
    "kind_of_event",
    "kind_of_service",
    "kinds_of_service",
    "recognise",
]

#: The kind of what no other kind recognises: a :class:`FallbackService`'s.
FALLBACK = Kind(
    name="other",
    event_class=TwilioEvent,
    service_class=FallbackService,
    # Never recognised: what no other kind recognises is of this kind.
    signals=(),
    route_by=(),
    sid_params=(),
    events=(),
    callback="on_event",
    sid_prefixes=(),
    payload=payloads.unknown_params,
    key_params=(),
)

#: The kinds, in the order they are tried.  Message statuses first: the most
#: frequent, and no other kind has one (but a request with a ``CallStatus`` too
#: is a call's).  A recording's callback carries its call's ``CallSid``; the
#: results of verbs carry the call's ``CallStatus``, so they come before the
#: call's own kind, which is *broad*.
KINDS: tuple[Kind, ...] = (
    status.SMS,
    status.RECORDING,
    conferences.CONFERENCE,
    verbs.TRANSCRIPTION,
    verbs.GATHER_PARTIAL,
    verbs.DIAL,
    verbs.ENQUEUE,
    verbs.DEQUEUE,
    verbs.QUEUE_WAIT,
    verbs.PAY_STATUS,
    verbs.PAY,
    verbs.RECORD,
    verbs.GATHER,
    verbs.AMD,
    status.CALL,
    debugger.DEBUGGER,
    conversations.CONVERSATIONS,
    taskrouter.ASSIGNMENT,
    taskrouter.TASKROUTER,
    FALLBACK,
)

_BY_NAME: Mapping[str, Kind] = MappingProxyType({kind.name: kind for kind in KINDS})


#: The service base classes, each with its kinds: its main one first (that of
#: the most general event class: ``call`` for the voice kinds), then in registry order.
def _main_first(kinds: list[Kind]) -> tuple[Kind, ...]:
    main = min(kinds, key=lambda kind: len(kind.event_class.__mro__))
    return (main, *(kind for kind in kinds if kind is not main))


_BY_SERVICE_CLASS: Mapping[type[ServiceBase], tuple[Kind, ...]] = MappingProxyType(
    {
        base: _main_first([kind for kind in KINDS if kind.service_class is base])
        for base in dict.fromkeys(kind.service_class for kind in KINDS)
    }
)
#: Every signal group in registry order, as (its first parameter, the others, its
#: kind, whether it checks more): recognising a request is then a few dict
#: look-ups, run for each request.
#: A group as (its first parameter, the others, what excludes it, its test, the kind).
_Group = tuple[
    str, tuple[str, ...], tuple[str, ...], Callable[[Mapping[str, str]], bool] | None, Kind
]
_GROUPS: tuple[_Group, ...] = tuple(
    (group[0], group[1:], kind.excludes + kind.yields_to, kind.test, kind)
    for kind in KINDS
    for group in kind.signals
)


def _register(kind: Kind) -> None:
    # The event class reads its SID and status by the row's parameters; the
    # service base class knows its kinds (the first is its main one) and callbacks.
    kind.event_class._sid_names = kind.sid_params
    kind.event_class._status_names = kind.route_by
    kind.event_class._implied_status = kind.implied_status
    kind.event_class.kind = kind.name
    kind.event_class._row = kind
    base = kind.service_class
    kinds = _BY_SERVICE_CLASS[base]
    base.kind = kinds[0].name
    base.kinds = tuple(k.name for k in kinds)
    base.callback_names = tuple(dict.fromkeys(name for k in kinds for name in k.callbacks))


for _kind in KINDS:
    _register(_kind)


def kind_named(name: str) -> Kind:
    """The registered kind called *name*; ``KeyError`` for another name."""
    return _BY_NAME[name]


def kind_of_event(event: TwilioEvent) -> Kind:
    """The row of *event*'s kind."""
    # Set on each event class by _register, inherited by their subclasses.
    kind: Kind = event._row
    return kind


def service_base(service: object) -> type[ServiceBase]:
    """The service base class *service* is an instance of, or :class:`ServiceError`
    why it is no service."""
    if isinstance(service, type):
        raise ServiceError(f"attach an instance, not the class: attach({service.__name__}())")
    bases = [base for base in _BY_SERVICE_CLASS if isinstance(service, base)]
    if not bases:
        names = [base.__name__ for base in _BY_SERVICE_CLASS]
        raise ServiceError(
            f"{type(service).__name__} is not a service: subclass twilio_trigger."
            f"{', '.join(names[:-1])} or {names[-1]}"
        )
    if len(bases) > 1:
        names = [base.__name__ for base in bases]
        raise ServiceError(
            f"{type(service).__name__} subclasses both {' and '.join(names)}; write one "
            f"service class for each kind"
        )
    return bases[0]


def kind_of_service(service: object) -> Kind:
    """The main kind of events *service* receives (``call`` for a
    :class:`CallStatusService`), or :class:`ServiceError` why it can't."""
    return _BY_SERVICE_CLASS[service_base(service)][0]


def kinds_of_service(service: object) -> tuple[Kind, ...]:
    """Every kind of events *service* receives (``call``, ``gather``, ``dial``, ...)."""
    return _BY_SERVICE_CLASS[service_base(service)]


def recognise(first: Mapping[str, str], prefer: Sequence[Kind] = ()) -> Kind | None:
    """The kind the parameters are, or ``None`` when no kind recognises them.

    The kinds are tried in registry order.  *prefer* are the kinds whose
    callbacks a service attached at the request's path defines: tried first,
    in their order.  When exactly one of them can claim a request by its path
    alone (a ``<Gather>`` with nothing entered), it claims what its parameters
    leave to a broad kind (a call's own request: its ``CallStatus`` comes with
    every verb's result) or to none; a request its parameters give to another
    verb (a ``<Dial>``'s result) keeps its kind.  A broad kind preferred leaves
    to the other kinds of its service class what their parameters give them: a
    verb's result sent to a path whose service defines only the call's callbacks
    keeps its own kind, while a call's status callback that also carries a
    recording's status is the call's there.
    """
    if prefer:
        claiming = [kind for kind in prefer if kind.at_path]
        claimer = claiming[0] if len(claiming) == 1 else None
        for kind in prefer:
            if not kind.recognises(first):
                continue
            if not kind.broad:
                return kind
            if claimer is None:
                own = by_parameters(first)
                if own is not None and not own.broad and own.service_class is kind.service_class:
                    return own
                return kind
        if claimer is not None:
            own = by_parameters(first)
            if (own is None or own.broad) and claimer.recognises_at_path(first):
                return claimer
            return own
    return by_parameters(first)


def by_parameters(first: Mapping[str, str]) -> Kind | None:
    """The kind the parameters alone are (:func:`recognise` with no path's kinds)."""
    # Run for every request: plain loops, not generators; the most frequent
    # kinds (message statuses) are the first tried.
    get = first.get
    for name, others, excludes, test, kind in _GROUPS:
        if not get(name):
            continue
        for other in others:
            if not get(other):
                break
        else:
            for excluding in excludes:
                if get(excluding):
                    break
            else:
                if test is None or test(first):
                    return kind
    return None
