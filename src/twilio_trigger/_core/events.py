"""The events passed to callbacks: immutable, typed views over Twilio's parameters.

An event keeps every parameter it was built from, in the order received, and
exposes the documented ones as snake_case attributes that convert on access:
counts, codes and durations to ``int``, timestamps to timezone-aware
``datetime``.  A parameter that is absent or malformed reads as ``None``; it
never makes the event invalid, because Twilio adds and varies parameters
without notice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Generic, NamedTuple, NoReturn, Self, TypeVar, overload

#: The events of every kind: the package exports each (see ``__init__``).
__all__ = [
    "AssignmentEvent",
    "CallStatusEvent",
    "ConferenceEvent",
    "ConversationsEvent",
    "DebuggerEvent",
    "DequeueEvent",
    "DialEvent",
    "EnqueueEvent",
    "EventKind",
    "GatherEvent",
    "GatherPartialEvent",
    "MachineDetectionEvent",
    "Media",
    "PayEvent",
    "PayStatusEvent",
    "QueueWaitEvent",
    "RecordEvent",
    "RecordingStatusEvent",
    "SmsStatusChangeEvent",
    "TaskRouterEvent",
    "TranscriptionEvent",
    "TwilioEvent",
]

#: A kind's name (``sms``, ``call``, ``recording``, ...): see the registry of kinds.
EventKind = str
Params = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]

_T = TypeVar("_T")
_MAX_INT_DIGITS = 30  # far beyond any count or code Twilio sends


def _as_int(value: str) -> int | None:
    value = value.strip()
    digits = value[1:] if value[:1] == "-" else value
    if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_INT_DIGITS:
        return int(value)
    return None


def _parsedate(value: str) -> datetime:
    # email.utils costs about 14 ms to import: loaded when a date is first read.
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(value)


def _as_datetime(value: str) -> datetime | None:
    # Twilio writes RFC 2822 dates in GMT; "-0000" would otherwise read as naive.
    try:
        moment = _parsedate(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _as_text(value: str) -> str:
    return value


def _as_float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _as_bool(value: str) -> bool | None:
    text = value.strip().lower()
    return True if text == "true" else False if text == "false" else None


class _Param(Generic[_T]):
    """A read-only attribute that reads one Twilio parameter and converts it."""

    __slots__ = ("_convert", "twilio_name")

    def __init__(self, twilio_name: str, convert: Callable[[str], _T | None]) -> None:
        self.twilio_name = twilio_name
        self._convert = convert

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _Param[_T]: ...
    @overload
    def __get__(self, instance: TwilioEvent, owner: type[Any]) -> _T | None: ...
    def __get__(self, instance: TwilioEvent | None, owner: type[Any]) -> _Param[_T] | _T | None:
        if instance is None:
            return self
        value = instance._first.get(self.twilio_name)
        return None if value is None else self._convert(value)

    def __set__(self, instance: TwilioEvent, value: object) -> NoReturn:
        raise AttributeError(f"events are immutable: cannot set {self.twilio_name}")


def _text(name: str) -> _Param[str]:
    return _Param(name, _as_text)


def _int(name: str) -> _Param[int]:
    return _Param(name, _as_int)


def _time(name: str) -> _Param[datetime]:
    return _Param(name, _as_datetime)


def _float(name: str) -> _Param[float]:
    return _Param(name, _as_float)


def _bool(name: str) -> _Param[bool]:
    return _Param(name, _as_bool)


def _as_iso_datetime(value: str) -> datetime | None:
    # ISO 8601, as the Debugger writes it: 2020-01-01T23:28:54Z.
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso_time(name: str) -> _Param[datetime]:
    return _Param(name, _as_iso_datetime)


class Media(NamedTuple):
    """One media item of an inbound MMS/WhatsApp message (``MediaUrl{N}``)."""

    url: str
    content_type: str | None


def _pairs_of(params: Params) -> tuple[tuple[str, str], ...]:
    if isinstance(params, Mapping):
        pairs: list[tuple[str, str]] = []
        for name, value in params.items():
            if isinstance(value, str):
                pairs.append((name, value))
            else:
                pairs.extend((name, item) for item in value)
        return tuple(pairs)
    return tuple(params)


class TwilioEvent:
    """What every Twilio webhook event has; each kind's event class adds its fields.

    A :class:`FallbackService` receives events of this class itself: webhooks
    no attached service recognises.

    ``event["Name"]`` is a parameter by Twilio's own name (the first value when
    it was repeated); ``event.raw`` maps every name received to all its values.
    """

    __slots__ = ("_first", "_pairs", "_previous", "_raw", "_sid", "_stale", "_status", "_where")

    kind: ClassVar[EventKind]
    #: The row of the registry of kinds of this class (set by the registry: read
    #: for every request, one attribute instead of a look-up).
    _row: ClassVar[Any]
    _pairs: tuple[tuple[str, str], ...]
    _first: dict[str, str]
    _raw: Mapping[str, tuple[str, ...]] | None
    _previous: str | None
    _stale: bool
    _sid: str | None
    _status: str | None
    _where: tuple[str, str] | None

    def __init__(self, params: Params) -> None:
        pairs = _pairs_of(params)
        first: dict[str, str] = {}
        for name, value in pairs:
            first.setdefault(name, value)
        object.__setattr__(self, "_pairs", pairs)
        object.__setattr__(self, "_first", first)
        object.__setattr__(self, "_raw", None)
        object.__setattr__(self, "_previous", None)
        object.__setattr__(self, "_stale", False)
        object.__setattr__(self, "_where", None)
        object.__setattr__(self, "_sid", self._pick(self._sid_names))
        object.__setattr__(self, "_status", self._pick(self._status_names))

    @classmethod
    def _from_parsed(
        cls,
        pairs: Sequence[tuple[str, str]],
        first: dict[str, str],
        where: tuple[str, str] | None = None,
    ) -> Self:
        # The listener's fast path: the routing step already built `first`;
        # *where* is the request's (path, query).
        event = object.__new__(cls)
        object.__setattr__(event, "_pairs", tuple(pairs))
        object.__setattr__(event, "_first", first)
        object.__setattr__(event, "_raw", None)
        object.__setattr__(event, "_previous", None)
        object.__setattr__(event, "_stale", False)
        object.__setattr__(event, "_where", where)
        object.__setattr__(event, "_sid", event._pick(cls._sid_names))
        object.__setattr__(event, "_status", event._pick(cls._status_names))
        return event

    def _place(self, previous_status: str | None, stale: bool) -> None:
        # Set once by the listener, before the event reaches a callback.
        object.__setattr__(self, "_previous", previous_status)
        object.__setattr__(self, "_stale", stale)

    def _at(self, path: str, query: str) -> None:
        # Set once by the listener: where the request came (its path and raw query).
        object.__setattr__(self, "_where", (path, query))

    @property
    def path(self) -> str | None:
        """The path the request was made to (``/voice/menu``), when it came over HTTP."""
        where = self._where
        return None if where is None else where[0]

    @property
    def query(self) -> Mapping[str, tuple[str, ...]]:
        """The request URL's query parameters, name → all its values.

        Your own, appended to an action or callback URL to carry context
        (``action="/voice/menu?step=2"``) and signed with it; for a GET webhook,
        Twilio's parameters follow them.
        """
        where = self._where
        if where is None or not where[1]:
            return MappingProxyType({})
        from urllib.parse import parse_qsl

        grouped: dict[str, list[str]] = {}
        for name, value in parse_qsl(where[1], keep_blank_values=True):
            grouped.setdefault(name, []).append(value)
        return MappingProxyType({name: tuple(values) for name, values in grouped.items()})

    @property
    def previous_status(self) -> str | None:
        """The most advanced status seen for this SID before this event, when known."""
        return self._previous

    @property
    def stale(self) -> bool:
        """True when a more advanced status of this SID arrived before this event.

        Twilio does not guarantee the order of its callbacks: a ``sent`` may
        arrive after the ``delivered`` of the same message.
        """
        return self._stale

    # -- immutability ------------------------------------------------------
    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"events are immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"events are immutable: cannot delete {name!r}")

    # -- Twilio's own names ------------------------------------------------
    def __getitem__(self, name: str) -> str:
        return self._first[name]

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def get(self, name: str, default: str | None = None) -> str | None:
        """The parameter *name* (first value), or *default* when absent."""
        return self._first.get(name, default)

    def getall(self, name: str) -> tuple[str, ...]:
        """Every value received for *name*, in order (empty when absent)."""
        return tuple(value for key, value in self._pairs if key == name)

    @property
    def raw(self) -> Mapping[str, tuple[str, ...]]:
        """Every parameter received, unknown ones included, name → all its values."""
        raw = self._raw
        if raw is None:
            grouped: dict[str, list[str]] = {}
            for name, value in self._pairs:
                grouped.setdefault(name, []).append(value)
            raw = MappingProxyType({k: tuple(v) for k, v in grouped.items()})
            object.__setattr__(self, "_raw", raw)
        return raw

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """The parameters as received: ``(name, value)`` pairs, in order."""
        return self._pairs

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, TwilioEvent)
        return self._pairs == other._pairs

    def __hash__(self) -> int:
        return hash((type(self), self._pairs))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sid={self.sid!r}, status={self.status!r})"

    # -- identity (set for each kind by its row in the registry of kinds) ----
    _sid_names: ClassVar[tuple[str, ...]] = ()
    _status_names: ClassVar[tuple[str, ...]] = ()

    def _pick(self, names: tuple[str, ...]) -> str | None:
        first = self._first
        for name in names:
            if value := first.get(name):
                return value
        return None

    @property
    def sid(self) -> str | None:
        """The SID of the message or call the event is about."""
        return self._sid

    @property
    def status(self) -> str | None:
        """The status Twilio reported, as sent (e.g. ``delivered``, ``in-progress``)."""
        return self._status

    # -- common parameters -------------------------------------------------
    account_sid = _text("AccountSid")
    api_version = _text("ApiVersion")
    from_ = _text("From")
    to = _text("To")
    error_code = _int("ErrorCode")
    error_message = _text("ErrorMessage")
    from_city = _text("FromCity")
    from_state = _text("FromState")
    from_zip = _text("FromZip")
    from_country = _text("FromCountry")
    to_city = _text("ToCity")
    to_state = _text("ToState")
    to_zip = _text("ToZip")
    to_country = _text("ToCountry")


class SmsStatusChangeEvent(TwilioEvent):
    """A message status callback or an inbound message webhook.

    ``status`` is ``MessageStatus``, or ``SmsStatus`` when only that was sent.
    """

    __slots__ = ()

    message_sid = _text("MessageSid")
    sms_sid = _text("SmsSid")
    sms_message_sid = _text("SmsMessageSid")
    message_status = _text("MessageStatus")
    sms_status = _text("SmsStatus")
    messaging_service_sid = _text("MessagingServiceSid")
    body = _text("Body")
    num_segments = _int("NumSegments")
    raw_dlr_done_date = _text("RawDlrDoneDate")
    """The carrier's "done date", ``YYMMDDhhmm`` as sent: its time zone is unknown."""
    channel_install_sid = _text("ChannelInstallSid")
    channel_prefix = _text("ChannelPrefix")
    channel_status_message = _text("ChannelStatusMessage")
    channel_to_address = _text("ChannelToAddress")
    event_type = _text("EventType")
    message_type = _text("MessageType")
    num_media = _int("NumMedia")
    opt_out_type = _text("OptOutType")
    """``STOP``, ``START`` or ``HELP``: a whole-body opt-out keyword (Advanced Opt-Out)."""
    add_ons = _text("AddOns")
    """The Add-ons' results, as the JSON text Twilio sends."""
    # Location shared in WhatsApp.
    latitude = _float("Latitude")
    longitude = _float("Longitude")
    address = _text("Address")
    label = _text("Label")
    # WhatsApp and RCS.
    profile_name = _text("ProfileName")
    wa_id = _text("WaId")
    forwarded = _bool("Forwarded")
    frequently_forwarded = _bool("FrequentlyForwarded")
    button_text = _text("ButtonText")
    button_payload = _text("ButtonPayload")
    button_type = _text("ButtonType")
    interactive_data = _text("InteractiveData")
    flow_data = _text("FlowData")
    channel_metadata = _text("ChannelMetadata")
    original_replied_message_sender = _text("OriginalRepliedMessageSender")
    original_replied_message_sid = _text("OriginalRepliedMessageSid")
    # Click-to-WhatsApp ads.
    referral_body = _text("ReferralBody")
    referral_headline = _text("ReferralHeadline")
    referral_source_id = _text("ReferralSourceId")
    referral_source_type = _text("ReferralSourceType")
    referral_source_url = _text("ReferralSourceUrl")
    referral_media_id = _text("ReferralMediaId")
    referral_media_content_type = _text("ReferralMediaContentType")
    referral_media_url = _text("ReferralMediaUrl")
    referral_ctwa_clid = _text("ReferralCtwaClid")
    referral_num_media = _int("ReferralNumMedia")

    @property
    def media(self) -> tuple[Media, ...]:
        """The media items (``MediaUrl0``, ``MediaContentType0``, ...), in order."""
        first = self._first
        items: list[Media] = []
        index = 0
        while (url := first.get(f"MediaUrl{index}")) is not None:
            items.append(Media(url, first.get(f"MediaContentType{index}")))
            index += 1
        return tuple(items)


