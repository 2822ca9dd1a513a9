"""The search of the list (``/``, ``/api/events``) and one SID's timeline (``/sids/<SID>``).

A query names the filters of :class:`~twilio_trigger.inbox.Search` (``sid``,
``number``, ``kind``, ``status``, ``outcome``, ``callback``, ``error_code``,
``since``, ``until``, ``text``) and the page (``limit``, ``before``), the same
in the page's address and in the API's, so that a link to a search can be
shared.  Anything that cannot be used is a :class:`ValueError` that says why:
a 400 from the API, a message on the page.

The outcomes are the list's (``handled``, ``retrying``, ``dead_letter``...),
plus ``failing`` (retrying or a dead letter) and ``failed`` (at least one
attempt failed, whatever became of it).  Those the inbox cannot tell alone are
checked on the rows, a bounded number of entries at a time.

A timeline is every entry of one SID, oldest first, each with the time since the
one before and whether it was stale: ranked below a status that arrived before it
(:mod:`twilio_trigger._core.order`), worked out here from the order the inbox
received them in.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from .._core.order import Position, rank_of, settle
from .._core.routing import event_of_kind
from ..inbox import Entry, Inbox, State
from ..inbox._search import FAILED, Search
from ._activity import Activity
from ._rows import Label, limit, row, shown, stamp

__all__ = [
    "FIELDS",
    "MAX_SID",
    "MAX_TIMELINE",
    "OUTCOMES",
    "found",
    "gap",
    "is_sid",
    "problem",
    "search_of",
    "timeline",
    "values",
]

#: The filters a query may name, in the order the page shows them.
FIELDS = (
    "sid", "number", "kind", "status", "outcome", "callback", "error_code", "since", "until",
    "text",
)  # fmt: skip
#: The longest SID a path may name (Twilio's are 34 characters).
MAX_SID = 64
#: The most entries a timeline shows (the latest ones, when a SID has more).
MAX_TIMELINE = 1000
#: The most rounds of the inbox's search one answer makes (each up to a page).
_ROUNDS = 20
#: The longest value of a field the page shows back in its form.
_MAX_VALUE = 200
_MAX_TIME = 40
_MAX_BEFORE = 18  # digits: an id fits in 63 bits

#: Each outcome of the list: the inbox state (or "failed") the search asks for, and
#: the row outcomes kept of what it finds (``None``: all of them).
OUTCOMES: dict[str, tuple[State | str | None, frozenset[str] | None]] = {
    "handled": (State.DONE, frozenset({"handled"})),
    "failing": (FAILED, frozenset({"retrying", "dead_letter"})),
    "failed": (FAILED, None),
    "retrying": (State.PENDING, frozenset({"retrying"})),
    "dead_letter": (State.DEAD, None),
    "pending": (State.PENDING, frozenset({"pending"})),
    "running": (State.RUNNING, None),
}


def _one(query: Mapping[str, list[str]], name: str) -> str:
    return (query.get(name) or [""])[0].strip()


def values(query: Mapping[str, list[str]]) -> dict[str, str]:
    """The filters of *query* as given (bounded), to show back in the page's form."""
    return {name: _one(query, name)[:_MAX_VALUE] for name in FIELDS}


def is_sid(text: str) -> bool:
    """Whether *text* can be a SID: ASCII letters and digits, at most :data:`MAX_SID`."""
    return 0 < len(text) <= MAX_SID and text.isascii() and text.isalnum()


def _time(field: str, text: str) -> float | None:
    """A time of the query: seconds since the epoch, or an ISO 8601 date or date
    and time (``2024-05-01``, ``2024-05-01 12:30``, ``...Z`` or with an offset;
    without one it is UTC, as the pages show times)."""
    if not text:
        return None
    wrong = (
        f"{field} must be a date and time such as 2024-05-01 12:30 (UTC), "
        "or seconds since the epoch"
    )
    if len(text) > _MAX_TIME:
        raise ValueError(wrong)
    if text.isascii() and text.replace(".", "", 1).isdigit():
        seconds = float(text)
        if not math.isfinite(seconds):
            raise ValueError(wrong)
        return seconds
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(wrong) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        seconds = moment.timestamp()
    except (OverflowError, ValueError):  # a year 1 a timezone away from the epoch's
        raise ValueError(wrong) from None
    if seconds < 0:
        raise ValueError(f"{field} must be 1970-01-01 or later")
    return seconds


