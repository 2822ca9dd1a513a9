"""The event inspector in a real browser: headless Chromium, driven by Selenium.

Each test runs a real listener on loopback with a durable inbox and its inspector
on a port of its own, posts events to it over HTTP the way Twilio does (signed by
twilio-python, the independent oracle), and looks at what the inspector's page
shows: rows arriving without a reload, errors in red, a traceback on the detail
page, replays turning rows green, the filters, and the token of an inspector
bound beyond loopback.

Waits have deadlines (``WebDriverWait``); nothing sleeps to let things happen.
``TWILIO_TRIGGER_SCREENSHOT=1`` saves the screenshot of
:func:`test_screenshot_of_a_realistic_inspector` to ``docs/inspector.png``, for the
README (otherwise it goes to the test's temporary folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

import twilio_trigger as twilio
from tests.e2e._support import TOKEN, running
from tests.payloads import call_status_payload, signed_post, sms_status_payload
from tests.redis_support import prefix, redis_url

__all__ = ["prefix", "redis_url"]  # the fixtures, imported for pytest to find

T = TypeVar("T")

#: How long anything the page shows may take to show (it polls every second).
WAIT = 10.0
#: The inspector's token when it is bound beyond loopback.
INSPECTOR_TOKEN = "a-long-inspector-token-123"
ERROR = "carrier lookup exploded"
#: How long the inspector's session cookie lasts.
SESSION_SECONDS = 8 * 3600
COOKIE = "twilio_trigger_inspector"
DOCS = Path(__file__).resolve().parents[2] / "docs"
#: A time as the pages show it: with its date, in UTC.
SHOWN_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")


# -- the services ---------------------------------------------------------------------
@dataclass
class Carrier:
    """What the callbacks depend on: down for every event, or for some SIDs only.

    ``hold(sid)`` makes that SID's callback wait until :meth:`release` (callbacks
    here are plain ``def``: they wait in a thread, not on the listener's loop).
    """

    down: bool = False
    down_for: set[str] = field(default_factory=set)
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    held: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def look_up(self, callback: str, event: twilio.TwilioEvent) -> None:
        with self.lock:
            self.calls.append((callback, event.sid))
            gate = self.held.get(event.sid or "")
        if gate is not None:
            gate.wait(WAIT)
        if self.down or event.sid in self.down_for:
            raise RuntimeError(ERROR)

    def hold(self, sid: str) -> None:
        with self.lock:
            self.held[sid] = threading.Event()

    def release(self) -> None:
        with self.lock:
            for gate in self.held.values():
                gate.set()

    def runs(self, sid: str) -> int:
        with self.lock:
            return sum(1 for _, seen in self.calls if seen == sid)


class Messages(twilio.SmsStatusService):
    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.carrier.look_up("on_sent", event)

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.carrier.look_up("on_delivered", event)

    def on_undelivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.carrier.look_up("on_undelivered", event)

    def on_received(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.carrier.look_up("on_received", event)


class Calls(twilio.CallStatusService):
    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    def on_ringing(self, event: twilio.CallStatusEvent) -> None:
        self.carrier.look_up("on_ringing", event)

    def on_in_progress(self, event: twilio.CallStatusEvent) -> None:
        self.carrier.look_up("on_in_progress", event)

    def on_completed(self, event: twilio.CallStatusEvent) -> None:
        self.carrier.look_up("on_completed", event)

    def on_no_answer(self, event: twilio.CallStatusEvent) -> None:
        self.carrier.look_up("on_no_answer", event)


# -- the page -----------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One row of the events table, as the page shows it."""

    id: int
    css_class: str
    received: str
    kind: str
    status: str
    sid: str
    callback: str
    outcome: str
    duration: str
    attempts: str
    error: str
    replay_button: bool


#: Reads the table in one go: the page replaces its rows every second.
_READ_ROWS = """
const names = Array.from(document.querySelectorAll("thead th"), th => th.textContent.trim());
return Array.from(document.querySelectorAll("#events tr"), tr => {
  const cells = {};
  Array.from(tr.cells).forEach((td, i) => { cells[names[i] || "actions"] = td.textContent; });
  return {id: Number(tr.dataset.id), css_class: tr.className, cells: cells,
          replay: tr.querySelector("button.replay") !== null};
});
"""
_READ_COUNTERS = """
const counters = {};
document.querySelectorAll(".counter b").forEach(b => { counters[b.id] = Number(b.textContent); });
return counters;
"""


