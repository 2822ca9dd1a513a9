"""The inspector's dispatch control over real HTTP (no browser): each callback's limits
and breaker, shown by ``GET /api/limits``, set and cleared by ``POST /api/limits``,
breakers closed by ``POST /api/breakers``.

A real listener on loopback with its inspector and a real inbox (a SQLite file; for
closing a breaker also a key prefix of its own on the shared Redis and a schema of
its own in PostgreSQL); events posted the way Twilio does (signed by twilio-python).
What the API keeps is read back by an inbox object of its own and by the command
line (``inbox limits``), and the listener's workers follow it.  The changes take the
guards of the other changes: the inspector's header, loopback names, the token
beyond loopback, bounded and strictly parsed bodies.  Waits poll for state.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import invoke
from tests.inbox_backends import BACKENDS, Backend, Session, backend_of, session_of
from tests.payloads import signed_post, sms_status_payload
from tests.postgres_support import pg_schema, postgres_database
from tests.redis_support import MEMORY, prefix, redis_url
from twilio_trigger import Limit
from twilio_trigger._control import BREAKER, LIMIT, BreakerState
from twilio_trigger.inbox import Inbox, State
from twilio_trigger.inbox.sqlite import SQLiteInbox

from ._support import LOGGER, TOKEN, running, wait_until
from .test_dispatch_control import Downstream, counts
from .test_inspector_http import COOKIE, INSPECTOR_TOKEN, REPLAY, Carrier, inspected, send

pytestmark = pytest.mark.usefixtures("no_listener_options")


__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest

LIMITS = {"X-Inspector": "limits"}
BREAKERS = {"X-Inspector": "breaker"}
LATER = 3600.0


def view(http: httpx.Client, **headers: str) -> dict[str, Any]:
    answer = http.get("/api/limits", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    found: dict[str, Any] = answer.json()
    return found


def rows(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["callback"]: row for row in document["callbacks"]}


def set_limit(http: httpx.Client, callback: str, text: str) -> dict[str, Any]:
    answer = http.post("/api/limits", headers=LIMITS, json={"callback": callback, "limit": text})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def short(value: object) -> str:
    """A test's id: the reason it expects (what it sends is long, or bytes)."""
    if isinstance(value, bytes):
        return ""
    return "too-large" if value is None else str(value)[:40]


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO
    ]


