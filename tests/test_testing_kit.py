"""``twilio_trigger.testing``: payload factories, ``sign`` and the in-process TestClient.

Signatures are judged by twilio-python's ``RequestValidator``; the listener a
TestClient drives verifies every request, so an accepted request is a correctly
signed one.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

import twilio_trigger as twilio
from tests.payloads import sign as oracle
from twilio_trigger.testing import (
    TestClient,
    TestResponse,
    call_event,
    call_status_params,
    inbound_sms_params,
    new_sid,
    sign,
    sms_event,
    sms_status_params,
)

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"

SMS_STATUSES = [
    "accepted", "queued", "sending", "sent", "failed", "delivered", "undelivered",
    "receiving", "received", "scheduled", "canceled", "read", "partially_delivered",
]  # fmt: skip
INBOUND_STATUSES = {"receiving", "received"}
CALL_STATUSES = [
    "queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
    "no-answer", "canceled",
]  # fmt: skip
TERMINAL_CALL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}

SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")


def assert_sid(value: str | None, *prefixes: str) -> None:
    assert value is not None
    assert SID.fullmatch(value), value
    assert len(value) == 34
    assert value[:2] in prefixes, value


def assert_every_sid_is_well_formed(params: dict[str, str]) -> None:
    sids = {name: value for name, value in params.items() if name.endswith("Sid")}
    assert sids, params
    for name, value in sids.items():
        assert SID.fullmatch(value), (name, value)


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listeners read TWILIO_* variables: none leaks in from outside."""
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            monkeypatch.delenv(name)


# -- factories ---------------------------------------------------------------------------
def test_the_status_lists_are_the_packages_callbacks() -> None:
    assert tuple("on_" + s for s in SMS_STATUSES) == twilio.SMS_CALLBACKS
    assert tuple("on_" + s.replace("-", "_") for s in CALL_STATUSES) == twilio.CALL_CALLBACKS


@pytest.mark.parametrize("status", SMS_STATUSES)
def test_sms_status_params_look_like_twilios(status: str) -> None:
    params = sms_status_params(status)
    assert all(isinstance(value, str) for value in params.values())
    assert_every_sid_is_well_formed(params)
    assert_sid(params["AccountSid"], "AC")
    assert_sid(params["MessagingServiceSid"], "MG")
    assert params["ApiVersion"] == "2010-04-01"
    assert params["From"]
    assert params["To"]
    assert params["SmsSid"] == params["MessageSid"]
    assert params["SmsStatus"] == status
    if status in INBOUND_STATUSES:
        # An inbound message webhook: SmsStatus only, the legacy SID aliases, its media.
        assert "MessageStatus" not in params
        assert_sid(params["MessageSid"], "SM", "MM")
        assert params["SmsMessageSid"] == params["MessageSid"]
        assert params["Body"]
        media = int(params["NumMedia"])
        assert [f"MediaUrl{i}" in params for i in range(media + 1)] == [True] * media + [False]
    else:
        assert params["MessageStatus"] == status
        assert_sid(params["MessageSid"], "SM")
        assert {"NumSegments", "NumMedia", "Body"} <= params.keys()
    if status in ("failed", "undelivered"):
        assert params["ErrorCode"].isdigit()
        assert params["ErrorCode"].startswith("300")
    else:
        assert "ErrorCode" not in params
    event = sms_event(status)
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.status == status
    assert event.kind == "sms"


@pytest.mark.parametrize("status", CALL_STATUSES)
def test_call_status_params_look_like_twilios(status: str) -> None:
    params = call_status_params(status)
    assert all(isinstance(value, str) for value in params.values())
    assert_every_sid_is_well_formed(params)
    assert_sid(params["CallSid"], "CA")
    assert_sid(params["AccountSid"], "AC")
    assert params["CallStatus"] == status
    expected = {
        "AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "Caller", "Direction",
        "From", "To", "Timestamp", "SequenceNumber", "CallbackSource",
    }  # fmt: skip
    assert expected <= params.keys()
    assert params["SequenceNumber"].isdigit()
    assert ("CallDuration" in params) == (status in TERMINAL_CALL_STATUSES)
    assert ("Duration" in params) == (status == "completed")
    event = call_event(status)
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.status == status
    assert event.call_status == status
    assert isinstance(event.timestamp, datetime)
    assert event.timestamp.tzinfo is not None


