"""An outage told once: its start, its end, and successes that prove nothing."""

from __future__ import annotations

import logging
import time

import pytest

from twilio_trigger._outage import Outage

LOGGER = "twilio_trigger"


def told(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_an_operation_begun_before_the_outage_was_told_does_not_end_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage = Outage("PostgreSQL inbox", "postgresql://user:secret@db:5432/app")
    before = time.monotonic()  # a statement under way when the server went down
    outage.failed(ConnectionError("server closed the connection unexpectedly"))
    outage.recovered(before)  # it completed on a connection the crash had not reached
    assert outage.ongoing
    outage.failed(ConnectionError("server closed the connection unexpectedly"))
    lines = told(caplog)
    assert len(lines) == 1  # told once, not once per racing completion
    assert lines[0].startswith("the PostgreSQL inbox postgresql://user:***@db:5432/app cannot be")
    assert "secret" not in lines[0]

    outage.recovered(time.monotonic())  # begun after: the database answers again
    assert not outage.ongoing
    lines = told(caplog)
    assert len(lines) == 2
    assert lines[1].startswith("the PostgreSQL inbox postgresql://user:***@db:5432/app can be")
    assert "2 operations failed" in lines[1]


def test_a_success_without_a_start_time_ends_the_outage() -> None:
    outage = Outage("Redis inbox", "redis://127.0.0.1:6379/0")
    outage.failed(ConnectionError("refused"))
    outage.recovered()
    assert not outage.ongoing