class CallStatusEvent(TwilioEvent):
    """A voice call status callback (or any voice webhook carrying ``CallStatus``)."""

    __slots__ = ()

    call_sid = _text("CallSid")
    call_status = _text("CallStatus")
    parent_call_sid = _text("ParentCallSid")
    direction = _text("Direction")
    caller = _text("Caller")
    called = _text("Called")
    caller_name = _text("CallerName")
    forwarded_from = _text("ForwardedFrom")
    call_duration = _int("CallDuration")
    """Seconds the call lasted (terminal events)."""
    duration = _int("Duration")
    """Billed minutes (``completed`` only)."""
    recording_url = _text("RecordingUrl")
    recording_sid = _text("RecordingSid")
    recording_duration = _int("RecordingDuration")
    timestamp = _time("Timestamp")
    sequence_number = _int("SequenceNumber")
    callback_source = _text("CallbackSource")
    sip_response_code = _int("SipResponseCode")
    answered_by = _text("AnsweredBy")
    machine_detection_duration = _int("MachineDetectionDuration")
    call_token = _text("CallToken")
    stir_verstat = _text("StirVerstat")
    stir_passport_token = _text("StirPassportToken")
    stir_status = _text("StirStatus")
    caller_city = _text("CallerCity")
    caller_state = _text("CallerState")
    caller_zip = _text("CallerZip")
    caller_country = _text("CallerCountry")
    called_city = _text("CalledCity")
    called_state = _text("CalledState")
    called_zip = _text("CalledZip")
    called_country = _text("CalledCountry")


