"""The registry of kinds: everything that tells one kind of webhook from another.

A *kind* is one family of Twilio webhooks (message status, call status,
recording status, ...).  Its row below says how a request is recognised, which
event class carries it and which service base class receives it, which
parameter picks the callback and the callbacks that exist, how its events are
ordered, what Twilio waits for as the answer, how a delivery is identified, its
SIDs and CloudEvent types, and how the test kit builds one.  Routing, dispatch,
ordering, duplicate keys, replies, metrics, the inspector, ``twilio-trigger
send``, the demo and the test kit all read these rows; adding a kind is adding a
row (with its event class, service class and payload factory).

No I/O here: this module is part of the pure core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from .._exceptions import ServiceError
from . import payloads
from .events import (
    CallStatusEvent,
    DebuggerEvent,
    RecordingStatusEvent,
    SmsStatusChangeEvent,
    TwilioEvent,
)
from .services import (
    CallStatusService,
    DebuggerService,
    RecordingStatusService,
    ServiceBase,
    SmsStatusService,
    callback_name,
)

__all__ = [
    "KINDS",
    "Answer",
    "Kind",
    "kind_named",
    "kind_of_event",
    "kind_of_service",
    "recognise",
]

#: What Twilio waits for in the answer: TwiML it runs, JSON it reads, or a mere receipt.
Answer = Literal["twiml", "json", "receipt"]
#: What a ``str`` returned by a callback means: the text of one reply message, or TwiML.
TextReply = Literal["message", "twiml"]
PayloadFactory = Callable[..., dict[str, str]]


def _never(event: TwilioEvent) -> bool:
    return False


@dataclass(frozen=True, eq=False)
class Kind:
    """One kind of webhook: a row of the registry."""

    #: The kind's name, as events, logs, metrics and the inbox show it (``sms``).
    name: str
    #: The class of its events, and the base class of the services that receive them.
    event_class: type[TwilioEvent]
    service_class: type[ServiceBase]
    #: How a request is recognised: it is of this kind when every parameter of one
    #: of these groups has a non-empty value.  Kinds are tried in registry order.
    signals: tuple[tuple[str, ...], ...]
    #: The parameters whose value (the first non-empty one) picks the callback,
    #: ``on_<value>``; the event's ``status``.
    route_by: tuple[str, ...]
    #: The parameters naming the resource the event is about (the event's ``sid``).
    sid_params: tuple[str, ...]
    #: The values of *route_by* Twilio documents, in its spelling; each has a callback.
    events: tuple[str, ...]
    #: Two-letter prefixes of the kind's SIDs (the first is the usual one).
    sid_prefixes: tuple[str, ...]
    #: Builds a realistic payload: ``payload(event, sid=None, **overrides)``.
    payload: PayloadFactory
    #: Other payloads of the kind, by name: ``twilio-trigger send inbound-call``.
    variants: Mapping[str, PayloadFactory] = field(default_factory=dict)
    #: Where an event stands in its SID's order: ranks by value of *route_by* ...
    ranks: Mapping[str, int] = field(default_factory=dict)
    #: ... unless the event carries this parameter, a sequence number, which wins.
    sequence_param: str | None = None
    #: What Twilio waits for, and which of the kind's requests wait for it.
    answer: Answer = "receipt"
    waits_for_reply: Callable[[TwilioEvent], bool] = _never
    #: What a ``str`` returned by a callback is, for a request that waits for a reply.
    text_reply: TextReply = "twiml"
    #: True when a request that waits cannot go without its reply (a call waits for
    #: what to do): it is handled inline, even by a listener with an inbox, whose
    #: stored events are answered with a receipt.
    reply_inline: bool = False
    #: Parameters that, with the kind, SID and *route_by* value, identify one delivery
    #: (Twilio's retries repeat them; they tell apart two events of one status).
    key_params: tuple[str, ...] = ("ErrorCode", "SequenceNumber")
    #: Types of the Event Streams CloudEvents that carry this kind (prefixes end in ``.``).
    cloudevent_types: tuple[str, ...] = ()
    #: The callbacks, ``on_<event>`` in the order of *events* (derived).
    callbacks: tuple[str, ...] = field(init=False)
    _callback_of: Mapping[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        callbacks = tuple(callback_name(value) for value in self.events)
        object.__setattr__(self, "callbacks", callbacks)
        object.__setattr__(
            self, "_callback_of", MappingProxyType(dict(zip(self.events, callbacks, strict=True)))
        )

    @property
    def sid_param(self) -> str:
        """The parameter that carries the kind's SID first."""
        return self.sid_params[0]

    def recognises(self, first: Mapping[str, str]) -> bool:
        """True when the parameters (each name's first value) are of this kind."""
        return any(all(first.get(name) for name in group) for group in self.signals)

    def callback_for(self, value: str | None) -> str | None:
        """The callback for a *route_by* value, or ``None`` for a value unknown to us.

        Twilio's spelling is looked up first; a value differing only in case or
        surrounding spaces (``Delivered``, `` ringing``) finds the same callback.
        """
        value = value or ""
        name = self._callback_of.get(value)
        if name is None:
            name = callback_name(value)
            if name not in self._callback_of.values():
                return None
        return name

    def rank(self, event: TwilioEvent) -> int | None:
        """The event's place in its SID's order, or ``None`` when it has none."""
        if self.sequence_param is not None:
            sequence = event.get(self.sequence_param) or ""
            if sequence.isascii() and sequence.isdigit() and len(sequence) < 10:
                return int(sequence)
        return self.ranks.get((event.status or "").strip().lower())

    @staticmethod
    def describe_signal(group: tuple[str, ...]) -> str:
        """One group of recognising parameters, for a message: ``CallStatus``, ``A with B``."""
        return " with ".join(group)


