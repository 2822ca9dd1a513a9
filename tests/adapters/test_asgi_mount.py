"""``listener.asgi`` mounted under a prefix in FastAPI and Starlette.

Each app is driven by its framework's own test client, and every request is signed by
twilio-python's ``RequestValidator`` (``tests/payloads.py``) over the URL Twilio would
have called: a 200 proves the listener verified the signature against that URL, whether
it was told it (``public_url``) or rebuilt it from a mounted request's scope.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import BaseRoute, Mount, Route, Router

import twilio_trigger as twilio
from tests.payloads import FORM, Params, call_status_payload, encode_form, sign, sms_status_payload
from twilio_trigger.inbox import State, open_inbox

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork at import; the dev extra installs httpx,
    # which its test client still drives correctly.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient as FastAPIClient
    from starlette.testclient import TestClient as StarletteClient

TOKEN = "mount-test-auth-token"
PUBLIC_URL = "https://example.com/twilio/"
LOCAL_URL = "http://testserver/twilio/"  # what the test clients' requests look like
XML = "text/xml"
EMPTY_TWIML = "<Response/>"


@pytest.fixture(autouse=True)
def _no_listener_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every option these listeners do not pass would be read from the environment.
    for name in list(os.environ):
        if name == "TWILIO_AUTH_TOKEN" or name.startswith("TWILIO_TRIGGER_"):
            monkeypatch.delenv(name)


class Messages(twilio.SmsStatusService):
    """An async, a sync and a failing callback; each records what reached it."""

    def __init__(self) -> None:
        self.delivered: list[twilio.SmsStatusChangeEvent] = []
        self.sent: list[twilio.SmsStatusChangeEvent] = []
        self.threads: dict[str, int] = {}
        self.arrived = threading.Event()

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.threads["delivered"] = threading.get_ident()
        self.delivered.append(event)
        self.arrived.set()

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.threads["sent"] = threading.get_ident()
        self.sent.append(event)

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        raise RuntimeError(f"carrier rejected {event.message_sid}: secret internal detail")


class Calls(twilio.CallStatusService):
    """A sync and an async call callback."""

    def __init__(self) -> None:
        self.ringing: list[twilio.CallStatusEvent] = []
        self.completed: list[twilio.CallStatusEvent] = []

    def on_ringing(self, event: twilio.CallStatusEvent) -> None:
        self.ringing.append(event)

    async def on_completed(self, event: twilio.CallStatusEvent) -> None:
        self.completed.append(event)


def post_signed(
    client: StarletteClient, path: str, params: Params, *, signed_over: str
) -> httpx.Response:
    """POST *params* to *path* with Twilio's headers, signed over the URL *signed_over*."""
    headers = {
        "Content-Type": FORM,
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": sign(signed_over, params, TOKEN),
    }
    # A redirect is an answer Twilio would see, not something to follow silently.
    response: httpx.Response = client.post(
        path, content=encode_form(params), headers=headers, follow_redirects=False
    )
    return response


def listener_with(*services: object, **options: Any) -> twilio.Listener:
    listener = twilio.Listener(auth_tokens=[TOKEN], **options)
    for service in services:
        listener.attach(service)
    return listener


def fastapi_host(listener: twilio.Listener, **options: Any) -> FastAPI:
    """A FastAPI app with a route of its own and the listener mounted at ``/twilio``."""
    app = FastAPI(**options)

    @app.get("/")
    async def home() -> dict[str, str]:
        return {"app": "host"}

    app.mount("/twilio", listener.asgi)
    return app


# -- FastAPI: signatures over the public URL ----------------------------------------------


def test_public_url_signature_reaches_the_callback_with_a_typed_event() -> None:
    messages = Messages()
    app = fastapi_host(listener_with(messages, public_url=PUBLIC_URL))
    params = sms_status_payload("delivered")
    with FastAPIClient(app) as client:
        response = post_signed(client, "/twilio/", params, signed_over=PUBLIC_URL)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(XML)
    assert EMPTY_TWIML in response.text
    [event] = messages.delivered
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.message_sid == params["MessageSid"]
    assert event.status == "delivered"
    assert event.to == params["To"]


def test_public_url_listener_refuses_a_signature_over_the_local_url() -> None:
    messages = Messages()
    app = fastapi_host(listener_with(messages, public_url=PUBLIC_URL))
    with FastAPIClient(app) as client:
        response = post_signed(
            client, "/twilio/", sms_status_payload("delivered"), signed_over=LOCAL_URL
        )

    assert response.status_code == 403
    assert messages.delivered == []


