"""A refused signature is logged with the reason the public verifier gives.

Signature failures behind a proxy are the problem Twilio users report most; the
operator must read in the log what was tried and what to do, and the reason must
be the one ``twilio_trigger.SignatureVerifier`` gives a user of its own server.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from twilio_trigger.testing import message_cloudevent, sign_json

from ._support import LOGGER, TOKEN, running


def told(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == LOGGER and getattr(r, "reason", None) == "signature_invalid"
    ]


def test_a_form_signed_with_another_token_is_logged_with_the_urls_and_tokens_tried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    params = sms_status_payload("delivered")
    with running() as listener:
        url = listener.url
        answer = signed_post(url, params, "another-token")
        assert answer.status_code == 403
        verifier = twilio.SignatureVerifier([TOKEN])
        expected = verifier.explain_form(
            listener.url, list(params.items()), answer.request.headers["X-Twilio-Signature"]
        )
    records = told(caplog)
    assert len(records) == 1
    assert expected is not None
    message = records[0].getMessage()
    assert str(expected) in message
    assert "by the auth token" in message
    assert url in message
    assert records[0].__dict__["why"] == str(expected)
    assert TOKEN not in message


def test_a_changed_event_streams_body_is_logged_as_changed_not_as_forged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    with running() as listener:
        body = json.dumps([message_cloudevent("delivered")]).encode()
        url, signature = sign_json(listener.url, body, TOKEN)
        changed = json.dumps(json.loads(body), indent=1).encode()  # re-encoded on the way
        answer = httpx.post(
            url,
            content=changed,
            headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
            timeout=10,
        )
        assert answer.status_code == 403
    records = told(caplog)
    assert len(records) == 1
    assert "the body was changed after Twilio signed it" in records[0].getMessage()


def test_a_flood_of_bad_signatures_is_explained_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    with running() as listener, httpx.Client(timeout=10, trust_env=False) as client:
        for _ in range(20):
            params = sms_status_payload("delivered")
            answer = signed_post(listener.url, params, "forged", client=client)
            assert answer.status_code == 403
    explained = [r for r in told(caplog) if "why" in r.__dict__]
    assert len(explained) == 1
