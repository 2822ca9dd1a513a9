"""Fixtures for the end-to-end tests: real listeners on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

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