def test_public_url_listener_verifies_the_query_string_too() -> None:
    messages = Messages()
    app = fastapi_host(listener_with(messages, public_url=PUBLIC_URL))
    with FastAPIClient(app) as client:
        signed = post_signed(
            client,
            "/twilio/?tenant=a",
            sms_status_payload("delivered"),
            signed_over=f"{PUBLIC_URL}?tenant=a",
        )
        query_left_out = post_signed(
            client, "/twilio/?tenant=a", sms_status_payload("delivered"), signed_over=PUBLIC_URL
        )

    assert signed.status_code == 200
    assert query_left_out.status_code == 403
    assert len(messages.delivered) == 1


# -- FastAPI: no public URL, so the listener rebuilds it from the mounted scope -----------


@pytest.mark.parametrize(
    ("path", "signed_over", "status"),
    [
        pytest.param("/twilio/", LOCAL_URL, 200, id="mount-prefix-kept"),
        pytest.param("/twilio/?tenant=a", f"{LOCAL_URL}?tenant=a", 200, id="query"),
        pytest.param("/twilio/", "http://testserver/", 403, id="prefix-dropped"),
        pytest.param("/twilio/", PUBLIC_URL, 403, id="foreign-url"),
    ],
)
def test_without_public_url_the_signature_covers_the_full_mounted_path(
    path: str, signed_over: str, status: int
) -> None:
    messages = Messages()
    app = fastapi_host(listener_with(messages))
    with FastAPIClient(app) as client:
        response = post_signed(
            client, path, sms_status_payload("delivered"), signed_over=signed_over
        )

    assert response.status_code == status
    assert len(messages.delivered) == (1 if status == 200 else 0)


# -- Starlette: Mount inside a Starlette app or a bare Router ------------------------------


def _starlette_app(routes: list[BaseRoute]) -> Starlette:
    return Starlette(routes=routes)


def _router(routes: list[BaseRoute]) -> Router:
    return Router(routes=routes)


@pytest.mark.parametrize("host", [_starlette_app, _router], ids=["starlette", "router"])
@pytest.mark.parametrize(
    "mount",
    [
        pytest.param(lambda app: Mount("/hooks/twilio", app=app), id="one-mount"),
        pytest.param(
            lambda app: Mount("/hooks", routes=[Mount("/twilio", app=app)]), id="nested-mounts"
        ),
    ],
)
def test_starlette_mount_serves_the_listener_path_under_the_prefix(
    host: Callable[[list[BaseRoute]], Starlette | Router],
    mount: Callable[[Any], BaseRoute],
) -> None:
    messages = Messages()
    listener = listener_with(messages, path="/status")
    app = host([mount(listener.asgi)])
    url = "http://testserver/hooks/twilio/status"
    params = sms_status_payload("delivered")
    with StarletteClient(app) as client:
        delivered = post_signed(client, "/hooks/twilio/status", params, signed_over=url)
        # The mount's own root is not the listener's path.
        beside = post_signed(
            client,
            "/hooks/twilio/",
            sms_status_payload("delivered"),
            signed_over="http://testserver/hooks/twilio/",
        )

    assert delivered.status_code == 200
    assert EMPTY_TWIML in delivered.text
    assert [event.message_sid for event in messages.delivered] == [params["MessageSid"]]
    assert beside.status_code == 404


def test_a_prefix_stripped_by_a_proxy_is_part_of_the_signed_url() -> None:
    """``uvicorn --root-path /api`` behind a proxy that strips ``/api``: uvicorn puts the
    prefix back in ``path`` and ``raw_path``, which the client reproduces when asked for
    the full path."""
    messages = Messages()
    listener = listener_with(messages)
    app = Starlette(routes=[Mount("/twilio", app=listener.asgi)])
    with StarletteClient(app, root_path="/api") as client:
        response = post_signed(
            client,
            "/api/twilio/",
            sms_status_payload("delivered"),
            signed_over="http://testserver/api/twilio/",
        )

    assert response.status_code == 200
    assert len(messages.delivered) == 1


# -- trailing slash ----------------------------------------------------------------------


def test_the_host_redirects_a_mount_prefix_without_its_slash_before_the_listener() -> None:
    """Give Twilio ``.../twilio/`` for a mount: the host's router answers ``/twilio``
    with a 307 of its own, to a URL built from the internal request."""
    messages = Messages()
    app = fastapi_host(listener_with(messages, public_url=PUBLIC_URL))
    with FastAPIClient(app) as client:
        response = post_signed(
            client, "/twilio", sms_status_payload("delivered"), signed_over=PUBLIC_URL
        )

    assert response.status_code == 307
    assert response.headers["location"] == LOCAL_URL
    assert messages.delivered == []


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
def test_a_route_serves_a_webhook_url_without_a_trailing_slash(framework: str) -> None:
    """The way to a slash-less public URL: a ``Route`` to the ASGI app (which Starlette
    calls as is), with the listener's path equal to the full route path."""
    messages = Messages()
    listener = listener_with(messages, path="/twilio")
    app: Starlette
    if framework == "fastapi":
        app = FastAPI()
        app.router.routes.append(Route("/twilio", listener.asgi, methods=["POST"]))
    else:
        app = Starlette(routes=[Route("/twilio", listener.asgi, methods=["POST"])])
    with StarletteClient(app) as client:
        response = post_signed(
            client,
            "/twilio",
            sms_status_payload("delivered"),
            signed_over="http://testserver/twilio",
        )

    assert response.status_code == 200
    assert len(messages.delivered) == 1