def test_a_call_sequence_numbers_follow_the_calls_progress() -> None:
    numbers = [int(call_status_params(s)["SequenceNumber"]) for s in CALL_STATUSES[1:5]]
    assert numbers == sorted(numbers)
    assert numbers[0] < numbers[-1]


def test_overrides_replace_add_remove_and_stringify() -> None:
    params = sms_status_params(
        "failed",
        To="+447700900123",  # replaces
        ChannelStatusMessage="carrier said no",  # adds
        Body=None,  # removes
        ErrorCode=30007,  # an int, sent as text
        NumSegments=3,
    )
    assert params["To"] == "+447700900123"
    assert params["ChannelStatusMessage"] == "carrier said no"
    assert "Body" not in params
    assert params["ErrorCode"] == "30007"
    assert params["NumSegments"] == "3"
    assert sms_status_params("undelivered", ErrorCode=None).get("ErrorCode") is None
    call = call_status_params("completed", CallDuration=612, AnsweredBy=None, Custom=True)
    assert call["CallDuration"] == "612"
    assert "AnsweredBy" not in call
    assert call["Custom"] == "True"
    event = sms_event("failed", ErrorCode=30005, NumMedia=None)
    assert event.error_code == 30005
    assert event.num_media is None


def test_sid_sets_every_sid_alias() -> None:
    sid = "SM" + "0123456789abcdef" * 2
    outbound = sms_status_params("sent", sid=sid)
    assert (outbound["MessageSid"], outbound["SmsSid"]) == (sid, sid)
    mms = "MM" + "fedcba9876543210" * 2
    for inbound in (sms_status_params("received", sid=mms), inbound_sms_params(sid=mms)):
        assert (inbound["MessageSid"], inbound["SmsSid"], inbound["SmsMessageSid"]) == (
            mms,
            mms,
            mms,
        )
        assert mms in inbound["MediaUrl0"]
    call_sid = "CA" + "00ff" * 8
    assert call_status_params("ringing", sid=call_sid)["CallSid"] == call_sid
    assert sms_event("delivered", sid=sid).message_sid == sid
    assert call_event("busy", sid=call_sid).call_sid == call_sid


def test_each_payload_has_fresh_sids() -> None:
    messages = [sms_status_params("delivered")["MessageSid"] for _ in range(20)]
    inbound = [inbound_sms_params()["MessageSid"] for _ in range(20)]
    calls = [call_status_params("completed") for _ in range(20)]
    assert len(set(messages)) == 20
    assert len(set(inbound)) == 20
    assert len({c["CallSid"] for c in calls}) == 20
    assert len({c["RecordingSid"] for c in calls}) == 20
    assert all(c["ParentCallSid"] != c["CallSid"] for c in calls)


def test_new_sid() -> None:
    assert_sid(new_sid("SM"), "SM")
    assert_sid(new_sid("ca"), "CA")
    assert new_sid("SM") != new_sid("SM")
    with pytest.raises(ValueError, match="two letters"):
        new_sid("SMS")


def test_typed_events_convert_their_parameters() -> None:
    failed = sms_event("failed", ErrorCode=30003)
    assert isinstance(failed, twilio.SmsStatusChangeEvent)
    assert failed.error_code == 30003
    assert failed.num_segments == 1
    inbound = sms_event("received")
    assert len(inbound.media) == int(inbound["NumMedia"]) == 1
    assert inbound.media[0].content_type == "image/jpeg"
    completed = call_event("completed")
    assert isinstance(completed, twilio.CallStatusEvent)
    assert completed.call_duration == 47
    assert completed.sip_response_code == 200
    assert completed.recording_sid is not None
    assert completed.recording_sid.startswith("RE")


# -- sign ------------------------------------------------------------------------------
def test_sign_reproduces_twilios_documented_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    url = "https://example.com/myapp.php?foo=1&bar=2"
    assert sign(url, params, "12345") == "L/OH5YylLD5NRKLltdqwSvS0BnU="


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/twilio", "http://127.0.0.1:8090/?tenant=acme&x=%2F"],
)
def test_sign_agrees_with_request_validator(url: str) -> None:
    for params in (sms_status_params("received"), call_status_params("completed")):
        assert sign(url, params, TOKEN) == oracle(url, params.items(), TOKEN)
    pairs = [
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
        ("Body", "a=b & c \U0001f4e6"),
        ("Empty", ""),
    ]
    assert sign(url, pairs, TOKEN) == oracle(url, pairs, TOKEN)
    assert sign(url, iter(pairs), TOKEN) == oracle(url, pairs, TOKEN)


