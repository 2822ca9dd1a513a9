"""The Flask adapter, driven by Flask's own test client.

Every request is signed by twilio-python's ``RequestValidator`` (``tests/payloads.py``)
over the URL Twilio would have called, so a 200 proves that the adapter rebuilt that
URL (or took ``public_url``) and that the listener verified the signature against it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import flask
import pytest
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import TestResponse

import twilio_trigger as twilio
from tests.adapters.conftest import DEADLINE, Calls, Send, check_concurrent_requests
from tests.payloads import FORM, Params, call_status_payload, encode_form, sign, sms_status_payload
from twilio_trigger.adapters.flask import SyncBridge, blueprint, bridge_for, view
from twilio_trigger.inbox import State, open_inbox

TOKEN = "flask-adapter-test-token"
LOCAL = "http://localhost"  # the host of Flask's test client
XML = "text/xml"

MakeApp = Callable[..., tuple[flask.Flask, twilio.Listener]]


@pytest.fixture
def make_app() -> Iterator[MakeApp]:
    """Makes a Flask app serving a new listener; closes every listener's bridge after."""
    listeners: list[twilio.Listener] = []

    def make(
        *services: object, url_prefix: str | None = None, **options: Any
    ) -> tuple[flask.Flask, twilio.Listener]:
        options.setdefault("path", "/twilio")
        listener = twilio.Listener(auth_tokens=[TOKEN], **options)
        for service in services:
            listener.attach(service)
        listeners.append(listener)
        app = flask.Flask(__name__)
        app.register_blueprint(blueprint(listener, url_prefix=url_prefix))
        return app, listener

    yield make
    for listener in listeners:
        bridge_for(listener).close()


