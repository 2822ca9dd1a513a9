"""The Django adapter, driven by Django's own test client.

Every request is signed by twilio-python's ``RequestValidator`` (``tests/payloads.py``)
over the URL Twilio would have called, so a 200 proves that the adapter rebuilt that
URL (or took ``public_url``) and that the listener verified the signature against it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import django
import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import clear_url_caches, path
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio
from tests.adapters import django_urls
from tests.adapters.conftest import DEADLINE, Calls, Send, check_concurrent_requests
from tests.payloads import FORM, Params, call_status_payload, encode_form, sign, sms_status_payload
from twilio_trigger.adapters.django import bridge_for, view
from twilio_trigger.inbox import State, open_inbox

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

SETTINGS: dict[str, Any] = {
    "ALLOWED_HOSTS": ["testserver", "hooks.example.com"],
    "ROOT_URLCONF": "tests.adapters.django_urls",
    # The view must pass the CSRF check it is exempt from.
    "MIDDLEWARE": ["django.middleware.csrf.CsrfViewMiddleware"],
}

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-adapter-tests-not-secret",
        INSTALLED_APPS=[],
        USE_TZ=True,
        **SETTINGS,
    )
    django.setup()

TOKEN = "django-adapter-test-token"
LOCAL = "http://testserver"  # the host of Django's test client
XML = "text/xml"

Route = Callable[..., twilio.Listener]


@pytest.fixture(autouse=True)
def _these_settings() -> Iterator[None]:
    # Whoever configured Django first in this process, these tests need their own.
    with override_settings(**SETTINGS):
        yield


@pytest.fixture
def route() -> Iterator[Route]:
    """Routes a new listener's view at a path; unroutes it and closes its bridge after."""
    listeners: list[twilio.Listener] = []

    def make(*services: object, at: str = "twilio/", **options: Any) -> twilio.Listener:
        listener = twilio.Listener(auth_tokens=[TOKEN], **options)
        for service in services:
            listener.attach(service)
        listeners.append(listener)
        django_urls.urlpatterns.append(path(at, view(listener)))
        clear_url_caches()
        return listener

    yield make
    django_urls.urlpatterns.clear()
    clear_url_caches()
    for listener in listeners:
        bridge_for(listener).close()


