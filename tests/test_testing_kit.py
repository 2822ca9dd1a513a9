"""``twilio_trigger.testing``: ``sign`` and the in-process TestClient (its payload
factories are the core's, tested in ``tests/core/test_payloads.py``).

Signatures are judged by twilio-python's ``RequestValidator``; the listener a
TestClient drives verifies every request, so an accepted request is a correctly
signed one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import twilio_trigger as twilio
from tests.payloads import sign as oracle
from twilio_trigger.testing import (
    TestClient,
    TestResponse,
    call_status_params,
    new_sid,
    sign,
    sms_status_params,
)

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listeners read TWILIO_* variables: none leaks in from outside."""
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            monkeypatch.delenv(name)


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
    # Signed, but of no kind: acknowledged (a FallbackService would get it).
    assert no_status.status_code == 200
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
