"""The event inspector over real HTTP (no browser): its JSON, pages, replays and guards.

Every test runs a real listener on loopback with a SQLite inbox and the inspector
on a port of its own, posts events the way Twilio does (signed by twilio-python),
and asks the inspector with httpx, or with raw sockets where httpx would tidy the
request up.  The browser's view of the same page is in ``tests/browser``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import (
    call_status_payload,
    inbound_message_payload,
    signed_post,
    sms_status_payload,
)

from ._support import TOKEN, read_answer, running

INSPECTOR_TOKEN = "a-long-inspector-token-123"
COOKIE = "twilio_trigger_inspector"
ERROR = "carrier lookup exploded"
REPLAY = {"X-Inspector": "replay"}
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
WAIT = 10.0


@pytest.fixture(autouse=True)
def _no_listener_options_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option these tests rely on comes from the test, none from the environment."""
    for name in list(os.environ):
        if name.startswith("TWILIO_TRIGGER_"):
            monkeypatch.delenv(name)


# -- services -------------------------------------------------------------------------
@dataclass
class Carrier:
    """What the callbacks depend on: down for every event, or for some SIDs only."""

    down: bool = False
    down_for: set[str] = field(default_factory=set)
    calls: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def look_up(self, event: twilio.TwilioEvent) -> None:
        with self.lock:
            self.calls.append(event.sid)
        if self.down or event.sid in self.down_for:
            raise RuntimeError(f"{ERROR} for {event.sid}")

    def runs(self, sid: str) -> int:
        with self.lock:
            return self.calls.count(sid)