def _sms_waits(event: TwilioEvent) -> bool:
    # An inbound message may be answered with messages.
    return (event.status or "").strip().lower() == "received"


def _call_waits(event: TwilioEvent) -> bool:
    # A voice request that is not a status callback (no CallbackSource: an
    # incoming call, an answered outbound call) must say what the call does.
    return not event.get("CallbackSource")


#: Message statuses, in Twilio's spelling: the seed's nine, then those Twilio added.
_MESSAGE_STATUSES = (
    "accepted", "queued", "sending", "sent", "failed", "delivered", "undelivered",
    "receiving", "received", "scheduled", "canceled", "read", "partially_delivered",
)  # fmt: skip
_MESSAGE_RANKS = {
    "accepted": 0, "scheduled": 0, "receiving": 0,
    "queued": 1, "received": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "partially_delivered": 4,
    "read": 5,
}  # fmt: skip
_CALL_STATUSES = (
    "queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
    "no-answer", "canceled",
)  # fmt: skip
#: Used only when a call event has no SequenceNumber.
_CALL_RANKS = {
    "queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2,
    "completed": 3, "busy": 3, "failed": 3, "no-answer": 3, "canceled": 3,
}  # fmt: skip

#: The kinds, in the order they are tried: a recording callback carries the
#: call's ``CallStatus``-free ``CallSid``; a call's carries no message status.
KINDS: tuple[Kind, ...] = (
    Kind(
        name="recording",
        event_class=RecordingStatusEvent,
        service_class=RecordingStatusService,
        signals=(("RecordingStatus",),),
        route_by=("RecordingStatus",),
        sid_params=("RecordingSid",),
        events=("in-progress", "completed", "absent"),
        sid_prefixes=("RE",),
        payload=payloads.recording_status_params,
        ranks={"in-progress": 0, "completed": 1, "absent": 1},
    ),
    Kind(
        name="call",
        event_class=CallStatusEvent,
        service_class=CallStatusService,
        signals=(("CallStatus",),),
        route_by=("CallStatus",),
        sid_params=("CallSid",),
        events=_CALL_STATUSES,
        sid_prefixes=("CA",),
        payload=payloads.call_status_params,
        variants={"inbound": payloads.inbound_call_params},
        ranks=_CALL_RANKS,
        sequence_param="SequenceNumber",
        answer="twiml",
        waits_for_reply=_call_waits,
        text_reply="twiml",
        reply_inline=True,
        cloudevent_types=(
            "com.twilio.voice.status-callback.call.",
            "com.twilio.voice.webhook.status-callback.call.",
        ),
    ),
    Kind(
        name="sms",
        event_class=SmsStatusChangeEvent,
        service_class=SmsStatusService,
        signals=(("MessageStatus",), ("SmsStatus",)),
        route_by=("MessageStatus", "SmsStatus"),
        sid_params=("MessageSid", "SmsSid", "SmsMessageSid"),
        events=_MESSAGE_STATUSES,
        sid_prefixes=("SM", "MM"),
        payload=payloads.sms_status_params,
        ranks=_MESSAGE_RANKS,
        answer="twiml",
        waits_for_reply=_sms_waits,
        text_reply="message",
        cloudevent_types=(
            "com.twilio.messaging.message.",
            "com.twilio.messaging.inbound-message.received",
        ),
    ),
    Kind(
        name="debugger",
        event_class=DebuggerEvent,
        service_class=DebuggerService,
        # A console alert: its Level, and a JSON Payload said to be one.
        signals=(("Level", "PayloadType", "Payload"),),
        route_by=("Level",),
        sid_params=("Sid",),
        events=("error", "warning"),
        sid_prefixes=("NO",),
        payload=payloads.debugger_params,
        # Each alert has a Sid of its own; a retry repeats it.
        key_params=(),
    ),
)

