"""Searching the inbox: the same contract on SQLite, Redis and PostgreSQL.

Each test fills a real inbox (a SQLite file, a key prefix of its own on the
shared Redis, a schema of its own in PostgreSQL) with named events and their
decoys, then checks that each filter finds exactly the events it names, that
paging returns every match once, and that hostile values find nothing they
should not and raise nothing but ``ValueError``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.inbox_backends import BACKENDS, Session, backend_of
from tests.postgres_support import pg_schema, postgres_database
from tests.redis_support import MEMORY, prefix, redis_url
from twilio_trigger.inbox import Entry, Inbox, Search, SearchPage, State, _redis_admin
from twilio_trigger.inbox.redis import RedisInbox

__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest


@pytest.fixture(params=BACKENDS)
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Session[Any]:
    """One backend's inbox: the same contract is run on each."""
    return backend_of(request.param, request, tmp_path).session


@dataclass
class Filled:
    """Named events in an inbox: their ids, and what each page search returned."""

    ids: dict[str, int] = field(default_factory=dict)
    #: Received before and after this moment: events named ``old*`` come before it.
    boundary: float = 0.0

    def names(self, entries: tuple[Entry, ...] | list[Entry]) -> list[str]:
        by_id = {entry_id: name for name, entry_id in self.ids.items()}
        return [by_id[entry.id] for entry in entries]


SMA = "SM" + "a" * 32
SMB = "SM" + "b" * 32
CAC = "CA" + "c" * 32
ALICE = "+15551110000"
BOB = "+15552220000"
CAROL = "+15553330000"


def sms(sid: str, status: str, **extra: str) -> list[tuple[str, str]]:
    pairs = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32}
    pairs.update(extra)
    return list(pairs.items())


def call(sid: str, status: str, **extra: str) -> list[tuple[str, str]]:
    pairs = {"CallSid": sid, "CallStatus": status, "AccountSid": "AC" + "0" * 32}
    pairs.update(extra)
    return list(pairs.items())


#: name: (kind, sid, status, params, what happens to it: done, dead, retried or nothing).
EVENTS: dict[str, tuple[str, str, str, list[tuple[str, str]], str]] = {
    "old_delivered": ("sms", SMA, "delivered",
                      sms(SMA, "delivered", From=ALICE, To=BOB, Body="Hello World"), "done"),
    "old_failed": ("sms", SMB, "failed",
                   sms(SMB, "failed", From=CAROL, To=ALICE, ErrorCode="30003"), "dead"),
    "call_failed": ("call", CAC, "failed", call(CAC, "failed", From=BOB, To=CAROL), "dead"),
    "call_done": ("call", CAC, "completed",
                  call(CAC, "completed", From=BOB, To=CAROL, Called=ALICE), "done"),
    "capital_failed": ("sms", SMB + "x", "Failed",
                       sms(SMB, "Failed", From=BOB, To=BOB, ErrorCode="30007"), "retried"),
    "percent": ("sms", SMA + "1", "received",
                sms(SMA, "received", From=BOB, To=CAROL, Body="100% sure, under_score"), ""),
    "body_number": ("sms", SMA + "2", "received",
                    sms(SMA, "received", From=CAROL, To=BOB, Body=f"call {ALICE} re 30003"), ""),
    "longer_number": ("sms", SMA + "3", "sent",
                      sms(SMA, "sent", From=ALICE + "1", To="15551110000", ErrorCode="300030"),
                      "done"),
    "quotes": ("sms", SMA + "4", "received",
               sms(SMA, "received", From=CAROL, To=BOB, Body='He said "hi\\" ; DROP -- end'),
               ""),
}  # fmt: skip


def after(moment: float) -> float:
    """The clock's time once it has passed *moment* (a few microseconds at most)."""
    while (now := time.time()) <= moment:
        continue
    return now


