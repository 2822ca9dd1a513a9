"""Twilio Event Streams webhook bodies: CloudEvents in, status-webhook parameters out.

An Event Streams webhook sink receives ``POST`` requests with
``Content-Type: application/json`` whose body is a JSON *array* of CloudEvents
(``specversion``, ``type``, ``source``, ``id``, ``dataschema``,
``datacontenttype``, ``time``, ``data``); one event per array unless the sink
batches.  :func:`parse_cloudevents` checks that envelope, without any I/O, and
:func:`to_params` turns the events we know into the ``(name, value)`` pairs the
equivalent form-encoded status webhook would have carried, so that
``routing.to_event`` builds the same typed events for both transports.

Mapping (``data`` is the CloudEvent's ``data`` object; "camel" means every field of
it, its name turned from camelCase to PascalCase: ``messageSid`` → ``MessageSid``,
``from`` → ``From``)::

    CloudEvent type (schema)                       kind  parameters
    ---------------------------------------------  ----  ------------------------------------
    com.twilio.messaging.message.<s>               sms   camel; MessageStatus = <s>
      <s>: queued sent delivered undelivered             (not data.messageStatus);
      failed read   (Messaging.MessageStatus)            NumSegments =
                                                         data.numberOfSegments
    com.twilio.messaging.inbound-message.received  sms   camel; SmsStatus and MessageStatus
      (Messaging.InboundMessageV1)                       = received unless data has them
    com.twilio.voice.status-callback.call.<x>      call  data.request.parameters as sent (a
      <x>: initiated ringing answered completed          list → repeated pairs), else camel;
      (Voice.WebhookEvent; the deprecated                CallSid = data.sid unless present;
      com.twilio.voice.webhook.status-callback           CallStatus from the parameters, else
      .call.<x> alike)                                   <x>, with answered → in-progress
    com.twilio.voice.status-callback.amd.detected  amd   data.request.parameters as sent, else
      (Voice.WebhookEvent)                               camel; CallSid = data.sid unless
                                                         present
    com.twilio.conversations.<r>.<a>               conv- camel; EventType = on<R><A>
      <r>: conversation message participant user   ersa- (message.added → onMessageAdded,
      conversation-state; <a>: added updated       tions conversation-state.updated →
      removed (post-events only)                         onConversationStateUpdated);
                                                         Body = data.MessageBody unless
                                                         present; an object MessagingBinding
                                                         → MessagingBinding.<Name> pairs
    com.twilio.error-logs.error.logged             debu- Sid, AccountSid, Level, Timestamp
      (ErrorLogs.Error; data in snake_case)        gger  (date_created) from data;
                                                         PayloadType = application/json;
                                                         Payload = data as JSON text
    anything else                                  other camel, and CloudEventType = the
                                                         type (a FallbackService's)

Values become text as a form would carry them: strings as they are, ``true`` /
``false``, integers in digits, other numbers by ``repr``, objects and arrays
(``tags``, ``recipients``) as compact JSON; ``null`` leaves the field out.  A
name that would route the parameters to another kind of event (``CallStatus``
or ``RecordingStatus`` in a message event, ``RecordingStatus`` in a call event)
is left out: no documented schema has one, and the CloudEvent ``type`` decides
the kind.

Sources (Twilio's documentation):

- Envelope, array body, 5 s timeout: https://www.twilio.com/docs/events/webhook-quickstart.
- Outbound message types and ``Messaging.MessageStatus`` (v7/v8) fields and examples:
  https://www.twilio.com/docs/events/event-types/messaging/outbound-message and the
  schema https://events-schemas.twilio.com/Messaging.MessageStatus/4.  ``messageStatus``
  is upper case there ("QUEUED, FAILED, SENT, DELIVERED, UNDELIVERED, READ"), the
  segment count is ``numberOfSegments`` and ``errorCode`` is an integer (a string in
  the 2024-11-21 changelog example, "Status Update Event Streams Now Include
  Additional Data"); both read the same here.
- Inbound message type and ``Messaging.InboundMessageV1`` (v6) fields and example:
  https://www.twilio.com/docs/events/event-types/messaging/inbound-message and the
  schema https://events-schemas.twilio.com/Messaging.InboundMessageV1/6
  (``additionalProperties: false``; it has ``numMedia`` and ``numSegments`` but no
  media URLs, so no ``MediaUrl{N}`` can be produced unless Twilio adds a
  ``mediaUrl0``-style field, which the camelCase rule would then carry over).
- Voice call progress types and ``Voice.WebhookEvent`` (v2: ``sid``, ``timestamp``,
  ``eventSid``, ``request.{method,url,parameters}``, ``response.{responseCode,
  requestDuration,contentType,responseBody,dateCreated}``):
  https://www.twilio.com/docs/events/event-types/voice/status-callback and, for the
  deprecated ``com.twilio.voice.webhook.status-callback.call.*`` types,
  https://www.twilio.com/docs/events/event-types/voice/call-progress-event.  The
  REST Call Events resource presents the same ``parameters`` in snake_case
  (https://www.twilio.com/docs/voice/api/call-event-resource); snake_case names are
  therefore turned into PascalCase as well (``call_status`` → ``CallStatus``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import NamedTuple

from .kinds import FALLBACK, KINDS, Kind, kind_named

__all__ = [
    "MAX_DEPTH",
    "CloudEvent",
    "CloudEventError",
    "Converted",
    "convert",
    "json_object_params",
    "parse_cloudevents",
    "to_params",
]

#: The deepest nesting accepted, the body's array counting as 1.  Twilio's
#: deepest documented shape is 6: array, event, data, request, parameters, list.
MAX_DEPTH = 32

_MESSAGE_PREFIX = "com.twilio.messaging.message."
_MESSAGE_STATUSES = frozenset({"queued", "sent", "delivered", "undelivered", "failed", "read"})
_INBOUND_TYPE = "com.twilio.messaging.inbound-message.received"
_AMD_TYPE = "com.twilio.voice.status-callback.amd.detected"
_CALL_PREFIXES = (
    "com.twilio.voice.status-callback.call.",
    "com.twilio.voice.webhook.status-callback.call.",  # deprecated, same schema
)
#: The CloudEvent's last word → the CallStatus the status callback sends
#: (StatusCallbackEvent ``answered`` is sent as ``CallStatus=in-progress``).
_CALL_STATUSES = {
    "initiated": "initiated",
    "ringing": "ringing",
    "answered": "in-progress",
    "completed": "completed",
}
#: Names that would make ``to_event`` build an event for another service: those
#: the kind excludes (a message's ``CallStatus``) and those recognising a kind of
#: another service class tried before it (see the registry of kinds).  A call's
#: own verbs' names (``Digits``) are kept.
_FOREIGN = {
    kind.name: frozenset(kind.excludes + kind.yields_to).union(
        # A group is recognised only whole: its last name, the most particular
        # (an inbound message's NumMedia, not its MessageSid), is enough to leave out.
        group[-1]
        for before in KINDS[:i]
        if before.service_class is not kind.service_class
        for group in before.signals
    )
    for i, kind in enumerate(KINDS)
}
_CONVERSATIONS_PREFIX = "com.twilio.conversations."
_CONVERSATIONS_RESOURCES = {
    "conversation": "Conversation",
    "conversation-state": "ConversationState",
    "message": "Message",
    "participant": "Participant",
    "user": "User",
}
_CONVERSATIONS_ACTIONS = {"added": "Added", "updated": "Updated", "removed": "Removed"}
_ERROR_LOG_TYPE = "com.twilio.error-logs.error.logged"
#: The parameter a CloudEvent of a type with no kind carries its type in.
CLOUDEVENT_TYPE = "CloudEventType"
_TOO_DEEP = f"the body is nested too deeply (at most {MAX_DEPTH} levels)"
_SHOWN = 64  # at most this many characters of an id or type in a message


class CloudEventError(ValueError):
    """The body is not an array of CloudEvents we can use.

    ``message`` is short and says nothing about the server: it is meant for
    the body of the ``400`` answer.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CloudEvent(NamedTuple):
    """One CloudEvent of the body: its identity, and ``data`` as parsed JSON."""

    id: str
    type: str
    source: str | None
    time: str | None
    data: object