#: The outcomes of an attempt that has finished.
_FINISHED = ("handled", "dead letter", "retrying", "failed")


def _rgb(css_color: str) -> tuple[int, int, int]:
    found = re.match(r"rgba?\((\d+),\s*(\d+),\s*(\d+)", css_color)
    assert found is not None, css_color
    red, green, blue = (int(part) for part in found.groups())
    return red, green, blue


def is_red(css_color: str) -> bool:
    red, green, blue = _rgb(css_color)
    return red >= 150 and green < 90 and blue < 90


def is_green(css_color: str) -> bool:
    red, green, blue = _rgb(css_color)
    return green >= 90 and green > red + 40 and green > blue + 20


@dataclass
class Inspector:
    """The inspector's page in the browser, with waits that have deadlines."""

    driver: webdriver.Chrome
    base: str  # http://127.0.0.1:<port>/

    def open(self, path: str = "") -> None:
        self.driver.get(self.base + path)

    def until(self, condition: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
        """The first true value of *condition*; fails with the table when it never comes."""

        def check(_: webdriver.Chrome) -> T | Literal[False]:
            value = condition()
            return False if value is None or value is False else value

        try:
            return WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=0.05,
                ignored_exceptions=(StaleElementReferenceException, NoSuchElementException),
            ).until(check)
        except TimeoutException:
            raise AssertionError(
                f"waited {timeout} s for {what}; the page shows {self.rows()} "
                f"and counters {self.counters()}"
            ) from None

    def rows(self) -> list[Row]:
        found = self.driver.execute_script(_READ_ROWS)
        if not isinstance(found, list):
            return []
        return [
            Row(
                id=row["id"],
                css_class=row["css_class"],
                received=row["cells"]["received"],
                kind=row["cells"]["kind"],
                status=row["cells"]["status"],
                sid=row["cells"]["SID"],
                callback=row["cells"]["callback"],
                outcome=row["cells"]["outcome"],
                duration=row["cells"]["duration"],
                attempts=row["cells"]["attempts"],
                error=row["cells"]["error"],
                replay_button=row["replay"],
            )
            for row in found
        ]

    def row(self, sid: str) -> Row | None:
        return next((row for row in self.rows() if row.sid == sid), None)

    def counters(self) -> dict[str, int]:
        found = self.driver.execute_script(_READ_COUNTERS)
        return dict(found) if isinstance(found, dict) else {}

    def wait_outcomes(self, expected: Mapping[str, str]) -> dict[str, Row]:
        """Wait until the table shows exactly the SIDs of *expected*, with these outcomes."""

        def shown() -> dict[str, Row] | None:
            rows = {row.sid: row for row in self.rows()}
            outcomes = {sid: row.outcome for sid, row in rows.items()}
            # A finished attempt shows its duration once the listener has noted
            # it (its counters with it): until then the row is not settled.
            settled = all(row.duration for row in rows.values() if row.outcome in _FINISHED)
            return rows if outcomes == dict(expected) and settled else None

        return self.until(shown, f"the rows {dict(expected)}")

    def outcome_color(self, row_id: int) -> str:
        cell = self.driver.find_element(By.CSS_SELECTOR, f'tr[data-id="{row_id}"] td.outcome')
        return cell.value_of_css_property("color")

    def wait_color(self, row_id: int, test: Callable[[str], bool], what: str) -> str:
        def colored() -> str | None:
            color = self.outcome_color(row_id)
            return color if test(color) else None

        return self.until(colored, f"row {row_id}'s outcome in {what}")

    def click(self, css: str) -> None:
        """Click what *css* selects, again if the page replaced it in the meantime."""

        def clicked() -> bool:
            self.driver.find_element(By.CSS_SELECTOR, css).click()
            return True

        self.until(clicked, f"a click on {css}")

    def mark(self) -> None:
        """Leave a mark in the page's window: a reload would wipe it."""
        self.driver.execute_script("window.__marker = 1;")

    def assert_not_reloaded(self) -> None:
        assert self.driver.execute_script("return window.__marker;") == 1, "the page reloaded"

    def violations(self) -> list[dict[str, Any]]:
        """The Content-Security-Policy violations this document has met so far."""
        found = self.driver.execute_script("return window.__cspViolations;")
        assert isinstance(found, list), "the violation collector did not run in this page"
        return found

    def policy_messages(self) -> list[str]:
        """What the console said of the policy since last asked: Chromium reports
        every violation there, in whichever page it happened."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [
            entry["message"]
            for entry in entries
            if "Content Security Policy" in entry["message"] or "Trusted Type" in entry["message"]
        ]

    def navigation_status(self) -> int:
        status = self.driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].responseStatus;"
        )
        assert isinstance(status, int), status
        return status


# -- the listener ---------------------------------------------------------------------
def send(listener: twilio.Listener, params: Mapping[str, str]) -> str:
    """Post *params* to the listener as Twilio would; return the event's SID."""
    response = signed_post(listener.url, params, TOKEN)
    assert response.status_code == 200, response.text
    return params.get("MessageSid") or params["CallSid"]