class RecordingStatusEvent(TwilioEvent):
    """A recording status callback: a call's recording started, is ready, or is absent.

    ``status`` is ``RecordingStatus``: ``in-progress``, ``completed`` or ``absent``.
    ``call_sid`` is the parent call's SID.
    """

    __slots__ = ()

    recording_sid = _text("RecordingSid")
    recording_url = _text("RecordingUrl")
    recording_status = _text("RecordingStatus")
    recording_duration = _int("RecordingDuration")
    """Seconds recorded."""
    recording_channels = _int("RecordingChannels")
    recording_start_time = _time("RecordingStartTime")
    recording_source = _text("RecordingSource")
    """What started it: ``OutboundAPI``, ``StartCallRecordingAPI``, ``RecordVerb``, ..."""
    recording_track = _text("RecordingTrack")
    """``inbound``, ``outbound`` or ``both``."""
    call_sid = _text("CallSid")
    conference_sid = _text("ConferenceSid")


#: The longest ``Payload`` a Debugger event parses (Twilio's are a few kilobytes).
_MAX_PAYLOAD_CHARS = 256 * 1024


class DebuggerEvent(TwilioEvent):
    """An alert of the Console Debugger: an error or a warning of the account.

    ``status`` is ``Level`` as sent (``ERROR``, ``WARNING``), ``sid`` the alert's
    ``Sid`` (``NO...``).  :attr:`payload` is ``Payload`` parsed from JSON:
    ``resource_sid``, ``service_sid``, ``error_code``, ``more_info`` and, for a
    failed webhook, ``webhook`` (its request and response).
    """

    __slots__ = ()

    level = _text("Level")
    parent_account_sid = _text("ParentAccountSid")
    timestamp = _iso_time("Timestamp")
    """When the alert was raised (ISO 8601 in the request)."""
    payload_type = _text("PayloadType")

    @property
    def payload(self) -> Mapping[str, object] | None:
        """``Payload`` parsed; ``None`` when absent, too long, or not a JSON object."""
        return _mapping(_parse_json(self._first.get("Payload")))

    @property
    def resource_sid(self) -> str | None:
        """The SID of what the alert is about: a call, a message, ..."""
        value = (self.payload or {}).get("resource_sid")
        return value if isinstance(value, str) else None

    @property
    def service_sid(self) -> str | None:
        """The SID of the service involved (a Messaging Service, ...), when there is one."""
        value = (self.payload or {}).get("service_sid")
        return value if isinstance(value, str) else None

    @property
    def error_code(self) -> int | None:  # type: ignore[override]
        """The alert's Twilio error code (``Payload``'s ``error_code``), e.g. ``11200``."""
        value = (self.payload or {}).get("error_code")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return _as_int(value) if isinstance(value, str) else None

    @property
    def alert_code(self) -> int | None:
        """The same as :attr:`error_code`."""
        return self.error_code

    @property
    def more_info(self) -> Mapping[str, object] | None:
        """What the product said about the alert (``msg``, ``url``, ...), when it said it."""
        return _mapping((self.payload or {}).get("more_info"))

    @property
    def webhook(self) -> Mapping[str, object] | None:
        """For a webhook that failed: its ``type``, ``request`` and ``response``."""
        return _mapping((self.payload or {}).get("webhook"))

    @property
    def webhook_request(self) -> Mapping[str, object] | None:
        """The failed webhook's request: ``method``, ``url``, ``headers``, ``parameters``."""
        return _mapping((self.webhook or {}).get("request"))

    @property
    def webhook_response(self) -> Mapping[str, object] | None:
        """What Twilio got back from it: ``status_code``, ``headers``, ``body``."""
        return _mapping((self.webhook or {}).get("response"))