class Messages(twilio.SmsStatusService):
    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    async def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.carrier.look_up(event)

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.carrier.look_up(event)

    async def on_undelivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.carrier.look_up(event)

    async def on_received(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.carrier.look_up(event)


class Calls(twilio.CallStatusService):
    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    async def on_completed(self, event: twilio.CallStatusEvent) -> None:
        self.carrier.look_up(event)

    async def on_no_answer(self, event: twilio.CallStatusEvent) -> None:
        self.carrier.look_up(event)


# -- listeners and requests -----------------------------------------------------------
@contextlib.contextmanager
def inspected(
    carrier: Carrier, tmp_path: Path, **options: Any
) -> Iterator[tuple[twilio.Listener, httpx.Client]]:
    """A listener with a SQLite inbox and the inspector, and a client for the inspector."""
    options.setdefault("inbox", f"sqlite:///{tmp_path}/events.db")
    options.setdefault("max_attempts", 2)
    options.setdefault("retry_backoff", 0.02)
    with running(
        Messages(carrier), Calls(carrier), inspector=True, inspector_port=0, **options
    ) as listener:
        assert listener.inspector_url is not None
        with httpx.Client(base_url=listener.inspector_url, timeout=10, trust_env=False) as http:
            yield listener, http


def send(listener: twilio.Listener, params: Mapping[str, str]) -> str:
    """Post *params* to the listener as Twilio would; return the event's SID."""
    response = signed_post(listener.url, params, TOKEN)
    assert response.status_code == 200, response.text
    return params.get("MessageSid") or params["CallSid"]


def events(http: httpx.Client, **query: str) -> list[dict[str, Any]]:
    response = http.get("/api/events", params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def wait_outcomes(http: httpx.Client, expected: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Wait until the inspector reports these outcomes for these SIDs; return their rows.

    A row is settled once this listener has noted the attempt (its duration, and
    its counters with it): the inbox may say "done" a moment before.
    """
    deadline = time.monotonic() + WAIT
    while True:
        rows = {row["sid"]: row for row in events(http, limit="500")}
        if all(
            rows.get(sid, {}).get("outcome") == outcome and rows[sid]["duration_ms"] is not None
            for sid, outcome in expected.items()
        ):
            return rows
        shown = {sid: row["outcome"] for sid, row in rows.items()}
        assert time.monotonic() < deadline, f"waited {WAIT} s for {expected}: {shown}"
        time.sleep(0.02)  # polling the API, not waiting for something to happen


def port_of(listener: twilio.Listener) -> int:
    assert listener.inspector_url is not None
    return int(listener.inspector_url.rstrip("/").rsplit(":", 1)[1])


def raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send *request* as is to the inspector on *port*; read its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return read_answer(sock)


def sids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["sid"] for row in rows]


# -- /api/events ----------------------------------------------------------------------
def test_api_events_rows_and_counters(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        assert http.get("/api/events").json() == {
            "counters": {
                "received": 0, "handled": 0, "failed": 0, "duplicates": 0, "dead_letters": 0,
            },
            "events": [],
        }  # fmt: skip
        sent = send(listener, sms_status_payload("sent"))
        completed = send(listener, call_status_payload("completed"))
        wait_outcomes(http, {sent: "handled", completed: "handled"})
        doomed = sms_status_payload("delivered")
        carrier.down_for.add(doomed["MessageSid"])
        dead = send(listener, doomed)
        wait_outcomes(http, {dead: "dead_letter"})

        # The row shows "dead_letter" once the entry is buried, which is a moment
        # before the listener notes that second attempt (and counts its failure).
        counted = {"received": 3, "handled": 2, "failed": 2, "duplicates": 0, "dead_letters": 1}
        deadline = time.monotonic() + WAIT
        while True:
            response = http.get("/api/events")
            assert response.headers["content-type"] == "application/json"
            document = response.json()
            if document["counters"] == counted or time.monotonic() > deadline:
                break
            time.sleep(0.02)  # polling the API, not waiting for something to happen
        assert document["counters"] == counted
        rows = document["events"]
        assert sids(rows) == [dead, completed, sent]  # newest first
        assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)
        for row in rows:
            assert set(row) == {
                "id", "received_at", "kind", "status", "sid", "callback", "outcome",
                "duration_ms", "attempts", "error",
            }  # fmt: skip
            assert STAMP.match(row["received_at"]), row
            assert isinstance(row["duration_ms"], float), row
            assert 0 <= row["duration_ms"] < 5000
        by_sid = {row["sid"]: row for row in rows}
        assert {k: v for k, v in by_sid[sent].items() if k in ("kind", "status", "callback")} == {
            "kind": "sms", "status": "sent", "callback": "Messages.on_sent",
        }  # fmt: skip
        assert by_sid[sent]["outcome"] == "handled"
        assert by_sid[sent]["attempts"] == 1
        assert by_sid[sent]["error"] is None
        assert by_sid[completed]["kind"] == "call"
        assert by_sid[completed]["status"] == "completed"
        assert by_sid[completed]["callback"] == "Calls.on_completed"
        assert by_sid[dead]["outcome"] == "dead_letter"
        assert by_sid[dead]["attempts"] == 2
        assert by_sid[dead]["callback"] == "Messages.on_delivered"
        # The last line of the traceback: what failed.
        assert by_sid[dead]["error"] == f"RuntimeError: {ERROR} for {dead}"


@pytest.fixture
def history(tmp_path: Path) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """An inbox holding, oldest first: a dead letter, a retrying call, three handled events.

    The dead letter is made by a first listener that retries at once; the second,
    on the same inbox, waits a minute before a retry, so that one stays retrying.
    """
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        doomed = sms_status_payload("undelivered")
        carrier.down_for.add(doomed["MessageSid"])
        dead = send(listener, doomed)
        wait_outcomes(http, {dead: "dead_letter"})
    with inspected(carrier, tmp_path, retry_backoff=60.0) as (listener, http):
        stuck = call_status_payload("no-answer")
        carrier.down_for.add(stuck["CallSid"])
        retrying = send(listener, stuck)
        wait_outcomes(http, {retrying: "retrying"})
        handled = {
            "sent": send(listener, sms_status_payload("sent")),
            "delivered": send(listener, sms_status_payload("delivered")),
            "completed": send(listener, call_status_payload("completed")),
        }
        wait_outcomes(http, dict.fromkeys(handled.values(), "handled"))
        yield http, {"dead": dead, "retrying": retrying, **handled}


def test_filters_by_kind_status_and_outcome(history: tuple[httpx.Client, dict[str, str]]) -> None:
    http, sid = history
    assert sids(events(http)) == [
        sid["completed"], sid["delivered"], sid["sent"], sid["retrying"], sid["dead"],
    ]  # fmt: skip
    assert sids(events(http, kind="sms")) == [sid["delivered"], sid["sent"], sid["dead"]]
    assert sids(events(http, kind="call")) == [sid["completed"], sid["retrying"]]
    assert events(http, kind="recording") == []
    assert sids(events(http, status="delivered")) == [sid["delivered"]]
    assert sids(events(http, status=" DELIVERED ")) == [sid["delivered"]]  # any case
    assert sids(events(http, status="no-answer")) == [sid["retrying"]]
    assert sids(events(http, outcome="handled")) == [
        sid["completed"], sid["delivered"], sid["sent"],
    ]  # fmt: skip
    assert sids(events(http, outcome="dead_letter")) == [sid["dead"]]
    assert sids(events(http, outcome="retrying")) == [sid["retrying"]]
    assert sids(events(http, outcome="failing")) == [sid["retrying"], sid["dead"]]
    assert events(http, outcome="pending") == []
    assert events(http, outcome="running") == []
    assert sids(events(http, kind="call", outcome="failing")) == [sid["retrying"]]
    assert sids(events(http, kind="sms", outcome="failing")) == [sid["dead"]]
    assert events(http, kind="sms", status="sent", outcome="dead_letter") == []
    retrying = events(http, outcome="retrying")[0]
    assert retrying["attempts"] == 1
    assert retrying["error"] == f"RuntimeError: {ERROR} for {sid['retrying']}"


def test_limit(history: tuple[httpx.Client, dict[str, str]]) -> None:
    http, sid = history
    newest = [sid["completed"], sid["delivered"], sid["sent"], sid["retrying"], sid["dead"]]
    assert sids(events(http, limit="2")) == newest[:2]
    assert sids(events(http, limit="1")) == newest[:1]
    assert sids(events(http, limit="0")) == newest[:1]  # at least one
    assert sids(events(http, limit="-5")) == newest[:1]
    assert sids(events(http, limit="100000")) == newest  # capped, not refused
    assert sids(events(http, limit="many")) == newest  # the default
    assert sids(events(http, kind="sms", limit="2")) == [sid["delivered"], sid["sent"]]
    assert sids(events(http, outcome="handled", limit="2")) == newest[:2]


def test_the_failing_filter_finds_failures_older_than_the_limit(
    history: tuple[httpx.Client, dict[str, str]],
) -> None:
    # BUG: "failing" (and "retrying", "pending") fetch the `limit` newest entries
    # of every state and filter afterwards, so older failures are never listed
    # once `limit` (100 on the page) newer events exist.
    http, sid = history
    assert sids(events(http, outcome="failing", limit="2")) == [sid["retrying"], sid["dead"]]
    assert sids(events(http, outcome="failing", limit="1")) == [sid["retrying"]]


# -- /events/<id> -----------------------------------------------------------------------
def test_the_detail_page_shows_the_event_whole(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        params = sms_status_payload("delivered")
        carrier.down = True
        sid = send(listener, params)
        row = wait_outcomes(http, {sid: "dead_letter"})[sid]
        page = http.get(f"/events/{row['id']}")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        text = page.text
        assert f"<h1>sms {sid} (delivered)</h1>" in text
        assert "Traceback (most recent call last):" in text
        assert f"RuntimeError: {ERROR} for {sid}" in text
        assert "<th>I-Twilio-Idempotency-Token</th>" in text
        # The headers the inbox kept, as Twilio sent them.
        assert "<tr><th>User-Agent</th><td><code>TwilioProxy/1.1</code></td></tr>" in text
        assert "<th>Content-Type</th>" in text
        assert "X-Twilio-Signature" not in text  # checked on arrival, not kept
        for name, value in params.items():
            assert f"<tr><th>{name}</th><td><code>{value}</code></td></tr>" in text


@pytest.mark.parametrize(
    "path",
    [
        "/events/999999",
        "/events/0",
        "/events/abc",
        "/events/",
        "/events/1/more",
        "/events/-1",
        "/events/%C2%B2",  # "²": a digit to str.isdigit(), not to int()
        "/events/99999999999999999999999",  # beyond SQLite's integers
        "/nothing-here",
    ],
)
def test_an_unknown_event_or_page_is_404(tmp_path: Path, path: str) -> None:
    with inspected(Carrier(), tmp_path) as (listener, http):
        send(listener, sms_status_payload("sent"))
        response = http.get(path)
        assert response.status_code == 404, (path, response.status_code, response.text)


# -- replays ----------------------------------------------------------------------------
def test_replay_needs_the_inspectors_header(tmp_path: Path) -> None:
    carrier = Carrier(down=True)
    with inspected(carrier, tmp_path) as (listener, http):
        sid = send(listener, sms_status_payload("delivered"))
        wait_outcomes(http, {sid: "dead_letter"})
        for headers in ({}, {"X-Inspector": "yes"}, {"X-Requested-With": "XMLHttpRequest"}):
            response = http.post("/api/replay", json={}, headers=headers)
            assert response.status_code == 403, headers
        # A cross-site form can post text/plain, never a custom header.
        form = http.post(
            "/api/replay", content=b'{"ids": []}', headers={"Content-Type": "text/plain"}
        )
        assert form.status_code == 403
        assert carrier.runs(sid) == 2  # nothing ran again
        assert wait_outcomes(http, {sid: "dead_letter"})
        assert http.get("/api/replay").status_code == 404
        assert http.post("/api/events", headers=REPLAY).status_code == 404
        refused = http.put("/api/replay", headers=REPLAY)
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'"ids"',
        b"42",
        b'{"ids": 1}',
        b'{"ids": "1"}',
        b'{"ids": [1.5]}',
        b'{"ids": ["1"]}',
        b'{"ids": [1,',
        b"\xff\xfe",
    ],
)
def test_a_bad_replay_request_is_400(tmp_path: Path, body: bytes) -> None:
    carrier = Carrier(down=True)
    with inspected(carrier, tmp_path) as (listener, http):
        sid = send(listener, sms_status_payload("delivered"))
        wait_outcomes(http, {sid: "dead_letter"})
        response = http.post(
            "/api/replay", content=body, headers={**REPLAY, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "expected" in response.text
        assert carrier.runs(sid) == 2


def test_replay_everything_runs_every_dead_letter_again(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        handled = send(listener, sms_status_payload("sent"))
        wait_outcomes(http, {handled: "handled"})
        carrier.down = True
        dead = [
            send(listener, sms_status_payload("delivered")),
            send(listener, call_status_payload("completed")),
            send(listener, sms_status_payload("undelivered")),
        ]
        wait_outcomes(http, dict.fromkeys(dead, "dead_letter"))
        assert http.get("/api/events").json()["counters"]["dead_letters"] == 3
        carrier.down = False

        response = http.post("/api/replay", json={}, headers=REPLAY)
        assert response.status_code == 200
        assert response.json() == {"replayed": 3}

        rows = wait_outcomes(http, dict.fromkeys([handled, *dead], "handled"))
        for sid in dead:
            assert carrier.runs(sid) == 3
            assert rows[sid]["error"] is None
            assert rows[sid]["attempts"] == 1  # fresh attempts
        assert carrier.runs(handled) == 1
        assert http.get("/api/events").json()["counters"]["dead_letters"] == 0
        # Nothing left to replay.
        assert http.post("/api/replay", json={}, headers=REPLAY).json() == {"replayed": 0}


def test_replay_of_chosen_ids_runs_only_those(tmp_path: Path) -> None:
    carrier = Carrier(down=True)
    with inspected(carrier, tmp_path) as (listener, http):
        first = send(listener, sms_status_payload("delivered"))
        second = send(listener, call_status_payload("no-answer"))
        rows = wait_outcomes(http, {first: "dead_letter", second: "dead_letter"})
        carrier.down = False

        response = http.post("/api/replay", json={"ids": [rows[first]["id"]]}, headers=REPLAY)
        assert response.json() == {"replayed": 1}
        wait_outcomes(http, {first: "handled"})
        assert carrier.runs(second) == 2
        assert events(http, outcome="dead_letter")[0]["sid"] == second
        # No id, or an unknown one: nothing replayed.
        assert http.post("/api/replay", json={"ids": []}, headers=REPLAY).json() == {"replayed": 0}
        assert http.post("/api/replay", json={"ids": [987654]}, headers=REPLAY).json() == {
            "replayed": 0
        }
        assert carrier.runs(second) == 2


# -- the token ----------------------------------------------------------------------
@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[twilio.Listener, httpx.Client, str]]:
    """An inspector bound beyond loopback (with its token), holding one dead letter."""
    carrier = Carrier(down=True)
    with inspected(
        carrier, tmp_path, inspector_host="0.0.0.0", inspector_token=INSPECTOR_TOKEN
    ) as (listener, http):
        sid = send(listener, sms_status_payload("delivered"))
        deadline = time.monotonic() + WAIT
        bearer = {"Authorization": f"Bearer {INSPECTOR_TOKEN}"}
        while http.get("/api/events", headers=bearer).json()["counters"]["dead_letters"] != 1:
            assert time.monotonic() < deadline, "no dead letter"
            time.sleep(0.02)
        yield listener, http, sid


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"headers": {"Authorization": "Bearer wrong-token-but-long-enough"}},
        {"headers": {"Authorization": f"Bearer {INSPECTOR_TOKEN}x"}},
        {"headers": {"Authorization": f"Bearer {INSPECTOR_TOKEN[:-1]}"}},
        {"headers": {"Authorization": f"Basic {INSPECTOR_TOKEN}"}},
        {"headers": {"Authorization": INSPECTOR_TOKEN}},
        {"headers": {"Cookie": f"{COOKIE}=wrong-token-but-long-enough"}},
        {"headers": {"Cookie": f"other={INSPECTOR_TOKEN}"}},
        {"params": {"token": "wrong-token-but-long-enough"}},
        {"params": {"token": ""}},
    ],
    ids=[
        "none", "wrong-bearer", "longer-bearer", "shorter-bearer", "basic", "bare",
        "wrong-cookie", "other-cookie", "wrong-query", "empty-query",
    ],
)  # fmt: skip
def test_without_the_right_token_401(
    guarded: tuple[twilio.Listener, httpx.Client, str], credentials: dict[str, Any]
) -> None:
    _, http, sid = guarded
    for method, path in (
        ("GET", "/"), ("GET", "/api/events"), ("GET", "/events/1"), ("POST", "/api/replay"),
        ("GET", "/nothing-here"), ("HEAD", "/"),
    ):  # fmt: skip
        headers = {**REPLAY, **credentials.get("headers", {})}
        response = http.request(
            method, path, headers=headers, params=credentials.get("params"), json={}
        )
        assert response.status_code == 401, (method, path, response.status_code)
        assert sid not in response.text
        assert "set-cookie" not in response.headers
    # Nothing was replayed behind the 401s.
    bearer = {"Authorization": f"Bearer {INSPECTOR_TOKEN}"}
    assert http.get("/api/events", headers=bearer).json()["counters"]["dead_letters"] == 1


def test_the_right_token_by_bearer_cookie_or_query(
    guarded: tuple[twilio.Listener, httpx.Client, str],
) -> None:
    _, http, sid = guarded
    bearer = http.get("/api/events", headers={"Authorization": f"Bearer {INSPECTOR_TOKEN}"})
    assert bearer.status_code == 200
    assert sids(bearer.json()["events"]) == [sid]
    lower = http.get("/api/events", headers={"Authorization": f"bearer {INSPECTOR_TOKEN}"})
    assert lower.status_code == 200
    cookie = http.get("/api/events", headers={"Cookie": f"a=b; {COOKIE}={INSPECTOR_TOKEN}"})
    assert cookie.status_code == 200
    replay = http.post(
        "/api/replay", params={"token": INSPECTOR_TOKEN}, headers=REPLAY, json={"ids": []}
    )
    assert replay.status_code == 200


@pytest.mark.parametrize("path", ["/", "/events/1", "/api/events"])
def test_the_token_in_the_address_becomes_a_strict_httponly_cookie(
    guarded: tuple[twilio.Listener, httpx.Client, str], path: str
) -> None:
    _, http, _ = guarded
    response = http.get(path, params={"token": INSPECTOR_TOKEN, "kind": "sms"})
    assert response.status_code == 303
    assert response.headers["location"] == path  # no token left in the address
    assert response.content == b""
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 1
    assert re.search(r";\s*HttpOnly\s*(;|$)", cookies[0], re.IGNORECASE)
    jar: SimpleCookie = SimpleCookie()
    jar.load(cookies[0])
    morsel = jar[COOKIE]
    # A digest of the token, not the token itself: ASCII whatever the token.
    assert morsel.value == hashlib.sha256(INSPECTOR_TOKEN.encode()).hexdigest()
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/"
    # A browser then follows with the cookie.
    with httpx.Client(base_url=str(http.base_url), trust_env=False, timeout=10) as browser:
        landed = browser.get(path, params={"token": INSPECTOR_TOKEN}, follow_redirects=True)
        assert landed.status_code == 200
        assert landed.url.path == path
        assert landed.url.query == b""
        assert browser.get("/api/events").status_code == 200


@pytest.mark.parametrize(
    ("valid", "wrong"),
    [("cookie", "stale-token-from-an-old-link"), ("bearer", "x; Max-Age=0; Domain=example")],
)
def test_a_wrong_token_in_the_address_never_becomes_the_cookie(
    guarded: tuple[twilio.Listener, httpx.Client, str], valid: str, wrong: str
) -> None:
    # BUG: the query token is not checked when a cookie or a bearer token is
    # valid, and is then stored as the cookie as it is: an old link logs the
    # user out, and the address can add attributes to the cookie.
    _, http, _ = guarded
    credentials = (
        {"Cookie": f"{COOKIE}={INSPECTOR_TOKEN}"}
        if valid == "cookie"
        else {"Authorization": f"Bearer {INSPECTOR_TOKEN}"}
    )
    response = http.get("/", params={"token": wrong}, headers=credentials)
    for cookie in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(cookie)
        assert jar[COOKIE].value == INSPECTOR_TOKEN, cookie
        assert not jar[COOKIE]["max-age"], cookie
        assert not jar[COOKIE]["domain"], cookie


def test_a_non_ascii_token_works_through_its_cookie(tmp_path: Path) -> None:
    # BUG: the cookie is written in Latin-1 and checked in UTF-8: with a token
    # that is not ASCII the cookie set by ?token= never opens the inspector
    # (Chromium, for one, then lands on the 401 page).
    token = "señal-secreta-del-inspector"
    with inspected(Carrier(), tmp_path, inspector_host="0.0.0.0", inspector_token=token) as (
        listener,
        _,
    ):
        port = port_of(listener)
        host = f"Host: 127.0.0.1:{port}\r\n".encode()
        status, headers, _ = raw(
            port, b"GET /?token=" + quote(token).encode() + b" HTTP/1.1\r\n" + host + b"\r\n"
        )
        assert status == 303
        cookie = headers["set-cookie"].encode("latin-1").split(b";")[0]
        status, _, _ = raw(port, b"GET / HTTP/1.1\r\n" + host + b"Cookie: " + cookie + b"\r\n\r\n")
        assert status == 200, cookie


# -- loopback without a token: names other than loopback ones -----------------------
@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", "localhost.evil:{port}", ""],
)
def test_on_loopback_without_token_other_host_names_get_421(tmp_path: Path, host: str) -> None:
    with inspected(Carrier(), tmp_path) as (listener, http):
        sid = send(listener, sms_status_payload("sent"))
        wait_outcomes(http, {sid: "handled"})
        port = port_of(listener)
        name = host.format(port=port)
        for method, path, extra in (
            ("GET", "/", ""),
            ("GET", "/api/events", ""),
            ("POST", "/api/replay", "X-Inspector: replay\r\nContent-Length: 2\r\n"),
        ):
            content = "{}" if method == "POST" else ""
            request = f"{method} {path} HTTP/1.1\r\nHost: {name}\r\n{extra}\r\n{content}"
            status, headers, body = raw(port, request.encode())
            assert status == 421, (name, method, path, status)
            assert sid.encode() not in body
            assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "[::1]:{port}", "localhost",
     "127.0.0.1", "[::1]"],
)  # fmt: skip
def test_on_loopback_without_token_loopback_names_are_served(tmp_path: Path, host: str) -> None:
    # BUG for "[::1]" without a port: the port is cut at the last colon, which
    # for a bare IPv6 literal is inside the address ("[:"), and the name is refused.
    with inspected(Carrier(), tmp_path) as (listener, http):
        sid = send(listener, sms_status_payload("sent"))
        wait_outcomes(http, {sid: "handled"})
        port = port_of(listener)
        name = host.format(port=port)
        status, _, body = raw(port, f"GET /api/events HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
        assert status == 200, (name, status, body)
        assert sid.encode() in body


def test_a_token_on_loopback_replaces_the_host_check(tmp_path: Path) -> None:
    with inspected(Carrier(), tmp_path, inspector_token=INSPECTOR_TOKEN) as (listener, _):
        port = port_of(listener)
        status, _, _ = raw(port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status == 401
        bearer = f"Authorization: Bearer {INSPECTOR_TOKEN}\r\n"
        status, _, _ = raw(port, f"GET / HTTP/1.1\r\nHost: box.lan\r\n{bearer}\r\n".encode())
        assert status == 200


# -- escaping -----------------------------------------------------------------------
def test_data_is_escaped_on_the_detail_page(tmp_path: Path) -> None:
    carrier = Carrier(down=True)  # the error names the SID: the traceback carries it too
    with inspected(carrier, tmp_path) as (listener, http):
        evil_sid = "SM<script>alert('sid')</script>"
        params = inbound_message_payload(
            sid=evil_sid, Body='<script>alert("body")</script> & <img src=x onerror=alert(1)>'
        )
        params["<script>name</script>"] = "value"
        send(listener, params)
        row = wait_outcomes(http, {evil_sid: "dead_letter"})[evil_sid]
        assert row["sid"] == evil_sid  # JSON keeps the data as it is
        page = http.get(f"/events/{row['id']}").text
        scripts = re.findall(r"<script\b", page, re.IGNORECASE)
        assert len(scripts) == 1  # the page's own, for its Replay button
        assert "<img" not in page
        assert "alert('sid')</script>" not in page
        assert "&lt;script&gt;alert(&#x27;sid&#x27;)&lt;/script&gt;" in page
        assert "&lt;script&gt;alert(&quot;body&quot;)&lt;/script&gt; &amp; &lt;img" in page
        assert "<th>&lt;script&gt;name&lt;/script&gt;</th>" in page
        assert f"RuntimeError: {ERROR} for SM&lt;script&gt;" in page
        # The list page holds no data: its script writes it with textContent.
        index = http.get("/").text
        assert evil_sid not in index
        assert "innerHTML" not in index


# -- configuration ------------------------------------------------------------------
def test_the_inspector_needs_an_inbox(tmp_path: Path) -> None:
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], inspector=True)
    with pytest.raises(twilio.ConfigurationError, match="inbox"):
        listener.start()
    assert listener.inspector_url is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_beyond_loopback_the_inspector_needs_a_token(tmp_path: Path, host: str) -> None:
    listener = twilio.Listener(
        0,
        host="127.0.0.1",
        auth_tokens=[TOKEN],
        inbox=f"sqlite:///{tmp_path}/events.db",
        inspector=True,
        inspector_port=0,
        inspector_host=host,
    )
    with pytest.raises(twilio.ConfigurationError, match="TWILIO_TRIGGER_INSPECTOR_TOKEN"):
        listener.start()
    assert listener.inspector_url is None


@pytest.mark.parametrize("token", ["short", "fifteen-chars!!", "   padded-to-16   "])
def test_a_short_token_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    options: dict[str, Any] = {
        "host": "127.0.0.1", "auth_tokens": [TOKEN], "inbox": f"sqlite:///{tmp_path}/e.db",
        "inspector": True, "inspector_port": 0, "inspector_host": "0.0.0.0",
    }  # fmt: skip
    with pytest.raises(twilio.ConfigurationError, match="16"):
        twilio.Listener(0, inspector_token=token, **options)
    monkeypatch.setenv("TWILIO_TRIGGER_INSPECTOR_TOKEN", token)
    with pytest.raises(twilio.ConfigurationError, match="TWILIO_TRIGGER_INSPECTOR_TOKEN"):
        twilio.Listener(0, **options)


def test_an_inspector_port_in_use_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listener = twilio.Listener(
            0,
            host="127.0.0.1",
            auth_tokens=[TOKEN],
            inbox=f"sqlite:///{tmp_path}/events.db",
            inspector=True,
            inspector_port=taken.getsockname()[1],
        )
        with pytest.raises(twilio.ConfigurationError, match="cannot listen"):
            listener.start()
        assert listener.inspector_url is None


def test_the_inspector_stops_with_the_listener(tmp_path: Path) -> None:
    with inspected(Carrier(), tmp_path) as (listener, http):
        port = port_of(listener)
        assert http.get("/").status_code == 200  # a kept-alive connection, like a page's
        send(listener, sms_status_payload("sent"))
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert listener.inspector_url is None
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


# -- headers ------------------------------------------------------------------------
def test_every_answer_carries_the_security_headers(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        sid = send(listener, sms_status_payload("sent"))
        row = wait_outcomes(http, {sid: "handled"})[sid]
        answers = {
            "page": http.get("/"),
            "json": http.get("/api/events"),
            "detail": http.get(f"/events/{row['id']}"),
            "404": http.get("/events/424242"),
            "403": http.post("/api/replay", json={}),
            "400": http.post("/api/replay", content=b"nope", headers=REPLAY),
            "405": http.delete("/"),
            "replay": http.post("/api/replay", json={}, headers=REPLAY),
            "421": http.get("/", headers={"Host": "evil.example"}),
        }
    with inspected(
        carrier, tmp_path, inspector_host="0.0.0.0", inspector_token=INSPECTOR_TOKEN
    ) as (_, http):
        answers["401"] = http.get("/")
        answers["303"] = http.get("/", params={"token": INSPECTOR_TOKEN})
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "page": 200, "json": 200, "detail": 200, "404": 404, "403": 403, "400": 400,
        "405": 405, "replay": 200, "421": 421, "401": 401, "303": 303,
    }  # fmt: skip
    for name, response in answers.items():
        headers = response.headers
        csp = headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp, name
        assert headers.get("x-content-type-options") == "nosniff", name
        assert headers.get("cache-control") == "no-store", name
        assert "access-control-allow-origin" not in headers, name
        assert "server" not in headers, name


def test_the_inspector_cannot_be_framed(tmp_path: Path) -> None:
    # BUG (hardening): neither CSP frame-ancestors nor X-Frame-Options, so any
    # web page can frame a loopback inspector (no token there, and the Host
    # check passes: the frame asks 127.0.0.1) and have its user click "Replay
    # all dead letters" in it (clickjacking), which runs callbacks again.
    with inspected(Carrier(), tmp_path) as (_, http):
        for path in ("/", "/events/1"):
            headers = http.get(path).headers
            csp = headers.get("content-security-policy", "")
            framing = re.search(r"frame-ancestors\s+([^;]*)", csp)
            denied = framing is not None and framing.group(1).strip() in ("'none'", "'self'")
            assert denied or headers.get("x-frame-options", "").upper() in ("DENY", "SAMEORIGIN"), (
                path,
                dict(headers),
            )
