"""The registry of kinds: everything that tells one kind of webhook from another.

A *kind* is one family of Twilio webhooks (message status, call status, the
result of a ``<Gather>``, a conference event, ...).  Its row below says how a
request is recognised, which event class carries it and which service base
class receives it, which parameter picks the callback and the callbacks that
exist, how its events are ordered, what Twilio waits for as the answer and how
long, how a delivery is identified, its SIDs and CloudEvent types, and how the
test kit builds one.  Routing, dispatch, ordering, duplicate keys, replies,
metrics, the inspector, ``twilio-trigger send``, the demo and the test kit all
read these rows; adding a kind is adding a row (with its event class, service
class and payload factory).

No I/O here: this module is part of the pure core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from .._exceptions import ServiceError
from . import payloads
from .events import (
    AssignmentEvent,
    CallStatusEvent,
    ConferenceEvent,
    ConversationsEvent,
    DebuggerEvent,
    DequeueEvent,
    DialEvent,
    EnqueueEvent,
    GatherEvent,
    GatherPartialEvent,
    MachineDetectionEvent,
    PayEvent,
    PayStatusEvent,
    QueueWaitEvent,
    RecordEvent,
    RecordingStatusEvent,
    SmsStatusChangeEvent,
    TaskRouterEvent,
    TranscriptionEvent,
    TwilioEvent,
)
from .services import (
    CallStatusService,
    ConferenceService,
    ConversationsService,
    DebuggerService,
    FallbackService,
    RecordingStatusService,
    ServiceBase,
    SmsStatusService,
    TaskRouterService,
    callback_name,
    camel_callback_name,
)
from .vocabulary import (
    CONFERENCE_EVENTS,
    CONVERSATIONS_POST_EVENTS,
    CONVERSATIONS_PRE_EVENTS,
    TASKROUTER_EVENT_TYPES,
)

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

#: What Twilio waits for in the answer: TwiML it runs, JSON it reads, or a mere receipt.
Answer = Literal["twiml", "json", "receipt"]
#: What a ``str`` returned by a callback means: the text of one reply message, or TwiML.
TextReply = Literal["message", "twiml"]
#: How an event that waits for nothing is acknowledged: 200 with empty TwiML
#: (safe for every voice and messaging webhook), or 204 (what TaskRouter asks for).
Receipt = Literal["twiml", "no-content"]
PayloadFactory = Callable[..., dict[str, str]]


def _never(event: TwilioEvent) -> bool:
    return False


def _always(event: TwilioEvent) -> bool:
    return True


@dataclass(frozen=True, eq=False)
class Kind:
    """One kind of webhook: a row of the registry."""

    #: The kind's name, as events, logs, metrics and the inbox show it (``sms``).
    name: str
    #: The class of its events, and the base class of the services that receive them.
    event_class: type[TwilioEvent]
    service_class: type[ServiceBase]
    #: How a request is recognised: it is of this kind when every parameter of one
    #: of these groups has a non-empty value (and *excludes* and *test* agree).
    #: Kinds are tried in registry order.
    signals: tuple[tuple[str, ...], ...]
    #: The parameters whose value (the first non-empty one) picks the callback,
    #: ``on_<value>``; the event's ``status``.
    route_by: tuple[str, ...]
    #: The parameters naming the resource the event is about (the event's ``sid``).
    sid_params: tuple[str, ...]
    #: The values of *route_by* Twilio documents, in its spelling; each has a callback
    #: (unless the kind has one *callback* for all).
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
    #: Parameters whose presence (non-empty) says a request is *not* of this kind.
    excludes: tuple[str, ...] = ()
    #: Parameters whose presence makes the kind give way to a kind tried after it
    #: (a message's to a call's ``CallStatus``), except at a path of its own.
    yields_to: tuple[str, ...] = ()
    #: A last check on the values, when presence alone cannot tell.
    test: Callable[[Mapping[str, str]], bool] | None = None
    #: The one callback every event of the kind goes to (``on_gather``), when the
    #: value of *route_by* does not choose it.
    callback: str | None = None
    #: How a value of *route_by* names its callback.
    name_callback: Callable[[str], str] = callback_name
    #: At a path where a service's callbacks of this kind are the only ones to
    #: claim such requests, these signals suffice (``CallSid`` for a ``<Gather>``
    #: whose caller entered nothing): see :func:`recognise`.
    at_path: tuple[tuple[str, ...], ...] = ()
    #: Parameters that, even at its path, say a request is not of this kind
    #: (``None``: its *excludes*).
    at_path_excludes: tuple[str, ...] | None = None
    #: Tried after the kinds that share its signal, even at a path of its own (a
    #: call's ``CallStatus`` comes with every verb's result too).
    broad: bool = False
    #: How an event that waits for nothing is acknowledged.
    receipt: Receipt = "twiml"
    #: For a JSON answer: the body when the callback returns ``None``.
    empty_reply: bytes = b""
    #: For a JSON answer: whether a callback may block the action with ``Reject``.
    rejects: bool = False
    #: For a JSON answer: the keys a returned mapping may have (``None``: any).
    reply_keys: Callable[[TwilioEvent], frozenset[str] | None] = lambda event: None
    #: Seconds a callback has, when Twilio waits less than the listener's limit:
    #: a little less than Twilio's, so that the listener's answer comes first.
    time_limit: float | None = None
    #: Whether an event is run once per delivery (its copies answered without
    #: running again).  Not for the requests that drive a live call: Twilio does
    #: not retry them on its own, and a caller may well send the same one twice.
    #: ``None``: every event is.
    deduplicates: Callable[[TwilioEvent], bool] | None = None
    #: The callbacks, ``on_<event>`` in the order of *events* (derived).
    callbacks: tuple[str, ...] = field(init=False)
    _callback_of: Mapping[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.callback is not None:
            callbacks: tuple[str, ...] = (self.callback,)
            table = dict.fromkeys(self.events, self.callback)
        else:
            callbacks = tuple(self.name_callback(value) for value in self.events)
            table = dict(zip(self.events, callbacks, strict=True))
        object.__setattr__(self, "callbacks", callbacks)
        object.__setattr__(self, "_callback_of", MappingProxyType(table))

    @property
    def sid_param(self) -> str:
        """The parameter that carries the kind's SID first."""
        return self.sid_params[0]

    def accepts(self, first: Mapping[str, str]) -> bool:
        """True unless an excluding parameter or the value test says otherwise."""
        if any(first.get(name) for name in self.excludes):
            return False
        return self.test is None or self.test(first)

    def recognises(self, first: Mapping[str, str]) -> bool:
        """True when the parameters (each name's first value) are of this kind."""
        return any(all(first.get(name) for name in group) for group in self.signals) and (
            self.accepts(first)
        )

    def recognises_at_path(self, first: Mapping[str, str]) -> bool:
        """True when, at a path of its own, the parameters are of this kind."""
        excludes = self.excludes if self.at_path_excludes is None else self.at_path_excludes
        return (
            any(all(first.get(name) for name in group) for group in self.at_path)
            and not any(first.get(name) for name in excludes)
            and (self.test is None or self.test(first))
        )

    def callback_for(self, value: str | None) -> str | None:
        """The callback for a *route_by* value, or ``None`` for a value unknown to us.

        Twilio's spelling is looked up first; a value differing only in case or
        surrounding spaces (``Delivered``, `` ringing``) finds the same callback.
        """
        if self.callback is not None:
            return self.callback
        value = value or ""
        name = self._callback_of.get(value)
        if name is None:
            name = self.name_callback(value)
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