def _not_json(name: str) -> NoReturn:
    raise ValueError(name)  # NaN, Infinity: Python's json takes them, JSON does not


def _parse_json(text: str | None) -> object:
    """*text* parsed as strict JSON; ``None`` when absent, too long or not JSON.

    Not JSON either: ``NaN`` and infinities, and a ``\\uD800``-style escape of a
    lone surrogate, which no text can hold (and which would fail a reply that
    quotes it).
    """
    if text is None or len(text) > _MAX_PAYLOAD_CHARS:
        return None
    try:
        value = json.loads(text, parse_constant=_not_json)
        if "\\u" in text:  # only an escape can make a lone surrogate
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return None
    return value


def _mapping(value: object) -> Mapping[str, object] | None:
    return MappingProxyType(value) if isinstance(value, dict) else None


def _as_epoch_or_date(value: str) -> datetime | None:
    # TaskRouter's Timestamp: seconds since the epoch (its format is not documented;
    # ISO 8601 and RFC 2822 are read too).
    text = value.strip()
    if text.isascii() and text.isdigit():
        try:
            return datetime.fromtimestamp(int(text), UTC) if len(text) <= 12 else None
        except (OverflowError, OSError, ValueError):  # past year 9999
            return None
    return _as_iso_datetime(text) or _as_datetime(text)


