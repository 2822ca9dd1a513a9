"""Dispatch control from the inspector's page, in headless Chromium: each callback's
limits and breaker in a table, a limit set and cleared from its form, an open breaker
shown in a banner and closed with its button, after which the events it held run.

The listener, its inbox and its inspector are those of ``test_inspector_browser``;
every wait has a deadline and waits for state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.payloads import sms_status_payload
from twilio_trigger._control import BREAKER, BreakerState
from twilio_trigger.inbox.sqlite import SQLiteInbox

from .test_inspector_browser import ERROR, SHOWN_TIME, Site, api_outcomes, send, serve

LOGGER = "twilio_trigger"
#: What a cell without a value shows (an en dash).
NONE = "\u2013"

#: Reads the dispatch control table in one go: the page replaces its rows every second.
_READ_LIMITS = """
return Array.from(document.querySelectorAll("#limits tr"), tr => ({
  callback: tr.dataset.callback,
  cells: Array.from(tr.cells, td => td.textContent),
  button: tr.querySelector("button.close-breaker") !== null,
  elements: tr.querySelectorAll("img, script, b").length,
}));
"""


def limits(site: Site) -> dict[str, dict[str, Any]]:
    """The rows of the dispatch control table, by callback: each cell's text."""
    found = site.page.driver.execute_script(_READ_LIMITS)
    names = ("callback", "option", "kept", "in_force", "breaker", "actions")
    return {
        row["callback"]: {
            **dict(zip(names, row["cells"], strict=True)),
            "button": row["button"],
            "elements": row["elements"],
        }
        for row in (found if isinstance(found, list) else [])
    }


def shown(site: Site, element_id: str) -> str | None:
    """The text of the element *element_id* when it is shown, else ``None``."""
    element = site.page.driver.find_element(By.ID, element_id)
    return element.text if element.is_displayed() else None


def note_with(site: Site, piece: str) -> str | None:
    """The note under the form when it is shown and says *piece*."""
    text = shown(site, "limit-note")
    return text if text is not None and piece in text else None


def fill(site: Site, element_id: str, text: str) -> None:
    field = site.page.driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def told(caplog: pytest.LogCaptureFixture, line: str) -> bool:
    return any(r.name == LOGGER and r.getMessage() == line for r in caplog.records)