def post(
    client: FlaskClient,
    path: str,
    params: Params,
    *,
    sign_url: str | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> TestResponse:
    """POST *params* as Twilio does, signed over *sign_url* (default: the local URL)."""
    sent = {
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "X-Twilio-Signature": (
            signature if signature is not None else sign(sign_url or LOCAL + path, params, TOKEN)
        ),
    }
    sent.update(headers or {})
    return client.post(path, data=encode_form(params), content_type=FORM, headers=sent, **kwargs)


class Messages(twilio.SmsStatusService):
    """Records what it is given, where it runs, and what Flask shows it there."""

    def __init__(self) -> None:
        self.events: list[twilio.SmsStatusChangeEvent] = []
        self.threads: list[int] = []
        self.apps: list[str | None] = []
        self.request_threads: list[int | None] = []
        self.called = threading.Event()

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.events.append(event)
        self.threads.append(threading.get_ident())
        in_flask = flask.has_app_context()
        self.apps.append(flask.current_app.name if in_flask else None)
        self.request_threads.append(flask.g.get("request_thread") if in_flask else None)
        self.called.set()

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        raise RuntimeError(f"could not record {event.message_sid}: secret-database-detail")


# -- events reach their callbacks ------------------------------------------------------


def test_a_signed_sms_status_reaches_on_delivered_with_a_typed_event(make_app: MakeApp) -> None:
    messages = Messages()
    app, _ = make_app(messages)
    params = sms_status_payload("delivered")

    response = post(app.test_client(), "/twilio", params)

    assert response.status_code == 200
    assert response.mimetype == XML
    assert b"<Response/>" in response.data
    assert response.headers["Content-Length"] == str(len(response.data))
    [event] = messages.events
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.message_sid == params["MessageSid"]
    assert event.message_status == "delivered"
    assert event.to == params["To"]
    assert event.num_segments == 1
    assert event.error_code is None


def test_a_call_status_event_reaches_an_async_callback_on_the_bridge_loop(
    make_app: MakeApp,
) -> None:
    calls = Calls()
    app, _ = make_app(calls)
    params = call_status_payload("completed")

    response = post(app.test_client(), "/twilio", params)

    assert response.status_code == 200
    [event] = calls.events
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.call_sid == params["CallSid"]
    assert event.call_status == "completed"
    assert event.call_duration == 47
    assert calls.threads != [threading.get_ident()]


def test_a_sync_callback_runs_in_the_request_thread_inside_the_flask_context(
    make_app: MakeApp,
) -> None:
    messages = Messages()
    app, _ = make_app(messages)

    @app.before_request
    def remember_the_request_thread() -> None:
        flask.g.request_thread = threading.get_ident()

    response = post(app.test_client(), "/twilio", sms_status_payload("delivered"))

    assert response.status_code == 200
    assert messages.threads == messages.request_threads == [threading.get_ident()]
    assert messages.apps == [app.name]


def test_a_plain_view_routed_by_hand_serves_the_listener(make_app: MakeApp) -> None:
    messages = Messages()
    _, listener = make_app(messages)
    app = flask.Flask(__name__)
    app.add_url_rule("/sms-status", view_func=view(listener), methods=["POST"])
    response = post(app.test_client(), "/sms-status", sms_status_payload("delivered"))
    assert response.status_code == 200
    assert len(messages.events) == 1


# -- failures and refusals -----------------------------------------------------------


def test_a_failing_callback_is_a_short_500_and_an_error_record_with_the_traceback(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app(Messages())
    caplog.set_level(logging.ERROR, logger="twilio_trigger")

    response = post(app.test_client(), "/twilio", sms_status_payload("failed"))

    assert response.status_code == 500
    assert len(response.data) < 100
    assert b"secret-database-detail" not in response.data
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "Traceback" in caplog.text
    assert "secret-database-detail" in caplog.text


def test_a_sync_callback_past_its_time_limit_is_answered_503_once_it_returns(
    make_app: MakeApp,
) -> None:
    timed_out = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "outcome", None) == "timed_out":
                timed_out.set()

    class Slow(twilio.SmsStatusService):
        returned = False

        def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
            # Runs on until the listener has given up on it: no sleep involved.
            assert timed_out.wait(DEADLINE)
            Slow.returned = True

    app, _ = make_app(Slow(), callback_timeout=0.2)
    watch = Watch(logging.ERROR)
    logging.getLogger("twilio_trigger").addHandler(watch)
    try:
        response = post(app.test_client(), "/twilio", sms_status_payload("delivered"))
    finally:
        logging.getLogger("twilio_trigger").removeHandler(watch)

    assert response.status_code == 503
    assert timed_out.is_set()
    assert Slow.returned


@pytest.mark.parametrize("escape", [SystemExit, KeyboardInterrupt])
def test_a_callback_raising_system_exit_raises_it_in_the_request_thread_not_on_the_loop(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture, escape: type[BaseException]
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    class Exiting(twilio.SmsStatusService):
        def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
            raise escape

        async def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
            loops.append(asyncio.get_running_loop())

    app, listener = make_app(Exiting())
    caplog.set_level(logging.ERROR, logger="twilio_trigger")
    client = app.test_client()
    assert post(client, "/twilio", sms_status_payload("sent")).status_code == 200

    with pytest.raises(escape):
        post(client, "/twilio", sms_status_payload("delivered"))

    # The listener's loop failed the callback and serves on: it did not stop.
    assert f"the callback raised {escape.__name__}" in caplog.text
    assert bridge_for(listener).running
    assert post(client, "/twilio", sms_status_payload("sent")).status_code == 200
    assert len(loops) == 2
    assert loops[0] is loops[1]


@pytest.mark.parametrize(
    ("signature", "answer"),
    [
        (None, b"missing X-Twilio-Signature"),
        ("bm90IGEgc2lnbmF0dXJl", b"invalid X-Twilio-Signature"),
    ],
)
def test_a_missing_or_invalid_signature_is_refused_403(
    make_app: MakeApp, signature: str | None, answer: bytes
) -> None:
    messages = Messages()
    app, _ = make_app(messages)
    params = sms_status_payload("delivered")
    client = app.test_client()
    if signature is None:
        response = client.post("/twilio", data=encode_form(params), content_type=FORM)
    else:
        response = post(client, "/twilio", params, signature=signature)
    assert response.status_code == 403
    assert answer in response.data
    assert messages.events == []


def test_a_body_that_is_not_a_form_is_refused_415(make_app: MakeApp) -> None:
    app, _ = make_app(Messages())
    response = app.test_client().post(
        "/twilio",
        data="<MessageStatus>delivered</MessageStatus>",
        content_type="application/xml",
        headers={"X-Twilio-Signature": "x"},
    )
    assert response.status_code == 415


def test_a_body_declared_too_large_is_refused_413(make_app: MakeApp) -> None:
    app, _ = make_app(Messages(), max_body_bytes=1024)
    params = sms_status_payload("delivered", Body="x" * 2000)
    response = post(app.test_client(), "/twilio", params)
    assert response.status_code == 413


def test_a_body_without_a_length_is_read_only_up_to_the_limit(make_app: MakeApp) -> None:
    app, _ = make_app(Messages(), max_body_bytes=1024)
    params = sms_status_payload("delivered", Body="x" * 2000)
    # A server that streams a chunked body says so with wsgi.input_terminated.
    response = post(
        app.test_client(),
        "/twilio",
        params,
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 413


def test_other_methods_are_refused_405_by_flask_routing(make_app: MakeApp) -> None:
    app, _ = make_app(Messages())
    response = app.test_client().put("/twilio")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "GET" in response.headers["Allow"]


def test_a_signed_get_webhook_reaches_its_callback(make_app: MakeApp) -> None:
    messages = Messages()
    app, _ = make_app(messages)
    params = sms_status_payload("delivered")
    query = urlencode(params)
    signature = str(RequestValidator(TOKEN).compute_signature(f"{LOCAL}/twilio?{query}", {}))
    unsigned = app.test_client().get(f"/twilio?{query}")
    signed = app.test_client().get(f"/twilio?{query}", headers={"X-Twilio-Signature": signature})
    assert unsigned.status_code == 403
    assert signed.status_code == 200
    (event,) = messages.events
    assert event.message_sid == params["MessageSid"]
    assert event.query["MessageStatus"] == ("delivered",)


# -- the URL the signature covers ----------------------------------------------------


def test_under_a_prefix_with_public_url_the_public_url_is_verified(make_app: MakeApp) -> None:
    messages = Messages()
    public = "https://example.com/hooks/twilio"
    app, _ = make_app(messages, url_prefix="/hooks", public_url=public)
    client = app.test_client()

    accepted = post(client, "/hooks/twilio", sms_status_payload("delivered"), sign_url=public)
    refused = post(client, "/hooks/twilio", sms_status_payload("delivered"))

    assert accepted.status_code == 200
    assert refused.status_code == 403
    assert len(messages.events) == 1


def test_without_public_url_the_test_clients_own_url_is_verified(make_app: MakeApp) -> None:
    messages = Messages()
    app, _ = make_app(messages, url_prefix="/hooks")
    response = post(
        app.test_client(),
        "/hooks/twilio",
        sms_status_payload("delivered"),
        sign_url="http://localhost/hooks/twilio",
    )
    assert response.status_code == 200
    assert len(messages.events) == 1


def test_the_query_string_is_part_of_the_verified_url(make_app: MakeApp) -> None:
    messages = Messages()
    app, _ = make_app(messages)
    client = app.test_client()
    path = "/twilio?tenant=acme&note=a%20b&next=%2Fdone"

    accepted = post(client, path, sms_status_payload("delivered"))
    refused = post(
        client, path, sms_status_payload("delivered"), sign_url="http://localhost/twilio"
    )

    assert accepted.status_code == 200
    assert refused.status_code == 403
    assert len(messages.events) == 1


def test_the_url_behind_proxy_fix_is_the_forwarded_one(make_app: MakeApp) -> None:
    messages = Messages()
    app, _ = make_app(messages)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "hooks.example.com",
        "X-Forwarded-Prefix": "/app",
    }
    response = post(
        app.test_client(),
        "/twilio?id=7",
        sms_status_payload("delivered"),
        sign_url="https://hooks.example.com/app/twilio?id=7",
        headers=forwarded,
    )
    assert response.status_code == 200
    assert len(messages.events) == 1


def test_without_a_raw_request_uri_the_path_is_escaped_again(make_app: MakeApp) -> None:
    messages = Messages()
    app, _ = make_app(messages, path="/status callbacks")
    response = post(
        app.test_client(),
        "/status%20callbacks",
        sms_status_payload("delivered"),
        sign_url="http://localhost/status%20callbacks",
        environ_overrides={"REQUEST_URI": "", "RAW_URI": ""},
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
    make_app: MakeApp, tmp_path: Path
) -> None:
    messages = Messages()
    location = f"sqlite:///{tmp_path}/events.db"
    app, listener = make_app(messages, inbox=location)

    response = post(app.test_client(), "/twilio", sms_status_payload("delivered"))

    assert response.status_code == 200
    assert messages.called.wait(DEADLINE)
    # A worker ran it, outside any request.
    assert messages.threads != [threading.get_ident()]
    assert messages.apps == [None]
    bridge_for(listener).close()
    counts = asyncio.run(_inbox_counts(location))
    assert counts[State.DONE] == 1
    assert counts[State.PENDING] == counts[State.RUNNING] == counts[State.DEAD] == 0


def test_a_duplicate_delivery_runs_the_callback_once(make_app: MakeApp) -> None:
    messages = Messages()
    app, _ = make_app(messages)
    client = app.test_client()
    params = sms_status_payload("delivered")
    token = {"I-Twilio-Idempotency-Token": str(uuid.uuid4())}

    first = post(client, "/twilio", params, headers=token)
    again = post(client, "/twilio", params, headers=token)

    assert first.status_code == again.status_code == 200
    assert len(messages.events) == 1


def test_eight_concurrent_requests_are_each_dispatched_once_in_their_own_thread(
    make_app: MakeApp,
) -> None:
    def serve(service: twilio.SmsStatusService) -> Send:
        app, _ = make_app(service)
        return lambda params: post(app.test_client(), "/twilio", params).status_code

    check_concurrent_requests(serve)


def test_close_is_harmless_twice_and_a_request_after_it_starts_the_bridge_again(
    make_app: MakeApp,
) -> None:
    messages = Messages()
    app, listener = make_app(messages)
    client = app.test_client()
    bridge = bridge_for(listener)

    assert post(client, "/twilio", sms_status_payload("delivered")).status_code == 200
    assert bridge.running
    bridge.close()
    bridge.close()
    assert not bridge.running
    assert post(client, "/twilio", sms_status_payload("delivered")).status_code == 200
    assert bridge.running
    assert bridge_for(listener) is bridge
    assert len(messages.events) == 2


def test_close_during_a_request_cuts_it_short_with_503_without_a_deadlock(
    make_app: MakeApp,
) -> None:
    closed = threading.Event()
    bridges: list[SyncBridge] = []

    def close() -> None:
        bridges[0].close()
        closed.set()

    class ClosedUnderIt(twilio.SmsStatusService):
        def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
            # close() waits shutdown_timeout for this request, then cancels it
            # and stops the loop while the callback still runs.
            closer = threading.Thread(target=close)
            closer.start()
            assert closed.wait(DEADLINE)
            closer.join()

    app, listener = make_app(ClosedUnderIt(), shutdown_timeout=0.05)
    bridges.append(bridge_for(listener))

    response = post(app.test_client(), "/twilio", sms_status_payload("delivered"))

    assert response.status_code == 503
    assert b"stopping" in response.data
    assert not bridges[0].running


# -- the example -----------------------------------------------------------------------

EXAMPLE = "examples.flask_app"
EXAMPLE_URL = "https://hooks.example.com/twilio"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``examples/flask_app.py`` freshly imported, configured by the environment alone."""
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_TRIGGER_PUBLIC_URL", EXAMPLE_URL)
    monkeypatch.delitem(sys.modules, EXAMPLE, raising=False)
    module = importlib.import_module(EXAMPLE)
    yield module
    bridge_for(module.listener).close()
    sys.modules.pop(EXAMPLE, None)


def test_the_example_app_serves_both_kinds_of_event_beside_its_own_routes(
    example: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flask_app")
    app = example.app
    assert isinstance(app, flask.Flask)
    client = app.test_client()
    sms = sms_status_payload("delivered")
    call = call_status_payload("completed")

    assert post(client, "/twilio", sms, sign_url=EXAMPLE_URL).status_code == 200
    assert post(client, "/twilio", call, sign_url=EXAMPLE_URL).status_code == 200
    assert client.get("/").json == {"service": "orders", "twilio_webhook": "/twilio"}
    assert f"SMS {sms['MessageSid']} delivered to {sms['To']}" in caplog.text
    assert f"call {call['CallSid']} completed after 47 s" in caplog.text


EXITING_SCRIPT = """
import sys, threading, time
import flask
import twilio_trigger as twilio
from tests.payloads import FORM, encode_form, sign, sms_status_payload
from twilio_trigger.adapters.flask import blueprint

listener = twilio.Listener(auth_tokens=["t"], path="/twilio", inbox=sys.argv[1])
started = threading.Event()
exiting = threading.Event()

@listener.service
class Slow(twilio.SmsStatusService):
    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        started.set()
        exiting.wait(10)  # still running when the interpreter starts to exit
        time.sleep(0.3)  # and on into the listener's exit hook
        print("callback finished", flush=True)

app = flask.Flask(__name__)
app.register_blueprint(blueprint(listener))
params = sms_status_payload("delivered")
url = "http://localhost/twilio"
answer = app.test_client().post(
    "/twilio", data=encode_form(params), content_type=FORM,
    headers={"X-Twilio-Signature": sign(url, params, "t")},
)
assert answer.status_code == 200, answer.status_code
assert started.wait(10)
print("exiting", flush=True)
# Registered after the listener's own exit hook, so run before it (the last first).
threading._register_atexit(exiting.set)
"""


def test_the_interpreters_exit_lets_the_running_callback_finish_and_closes_the_inbox(
    tmp_path: Path,
) -> None:
    # No close() anywhere: the exit hook must stop the workers after the running
    # callback, then close the SQLite inbox, although atexit-time thread pools are gone.
    location = f"sqlite:///{tmp_path}/events.db"
    script = tmp_path / "exiting.py"
    script.write_text(EXITING_SCRIPT, encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(script), location],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["exiting", "callback finished"]
    assert "Traceback" not in result.stderr, result.stderr
    counts = asyncio.run(_inbox_counts(location))
    assert counts[State.DONE] == 1
    assert counts[State.PENDING] == counts[State.RUNNING] == 0
    assert not (tmp_path / "events.db-wal").exists()  # closed cleanly: WAL checkpointed