# -- voice: the results of TwiML verbs, and the callbacks they make --------------


class GatherEvent(CallStatusEvent):
    """What a caller entered at a ``<Gather>``: posted to its ``action`` URL.

    Answer it with the TwiML the call goes on with (``None`` is an empty
    ``<Response/>``, which ends the call).  With ``actionOnEmptyResult`` it
    comes with neither ``digits`` nor ``speech_result``.
    """

    __slots__ = ()

    digits = _text("Digits")
    """The keys pressed, without the ``finishOnKey`` key."""
    speech_result = _text("SpeechResult")
    confidence = _float("Confidence")
    """0.0 to 1.0, with speech; Twilio does not promise it is sent."""
    finished_on_key = _text("FinishedOnKey")


class GatherPartialEvent(CallStatusEvent):
    """An interim transcript of ``<Gather partialResultCallback>``: no TwiML is read."""

    __slots__ = ()

    unstable_speech_result = _text("UnstableSpeechResult")
    stable_speech_result = _text("StableSpeechResult")
    stability = _float("Stability")


class TranscriptionEvent(CallStatusEvent):
    """A ``<Record transcribeCallback>``: the transcript of a recording, or its failure.

    ``status`` is ``TranscriptionStatus`` (``completed``, ``failed``), ``sid``
    the ``TranscriptionSid``.  The call goes on regardless of the answer.
    """

    __slots__ = ()

    transcription_sid = _text("TranscriptionSid")
    transcription_text = _text("TranscriptionText")
    transcription_status = _text("TranscriptionStatus")
    transcription_url = _text("TranscriptionUrl")