def api_outcomes(
    listener: twilio.Listener, expected: Mapping[str, str], timeout: float = WAIT
) -> None:
    """Wait until the inspector's API reports these outcomes for these SIDs.

    For the steps that set a scene before the page looks at it.
    """
    url = f"{listener.inspector_url}api/events"
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(url, params={"limit": "500"}, timeout=5, trust_env=False)
        events = answer.json()["events"]
        outcomes = {event["sid"]: event["outcome"] for event in events}
        if all(outcomes.get(sid) == outcome for sid, outcome in expected.items()):
            return
        assert time.monotonic() < deadline, f"waited {timeout} s for {expected}: {outcomes}"
        time.sleep(0.02)  # polling the API, not waiting for an outcome to happen


@dataclass
class Site:
    """A running listener with the inspector, its services' carrier, and the page."""

    listener: twilio.Listener
    carrier: Carrier
    page: Inspector


@contextlib.contextmanager
def serve(browser: webdriver.Chrome, tmp_path: Path, **options: object) -> Iterator[Site]:
    """A listener with an inbox and the inspector, on loopback; stopped on exit."""
    options.setdefault("inbox", f"sqlite:///{tmp_path}/events.db")
    options.setdefault("max_attempts", 2)
    options.setdefault("retry_backoff", 0.02)
    carrier = Carrier()
    with running(
        Messages(carrier), Calls(carrier), inspector=True, inspector_port=0, **options
    ) as listener:
        try:
            url = listener.inspector_url
            assert url is not None
            page = Inspector(browser, url)
            yield Site(listener, carrier, page)
            # Whatever the test did, the pages ran within their policy.
            assert page.policy_messages() == []
        finally:
            carrier.release()  # before the listener stops: no callback is left waiting


@pytest.fixture
def site(browser: webdriver.Chrome, tmp_path: Path) -> Iterator[Site]:
    """A listener on a SQLite inbox, and its inspector in the browser."""
    with serve(browser, tmp_path) as running_site:
        yield running_site