def fill(session: Session[Filled]) -> Filled:
    """The inbox holds :data:`EVENTS`, in that order, with their outcomes."""

    async def work(inbox: Inbox) -> Filled:
        filled = Filled()
        for name, (kind, sid, status, params, _) in EVENTS.items():
            if name == "call_failed":  # the first one received after the boundary
                last = (await inbox.search(Search(), limit=1)).entries[0].received_at
                filled.boundary = after(last)
                after(filled.boundary)
            assert await inbox.put(f"key-{name}", kind, sid, status, params)
        claimed: list[Entry] = []
        while len(claimed) < len(EVENTS):
            claimed += await inbox.claim(len(EVENTS))
        by_key = {entry.key: entry.id for entry in claimed}
        for name, (*_, outcome) in EVENTS.items():
            entry_id = by_key[f"key-{name}"]
            filled.ids[name] = entry_id
            if outcome == "done":
                await inbox.succeed(entry_id)
            elif outcome == "dead":
                await inbox.bury(entry_id, "Traceback\nValueError: down")
            elif outcome == "retried":
                await inbox.retry(entry_id, "Traceback\nValueError: once", time.time() + 3600)
            else:
                await inbox.retry(entry_id, "", time.time() - 1)  # due again, no error
        return filled

    return session(work)


def found(session: Session[Any], filled: Filled, search: Search, limit: int = 50) -> list[str]:
    """The names of the events *search* finds, newest first, from one page."""
    page: SearchPage = session(lambda inbox: inbox.search(search, limit=limit))
    assert page.scanned_all
    return filled.names(page.entries)


def newest_first(*names: str) -> list[str]:
    order = list(EVENTS)
    return sorted(names, key=order.index, reverse=True)


# -- each filter ------------------------------------------------------------------------
def test_no_filter_finds_every_entry_newest_first(session: Session[Any]) -> None:
    filled = fill(session)
    assert found(session, filled, Search()) == newest_first(*EVENTS)


def test_by_sid_exactly(session: Session[Any]) -> None:
    filled = fill(session)
    assert found(session, filled, Search(sid=SMA)) == ["old_delivered"]
    assert found(session, filled, Search(sid=CAC)) == ["call_done", "call_failed"]
    assert found(session, filled, Search(sid=SMA[:-1])) == []


def test_by_number_in_from_or_to(session: Session[Any]) -> None:
    filled = fill(session)
    # Not the Body that names it, nor Called, nor a longer number.
    assert found(session, filled, Search(number=ALICE)) == ["old_failed", "old_delivered"]
    # Digits alone find the number with its '+', and one stored without it.
    assert found(session, filled, Search(number=ALICE[1:])) == newest_first(
        "old_delivered", "old_failed", "longer_number"
    )
    assert found(session, filled, Search(number="+1555")) == []


def test_by_kind_and_status(session: Session[Any]) -> None:
    filled = fill(session)
    assert found(session, filled, Search(kind="call")) == ["call_done", "call_failed"]
    assert found(session, filled, Search(status="failed")) == ["call_failed", "old_failed"]
    assert found(session, filled, Search(kind="sms", status="failed")) == ["old_failed"]


def test_by_outcome(session: Session[Any]) -> None:
    filled = fill(session)
    assert found(session, filled, Search(outcome=State.DEAD)) == ["call_failed", "old_failed"]
    assert found(session, filled, Search(outcome="done")) == newest_first(
        "old_delivered", "call_done", "longer_number"
    )
    assert found(session, filled, Search(outcome=State.PENDING)) == newest_first(
        "capital_failed", "percent", "body_number", "quotes"
    )
    # Failed: at least one attempt failed, dead or waiting to try again.
    assert found(session, filled, Search(outcome="failed")) == newest_first(
        "old_failed", "call_failed", "capital_failed"
    )