class DialEvent(CallStatusEvent):
    """How a ``<Dial>`` ended: posted to its ``action`` URL; answer with TwiML.

    ``status`` is ``DialCallStatus`` (``completed``, ``answered``, ``busy``,
    ``no-answer``, ``failed``, ``canceled``).
    """

    __slots__ = ()

    dial_call_status = _text("DialCallStatus")
    dial_call_sid = _text("DialCallSid")
    """The dialled leg's SID (not after dialling a conference)."""
    dial_call_duration = _int("DialCallDuration")
    dial_bridged = _bool("DialBridged")
    """Whether the caller was connected to the destination."""
    queue_sid = _text("QueueSid")
    queue_time = _int("QueueTime")


class RecordEvent(CallStatusEvent):
    """A ``<Record>`` finished: posted to its ``action`` URL; answer with TwiML.

    ``recording_url`` may not be fetchable yet: a recording status callback
    says when it is.
    """

    __slots__ = ()

    digits = _text("Digits")
    """The key that ended the recording, or ``hangup``."""


class EnqueueEvent(CallStatusEvent):
    """A caller left an ``<Enqueue>`` queue: posted to its ``action`` URL; answer with TwiML.

    ``status`` is ``QueueResult`` (``bridged``, ``hangup``, ``leave``,
    ``redirected``, ``queue-full``, ``error``, ``system-error``, ...).
    """

    __slots__ = ()

    queue_result = _text("QueueResult")
    queue_sid = _text("QueueSid")
    queue_time = _int("QueueTime")
    """Seconds the caller waited (only when actually enqueued)."""


class QueueWaitEvent(CallStatusEvent):
    """``<Enqueue waitUrl>``: what a waiting caller hears, asked again whenever it runs out.

    Answer with TwiML of ``<Play>``, ``<Say>``, ``<Pause>``, ``<Gather>``,
    ``<Redirect>``, ``<Leave>`` or ``<Hangup>``.
    """

    __slots__ = ()

    queue_position = _int("QueuePosition")
    queue_sid = _text("QueueSid")
    queue_time = _int("QueueTime")
    avg_queue_time = _int("AvgQueueTime")
    current_queue_size = _int("CurrentQueueSize")
    max_queue_size = _int("MaxQueueSize")


class DequeueEvent(CallStatusEvent):
    """``<Queue url>``: a queued caller is about to be bridged to whoever dequeued them.

    ``call_sid`` is the queued caller's call; answer with TwiML of ``<Play>``,
    ``<Say>``, ``<Pause>`` or ``<Redirect>``, which the caller hears first.
    """

    __slots__ = ()

    queue_sid = _text("QueueSid")
    queue_time = _int("QueueTime")
    dequeing_call_sid = _text("DequeingCallSid")
    """The call that dequeued the caller (Twilio's spelling)."""


class _PaymentFields(CallStatusEvent):
    __slots__ = ()

    payment_method = _text("PaymentMethod")
    payment_card_number = _text("PaymentCardNumber")
    """Masked, as ``xxxx-xxxxxx-x4001``."""
    payment_card_type = _text("PaymentCardType")
    expiration_date = _text("ExpirationDate")
    """``MMYY``."""
    security_code = _text("SecurityCode")
    """Redacted."""
    payment_card_postal_code = _text("PaymentCardPostalCode")
    bank_account_number = _text("BankAccountNumber")
    bank_routing_number = _text("BankRoutingNumber")
    bank_account_type = _text("BankAccountType")


class PayEvent(_PaymentFields):
    """How a ``<Pay>`` ended: posted to its ``action`` URL; answer with TwiML.

    ``status`` is ``Result`` (``success``, ``too-many-failed-attempts``,
    ``caller-hung-up``, ``payment-connector-error``, ...).
    """

    __slots__ = ()

    result = _text("Result")
    profile_id = _text("ProfileId")
    payment_token = _text("PaymentToken")
    payment_confirmation_code = _text("PaymentConfirmationCode")
    payment_error = _text("PaymentError")
    pay_error_code = _int("PayErrorCode")
    connector_error = _text("ConnectorError")


class PayStatusEvent(_PaymentFields):
    """``<Pay statusCallback>``: the caller moved to another stage of a payment.

    ``status`` is ``For``, the stage (``payment-card-number``,
    ``expiration-date``, ``security-code``, ``postal-code``,
    ``payment-processing``, ...).
    """

    __slots__ = ()

    for_ = _text("For")
    error_type = _text("ErrorType")
    attempt = _int("Attempt")


