"""Twilio error codes and dates on the inspector's page, in headless Chromium.

A message status callback with ``ErrorCode=30003`` whose callback fails shows,
in the list and on the event's page, "30003 Unreachable destination handset"
linked to Twilio's page about it, opened in a new tab without a referrer; its
times show their date.  The listener, its inbox and its inspector are those of
``test_inspector_browser`` (real HTTP on loopback, signed requests).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.payloads import sms_status_payload

from .test_inspector_browser import SHOWN_TIME, Site, send, serve

PAGE_30003 = "https://www.twilio.com/docs/api/errors/30003"
TITLE = "Unreachable destination handset"

#: The list's "Twilio error" cell of the row with this SID: its text and its link.
_READ_CODE = """
const names = Array.from(document.querySelectorAll("thead th"), th => th.textContent.trim());
const column = names.indexOf("Twilio error");
for (const tr of document.querySelectorAll("#events tr")) {
  const sid = tr.cells[names.indexOf("SID")].textContent;
  if (sid !== arguments[0]) continue;
  const td = tr.cells[column];
  const link = td.querySelector("a");
  return {text: td.textContent, href: link && link.href, rel: link && link.rel,
          target: link && link.target, links: td.querySelectorAll("a").length};
}
return null;
"""


@pytest.fixture
def site(browser: webdriver.Chrome, tmp_path: Path) -> Iterator[Site]:
    with serve(browser, tmp_path) as running_site:
        yield running_site


def test_a_failing_sms_shows_its_error_code_title_link_and_dates(site: Site) -> None:
    page = site.page
    failing = sms_status_payload("undelivered", ErrorCode="30003")
    site.carrier.down_for.add(failing["MessageSid"])
    page.open()
    dead = send(site.listener, failing)
    sent = send(site.listener, sms_status_payload("sent"))
    rows = page.wait_outcomes({dead: "dead letter", sent: "handled"})

    # The list: the code with its title, linked to Twilio's page; the time with its date.
    code = page.until(lambda: page.driver.execute_script(_READ_CODE, dead), "the code cell")
    assert code["text"] == f"30003 {TITLE}"
    assert code["links"] == 1
    assert code["href"] == PAGE_30003
    assert code["rel"] == "noreferrer noopener"
    assert code["target"] == "_blank"
    assert SHOWN_TIME.fullmatch(rows[dead].received), rows[dead].received
    # An event without a code shows none.
    plain = page.driver.execute_script(_READ_CODE, sent)
    assert plain is not None
    assert plain["text"] == ""
    assert plain["links"] == 0

    # The event's page: the same, and its attempts' times with their date.
    page.open(f"events/{rows[dead].id}")
    link = page.driver.find_element(By.CSS_SELECTOR, "#error-code a")
    assert link.text == f"30003 {TITLE}"
    assert link.get_attribute("href") == PAGE_30003
    assert link.get_attribute("rel") == "noreferrer noopener"
    assert link.get_attribute("target") == "_blank"
    facts = {
        th.text: td.text
        for th, td in (
            (tr.find_element(By.TAG_NAME, "th"), tr.find_element(By.TAG_NAME, "td"))
            for tr in page.driver.find_elements(By.CSS_SELECTOR, "table.facts tr")
        )
    }
    assert SHOWN_TIME.fullmatch(facts["received"]), facts
    assert SHOWN_TIME.fullmatch(facts["finished"]), facts
    attempt_times = [
        tr.find_elements(By.TAG_NAME, "td")[1].text
        for tr in page.driver.find_elements(By.CSS_SELECTOR, "h2 + table tbody tr")
        if len(tr.find_elements(By.TAG_NAME, "td")) == 5
    ]
    assert len(attempt_times) == 2, attempt_times
    assert all(SHOWN_TIME.fullmatch(shown) for shown in attempt_times), attempt_times