def search_of(query: Mapping[str, list[str]]) -> tuple[Search, frozenset[str] | None]:
    """The search *query* asks for, and the row outcomes to keep (``None``: all).
    ``ValueError`` that says what is wrong."""
    outcome = _one(query, "outcome").lower()
    if outcome and outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome[:40]!r}")
    state, kept = OUTCOMES.get(outcome, (None, None))
    search = Search(
        sid=_one(query, "sid"),
        number=_one(query, "number"),
        kind=_one(query, "kind"),
        # Twilio writes its statuses in lower case: any case finds them.
        status=_one(query, "status").lower(),
        outcome=state,
        callback=_one(query, "callback"),
        error_code=_one(query, "error_code"),
        since=_time("since", _one(query, "since")),
        until=_time("until", _one(query, "until")),
        text=_one(query, "text"),
    )
    return search, kept


def problem(query: Mapping[str, list[str]]) -> str | None:
    """What is wrong with the filters and the page *query* names, or ``None``."""
    try:
        search_of(query)
        _before(query)
    except ValueError as error:
        return str(error)
    return None


def _before(query: Mapping[str, list[str]]) -> int | None:
    text = _one(query, "before")
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_BEFORE and int(text) > 0):
        raise ValueError("before must be the id of an event (a positive whole number)")
    return int(text)


async def found(
    inbox: Inbox, activity: Activity, label: Label, query: Mapping[str, list[str]]
) -> dict[str, Any]:
    """What ``/api/events`` answers for *query*: ``events`` (rows, newest first),
    ``next_before`` (the ``before`` of the next page, or ``None``) and
    ``scanned_all`` (``False`` when the inbox stopped looking before its oldest
    entry: the next page goes on from there).  ``ValueError`` for a bad query."""
    search, kept = search_of(query)
    before = _before(query)
    most = limit(_one(query, "limit"))
    rows: list[dict[str, object]] = []
    next_before: int | None = None
    scanned_all = True
    for _ in range(_ROUNDS):
        page = await inbox.search(search, limit=most, before_id=before)
        for entry in page.entries:
            shown_row = row(entry, activity.attempts(entry.id), label)
            if kept is None or shown_row["outcome"] in kept:
                rows.append(shown_row)
                if len(rows) == most:
                    break
        if len(rows) == most:
            last = rows[-1]["id"]
            more = page.next_before_id is not None or page.entries[-1].id != last
            next_before = int(str(last)) if more else None
            break
        if page.next_before_id is None:
            scanned_all = page.scanned_all
            break
        before = page.next_before_id
    else:  # looked at enough for one answer: the next page goes on from here
        next_before, scanned_all = before, False
    return {"events": rows, "next_before": next_before, "scanned_all": scanned_all}


async def timeline(inbox: Inbox, activity: Activity, label: Label, sid: str) -> dict[str, Any]:
    """Every event of *sid* (the latest :data:`MAX_TIMELINE`), oldest first: each
    row with ``after_previous_s`` (seconds since the one before) and ``stale``;
    the ``final_status`` (the furthest in Twilio's order, not the last to arrive)."""
    entries: list[Entry] = []
    search, before = Search(sid=sid), None
    complete = True
    for _ in range(_ROUNDS * 5):
        page = await inbox.search(search, limit=500, before_id=before)
        entries.extend(page.entries)
        if page.next_before_id is None:
            break
        if len(entries) >= MAX_TIMELINE:
            complete = False
            break
        before = page.next_before_id
    else:
        complete = False
    entries = entries[:MAX_TIMELINE]
    entries.sort(key=lambda entry: (entry.received_at, entry.id))
    known: Position | None = None
    previous: float | None = None
    rows: list[dict[str, object]] = []
    for entry in entries:
        shown_row = row(entry, activity.attempts(entry.id), label)
        event = event_of_kind(entry.kind, entry.params)
        rank = None if event is None else rank_of(event)
        stale = False
        if rank is not None and entry.status is not None:
            standing, moved = settle(known, entry.status, rank)
            stale = standing.stale
            known = moved or known
        after = None if previous is None else round(entry.received_at - previous, 3)
        previous = entry.received_at
        rows.append(
            {**shown_row, "received": shown(entry.received_at), "after_previous_s": after,
             "stale": stale}
        )  # fmt: skip
    final = known.status if known is not None else (entries[-1].status if entries else None)
    return {
        "sid": sid,
        "events": rows,
        "final_status": final,
        "first_at": stamp(entries[0].received_at) if entries else None,
        "last_at": stamp(entries[-1].received_at) if entries else None,
        "complete": complete,
    }


def gap(seconds: object) -> str:
    """The time since the status before, as the timeline shows it: ``+2.1 s``."""
    if not isinstance(seconds, int | float):
        return ""
    if seconds < 60:
        return f"+{seconds:.1f} s"
    if seconds < 3600:
        return f"+{seconds / 60:.1f} min"
    return f"+{seconds / 3600:.1f} h"
