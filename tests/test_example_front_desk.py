"""examples/front_desk.py, driven through the test kit as a user would test it."""

from __future__ import annotations

import importlib.util
import logging
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from types import ModuleType

import pytest

from twilio_trigger.testing import TestClient, inbound_call_params, inbound_sms_params

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "front_desk.py"


@pytest.fixture
def front_desk(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "front-desk-token")
    spec = importlib.util.spec_from_file_location("front_desk_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "front_desk_example", module)
    spec.loader.exec_module(module)
    return module


def reply_of(text: str) -> ElementTree.Element:
    root = ElementTree.fromstring(text.partition("?>")[2])  # noqa: S314 - our own answer
    assert root.tag == "Response"
    return root


def test_an_inbound_message_is_answered_and_hours_on_request(front_desk: ModuleType) -> None:
    with TestClient(front_desk.listener) as client:
        thanks = client.post(inbound_sms_params(Body="my parcel is broken"))
        hours = client.post(inbound_sms_params(Body=" hours ", NumMedia="0", MediaUrl0=None))
        stop = client.post(inbound_sms_params(Body="STOP", OptOutType="STOP"))
    assert thanks.status_code == hours.status_code == stop.status_code == 200
    assert reply_of(thanks.text).findtext("Message") == (
        "Thanks, we got your message (1 attachment). We reply within a day."
    )
    assert reply_of(hours.text).findtext("Message") == front_desk.OPENING_HOURS
    assert list(reply_of(stop.text)) == []  # nothing sent back


def test_an_incoming_call_hears_the_greeting_and_is_recorded(front_desk: ModuleType) -> None:
    with TestClient(front_desk.listener) as client:
        answer = client.post(inbound_call_params("ringing"))
        status_callback = client.send_call("ringing")  # a call we made: no TwiML
    assert answer.status_code == 200
    assert answer.content_type == "text/xml"
    root = reply_of(answer.text)
    assert "Thanks for calling Acme" in (root.findtext("Say") or "")
    assert root.find("Record") is not None
    assert list(reply_of(status_callback.text)) == []


def test_a_voicemail_recording_is_logged(
    front_desk: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "front_desk")
    with TestClient(front_desk.listener) as client:
        answer = client.send_recording("completed", RecordingSid="RE" + "a" * 32)
    assert answer.status_code == 200
    assert any("RE" + "a" * 32 in r.getMessage() for r in caplog.records if r.name == "front_desk")
