"""Searching the inbox: what to look for (:class:`Search`) and a page of what was found.

Every inbox answers the same :class:`Search` with the same :class:`SearchPage`.
The SQL inboxes turn it into a ``WHERE`` with bound parameters
(:func:`sql_where`); the Redis one walks its newest entries and keeps those
:meth:`Search.matches` accepts.  Both follow the same rules, written once here:

- *number* is a ``From`` or ``To`` parameter, exactly as given; digits alone
  (``15558675309``) also find ``+15558675309``;
- *text* is part of a ``Body`` parameter, with ASCII letters in either case
  (other letters as written, the same in every backend);
- *callback* is the (kind, status) pairs that reach it, the status in Twilio's
  spelling in any case, with spaces around it or not;
- *since* is inclusive and *until* exclusive, on the time the event was received.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._core.kinds import KINDS
from ._model import Entry, State

__all__ = [
    "FAILED",
    "MAX_LIMIT",
    "MAX_TEXT",
    "Search",
    "SearchPage",
    "callback_names",
    "check_page",
    "sql_where",
]

#: The outcome that means "at least one attempt failed", whatever the state now.
FAILED: Literal["failed"] = "failed"
#: The most entries one page holds.
MAX_LIMIT = 500
#: The longest text searched for in a body.
MAX_TEXT = 200
# The longest value each other filter takes: longer is no SID, number or name.
_MAX_SID = 64
_MAX_NUMBER = 64
_MAX_NAME = 80
_MAX_ERROR_CODE = 10

_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(text: str) -> str:
    """*text* with its ASCII letters lower-cased (what every backend can do alike)."""
    return text.translate(_LOWER)


def _callback_table() -> dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]]:
    """Each callback name: the kinds that reach it, with the statuses (folded) that
    do, or ``None`` when every event of the kind goes to it."""
    table: dict[str, dict[str, list[str] | None]] = {}
    for kind in KINDS:
        for value in kind.events or ("",):
            name = kind.callback_for(value)
            if name is None:
                continue
            kinds = table.setdefault(name, {})
            if kind.callback is not None:
                kinds[kind.name] = None
            else:
                statuses = kinds.setdefault(kind.name, [])
                if statuses is not None:
                    statuses.append(_fold(value))
        if kind.callback is not None:
            table.setdefault(kind.callback, {})[kind.name] = None
    return {
        name: tuple(
            (kind, None if values is None else tuple(dict.fromkeys(values)))
            for kind, values in kinds.items()
        )
        for name, kinds in table.items()
    }


_CALLBACKS = _callback_table()
_KIND_NAMES = frozenset(kind.name for kind in KINDS)


def callback_names() -> tuple[str, ...]:
    """Every callback name a search may name, sorted."""
    return tuple(sorted(_CALLBACKS))


def _checked_text(field: str, value: Any, longest: int) -> str | None:
    """*value* as the filter *field* takes it: ``None`` (or blank) for none, else a
    bounded string without control characters; ``ValueError`` otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} must be text, not {type(value).__name__}")
    text: str = value.strip()
    if not text:
        return None
    if len(text) > longest:
        raise ValueError(f"{field} is longer than {longest} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"{field} must not hold control characters")
    if not _encodable(text):
        # A lone surrogate (a JSON "\ud800"): no stored value holds one, and no
        # database driver takes it.
        raise ValueError(f"{field} must be text (it holds a lone surrogate)")
    return text


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _checked_time(field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} must be a time in seconds since the epoch")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{field} must be a finite time in seconds since the epoch")
    return float(value)


def _checked_outcome(value: Any) -> State | Literal["failed"] | None:
    if value is None or isinstance(value, State):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return None
        if text == FAILED:
            return FAILED
        for state in State:
            if state.value == text:
                return state
    shown = repr(value)[:40]
    raise ValueError(
        f"outcome must be one of {', '.join(s.value for s in State)} or failed, not {shown}"
    )


