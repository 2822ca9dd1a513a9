"""``Kind``: one row of the registry of kinds, and what rows of several families share.

The frozen dataclass whose fields say what tells one kind of webhook from another
(how a request is recognised, its event and service classes, its callbacks, the order
of its events, what Twilio waits for, how a delivery is identified, its SIDs and
CloudEvent types, its payloads) and whose methods read a row; the types of its
fields (``Answer``, ``TextReply``, ``Receipt``, ``PayloadFactory``); ``_never`` and
``_always``, the answers of a row's ``waits_for_reply`` or ``deduplicates`` that
ignore the event, and ``_JSON_TIME_LIMIT``, the time Conversations' and TaskRouter's
JSON answers leave a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from ..events import TwilioEvent
from ..services import ServiceBase, callback_name

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


#: Twilio waits 5 s for a Conversations pre-event or an assignment: a callback
#: has a little less, so that its answer (or the 503 of one too slow) comes first.
_JSON_TIME_LIMIT = 4.5


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
    #: Whether its statuses are states, each replacing the one before it (a
    #: message's, a call's): ``skip_stale`` drops one that arrives late.  A
    #: conference's events are facts (a join, a leave, its end): a late one is
    #: marked stale all the same, and still dispatched.
    replaces: bool = True
    #: Which events take a place in their SID's order (``None``: every one).  A
    #: call's requests for TwiML do not: they carry no sequence number, and their
    #: status's rank would be compared with the callbacks' sequence numbers.
    ordered: Callable[[TwilioEvent], bool] | None = None
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
    #: Instead of *key_params*: every signed parameter but these identifies one
    #: delivery, for a family whose distinct events can differ in any field (a
    #: retry repeats the request, but for these).  ``None``: *key_params*.
    key_ignores: frozenset[str] | None = None
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
    #: A request that carries none of *route_by* (not even blank) but every
    #: parameter of this group (also one of *signals*) has this status: an inbound
    #: message without ``SmsStatus`` is ``received``.  ``None``: every request
    #: states its own.  (The kind's *test* keeps a blank status from being recognised.)
    implied_status: tuple[tuple[str, ...], str] | None = None
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
        if self.implied_status is not None and self.implied_status[0] not in self.signals:
            raise ValueError(f"kind {self.name}: implied_status's group is not one of its signals")
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
        if self.ordered is not None and not self.ordered(event):
            return None
        if self.sequence_param is not None:
            sequence = event.get(self.sequence_param) or ""
            if sequence.isascii() and sequence.isdigit() and len(sequence) < 10:
                return int(sequence)
        return self.ranks.get((event.status or "").strip().lower())
