"""How to test your own twilio-trigger service: a worked example.

This file is written the way an application using twilio-trigger would test
its service.  It imports nothing but ``twilio_trigger`` (for ``Listener`` and the
service base classes) and ``twilio_trigger.testing``: no server is started, no
port is opened, nothing is mocked.  The ``TestClient`` posts realistic, signed
webhooks straight into the listener, exactly as Twilio would, and returns the
HTTP answer Twilio would get.

The service under test, ``OrderNotifier``, is what an online shop might write:
it remembers which order confirmations reached the customer, and treats a
failed message as an error (the listener answers Twilio with a 500 and logs it).
"""

# The unittest.TestCase below uses unittest's own assertion methods, as unittest users do.
# ruff: noqa: PT009

from __future__ import annotations

import asyncio
import unittest
from collections.abc import Iterator

import pytest

import twilio_trigger as twilio
from twilio_trigger.testing import TestClient, sms_event, sms_status_params

#: Any string works in tests; the TestClient signs with the listener's token.
AUTH_TOKEN = "test-auth-token"


# -- the application code under test ---------------------------------------------------
class DeliveryFailedError(Exception):
    """A customer did not get their order confirmation."""


class OrderNotifier(twilio.SmsStatusService):
    """Tracks the order confirmations sent by text message."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.answered_calls: list[str] = []

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        assert event.message_sid is not None
        self.delivered.append(event.message_sid)

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        raise DeliveryFailedError(
            f"message {event.message_sid} failed with error {event.error_code}"
        )


class CallLog(twilio.CallStatusService):
    """Remembers how long each support call lasted."""

    def __init__(self) -> None:
        self.durations: dict[str, int | None] = {}

    def on_completed(self, event: twilio.CallStatusEvent) -> None:
        assert event.call_sid is not None
        self.durations[event.call_sid] = event.call_duration


def make_listener(*services: object) -> twilio.Listener:
    """The application's listener.  Pass the token explicitly: tests must not need secrets."""
    listener = twilio.Listener(auth_tokens=[AUTH_TOKEN])
    for service in services:
        listener.attach(service)
    return listener


# -- pytest style ----------------------------------------------------------------------
@pytest.fixture
def notifier() -> OrderNotifier:
    return OrderNotifier()


@pytest.fixture
def client(notifier: OrderNotifier) -> Iterator[TestClient]:
    with TestClient(make_listener(notifier)) as client:
        yield client


def test_a_delivered_confirmation_is_recorded(notifier: OrderNotifier) -> None:
    sid = "SM" + "1" * 32
    with TestClient(make_listener(notifier)) as client:
        answer = client.send_sms("delivered", sid=sid)
    # Twilio gets "200, nothing to do": empty TwiML.
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/xml")
    assert "<Response/>" in answer.text
    assert notifier.delivered == [sid]


def test_other_statuses_are_acknowledged_and_ignored(notifier: OrderNotifier) -> None:
    with TestClient(make_listener(notifier)) as client:
        for status in ("queued", "sent", "read"):
            assert client.send_sms(status).status_code == 200
    assert notifier.delivered == []


def test_a_failed_message_makes_twilio_see_a_500(notifier: OrderNotifier) -> None:
    with TestClient(make_listener(notifier)) as client:
        answer = client.send_sms("failed", ErrorCode=30003)
    assert answer.status_code == 500
    # The exception the callback raised, for a precise assertion.
    [error] = answer.errors
    assert isinstance(error, DeliveryFailedError)
    assert "error 30003" in str(error)


def test_a_request_not_signed_by_twilio_is_refused(notifier: OrderNotifier) -> None:
    listener = make_listener(notifier)
    with TestClient(listener, auth_token="somebody-elses-token") as forger:
        assert forger.send_sms("delivered").status_code == 403
    with TestClient(listener) as client:
        # signature="" sends no X-Twilio-Signature header at all.
        assert client.post(sms_status_params("delivered"), signature="").status_code == 403
    assert notifier.delivered == []


def test_both_services_on_one_listener(notifier: OrderNotifier) -> None:
    calls = CallLog()
    sid = "CA" + "2" * 32
    with TestClient(make_listener(notifier, calls)) as client:
        assert client.send_call("completed", sid=sid, CallDuration=95).status_code == 200
        assert client.send_sms("delivered").status_code == 200
    assert calls.durations == {sid: 95}
    assert len(notifier.delivered) == 1


def test_with_a_client_fixture(client: TestClient, notifier: OrderNotifier) -> None:
    assert client.send_sms("delivered", sid="SM" + "3" * 32).status_code == 200
    assert client.send_sms("delivered", sid="SM" + "4" * 32).status_code == 200
    assert notifier.delivered == ["SM" + "3" * 32, "SM" + "4" * 32]


async def _deliver_twice(client: TestClient) -> list[int]:
    # In async code, use the a-prefixed methods: they run on your event loop.
    first = await client.asend_sms("delivered")
    second = await client.asend_sms("delivered")
    return [first.status_code, second.status_code]


def test_from_async_code(notifier: OrderNotifier) -> None:
    with TestClient(make_listener(notifier)) as client:
        assert asyncio.run(_deliver_twice(client)) == [200, 200]
    assert len(set(notifier.delivered)) == 2  # every payload gets a fresh SID


@pytest.mark.parametrize("error_code", [30003, 30005, 30007])
def test_callbacks_can_be_called_directly_with_a_realistic_event(error_code: int) -> None:
    # No listener at all: build the event with the factory and call the method.
    event = sms_event("failed", ErrorCode=error_code)
    with pytest.raises(DeliveryFailedError, match=f"error {error_code}"):
        OrderNotifier().on_failed(event)


# -- unittest style (pytest collects it too) -----------------------------------------
class OrderNotifierTest(unittest.TestCase):
    def setUp(self) -> None:
        self.notifier = OrderNotifier()
        self.client = TestClient(make_listener(self.notifier))
        self.addCleanup(self.client.close)

    def test_delivered(self) -> None:
        answer = self.client.send_sms("delivered", sid="SM" + "4" * 32)
        self.assertEqual(answer.status_code, 200)
        self.assertIn("<Response/>", answer.text)
        self.assertEqual(self.notifier.delivered, ["SM" + "4" * 32])

    def test_failed(self) -> None:
        answer = self.client.send_sms("failed")
        self.assertEqual(answer.status_code, 500)
        self.assertEqual(len(answer.errors), 1)
        self.assertIsInstance(answer.errors[0], DeliveryFailedError)
        self.assertEqual(self.notifier.delivered, [])

    def test_inbound_messages_are_not_deliveries(self) -> None:
        answer = self.client.send_sms("received", Body="STOP")
        self.assertEqual(answer.status_code, 200)
        self.assertEqual(self.notifier.delivered, [])