def test_a_limit_set_from_the_page_shows_in_the_table_and_a_bad_one_says_why(
    browser: webdriver.Chrome, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with serve(browser, tmp_path, limits="on_delivered: concurrency=3") as site:
        page = site.page
        page.open()
        page.mark()
        row = page.until(lambda: limits(site).get("on_delivered"), "the option's row")
        assert (row["option"], row["kept"], row["in_force"]) == ("concurrency=3", NONE, "3 at once")
        assert row["breaker"] == "closed"
        assert not row["button"]
        assert shown(site, "breaker-banner") is None
        assert shown(site, "limits-none") is None
        field = page.driver.find_element(By.ID, "limit-callback")
        assert field.get_attribute("list") == "callbacks"
        text = page.driver.find_element(By.ID, "limit-text")
        assert text.get_attribute("placeholder") == "rate=5, burst=10, concurrency=2"

        # Set, then merged over what is kept.
        fill(site, "limit-callback", "on_delivered")
        fill(site, "limit-text", "rate=5, burst=10")
        page.click("#limit-set")
        page.until(
            lambda: limits(site)["on_delivered"]["kept"] == "rate=5, burst=10" or None,
            "the kept limit in the table",
        )
        assert limits(site)["on_delivered"]["in_force"] == "3 at once, 5/s (burst 10)"
        note = page.until(lambda: shown(site, "limit-note"), "the note")
        assert note == "on_delivered: rate=5, burst=10 (kept in the inbox; every process follows)"
        fill(site, "limit-text", "concurrency=1")
        page.click("#limit-set")
        page.until(
            lambda: limits(site)["on_delivered"]["in_force"] == "1 at once, 5/s (burst 10)" or None,
            "the merged limit",
        )
        assert limits(site)["on_delivered"]["kept"] == "concurrency=1, rate=5, burst=10"
        # Another callback: a row of its own, the option's row stays.
        fill(site, "limit-callback", "on_sent")
        fill(site, "limit-text", "breaker=3, cooldown=20")
        page.click("#limit-set")
        page.until(lambda: limits(site).get("on_sent"), "the new row")
        assert limits(site)["on_sent"]["in_force"] == "breaker after 3 failures (20 s)"

        # What cannot be used is refused and the reason shown; nothing changes.
        fill(site, "limit-callback", "on_delivered")
        fill(site, "limit-text", "speed=3")
        page.click("#limit-set")
        note = page.until(lambda: note_with(site, "name=value"), "the reason")
        assert note.startswith('expected {"callback": "on_delivered", "limit": ')
        fill(site, "limit-callback", "<img src=x onerror=alert(1)>")
        fill(site, "limit-text", "rate=1")
        page.click("#limit-set")
        page.until(lambda: note_with(site, "is not a callback an event goes to"), "the reason")
        assert page.driver.find_elements(By.CSS_SELECTOR, "#limit-note *") == []
        assert limits(site)["on_delivered"]["kept"] == "concurrency=1, rate=5, burst=10"

        # Cleared: the option rules again.
        fill(site, "limit-callback", "on_delivered")
        page.click("#limit-clear")
        page.until(lambda: limits(site)["on_delivered"]["kept"] == NONE or None, "no kept limit")
        assert limits(site)["on_delivered"]["in_force"] == "3 at once"
        assert shown(site, "limit-note") == (
            "on_delivered: no limit kept in the inbox; the listener's limits option rules"
        )
        page.assert_not_reloaded()
        assert page.violations() == []
        # The page reloaded: the kept limits are there from the start.
        page.open()
        page.until(lambda: limits(site).get("on_sent"), "the rows after a reload")
    assert told(caplog, "the inspector set the limits of on_delivered: rate=5, burst=10")
    assert told(caplog, "the inspector cleared the limits of on_delivered kept in the inbox")


def test_an_open_breaker_shows_in_a_banner_and_closing_it_from_the_page_runs_its_events(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    with serve(
        browser, tmp_path, limits="on_delivered: breaker=1, cooldown=3600", max_attempts=50,
        retry_backoff=0.01, retry_backoff_max=0.02,
    ) as site:  # fmt: skip
        page, carrier, listener = site.page, site.carrier, site.listener
        page.open()
        page.mark()
        page.until(lambda: limits(site).get("on_delivered"), "the option's row")
        assert shown(site, "breaker-banner") is None

        carrier.down = True  # the CRM is down: the first failure opens the breaker
        first = send(listener, sms_status_payload("delivered"))
        banner = page.until(lambda: shown(site, "breaker-banner"), "the breaker banner")
        assert banner.startswith("Breaker open: on_delivered (open since "), banner
        assert SHOWN_TIME.search(banner), banner
        row = page.until(
            lambda: (found := limits(site)["on_delivered"])["button"] and found,
            "the Close breaker button",
        )
        assert row["breaker"].startswith("open since "), row
        assert "1 failure in a row, one event tried at " in row["breaker"]
        assert f"last error: RuntimeError: {ERROR}" in row["breaker"]
        assert row["actions"] == "Close breaker"
        held = [send(listener, sms_status_payload("delivered")) for _ in range(2)]
        api_outcomes(listener, dict.fromkeys(held, "pending"))
        assert carrier.runs(first) == 1
        assert all(carrier.runs(sid) == 0 for sid in held)

        carrier.down = False  # it is back: close the breaker from the page
        page.click("#limits button.close-breaker")
        page.until(lambda: shown(site, "breaker-banner") is None or None, "no banner")
        assert shown(site, "limit-note") == (
            "the breaker of on_delivered is closed: its events are dispatched again"
        )
        page.wait_outcomes(dict.fromkeys([first, *held], "handled"))
        assert [carrier.runs(sid) for sid in (first, *held)] == [2, 1, 1]
        row = limits(site)["on_delivered"]
        assert (row["breaker"], row["button"]) == ("closed", False)
        page.assert_not_reloaded()
        assert page.violations() == []


def test_what_the_inbox_holds_is_shown_as_text(browser: webdriver.Chrome, tmp_path: Path) -> None:
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script><b>bold</b>"
    with serve(browser, tmp_path) as site:
        page = site.page

        async def open_breakers() -> None:
            inbox = SQLiteInbox(tmp_path / "events.db")  # as another process would
            try:
                state = BreakerState(time.time() + 3600, time.time(), 7, hostile)
                await inbox.set_setting(BREAKER + "on_failed", state.json())
                await inbox.set_setting(BREAKER + hostile, state.json())
            finally:
                await inbox.close()

        asyncio.run(open_breakers())
        page.open()
        found = page.until(lambda: rows if len(rows := limits(site)) == 2 else None, "two rows")
        for row in found.values():
            assert row["elements"] == 0, row  # nothing of it became markup
            assert row["breaker"].endswith("last error: " + hostile), row
        assert hostile in found
        banner = page.until(lambda: shown(site, "breaker-banner"), "the banner")
        assert hostile in banner
        assert page.driver.find_elements(By.CSS_SELECTOR, "#breaker-banner *") == []
        assert page.violations() == []