def test_by_callback(session: Session[Any]) -> None:
    filled = fill(session)
    # Messages and calls that failed, in any case of Twilio's spelling.
    assert found(session, filled, Search(callback="on_failed")) == newest_first(
        "old_failed", "call_failed", "capital_failed"
    )
    assert found(session, filled, Search(callback="on_completed")) == ["call_done"]
    assert found(session, filled, Search(callback="on_received")) == newest_first(
        "percent", "body_number", "quotes"
    )


def test_by_error_code_exactly(session: Session[Any]) -> None:
    filled = fill(session)
    # Not the Body that names it, nor a longer code.
    assert found(session, filled, Search(error_code="30003")) == ["old_failed"]
    assert found(session, filled, Search(error_code="3000")) == []


def test_by_time(session: Session[Any]) -> None:
    filled = fill(session)
    after = list(EVENTS)[list(EVENTS).index("call_failed") :]
    assert found(session, filled, Search(since=filled.boundary)) == newest_first(*after)
    assert found(session, filled, Search(until=filled.boundary)) == ["old_failed", "old_delivered"]
    assert found(session, filled, Search(since=filled.boundary, until=time.time() + 60)) == (
        newest_first(*after)
    )


def test_by_text_in_the_body(session: Session[Any]) -> None:
    filled = fill(session)
    assert found(session, filled, Search(text="hello")) == ["old_delivered"]
    assert found(session, filled, Search(text="WORLD")) == ["old_delivered"]
    # LIKE's wildcards are plain characters here.
    assert found(session, filled, Search(text="%")) == ["percent"]
    assert found(session, filled, Search(text="1_0")) == []
    assert found(session, filled, Search(text="_")) == ["percent"]
    assert found(session, filled, Search(text="30003")) == ["body_number"]
    # Quotes and backslashes, as written.
    assert found(session, filled, Search(text='"hi\\"')) == ["quotes"]
    assert found(session, filled, Search(text="end")) == ["quotes"]
    # Parameter names are not the body.
    assert found(session, filled, Search(text="MessageStatus")) == []


def test_filters_combine(session: Session[Any]) -> None:
    filled = fill(session)
    assert found(session, filled, Search(number=BOB, callback="on_received")) == newest_first(
        "percent", "body_number", "quotes"
    )
    assert found(session, filled, Search(number=BOB, text="sure", outcome="pending")) == ["percent"]
    assert found(session, filled, Search(number=BOB, outcome="dead", kind="sms")) == []


# -- paging ------------------------------------------------------------------------------
def test_paging_returns_every_match_once(session: Session[Any]) -> None:
    async def work(inbox: Inbox) -> tuple[set[int], list[list[int]], SearchPage]:
        matching = set()
        for number in range(23):
            params = sms(f"SM{number:032d}", "delivered", From=ALICE if number % 3 else CAROL)
            await inbox.put(f"page-{number}", "sms", f"SM{number:032d}", "delivered", params)
        for entry in (await inbox.search(Search(), limit=500)).entries:
            if ("From", CAROL) not in entry.params:
                matching.add(entry.id)
        pages: list[list[int]] = []
        before: int | None = None
        while True:
            page = await inbox.search(Search(number=ALICE), limit=4, before_id=before)
            assert page.scanned_all
            pages.append([entry.id for entry in page.entries])
            if page.next_before_id is None:
                break
            assert page.next_before_id == page.entries[-1].id
            before = page.next_before_id
        last = await inbox.search(Search(number=ALICE), limit=15, before_id=10**9)
        return matching, pages, last

    matching, pages, last = session(work)
    assert len(matching) == 15
    flat = [entry_id for page in pages for entry_id in page]
    assert flat == sorted(matching, reverse=True)  # each once, newest first
    assert [len(page) for page in pages] == [4, 4, 4, 3]
    # Exactly a page: there is no next one.
    assert [entry.id for entry in last.entries] == flat
    assert last.next_before_id is None


