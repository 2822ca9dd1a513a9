"""The test kit's new kinds: inbound calls, recordings, CloudEvents, shared keys.

Each factory's output goes through a real listener's ASGI application with
``TestClient``; the listener verifies every signature, so an accepted request is
a correctly signed one.  ``sign`` and ``sign_json`` are judged by twilio-python's
``RequestValidator``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

import twilio_trigger as twilio
from tests.payloads import MultiParams, pairs_of
from twilio_trigger.testing import (
    TestClient,
    call_cloudevent,
    cloudevent,
    inbound_call_params,
    inbound_message_cloudevent,
    message_cloudevent,
    new_sid,
    recording_status_params,
    sign,
    sign_json,
)

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
KEY_ID = "webhooks_sharedkey_7d2f0c1e"
SECRET = "shk_9Q2vX7mLpR4tZ8nB3cF6hJ1kW5yD0aE"
SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")


class Seen:
    """What the services below saw, in order: ``(kind, callback, event)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, twilio.TwilioEvent]] = []
        self.lock = threading.Lock()

    def add(self, kind: str, callback: str, event: twilio.TwilioEvent) -> None:
        with self.lock:
            self.calls.append((kind, callback, event))

    def names(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(kind, callback) for kind, callback, _ in self.calls]


class Messages(twilio.SmsStatusService):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.reply: object = None

    def on_queued(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.seen.add("sms", "on_queued", event)

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.seen.add("sms", "on_sent", event)

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.seen.add("sms", "on_delivered", event)

    def on_undelivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.seen.add("sms", "on_undelivered", event)

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.seen.add("sms", "on_failed", event)

    def on_read(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.seen.add("sms", "on_read", event)

    async def on_received(self, event: twilio.SmsStatusChangeEvent) -> object:
        self.seen.add("sms", "on_received", event)
        return self.reply


class Calls(twilio.CallStatusService):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.reply: object = None

    def _add(self, callback: str, event: twilio.CallStatusEvent) -> object:
        self.seen.add("call", callback, event)
        return self.reply

    def on_initiated(self, event: twilio.CallStatusEvent) -> object:
        return self._add("on_initiated", event)

    def on_ringing(self, event: twilio.CallStatusEvent) -> object:
        return self._add("on_ringing", event)

    async def on_in_progress(self, event: twilio.CallStatusEvent) -> object:
        return self._add("on_in_progress", event)

    def on_completed(self, event: twilio.CallStatusEvent) -> object:
        return self._add("on_completed", event)

    def on_busy(self, event: twilio.CallStatusEvent) -> object:
        return self._add("on_busy", event)

    def on_no_answer(self, event: twilio.CallStatusEvent) -> object:
        return self._add("on_no_answer", event)


class Recordings(twilio.RecordingStatusService):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def on_in_progress(self, event: twilio.RecordingStatusEvent) -> None:
        self.seen.add("recording", "on_in_progress", event)

    async def on_completed(self, event: twilio.RecordingStatusEvent) -> None:
        self.seen.add("recording", "on_completed", event)

    def on_absent(self, event: twilio.RecordingStatusEvent) -> None:
        self.seen.add("recording", "on_absent", event)


class Kit:
    def __init__(self, listener: twilio.Listener) -> None:
        self.seen = Seen()
        self.messages = Messages(self.seen)
        self.calls = Calls(self.seen)
        listener.attach(self.messages)
        listener.attach(self.calls)
        listener.attach(Recordings(self.seen))
        self.listener = listener


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_TRIGGER_SHARED_KEYS", "TWILIO_TRIGGER_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kit() -> Kit:
    return Kit(twilio.Listener(auth_tokens=[TOKEN], shared_keys={KEY_ID: SECRET}))


@pytest.fixture
def client(kit: Kit) -> Iterator[TestClient]:
    with TestClient(kit.listener) as client:
        yield client


def test_inbound_call_reaches_on_ringing_and_its_twiml_is_the_answer(
    kit: Kit, client: TestClient
) -> None:
    answer = VoiceResponse()
    answer.say("Welcome to Acme")
    kit.calls.reply = answer
    params = inbound_call_params()
    response = client.post(params)
    assert response.status_code == 200
    assert response.content_type == "text/xml"
    assert response.body == str(answer).encode()
    [(kind, callback, event)] = kit.seen.calls
    assert (kind, callback) == ("call", "on_ringing")
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.call_sid == params["CallSid"]
    assert event.direction == "inbound"
    assert event.callback_source is None
    assert event.caller == params["From"]


def test_inbound_message_reply_through_the_test_client(kit: Kit, client: TestClient) -> None:
    reply = MessagingResponse()
    reply.message("Reply STOP to unsubscribe")
    kit.messages.reply = reply
    response = client.send_sms("received", Body="HELP")
    assert response.status_code == 200
    assert response.text == str(reply)
    kit.messages.reply = "Thanks & see you <soon>"
    response = client.send_sms("received")
    assert "<Message>Thanks &amp; see you &lt;soon&gt;</Message>" in response.text


def test_test_response_carries_the_error_of_a_bad_reply(kit: Kit, client: TestClient) -> None:
    kit.calls.reply = "Press 1 for sales"
    response = client.post(inbound_call_params())
    assert response.status_code == 500
    [error] = response.errors
    assert isinstance(error, TypeError)
    assert "TwiML" in str(error)


# -- recordings -----------------------------------------------------------------------
@pytest.mark.parametrize("status", ["in-progress", "completed", "absent"])
def test_recording_status_params_reach_their_callback(
    kit: Kit, client: TestClient, status: str
) -> None:
    params = recording_status_params(status)
    assert params["RecordingStatus"] == status
    assert SID.fullmatch(params["RecordingSid"])
    assert params["RecordingSid"].startswith("RE")
    assert params["CallSid"].startswith("CA")
    assert params["RecordingSid"] in params["RecordingUrl"]
    assert client.post(params).status_code == 200
    [(kind, callback, event)] = kit.seen.calls
    assert (kind, callback) == ("recording", "on_" + status.replace("-", "_"))
    assert isinstance(event, twilio.RecordingStatusEvent)
    assert event.recording_sid == params["RecordingSid"]
    assert event.call_sid == params["CallSid"]
    start = event.recording_start_time
    assert start is not None
    assert start.tzinfo is not None
    assert event.recording_channels == 1
    assert event.error_code == 0


def test_recording_params_take_overrides(kit: Kit, client: TestClient) -> None:
    call = new_sid("CA")
    response = client.send_recording(
        "completed", sid="RE" + "2" * 32, CallSid=call, RecordingDuration=9, ErrorCode=None
    )
    assert response.status_code == 200
    [(_, _, event)] = kit.seen.calls
    assert isinstance(event, twilio.RecordingStatusEvent)
    assert event.sid == "RE" + "2" * 32
    assert event.call_sid == call
    assert event.recording_duration == 9
    assert "ErrorCode" not in event


@pytest.mark.parametrize("status", ["queued", "sent", "delivered", "undelivered", "failed", "read"])
def test_message_cloudevent_reaches_its_callback(kit: Kit, client: TestClient, status: str) -> None:
    event = message_cloudevent(status, sid="SM" + "3" * 32)
    assert event["type"] == f"com.twilio.messaging.message.{status}"
    response = client.post_events([event])
    assert response.status_code == 200, response.text
    [(kind, callback, seen)] = kit.seen.calls
    assert (kind, callback) == ("sms", f"on_{status}")
    assert seen.sid == "SM" + "3" * 32
    assert seen.status == status


def test_message_cloudevent_data_overrides(kit: Kit, client: TestClient) -> None:
    event = message_cloudevent("undelivered", errorCode=30007, body=None)
    data = event["data"]
    assert isinstance(data, dict)
    assert data["errorCode"] == 30007
    assert "body" not in data
    assert client.post_events([event]).status_code == 200
    [(_, _, seen)] = kit.seen.calls
    assert seen.error_code == 30007
    assert "Body" not in seen


def test_inbound_message_cloudevent_reaches_on_received(kit: Kit, client: TestClient) -> None:
    event = inbound_message_cloudevent(body="Where is my parcel?")
    assert event["type"] == "com.twilio.messaging.inbound-message.received"
    assert client.post_events([event]).status_code == 200
    [(kind, callback, seen)] = kit.seen.calls
    assert (kind, callback) == ("sms", "on_received")
    assert isinstance(seen, twilio.SmsStatusChangeEvent)
    assert seen.body == "Where is my parcel?"


@pytest.mark.parametrize(
    ("status", "type_word", "callback"),
    [
        ("initiated", "initiated", "on_initiated"),
        ("ringing", "ringing", "on_ringing"),
        ("in-progress", "answered", "on_in_progress"),
        ("completed", "completed", "on_completed"),
        ("busy", "completed", "on_busy"),
        ("no-answer", "completed", "on_no_answer"),
    ],
)
def test_call_cloudevent_reaches_its_callback(
    kit: Kit, client: TestClient, status: str, type_word: str, callback: str
) -> None:
    event = call_cloudevent(status)
    assert event["type"] == f"com.twilio.voice.status-callback.call.{type_word}"
    assert client.post_events([event]).status_code == 200
    [(kind, seen_callback, seen)] = kit.seen.calls
    assert (kind, seen_callback) == ("call", callback)
    assert isinstance(seen, twilio.CallStatusEvent)
    assert seen.call_status == status
    data = event["data"]
    assert isinstance(data, dict)
    assert seen.call_sid == data["sid"]


def test_post_events_batch_with_a_duplicate_and_an_unknown_type(
    kit: Kit, client: TestClient
) -> None:
    delivered = message_cloudevent("delivered")
    batch = [
        delivered,
        inbound_message_cloudevent(),
        call_cloudevent("completed"),
        cloudevent("com.twilio.studio.flow.execution.ended", {"flowSid": "FW1"}),
        delivered,
    ]
    assert client.post_events(batch).status_code == 200
    assert client.post_events(batch).status_code == 200
    assert kit.seen.names() == [
        ("sms", "on_delivered"),
        ("sms", "on_received"),
        ("call", "on_completed"),
    ]


def test_post_events_with_a_bad_body_is_refused(kit: Kit, client: TestClient) -> None:
    response = client.post_events([], body=b'"not an array"')
    assert response.status_code == 400
    assert "array" in response.text
    # One JSON object is another family's webhook (a link click): acknowledged.
    response = client.post_events([], body=b'{"not": "an array"}')
    assert response.status_code == 200
    response = client.post_events([message_cloudevent("sent")], signature="bm9wZQ==")
    assert response.status_code == 403
    assert kit.seen.calls == []


# -- signing ----------------------------------------------------------------------------
URL = "https://hooks.example.com/twilio/status?tenant=acme"


def test_sign_agrees_with_the_oracle_for_both_algorithms() -> None:
    params = inbound_call_params()
    pairs = MultiParams(pairs_of(params))
    assert sign(URL, params, TOKEN) == RequestValidator(TOKEN).compute_signature(URL, pairs)
    sha256 = sign(URL, params, SECRET, "HMAC_SHA256")
    assert sha256 == RequestValidator(SECRET).compute_signature(URL, pairs, "HMAC_SHA256")
    assert RequestValidator(SECRET).validate(URL, params, sha256, "HMAC_SHA256")
    assert sha256 != sign(URL, params, SECRET)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/events", URL, "https://hooks.example.com:8443/e?a=1&"],
)
def test_sign_json_agrees_with_the_oracle(url: str) -> None:
    body = json.dumps([message_cloudevent("delivered")]).encode()
    signed_url, signature = sign_json(url, body, TOKEN)
    query = parse_qs(urlsplit(signed_url).query)
    assert query["bodySHA256"] == [hashlib.sha256(body).hexdigest()]
    assert signed_url.startswith(url)
    assert RequestValidator(TOKEN).compute_signature(signed_url, {}) == signature
    assert RequestValidator(TOKEN).validate(signed_url, body.decode(), signature)
    assert not RequestValidator(TOKEN).validate(signed_url, body.decode() + " ", signature)


# -- shared keys ------------------------------------------------------------------------
def test_test_client_signs_with_a_shared_key(kit: Kit) -> None:
    with TestClient(kit.listener, shared_key=(KEY_ID, SECRET)) as client:
        assert client.send_sms("delivered").status_code == 200
        assert client.send_recording("completed").status_code == 200
        assert client.post(inbound_call_params()).status_code == 200
        assert client.post_events([message_cloudevent("read")]).status_code == 200
    assert kit.seen.names() == [
        ("sms", "on_delivered"),
        ("recording", "on_completed"),
        ("call", "on_ringing"),
        ("sms", "on_read"),
    ]


def test_test_client_with_a_wrong_shared_key_is_refused(kit: Kit) -> None:
    for key in ((KEY_ID, "shk_wrong"), ("webhooks_sharedkey_other", SECRET)):
        with TestClient(kit.listener, shared_key=key) as client:
            assert client.send_sms("delivered").status_code == 403
            assert client.post_events([message_cloudevent("read")]).status_code == 403
    assert kit.seen.calls == []


def test_test_client_for_a_listener_with_only_shared_keys() -> None:
    listener = twilio.Listener(shared_keys={KEY_ID: SECRET})
    kit = Kit(listener)
    with TestClient(listener, shared_key=(KEY_ID, SECRET)) as client:
        assert client.send_call("completed").status_code == 200
    with TestClient(listener) as client:  # nothing to sign with: refused
        assert client.send_call("completed").status_code == 403
    assert kit.seen.names() == [("call", "on_completed")]


def test_async_recording_and_events_methods(kit: Kit) -> None:
    client = TestClient(kit.listener, shared_key=(KEY_ID, SECRET))

    async def scenario() -> list[int]:
        return [
            (await client.asend_recording("absent")).status_code,
            (await client.apost_events([call_cloudevent("ringing")])).status_code,
        ]

    assert asyncio.run(scenario()) == [200, 200]
    client.close()
    assert kit.seen.names() == [("recording", "on_absent"), ("call", "on_ringing")]
