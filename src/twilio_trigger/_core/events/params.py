"""Reading Twilio's parameters: the descriptors behind the events' attributes.

``_Param`` is a read-only attribute that reads one parameter by Twilio's name and
converts it on access (``_text``, ``_int``, ``_time``, ``_float``, ``_bool``,
``_iso_time``); the converters read an absent or malformed value as ``None`` and
never raise.  Here too: how the parameters given to an event become its pairs, the
bounded, strict parsing of parameters that hold JSON, and ``Media``, one item of an
inbound message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, NoReturn, TypeVar, overload

if TYPE_CHECKING:
    from .base import TwilioEvent


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


#: The longest ``Payload`` a Debugger event parses (Twilio's are a few kilobytes).
_MAX_PAYLOAD_CHARS = 256 * 1024


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