@dataclass(frozen=True, slots=True)
class Search:
    """What to look for in the inbox: every filter given must match (none: every entry).

    Text filters are stripped, and a blank one counts as not given, so that
    the fields of a form or a URL can be passed as they come.  Anything else
    wrong (too long, control characters, an unknown kind or callback) is a
    :class:`ValueError` that says what.
    """

    #: The event's SID, exactly.
    sid: str | None = None
    #: A ``From`` or ``To`` number, exactly as stored (digits alone also find ``+digits``).
    number: str | None = None
    #: The kind, e.g. ``sms`` or ``call``.
    kind: str | None = None
    #: The status as Twilio sent it, exactly, e.g. ``delivered``.
    status: str | None = None
    #: A :class:`State` (or its name), or ``"failed"``: at least one attempt failed.
    #: Made a :class:`State` or ``"failed"`` whatever the case it was given in.
    outcome: State | str | None = None
    #: The callback the event goes to, e.g. ``on_failed``.
    callback: str | None = None
    #: The ``ErrorCode`` parameter, exactly, e.g. ``30003``.
    error_code: str | None = None
    #: Received at or after this time (seconds since the epoch).
    since: float | None = None
    #: Received before this time.
    until: float | None = None
    #: Part of the ``Body`` parameter (ASCII letters in either case).
    text: str | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        put("sid", _checked_text("sid", self.sid, _MAX_SID))
        put("number", _checked_text("number", self.number, _MAX_NUMBER))
        kind = _checked_text("kind", self.kind, _MAX_NAME)
        if kind is not None and kind not in _KIND_NAMES:
            raise ValueError(
                f"kind must be one of {', '.join(sorted(_KIND_NAMES))}, not {kind[:40]!r}"
            )
        put("kind", kind)
        put("status", _checked_text("status", self.status, _MAX_NAME))
        put("outcome", _checked_outcome(self.outcome))
        callback = _checked_text("callback", self.callback, _MAX_NAME)
        if callback is not None and callback not in _CALLBACKS:
            raise ValueError(
                f"callback {callback[:40]!r} is not one an event goes to (such as on_failed "
                f"or on_delivered)"
            )
        put("callback", callback)
        code = _checked_text("error_code", self.error_code, _MAX_ERROR_CODE)
        if code is not None and not (code.isascii() and code.isdigit()):
            raise ValueError(f"error_code must be digits, such as 30003, not {code!r}")
        put("error_code", code)
        since = _checked_time("since", self.since)
        until = _checked_time("until", self.until)
        if since is not None and until is not None and since >= until:
            raise ValueError("since must be before until")
        put("since", since)
        put("until", until)
        text = self.text
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise ValueError(f"text is longer than {MAX_TEXT} characters")
        put("text", _checked_text("text", text, MAX_TEXT))

    # -- the rules, for inboxes that filter in Python --------------------------------
    def numbers(self) -> tuple[str, ...]:
        """The ``From``/``To`` values that *number* finds."""
        if self.number is None:
            return ()
        if self.number.isascii() and self.number.isdigit():
            return (self.number, "+" + self.number)
        return (self.number,)

    def callback_kinds(self) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
        """The kinds that reach *callback*, each with the statuses (ASCII letters
        lower-cased) that do, or ``None`` when all of them do."""
        return () if self.callback is None else _CALLBACKS[self.callback]

    def matches(self, entry: Entry) -> bool:
        """Whether *entry* is one this search finds (the rules every inbox follows)."""
        if self.sid is not None and entry.sid != self.sid:
            return False
        if self.kind is not None and entry.kind != self.kind:
            return False
        if self.status is not None and entry.status != self.status:
            return False
        if self.outcome == FAILED:
            if not entry.last_error:
                return False
        elif self.outcome is not None and entry.state is not self.outcome:
            return False
        if self.since is not None and not entry.received_at >= self.since:
            return False
        if self.until is not None and not entry.received_at < self.until:
            return False
        if self.callback is not None and not self._reaches_callback(entry):
            return False
        if self.number is not None:
            numbers = self.numbers()
            if not any(n in ("From", "To") and v in numbers for n, v in entry.params):
                return False
        if self.error_code is not None and ("ErrorCode", self.error_code) not in entry.params:
            return False
        if self.text is not None:
            needle = _fold(self.text)
            if not any(n == "Body" and needle in _fold(v) for n, v in entry.params):
                return False
        return True

    def _reaches_callback(self, entry: Entry) -> bool:
        status = _fold((entry.status or "").strip(" "))
        for kind, statuses in self.callback_kinds():
            if entry.kind == kind and (statuses is None or status in statuses):
                return True
        return False


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of what a search found, newest first."""

    entries: tuple[Entry, ...]
    #: The ``before_id`` that asks for the next page; ``None`` when there is none.
    next_before_id: int | None
    #: ``False`` when the inbox stopped looking before the oldest entry (it looks
    #: at a bounded number of entries per page, as the Redis inbox does): the next
    #: page, from :attr:`next_before_id`, goes on where it stopped.
    scanned_all: bool = True


def check_page(limit: Any, before_id: Any) -> None:
    """``ValueError`` unless *limit* is 1 to :data:`MAX_LIMIT` and *before_id* is
    ``None`` or a positive id."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    if before_id is not None and (
        isinstance(before_id, bool) or not isinstance(before_id, int) or before_id < 1
    ):
        raise ValueError("before_id must be a positive entry id")


