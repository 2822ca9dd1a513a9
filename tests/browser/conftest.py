"""Fixtures for the inspector's browser tests: a headless Chromium driven by Selenium.

They need Debian's ``chromium`` and ``chromium-driver`` (``scripts/test`` installs
them when it can).  Without them the tests skip and say why, unless
``TWILIO_TRIGGER_REQUIRE_BROWSER=1`` (CI sets it): then they fail.  Selenium
Manager never runs: both binaries are given by path, and ``SE_OFFLINE`` forbids
it any download.

Every page the browser opens records the Content-Security-Policy violations it
meets in ``window.__cspViolations`` (a script DevTools adds before the page's
own, which the policy does not govern), and the browser's console is kept, so
that a test can say the inspector's pages run under their policy untouched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from twilio_trigger._config import ENVIRONMENT

REQUIRE = "TWILIO_TRIGGER_REQUIRE_BROWSER"
MISSING = (
    "no chromium/chromedriver: install Debian's chromium and chromium-driver "
    "(scripts/test does when it can)"
)
WINDOW = (1280, 900)
#: Runs in every document before its own scripts.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", event => {
  window.__cspViolations.push({directive: event.effectiveDirective,
    blocked: event.blockedURI, sample: event.sample, source: event.sourceFile});
});
"""


def _binary(name: str) -> str | None:
    """The path of the executable *name*: on the PATH, else where Debian puts it."""
    found = shutil.which(name)
    if found is not None:
        return found
    fallback = Path("/usr/bin") / name
    return str(fallback) if os.access(fallback, os.X_OK) else None


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No listener option leaks in from the environment the tests run in."""
    for variable in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    """A headless Chromium, 1280x900, quit at teardown."""
    chromium, chromedriver = _binary("chromium"), _binary("chromedriver")
    if chromium is None or chromedriver is None:
        if os.environ.get(REQUIRE, "").strip() == "1":
            pytest.fail(f"{MISSING} ({REQUIRE}=1, so this fails instead of skipping)")
        pytest.skip(MISSING)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: no download, ever
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": COLLECT_VIOLATIONS}
        )
        driver.set_window_size(*WINDOW)
        driver.set_page_load_timeout(15)
        yield driver
    finally:
        driver.quit()
