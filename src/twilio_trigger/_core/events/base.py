"""``TwilioEvent``: what every event has, whatever its kind.

An immutable view over the parameters of one webhook: Twilio's own names
(``event["Name"]``, ``raw``, ``params``), the SID and status its kind's row in the
registry picks, where the request came (``path``, ``query``), its place in its SID's
order (``previous_status``, ``stale``) and the parameters common to all kinds.  Each
kind's event class subclasses it, in the module of its family.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, NoReturn, Self

from .params import Params, _int, _pairs_of, _text

#: A kind's name (``sms``, ``call``, ``recording``, ...): see the registry of kinds.
EventKind = str


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
        object.__setattr__(self, "_status", self._pick(self._status_names) or self._implied())

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
        object.__setattr__(event, "_status", event._pick(cls._status_names) or event._implied())
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
    _implied_status: ClassVar[tuple[tuple[str, ...], str] | None] = None

    def _pick(self, names: tuple[str, ...]) -> str | None:
        first = self._first
        for name in names:
            if value := first.get(name):
                return value
        return None

    def _implied(self) -> str | None:
        # The status of a request that states none, where its kind implies one.
        implied = self._implied_status
        if implied is None:
            return None
        first = self._first
        group, status = implied
        if any(name in first for name in self._status_names):
            return None  # a status named but left blank is not one implied
        return status if all(first.get(name) for name in group) else None

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
