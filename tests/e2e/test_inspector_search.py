"""The inspector's search and a SID's timeline over real HTTP (no browser).

A real listener on loopback with a SQLite inbox and the inspector, events posted
the way Twilio does (signed), and httpx asking ``/api/events`` with the search's
filters, ``/``, ``/sids/<SID>`` and ``/api/sids/<SID>``.  Every search runs among
decoys that a broken filter would let through.  The browser's view is in
``tests/browser/test_inspector_search_browser.py``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.payloads import sms_status_payload

from .test_inspector_http import (
    INSPECTOR_TOKEN,
    WAIT,
    Carrier,
    events,
    inspected,
    send,
    sids,
    wait_outcomes,
)

TARGET = "+15558675309"
OTHER = "+15550001111"


def found(http: httpx.Client, **query: str) -> dict[str, Any]:
    response = http.get("/api/events", params=query)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def refused(http: httpx.Client, path: str = "/api/events", **query: str) -> str:
    """The reason of the 400 *query* gets."""
    response = http.get(path, params=query)
    assert response.status_code == 400, (query, response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def wait_timeline(http: httpx.Client, sid: str, count: int) -> dict[str, Any]:
    """The timeline of *sid* once it holds *count* events, each handled (or without a callback)."""
    deadline = time.monotonic() + WAIT
    while True:
        response = http.get(f"/api/sids/{sid}")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        rows = document["events"]
        if len(rows) == count and all(r["outcome"] in ("handled", "no_callback") for r in rows):
            return document
        assert time.monotonic() < deadline, f"waited {WAIT} s for {count} events: {document}"
        time.sleep(0.02)  # polling the API, not waiting for something to happen


@pytest.fixture(scope="module")
def searched(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """An inbox holding messages to two numbers, some with error codes, one failing."""
    carrier = Carrier()
    with inspected(carrier, tmp_path_factory.mktemp("search")) as (listener, http):
        start = time.time()
        to_target = [
            send(listener, sms_status_payload("sent", To=TARGET)),
            send(listener, sms_status_payload("delivered", To=TARGET, Body="Your parcel is HERE")),
        ]
        decoys = [
            send(listener, sms_status_payload("sent", To=OTHER)),
            send(listener, sms_status_payload("delivered", To=OTHER, Body="another body")),
        ]
        code_30003 = [
            send(listener, sms_status_payload("undelivered", To=OTHER, ErrorCode="30003")),
            send(listener, sms_status_payload("undelivered", ErrorCode="30003")),
        ]
        code_30007 = send(listener, sms_status_payload("undelivered", ErrorCode="30007"))
        doomed = sms_status_payload("sent", To=OTHER)
        carrier.down_for.add(doomed["MessageSid"])
        dead = send(listener, doomed)
        handled = [*to_target, *decoys, *code_30003, code_30007]
        wait_outcomes(http, {**dict.fromkeys(handled, "handled"), dead: "dead_letter"})
        yield http, {
            "to_target": to_target, "decoys": decoys, "code_30003": code_30003,
            "code_30007": code_30007, "dead": dead, "start": start,
        }  # fmt: skip


def test_search_by_number_finds_only_its_messages(
    searched: tuple[httpx.Client, dict[str, Any]],
) -> None:
    http, sid = searched
    newest_first = sid["to_target"][::-1]
    assert sids(found(http, number=TARGET)["events"]) == newest_first
    assert sids(found(http, number=TARGET.removeprefix("+"))["events"]) == newest_first
    assert found(http, number="+19999999999")["events"] == []
    # The other number: its messages, none of the target's.
    other = sids(found(http, number=OTHER)["events"])
    assert other == [sid["dead"], sid["code_30003"][0], *sid["decoys"][::-1]]


def test_search_by_error_code_among_other_codes(
    searched: tuple[httpx.Client, dict[str, Any]],
) -> None:
    http, sid = searched
    rows = found(http, error_code="30003")["events"]
    assert sids(rows) == sid["code_30003"][::-1]
    assert {row["error_code"] for row in rows} == {30003}
    assert sids(found(http, error_code="30007")["events"]) == [sid["code_30007"]]
    assert sids(found(http, error_code="30003", number=OTHER)["events"]) == [sid["code_30003"][0]]


def test_search_by_sid_text_callback_outcome_and_time(
    searched: tuple[httpx.Client, dict[str, Any]],
) -> None:
    http, sid = searched
    assert sids(found(http, sid=sid["decoys"][0])["events"]) == [sid["decoys"][0]]
    assert sids(found(http, text="parcel is here")["events"]) == [sid["to_target"][1]]
    delivered = [sid["decoys"][1], sid["to_target"][1]]
    assert sids(found(http, callback="on_delivered")["events"]) == delivered
    assert sids(found(http, outcome="failed")["events"]) == [sid["dead"]]
    assert sids(found(http, outcome="dead_letter", number=OTHER)["events"]) == [sid["dead"]]
    assert found(http, outcome="dead_letter", number=TARGET)["events"] == []
    # The time range: all of them since the start, none before it or from the future.
    start = dt.datetime.fromtimestamp(sid["start"] - 1, dt.UTC)
    assert len(found(http, since=start.strftime("%Y-%m-%d %H:%M:%S"))["events"]) == 8
    assert found(http, until=start.isoformat())["events"] == []
    assert found(http, since=str(int(time.time()) + 3600))["events"] == []


def test_the_existing_filters_and_fields_still_work(
    searched: tuple[httpx.Client, dict[str, Any]],
) -> None:
    http, sid = searched
    document = found(http, status=" UNDELIVERED ")
    assert set(document) == {"counters", "paused", "events", "next_before", "scanned_all"}
    assert sids(document["events"]) == [sid["code_30007"], *sid["code_30003"][::-1]]
    assert sids(events(http, outcome="failing")) == [sid["dead"]]
    assert events(http, kind="call") == []


def test_pages_of_results_newest_first(searched: tuple[httpx.Client, dict[str, Any]]) -> None:
    http, sid = searched
    expected = [sid["dead"], sid["code_30003"][0], *sid["decoys"][::-1]]
    seen: list[str] = []
    query = {"number": OTHER, "limit": "2"}
    for _ in range(4):
        document = found(http, **query)
        assert len(document["events"]) <= 2
        assert document["scanned_all"] is True
        seen += sids(document["events"])
        if document["next_before"] is None:
            break
        query["before"] = str(document["next_before"])
    assert seen == expected
    assert document["next_before"] is None
    # Rows the inbox cannot filter alone ("handled" is checked on the row) page the same.
    first = found(http, outcome="handled", limit="3")
    rest = found(http, outcome="handled", limit="500", before=str(first["next_before"]))
    everything = found(http, outcome="handled", limit="500")
    assert sids(first["events"]) + sids(rest["events"]) == sids(everything["events"])
    assert len(everything["events"]) == 7


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"error_code": "abc"}, "error_code must be digits"),
        ({"kind": "telegram"}, "kind must be one of"),
        ({"outcome": "exploded"}, "outcome must be one of"),
        ({"callback": "on_nothing"}, "is not one an event goes to"),
        ({"since": "yesterday-ish"}, "since must be a date and time"),
        ({"until": "2024-13-45"}, "until must be a date and time"),
        ({"since": "2024-05-02", "until": "2024-05-01"}, "since must be before until"),
        ({"since": "0001-01-01T00:00+01:00"}, "since must be 1970-01-01 or later"),
        ({"until": "1969-12-31"}, "until must be 1970-01-01 or later"),
        ({"before": "-3"}, "before must be the id of an event"),
        ({"before": "9" * 40}, "before must be the id of an event"),
        ({"sid": "S" * 65}, "sid is longer than 64"),
        ({"number": "+1\x00555"}, "number must not hold control characters"),
        ({"text": "x" * 201}, "text is longer than 200"),
    ],
)
def test_unusable_filters_are_a_400_that_says_why(
    searched: tuple[httpx.Client, dict[str, Any]], query: dict[str, str], reason: str
) -> None:
    http, _ = searched
    assert reason in refused(http, **query)
    # The page says the same, escaped, with the values given back in its form.
    page = http.get("/", params=query)
    assert page.status_code == 200
    assert reason.replace("'", "&#x27;") in page.text


def test_the_page_gives_its_filters_back_escaped(
    searched: tuple[httpx.Client, dict[str, Any]],
) -> None:
    http, _ = searched
    hostile = '"><script>alert(1)</script>'
    page = http.get("/", params={"text": hostile, "kind": "sms", "outcome": "failed"})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text
    assert '<option value="sms" selected>' in page.text
    assert '<option value="failed" selected>' in page.text
    assert 'id="search-error" class="search-error" role="alert" hidden' in page.text


# -- a SID's timeline -----------------------------------------------------------------
def test_a_sids_timeline_in_order_with_gaps_stale_and_final_status(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        sid = "SM" + "ab12" * 8
        for status in ("sent", "delivered"):
            send(listener, sms_status_payload(status, sid=sid))
        decoy = send(listener, sms_status_payload("sent"))
        # "queued" comes last, below "delivered" in Twilio's order: stale.
        send(listener, sms_status_payload("queued", sid=sid))
        document = wait_timeline(http, sid, 3)

        rows = document["events"]
        assert [row["status"] for row in rows] == ["sent", "delivered", "queued"]
        assert [row["stale"] for row in rows] == [False, False, True]
        assert document["final_status"] == "delivered"
        assert document["complete"] is True
        assert decoy not in {row["sid"] for row in rows}
        stamps = [dt.datetime.fromisoformat(row["received_at"]) for row in rows]
        assert rows[0]["after_previous_s"] is None
        for earlier, later, shown in zip(stamps, stamps[1:], rows[1:], strict=False):
            gap = (later - earlier).total_seconds()
            assert shown["after_previous_s"] >= 0
            assert abs(shown["after_previous_s"] - gap) < 0.002
        assert {row["attempts"] for row in rows} == {1}

        page = http.get(f"/sids/{sid}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        cells = [f"<td class='status'>{status}</td>" for status in ("sent", "delivered", "queued")]
        assert html.index(cells[0]) < html.index(cells[1]) < html.index(cells[2])
        assert "<b id='final-status'>delivered</b>" in html
        assert html.count("<span class='stale'") == 1
        queued = html[html.index(cells[2]) :].split("</tr>")[0]
        assert "<span class='stale'" in queued
        gap_text = f"+{rows[1]['after_previous_s']:.1f} s"
        assert f"<td class='gap'>{gap_text}</td>" in html
        # Linked from the event's page (the list links it in its script).
        event_page = http.get(f"/events/{rows[0]['id']}").text
        assert f'<a class="sid" href="/sids/{sid}">{sid}</a>' in event_page


def test_timeline_of_an_unknown_sid_and_bad_sids(tmp_path: Path) -> None:
    with inspected(Carrier(), tmp_path) as (_, http):
        empty = http.get("/api/sids/SM0000")
        assert empty.status_code == 200
        assert empty.json()["events"] == []
        assert empty.json()["final_status"] is None
        assert "no event received for this SID" in http.get("/sids/SM0000").text
        for bad in ("SM%3Cb%3E", "S" * 65, "SM-1", "SM%00", "%E2%85%A0"):
            for prefix in ("/sids/", "/api/sids/"):
                response = http.get(prefix + bad)
                assert response.status_code == 400, (prefix, bad)
                assert "letters and digits" in response.text


def test_the_timeline_is_guarded_like_the_rest(tmp_path: Path) -> None:
    with inspected(Carrier(), tmp_path) as (_, http):
        for path in ("/sids/SM1", "/api/sids/SM1", "/api/events?number=1"):
            assert http.get(path, headers={"Host": "evil.example"}).status_code == 421
    with inspected(
        Carrier(), tmp_path, inspector_host="0.0.0.0", inspector_token=INSPECTOR_TOKEN
    ) as (_, http):
        for path in ("/sids/SM1", "/api/sids/SM1", "/api/events?number=1"):
            assert http.get(path).status_code == 401
            bearer = {"Authorization": f"Bearer {INSPECTOR_TOKEN}"}
            assert http.get(path, headers=bearer).status_code == 200
        # The link with the token lands on the timeline, with a session.
        landing = http.get("/sids/SM1", params={"token": INSPECTOR_TOKEN})
        assert landing.status_code == 303
        assert landing.headers["location"] == "/sids/SM1"