def test_a_search_that_finds_nothing(session: Session[Any]) -> None:
    filled = fill(session)
    page: SearchPage = session(lambda inbox: inbox.search(Search(sid="SM" + "9" * 32)))
    assert page == SearchPage((), None, True)
    assert found(session, filled, Search(), limit=3) == newest_first(*EVENTS)[:3]


# -- hostile values -----------------------------------------------------------------------
HOSTILE = [
    "' OR '1'='1",
    "x'; DROP TABLE events; --",
    '") OR 1=1 --',
    "%",
    "_",
    "\\",
    "*",
    "$[0]",
    "ü" * 60,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_find_nothing_and_break_nothing(session: Session[Any], value: str) -> None:
    filled = fill(session)
    for search in (
        Search(sid=value),
        Search(number=value),
        Search(status=value),
        Search(text=value + "zz"),
        Search(number=value, text=value),
    ):
        assert found(session, filled, search) == []
    # Everything is still there.
    assert found(session, filled, Search()) == newest_first(*EVENTS)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sid": "S" * 65}, "sid is longer than 64"),
        ({"number": "+1\x00"}, "number must not hold control characters"),
        ({"text": "a" * 201}, "text is longer than 200"),
        ({"text": "a\x00b"}, "text must not hold control characters"),
        ({"text": "a\ud800"}, "text must be text \\(it holds a lone surrogate\\)"),
        ({"sid": "SM\udfff"}, "sid must be text"),
        ({"kind": "fax"}, "kind must be one of"),
        ({"callback": "__init__"}, "is not one an event goes to"),
        ({"callback": "on_" + "x" * 500}, "callback is longer than 80"),
        ({"error_code": "3000'3"}, "error_code must be digits"),
        ({"error_code": "1" * 11}, "error_code is longer than 10"),
        ({"outcome": "lost"}, "outcome must be one of"),
        ({"since": float("nan")}, "since must be a finite time"),
        ({"until": "yesterday"}, "until must be a time"),
        ({"since": 20.0, "until": 10.0}, "since must be before until"),
        ({"sid": 42}, "sid must be text"),
    ],
)
def test_invalid_searches_are_value_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Search(**fields)


def test_blank_filters_count_as_not_given() -> None:
    assert Search(sid=" ", number="", text="  ", outcome="") == Search()
    assert Search(outcome="DEAD").outcome is State.DEAD
    assert Search(text="a" * 200).text == "a" * 200


@pytest.mark.parametrize(
    ("limit", "before_id"), [(0, None), (501, None), (True, None), (10, 0), (10, -5), (10, "9")]
)
def test_invalid_pages_are_value_errors(session: Session[Any], limit: Any, before_id: Any) -> None:
    with pytest.raises(ValueError, match=r"limit must be|before_id must be"):
        session(lambda inbox: inbox.search(Search(), limit=limit, before_id=before_id))


# -- Redis: a bounded scan ----------------------------------------------------------------
def test_a_redis_search_stops_after_its_bound_and_goes_on_from_there(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis_admin, "SEARCH_SCAN", 10)  # read where the search runs

    async def work() -> list[SearchPage]:
        inbox = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
        await inbox.open()
        try:
            for number in range(25):
                sender = CAROL if number == 2 else ALICE
                params = sms(f"SM{number:032d}", "delivered", From=sender)
                await inbox.put(f"scan-{number}", "sms", None, "delivered", params)
            pages = []
            before = None
            while True:
                page = await inbox.search(Search(number=CAROL), limit=5, before_id=before)
                pages.append(page)
                if page.next_before_id is None:
                    return pages
                before = page.next_before_id
        finally:
            await inbox.close()

    pages = asyncio.run(work())
    # 10 looked at per page: ids 25..16, 15..6, then 5..1 with the match (id 3).
    assert [(len(p.entries), p.scanned_all) for p in pages] == [(0, False), (0, False), (1, True)]
    assert [p.next_before_id for p in pages] == [16, 6, None]
    assert ("From", CAROL) in pages[-1].entries[0].params
