"""Pausing and resuming dispatch from the inspector's page, and its counters, in
headless Chromium.

The page's Pause button pauses every worker of the inbox: a banner says so, signed
webhooks are still answered 200 and stored, and no callback runs; Resume dispatches
them.  The counters at the top are the inbox's, with the failed attempts and the
events that failed kept apart.  The listener, its inbox and its inspector are those
of ``test_inspector_browser``; every wait has a deadline and waits for state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.payloads import call_status_payload, sms_status_payload

from .test_inspector_browser import SHOWN_TIME, Site, api_outcomes, send, serve

LOGGER = "twilio_trigger"


@pytest.fixture
def site(browser: webdriver.Chrome, tmp_path: Path) -> Iterator[Site]:
    with serve(browser, tmp_path) as running_site:
        yield running_site


def shown(site: Site, element_id: str) -> str | None:
    """The text of the element *element_id* when it is shown, else ``None``."""
    element = site.page.driver.find_element(By.ID, element_id)
    return element.text if element.is_displayed() else None


def told(caplog: pytest.LogCaptureFixture, start: str) -> int:
    return sum(
        1
        for record in caplog.records
        if record.name == LOGGER and record.getMessage().startswith(start)
    )


def test_pause_from_the_page_stores_without_dispatching_and_resume_dispatches(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    page, carrier, listener = site.page, site.carrier, site.listener
    # Before: one event handled, one that fails each of its two attempts.
    handled = send(listener, sms_status_payload("sent"))
    doomed = call_status_payload("no-answer")
    carrier.down_for.add(doomed["CallSid"])
    dead = send(listener, doomed)
    api_outcomes(listener, {handled: "handled", dead: "dead_letter"})

    page.open()
    page.mark()
    before = {
        "received": 2, "handled": 1, "failed_attempts": 2, "dead_lettered": 1,
        "replayed": 0, "pending": 0, "running": 0, "dead_letters": 1, "duplicates": 0,
    }  # fmt: skip
    page.until(lambda: page.counters() == before, f"the counters at {before}")
    # Failed attempts and events that failed, apart, each under its own label.
    labels = page.driver.execute_script(
        "return Array.from(document.querySelectorAll('.counter'),"
        " div => [div.querySelector('b').id, div.firstChild.textContent.trim()]);"
    )
    assert dict(labels)["failed_attempts"] == "failed attempts"
    assert dict(labels)["dead_lettered"] == "events that failed"
    line = page.until(lambda: shown(site, "counted"), "the line under the counters")
    assert line.startswith("Counted by the inbox, for every process since "), line
    assert SHOWN_TIME.search(line), line  # with its date
    assert shown(site, "paused-banner") is None
    assert shown(site, "resume") is None

    # Pause from the page.
    assert shown(site, "pause") == "Pause dispatch"
    page.click("#pause")
    banner = page.until(lambda: shown(site, "paused-banner"), "the paused banner")
    assert banner.startswith("Dispatch is paused")
    assert page.until(lambda: shown(site, "resume"), "the Resume button") == "Resume dispatch"
    assert shown(site, "pause") is None
    assert shown(site, "dispatch-note") == "dispatch paused"
    page.until(lambda: told(caplog, "dispatch is paused (") == 1 or None, "the workers to pause")

    # Signed webhooks while paused: answered 200 (send checks it) and stored, not run.
    waiting = [send(listener, sms_status_payload("delivered")) for _ in range(3)]
    rows = page.wait_outcomes({
        handled: "handled", dead: "dead letter", **dict.fromkeys(waiting, "pending"),
    })  # fmt: skip
    assert all(rows[sid].attempts == "0" for sid in waiting)
    paused_counts = {**before, "received": 5, "pending": 3}
    page.until(lambda: page.counters() == paused_counts, f"the counters at {paused_counts}")
    assert all(carrier.runs(sid) == 0 for sid in waiting)
    # The page was reloaded meanwhile: the banner is there from the start.
    page.open()
    assert page.until(lambda: shown(site, "paused-banner"), "the banner after a reload")
    page.until(lambda: page.counters() == paused_counts, "the counters after a reload")
    assert all(carrier.runs(sid) == 0 for sid in waiting)

    # Resume from the page: the stored events are dispatched.
    page.mark()
    page.click("#resume")
    page.until(lambda: shown(site, "paused-banner") is None or None, "no banner")
    assert page.until(lambda: shown(site, "pause"), "the Pause button") == "Pause dispatch"
    page.wait_outcomes({
        handled: "handled", dead: "dead letter", **dict.fromkeys(waiting, "handled"),
    })  # fmt: skip
    after = {**before, "received": 5, "handled": 4}
    page.until(lambda: page.counters() == after, f"the counters at {after}")
    assert all(carrier.runs(sid) == 1 for sid in waiting)
    assert shown(site, "dispatch-note") == "dispatch resumed"
    page.until(lambda: told(caplog, "dispatch resumed (") == 1 or None, "the workers to resume")
    page.assert_not_reloaded()
    assert page.violations() == []
