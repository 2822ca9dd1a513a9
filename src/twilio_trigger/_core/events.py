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
    "CallStatusEvent",
    "DebuggerEvent",
    "EventKind",
    "Media",
    "RecordingStatusEvent",
    "SmsStatusChangeEvent",
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
    """What every Twilio webhook event has; see the two concrete kinds below.

    ``event["Name"]`` is a parameter by Twilio's own name (the first value when
    it was repeated); ``event.raw`` maps every name received to all its values.
    """

    __slots__ = ("_first", "_pairs", "_previous", "_raw", "_sid", "_stale", "_status")

    kind: ClassVar[EventKind]
    _pairs: tuple[tuple[str, str], ...]
    _first: dict[str, str]
    _raw: Mapping[str, tuple[str, ...]] | None
    _previous: str | None
    _stale: bool
    _sid: str | None
    _status: str | None

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
        object.__setattr__(self, "_sid", self._pick(self._sid_names))
        object.__setattr__(self, "_status", self._pick(self._status_names))

    @classmethod
    def _from_parsed(cls, pairs: Sequence[tuple[str, str]], first: dict[str, str]) -> Self:
        # The listener's fast path: the routing step already built `first`.
        event = object.__new__(cls)
        object.__setattr__(event, "_pairs", tuple(pairs))
        object.__setattr__(event, "_first", first)
        object.__setattr__(event, "_raw", None)
        object.__setattr__(event, "_previous", None)
        object.__setattr__(event, "_stale", False)
        object.__setattr__(event, "_sid", event._pick(cls._sid_names))
        object.__setattr__(event, "_status", event._pick(cls._status_names))
        return event

    def _place(self, previous_status: str | None, stale: bool) -> None:
        # Set once by the listener, before the event reaches a callback.
        object.__setattr__(self, "_previous", previous_status)
        object.__setattr__(self, "_stale", stale)

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
        text = self._first.get("Payload")
        if text is None or len(text) > _MAX_PAYLOAD_CHARS:
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
        return MappingProxyType(value) if isinstance(value, dict) else None

    @property
    def resource_sid(self) -> str | None:
        """The SID of what the alert is about: a call, a message, ..."""
        value = (self.payload or {}).get("resource_sid")
        return value if isinstance(value, str) else None

    @property
    def alert_code(self) -> int | None:
        """The alert's Twilio error code (``Payload``'s ``error_code``), e.g. ``11200``."""
        value = (self.payload or {}).get("error_code")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return _as_int(value) if isinstance(value, str) else None
