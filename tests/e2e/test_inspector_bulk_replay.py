"""Bulk replay from the inspector over real HTTP: ``POST /api/replay`` with a search.

A real listener on loopback with a SQLite inbox and the inspector; events posted
the way Twilio does (signed); dead letters of several callbacks, with error codes
and at different times.  A search's count (``"dry_run": true``) changes nothing; its
replay runs the callbacks of what it finds and of nothing else: each decoy keeps
its state, its attempts and its callback's runs.  A filter that cannot be used is a
400 that says why, and the replay guards (the ``X-Inspector`` header, the token,
the ``Host`` check) hold for the search as they do for ids.  The browser's view is
in ``tests/browser/test_inspector_bulk_browser.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.payloads import sms_status_payload

from .test_inspector_http import (
    INSPECTOR_TOKEN,
    REPLAY,
    Carrier,
    inspected,
    send,
    wait_outcomes,
)


def post(http: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return http.post("/api/replay", json=body, headers={**REPLAY, **headers})


def count(http: httpx.Client, **search: str) -> int:
    response = post(http, {"search": search, "dry_run": True})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"count"}
    found: int = response.json()["count"]
    return found


def states(http: httpx.Client) -> dict[str, tuple[str, int]]:
    """Each SID's outcome and attempts, as the inspector's API says."""
    rows = http.get("/api/events", params={"limit": "500"}).json()["events"]
    return {row["sid"]: (row["outcome"], row["attempts"]) for row in rows}


def doomed(carrier: Carrier, status: str, **params: str) -> dict[str, str]:
    """A status callback whose callback fails until the carrier is fixed for it."""
    payload = sms_status_payload(status, **params)
    carrier.down_for.add(payload["MessageSid"])
    return payload


@pytest.fixture
def dead_letters(tmp_path: Path) -> Iterator[tuple[httpx.Client, Carrier, dict[str, Any]]]:
    """Dead letters of on_delivered (the targets) and of on_undelivered and on_sent
    (decoys), and a handled on_delivered (a decoy too: it is done, not dead)."""
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        handled = send(listener, sms_status_payload("delivered"))
        targets = [send(listener, doomed(carrier, "delivered")) for _ in range(2)]
        decoys = [
            send(listener, doomed(carrier, "undelivered", ErrorCode="30003")),
            send(listener, doomed(carrier, "sent")),
        ]
        expected = {handled: "handled", **dict.fromkeys([*targets, *decoys], "dead_letter")}
        wait_outcomes(http, expected)
        yield http, carrier, {"handled": handled, "targets": targets, "decoys": decoys}


def test_the_count_of_a_search_replays_nothing(
    dead_letters: tuple[httpx.Client, Carrier, dict[str, Any]],
) -> None:
    http, carrier, sid = dead_letters
    before = states(http)
    assert count(http, callback="on_delivered") == 2  # the dead ones, not the handled one
    assert count(http, callback="on_delivered", outcome="dead_letter") == 2
    assert count(http, callback="on_undelivered", error_code="30003") == 1
    assert count(http, outcome="failing") == 4
    assert count(http, callback="on_delivered", outcome="handled") == 1  # done ones, if asked
    assert count(http, outcome="retrying") == count(http, outcome="running") == 0
    assert count(http, error_code="30007") == 0
    assert count(http) == 4  # no filter: every dead letter
    assert states(http) == before
    assert all(carrier.runs(s) == 2 for s in [*sid["targets"], *sid["decoys"]])
    assert carrier.runs(sid["handled"]) == 1


def test_a_replay_of_a_search_runs_what_it_finds_and_leaves_the_others(
    dead_letters: tuple[httpx.Client, Carrier, dict[str, Any]],
) -> None:
    http, carrier, sid = dead_letters
    for target in sid["targets"]:
        carrier.down_for.discard(target)  # fixed for them; the decoys would still fail

    response = post(http, {"search": {"callback": "on_delivered"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"replayed": 2}

    wait_outcomes(http, dict.fromkeys(sid["targets"], "handled"))
    shown = states(http)
    for target in sid["targets"]:
        assert shown[target] == ("handled", 1)  # fresh attempts: one, and it worked
        assert carrier.runs(target) == 3
    for decoy in sid["decoys"]:
        assert shown[decoy] == ("dead_letter", 2)
        assert carrier.runs(decoy) == 2
    assert shown[sid["handled"]] == ("handled", 1)
    assert carrier.runs(sid["handled"]) == 1
    # Nothing left for that search; the same replay again replays nothing.
    assert count(http, callback="on_delivered") == 0
    assert post(http, {"search": {"callback": "on_delivered"}}).json() == {"replayed": 0}
    assert count(http, outcome="dead_letter") == 2


def test_a_replay_of_one_error_code_in_a_time_window(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        earlier = send(listener, doomed(carrier, "undelivered", ErrorCode="30003"))
        window_start = time.time()  # after the first was received, before the others
        in_window = [
            send(listener, doomed(carrier, "undelivered", ErrorCode="30003")) for _ in range(2)
        ]
        other_code = send(listener, doomed(carrier, "undelivered", ErrorCode="30007"))
        wait_outcomes(http, dict.fromkeys([earlier, *in_window, other_code], "dead_letter"))
        carrier.down_for.clear()  # fixed for all: only the replay decides who runs again

        search = {"error_code": "30003", "since": f"{window_start:.6f}"}
        assert count(http, **search) == 2
        assert post(http, {"search": search}).json() == {"replayed": 2}

        wait_outcomes(http, dict.fromkeys(in_window, "handled"))
        shown = states(http)
        assert shown[earlier] == shown[other_code] == ("dead_letter", 2)
        assert [carrier.runs(s) for s in in_window] == [3, 3]
        assert carrier.runs(earlier) == carrier.runs(other_code) == 2


#: Searches that cannot be used, and what the 400 says of each.
BAD_SEARCHES: dict[str, tuple[dict[str, Any], str]] = {
    "an error code not digits": ({"search": {"error_code": "30x"}}, "error_code must be digits"),
    "an unknown callback": ({"search": {"callback": "on_nothing"}}, "is not one an event goes"),
    "an unknown outcome": ({"search": {"outcome": "lost"}}, "outcome must be one of"),
    "a time that is none": ({"search": {"since": "yesterday"}}, "since must be a date"),
    "since after until": ({"search": {"since": "2024-05-02", "until": "2024-05-01"}}, "before"),
    "a text too long": ({"search": {"text": "x" * 201}}, "longer than 200"),
    "a control character": ({"search": {"sid": "SM\u0007"}}, "control characters"),
    "an unknown filter": ({"search": {"limit": "5"}}, 'the filters of "search" are sid'),
    "a filter not text": ({"search": {"error_code": 30003}}, 'each filter of "search" is text'),
    "a search not an object": ({"search": ["on_failed"]}, '"search" must be an object'),
    "ids and a search": ({"ids": [1], "search": {}}, '"ids" or "search", not both'),
    "a dry run alone": ({"dry_run": True}, '"dry_run" goes with a "search"'),
    "a dry run not true": ({"search": {}, "dry_run": "yes"}, '"dry_run" must be true or false'),
    "a nested filter": ({"search": {"sid": {"a": "b"}}}, "at most one object and one list"),
}


def test_a_search_it_cannot_use_is_400_and_replays_nothing(
    dead_letters: tuple[httpx.Client, Carrier, dict[str, Any]],
) -> None:
    http, carrier, sid = dead_letters
    carrier.down_for.clear()  # a replay would now change their state
    before = states(http)
    for name, (body, reason) in BAD_SEARCHES.items():
        response = post(http, body)
        assert response.status_code == 400, (name, response.status_code, response.text)
        assert response.headers["content-type"].startswith("text/plain")
        assert reason in response.text, (name, response.text)
        assert response.text.count("\n") == 1, name
    # The same reason as the search of the list gives.
    listed = http.get("/api/events", params={"error_code": "30x"})
    assert post(http, BAD_SEARCHES["an error code not digits"][0]).text == listed.text
    # Brackets within a filter's text are text, not nesting.
    assert count(http, text="{[}]") == 0
    assert states(http) == before
    assert all(carrier.runs(s) == 2 for s in [*sid["targets"], *sid["decoys"]])


def test_a_filter_with_a_lone_surrogate_is_400_not_an_outage(
    dead_letters: tuple[httpx.Client, Carrier, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # "\ud800" is valid JSON but no text a database takes: a 400 that says why,
    # not a 503 with a traceback per request.
    http, _, _ = dead_letters
    for field in ("text", "number", "sid", "status"):
        for dry in ("true", "false"):
            # Written by hand: json.dumps would refuse to write the surrogate as UTF-8.
            body = '{"search": {"' + field + '": "a\\ud800"}, "dry_run": ' + dry + "}"
            response = http.post(
                "/api/replay",
                content=body.encode("ascii"),
                headers={**REPLAY, "Content-Type": "application/json"},
            )
            assert response.status_code == 400, (field, response.status_code, response.text)
            assert "lone surrogate" in response.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_replay_of_a_search_needs_the_inspectors_header(
    dead_letters: tuple[httpx.Client, Carrier, dict[str, Any]],
) -> None:
    http, carrier, sid = dead_letters
    carrier.down_for.clear()
    search = {"search": {"callback": "on_delivered"}}
    for body in (search, {**search, "dry_run": True}):
        assert http.post("/api/replay", json=body).status_code == 403
        wrong = http.post("/api/replay", json=body, headers={"X-Inspector": "yes"})
        assert wrong.status_code == 403
    assert states(http)[sid["targets"][0]] == ("dead_letter", 2)
    assert carrier.runs(sid["targets"][0]) == 2


def test_a_replay_of_a_search_needs_the_token(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(
        carrier, tmp_path, inspector_host="0.0.0.0", inspector_token=INSPECTOR_TOKEN
    ) as (listener, http):
        bearer = {"Authorization": f"Bearer {INSPECTOR_TOKEN}"}
        http.headers.update(bearer)
        target = send(listener, doomed(carrier, "delivered"))
        wait_outcomes(http, {target: "dead_letter"})
        carrier.down_for.clear()
        del http.headers["Authorization"]
        search = {"search": {"callback": "on_delivered"}}
        for body in (search, {**search, "dry_run": True}):
            assert post(http, body).status_code == 401
            wrong = post(http, body, Authorization=f"Bearer {INSPECTOR_TOKEN}x")
            assert wrong.status_code == 401
        assert carrier.runs(target) == 2
        # With it: counted, then replayed.
        http.headers.update(bearer)
        assert count(http, callback="on_delivered") == 1
        assert post(http, search).json() == {"replayed": 1}
        wait_outcomes(http, {target: "handled"})


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil", "127.0.0.1.nip.io"])
def test_a_replay_of_a_search_under_another_host_name_is_421(
    dead_letters: tuple[httpx.Client, Carrier, dict[str, Any]], host: str
) -> None:
    http, carrier, sid = dead_letters
    carrier.down_for.clear()
    search = {"search": {"callback": "on_delivered"}}
    for body in (search, {**search, "dry_run": True}):
        response = post(http, body, Host=host)
        assert response.status_code == 421, response.text
        assert "replayed" not in response.text
        assert "count" not in response.text
    assert states(http)[sid["targets"][0]] == ("dead_letter", 2)
    assert all(carrier.runs(s) == 2 for s in sid["targets"])