class MachineDetectionEvent(CallStatusEvent):
    """The asynchronous answering machine detection result (``AsyncAmdStatusCallback``).

    ``status`` is ``AnsweredBy`` (``human``, ``machine_start``,
    ``machine_end_beep``, ``fax``, ``unknown``, ...).  The call is already
    running its TwiML: change it with Twilio's API, not with the answer.
    """

    __slots__ = ()


# -- conferences ---------------------------------------------------------------


class ConferenceEvent(TwilioEvent):
    """A conference status callback: the conference started or ended, a participant
    joined, left, was muted, held, spoke, ...

    ``status`` is ``StatusCallbackEvent`` (``participant-join``, ...), ``sid``
    the ``ConferenceSid``.  Events of one conference are ordered by their
    ``SequenceNumber``: one overtaken by a later one is :attr:`stale`.
    """

    __slots__ = ()

    conference_sid = _text("ConferenceSid")
    friendly_name = _text("FriendlyName")
    status_callback_event = _text("StatusCallbackEvent")
    sequence_number = _int("SequenceNumber")
    timestamp = _time("Timestamp")
    call_sid = _text("CallSid")
    participant_label = _text("ParticipantLabel")
    muted = _bool("Muted")
    hold = _bool("Hold")
    coaching = _bool("Coaching")
    call_sid_to_coach = _text("CallSidToCoach")
    end_conference_on_exit = _bool("EndConferenceOnExit")
    start_conference_on_enter = _bool("StartConferenceOnEnter")
    participant_call_status = _text("ParticipantCallStatus")
    reason_participant_left = _text("ReasonParticipantLeft")
    reason_conference_ended = _text("ReasonConferenceEnded")
    reason = _text("Reason")
    call_sid_ending_conference = _text("CallSidEndingConference")
    participant_label_ending_conference = _text("ParticipantLabelEndingConference")
    reason_announcement_failed = _text("ReasonAnnouncementFailed")
    announce_url = _text("AnnounceUrl")


# -- Conversations ---------------------------------------------------------------

#: The pre-event hooks: Twilio waits for the answer before the action happens.
_PRE_EVENT_SUFFIXES = ("Add", "Update", "Remove")


class ConversationsEvent(TwilioEvent):
    """A Conversations webhook: a conversation, message, participant or user was
    added, updated or removed (post-event), or is about to be (pre-event).

    ``status`` is ``EventType`` (``onMessageAdded``, ``onMessageAdd``, ...).  A
    pre-event waits for its callback's answer: ``None`` lets the action happen,
    a mapping of the fields Twilio lets you change changes it, and raising or
    returning :class:`~twilio_trigger.Reject` blocks it.
    """

    __slots__ = ()

    event_type = _text("EventType")
    source = _text("Source")
    """``SDK`` or ``API``."""
    client_identity = _text("ClientIdentity")
    conversation_sid = _text("ConversationSid")
    chat_service_sid = _text("ChatServiceSid")
    messaging_service_sid = _text("MessagingServiceSid")
    message_sid = _text("MessageSid")
    index = _int("Index")
    """The message's place in its conversation."""
    body = _text("Body")
    author = _text("Author")
    participant_sid = _text("ParticipantSid")
    friendly_name = _text("FriendlyName")
    unique_name = _text("UniqueName")
    state = _text("State")
    identity = _text("Identity")
    role_sid = _text("RoleSid")
    user_sid = _text("UserSid")
    date_created = _iso_time("DateCreated")
    date_updated = _iso_time("DateUpdated")
    date_removed = _iso_time("DateRemoved")
    last_read_message_index = _int("LastReadMessageIndex")
    state_from = _text("StateFrom")
    state_to = _text("StateTo")
    state_updated = _iso_time("StateUpdated")
    reason = _text("Reason")
    """Why the state changed: ``API``, ``TIMER`` or ``EVENT``."""
    delivery_receipt_sid = _text("DeliveryReceiptSid")
    channel_message_sid = _text("ChannelMessageSid")
    delivery_status = _text("Status")
    """``onDeliveryUpdated``: ``sent``, ``delivered``, ``read``, ``failed``, ``undelivered``."""
    message_body = _text("MessageBody")
    is_online = _bool("isOnline")
    is_notifiable = _bool("isNotifiable")

    @property
    def is_pre_event(self) -> bool:
        """True for a pre-event (``onMessageAdd``): Twilio waits to hear whether it may go on."""
        return (self.status or "").endswith(_PRE_EVENT_SUFFIXES)

    @property
    def attributes(self) -> Mapping[str, object] | None:
        """``Attributes`` parsed from JSON; ``None`` when absent or not a JSON object."""
        return _mapping(_parse_json(self._first.get("Attributes")))

    @property
    def media(self) -> tuple[Mapping[str, object], ...]:
        """``Media`` parsed from JSON: one mapping per item (``Sid``, ``ContentType``, ...)."""
        value = _parse_json(self._first.get("Media"))
        if not isinstance(value, list):
            return ()
        return tuple(MappingProxyType(item) for item in value if isinstance(item, dict))

    @property
    def messaging_binding(self) -> Mapping[str, str]:
        """The ``MessagingBinding.*`` parameters, by the name after the dot (``Address``)."""
        prefix = "MessagingBinding."
        return MappingProxyType(
            {
                name[len(prefix) :]: value
                for name, value in self._first.items()
                if name.startswith(prefix)
            }
        )


