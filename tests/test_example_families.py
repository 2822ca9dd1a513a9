"""examples/conference_moderator.py and examples/debugger_alerts.py, driven through the
test kit as a user would test them."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType

import pytest

from twilio_trigger.testing import TestClient, debugger_params

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFERENCE = "CF" + "4" * 32
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", f"{name}-token")
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, f"{name}_example", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def conference(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load("conference_moderator", monkeypatch)


@pytest.fixture
def debugger(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load("debugger_alerts", monkeypatch)


def messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == logger]


# -- the conference moderator ---------------------------------------------------------


def test_the_moderator_joining_and_leaving_is_noted(
    conference: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "conference_moderator")
    moderator_call = "CA" + "1" * 32
    with TestClient(conference.listener) as client:
        early = client.send("conference", "participant-join", sid=CONFERENCE)
        joined = client.send(
            "conference",
            "participant-join",
            sid=CONFERENCE,
            CallSid=moderator_call,
            ParticipantLabel="moderator",
        )
        noted = dict(conference.moderation.moderated)
        left = client.send(
            "conference",
            "participant-leave",
            sid=CONFERENCE,
            CallSid=moderator_call,
            ParticipantLabel="moderator",
            ReasonParticipantLeft="participant_hung_up",
        )
    assert early.status_code == joined.status_code == left.status_code == 200
    assert joined.text == EMPTY_TWIML  # a conference callback gets a receipt
    assert noted == {CONFERENCE: moderator_call}
    assert conference.moderation.moderated == {}
    said = messages(caplog, "conference_moderator")
    assert any("waits for the moderator" in line for line in said)
    assert any(f"{CONFERENCE} (support-room-42): the moderator joined" in line for line in said)
    assert any("the moderator left (participant_hung_up)" in line for line in said)


def test_the_end_is_logged_and_a_join_arriving_after_it_is_ignored(
    conference: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "conference_moderator")
    with TestClient(conference.listener) as client:
        ended = client.send(
            "conference",
            "conference-end",
            sid=CONFERENCE,
            ReasonConferenceEnded="participant-with-end-conference-on-exit-left",
        )
        # SequenceNumber 1, after the end's 5: stale.
        late = client.send(
            "conference", "participant-join", sid=CONFERENCE, ParticipantLabel="moderator"
        )
    assert ended.status_code == late.status_code == 200
    assert conference.moderation.moderated == {}  # the late join did not count
    said = messages(caplog, "conference_moderator")
    assert any("ended: participant-with-end-conference-on-exit-left" in line for line in said)
    assert any(
        "ignored participant-join number 1, which arrived after conference-end" in line
        for line in said
    )
    assert not any("the moderator joined" in line for line in said)


# -- the Debugger alerts --------------------------------------------------------------


def alerts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "debugger_alerts" and record.levelno == logging.ERROR
    ]


def failed_webhook(code: str, url: str, response: dict[str, object] | None) -> str:
    """A Debugger Payload for a webhook that failed with *code*, as the fact sheet lays it out."""
    webhook: dict[str, object] = {
        "type": "application/json",
        "request": {"method": "POST", "url": url, "headers": {}, "parameters": {}},
    }
    if response is not None:
        webhook["response"] = response
    return json.dumps(
        {
            "resource_sid": "CA" + "9" * 32,
            "service_sid": None,
            "error_code": code,
            "webhook": webhook,
        }
    )


def test_an_unreachable_webhook_raises_one_alert_with_its_url_and_status(
    debugger: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "debugger_alerts")
    with TestClient(debugger.listener) as client:
        first = client.send("debugger", "error")  # 11200: the webhook answered 502
        again = client.send("debugger", "error")
    assert first.status_code == again.status_code == 200
    raised = alerts(caplog)
    assert len(raised) == 1
    assert "Twilio error 11200: POST to https://hooks.example.com/voice failed" in raised[0]
    assert "it answered HTTP 502" in raised[0]
    assert debugger.alerts.held_back == {("https://hooks.example.com/voice", 11200): 1}


def test_a_connection_failure_alerts_without_a_status(
    debugger: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "debugger_alerts")
    url = "https://hooks.example.com/sms"
    with TestClient(debugger.listener) as client:
        answer = client.post(debugger_params("error", Payload=failed_webhook("11205", url, None)))
    assert answer.status_code == 200
    (raised,) = alerts(caplog)
    assert f"Twilio error 11205: POST to {url} failed (no HTTP answer)" in raised


def test_other_errors_and_warnings_raise_no_alert(
    debugger: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "debugger_alerts")
    other = failed_webhook("12300", "https://hooks.example.com/voice", {"status_code": 200})
    with TestClient(debugger.listener) as client:
        error = client.post(debugger_params("error", Payload=other))
        warning = client.send("debugger", "warning")
    assert error.status_code == warning.status_code == 200
    assert alerts(caplog) == []
    said = messages(caplog, "debugger_alerts")
    assert any("Twilio error 12300" in line for line in said)
    assert any(line.startswith("Twilio warning 11200") for line in said)