_BY_NAME: Mapping[str, Kind] = MappingProxyType({kind.name: kind for kind in KINDS})
_BY_EVENT_CLASS: Mapping[type, Kind] = MappingProxyType({k.event_class: k for k in KINDS})
#: Every signal group in registry order, as (its first parameter, the others, its
#: kind): recognising a request is then a few dict look-ups, run for each request.
_GROUPS: tuple[tuple[str, tuple[str, ...], Kind], ...] = tuple(
    (group[0], group[1:], kind) for kind in KINDS for group in kind.signals
)


def _register(kind: Kind) -> None:
    # The event class reads its SID and status by the row's parameters; the
    # service base class knows its kind and its callbacks.
    kind.event_class._sid_names = kind.sid_params
    kind.event_class._status_names = kind.route_by
    kind.event_class.kind = kind.name
    kind.service_class.kind = kind.name
    kind.service_class.callback_names = kind.callbacks


for _kind in KINDS:
    _register(_kind)


def kind_named(name: str) -> Kind:
    """The registered kind called *name*; ``KeyError`` for another name."""
    return _BY_NAME[name]


def kind_of_event(event: TwilioEvent) -> Kind:
    """The row of *event*'s kind."""
    kind = _BY_EVENT_CLASS.get(type(event))
    if kind is None:
        for klass in type(event).__mro__:
            if (kind := _BY_EVENT_CLASS.get(klass)) is not None:
                break
        else:
            return _BY_NAME[event.kind]
    return kind


def kind_of_service(service: object) -> Kind:
    """The kind of events *service* receives, or :class:`ServiceError` why it can't."""
    if isinstance(service, type):
        raise ServiceError(f"attach an instance, not the class: attach({service.__name__}())")
    kinds = [kind for kind in KINDS if isinstance(service, kind.service_class)]
    if not kinds:
        bases = [kind.service_class.__name__ for kind in KINDS]
        raise ServiceError(
            f"{type(service).__name__} is not a service: subclass twilio_trigger."
            f"{', '.join(bases[:-1])} or {bases[-1]}"
        )
    if len(kinds) > 1:
        names = " and ".join(kind.service_class.__name__ for kind in kinds)
        raise ServiceError(
            f"{type(service).__name__} subclasses both {names}; write one service class "
            f"for each kind"
        )
    return kinds[0]


def recognise(first: Mapping[str, str], prefer: Sequence[Kind] = ()) -> Kind | None:
    """The kind the parameters are, trying the kinds of *prefer* first (a path's own)."""
    for kind in prefer:
        if kind.recognises(first):
            return kind
    get = first.get
    for name, others, kind in _GROUPS:
        if get(name) and (not others or all(get(other) for other in others)):
            return kind
    return None