# -- the host app's routes and the mounted app's own answers -------------------------------


def test_host_routes_work_beside_the_mount_and_the_mount_answers_its_own_paths() -> None:
    messages = Messages()
    app = fastapi_host(listener_with(messages))
    with FastAPIClient(app) as client:
        home = client.get("/")
        elsewhere = client.get("/nowhere")
        get_webhook = client.get("/twilio/")
        put_webhook = client.put("/twilio/", content=b"")
        other_path = post_signed(
            client,
            "/twilio/other",
            sms_status_payload("delivered"),
            signed_over="http://testserver/twilio/other",
        )

    assert home.status_code == 200
    assert home.json() == {"app": "host"}
    assert elsewhere.status_code == 404  # FastAPI's own
    assert elsewhere.json() == {"detail": "Not Found"}
    assert get_webhook.status_code == 403  # a GET webhook, unsigned
    assert put_webhook.status_code == 405
    assert put_webhook.headers["allow"] == "POST, GET"
    assert other_path.status_code == 404
    assert other_path.headers["content-type"].startswith("text/plain")
    assert messages.delivered == []


# -- callbacks ---------------------------------------------------------------------------


def test_sync_and_async_callbacks_both_run_when_mounted() -> None:
    messages, calls = Messages(), Calls()
    app = fastapi_host(listener_with(messages, calls))
    ringing, completed = call_status_payload("ringing"), call_status_payload("completed")
    with FastAPIClient(app) as client:
        answers = [
            post_signed(client, "/twilio/", params, signed_over=LOCAL_URL)
            for params in (
                sms_status_payload("sent"),
                sms_status_payload("delivered"),
                ringing,
                completed,
            )
        ]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 200]
    assert len(messages.sent) == 1
    assert len(messages.delivered) == 1
    # A plain def runs in a thread of its own, never on the event loop.
    assert messages.threads["sent"] != messages.threads["delivered"]
    assert [event.call_sid for event in calls.ringing] == [ringing["CallSid"]]
    assert [event.call_sid for event in calls.completed] == [completed["CallSid"]]
    assert all(isinstance(event, twilio.CallStatusEvent) for event in calls.completed)
    assert calls.completed[0].call_duration == int(completed["CallDuration"])


def test_a_failing_callback_is_a_short_500_without_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fastapi_host(listener_with(Messages()))
    with caplog.at_level(logging.ERROR, logger="twilio_trigger"), FastAPIClient(app) as client:
        response = post_signed(
            client, "/twilio/", sms_status_payload("failed"), signed_over=LOCAL_URL
        )

    assert response.status_code == 500
    assert len(response.content) < 200
    for internal in ("Traceback", "RuntimeError", "secret internal detail", "Messages"):
        assert internal not in response.text
    assert any(record.exc_info for record in caplog.records)


# -- lifespan and the durable inbox --------------------------------------------------------


async def _inbox_counts(location: str) -> dict[State, int]:
    # Without open(): that would mark interrupted entries pending, and nothing may be.
    inbox = open_inbox(location)
    try:
        return await inbox.stats()
    finally:
        await inbox.close()


def test_host_lifespan_starts_and_stops_the_listener_and_its_inbox(tmp_path: Path) -> None:
    location = f"sqlite:///{tmp_path}/events.db"
    messages = Messages()
    listener = listener_with(messages, public_url=PUBLIC_URL, inbox=location)
    stages: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await listener.startup()
        stages.append("started")
        try:
            yield
        finally:
            await listener.shutdown()
            stages.append("stopped")

    app = fastapi_host(listener, lifespan=lifespan)
    params = sms_status_payload("delivered")
    with FastAPIClient(app) as client:
        assert stages == ["started"]
        response = post_signed(client, "/twilio/", params, signed_over=PUBLIC_URL)
        assert response.status_code == 200  # once stored, before any worker ran it
        # A deadline for the workers, not a measured delay.
        assert messages.arrived.wait(timeout=5.0), "no worker dispatched the stored event"
        assert stages == ["started"]

    assert stages == ["started", "stopped"]
    assert [event.message_sid for event in messages.delivered] == [params["MessageSid"]]
    counts = asyncio.run(_inbox_counts(location))
    assert counts[State.DONE] == 1
    assert counts[State.PENDING] == counts[State.RUNNING] == counts[State.DEAD] == 0