def _sms_waits(event: TwilioEvent) -> bool:
    # An inbound message may be answered with messages.
    return (event.status or "").strip().lower() == "received"


def _call_waits(event: TwilioEvent) -> bool:
    # A voice request that is not a status callback (no CallbackSource: an
    # incoming call, an answered outbound call) must say what the call does.
    return not event.get("CallbackSource")


#: Message statuses, in Twilio's spelling: the nine the first version of this
#: package knew, then those Twilio added.
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


def _conversations_event(first: Mapping[str, str]) -> bool:
    # onMessageAdded, onConversationStateUpdated, ...: not TaskRouter's
    # task.created, nor a message status callback's READ.
    value = first.get("EventType", "")
    return value[:2] == "on" and value[2:3].isupper()


def _taskrouter_event(first: Mapping[str, str]) -> bool:
    return "." in first.get("EventType", "")


def _pre_event(event: TwilioEvent) -> bool:
    return isinstance(event, ConversationsEvent) and event.is_pre_event


def _post_event(event: TwilioEvent) -> bool:
    return not _pre_event(event)


_MESSAGE_REPLY = frozenset({"body", "author", "attributes"})
_CONVERSATION_REPLY = frozenset({"friendly_name"})
_NOTHING = frozenset[str]()


def _conversations_reply_keys(event: TwilioEvent) -> frozenset[str] | None:
    # What Twilio lets a pre-event's answer change.
    status = event.status or ""
    if status in ("onMessageAdd", "onMessageUpdate"):
        return _MESSAGE_REPLY
    if status in ("onConversationAdd", "onConversationUpdate"):
        return _CONVERSATION_REPLY
    return _NOTHING


