"""The Console Debugger's webhook: alerts of the account, as events of the kind ``debugger``.

Twilio posts each alert as a form (``Sid``, ``Level``, ``Timestamp``, ``PayloadType``
and ``Payload``, a JSON text), signed like any webhook; ``Level`` picks the
callback (``on_error``, ``on_warning``).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post
from twilio_trigger.testing import TestClient, debugger_params

from ._support import TOKEN, running, wait_until


class Alerts(twilio.DebuggerService):
    def __init__(self) -> None:
        self.seen: list[tuple[str, twilio.DebuggerEvent]] = []
        self.lock = threading.Lock()

    def on_error(self, event: twilio.DebuggerEvent) -> None:
        with self.lock:
            self.seen.append(("error", event))

    async def on_warning(self, event: twilio.DebuggerEvent) -> None:
        with self.lock:
            self.seen.append(("warning", event))


def test_an_alert_reaches_on_error_with_its_payload_parsed() -> None:
    alerts = Alerts()
    params = debugger_params("error", sid="NO" + "a" * 32)
    with running(alerts) as listener:
        assert signed_post(listener.url, params, TOKEN).status_code == 200
        wait_until(lambda: len(alerts.seen) == 1, "the alert dispatched")
    callback, event = alerts.seen[0]
    assert callback == "error"
    assert event.kind == "debugger"
    assert event.sid == "NO" + "a" * 32
    assert event.status == "ERROR"
    assert event.level == "ERROR"
    assert event.timestamp == datetime(2023, 11, 14, 18, 30, tzinfo=UTC)
    assert event.payload_type == "application/json"
    assert event.payload is not None
    assert event.payload["error_code"] == "11200"
    assert event.alert_code == 11200
    assert event.resource_sid is not None
    assert event.resource_sid.startswith("CA")


@pytest.mark.parametrize("level", ["Warning", "WARNING", " warning"])
def test_the_level_picks_the_callback_whatever_its_case(level: str) -> None:
    alerts = Alerts()
    listener = twilio.Listener(auth_tokens=[TOKEN])
    listener.attach(alerts)
    with TestClient(listener) as client:
        assert client.send("debugger", "warning", Level=level).status_code == 200
    assert [callback for callback, _ in alerts.seen] == ["warning"]


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[1, 2]", json.dumps({"error_code": True}), "{" * 100_000 + "}" * 100_000],
)
def test_a_payload_that_is_not_a_json_object_reads_as_none(payload: str) -> None:
    event = twilio.DebuggerEvent(debugger_params(Payload=payload))
    assert event.alert_code is None
    assert event.resource_sid is None
    if payload != json.dumps({"error_code": True}):
        assert event.payload is None


def test_a_timestamp_that_is_not_iso_8601_reads_as_none() -> None:
    event = twilio.DebuggerEvent(debugger_params(Timestamp="Tue, 14 Nov 2023 18:30:00 +0000"))
    assert event.timestamp is None


def test_an_alert_without_its_payload_is_not_taken_for_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alerts = Alerts()
    listener = twilio.Listener(auth_tokens=[TOKEN])
    listener.attach(alerts)
    with TestClient(listener) as client:
        answer = client.post(debugger_params(Payload=None))
    # No kind recognises it: acknowledged, said once, never given to on_error.
    assert answer.status_code == 200
    assert alerts.seen == []
    assert "no kind recognises" in caplog.text
    assert "Level, ParentAccountSid, PayloadType" in caplog.text


def test_a_retried_alert_runs_once() -> None:
    alerts = Alerts()
    params = debugger_params("error")
    with running(alerts, deduplicate=True) as listener:
        for _ in range(3):
            assert signed_post(listener.url, params, TOKEN).status_code == 200
        wait_until(lambda: len(alerts.seen) == 1, "the alert dispatched")
    assert len(alerts.seen) == 1
