"""The inspector's search and a SID's timeline in headless Chromium.

Search by number and by error code finds the right rows among decoys, in the
page's address so that a link can be shared, and the live refresh keeps the
filters; a filter that cannot be used says why on the page; a SID's timeline
(reached from its row) shows its statuses in order with a stale one marked.
The listener, its inbox and its inspector are those of ``test_inspector_browser``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.payloads import sms_status_payload

from .test_inspector_browser import Site, api_outcomes, send, serve

TARGET = "+15558675309"
OTHER = "+15550001111"


@pytest.fixture
def site(browser: webdriver.Chrome, tmp_path: Path) -> Iterator[Site]:
    with serve(browser, tmp_path) as running_site:
        yield running_site


def test_search_by_number_and_by_error_code_finds_the_right_rows(site: Site) -> None:
    page = site.page
    to_target = [
        send(site.listener, sms_status_payload("sent", To=TARGET)),
        send(site.listener, sms_status_payload("undelivered", To=TARGET, ErrorCode="30003")),
    ]
    decoys = [
        send(site.listener, sms_status_payload("sent", To=OTHER)),
        send(site.listener, sms_status_payload("undelivered", To=OTHER, ErrorCode="30007")),
    ]
    other_30003 = send(site.listener, sms_status_payload("undelivered", ErrorCode="30003"))
    api_outcomes(site.listener, dict.fromkeys([*to_target, *decoys, other_30003], "handled"))

    # A shared link: the filter is in the address, and back in the form.
    page.open(f"?number=%2B{TARGET[1:]}")
    page.wait_outcomes(dict.fromkeys(to_target, "handled"))
    number = page.driver.find_element(By.NAME, "number")
    assert number.get_attribute("value") == TARGET
    page.mark()

    # An error code too: typed in, applied as typed, and the address follows.
    code = page.driver.find_element(By.NAME, "error_code")
    code.send_keys("30003")
    page.wait_outcomes({to_target[1]: "handled"})
    query = parse_qs(urlsplit(page.driver.current_url).query)
    assert query == {"number": [TARGET], "error_code": ["30003"]}

    # Without the number: every 30003, none of the 30007.
    number.clear()
    number.send_keys(Keys.TAB)
    rows = page.wait_outcomes({to_target[1]: "handled", other_30003: "handled"})
    assert [row.sid for row in rows.values()] == [other_30003, to_target[1]]  # newest first
    page.assert_not_reloaded()

    # The live refresh keeps the filters: a new decoy never shows, a new match does.
    send(site.listener, sms_status_payload("undelivered", To=OTHER, ErrorCode="30008"))
    late = send(site.listener, sms_status_payload("undelivered", ErrorCode="30003"))
    page.wait_outcomes({to_target[1]: "handled", other_30003: "handled", late: "handled"})

    # A filter that cannot be used says why, and lists nothing.
    code.clear()
    code.send_keys("30x")
    error = page.until(
        lambda: page.driver.find_element(By.ID, "search-error").text or None, "the error"
    )
    assert "error_code must be digits" in error
    page.until(lambda: page.rows() == [] or None, "an empty list")
    # The same link opened anew: the page says it too.
    page.open("?error_code=30x")
    assert "error_code must be digits" in page.driver.find_element(By.ID, "search-error").text


def test_older_pages_follow_the_search(site: Site) -> None:
    page = site.page
    matches = [send(site.listener, sms_status_payload("sent", To=TARGET)) for _ in range(3)]
    decoy = send(site.listener, sms_status_payload("sent", To=OTHER))
    api_outcomes(site.listener, dict.fromkeys([*matches, decoy], "handled"))
    page.open(f"?number=%2B{TARGET[1:]}&limit=2")
    page.wait_outcomes({matches[2]: "handled", matches[1]: "handled"})
    page.click("#older")
    page.wait_outcomes({matches[0]: "handled"})
    assert "before=" in page.driver.current_url
    assert not page.driver.find_element(By.ID, "older").is_displayed()


def test_a_sids_timeline_shows_its_statuses_in_order_with_a_stale_one_marked(
    site: Site,
) -> None:
    page = site.page
    sid = "SM" + "cd34" * 8
    for status in ("sent", "delivered"):
        send(site.listener, sms_status_payload(status, sid=sid))
    decoy = send(site.listener, sms_status_payload("sent"))
    send(site.listener, sms_status_payload("queued", sid=sid))  # late: stale
    api_outcomes(site.listener, {decoy: "handled"})

    page.open(f"?sid={sid}")
    page.until(lambda: len(page.rows()) == 3 or None, "the SID's three rows")
    page.click(f'#events a.sid[href="/sids/{sid}"]')
    page.until(lambda: "/sids/" in page.driver.current_url or None, "the timeline")

    rows = page.driver.find_elements(By.CSS_SELECTOR, "#timeline tr")
    statuses = [row.find_element(By.CSS_SELECTOR, "td.status").text for row in rows]
    assert statuses == ["sent", "delivered", "queued"]
    marks = [row.find_element(By.CSS_SELECTOR, "td.stale-mark").text for row in rows]
    assert marks == ["", "", "stale"]
    gaps = [row.find_element(By.CSS_SELECTOR, "td.gap").text for row in rows]
    assert gaps[0] == ""
    assert all(gap.startswith("+") and gap.endswith(" s") for gap in gaps[1:]), gaps
    assert page.driver.find_element(By.ID, "final-status").text == "delivered"
    assert decoy not in page.driver.page_source
    assert page.violations() == []