def _reject_constant(name: str) -> object:
    # json accepts NaN, Infinity and -Infinity, which are not JSON.
    raise ValueError(name)


def parse_cloudevents(body: bytes, max_events: int = 100) -> list[CloudEvent]:
    """The CloudEvents of an Event Streams webhook body, in order.

    The body must be UTF-8 JSON (``NaN``/``Infinity`` and lone ``\\uD800``-style
    surrogates refused; a repeated key keeps its last value, as ``json`` does),
    nested at most :data:`MAX_DEPTH` deep, and an array (a single object is
    refused) of at most *max_events* objects, each with a non-empty string
    ``type`` and ``id``.  ``source`` and ``time`` are kept when they are
    strings, else ``None``; ``data`` is kept as parsed (``None`` when absent).

    An empty array is valid and gives ``[]``: there is nothing to do, and the
    caller acknowledges it.  Anything else raises :class:`CloudEventError`,
    whose message names the event by its index in the array (from 0).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CloudEventError("the body is not valid UTF-8") from None
    try:
        document: object = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise CloudEventError(_TOO_DEEP) from None
    except ValueError:  # JSONDecodeError, NaN/Infinity, integers past the digit limit
        raise CloudEventError("the body is not valid JSON") from None
    if not isinstance(document, list):
        raise CloudEventError("expected a JSON array of CloudEvents")
    if len(document) > max_events:
        raise CloudEventError(f"too many CloudEvents (at most {max_events})")
    _check_shape(document, check_strings="\\u" in text)
    events: list[CloudEvent] = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise CloudEventError(f"CloudEvent {index} is not a JSON object")
        event_id = _required(item, "id", index)
        event_type = _required(item, "type", index)
        source = item.get("source")
        time = item.get("time")
        events.append(
            CloudEvent(
                id=event_id,
                type=event_type,
                source=source if isinstance(source, str) else None,
                time=time if isinstance(time, str) else None,
                data=item.get("data"),
            )
        )
    return events


def json_object_params(body: bytes) -> list[tuple[str, str]] | None:
    """The fields of a JSON object body as form parameters, or ``None`` for any
    other body.

    A webhook of a family that posts one JSON object (a Link Shortening click:
    ``event_type``, ``sms_sid``, ...) rather than Event Streams' array: its
    top-level fields by their own names, values as :func:`to_params` writes them
    (objects and arrays as compact JSON).  The same limits as
    :func:`parse_cloudevents`: UTF-8, strict JSON, nested at most
    :data:`MAX_DEPTH` deep.  A CloudEvent (``specversion``) is not such a body.
    """
    try:
        text = body.decode("utf-8")
        document: object = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, RecursionError, ValueError):
        return None
    if not isinstance(document, dict) or not document or "specversion" in document:
        return None  # a CloudEvent outside its array is Event Streams' batch gone wrong
    try:
        _check_shape([document], check_strings="\\u" in text)
    except CloudEventError:
        return None
    pairs: list[tuple[str, str]] = []
    for name, value in document.items():
        text_value = _text(value)
        if name and text_value is not None:
            pairs.append((name, text_value))
    return pairs or None


def _required(item: dict[str, object], field: str, index: int) -> str:
    value = item.get(field)
    if value is None or value == "":
        raise CloudEventError(f"CloudEvent {index} has no {field}")
    if not isinstance(value, str):
        raise CloudEventError(f"CloudEvent {index} has a non-string {field}")
    return value


def _check_shape(document: list[object], *, check_strings: bool) -> None:
    """Refuse nesting deeper than MAX_DEPTH and, when asked, lone surrogates.

    Iterative, so that no later recursive step (``json.dumps`` in
    :func:`to_params`) can meet a structure deeper than this bound.
    """
    stack: list[tuple[list[object] | dict[str, object], int]] = [(document, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CloudEventError(_TOO_DEEP)
        if isinstance(container, dict):
            if check_strings and not all(map(_is_text, container)):
                raise CloudEventError("the body has a lone surrogate \\u escape")
            values: Iterable[object] = container.values()
        else:
            values = container
        for value in values:
            if isinstance(value, dict | list):
                stack.append((value, depth + 1))
            elif check_strings and isinstance(value, str) and not _is_text(value):
                raise CloudEventError("the body has a lone surrogate \\u escape")


def _is_text(value: str) -> bool:
    # Decoded UTF-8 never holds a surrogate; only a "\uD800"-style escape can.
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- CloudEvent → form parameters ------------------------------------------------


class Converted(NamedTuple):
    """A CloudEvent as a webhook: the kind its type names, and the form parameters."""

    kind: Kind
    params: list[tuple[str, str]]


def to_params(event: CloudEvent) -> list[tuple[str, str]] | None:
    """The form parameters the matching webhook would have carried.

    ``None`` for a type this module does not map to a kind (see the table at the
    top).  For a mapped type whose ``data`` is not a JSON object, raises
    :class:`CloudEventError`.  The kind is the type's, not the parameters':
    :func:`convert` says which, and the listener builds the event of that kind
    (``routing.of_kind``), since a call event's request parameters may carry
    names another kind is recognised by (a ``DialCallStatus``).
    """
    converted = convert(event)
    return None if converted.kind is FALLBACK else converted.params


def convert(event: CloudEvent) -> Converted:
    """The kind the CloudEvent's type names, and its parameters as a form.

    A type with no kind converts to the fallback kind (``other``), its ``data``
    in PascalCase with its type as :data:`CLOUDEVENT_TYPE`.  For a mapped type
    whose ``data`` is not a JSON object, raises :class:`CloudEventError`.
    """
    event_type = event.type
    if event_type.startswith(_MESSAGE_PREFIX):
        status = event_type[len(_MESSAGE_PREFIX) :]
        if status in _MESSAGE_STATUSES:
            return Converted(kind_named("sms"), _message_params(_data_of(event), status))
    elif event_type == _INBOUND_TYPE:
        return Converted(kind_named("sms"), _inbound_params(_data_of(event)))
    elif event_type.startswith(_CONVERSATIONS_PREFIX):
        resource, _, action = event_type[len(_CONVERSATIONS_PREFIX) :].rpartition(".")
        if resource in _CONVERSATIONS_RESOURCES and action in _CONVERSATIONS_ACTIONS:
            name = "on" + _CONVERSATIONS_RESOURCES[resource] + _CONVERSATIONS_ACTIONS[action]
            params = _conversations_params(_data_of(event), name)
            return Converted(kind_named("conversations"), params)
    elif event_type == _ERROR_LOG_TYPE:
        return Converted(kind_named("debugger"), _error_log_params(_data_of(event)))
    elif event_type == _AMD_TYPE:
        return Converted(kind_named("amd"), _voice_params(_data_of(event), "amd"))
    else:
        for prefix in _CALL_PREFIXES:
            if event_type.startswith(prefix):
                call_status = _CALL_STATUSES.get(event_type[len(prefix) :])
                if call_status is not None:
                    params = _call_params(_data_of(event), call_status)
                    return Converted(kind_named("call"), params)
    data = event.data if isinstance(event.data, dict) else {}
    return Converted(FALLBACK, [*_fields(data, frozenset()), (CLOUDEVENT_TYPE, event_type)])


#: The webhook's names that are not PascalCase (a user's reachability), for the
#: data's fields that ``_pascal`` made so (``isOnline`` or ``IsOnline``).
_CONVERSATIONS_NAMES = {"IsOnline": "isOnline", "IsNotifiable": "isNotifiable"}


def _conversations_params(data: dict[str, object], event_type: str) -> list[tuple[str, str]]:
    # Event Streams' Conversations data is PascalCase but not the webhook's:
    # the body is MessageBody, and MessagingBinding an object.
    binding = data.get("MessagingBinding")
    fields = {key: value for key, value in data.items() if key != "MessagingBinding"}
    pairs = [
        (_CONVERSATIONS_NAMES.get(name, name), value)
        for name, value in _fields(fields, _FOREIGN["conversations"])
        if name != "EventType"
    ]
    if isinstance(binding, dict):
        pairs += [
            (f"MessagingBinding.{name}", value) for name, value in _fields(binding, frozenset())
        ]
    if "Body" not in dict(pairs) and isinstance(data.get("MessageBody"), str):
        pairs.append(("Body", str(data["MessageBody"])))
    pairs.append(("EventType", event_type))
    return pairs


def _error_log_params(data: dict[str, object]) -> list[tuple[str, str]]:
    # ErrorLogs.Error: snake_case data; the webhook's Payload is the data itself.
    pairs: list[tuple[str, str]] = []
    for name, key in (("Sid", "sid"), ("AccountSid", "account_sid"), ("Level", "level")):
        text = _text(data.get(key))
        if text:
            pairs.append((name, text))
    created = _text(data.get("date_created") or data.get("timestamp"))
    if created:
        pairs.append(("Timestamp", created))
    if "Level" not in dict(pairs):
        pairs.append(("Level", "ERROR"))
    pairs.append(("PayloadType", "application/json"))
    pairs.append(("Payload", json.dumps(data, separators=(",", ":"), ensure_ascii=False)))
    return pairs


def _data_of(event: CloudEvent) -> dict[str, object]:
    if not isinstance(event.data, dict):
        raise CloudEventError(
            f"CloudEvent {_show(event.id)} of type {_show(event.type)} has no data object"
        )
    return event.data


def _show(text: str) -> str:
    # The id and type come from the client: bounded, printable, nothing else.
    shown = "".join(c if c.isprintable() else "?" for c in text[:_SHOWN])
    return shown + "..." if len(text) > _SHOWN else shown


def _message_params(data: dict[str, object], status: str) -> list[tuple[str, str]]:
    # The type names the status change the event reports; data.messageStatus
    # (upper case in Event Streams) is the message's status as read when the
    # event was made, and Twilio's own example of a "delivered" event says
    # QUEUED there.  The type decides, so that on_delivered hears "delivered".
    pairs = [pair for pair in _fields(data, _FOREIGN["sms"]) if pair[0] != "MessageStatus"]
    pairs.append(("MessageStatus", status))
    segments = data.get("numberOfSegments")
    if "NumSegments" not in dict(pairs) and isinstance(segments, int | str):
        # Messaging.MessageStatus calls the webhook's NumSegments "numberOfSegments".
        pairs.append(("NumSegments", _text(segments) or ""))
    return pairs


def _inbound_params(data: dict[str, object]) -> list[tuple[str, str]]:
    pairs = _fields(data, _FOREIGN["sms"])
    # The inbound message webhook carries SmsStatus=received; MessageStatus is
    # added too, so that both read alike.
    pairs = _with_status(pairs, "SmsStatus", "received")
    return _with_status(pairs, "MessageStatus", "received")


def _call_params(data: dict[str, object], call_status: str) -> list[tuple[str, str]]:
    pairs = _with_status(_voice_params(data, "call"), "CallStatus", call_status)
    # The type says it is a status callback, which Twilio's carry as CallbackSource;
    # without it (a CloudEvent whose parameters are empty) it would read as a
    # call asking for TwiML: never deduplicated, out of the call's order.
    if not any(name == "CallbackSource" and value for name, value in pairs):
        pairs = [pair for pair in pairs if pair[0] != "CallbackSource"]
        pairs.append(("CallbackSource", "call-progress-events"))
    return pairs


def _voice_params(data: dict[str, object], kind: str) -> list[tuple[str, str]]:
    # Voice.WebhookEvent: the webhook's own parameters, under data.request.
    request = data.get("request")
    parameters = request.get("parameters") if isinstance(request, dict) else None
    if isinstance(parameters, dict):
        pairs = _fields(parameters, _FOREIGN[kind], repeat_lists=True)
    else:
        pairs = _fields(data, _FOREIGN[kind])
    sid = data.get("sid")
    if "CallSid" not in dict(pairs) and isinstance(sid, str) and sid.strip():
        pairs.append(("CallSid", sid))
    return pairs


#: Names whose blank value would hide a later one from ``to_event`` (which reads
#: each name's first value) or from the event's ``sid``.
_IDENTITY = frozenset(name for kind in KINDS for name in (*kind.sid_params, *kind.route_by))


def _fields(
    data: dict[str, object], left_out: frozenset[str], *, repeat_lists: bool = False
) -> list[tuple[str, str]]:
    """Each field as a form parameter: PascalCase name, text value.

    With *repeat_lists* (a webhook's own parameters), a list gives one pair per
    item, as a repeated form field would; otherwise it is JSON text.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = _pascal(key)
        if not name or name in left_out:
            continue
        items = value if repeat_lists and isinstance(value, list) else (value,)
        for item in items:
            text = _text(item)
            if text is None or (name in _IDENTITY and not text.strip()):
                continue
            pairs.append((name, text))
    return pairs


def _pascal(key: str) -> str:
    """``messageSid`` → ``MessageSid``, ``call_status`` → ``CallStatus``, ``From`` as is."""
    if "_" in key:
        return "".join(part[:1].upper() + part[1:] for part in key.split("_"))
    return key[:1].upper() + key[1:]


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _with_status(pairs: list[tuple[str, str]], name: str, default: str) -> list[tuple[str, str]]:
    """The pairs with *name*'s values in lower case, or with ``name=default`` added."""
    if name not in dict(pairs):  # _fields dropped the blank ones
        return [*pairs, (name, default)]
    return [(key, value.strip().lower() if key == name else value) for key, value in pairs]
