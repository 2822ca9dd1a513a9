"""Requests signed with a Webhook Rule's SharedKey, over real HTTP.

Twilio signs them with HMAC-SHA256 and the shared key's secret (the same string
to sign as ever) and says so in ``X-Twilio-Webhooks-Signature-Settings:
key=<id>,algorithm=HMAC_SHA256``.  Every signature here is made by
twilio-python's ``RequestValidator`` (``algorithm="HMAC_SHA256"``), and checked
with its ``validate``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio
from tests.payloads import FORM, MultiParams, encode_form, pairs_of, sign, sms_status_payload

from ._support import (
    TOKEN,
    CallRecorder,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    records,
    running,
)

KEY_ID = "webhooks_sharedkey_7d2f0c1e"
SECRET = "shk_9Q2vX7mLpR4tZ8nB3cF6hJ1kW5yD0aE"
KEY_ID_2 = "webhooks_sharedkey_a91b33c4"
SECRET_2 = "shk_Hq3Lw8Zr2Tn6Vb1Xc5Mk9Pj4Gf7Ds0A"
SHA256 = "HMAC_SHA256"
SETTINGS = "X-Twilio-Webhooks-Signature-Settings"


def settings_for(key_id: str, algorithm: str = SHA256) -> str:
    return f"key={key_id},algorithm={algorithm}"


def oracle(url: str, params: dict[str, str], secret: str, algorithm: str = SHA256) -> str:
    pairs = MultiParams(pairs_of(params))
    return str(RequestValidator(secret).compute_signature(url, pairs, algorithm))


def post_form(
    url: str,
    params: dict[str, str],
    signature: str,
    settings: str | None,
) -> httpx.Response:
    headers = {
        "Content-Type": FORM,
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    if settings is not None:
        headers[SETTINGS] = settings
    return httpx.post(url, content=encode_form(params), headers=headers, timeout=10.0)


def shared_post(
    url: str,
    params: dict[str, str],
    key_id: str = KEY_ID,
    secret: str = SECRET,
    algorithm: str = SHA256,
) -> httpx.Response:
    signature = oracle(url, params, secret, algorithm)
    if algorithm == SHA256:
        assert RequestValidator(secret).validate(url, params, signature, SHA256)
    return post_form(url, params, signature, settings_for(key_id))


def json_post(
    url: str,
    events: list[dict[str, object]],
    secret: str,
    settings: str | None,
    algorithm: str = SHA256,
) -> httpx.Response:
    body = json.dumps(events).encode()
    target = f"{url}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = str(RequestValidator(secret).compute_signature(target, {}, algorithm))
    assert RequestValidator(secret).validate(target, body.decode(), signature, algorithm)
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}
    if settings is not None:
        headers[SETTINGS] = settings
    return httpx.post(target, content=body, headers=headers, timeout=10.0)


def delivered_cloudevent() -> dict[str, object]:
    return {
        "specversion": "1.0",
        "type": "com.twilio.messaging.message.delivered",
        "source": "/2010-04-01/Accounts/AC3f1c2e4d5b6a79880f1e2d3c4b5a6978/Messages",
        "id": str(uuid.uuid4()),
        "datacontenttype": "application/json",
        "time": "2024-11-21T18:30:00.000Z",
        "data": {"messageSid": "SM" + uuid.uuid4().hex, "messageStatus": "DELIVERED"},
    }


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def listener(recorder: Recorder) -> Iterator[twilio.Listener]:
    keys = {KEY_ID: SECRET, KEY_ID_2: SECRET_2}
    with running(SmsRecorder(recorder), CallRecorder(recorder), shared_keys=keys) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _fresh(recorder: Recorder) -> Iterator[None]:
    recorder.reset()
    yield
    recorder.reset()


def dispatched(recorder: Recorder) -> list[str]:
    with recorder.lock:
        return [call.callback for call in recorder.calls]


# -- accepted ------------------------------------------------------------------------
@pytest.mark.parametrize(("key_id", "secret"), [(KEY_ID, SECRET), (KEY_ID_2, SECRET_2)])
def test_form_signed_with_a_shared_key_is_accepted(
    listener: twilio.Listener, recorder: Recorder, key_id: str, secret: str
) -> None:
    params = sms_status_payload("delivered")
    assert_empty_twiml(shared_post(listener.url, params, key_id, secret))
    [call] = recorder.calls
    assert call.callback == "on_delivered"
    assert call.event.sid == params["MessageSid"]


def test_json_signed_with_a_shared_key_is_accepted(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    response = json_post(listener.url, [delivered_cloudevent()], SECRET_2, settings_for(KEY_ID_2))
    assert_empty_twiml(response)
    assert dispatched(recorder) == ["on_delivered"]


@pytest.mark.parametrize(
    "settings",
    [
        f"algorithm=HMAC_SHA256,key={KEY_ID}",
        f"key = {KEY_ID} , algorithm = hmac_sha256",
        f"key={KEY_ID},algorithm=HMAC_SHA256,version=1",
    ],
    ids=["reordered", "spaces-and-lower-case", "extra-field"],
)
def test_settings_header_is_read_as_twilio_python_reads_it(
    listener: twilio.Listener, recorder: Recorder, settings: str
) -> None:
    params = sms_status_payload("sent")
    response = post_form(listener.url, params, oracle(listener.url, params, SECRET), settings)
    assert_empty_twiml(response)
    assert dispatched(recorder) == ["on_sent"]


def test_auth_token_requests_keep_working_beside_shared_keys(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    assert_empty_twiml(post_form(listener.url, params, sign(listener.url, params, TOKEN), None))
    # A settings header without an algorithm means the legacy signature too.
    params = sms_status_payload("sent")
    response = post_form(listener.url, params, sign(listener.url, params, TOKEN), f"key={KEY_ID}")
    assert_empty_twiml(response)
    assert dispatched(recorder) == ["on_delivered", "on_sent"]


# -- refused --------------------------------------------------------------------------
def test_wrong_secret_is_refused(listener: twilio.Listener, recorder: Recorder) -> None:
    params = sms_status_payload("delivered")
    response = shared_post(listener.url, params, KEY_ID, "shk_not-the-secret")
    assert response.status_code == 403
    assert recorder.calls == []


def test_the_other_keys_secret_under_this_key_id_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    assert shared_post(listener.url, params, KEY_ID, SECRET_2).status_code == 403
    assert recorder.calls == []


def test_unknown_key_id_is_refused(listener: twilio.Listener, recorder: Recorder) -> None:
    params = sms_status_payload("delivered")
    response = shared_post(listener.url, params, "webhooks_sharedkey_unknown", SECRET)
    assert response.status_code == 403
    assert recorder.calls == []


def test_sha1_signature_under_an_sha256_header_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    signature = oracle(listener.url, params, SECRET, "HMAC_SHA1")
    response = post_form(listener.url, params, signature, settings_for(KEY_ID))
    assert response.status_code == 403
    assert recorder.calls == []


def test_auth_token_signature_with_the_settings_header_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    for signature in (
        sign(listener.url, params, TOKEN),  # HMAC-SHA1 with the auth token
        oracle(listener.url, params, TOKEN),  # HMAC-SHA256 with the auth token
    ):
        response = post_form(listener.url, params, signature, settings_for(KEY_ID))
        assert response.status_code == 403
    assert recorder.calls == []


def test_shared_key_signature_without_the_settings_header_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    response = post_form(listener.url, params, oracle(listener.url, params, SECRET), None)
    assert response.status_code == 403
    assert recorder.calls == []


@pytest.mark.parametrize("algorithm", ["HMAC_SHA512", "HMAC_SHA1", "RSA"])
def test_an_algorithm_other_than_sha256_in_the_header_is_refused(
    listener: twilio.Listener, recorder: Recorder, algorithm: str
) -> None:
    params = sms_status_payload("delivered")
    signature = oracle(listener.url, params, SECRET)
    response = post_form(listener.url, params, signature, settings_for(KEY_ID, algorithm))
    assert response.status_code == 403
    assert recorder.calls == []


def test_json_refusals_follow_the_same_rules(listener: twilio.Listener, recorder: Recorder) -> None:
    events = [delivered_cloudevent()]
    url = listener.url
    assert json_post(url, events, "shk_wrong", settings_for(KEY_ID)).status_code == 403
    assert json_post(url, events, SECRET, settings_for("webhooks_sharedkey_x")).status_code == 403
    assert json_post(url, events, SECRET, settings_for(KEY_ID), "HMAC_SHA1").status_code == 403
    assert json_post(url, events, TOKEN, settings_for(KEY_ID), "HMAC_SHA1").status_code == 403
    assert json_post(url, events, SECRET, None).status_code == 403
    assert recorder.calls == []
    # The same events, signed with the auth token and no header, go through.
    assert_empty_twiml(json_post(url, events, TOKEN, None, "HMAC_SHA1"))
    assert dispatched(recorder) == ["on_delivered"]


# -- listeners with shared keys only ----------------------------------------------------
def test_listener_with_only_shared_keys_starts_and_verifies_with_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    listener = twilio.Listener(0, host="127.0.0.1", shared_keys={KEY_ID: SECRET})
    listener.attach(SmsRecorder(recorder))
    with listener:
        params = sms_status_payload("delivered")
        assert_empty_twiml(shared_post(listener.url, params))
        # No auth token: a legacy signature has nothing to match.
        params = sms_status_payload("sent")
        response = post_form(listener.url, params, sign(listener.url, params, TOKEN), None)
        assert response.status_code == 403
    assert dispatched(recorder) == ["on_delivered"]


def test_listener_with_bare_secrets_tries_each(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    listener = twilio.Listener(0, host="127.0.0.1", shared_keys=[SECRET, SECRET_2])
    listener.attach(SmsRecorder(recorder))
    with listener:
        for secret in (SECRET, SECRET_2):
            params = sms_status_payload("delivered")
            key_id = "webhooks_sharedkey_" + uuid.uuid4().hex[:8]  # any id: the secrets decide
            assert_empty_twiml(shared_post(listener.url, params, key_id, secret))
        params = sms_status_payload("delivered")
        assert shared_post(listener.url, params, KEY_ID, "shk_wrong").status_code == 403
    assert dispatched(recorder) == ["on_delivered", "on_delivered"]


def test_shared_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("TWILIO_TRIGGER_SHARED_KEYS", f"{KEY_ID}={SECRET}, {KEY_ID_2}={SECRET_2}")
    recorder = Recorder()
    listener = twilio.Listener(0, host="127.0.0.1")
    listener.attach(SmsRecorder(recorder))
    with listener:
        assert_empty_twiml(shared_post(listener.url, sms_status_payload("sent"), KEY_ID, SECRET))
        response = shared_post(listener.url, sms_status_payload("read"), KEY_ID_2, SECRET_2)
        assert_empty_twiml(response)
        response = shared_post(listener.url, sms_status_payload("sent"), KEY_ID, SECRET_2)
        assert response.status_code == 403
    assert dispatched(recorder) == ["on_sent", "on_read"]


def test_listener_start_line_says_what_verifies_signatures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="twilio_trigger")
    with twilio.Listener(0, host="127.0.0.1", shared_keys={KEY_ID: SECRET}):
        pass
    # It verifies with one shared key; "0 auth tokens" reads as "verifies nothing".
    [line] = [r.getMessage() for r in records(caplog, 20) if "listening on" in r.getMessage()]
    assert "0 auth tokens" not in line, line
    assert "shared" in line, line
