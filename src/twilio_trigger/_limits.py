"""How fast, and how many at once, a callback's events are dispatched from the inbox.

A :class:`Limit` is written in code (``Limit(rate=5, burst=10)``), in the
``limits`` option's text (``on_delivered: rate=5, burst=10; on_failed:
concurrency=1``), or kept in the inbox by ``twilio-trigger inbox limit`` and
the inspector, where it overrides the option field by field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace

from ._core.kinds import FALLBACK, KINDS
from ._exceptions import ConfigurationError

__all__ = ["LIMIT_FIELDS", "Limit", "limits_text", "parse_limits"]

#: The fields of a limit, as its text names them.
LIMIT_FIELDS = ("concurrency", "rate", "burst", "breaker", "cooldown")

_MAX_COUNT = 100_000
_MAX_RATE = 1_000_000.0
_MAX_COOLDOWN = 7 * 86400.0
_MAX_TEXT = 10_000  # characters of a limits option


@dataclass(frozen=True, slots=True)
class Limit:
    """How one callback's events are dispatched from the inbox, by every process of it.

    * *concurrency*: at most this many of them run at once (``0``: no limit);
    * *rate*: at most this many start per second on average (``0``: no limit),
      and up to *burst* (default 1) at once after a quiet spell: in any one
      second, at most *rate* + *burst* start;
    * *breaker*: after this many failures in a row its breaker opens (``0``:
      never): its events wait *cooldown* seconds, then one is tried; its
      success closes the breaker, its failure opens it again.

    A field left ``None`` takes its value from below: the ``limits`` option
    under a limit kept in the inbox, the listener's ``breaker_failures`` and
    ``breaker_cooldown`` under both.  Events held back wait in the inbox: they
    are acknowledged and stored, and no attempt of theirs is counted.
    """

    concurrency: int | None = None
    rate: float | None = None
    burst: int | None = None
    breaker: int | None = None
    cooldown: float | None = None

    def __post_init__(self) -> None:
        for name in ("concurrency", "burst", "breaker"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"a limit's {name} is a whole number, got {value!r}")
            low = 1 if name == "burst" else 0
            if not low <= value <= _MAX_COUNT:
                raise ValueError(
                    f"a limit's {name} is between {low} and {_MAX_COUNT}, got {value!r}"
                )
        for name, most in (("rate", _MAX_RATE), ("cooldown", _MAX_COOLDOWN)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"a limit's {name} is a number, got {value!r}")
            low_ok = value > 0 if name == "cooldown" else value >= 0
            if not (low_ok and math.isfinite(value) and value <= most):
                what = "more than 0" if name == "cooldown" else "0 or more"
                raise ValueError(f"a limit's {name} is {what}, at most {most:g}, got {value!r}")
            object.__setattr__(self, name, float(value))

    @classmethod
    def parse(cls, text: str) -> Limit:
        """The limit *text* writes: ``rate=5, burst=10, concurrency=2, breaker=5,
        cooldown=30`` (any of them, in any order).  ``ValueError`` otherwise."""
        values: dict[str, int | float] = {}
        for part in text.replace(",", " ").split():
            name, equals, value = part.partition("=")
            name = name.strip().lower()
            if not equals or name not in LIMIT_FIELDS:
                raise ValueError(
                    f"a limit is written as name=value with names among "
                    f"{', '.join(LIMIT_FIELDS)}; got {part[:40]!r}"
                )
            if name in values:
                raise ValueError(f"a limit names {name} twice")
            try:
                values[name] = float(value) if name in ("rate", "cooldown") else int(value)
            except ValueError:
                raise ValueError(f"a limit's {name} is a number, got {value[:40]!r}") from None
        if not values:
            raise ValueError("a limit names at least one of " + ", ".join(LIMIT_FIELDS))
        return cls(**values)  # type: ignore[arg-type]

    def text(self) -> str:
        """The limit as :meth:`parse` reads it (its fields that are set)."""
        parts = []
        for name in LIMIT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                shown = f"{value:g}" if isinstance(value, float) else str(value)
                parts.append(f"{name}={shown}")
        return ", ".join(parts)

    def over(self, below: Limit) -> Limit:
        """This limit, its unset fields taken from *below*."""
        own = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(below, **{name: value for name, value in own.items() if value is not None})

    def json(self) -> str:
        """The limit as the inbox keeps it."""
        return json.dumps(
            {name: getattr(self, name) for name in LIMIT_FIELDS if getattr(self, name) is not None},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Limit:
        """The limit :meth:`json` wrote.  ``ValueError`` when it is not one."""
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError("not a limit (not JSON)") from None
        if not isinstance(document, dict) or not set(document) <= set(LIMIT_FIELDS):
            raise ValueError("not a limit (unknown fields)")
        return cls(**document)

    @property
    def empty(self) -> bool:
        """Whether it holds nothing back: no concurrency or rate limit, no breaker."""
        return not self.concurrency and not self.rate and not self.breaker


def parse_limits(value: object, source: str) -> tuple[tuple[str, Limit], ...]:
    """The ``limits`` option: callback names, each with its :class:`Limit`.

    Takes a mapping (``{"on_delivered": Limit(rate=5)}``, a limit's text as a
    value also works), pairs, or a text such as ``on_delivered: rate=5,
    burst=10; on_failed: concurrency=1``.  The callback names must be ones an
    event goes to (``on_delivered``, ``on_event``...).
    """
    pairs: Iterable[tuple[object, object]]
    if isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise ConfigurationError(f"{source} is longer than {_MAX_TEXT} characters")
        pairs = []
        for part in value.split(";"):
            if not part.strip():
                continue
            callback, colon, text = part.partition(":")
            if not colon:
                raise ConfigurationError(
                    f"{source} is written as callback: name=value, ...; callback: ... "
                    f"(e.g. on_delivered: rate=5, burst=10), got {part.strip()[:60]!r}"
                )
            pairs.append((callback.strip(), text))
    elif isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, Iterable):
        pairs = list(value)
    else:
        raise ConfigurationError(f"{source} must map callback names to limits, got {value!r}")
    known = {name for kind in (*KINDS, FALLBACK) for name in kind.callbacks}
    found: dict[str, Limit] = {}
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ConfigurationError(f"{source} must map callback names to limits")
        name: object = pair[0]
        limit: object = pair[1]
        if not isinstance(name, str) or name not in known:
            raise ConfigurationError(
                f"{source}: {str(name)[:40]!r} is not a callback an event goes to "
                f"(such as on_delivered, on_failed, on_event)"
            )
        try:
            if isinstance(limit, str):
                limit = Limit.parse(limit)
            elif isinstance(limit, Mapping):
                limit = Limit(**limit)
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"{source}: {name}: {error}") from None
        if not isinstance(limit, Limit):
            raise ConfigurationError(f"{source}: {name}: a Limit or its text, got {limit!r}")
        if name in found:
            raise ConfigurationError(f"{source} names {name} twice")
        found[name] = limit
    return tuple(sorted(found.items()))


def limits_text(limits: Iterable[tuple[str, Limit]]) -> str:
    """The ``limits`` option as its variable writes it."""
    return "; ".join(f"{name}: {limit.text()}" for name, limit in limits)