def post(
    client: Client,
    url_path: str,
    params: Params,
    *,
    sign_url: str | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """POST *params* as Twilio does, signed over *sign_url* (default: the local URL)."""
    sent = {
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "X-Twilio-Signature": (
            signature
            if signature is not None
            else sign(sign_url or LOCAL + url_path, params, TOKEN)
        ),
    }
    sent.update(headers or {})
    return client.post(url_path, data=encode_form(params), content_type=FORM, headers=sent)


def client() -> Client:
    return Client(enforce_csrf_checks=True)


class Messages(twilio.SmsStatusService):
    """Records what it is given and where it runs."""

    def __init__(self) -> None:
        self.events: list[twilio.SmsStatusChangeEvent] = []
        self.threads: list[int] = []
        self.called = threading.Event()

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.events.append(event)
        self.threads.append(threading.get_ident())
        self.called.set()

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        raise RuntimeError(f"could not record {event.message_sid}: secret-database-detail")


# -- events reach their callbacks ------------------------------------------------------


def test_a_signed_sms_status_reaches_on_delivered_in_the_request_thread(route: Route) -> None:
    messages = Messages()
    route(messages)
    params = sms_status_payload("delivered")

    response = post(client(), "/twilio/", params)

    assert response.status_code == 200
    assert response["Content-Type"] == XML
    assert b"<Response/>" in response.content
    assert response["Content-Length"] == str(len(response.content))
    [event] = messages.events
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.message_sid == params["MessageSid"]
    assert event.message_status == "delivered"
    assert event.to == params["To"]
    # Django's test client handles the request in the calling thread.
    assert messages.threads == [threading.get_ident()]


def test_a_call_status_event_reaches_an_async_callback_on_the_bridge_loop(route: Route) -> None:
    calls = Calls()
    route(calls)
    params = call_status_payload("completed")

    response = post(client(), "/twilio/", params)

    assert response.status_code == 200
    [event] = calls.events
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.call_sid == params["CallSid"]
    assert event.call_status == "completed"
    assert event.call_duration == 47
    assert calls.threads != [threading.get_ident()]


# -- failures and refusals -----------------------------------------------------------


def test_a_failing_callback_is_a_short_500_and_an_error_record_with_the_traceback(
    route: Route, caplog: pytest.LogCaptureFixture
) -> None:
    route(Messages())
    caplog.set_level(logging.ERROR, logger="twilio_trigger")

    response = post(client(), "/twilio/", sms_status_payload("failed"))

    assert response.status_code == 500
    assert len(response.content) < 100
    assert b"secret-database-detail" not in response.content
    [record] = [r for r in caplog.records if r.name == "twilio_trigger"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "Traceback" in caplog.text


@pytest.mark.parametrize(
    ("signature", "answer"),
    [
        (None, b"missing X-Twilio-Signature"),
        ("bm90IGEgc2lnbmF0dXJl", b"invalid X-Twilio-Signature"),
    ],
)
def test_a_missing_or_invalid_signature_is_refused_403(
    route: Route, signature: str | None, answer: bytes
) -> None:
    messages = Messages()
    route(messages)
    params = sms_status_payload("delivered")
    if signature is None:
        response = client().post("/twilio/", data=encode_form(params), content_type=FORM)
    else:
        response = post(client(), "/twilio/", params, signature=signature)
    assert response.status_code == 403
    assert answer in response.content
    assert messages.events == []


def test_a_body_that_is_not_a_form_is_refused_415(route: Route) -> None:
    route(Messages())
    response = client().post(
        "/twilio/",
        data=b"<MessageStatus>delivered</MessageStatus>",
        content_type="application/xml",
        headers={"X-Twilio-Signature": "x"},
    )
    assert response.status_code == 415


def test_a_body_declared_too_large_is_refused_413(route: Route) -> None:
    route(Messages(), max_body_bytes=1024)
    params = sms_status_payload("delivered", Body="x" * 2000)
    response = post(client(), "/twilio/", params)
    assert response.status_code == 413


def test_other_methods_are_refused_405_with_allow(route: Route) -> None:
    route(Messages())
    response = client().put("/twilio/")
    assert response.status_code == 405
    assert response["Allow"] == "POST, GET"


def test_an_unsigned_get_is_refused_403(route: Route) -> None:
    messages = Messages()
    route(messages)
    response = client().get("/twilio/?MessageSid=SM1&MessageStatus=delivered")
    assert response.status_code == 403
    assert messages.events == []


def test_a_signed_get_webhook_reaches_its_callback(route: Route) -> None:
    messages = Messages()
    route(messages)
    params = sms_status_payload("delivered")
    query = urlencode(params)
    signature = str(RequestValidator(TOKEN).compute_signature(f"{LOCAL}/twilio/?{query}", {}))
    response = client().get(f"/twilio/?{query}", headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    (event,) = messages.events
    assert event.message_sid == params["MessageSid"]
    assert event.path == "/twilio/"


def test_basic_credentials_are_asked_for_before_the_signature(route: Route) -> None:
    messages = Messages()
    route(messages, basic_auth=("twilio", "django-pass"))
    params = sms_status_payload("delivered")
    challenged = post(client(), "/twilio/", params)
    token = base64.b64encode(b"twilio:django-pass").decode("ascii")
    allowed = post(client(), "/twilio/", params, headers={"Authorization": f"Basic {token}"})
    assert challenged.status_code == 401
    assert challenged["WWW-Authenticate"].startswith("Basic realm=")
    assert allowed.status_code == 200
    assert len(messages.events) == 1


# -- the URL the signature covers ----------------------------------------------------


def test_under_a_prefix_with_public_url_the_public_url_is_verified(route: Route) -> None:
    messages = Messages()
    public = "https://example.com/hooks/twilio"
    route(messages, at="hooks/twilio/", public_url=public)

    accepted = post(client(), "/hooks/twilio/", sms_status_payload("delivered"), sign_url=public)
    refused = post(client(), "/hooks/twilio/", sms_status_payload("delivered"))

    assert accepted.status_code == 200
    assert refused.status_code == 403
    assert len(messages.events) == 1


def test_without_public_url_the_test_clients_own_url_is_verified(route: Route) -> None:
    messages = Messages()
    route(messages, at="hooks/twilio/")
    response = post(
        client(),
        "/hooks/twilio/",
        sms_status_payload("delivered"),
        sign_url="http://testserver/hooks/twilio/",
    )
    assert response.status_code == 200
    assert len(messages.events) == 1


def test_the_query_string_is_part_of_the_verified_url(route: Route) -> None:
    messages = Messages()
    route(messages)
    url_path = "/twilio/?tenant=acme&note=a%20b&next=%2Fdone"

    accepted = post(client(), url_path, sms_status_payload("delivered"))
    refused = post(
        client(), url_path, sms_status_payload("delivered"), sign_url="http://testserver/twilio/"
    )

    assert accepted.status_code == 200
    assert refused.status_code == 403
    assert len(messages.events) == 1


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), USE_X_FORWARDED_HOST=True
)
def test_the_url_behind_a_proxy_follows_djangos_proxy_settings(route: Route) -> None:
    messages = Messages()
    route(messages)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
    response = post(
        client(),
        "/twilio/",
        sms_status_payload("delivered"),
        sign_url="https://hooks.example.com/twilio/",
        headers=forwarded,
    )
    assert response.status_code == 200
    assert len(messages.events) == 1


# -- deliveries ----------------------------------------------------------------------


async def _inbox_counts(location: str) -> dict[State, int]:
    inbox = open_inbox(location)
    await inbox.open()
    try:
        return await inbox.stats()
    finally:
        await inbox.close()


def test_with_an_inbox_the_event_is_acknowledged_then_dispatched_by_the_workers(
    route: Route, tmp_path: Path
) -> None:
    messages = Messages()
    location = f"sqlite:///{tmp_path}/events.db"
    listener = route(messages, inbox=location)

    response = post(client(), "/twilio/", sms_status_payload("delivered"))

    assert response.status_code == 200
    assert messages.called.wait(DEADLINE)
    assert messages.threads != [threading.get_ident()]  # a worker ran it
    bridge_for(listener).close()
    counts = asyncio.run(_inbox_counts(location))
    assert counts[State.DONE] == 1
    assert counts[State.PENDING] == counts[State.RUNNING] == counts[State.DEAD] == 0


def test_a_duplicate_delivery_runs_the_callback_once(route: Route) -> None:
    messages = Messages()
    route(messages)
    params = sms_status_payload("delivered")
    token = {"I-Twilio-Idempotency-Token": str(uuid.uuid4())}

    first = post(client(), "/twilio/", params, headers=token)
    again = post(client(), "/twilio/", params, headers=token)

    assert first.status_code == again.status_code == 200
    assert len(messages.events) == 1


def test_eight_concurrent_requests_are_each_dispatched_once_in_their_own_thread(
    route: Route,
) -> None:
    def serve(service: twilio.SmsStatusService) -> Send:
        route(service)
        return lambda params: post(client(), "/twilio/", params).status_code

    check_concurrent_requests(serve)


def test_close_is_harmless_twice_and_a_request_after_it_starts_the_bridge_again(
    route: Route,
) -> None:
    messages = Messages()
    listener = route(messages)
    bridge = bridge_for(listener)

    assert post(client(), "/twilio/", sms_status_payload("delivered")).status_code == 200
    assert bridge.running
    bridge.close()
    bridge.close()
    assert not bridge.running
    assert post(client(), "/twilio/", sms_status_payload("delivered")).status_code == 200
    assert bridge.running
    assert len(messages.events) == 2