# -- a. events arrive without a reload -----------------------------------------------
@pytest.mark.parametrize("inbox", ["sqlite", "redis"])
def test_sent_events_appear_without_a_reload(
    browser: webdriver.Chrome, tmp_path: Path, request: pytest.FixtureRequest, inbox: str
) -> None:
    options: dict[str, object] = {}
    if inbox == "redis":
        options["inbox"] = request.getfixturevalue("redis_url")
        options["redis_prefix"] = request.getfixturevalue("prefix")
        options["redis_durability"] = "memory"  # the test Redis keeps nothing on disk
    with serve(browser, tmp_path, **options) as site:
        page = site.page
        page.open()
        page.until(lambda: page.driver.find_element(By.ID, "events"), "the events table")
        assert page.rows() == []
        # The counters load apart from the table (a dash until then).
        page.until(lambda: page.counters().get("received") == 0, "the counters at 0")
        page.mark()

        sent = send(site.listener, sms_status_payload("sent"))
        delivered = send(site.listener, sms_status_payload("delivered"))
        completed = send(site.listener, call_status_payload("completed"))

        rows = page.wait_outcomes({sent: "handled", delivered: "handled", completed: "handled"})
        page.assert_not_reloaded()
        expected = {
            sent: ("sms", "sent", "Messages.on_sent"),
            delivered: ("sms", "delivered", "Messages.on_delivered"),
            completed: ("call", "completed", "Calls.on_completed"),
        }
        for sid, (kind, status, callback) in expected.items():
            row = rows[sid]
            assert (row.kind, row.status, row.callback) == (kind, status, callback), row
            assert row.css_class == "handled"
            assert row.attempts == "1"
            assert row.error == ""
            assert not row.replay_button
            assert SHOWN_TIME.fullmatch(row.received), row.received  # its date too
            assert re.fullmatch(r"\d+\.\d ms", row.duration), row.duration
        # Newest first.
        assert [row.sid for row in page.rows()] == [completed, delivered, sent]
        counted = {
            "received": 3, "handled": 3, "failed_attempts": 0, "dead_lettered": 0,
            "replayed": 0, "pending": 0, "running": 0, "dead_letters": 0, "duplicates": 0,
        }  # fmt: skip
        page.until(lambda: page.counters() == counted, f"the counters at {counted}")
        assert page.driver.current_url == page.base
        page.assert_not_reloaded()


# -- b. a failing event shows its error ----------------------------------------------
def test_a_dead_letter_shows_its_error_in_red_and_its_traceback(site: Site) -> None:
    page = site.page
    page.open()
    page.mark()
    site.carrier.down = True
    params = sms_status_payload("undelivered")
    sid = send(site.listener, params)

    row = page.wait_outcomes({sid: "dead letter"})[sid]
    assert row.error == f"RuntimeError: {ERROR}"
    assert row.attempts == "2"
    assert row.callback == "Messages.on_undelivered"
    assert row.replay_button
    assert is_red(page.outcome_color(row.id)), page.outcome_color(row.id)
    error_color = page.driver.find_element(
        By.CSS_SELECTOR, f'tr[data-id="{row.id}"] td.error'
    ).value_of_css_property("color")
    assert is_red(error_color), error_color
    counted = {
        "received": 1, "handled": 0, "failed_attempts": 2, "dead_lettered": 1,
        "replayed": 0, "pending": 0, "running": 0, "dead_letters": 1, "duplicates": 0,
    }  # fmt: skip
    page.until(lambda: page.counters() == counted, f"the counters at {counted}")  # 2 attempts
    page.assert_not_reloaded()

    page.click(f'tr[data-id="{row.id}"] td:first-child a')
    page.until(lambda: page.driver.current_url.endswith(f"/events/{row.id}"), "the detail page")
    detail = page.driver
    heading = detail.find_element(By.TAG_NAME, "h1").text
    assert sid in heading
    assert "(undelivered)" in heading
    last_error = detail.find_element(By.ID, "last-error").get_attribute("textContent") or ""
    assert last_error.startswith("Traceback (most recent call last):")
    assert f"RuntimeError: {ERROR}" in last_error
    assert "look_up" in last_error  # the frame that raised
    assert last_error.rstrip().endswith(f"RuntimeError: {ERROR}")
    attempts = detail.find_elements(By.CSS_SELECTOR, "tr.failed")
    assert len(attempts) == 2
    for attempt in attempts:
        # Both failed the same way: the traceback is shown once, above.
        assert attempt.find_elements(By.TAG_NAME, "pre") == []
        said = attempt.find_element(By.CSS_SELECTOR, "span.same").get_attribute("textContent")
        assert said == "same as the last error, above"
        assert is_red(
            attempt.find_element(By.CSS_SELECTOR, "td.outcome").value_of_css_property("color")
        )
    assert (detail.page_source or "").count("Traceback (most recent call last):") == 1
    shown = detail.execute_script(
        "return Array.from(document.querySelectorAll('table.params tr'),"
        " tr => [tr.cells[0].textContent, tr.cells[1].textContent]);"
    )
    assert dict(shown) == params
    assert len(shown) == len(params)


