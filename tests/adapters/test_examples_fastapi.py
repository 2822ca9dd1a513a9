"""``examples/fastapi_app.py``, imported as uvicorn would and driven by FastAPI's client."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

import twilio_trigger as twilio
from tests.payloads import FORM, Params, call_status_payload, encode_form, sign, sms_status_payload

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork at import; the dev extra installs httpx,
    # which its test client still drives correctly.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

MODULE = "examples.fastapi_app"
TOKEN = "example-auth-token"
PUBLIC_URL = "https://hooks.example.com/twilio/"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example freshly imported, its listener configured by the environment alone."""
    for name in list(os.environ):
        if name.startswith("TWILIO_TRIGGER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_TRIGGER_PUBLIC_URL", PUBLIC_URL)
    # The listener reads its environment when the module creates it: import it anew.
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield importlib.import_module(MODULE)
    sys.modules.pop(MODULE, None)


@pytest.fixture
def client(example: ModuleType) -> Iterator[TestClient]:
    app = example.app
    assert isinstance(app, FastAPI)
    with TestClient(app) as client:
        yield client


def post_signed(client: TestClient, params: Params, *, signed_over: str) -> httpx.Response:
    headers = {"Content-Type": FORM, "X-Twilio-Signature": sign(signed_over, params, TOKEN)}
    response: httpx.Response = client.post(
        "/twilio/", content=encode_form(params), headers=headers, follow_redirects=False
    )
    return response


def test_the_listener_takes_its_settings_from_the_environment(example: ModuleType) -> None:
    listener = example.listener
    assert isinstance(listener, twilio.Listener)
    assert listener.settings.public_url == PUBLIC_URL
    assert list(listener.settings.auth_tokens) == [TOKEN]
    kinds = {type(service).__name__ for service in listener.services}
    assert kinds == {"MessageStatus", "CallStatus"}


def test_the_app_keeps_its_own_route(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.json() == {"service": "orders", "twilio_webhook": "/twilio/"}


@pytest.mark.parametrize(
    ("params", "logged"),
    [
        pytest.param(sms_status_payload("delivered"), "delivered to", id="sms-delivered"),
        pytest.param(sms_status_payload("failed"), "failed: error", id="sms-failed"),
        pytest.param(call_status_payload("completed"), "completed after", id="call-completed"),
        pytest.param(call_status_payload("no-answer"), "was not answered", id="call-no-answer"),
    ],
)
def test_signed_events_reach_the_example_services(
    client: TestClient, caplog: pytest.LogCaptureFixture, params: Params, logged: str
) -> None:
    with caplog.at_level(logging.INFO, logger="fastapi_app"):
        response = post_signed(client, params, signed_over=PUBLIC_URL)

    assert response.status_code == 200
    assert "<Response/>" in response.text
    messages = [record.getMessage() for record in caplog.records if record.name == "fastapi_app"]
    assert len(messages) == 1
    assert logged in messages[0]


def test_a_signature_over_the_local_url_is_refused(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fastapi_app"):
        response = post_signed(
            client, sms_status_payload("delivered"), signed_over="http://testserver/twilio/"
        )

    assert response.status_code == 403
    assert not [record for record in caplog.records if record.name == "fastapi_app"]
