"""Bulk replay of a search from the inspector's page, in headless Chromium.

Dead letters of two callbacks; the list filtered to one of them shows "Replay
these N"; a first click asks for a confirmation, the second replays; the page
says how many were replayed, and those rows turn green (the service works again)
while the other callback's dead letters stay as they were.  The listener, its
inbox and its inspector are those of ``test_inspector_browser``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.payloads import call_status_payload, sms_status_payload

from .test_inspector_browser import Site, api_outcomes, is_green, is_red, send, serve


@pytest.fixture
def site(browser: webdriver.Chrome, tmp_path: Path) -> Iterator[Site]:
    with serve(browser, tmp_path) as running_site:
        yield running_site


def button_text(site: Site) -> str | None:
    """The bulk replay button's text, when it is shown."""
    button = site.page.driver.find_element(By.ID, "replay-these")
    return button.text if button.is_displayed() else None


def test_a_bulk_replay_of_a_filtered_set_turns_those_rows_green_and_leaves_the_others(
    site: Site,
) -> None:
    page = site.page
    handled = send(site.listener, sms_status_payload("delivered"))
    api_outcomes(site.listener, {handled: "handled"})
    site.carrier.down = True
    delivered = [send(site.listener, sms_status_payload("delivered")) for _ in range(2)]
    no_answer = [send(site.listener, call_status_payload("no-answer")) for _ in range(2)]
    api_outcomes(site.listener, dict.fromkeys([*delivered, *no_answer], "dead_letter"))

    # Without a filter there is no bulk button (Replay all dead letters is there).
    page.open()
    page.until(lambda: len(page.rows()) == 5 or None, "the five rows")
    assert button_text(site) is None

    # Filtered to one callback: its rows, and the count of what would be replayed.
    page.open("?callback=on_delivered")
    page.wait_outcomes({handled: "handled", **dict.fromkeys(delivered, "dead letter")})
    assert page.until(lambda: button_text(site), "the bulk button") == "Replay these 2"
    page.mark()

    site.carrier.down = False  # the service works again
    page.click("#replay-these")
    assert page.until(lambda: button_text(site), "the confirmation") == "Replay 2 events? Confirm"
    assert all(site.carrier.runs(sid) == 2 for sid in delivered)  # nothing ran yet
    page.click("#replay-these")

    rows = page.wait_outcomes({handled: "handled", **dict.fromkeys(delivered, "handled")})
    for sid in delivered:
        page.wait_color(rows[sid].id, is_green, "green")
        assert rows[sid].attempts == "1"
        assert site.carrier.runs(sid) == 3
    note = page.driver.find_element(By.ID, "bulk-note")
    page.until(lambda: note.text == "replayed 2" or None, "the finished line")
    page.until(lambda: button_text(site) is None or None, "no button: nothing left")
    assert site.carrier.runs(handled) == 1  # done, not a dead letter: left alone

    # The other callback's dead letters are as they were.
    Select(page.driver.find_element(By.NAME, "outcome")).select_by_value("dead_letter")
    callback = page.driver.find_element(By.NAME, "callback")
    callback.clear()
    callback.send_keys("on_no_answer")
    others = page.wait_outcomes(dict.fromkeys(no_answer, "dead letter"))
    for sid in no_answer:
        page.wait_color(others[sid].id, is_red, "red")
        assert others[sid].attempts == "2"
        assert others[sid].replay_button
        assert site.carrier.runs(sid) == 2
    assert page.until(lambda: button_text(site), "their count") == "Replay these 2"
    page.until(lambda: page.counters()["dead_letters"] == 2, "two dead letters left")
    page.assert_not_reloaded()
    assert page.violations() == []


def test_a_changed_filter_takes_back_the_confirmation(site: Site) -> None:
    page = site.page
    site.carrier.down = True
    delivered = send(site.listener, sms_status_payload("delivered"))
    no_answer = send(site.listener, call_status_payload("no-answer"))
    api_outcomes(site.listener, {delivered: "dead_letter", no_answer: "dead_letter"})
    page.open("?callback=on_delivered")
    assert page.until(lambda: button_text(site), "the bulk button") == "Replay these 1"
    page.click("#replay-these")
    assert page.until(lambda: button_text(site), "the confirmation") == "Replay 1 event? Confirm"

    # Another search: the confirmation is gone, and the count is the new search's.
    page.driver.find_element(By.NAME, "callback").clear()
    Select(page.driver.find_element(By.NAME, "outcome")).select_by_value("dead_letter")
    page.wait_outcomes({delivered: "dead letter", no_answer: "dead letter"})
    assert page.until(lambda: button_text(site), "the new count") == "Replay these 2"
    # A filter that cannot be used: no count, no button.
    page.driver.find_element(By.NAME, "error_code").send_keys("30x")
    page.until(lambda: button_text(site) is None or None, "no button")
    assert site.carrier.runs(delivered) == site.carrier.runs(no_answer) == 2
    assert page.violations() == []
