"""The inspector's counters and its pause/resume over real HTTP (no browser).

A real listener on loopback with a SQLite inbox and its inspector, events posted
the way Twilio does (signed by twilio-python); the inspector asked with httpx.
The counters come from the inbox (they survive a restart of the listener); the
dispatch API pauses and resumes every worker of the inbox, under the same guards
as the replays: the inspector's header, loopback names, the token beyond loopback,
bounded and strictly parsed bodies.  Waits poll for state, never sleep for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.payloads import sms_status_payload
from twilio_trigger.inbox import Inbox, State
from twilio_trigger.inbox.sqlite import SQLiteInbox

from ._support import LOGGER
from .test_inspector_http import (
    COOKIE,
    INSPECTOR_TOKEN,
    REPLAY,
    STAMP,
    Carrier,
    inspected,
    send,
    wait_outcomes,
)

pytestmark = pytest.mark.usefixtures("no_listener_options")

DISPATCH = {"X-Inspector": "dispatch"}
WAIT = 10.0


def until(condition: Callable[[], Any], what: str) -> Any:
    """The first true value of *condition*, polled; fails after :data:`WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    while not (value := condition()):
        assert time.monotonic() < deadline, f"waited {WAIT} s for {what}"
        time.sleep(0.02)  # polling for state, not waiting for something to happen
    return value


def stored(path: Path) -> dict[State, int]:
    """What the inbox holds, read by an inbox object of its own (as the command line does)."""

    async def read() -> dict[State, int]:
        inbox = SQLiteInbox(path)
        try:
            return await inbox.stats()
        finally:
            await inbox.close()

    return asyncio.run(read())


def counters(http: httpx.Client, **headers: str) -> dict[str, Any]:
    response = http.get("/api/events", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["counters"]
    return found


# -- pause and resume ----------------------------------------------------------------
def test_pause_from_the_api_stores_without_dispatching_then_resume_dispatches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    carrier = Carrier()
    path = tmp_path / "events.db"
    with inspected(carrier, tmp_path) as (listener, http):
        assert http.get("/api/dispatch").json() == {"paused": False}
        paused = http.post("/api/dispatch", headers=DISPATCH, json={"paused": True})
        assert paused.status_code == 200, paused.text
        assert paused.headers["content-type"] == "application/json"
        assert paused.json() == {"paused": True}
        assert http.get("/api/dispatch").json() == {"paused": True}
        assert http.get("/api/events").json()["paused"] is True

        sids = [send(listener, sms_status_payload("delivered")) for _ in range(3)]  # 200s
        found = stored(path)
        assert (found[State.PENDING], found[State.DONE]) == (3, 0)
        assert counters(http)["received"] == 3
        assert counters(http)["pending"] == 3
        assert carrier.calls == []

        resumed = http.post("/api/dispatch", headers=DISPATCH, json={"paused": False})
        assert resumed.json() == {"paused": False}
        wait_outcomes(http, dict.fromkeys(sids, "handled"))
        assert sorted(str(sid) for sid in carrier.calls) == sorted(sids)
        until(lambda: counters(http)["handled"] == 3, "three handled")
        assert http.get("/api/events").json()["paused"] is False
    said = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert "the inspector paused dispatch" in said
    assert "the inspector resumed dispatch" in said
    assert sum(line.startswith("dispatch is paused (") for line in said) == 1


def test_a_pause_from_elsewhere_shows_and_the_inspector_resumes_it(tmp_path: Path) -> None:
    carrier = Carrier()
    path = tmp_path / "events.db"
    with inspected(carrier, tmp_path) as (listener, http):

        async def pause() -> None:
            other = SQLiteInbox(path)  # as `twilio-trigger inbox pause` does
            try:
                await other.set_paused(True)
            finally:
                await other.close()

        asyncio.run(pause())
        assert http.get("/api/dispatch").json() == {"paused": True}
        until(lambda: http.get("/api/events").json()["paused"], "the pause shown")
        # Twice is once; resuming what runs is no error either.
        for flag in (False, False):
            answer = http.post("/api/dispatch", headers=DISPATCH, json={"paused": flag})
            assert answer.json() == {"paused": False}
        sid = send(listener, sms_status_payload("delivered"))
        wait_outcomes(http, {sid: "handled"})


# -- the guards ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"{}", 'one field, "paused"'),
        (b"[true]", "not a JSON object"),
        (b'{"paused": 1}', '"paused" must be true or false'),
        (b'{"paused": "true"}', '"paused" must be true or false'),
        (b'{"paused": null}', '"paused" must be true or false'),
        (b'{"paused": 1e999}', '"paused" must be true or false'),
        (b'{"paused": ' + b"9" * 5000 + b"}", '"paused" must be true or false'),
        (b'{"paused": NaN}', "NaN and Infinity are not"),
        (b'{"paused": true, "paused": false}', "a field given twice"),
        (b'{"paused": true, "ids": [1]}', "one object with one field"),
        (b'{"paused": true, "also": "x"}', 'one field, "paused"'),
        (b'{"paused": {"deep": true}}', "one object with one field"),
        (b'{"paused": true', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, None),  # too large: 413
    ],
    ids=[
        "empty", "no-field", "list", "number", "text", "null", "huge-float", "long-number",
        "nan", "twice", "nested-other", "extra-field", "nested", "cut", "bytes", "deep",
    ],
)  # fmt: skip
def test_a_dispatch_request_it_cannot_use_is_refused_and_changes_nothing(
    tmp_path: Path, body: bytes, reason: str | None
) -> None:
    with inspected(Carrier(), tmp_path) as (_, http):
        answer = http.post(
            "/api/dispatch",
            content=body,
            headers={**DISPATCH, "Content-Type": "application/json"},
        )
        if reason is None:
            assert answer.status_code == 413, answer.text
        else:
            assert answer.status_code == 400, answer.text
            assert answer.text.startswith('expected {"paused": true} or {"paused": false}: ')
            assert reason in answer.text, answer.text
            assert len(answer.text) < 200  # what was sent is never quoted back
        assert http.get("/api/dispatch").json() == {"paused": False}


def test_dispatch_changes_need_the_inspectors_header(tmp_path: Path) -> None:
    with inspected(Carrier(), tmp_path) as (_, http):
        for headers in ({}, REPLAY, {"X-Inspector": "yes"}, {"X-Requested-With": "XMLHttpRequest"}):
            answer = http.post("/api/dispatch", json={"paused": True}, headers=headers)
            assert answer.status_code == 403, headers
            assert "from the inspector's page" in answer.text
        # A cross-site form can post text/plain, never a custom header.
        form = http.post(
            "/api/dispatch", content=b'{"paused": true}', headers={"Content-Type": "text/plain"}
        )
        assert form.status_code == 403
        # Another name for this server (DNS rebinding): refused before anything.
        rebound = http.post(
            "/api/dispatch", json={"paused": True}, headers={**DISPATCH, "Host": "evil.example"}
        )
        assert rebound.status_code == 421
        assert http.put("/api/dispatch", json={"paused": True}, headers=DISPATCH).status_code == 405
        assert http.get("/api/dispatch").json() == {"paused": False}


def test_beyond_loopback_dispatch_needs_the_token(tmp_path: Path) -> None:
    with inspected(
        Carrier(), tmp_path, inspector_host="0.0.0.0", inspector_token=INSPECTOR_TOKEN
    ) as (_, http):
        bearer = {"Authorization": f"Bearer {INSPECTOR_TOKEN}"}
        for credentials in (
            {},
            {"Authorization": f"Bearer {INSPECTOR_TOKEN}x"},
            {"Cookie": f"{COOKIE}=wrong-token-but-long-enough"},
        ):
            for method in ("GET", "POST"):
                answer = http.request(
                    method, "/api/dispatch", headers={**DISPATCH, **credentials},
                    json={"paused": True},
                )  # fmt: skip
                assert answer.status_code == 401, (method, credentials)
        assert http.get("/api/dispatch", headers=bearer).json() == {"paused": False}
        # The token without the header: still refused (the page sends both).
        refused = http.post("/api/dispatch", headers=bearer, json={"paused": True})
        assert refused.status_code == 403
        answer = http.post("/api/dispatch", headers={**DISPATCH, **bearer}, json={"paused": True})
        assert answer.json() == {"paused": True}
        assert http.get("/api/dispatch", headers=bearer).json() == {"paused": True}


# -- the counters ----------------------------------------------------------------------
def test_the_counters_are_the_inboxs_and_survive_a_restart(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        handled = send(listener, sms_status_payload("delivered"))
        doomed = sms_status_payload("delivered")
        carrier.down_for.add(doomed["MessageSid"])
        dead = send(listener, doomed)
        copy = send(listener, doomed)  # Twilio's retry of the same request: a duplicate
        assert copy == dead
        wait_outcomes(http, {handled: "handled", dead: "dead_letter"})
        first = until(
            lambda: (found := counters(http))["failed_attempts"] == 2 and found, "the counts"
        )
    assert STAMP.match(first["since"]), first
    assert first == {
        "scope": "inbox", "since": first["since"], "received": 2, "handled": 1,
        "failed_attempts": 2, "dead_lettered": 1, "replayed": 0, "duplicates": 1,
        "pending": 0, "running": 0, "dead_letters": 1,
    }  # fmt: skip

    # The listener restarts on the same inbox: the inbox's counts stay, the
    # process's own (duplicates) begin again.
    carrier.down_for.clear()
    with inspected(carrier, tmp_path) as (listener, http):
        assert counters(http) == {**first, "duplicates": 0}
        replayed = http.post("/api/replay", headers=REPLAY, json={})
        assert replayed.json() == {"replayed": 1}
        wait_outcomes(http, {dead: "handled"})
        after = until(lambda: (found := counters(http))["handled"] == 2 and found, "handled")
    assert after == {
        **first, "handled": 2, "replayed": 1, "duplicates": 0, "dead_letters": 0,
    }  # fmt: skip


def test_an_inbox_that_keeps_no_counters_shows_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An inbox of another make: the interface's own counters(), which keeps none.
    monkeypatch.setattr(SQLiteInbox, "counters", Inbox.counters)
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        doomed = sms_status_payload("delivered")
        carrier.down_for.add(doomed["MessageSid"])
        dead = send(listener, doomed)
        handled = send(listener, sms_status_payload("sent"))
        wait_outcomes(http, {dead: "dead_letter", handled: "handled"})
        found = until(
            lambda: (seen := counters(http))["dead_lettered"] == 1 and seen, "the process's counts"
        )
    assert STAMP.match(found["since"]), found
    assert found == {
        "scope": "process", "since": found["since"], "received": 2, "handled": 1,
        "failed_attempts": 2, "dead_lettered": 1, "replayed": None, "duplicates": 0,
        "pending": 0, "running": 0, "dead_letters": 1,
    }  # fmt: skip