# -- c. replay after the fix ---------------------------------------------------------
def test_replaying_a_dead_letter_after_the_fix_turns_it_green(site: Site) -> None:
    page = site.page
    site.carrier.down = True
    sid = send(site.listener, sms_status_payload("delivered"))
    api_outcomes(site.listener, {sid: "dead_letter"})
    page.open()
    row = page.wait_outcomes({sid: "dead letter"})[sid]
    page.wait_color(row.id, is_red, "red")
    page.until(lambda: page.counters().get("dead_letters") == 1, "the dead letter counted")
    page.mark()
    assert site.carrier.runs(sid) == 2

    site.carrier.down = False  # the carrier is back
    page.click(f'tr[data-id="{row.id}"] button.replay')

    replayed = page.wait_outcomes({sid: "handled"})[sid]
    assert replayed.id == row.id
    assert replayed.error == ""
    assert not replayed.replay_button
    page.wait_color(row.id, is_green, "green")
    page.until(lambda: page.counters()["dead_letters"] == 0, "no dead letter left")
    assert page.driver.find_element(By.ID, "note").text == "1 replayed"
    assert site.carrier.runs(sid) == 3
    page.assert_not_reloaded()


def test_replay_all_dead_letters(site: Site) -> None:
    page = site.page
    handled = send(site.listener, sms_status_payload("sent"))
    api_outcomes(site.listener, {handled: "handled"})
    site.carrier.down = True
    dead_sms = send(site.listener, sms_status_payload("delivered"))
    dead_call = send(site.listener, call_status_payload("no-answer"))
    api_outcomes(site.listener, {dead_sms: "dead_letter", dead_call: "dead_letter"})
    page.open()
    page.wait_outcomes({handled: "handled", dead_sms: "dead letter", dead_call: "dead letter"})
    page.until(lambda: page.counters()["dead_letters"] == 2, "two dead letters counted")
    page.mark()

    site.carrier.down = False
    page.click("#replay-all")

    rows = page.wait_outcomes({handled: "handled", dead_sms: "handled", dead_call: "handled"})
    for sid in (dead_sms, dead_call):
        page.wait_color(rows[sid].id, is_green, "green")
    page.until(lambda: page.counters()["dead_letters"] == 0, "no dead letter left")
    assert page.driver.find_element(By.ID, "note").text == "2 replayed"
    assert site.carrier.runs(handled) == 1  # the handled one did not run again
    assert site.carrier.runs(dead_sms) == site.carrier.runs(dead_call) == 3
    page.assert_not_reloaded()


# -- c'. the content security policy ---------------------------------------------------
def test_the_pages_run_under_their_policy_without_a_violation(site: Site) -> None:
    page = site.page
    site.carrier.down = True
    sid = send(site.listener, sms_status_payload("delivered"))
    api_outcomes(site.listener, {sid: "dead_letter"})

    page.open()
    # The script ran (the rows are its work) and the stylesheet applied (the red
    # and the counters' rounded borders are its rules): both loaded as files.
    row = page.wait_outcomes({sid: "dead letter"})[sid]
    page.wait_color(row.id, is_red, "red")
    counter = page.driver.find_element(By.CSS_SELECTOR, ".counter")
    assert counter.value_of_css_property("border-top-left-radius") == "6px"
    loaded = page.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname);"
    )
    assert any(re.fullmatch(r"/static/inspector\.[0-9a-f]{16}\.js", path) for path in loaded)
    assert any(re.fullmatch(r"/static/inspector\.[0-9a-f]{16}\.css", path) for path in loaded)
    assert page.violations() == []

    # The page of one event: its Replay button works under the same policy.
    site.carrier.down = False
    page.open(f"events/{row.id}")
    page.until(lambda: page.driver.find_element(By.ID, "replay"), "the Replay button")
    page.click("#replay")
    page.until(lambda: page.driver.find_element(By.ID, "note").text == "replayed", "replayed")
    assert page.violations() == []
    api_outcomes(site.listener, {sid: "handled"})
    assert site.carrier.runs(sid) == 3
    assert page.policy_messages() == []

    # The policy holds: what an escaping mistake would put in the page is refused,
    # and seen, which shows the collector above would have seen a violation.
    ran = page.driver.execute_script(
        """
        const script = document.createElement("script");
        try { script.textContent = "window.__inline = 1;"; } catch (error) {}
        document.body.appendChild(script);
        document.body.setAttribute("style", "background-color: rgb(255, 0, 0)");
        return [window.__inline === 1, getComputedStyle(document.body).backgroundColor];
        """
    )
    assert ran[0] is False, "an inline script ran"
    assert ran[1] != "rgb(255, 0, 0)", "an inline style applied"

    def blocked() -> set[str] | None:
        directives = {violation["directive"] for violation in page.violations()}
        script = directives & {"script-src-elem", "require-trusted-types-for"}
        return directives if script and "style-src-attr" in directives else None

    page.until(blocked, "the inline script's and style's violations")
    assert page.policy_messages() != []  # the console said so too (and is emptied)


