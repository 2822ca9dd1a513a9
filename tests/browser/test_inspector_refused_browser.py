"""Refused requests on the inspector's page, in headless Chromium.

A request signed with the wrong token is refused with a 403 and never reaches the
inbox; the page must show it under "Refused requests" within its refresh, with
its reason, and the summary at the top; never what the request carried beyond
its header names, and what it carried as text, not markup.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.test_inspector_browser import serve
from tests.e2e._support import read_answer
from tests.payloads import signed_post, sms_status_payload

WRONG_TOKEN = "not-the-auth-token-0123456789abcd"
BODY_MARKER = "BODY-MARKER-7f3a9c"
HEADER_SECRET = "HEADER-SECRET-51be02"

#: The refused requests' table, read in one go (the page replaces it every second).
_READ_REFUSED = """
const names = Array.from(document.querySelectorAll("#refused-requests ~ table thead th"),
  th => th.textContent.trim());
return Array.from(document.querySelectorAll("#refused tr"), tr => {
  const cells = {};
  Array.from(tr.cells).forEach((td, i) => { cells[names[i]] = td.textContent; });
  return cells;
});
"""


def refused_rows(driver: webdriver.Chrome) -> list[dict[str, str]]:
    found: Any = driver.execute_script(_READ_REFUSED)
    return list(found) if isinstance(found, list) else []


def test_a_wrong_signature_appears_under_refused_requests(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    with serve(browser, tmp_path) as site:
        page, listener = site.page, site.listener
        page.open()
        page.mark()
        page.until(
            lambda: (
                page.driver.find_element(By.ID, "refused-counts").text
                == "none since this process started"
            ),
            "the empty refused requests",
        )
        assert not page.driver.find_element(By.ID, "refused-summary").is_displayed()

        params = sms_status_payload("delivered")
        params["Body"] = BODY_MARKER
        response = signed_post(
            listener.url, params, WRONG_TOKEN, headers={"Authorization": f"Bearer {HEADER_SECRET}"}
        )
        assert response.status_code == 403
        signature = response.request.headers["x-twilio-signature"]

        rows = page.until(lambda: refused_rows(page.driver) or None, "a refused request")
        (row,) = rows
        assert row["reason"] == "signature_invalid"
        assert row["status"] == "403"
        assert row["from"] == "127.0.0.1"
        assert row["request"] == "POST /"
        assert row["why"] == "invalid X-Twilio-Signature"
        assert listener.url in row["URLs checked"].splitlines()
        assert "authorization" in row["header names"].splitlines()
        reason = page.driver.find_element(By.CSS_SELECTOR, "#refused td.reason")
        assert reason.value_of_css_property("font-weight") == "600"  # the stylesheet's
        summary = page.driver.find_element(By.ID, "refused-summary")
        assert summary.is_displayed()
        assert summary.text == "1 request refused (signature_invalid: 1)"
        counts = page.driver.find_element(By.ID, "refused-counts").text
        assert counts.startswith("1 since this process started (signature_invalid: 1)")
        page.assert_not_reloaded()  # it came with the page's refresh

        source = page.driver.page_source
        for secret in (BODY_MARKER, HEADER_SECRET, signature, "TwilioProxy"):
            assert secret not in source, secret
        assert page.violations() == []


def test_what_a_refused_request_carried_is_shown_as_text(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    with serve(browser, tmp_path) as site:
        page, listener = site.page, site.listener
        # A query name that would be markup, sent as is: it shows among the URL forms.
        evil = b"<svg/onload/alert(1)><b>bold</b>"
        long_name = b"n" * 250  # a URL form without a space to break it at
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            sock.sendall(
                b"POST /?" + evil + b"=1&" + long_name + b"=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"X-Twilio-Signature: AAAA\r\nContent-Length: 3\r\n\r\na=1"
            )
            status, _, _ = read_answer(sock)
        assert status == 403
        page.open()
        rows = page.until(lambda: refused_rows(page.driver) or None, "a refused request")
        assert "?<svg/onload/alert(1)><b>bold</b>=…&nnn" in rows[0]["URLs checked"]
        assert page.driver.find_elements(By.CSS_SELECTOR, "#refused svg, #refused b") == []
        assert page.violations() == []
        # Long URL forms wrap: the page stays as wide as the window.
        inner, scroll = page.driver.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth];"
        )
        assert scroll <= inner, f"the page is {scroll} px wide in a {inner} px window"