# -- what is shown, set, merged and cleared ----------------------------------------------
def test_the_view_shows_the_option_and_what_the_page_keeps_merged_and_cleared(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    url = f"sqlite:///{tmp_path}/events.db"
    with inspected(
        Carrier(), tmp_path, limits="on_delivered: concurrency=3; on_failed: rate=2",
        breaker_failures=4, breaker_cooldown=60,
    ) as (_, http):  # fmt: skip
        assert view(http) == {
            "paused": False,
            "callbacks": [
                {"callback": "on_delivered", "option": "concurrency=3", "kept": None,
                 "in_force": "3 at once, breaker after 4 failures (60 s)", "breaker": None},
                {"callback": "on_failed", "option": "rate=2", "kept": None,
                 "in_force": "2/s (burst 1), breaker after 4 failures (60 s)", "breaker": None},
            ],
        }  # fmt: skip

        first = set_limit(http, "on_delivered", "rate=5, burst=10")
        assert rows(first)["on_delivered"]["kept"] == "rate=5, burst=10"
        assert rows(first)["on_delivered"]["in_force"] == (
            "3 at once, 5/s (burst 10), breaker after 4 failures (60 s)"
        )
        # Merged over the kept one, field by field, as `inbox limit` does.
        second = set_limit(http, "on_delivered", "concurrency=1 cooldown=5")
        assert second == view(http)
        assert rows(second)["on_delivered"] == {
            "callback": "on_delivered", "option": "concurrency=3",
            "kept": "concurrency=1, rate=5, burst=10, cooldown=5",
            "in_force": "1 at once, 5/s (burst 10), breaker after 4 failures (5 s)",
            "breaker": None,
        }  # fmt: skip
        # A callback without an option gets a row of its own.
        third = set_limit(http, "on_sent", "concurrency=0, breaker=2")
        assert rows(third)["on_sent"] == {
            "callback": "on_sent", "option": None, "kept": "concurrency=0, breaker=2",
            "in_force": "breaker after 2 failures (60 s)", "breaker": None,
        }  # fmt: skip
        assert [row["callback"] for row in third["callbacks"]] == [
            "on_delivered", "on_failed", "on_sent",
        ]  # fmt: skip

        # The inbox keeps it: the command line reads it back.
        shown = invoke("inbox", "limits", "--inbox", url)
        assert shown.exit_code == 0, shown.output
        assert "on_delivered: concurrency=1, rate=5, burst=10, cooldown=5" in shown.output
        assert "on_sent: concurrency=0, breaker=2" in shown.output

        cleared = http.post(
            "/api/limits", headers=LIMITS, json={"callback": "on_delivered", "clear": True}
        )
        assert cleared.status_code == 200, cleared.text
        assert rows(cleared.json())["on_delivered"] == {
            "callback": "on_delivered", "option": "concurrency=3", "kept": None,
            "in_force": "3 at once, breaker after 4 failures (60 s)", "breaker": None,
        }  # fmt: skip
        shown = invoke("inbox", "limits", "--inbox", url)
        assert "on_delivered:" not in shown.output
        # Set again after a clear: from nothing, not from what was cleared.
        again = set_limit(http, "on_delivered", "burst=2")
        assert rows(again)["on_delivered"]["kept"] == "burst=2"
    lines = said(caplog)
    assert "the inspector set the limits of on_delivered: rate=5, burst=10" in lines
    assert (
        "the inspector set the limits of on_delivered: concurrency=1, rate=5, burst=10, "
        "cooldown=5" in lines
    )
    assert "the inspector set the limits of on_sent: concurrency=0, breaker=2" in lines
    assert "the inspector cleared the limits of on_delivered kept in the inbox" in lines


def test_a_limit_kept_unreadable_is_replaced(tmp_path: Path) -> None:
    with inspected(Carrier(), tmp_path) as (_, http):
        session = backend_of_sqlite(tmp_path)

        async def spoil(inbox: Inbox) -> None:
            await inbox.set_setting(LIMIT + "on_delivered", "{not json")

        session(spoil)
        assert view(http)["callbacks"] == []  # the workers say so in the log
        found = set_limit(http, "on_delivered", "rate=3")
        assert rows(found)["on_delivered"]["kept"] == "rate=3"

        async def read(inbox: Inbox) -> str | None:
            return await inbox.setting(LIMIT + "on_delivered")

        kept = session(read)
        assert kept is not None
        assert Limit.from_json(kept) == Limit(rate=3)


def backend_of_sqlite(tmp_path: Path) -> Session[Any]:
    return session_of(lambda: SQLiteInbox(tmp_path / "events.db"))


# -- the workers follow what the page sets ------------------------------------------------
def test_the_workers_follow_a_concurrency_limit_set_and_cleared_from_the_api(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    service = Downstream()
    service.gate.clear()
    with running(
        service, inbox=f"sqlite:///{path}", concurrency=4, limits="on_delivered: concurrency=3",
        inspector=True, inspector_port=0,
    ) as listener:  # fmt: skip
        assert listener.inspector_url is not None
        with httpx.Client(base_url=listener.inspector_url, timeout=10, trust_env=False) as http:
            found = set_limit(http, "on_delivered", "concurrency=1")
            assert rows(found)["on_delivered"]["in_force"] == "1 at once"
            for number in range(4):
                payload = sms_status_payload("delivered", sid=f"SM{number:032d}")
                answer = signed_post(listener.url, payload, TOKEN)
                assert answer.status_code == 200, answer.text  # stored, acknowledged
            wait_until(lambda: service.running == 1, "one callback to run")
            stored = counts(path)  # the others wait in the inbox
            assert stored[State.PENDING] + stored[State.RUNNING] == 4
            service.gate.set()
            wait_until(lambda: len(service.done) == 4, "the events handled one at a time")
            assert service.most == 1

            # Cleared from the page: the option's three at once again.
            cleared = http.post(
                "/api/limits", headers=LIMITS, json={"callback": "on_delivered", "clear": True}
            )
            assert rows(cleared.json())["on_delivered"]["in_force"] == "3 at once"
            service.gate.clear()
            service.most = 0
            for number in range(4, 10):
                payload = sms_status_payload("delivered", sid=f"SM{number:032d}")
                assert signed_post(listener.url, payload, TOKEN).status_code == 200
            wait_until(lambda: service.running == 3, "three callbacks to run")
            service.gate.set()
            wait_until(lambda: len(service.done) == 10, "the rest handled")
            assert service.most == 3
    assert counts(path)[State.DONE] == 10  # every event ran once: no attempt counted


# -- breakers ---------------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return backend_of(request.param, request, tmp_path)


def listener_options(backend_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The listener's options naming the same inbox as :func:`backend_of`."""
    if backend_name == "sqlite":
        return {"inbox": f"sqlite:///{tmp_path}/events.db"}
    if backend_name == "redis":
        return {
            "inbox": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("prefix"),
            "redis_durability": MEMORY,
        }
    return {
        "inbox": request.getfixturevalue("postgres_database"),
        "postgres_schema": request.getfixturevalue("pg_schema"),
    }


def test_closing_a_breaker_from_the_api_makes_the_events_it_held_due_now(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger=LOGGER)
    later = time.time() + LATER
    opened = time.time()

    async def open_and_hold(inbox: Inbox) -> int:
        # Dispatch paused: the listener's workers take nothing, so the entry
        # stays where this puts it, held by the open breaker for an hour.
        await inbox.set_paused(True)
        payload = sms_status_payload("delivered")
        await inbox.put(
            "key-held", "sms", payload["MessageSid"], "delivered", list(payload.items())
        )
        state = BreakerState(later, opened, 5, "ConnectionError: the CRM is down <b>")
        await inbox.set_setting(BREAKER + "on_delivered", state.json())
        [entry] = await inbox.claim(1)
        await inbox.defer(entry.id, later, BREAKER + "on_delivered")
        return entry.id

    entry_id = backend.session(open_and_hold)
    options = listener_options(request.node.callspec.params["backend"], request, tmp_path)
    with inspected(Carrier(), tmp_path, **options) as (_, http):
        shown = view(http)
        assert shown["paused"] is True
        assert shown["callbacks"] == [
            {"callback": "on_delivered", "option": None, "kept": None, "in_force": "no limit",
             "breaker": {"until": later, "opened_at": opened, "failures": 5,
                         "error": "ConnectionError: the CRM is down <b>", "trying": False}},
        ]  # fmt: skip

        closed = http.post("/api/breakers", headers=BREAKERS, json={"close": "on_delivered"})
        assert closed.status_code == 200, closed.text
        assert closed.json() == {"paused": True, "callbacks": [], "was_open": True}

        async def after(inbox: Inbox) -> tuple[str | None, list[int]]:
            setting = await inbox.setting(BREAKER + "on_delivered")
            return setting, [entry.id for entry in await inbox.claim(5)]  # due now

        assert backend.session(after) == ("", [entry_id])
        again = http.post("/api/breakers", headers=BREAKERS, json={"close": "on_delivered"})
        assert again.json() == {"paused": True, "callbacks": [], "was_open": False}
    lines = said(caplog)
    assert "the inspector closed the breaker of on_delivered" in lines
    assert "the inspector closed the breaker of on_delivered (it was not open)" in lines


def test_a_breaker_opened_by_failures_is_shown_and_closing_it_runs_what_it_held(
    tmp_path: Path,
) -> None:
    carrier = Carrier(down=True)
    path = tmp_path / "events.db"
    with inspected(
        carrier, tmp_path, limits="on_delivered: breaker=1, cooldown=3600", max_attempts=50,
        retry_backoff=0.01, retry_backoff_max=0.02,
    ) as (listener, http):  # fmt: skip
        first = send(listener, sms_status_payload("delivered"))
        opened = wait_until_open(http)
        assert opened["failures"] == 1
        assert opened["trying"] is False
        assert opened["error"].startswith("RuntimeError: carrier lookup exploded")
        assert opened["until"] - opened["opened_at"] == pytest.approx(3600)
        held = [send(listener, sms_status_payload("delivered")) for _ in range(2)]
        # Every one of them waits in the inbox, none running, none run again.
        wait_until(
            lambda: (found := counts(path))[State.PENDING] == 3 and found[State.RUNNING] == 0,
            "the three events held",
        )
        assert carrier.runs(first) == 1
        assert all(carrier.runs(sid) == 0 for sid in held)

        carrier.down = False
        closed = http.post("/api/breakers", headers=BREAKERS, json={"close": "on_delivered"})
        assert closed.json()["was_open"] is True
        assert rows(closed.json())["on_delivered"]["breaker"] is None
        wait_until(lambda: counts(path)[State.DONE] == 3, "the held events handled")
        assert [carrier.runs(sid) for sid in (first, *held)] == [2, 1, 1]


def wait_until_open(http: httpx.Client) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def is_open() -> bool:
        row = rows(view(http)).get("on_delivered")
        if row and row["breaker"]:
            found.update(row["breaker"])
            return True
        return False

    wait_until(is_open, "the breaker to open")
    return found


# -- the guards --------------------------------------------------------------------------
def test_changes_need_their_own_header_and_a_loopback_name(tmp_path: Path) -> None:
    with inspected(Carrier(), tmp_path) as (_, http):
        for path, body, header in (
            ("/api/limits", {"callback": "on_delivered", "limit": "rate=1"}, LIMITS),
            ("/api/breakers", {"close": "on_delivered"}, BREAKERS),
        ):
            for headers in (
                {}, REPLAY, {"X-Inspector": "dispatch"}, {"X-Inspector": "yes"},
                {"X-Requested-With": "XMLHttpRequest"},
                BREAKERS if header is LIMITS else LIMITS,
            ):  # fmt: skip
                answer = http.post(path, json=body, headers=headers)
                assert answer.status_code == 403, (path, headers)
                assert "from the inspector's page" in answer.text
            # A cross-site form can post text/plain, never a custom header.
            form = http.post(path, content=b"callback=on_delivered", headers={
                "Content-Type": "application/x-www-form-urlencoded",
            })  # fmt: skip
            assert form.status_code == 403
            # Another name for this server (DNS rebinding): refused before anything.
            rebound = http.post(path, json=body, headers={**header, "Host": "evil.example"})
            assert rebound.status_code == 421
            assert http.put(path, json=body, headers=header).status_code == 405
            assert http.delete(path, headers=header).status_code == 405
        assert http.get("/api/limits", headers={"Host": "evil.example"}).status_code == 421
        assert http.get("/api/breakers").status_code == 404  # nothing to read there
        assert view(http)["callbacks"] == []


def test_beyond_loopback_they_need_the_token(tmp_path: Path) -> None:
    with inspected(
        Carrier(), tmp_path, inspector_host="0.0.0.0", inspector_token=INSPECTOR_TOKEN
    ) as (_, http):
        bearer = {"Authorization": f"Bearer {INSPECTOR_TOKEN}"}
        for credentials in (
            {}, {"Authorization": f"Bearer {INSPECTOR_TOKEN}x"},
            {"Cookie": f"{COOKIE}=wrong-token-but-long-enough"},
        ):  # fmt: skip
            assert http.get("/api/limits", headers=credentials).status_code == 401
            limit = http.post(
                "/api/limits", headers={**LIMITS, **credentials},
                json={"callback": "on_delivered", "limit": "rate=1"},
            )  # fmt: skip
            assert limit.status_code == 401, credentials
            close = http.post(
                "/api/breakers", headers={**BREAKERS, **credentials}, json={"close": "on_sent"}
            )
            assert close.status_code == 401, credentials
        assert view(http, **bearer)["callbacks"] == []
        # The token without the header: still refused (the page sends both).
        refused = http.post(
            "/api/limits", headers=bearer, json={"callback": "on_delivered", "limit": "rate=1"}
        )
        assert refused.status_code == 403
        answer = http.post(
            "/api/limits", headers={**LIMITS, **bearer},
            json={"callback": "on_delivered", "limit": "rate=1"},
        )  # fmt: skip
        assert rows(answer.json())["on_delivered"]["kept"] == "rate=1"
        closed = http.post(
            "/api/breakers", headers={**BREAKERS, **bearer}, json={"close": "on_delivered"}
        )
        assert closed.json()["was_open"] is False


LIMIT_PREFIX = (
    'expected {"callback": "on_delivered", "limit": "rate=5, burst=10"} or '
    '{"callback": "on_delivered", "clear": true}: '
)
NOT_A_CALLBACK = '"callback" is not a callback an event goes to'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"{}", 'a "callback", such as "on_delivered"'),
        (b"[]", "not a JSON object"),
        (b'"on_delivered"', "not a JSON object"),
        (b'{"callback": "on_delivered"}', 'a "limit", such as "rate=5, burst=10"'),
        (b'{"limit": "rate=5"}', 'a "callback"'),
        (b'{"callback": "on_delivred", "limit": "rate=5"}', NOT_A_CALLBACK),
        (b'{"callback": "limit:on_delivered", "limit": "rate=5"}', NOT_A_CALLBACK),
        (b'{"callback": "' + b"x" * 5000 + b'", "limit": "rate=5"}', NOT_A_CALLBACK),
        (b'{"callback": 5, "limit": "rate=5"}', "no numbers"),
        (b'{"callback": null, "limit": "rate=5"}', '"callback" must be a callback\'s name'),
        (b'{"callback": true, "limit": "rate=5"}', '"callback" must be a callback\'s name'),
        (b'{"callback": "on_delivered", "limit": 5}', "no numbers"),
        (b'{"callback": "on_delivered", "limit": ' + b"9" * 5000 + b"}", "no numbers"),
        (b'{"callback": "on_delivered", "limit": 1e999}', "no numbers"),
        (b'{"callback": "on_delivered", "limit": NaN}', "NaN and Infinity are not"),
        (b'{"callback": "on_delivered", "limit": true}', '"limit" must be text'),
        (b'{"callback": "on_delivered", "limit": ""}', "a limit names at least one of"),
        (b'{"callback": "on_delivered", "limit": "speed=3"}', "written as name=value"),
        (b'{"callback": "on_delivered", "limit": "rate=5, rate=6"}', "names rate twice"),
        (b'{"callback": "on_delivered", "limit": "rate=-1"}', "rate is 0 or more"),
        (b'{"callback": "on_delivered", "limit": "rate=inf"}', "rate is 0 or more"),
        (b'{"callback": "on_delivered", "limit": "rate=nan"}', "rate is 0 or more"),
        (b'{"callback": "on_delivered", "limit": "burst=0"}', "burst is between 1 and"),
        (b'{"callback": "on_delivered", "limit": "concurrency=1.5"}', "concurrency is a number"),
        (b'{"callback": "on_delivered", "limit": "cooldown=0"}', "cooldown is more than 0"),
        (b'{"callback": "on_delivered", "limit": "concurrency=' + b"9" * 150 + b'"}',
         "concurrency is between 0 and"),
        (b'{"callback": "on_delivered", "limit": "' + b"rate=1 " * 40 + b'"}',
         '"limit" is at most 200 characters'),
        (b'{"callback": "on_delivered", "clear": false}', '"clear" must be true'),
        (b'{"callback": "on_delivered", "clear": "yes"}', '"clear" must be true'),
        (b'{"callback": "on_delivered", "limit": "rate=5", "clear": true}', "not both"),
        (b'{"callback": "on_delivered", "limit": "rate=5", "also": "x"}', "no field but"),
        (b'{"callback": "on_delivered", "callback": "on_sent", "limit": "rate=5"}',
         "a field given twice"),
        (b'{"callback": ["on_delivered"], "limit": "rate=5"}', "one object whose values"),
        (b'{"callback": "on_delivered", "limit": {"rate": 5}}', "one object whose values"),
        (b'{"callback": "on_delivered", "limit": "rate=5"', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, None),  # too large: 413
    ],
    ids=short,
)  # fmt: skip
def test_a_limits_request_it_cannot_use_is_refused_and_changes_nothing(
    tmp_path: Path, body: bytes, reason: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with inspected(Carrier(), tmp_path) as (_, http):
        answer = http.post(
            "/api/limits", content=body, headers={**LIMITS, "Content-Type": "application/json"}
        )
        if reason is None:
            assert answer.status_code == 413, answer.text
        else:
            assert answer.status_code == 400, answer.text
            assert answer.text.startswith(LIMIT_PREFIX), answer.text
            assert reason in answer.text, answer.text
            assert len(answer.text) < 300  # at most 40 characters of it quoted back
        assert view(http)["callbacks"] == []
    assert not any("the inspector" in line for line in said(caplog))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"{}", 'one field, "close"'),
        (b'{"close": "on_delivered", "also": "x"}', 'one field, "close"'),
        (b'{"close": "nope"}', '"close" is not a callback an event goes to'),
        (b'{"close": "<script>alert(1)</script>"}', '"close" is not a callback'),
        (b'{"close": 1}', "no numbers"),
        (b'{"close": null}', '"close" must be a callback\'s name'),
        (b'{"close": ["on_delivered"]}', "one object whose values"),
        (b'{"close": "on_delivered", "close": "on_sent"}', "a field given twice"),
        (b'["on_delivered"]', "not a JSON object"),
        (b"\x00", "not JSON"),
    ],
    ids=short,
)  # fmt: skip
def test_a_breakers_request_it_cannot_use_is_refused(
    tmp_path: Path, body: bytes, reason: str
) -> None:
    with inspected(Carrier(), tmp_path) as (_, http):
        answer = http.post(
            "/api/breakers", content=body, headers={**BREAKERS, "Content-Type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert answer.text.startswith('expected {"close": "on_delivered"}: '), answer.text
        assert reason in answer.text, answer.text
        assert "<script>" not in answer.text  # what was sent is not quoted back
        assert len(answer.text) < 200


def test_the_page_has_the_panel(tmp_path: Path) -> None:
    with inspected(Carrier(), tmp_path) as (_, http):
        page = http.get("/").text
        for piece in (
            '<section id="dispatch-control"', "<h2>Dispatch control</h2>", 'id="limits"',
            'id="breaker-banner"', 'list="callbacks"',
            'placeholder="rate=5, burst=10, concurrency=2"',
            '<button type="submit" id="limit-set">Set</button>',
            '<button type="button" id="limit-clear">Clear</button>',
        ):  # fmt: skip
            assert piece in page, piece
        assert "<script>" not in page  # no inline script