#: Twilio waits 5 s for a Conversations pre-event or an assignment: a callback
#: has a little less, so that its answer (or the 503 of one too slow) comes first.
_JSON_TIME_LIMIT = 4.5

#: A verb's result drives a live call: TwiML, inline, never taken for a copy.
_DRIVES_CALL: dict[str, Any] = {
    "service_class": CallStatusService,
    "answer": "twiml",
    "waits_for_reply": _always,
    "reply_inline": True,
    "deduplicates": _never,
    "sid_prefixes": ("CA",),
    "excludes": ("CallbackSource",),
}
#: A voice notification: about a call, but the call does not wait for it.
_ABOUT_CALL: dict[str, Any] = {"service_class": CallStatusService, "sid_prefixes": ("CA",)}

#: The kinds, in the order they are tried.  Message statuses first: the most
#: frequent, and no other kind has one (but a request with a ``CallStatus`` too
#: is a call's).  A recording's callback carries its call's ``CallSid``; the
#: results of verbs carry the call's ``CallStatus``, so they come before the
#: call's own kind, which is *broad*.
KINDS: tuple[Kind, ...] = (
    Kind(
        name="sms",
        event_class=SmsStatusChangeEvent,
        service_class=SmsStatusService,
        signals=(("MessageStatus",), ("SmsStatus",)),
        # A request with a CallStatus too is a call's: CallStatus decides before
        # MessageStatus, whichever the request lists first.
        yields_to=("CallStatus",),
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
        name="conference",
        event_class=ConferenceEvent,
        service_class=ConferenceService,
        signals=(("ConferenceSid", "StatusCallbackEvent"),),
        route_by=("StatusCallbackEvent",),
        sid_params=("ConferenceSid",),
        events=CONFERENCE_EVENTS,
        sid_prefixes=("CF",),
        payload=payloads.conference_params,
        # Ordered per conference by SequenceNumber; two participants' joins are
        # two deliveries.
        sequence_param="SequenceNumber",
        key_params=("SequenceNumber", "CallSid"),
    ),
    Kind(
        name="transcription",
        event_class=TranscriptionEvent,
        signals=(("TranscriptionSid",), ("TranscriptionStatus",)),
        route_by=("TranscriptionStatus",),
        sid_params=("TranscriptionSid",),
        events=("completed", "failed"),
        payload=payloads.transcription_params,
        callback="on_transcription",
        **{**_ABOUT_CALL, "sid_prefixes": ("TR",)},
    ),
    Kind(
        name="gather_partial",
        event_class=GatherPartialEvent,
        signals=(("UnstableSpeechResult",),),
        route_by=(),
        sid_params=("CallSid",),
        events=(),
        payload=payloads.gather_partial_params,
        callback="on_gather_partial",
        key_params=("SequenceNumber", "UnstableSpeechResult", "StableSpeechResult"),
        **_ABOUT_CALL,
    ),
    Kind(
        name="dial",
        event_class=DialEvent,
        signals=(("DialCallStatus",),),
        route_by=("DialCallStatus",),
        sid_params=("CallSid",),
        events=("completed", "answered", "busy", "no-answer", "failed", "canceled"),
        payload=payloads.dial_params,
        callback="on_dial",
        **_DRIVES_CALL,
    ),
    Kind(
        name="enqueue",
        event_class=EnqueueEvent,
        signals=(("QueueResult",),),
        route_by=("QueueResult",),
        sid_params=("CallSid",),
        events=(
            "bridged",
            "bridging-in-process",
            "error",
            "hangup",
            "leave",
            "redirected",
            "redirected-from-bridged",
            "queue-full",
            "system-error",
        ),
        payload=payloads.enqueue_params,
        callback="on_enqueue",
        **_DRIVES_CALL,
    ),
    Kind(
        name="dequeue",
        event_class=DequeueEvent,
        signals=(("DequeingCallSid",),),
        route_by=(),
        sid_params=("CallSid",),
        events=(),
        payload=payloads.dequeue_params,
        callback="on_dequeue",
        **_DRIVES_CALL,
    ),
    Kind(
        name="queue_wait",
        event_class=QueueWaitEvent,
        signals=(("QueuePosition",), ("CurrentQueueSize",), ("AvgQueueTime",)),
        route_by=(),
        sid_params=("CallSid",),
        events=(),
        payload=payloads.queue_wait_params,
        callback="on_queue_wait",
        **_DRIVES_CALL,
    ),
    Kind(
        name="pay_status",
        event_class=PayStatusEvent,
        signals=(("For", "Attempt"),),
        route_by=("For",),
        sid_params=("CallSid",),
        events=(
            "payment-card-number",
            "expiration-date",
            "security-code",
            "postal-code",
            "bank-routing-number",
            "bank-account-number",
            "payment-processing",
        ),
        payload=payloads.pay_status_params,
        callback="on_pay_status",
        key_params=("Attempt", "ErrorType"),
        **_ABOUT_CALL,
    ),
    Kind(
        name="pay",
        event_class=PayEvent,
        signals=(("Result", "CallSid"),),
        route_by=("Result",),
        sid_params=("CallSid",),
        events=(
            "success",
            "too-many-failed-attempts",
            "payment-connector-error",
            "caller-interrupted-with-star",
            "caller-hung-up",
            "validation-error",
            "internal-error",
        ),
        payload=payloads.pay_params,
        callback="on_pay",
        **_DRIVES_CALL,
    ),
    Kind(
        name="record",
        event_class=RecordEvent,
        # A call's status callback with Record=true has a RecordingUrl too, but
        # also a CallbackSource.
        signals=(("RecordingUrl", "RecordingDuration", "CallSid"),),
        route_by=(),
        sid_params=("CallSid",),
        events=(),
        payload=payloads.record_params,
        callback="on_record",
        at_path=(("CallSid",),),
        **{
            **_DRIVES_CALL,
            # The fact sheet's disambiguation: what else carries a RecordingUrl.
            "excludes": (
                "CallbackSource",
                "RecordingStatus",
                "DialCallStatus",
                "TranscriptionSid",
                "TranscriptionStatus",
            ),
        },
    ),
    Kind(
        name="gather",
        event_class=GatherEvent,
        signals=(("Digits", "CallSid"), ("SpeechResult", "CallSid")),
        route_by=(),
        sid_params=("CallSid",),
        events=(),
        payload=payloads.gather_params,
        callback="on_gather",
        # With actionOnEmptyResult, nothing entered: only its path tells.
        at_path=(("CallSid",),),
        **{
            **_DRIVES_CALL,
            # A <Record> action has Digits too, with a RecordingUrl; the other
            # verbs' results are told by their own parameters.
            "excludes": (
                "CallbackSource",
                "RecordingUrl",
                "DialCallStatus",
                "QueueResult",
                "TranscriptionSid",
                "UnstableSpeechResult",
            ),
        },
    ),
    Kind(
        name="amd",
        event_class=MachineDetectionEvent,
        # The call's own TwiML request carries AnsweredBy too (synchronous
        # detection), with its CallStatus.
        signals=(("AnsweredBy", "MachineDetectionDuration"),),
        route_by=("AnsweredBy",),
        sid_params=("CallSid",),
        events=(
            "human",
            "machine_start",
            "machine_end_beep",
            "machine_end_silence",
            "machine_end_other",
            "fax",
            "unknown",
        ),
        payload=payloads.machine_detection_params,
        callback="on_machine_detection",
        excludes=("CallbackSource", "CallStatus"),
        # At its own path (the AsyncAmdStatusCallback), whether or not the result
        # carries the call's CallStatus: Twilio's list of its parameters is not clear.
        at_path=(("AnsweredBy",),),
        at_path_excludes=("CallbackSource",),
        key_params=(),
        **_ABOUT_CALL,
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
        broad=True,
        cloudevent_types=(
            "com.twilio.voice.status-callback.call.",
            "com.twilio.voice.webhook.status-callback.call.",
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
        cloudevent_types=("com.twilio.error-logs.error.logged",),
    ),
    Kind(
        name="conversations",
        event_class=ConversationsEvent,
        service_class=ConversationsService,
        signals=(("EventType",),),
        test=_conversations_event,
        route_by=("EventType",),
        sid_params=("MessageSid", "ParticipantSid", "UserSid", "ConversationSid", "ChatServiceSid"),
        events=CONVERSATIONS_PRE_EVENTS + CONVERSATIONS_POST_EVENTS,
        name_callback=camel_callback_name,
        sid_prefixes=("CH", "IM", "MB", "US", "IS"),
        payload=payloads.conversations_params,
        answer="json",
        waits_for_reply=_pre_event,
        reply_inline=True,
        empty_reply=b"{}",
        rejects=True,
        reply_keys=_conversations_reply_keys,
        time_limit=_JSON_TIME_LIMIT,
        deduplicates=_post_event,
        # Post-events only: Event Streams never asks before an action.
        cloudevent_types=("com.twilio.conversations.",),
        key_params=(
            "DateUpdated",
            "DateRemoved",
            "Index",
            "DeliveryReceiptSid",
            "Status",
            "StateTo",
        ),
    ),
    Kind(
        name="assignment",
        event_class=AssignmentEvent,
        service_class=TaskRouterService,
        signals=(("ReservationSid", "WorkerAttributes", "TaskAttributes"),),
        excludes=("EventType",),
        route_by=(),
        sid_params=("ReservationSid",),
        events=(),
        callback="on_assignment",
        sid_prefixes=("WR",),
        payload=payloads.assignment_params,
        answer="json",
        waits_for_reply=_always,
        reply_inline=True,
        time_limit=_JSON_TIME_LIMIT,
        deduplicates=_never,
    ),
    Kind(
        name="taskrouter",
        event_class=TaskRouterEvent,
        service_class=TaskRouterService,
        signals=(("EventType", "WorkspaceSid"),),
        test=_taskrouter_event,
        route_by=("EventType",),
        sid_params=("ResourceSid", "TaskSid", "ReservationSid", "WorkerSid", "WorkspaceSid"),
        events=TASKROUTER_EVENT_TYPES,
        sid_prefixes=("WT", "WR", "WK", "WA", "WW", "WS", "WQ", "TC"),
        payload=payloads.taskrouter_params,
        receipt="no-content",
        key_params=("TimestampMs", "Timestamp"),
    ),
    Kind(
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
    ),
)

#: The kind of what no other kind recognises: a :class:`FallbackService`'s.
FALLBACK = KINDS[-1]

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
    verb (a ``<Dial>``'s result) keeps its kind.
    """
    if prefer:
        claiming = [kind for kind in prefer if kind.at_path]
        claimer = claiming[0] if len(claiming) == 1 else None
        for kind in prefer:
            if (claimer is None or not kind.broad) and kind.recognises(first):
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