# -- d. filters ----------------------------------------------------------------------
def test_filters_by_outcome_and_kind(site: Site) -> None:
    page = site.page
    sms_ok = [send(site.listener, sms_status_payload(s)) for s in ("sent", "delivered")]
    call_ok = send(site.listener, call_status_payload("ringing"))
    api_outcomes(site.listener, dict.fromkeys([*sms_ok, call_ok], "handled"))
    site.carrier.down = True
    sms_dead = send(site.listener, sms_status_payload("undelivered"))
    call_dead = send(site.listener, call_status_payload("completed"))
    api_outcomes(site.listener, {sms_dead: "dead_letter", call_dead: "dead_letter"})
    everything = {**dict.fromkeys([*sms_ok, call_ok], "handled"),
                  sms_dead: "dead letter", call_dead: "dead letter"}  # fmt: skip
    page.open()
    page.wait_outcomes(everything)
    page.mark()

    outcome = Select(page.driver.find_element(By.NAME, "outcome"))
    kind = Select(page.driver.find_element(By.NAME, "kind"))
    outcome.select_by_visible_text("dead letters")
    page.wait_outcomes({sms_dead: "dead letter", call_dead: "dead letter"})

    outcome.select_by_visible_text("all")
    kind.select_by_visible_text("call")
    rows = page.wait_outcomes({call_ok: "handled", call_dead: "dead letter"})
    assert {row.kind for row in rows.values()} == {"call"}

    outcome.select_by_visible_text("dead letters")
    page.wait_outcomes({call_dead: "dead letter"})

    kind.select_by_visible_text("all")
    outcome.select_by_visible_text("all")
    page.wait_outcomes(everything)
    page.assert_not_reloaded()