# -- TaskRouter ------------------------------------------------------------------


class TaskRouterEvent(TwilioEvent):
    """A TaskRouter workspace event: a task, reservation, worker, queue, workflow,
    activity or workspace changed.

    ``status`` is ``EventType`` (``task.created``, ``reservation.accepted``, ...),
    ``sid`` the ``ResourceSid``.  TaskRouter is answered ``204`` at once.
    """

    __slots__ = ()

    event_type = _text("EventType")
    event_description = _text("EventDescription")
    workspace_sid = _text("WorkspaceSid")
    workspace_name = _text("WorkspaceName")
    resource_type = _text("ResourceType")
    resource_sid = _text("ResourceSid")
    timestamp = _Param("Timestamp", _as_epoch_or_date)
    timestamp_ms = _int("TimestampMs")
    task_sid = _text("TaskSid")
    task_age = _int("TaskAge")
    task_priority = _int("TaskPriority")
    task_assignment_status = _text("TaskAssignmentStatus")
    task_canceled_reason = _text("TaskCanceledReason")
    task_completed_reason = _text("TaskCompletedReason")
    task_channel_sid = _text("TaskChannelSid")
    task_channel_unique_name = _text("TaskChannelUniqueName")
    task_queue_sid = _text("TaskQueueSid")
    task_queue_name = _text("TaskQueueName")
    task_queue_target_expression = _text("TaskQueueTargetExpression")
    reservation_sid = _text("ReservationSid")
    worker_sid = _text("WorkerSid")
    worker_name = _text("WorkerName")
    worker_activity_sid = _text("WorkerActivitySid")
    worker_activity_name = _text("WorkerActivityName")
    worker_previous_activity_sid = _text("WorkerPreviousActivitySid")
    worker_time_in_previous_activity = _int("WorkerTimeInPreviousActivity")
    worker_channel_available = _bool("WorkerChannelAvailable")
    worker_channel_available_capacity = _int("WorkerChannelAvailableCapacity")
    workflow_sid = _text("WorkflowSid")
    workflow_name = _text("WorkflowName")
    activity_sid = _text("ActivitySid")
    activity_name = _text("ActivityName")
    activity_available = _bool("ActivityAvailable")

    @property
    def task_attributes(self) -> Mapping[str, object] | None:
        """``TaskAttributes`` parsed from JSON; ``None`` when absent or not an object."""
        return _mapping(_parse_json(self._first.get("TaskAttributes")))

    @property
    def worker_attributes(self) -> Mapping[str, object] | None:
        """``WorkerAttributes`` parsed from JSON; ``None`` when absent or not an object."""
        return _mapping(_parse_json(self._first.get("WorkerAttributes")))


class AssignmentEvent(TaskRouterEvent):
    """A TaskRouter assignment callback: a reservation was made for a worker.

    Its callback may answer within 5 seconds with an instruction, a mapping
    sent as JSON (``{"instruction": "accept"}``, ``dequeue``, ``call``,
    ``redirect``, ``reject``); ``None`` answers an empty 200: accept or reject
    the reservation later with Twilio's API.
    """

    __slots__ = ()
