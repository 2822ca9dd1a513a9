"""Fixtures for the end-to-end tests: real listeners on loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

#: Every environment variable the listener reads; the tests set their own.
_ENVIRONMENT = (
    "TWILIO_AUTH_TOKEN",
    "TWILIO_TRIGGER_PORT",
    "TWILIO_TRIGGER_HOST",
    "TWILIO_TRIGGER_PATH",
    "TWILIO_TRIGGER_PUBLIC_URL",
    "TWILIO_TRIGGER_VERIFY_SIGNATURES",
    "TWILIO_TRIGGER_MAX_BODY_BYTES",
    "TWILIO_TRIGGER_MAX_PARAMS",
)


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    """No listener option leaks in from the environment the tests run in."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _ENVIRONMENT:
            patch.delenv(name, raising=False)
        yield


@pytest.fixture
def no_listener_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every listener option comes from the test, none from the environment: the
    ``TWILIO_TRIGGER_*`` variables are removed (the ``TWILIO_TRIGGER_REQUIRE_*`` ones,
    which say which services a run must have, stay), and ``PROMETHEUS_*``."""
    for name in list(os.environ):
        if (
            name.startswith("TWILIO_TRIGGER_") and not name.startswith("TWILIO_TRIGGER_REQUIRE_")
        ) or name.startswith("PROMETHEUS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A client for the listeners on loopback (no proxy from the environment)."""
    with httpx.Client(timeout=15.0, trust_env=False) as client:
        yield client