def page_of(found: Sequence[Entry], limit: int) -> SearchPage:
    """The page of up to *limit* entries out of *found* (fetched with one more, to
    tell whether another page follows)."""
    entries = tuple(found[:limit])
    more = len(found) > limit
    return SearchPage(entries, entries[-1].id if more and entries else None)


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# The [name, value] pairs of a row's parameters, as columns n and v.  PostgreSQL's
# jsonb takes no NUL, which the stored JSON may hold escaped: read as U+FFFD.
_SQLITE_PAIRS = (
    "SELECT json_extract(value, '$[0]') AS n, json_extract(value, '$[1]') AS v "
    "FROM json_each(params)"
)
_POSTGRES_PAIRS = (
    "SELECT e ->> 0 AS n, e ->> 1 AS v FROM "
    "jsonb_array_elements(replace(params, '\\u0000', '\\ufffd')::jsonb) AS e"
)


def sql_where(search: Search, before_id: int | None, *, postgres: bool) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (``""`` when none) of an SQL inbox's search, and its
    arguments: every value is bound (``?`` for SQLite, ``%s`` for PostgreSQL),
    never written into the SQL.

    *number*, *error_code* and *text* read the parameters' JSON row by row: a
    search with them scans the entries the other filters leave (newest first,
    stopping at the page's end).
    """
    mark = "%s" if postgres else "?"
    clauses: list[str] = []
    args: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        clauses.append(clause)
        args.extend(values)

    def marks(count: int) -> str:
        return ", ".join([mark] * count)

    def fold(expression: str) -> str:
        # SQLite's lower() folds ASCII letters only; PostgreSQL's folds others too.
        if postgres:
            return f"translate({expression}, '{_UPPER}', '{_UPPER.lower()}')"
        return f"lower({expression})"

    def pairs(condition: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM ({_POSTGRES_PAIRS if postgres else _SQLITE_PAIRS}) "  # noqa: S608 - values are bound
            f"AS p WHERE {condition})"
        )

    if before_id is not None:
        add(f"id < {mark}", before_id)
    if search.sid is not None:
        add(f"sid = {mark}", search.sid)
    if search.kind is not None:
        add(f"kind = {mark}", search.kind)
    if search.status is not None:
        add(f"status = {mark}", search.status)
    if search.outcome == FAILED:
        add("last_error <> ''")
    elif isinstance(search.outcome, State):
        add(f"state = {mark}", search.outcome.value)
    if search.since is not None:
        add(f"received_at >= {mark}", search.since)
    if search.until is not None:
        add(f"received_at < {mark}", search.until)
    if search.callback is not None:
        ways: list[str] = []
        for kind, statuses in search.callback_kinds():
            args.append(kind)
            if statuses is None:
                ways.append(f"kind = {mark}")
            else:
                ways.append(
                    f"(kind = {mark} AND {fold('trim(status)')} IN ({marks(len(statuses))}))"
                )
                args.extend(statuses)
        clauses.append("(" + " OR ".join(ways) + ")")
    if search.number is not None:
        numbers = search.numbers()
        add(pairs(f"n IN ('From', 'To') AND v IN ({marks(len(numbers))})"), *numbers)
    if search.error_code is not None:
        add(pairs(f"n = 'ErrorCode' AND v = {mark}"), search.error_code)
    if search.text is not None:
        contains = "strpos" if postgres else "instr"
        add(pairs(f"n = 'Body' AND {contains}({fold('v')}, {mark}) > 0"), _fold(search.text))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args