# -- TestClient ----------------------------------------------------------------------------
class BoomError(RuntimeError):
    pass


class Messages(twilio.SmsStatusService):
    """Records each callback with the event loop it ran on (``None``: a worker thread)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, twilio.SmsStatusChangeEvent, object]] = []
        self.raised: list[BoomError] = []

    def _note(self, callback: str, event: twilio.SmsStatusChangeEvent) -> None:
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self.seen.append((callback, event, loop))

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self._note("on_delivered", event)

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        self._note("on_sent", event)

    async def on_received(self, event: twilio.SmsStatusChangeEvent) -> None:
        self._note("on_received", event)

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        self._note("on_failed", event)
        error = BoomError(f"could not update order for {event.sid}")
        self.raised.append(error)
        raise error

    async def on_undelivered(self, event: twilio.SmsStatusChangeEvent) -> Exception:
        self._note("on_undelivered", event)
        error = BoomError("returned, not raised")
        self.raised.append(error)
        return error


class Calls(twilio.CallStatusService):
    def __init__(self) -> None:
        self.seen: list[tuple[str, twilio.CallStatusEvent, object]] = []

    async def on_in_progress(self, event: twilio.CallStatusEvent) -> None:
        self.seen.append(("on_in_progress", event, asyncio.get_running_loop()))

    def on_completed(self, event: twilio.CallStatusEvent) -> None:
        self.seen.append(("on_completed", event, None))


class Services:
    def __init__(self, listener: twilio.Listener) -> None:
        self.listener = listener
        self.messages = Messages()
        self.calls = Calls()
        listener.attach(self.messages)
        listener.attach(self.calls)


@pytest.fixture
def services() -> Services:
    return Services(twilio.Listener(auth_tokens=[TOKEN]))


def client_threads() -> int:
    """How many TestClient background loops are running."""
    return sum(t.name == "twilio-trigger-test-client" for t in threading.enumerate())


def assert_acknowledged(response: TestResponse) -> None:
    assert response.status_code == 200, response.text
    assert response.content_type.startswith("text/xml")
    assert "<Response/>" in response.text
    assert response.errors == ()


def test_send_sms_and_send_call_reach_their_callbacks(services: Services) -> None:
    sid = "SM" + "ab" * 16
    with TestClient(services.listener) as client:
        assert_acknowledged(client.send_sms("delivered", sid=sid, To="+15005550006"))
        assert_acknowledged(client.send_sms("sent"))
        assert_acknowledged(client.send_sms("received", Body="where is it?"))
        assert_acknowledged(client.send_call("in-progress"))
        assert_acknowledged(client.send_call("completed", CallDuration=90))
    callbacks = [callback for callback, _, _ in services.messages.seen]
    assert callbacks == ["on_delivered", "on_sent", "on_received"]
    delivered = services.messages.seen[0][1]
    assert delivered.message_sid == sid
    assert delivered.to == "+15005550006"
    assert services.messages.seen[2][1].body == "where is it?"
    assert [callback for callback, _, _ in services.calls.seen] == [
        "on_in_progress",
        "on_completed",
    ]
    assert services.calls.seen[1][1].call_duration == 90


def test_a_status_without_a_callback_is_acknowledged(services: Services) -> None:
    with TestClient(services.listener) as client:
        assert_acknowledged(client.send_sms("queued"))
        assert_acknowledged(client.send_call("ringing"))
    assert services.messages.seen == []
    assert services.calls.seen == []


def test_needs_no_server_and_no_free_port() -> None:
    # The listener's port is taken by someone else: the client never binds it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        target = Services(twilio.Listener(port, host="127.0.0.1", auth_tokens=[TOKEN]))
        with TestClient(target.listener) as client:
            assert_acknowledged(client.send_sms("delivered"))
    assert [callback for callback, _, _ in target.messages.seen] == ["on_delivered"]


def test_signs_for_a_listener_with_public_url_and_path() -> None:
    listener = twilio.Listener(
        auth_tokens=["old-token", TOKEN],
        path="/twilio/status",
        public_url="https://hooks.example.com/twilio/status#rc=3&rp=5xx",
    )
    target = Services(listener)
    with TestClient(listener) as client:
        assert_acknowledged(client.send_sms("delivered"))
        assert_acknowledged(client.post(sms_status_params("sent"), query="tenant=acme&x=1"))
        assert_acknowledged(client.send_call("completed"))
    with TestClient(listener, auth_token=TOKEN) as second_token:
        assert_acknowledged(second_token.send_sms("delivered"))
    with TestClient(listener, auth_token="a-stranger") as stranger:
        assert stranger.send_sms("delivered").status_code == 403
    callbacks = [callback for callback, _, _ in target.messages.seen]
    assert callbacks == ["on_delivered", "on_sent", "on_delivered"]


def test_an_unsigned_request_is_refused(services: Services) -> None:
    with TestClient(services.listener) as client:
        response = client.post(sms_status_params("delivered"), signature="")
        wrong = client.post(sms_status_params("delivered"), signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 403
    assert wrong.status_code == 403
    assert "signature" in response.text.lower()
    assert services.messages.seen == []


def test_a_malformed_body_is_a_400(services: Services) -> None:
    with TestClient(services.listener) as client:
        response = client.post(sms_status_params("delivered"), body=b"\xff")
        no_status = client.post({"MessageSid": new_sid("SM")})
        as_json = client.post(
            sms_status_params("delivered"), headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 400
    assert no_status.status_code == 400
    assert "MessageStatus" in no_status.text
    assert as_json.status_code == 415
    assert services.messages.seen == []


def test_a_failing_callback_is_a_500_with_its_exception(services: Services) -> None:
    with TestClient(services.listener) as client:
        raised = client.send_sms("failed")
        returned = client.send_sms("undelivered")
        after = client.send_sms("delivered")
    assert raised.status_code == 500
    assert returned.status_code == 500
    first, second = services.messages.raised
    assert raised.errors == (first,)
    assert returned.errors == (second,)
    assert "could not update order" not in raised.text  # nothing internal in the answer
    assert after.errors == ()  # errors belong to the one request


def test_async_methods_run_on_the_callers_event_loop(services: Services) -> None:
    client = TestClient(services.listener)
    threads = client_threads()

    async def scenario() -> tuple[asyncio.AbstractEventLoop, list[TestResponse]]:
        answers = [
            await client.asend_sms("delivered"),
            await client.asend_sms("sent"),
            await client.asend_call("in-progress"),
            await client.apost(sms_status_params("received")),
        ]
        return asyncio.get_running_loop(), answers

    loop, answers = asyncio.run(scenario())
    client.close()
    for answer in answers:
        assert_acknowledged(answer)
    by_name = {name: ran_on for name, _, ran_on in services.messages.seen}
    assert by_name["on_delivered"] is loop
    assert by_name["on_received"] is loop
    assert by_name["on_sent"] is None  # a plain def runs in a worker thread
    assert services.calls.seen[0][2] is loop
    assert client_threads() == threads  # no background loop was needed


def test_close_then_reuse(services: Services) -> None:
    threads = client_threads()
    client = TestClient(services.listener)
    assert_acknowledged(client.send_sms("delivered"))
    assert client_threads() == threads + 1
    client.close()
    assert client_threads() == threads
    assert_acknowledged(client.send_sms("delivered"))
    client.close()
    client.close()  # closing twice is harmless
    assert [callback for callback, _, _ in services.messages.seen] == ["on_delivered"] * 2


def test_with_block_closes_the_client(services: Services) -> None:
    threads = client_threads()
    with TestClient(services.listener) as client:
        assert isinstance(client, TestClient)
        assert_acknowledged(client.send_call("completed"))
        assert client_threads() == threads + 1
    assert client_threads() == threads
    assert [callback for callback, _, _ in services.calls.seen] == ["on_completed"]


def test_client_drives_an_inbox_listener_and_close_stops_its_workers(tmp_path: Path) -> None:
    delivered: list[str] = []

    class Recorder(twilio.SmsStatusService):
        async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
            delivered.append(event.message_sid or "")

    database = tmp_path / "events.db"
    listener = twilio.Listener(auth_tokens=[TOKEN], inbox=f"sqlite:///{database}")
    listener.attach(Recorder())
    sid = "SM" + "7" * 32
    with TestClient(listener) as client:
        answer = client.send_sms("delivered", sid=sid)
        deadline = time.monotonic() + 10
        while not delivered and time.monotonic() < deadline:
            time.sleep(0.02)
    assert answer.status_code == 200
    assert delivered == [sid]
    # close() stopped the workers and closed the inbox: the entry is recorded as done.
    with sqlite3.connect(database) as connection:
        states = connection.execute("SELECT state FROM events").fetchall()
    assert states == [("done",)]