# -- e. the token, beyond loopback ---------------------------------------------------
def test_without_its_token_the_inspector_refuses_the_browser(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    with serve(
        browser, tmp_path, inspector_host="0.0.0.0", inspector_token=INSPECTOR_TOKEN
    ) as site:
        page = site.page
        sids = [
            send(site.listener, sms_status_payload("delivered")),
            send(site.listener, call_status_payload("completed")),
        ]
        assert page.base.startswith("http://127.0.0.1:")

        page.open()
        assert page.navigation_status() == 401
        assert "needs its token" in page.driver.find_element(By.TAG_NAME, "body").text
        assert page.driver.find_elements(By.ID, "events") == []
        source = page.driver.page_source
        for sid in sids:
            assert sid not in source
        assert page.driver.get_cookie(COOKIE) is None

        page.open(f"?token={INSPECTOR_TOKEN}")
        assert page.driver.current_url == page.base  # the token left the address bar
        assert page.navigation_status() == 200
        cookie = page.driver.get_cookie(COOKIE)
        assert cookie is not None
        # A session, signed with a key of the process: no trace of the token.
        assert INSPECTOR_TOKEN not in cookie["value"]
        assert hashlib.sha256(INSPECTOR_TOKEN.encode()).hexdigest() not in cookie["value"]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/"
        # It expires (a working day from now), where the browser keeps it too.
        assert (
            time.time() + SESSION_SECONDS - 60 < cookie["expiry"] <= time.time() + SESSION_SECONDS
        )
        assert page.driver.execute_script("return document.cookie;") == ""  # HttpOnly
        page.wait_outcomes(dict.fromkeys(sids, "handled"))
        assert INSPECTOR_TOKEN not in page.driver.page_source

        # The cookie opens the other pages too.
        row = page.row(sids[0])
        assert row is not None
        page.open(f"events/{row.id}")
        assert page.navigation_status() == 200
        assert sids[0] in page.driver.find_element(By.TAG_NAME, "h1").text


# -- f. the screenshot for the README ------------------------------------------------
@contextlib.contextmanager
def busy_day(browser: webdriver.Chrome, tmp_path: Path) -> Iterator[Site]:
    """A listener whose inbox holds what a real one does: events of both kinds,
    handled, and one running, one retrying and one dead letter; the page open on it.

    One worker, so that the call it is busy with keeps the retry waiting,
    whatever the timing.
    """
    with serve(browser, tmp_path, concurrency=1, retry_backoff=1.0) as site:
        listener, carrier, page = site.listener, site.carrier, site.page
        handled = [
            send(listener, sms_status_payload("sent")),
            send(listener, call_status_payload("ringing")),
            send(listener, sms_status_payload("delivered")),
            send(listener, call_status_payload("in-progress")),
            send(listener, sms_status_payload("received")),
            send(listener, call_status_payload("completed")),
            send(listener, sms_status_payload("delivered")),
            send(listener, call_status_payload("no-answer")),
            send(listener, sms_status_payload("undelivered")),
        ]
        api_outcomes(listener, dict.fromkeys(handled, "handled"))

        dead = sms_status_payload("delivered")
        carrier.down_for.add(dead["MessageSid"])
        send(listener, dead)
        api_outcomes(listener, {dead["MessageSid"]: "dead_letter"})
        handled.append(send(listener, sms_status_payload("sent")))
        api_outcomes(listener, {handled[-1]: "handled"})

        # The only worker fails the first at once, then takes the second and holds
        # it, long before the first is due again (in 0.5 to 1 s).
        retrying = call_status_payload("completed")
        carrier.down_for.add(retrying["CallSid"])
        busy = call_status_payload("in-progress")
        carrier.hold(busy["CallSid"])
        send(listener, retrying)
        send(listener, busy)
        api_outcomes(listener, {retrying["CallSid"]: "retrying", busy["CallSid"]: "running"})

        page.open()
        page.wait_outcomes({
            **dict.fromkeys(handled, "handled"), dead["MessageSid"]: "dead letter",
            retrying["CallSid"]: "retrying", busy["CallSid"]: "running",
        })  # fmt: skip
        page.until(lambda: page.counters()["dead_letters"] == 1, "the dead letter counted")
        yield site


def test_screenshot_of_a_realistic_inspector(browser: webdriver.Chrome, tmp_path: Path) -> None:
    # Wide enough for every column, tall enough for every row: for the README.
    browser.set_window_size(1440, 800)
    with busy_day(browser, tmp_path) as site:
        page = site.page
        wanted = os.environ.get("TWILIO_TRIGGER_SCREENSHOT", "").strip() == "1"
        path = DOCS / "inspector.png" if wanted else tmp_path / "inspector.png"
        png = page.driver.get_screenshot_as_png()
        path.write_bytes(png)

        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width == 1440  # the window's width; its height less the (headless) chrome
        assert height >= 600
        # What the screenshot shows is still what the page shows.
        outcomes = {row.outcome for row in page.rows()}
        assert outcomes == {"handled", "running", "retrying", "dead letter"}


def test_the_table_fits_a_1280_pixel_window(browser: webdriver.Chrome, tmp_path: Path) -> None:
    # BUG (layout): at 1280 pixels, a common laptop width, the table of a
    # realistic inbox is wider than the window: the last column, with the dead
    # letter's Replay button, is cut off until one scrolls sideways.
    with busy_day(browser, tmp_path) as site:
        page = site.page
        # The page's width without its vertical scroll bar: what one sees.
        inner, seen, scroll, button = page.driver.execute_script(
            "return [window.innerWidth, document.documentElement.clientWidth,"
            " document.documentElement.scrollWidth,"
            " document.querySelector('button.replay').getBoundingClientRect().right];"
        )
        assert inner == 1280
        assert button <= seen, f"the Replay button ends at {button} px, the page at {seen}"
        # No sideways scrolling at all (a SID's letters used to decide whether there was).
        assert scroll <= seen, f"the page is {scroll} px wide in {seen} px"
