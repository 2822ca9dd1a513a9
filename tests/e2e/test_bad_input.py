"""Every row of DESIGN.md §2 that is not a dispatched event, over real HTTP;
signature checking as Twilio signs (tokens, ports, public_url, query strings);
and the listener's life: ports, environment, graceful stop."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import (
    FORM,
    Params,
    call_status_payload,
    encode_form,
    sign,
    signed_post,
    sms_status_payload,
)

from ._support import (
    LOGGER,
    OTHER_TOKEN,
    TOKEN,
    CallRecorder,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    free_port,
    read_answer,
    records,
    running,
)

MAX_BODY = 4096
MAX_PARAMS = 5


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def listener(recorder: Recorder) -> Iterator[twilio.Listener]:
    with running(SmsRecorder(recorder), CallRecorder(recorder)) as listener:
        yield listener


@pytest.fixture(scope="module")
def client(listener: twilio.Listener) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def small_recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def small(small_recorder: Recorder) -> Iterator[twilio.Listener]:
    """A listener with tight limits on the body's size and its number of parameters."""
    service = SmsRecorder(small_recorder)
    with running(service, max_body_bytes=MAX_BODY, max_params=MAX_PARAMS) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _fresh_recorders(recorder: Recorder, small_recorder: Recorder) -> Iterator[None]:
    recorder.reset()
    small_recorder.reset()
    yield
    recorder.reset()
    small_recorder.reset()


def signed_headers(url: str, params: Params, token: str = TOKEN) -> dict[str, str]:
    return {"Content-Type": FORM, "X-Twilio-Signature": sign(url, params, token)}


# -- method and path -----------------------------------------------------------
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_get_405_with_allow_post_and_get(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder, method: str
) -> None:
    # A validly signed form: only the method is wrong.
    payload = sms_status_payload("delivered")
    response = client.request(
        method,
        listener.url,
        content=encode_form(payload),
        headers=signed_headers(listener.url, payload),
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, GET"
    assert recorder.calls == []


def test_a_get_signed_as_a_post_is_refused(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    # A GET webhook is signed over its URL, query included: a POST's signature
    # of the same parameters proves nothing.
    payload = sms_status_payload("delivered")
    headers = signed_headers(listener.url, payload)
    response = client.get(f"{listener.url}?{encode_form(payload).decode()}", headers=headers)
    assert response.status_code == 403
    # A GET whose parameters are in a body, not in its query, carries none.
    in_body = client.request("GET", listener.url, content=encode_form(payload), headers=headers)
    assert in_body.status_code == 400
    assert recorder.calls == []


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_other_path_gets_404(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder, method: str
) -> None:
    url = listener.url + "status"
    payload = sms_status_payload("delivered")
    response = client.request(
        method, url, content=encode_form(payload), headers=signed_headers(url, payload)
    )
    assert response.status_code == 404
    assert recorder.calls == []


def test_listener_on_a_path_answers_there_only() -> None:
    recorder = Recorder()
    with running(SmsRecorder(recorder), path="/hooks/twilio") as listener:
        assert listener.url.endswith("/hooks/twilio")
        base = listener.url.removesuffix("/hooks/twilio")
        for url in (base + "/", base + "/hooks", base + "/hooks/twilio/extra"):
            payload = sms_status_payload("sent")
            assert signed_post(url, payload, TOKEN).status_code == 404, url
        assert recorder.calls == []
        assert_empty_twiml(signed_post(listener.url, sms_status_payload("sent"), TOKEN))
    assert [c.callback for c in recorder.calls] == ["on_sent"]


# -- signatures ------------------------------------------------------------------
def post_form(
    client: httpx.Client, url: str, params: Params, signature: str | None
) -> httpx.Response:
    headers = {"Content-Type": FORM}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(url, content=encode_form(params), headers=headers)


def test_missing_signature_gets_403(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    response = post_form(client, listener.url, sms_status_payload("delivered"), None)
    assert response.status_code == 403
    assert "signature" in response.text.lower()
    assert recorder.calls == []


@pytest.mark.parametrize(
    "signature",
    ["", "not base64 at all", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "L/OH5YylLD5NRKLltdqwSvS0BnU="],
)
def test_wrong_signature_gets_403(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder, signature: str
) -> None:
    response = post_form(client, listener.url, sms_status_payload("delivered"), signature)
    assert response.status_code == 403
    assert recorder.calls == []


def test_signature_made_with_another_token_gets_403(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    payload = sms_status_payload("delivered")
    response = post_form(client, listener.url, payload, sign(listener.url, payload, OTHER_TOKEN))
    assert response.status_code == 403
    assert recorder.calls == []


@pytest.mark.parametrize(
    "signed_url",
    [
        "http://127.0.0.1:{port}/other",
        "https://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "http://127.0.0.1:{port}/?extra=1",
        "http://127.0.0.1:1/",
    ],
)
def test_signature_valid_for_another_url_gets_403(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder, signed_url: str
) -> None:
    payload = sms_status_payload("delivered")
    signature = sign(signed_url.format(port=listener.port), payload, TOKEN)
    response = post_form(client, listener.url, payload, signature)
    assert response.status_code == 403
    assert recorder.calls == []


def test_parameters_changed_after_signing_get_403(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    payload = sms_status_payload("failed")
    signature = sign(listener.url, payload, TOKEN)
    forged = dict(payload, MessageStatus="delivered", SmsStatus="delivered")
    assert post_form(client, listener.url, forged, signature).status_code == 403
    dropped = {k: v for k, v in payload.items() if k != "ErrorCode"}
    assert post_form(client, listener.url, dropped, signature).status_code == 403
    added = [*payload.items(), ("ErrorCode", "0")]  # a second value for a signed name
    assert post_form(client, listener.url, added, signature).status_code == 403
    assert recorder.calls == []
    assert post_form(client, listener.url, payload, signature).status_code == 200


def test_signature_over_the_url_without_its_port_is_accepted(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    # Twilio drops the port of some URLs before signing (reference §4).
    payload = sms_status_payload("delivered")
    signature = sign("http://127.0.0.1/", payload, TOKEN)
    assert_empty_twiml(post_form(client, listener.url, payload, signature))
    assert recorder.only().callback == "on_delivered"


def test_query_string_is_part_of_the_signed_url(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    url = listener.url + "?tenant=acme&order=A%2F17"
    payload = sms_status_payload("delivered")
    unsigned_query = sign(listener.url, payload, TOKEN)
    assert post_form(client, url, payload, unsigned_query).status_code == 403
    assert_empty_twiml(post_form(client, url, payload, sign(url, payload, TOKEN)))
    assert recorder.only().event.sid == payload["MessageSid"]


def test_every_token_of_a_rotation_is_accepted() -> None:
    recorder = Recorder()
    with running(SmsRecorder(recorder), auth_tokens=["old-token", "new-token"]) as listener:
        old = signed_post(listener.url, sms_status_payload("sent"), "old-token")
        new = signed_post(listener.url, sms_status_payload("delivered"), "new-token")
        other = signed_post(listener.url, sms_status_payload("failed"), OTHER_TOKEN)
    assert_empty_twiml(old)
    assert_empty_twiml(new)
    assert other.status_code == 403
    assert [c.callback for c in recorder.calls] == ["on_sent", "on_delivered"]


# -- public_url ------------------------------------------------------------------
PUBLIC = "https://example.com/twilio"


@pytest.fixture(scope="module")
def public_recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def public(public_recorder: Recorder) -> Iterator[twilio.Listener]:
    with running(SmsRecorder(public_recorder), public_url=PUBLIC) as listener:
        yield listener


@pytest.mark.parametrize("signed_url", [PUBLIC, "https://example.com:443/twilio"])
def test_public_url_is_what_signatures_are_checked_against(
    public: twilio.Listener, public_recorder: Recorder, signed_url: str
) -> None:
    public_recorder.reset()
    payload = sms_status_payload("delivered")
    assert_empty_twiml(signed_post(public.url, payload, TOKEN, sign_url=signed_url))
    assert public_recorder.only().event.sid == payload["MessageSid"]


@pytest.mark.parametrize(
    "signed_url",
    [
        "{local}",  # the URL the request arrived on
        "http://example.com/twilio",
        "https://example.com/twilio/",
        "https://example.com:8443/twilio",
        "https://example.org/twilio",
    ],
)
def test_with_public_url_other_urls_are_refused(
    public: twilio.Listener, public_recorder: Recorder, signed_url: str
) -> None:
    public_recorder.reset()
    payload = sms_status_payload("delivered")
    url = signed_url.format(local=public.url)
    response = signed_post(public.url, payload, TOKEN, sign_url=url)
    assert response.status_code == 403
    assert public_recorder.calls == []


def test_query_string_is_appended_to_public_url(
    public: twilio.Listener, public_recorder: Recorder
) -> None:
    public_recorder.reset()
    payload = sms_status_payload("delivered")
    local = public.url + "?a=1&b=2"
    without_query = signed_post(local, payload, TOKEN, sign_url=PUBLIC)
    assert without_query.status_code == 403
    response = signed_post(local, payload, TOKEN, sign_url=PUBLIC + "?a=1&b=2")
    assert_empty_twiml(response)
    assert public_recorder.only().callback == "on_delivered"


def test_public_url_drops_user_information_and_fragment() -> None:
    # Twilio signs without "user:password@" and never sends the "#..." overrides.
    recorder = Recorder()
    public_url = "https://hook:s3cret@example.com/twilio#rc=2&rp=5xx"
    with running(SmsRecorder(recorder), public_url=public_url) as listener:
        accepted = signed_post(listener.url, sms_status_payload("sent"), TOKEN, sign_url=PUBLIC)
        as_configured = signed_post(
            listener.url, sms_status_payload("sent"), TOKEN, sign_url=public_url
        )
    assert_empty_twiml(accepted)
    assert as_configured.status_code == 403
    assert len(recorder.calls) == 1


# -- content type and encoding ----------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/xml", 415),
        ("text/plain", 415),
        (None, 415),
        ("multipart/form-data; boundary=xyz", 415),
        ("application/x-www-form-urlencoded; charset=iso-8859-1", 415),
        ("application/x-www-form-urlencoded; charset=utf-8", 200),
        ("application/x-www-form-urlencoded; charset=UTF-8", 200),  # what Twilio often sends
        ("application/x-www-form-urlencoded", 200),
    ],
)
def test_only_utf8_forms_are_accepted(
    client: httpx.Client,
    listener: twilio.Listener,
    recorder: Recorder,
    content_type: str | None,
    status: int,
) -> None:
    payload = sms_status_payload("delivered")
    headers = {"X-Twilio-Signature": sign(listener.url, payload, TOKEN)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post(listener.url, content=encode_form(payload), headers=headers)
    assert response.status_code == status
    if status == 200:
        assert_empty_twiml(response)
        assert recorder.only().callback == "on_delivered"
    else:
        assert "application/x-www-form-urlencoded" in response.text
        assert recorder.calls == []


def test_a_json_body_signed_as_a_form_is_refused_403(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    # JSON is an Event Streams batch, signed over a URL that carries the body's
    # SHA-256: without it, no signature can be right.
    payload = sms_status_payload("delivered")
    response = client.post(
        listener.url,
        content=json.dumps(payload).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Signature": sign(listener.url, {}, TOKEN),
        },
    )
    assert response.status_code == 403
    assert recorder.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"\xff",
        b"MessageStatus=delivered&Body=caf\xe9",  # latin-1, not UTF-8
        b"MessageStatus=delivered&Body=%FF",
        b"MessageStatus=delivered&Body=%C0%AF",  # an overlong encoding
        b"MessageStatus=delivered&Body=%ED%A0%80",  # a lone surrogate
    ],
)
def test_undecodable_body_gets_400(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder, body: bytes
) -> None:
    headers = {"Content-Type": FORM, "X-Twilio-Signature": sign(listener.url, {}, TOKEN)}
    response = client.post(listener.url, content=body, headers=headers)
    assert response.status_code == 400
    assert "UTF-8" in response.text
    assert recorder.calls == []


# -- sizes -----------------------------------------------------------------------
def form_of_size(size: int, **params: str) -> dict[str, str]:
    """A few parameters and a ``Body`` padded so that the encoded form is *size* bytes."""
    form = {**params, "Body": ""}
    form["Body"] = "x" * (size - len(encode_form(form)))
    assert len(encode_form(form)) == size
    return form


def test_body_at_the_limit_is_accepted(small: twilio.Listener, small_recorder: Recorder) -> None:
    form = form_of_size(MAX_BODY, MessageSid="SM" + "2" * 32, MessageStatus="delivered")
    assert_empty_twiml(signed_post(small.url, form, TOKEN))
    event = small_recorder.only().event
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.body == form["Body"]


def test_body_over_the_limit_gets_413(small: twilio.Listener, small_recorder: Recorder) -> None:
    form = form_of_size(MAX_BODY + 1, MessageSid="SM" + "3" * 32, MessageStatus="delivered")
    response = signed_post(small.url, form, TOKEN)
    assert response.status_code == 413
    assert small_recorder.calls == []


def test_chunked_body_over_the_limit_gets_413(
    small: twilio.Listener, small_recorder: Recorder
) -> None:
    payload = {"MessageStatus": "delivered", "Body": "x" * (4 * MAX_BODY)}
    body = encode_form(payload)
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 512):
            sent.append(start)
            yield body[start : start + 512]

    response = httpx.post(
        small.url, content=chunks(), headers=signed_headers(small.url, payload), timeout=10.0
    )
    assert response.status_code == 413
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert sent  # the body really was streamed
    assert small_recorder.calls == []


def raw_request(listener: twilio.Listener, head: str, body_parts: list[bytes]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", listener.port), timeout=3.0)
    sock.sendall(head.encode("latin-1"))
    for part in body_parts:
        sock.sendall(part)
    return sock


def test_413_comes_before_a_huge_declared_body_is_sent(small: twilio.Listener) -> None:
    # Only 40 bytes of the gigabyte announced are ever sent: the answer must not wait.
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{small.port}\r\n"
        f"Content-Type: {FORM}\r\nX-Twilio-Signature: {sign(small.url, {}, TOKEN)}\r\n"
        f"Content-Length: {10**9}\r\n\r\n"
    )
    with raw_request(small, head, [b"MessageStatus=delivered&Body=xxxxxxxxxx"]) as sock:
        status, _, body = read_answer(sock)
    assert status == 413
    assert b"too large" in body


@pytest.mark.parametrize(
    ("sizes", "pause"),
    [([MAX_BODY + 1000], 0.0), ([1024] * (MAX_BODY // 1024 + 2), 0.02)],
    ids=["one-chunk-past-the-limit", "small-chunks"],
)
def test_413_comes_before_an_endless_chunked_body_ends(
    small: twilio.Listener, sizes: list[int], pause: float
) -> None:
    # Chunks past the limit, and never the final zero-length chunk: the answer
    # must come from what was received, not wait for the rest.
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{small.port}\r\n"
        f"Content-Type: {FORM}\r\nX-Twilio-Signature: {sign(small.url, {}, TOKEN)}\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n"
    )
    with raw_request(small, head, []) as sock:
        for size in sizes:
            sock.sendall(b"%x\r\n%s\r\n" % (size, b"x" * size))
            time.sleep(pause)
        status, _, _ = read_answer(sock)
    assert status == 413


def test_parameters_up_to_the_limit_are_accepted_and_more_get_413(
    small: twilio.Listener, small_recorder: Recorder
) -> None:
    params = [("MessageStatus", "sent"), ("MessageSid", "SM" + "1" * 32)]
    params += [(f"Extra{i}", str(i)) for i in range(MAX_PARAMS - len(params))]
    assert len(params) == MAX_PARAMS
    assert_empty_twiml(signed_post(small.url, params, TOKEN))
    assert small_recorder.only().callback == "on_sent"

    too_many = [*params, ("OneMore", "x")]
    response = signed_post(small.url, too_many, TOKEN)
    assert response.status_code == 413
    assert str(MAX_PARAMS) in response.text
    assert len(small_recorder.calls) == 1


# -- no parameters, or none a kind recognises ------------------------------------------
def test_a_form_without_parameters_gets_400_saying_what_is_missing(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    response = signed_post(listener.url, {}, TOKEN, client=client)
    assert response.status_code == 400
    assert "no parameters" in response.text
    assert recorder.calls == []


@pytest.mark.parametrize(
    "params",
    [
        # Without NumMedia (not in Twilio's list of a status callback's parameters):
        # with it and no status, a message is an inbound one (see test_replies).
        {
            k: v
            for k, v in sms_status_payload("sent").items()
            if not k.endswith("Status") and k != "NumMedia"
        },
        {**sms_status_payload("sent"), "MessageStatus": "", "SmsStatus": ""},
        {k: v for k, v in call_status_payload("busy").items() if k != "CallStatus"},
    ],
    ids=["message-without-status", "blank-status", "call-without-status"],
)
def test_a_form_no_kind_recognises_is_acknowledged_never_400(
    client: httpx.Client,
    listener: twilio.Listener,
    recorder: Recorder,
    params: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A family the package does not know must not make Twilio record an error.
    response = signed_post(listener.url, params, TOKEN, client=client)
    assert_empty_twiml(response)
    assert recorder.calls == []
    assert "no kind recognises" in caplog.text


# -- verification off, or impossible -------------------------------------------------
def test_without_verification_unsigned_requests_are_accepted_and_a_warning_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    recorder = Recorder()
    with running(SmsRecorder(recorder), verify_signatures=False) as listener:
        warnings = records(caplog, logging.WARNING)
        unsigned = httpx.post(
            listener.url,
            content=encode_form(sms_status_payload("sent")),
            headers={"Content-Type": FORM},
        )
        forged = httpx.post(
            listener.url,
            content=encode_form(sms_status_payload("delivered")),
            headers={"Content-Type": FORM, "X-Twilio-Signature": "forged"},
        )
    assert_empty_twiml(unsigned)
    assert_empty_twiml(forged)
    assert [c.callback for c in recorder.calls] == ["on_sent", "on_delivered"]
    assert len(warnings) == 1
    assert "signature" in warnings[0].getMessage().lower()


def test_listener_without_token_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    listener = twilio.Listener(0, host="127.0.0.1")
    with pytest.raises(twilio.ConfigurationError, match="TWILIO_AUTH_TOKEN"):
        listener.start()
    listener.stop()  # harmless: nothing runs
    empty = twilio.Listener(0, host="127.0.0.1", auth_tokens=[])
    with pytest.raises(twilio.ConfigurationError):
        empty.start()


# -- lifecycle ---------------------------------------------------------------------
def test_port_zero_binds_a_real_free_port() -> None:
    recorder = Recorder()
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    listener.attach(SmsRecorder(recorder))
    with listener:
        port = listener.port
        assert port != 0
        assert listener.url == f"http://127.0.0.1:{port}/"
        with socket.create_connection(("127.0.0.1", port), timeout=5.0):
            pass
        assert_empty_twiml(signed_post(listener.url, sms_status_payload("sent"), TOKEN))
    assert recorder.only().callback == "on_sent"


def test_port_and_tokens_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("TWILIO_TRIGGER_PORT", str(port))
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token-a, token-b")
    recorder = Recorder()
    listener = twilio.Listener(host="127.0.0.1")
    listener.attach(SmsRecorder(recorder))
    with listener:
        assert listener.port == port
        url = f"http://127.0.0.1:{port}/"
        assert listener.url == url
        first = signed_post(url, sms_status_payload("sent"), "token-a")
        second = signed_post(url, sms_status_payload("delivered"), "token-b")
        whole = signed_post(url, sms_status_payload("failed"), "token-a, token-b")
    assert_empty_twiml(first)
    assert_empty_twiml(second)
    assert whole.status_code == 403
    assert [c.callback for c in recorder.calls] == ["on_sent", "on_delivered"]


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_TRIGGER_PORT", str(free_port()))
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-the-environment")
    recorder = Recorder()
    with running(SmsRecorder(recorder)) as listener:  # port 0 and TOKEN, explicitly
        assert listener.settings.port == 0
        env_signed = signed_post(listener.url, sms_status_payload("sent"), "from-the-environment")
        arg_signed = signed_post(listener.url, sms_status_payload("delivered"), TOKEN)
    assert env_signed.status_code == 403
    assert_empty_twiml(arg_signed)
    assert recorder.only().callback == "on_delivered"


class Slow(twilio.SmsStatusService):
    """Callbacks that run until the test is stopping the listener, and a little longer.

    They say when they start and end: held by ``stopping``, they cannot end before
    the test has looked, however slow the machine.
    """

    def __init__(self) -> None:
        self.started = threading.Event()
        self.stopping = threading.Event()
        self.finished = threading.Event()

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.started.set()
        await asyncio.to_thread(self.stopping.wait, 10.0)
        await asyncio.sleep(0.3)
        self.finished.set()

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.started.set()
        self.stopping.wait(10.0)
        time.sleep(0.3)
        self.finished.set()


@pytest.mark.parametrize("status", ["delivered", "sent"], ids=["async", "sync"])
def test_stop_lets_the_running_callback_finish_then_refuses_connections(status: str) -> None:
    slow = Slow()
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    listener.attach(slow)
    listener.start()
    try:
        url = listener.url
        answers: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: answers.append(signed_post(url, sms_status_payload(status), TOKEN))
        )
        request.start()
        assert slow.started.wait(5.0)
        assert not slow.finished.is_set()

        stopper = threading.Thread(target=listener.stop)
        stopper.start()
        slow.stopping.set()
        stopper.join(10.0)
        assert not stopper.is_alive()
        # stop() returned only once the callback had finished.
        assert slow.finished.is_set()
        request.join(10.0)
        (answer,) = answers
        assert_empty_twiml(answer)

        with pytest.raises(httpx.ConnectError):
            signed_post(url, sms_status_payload(status), TOKEN, timeout=2.0)
    finally:
        slow.stopping.set()
        listener.stop()


def test_stop_gives_up_on_a_stalled_client_after_shutdown_timeout() -> None:
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], shutdown_timeout=0.5)
    listener.start()
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5.0) as stalled:
            # Headers promise a body that never comes: the request stays in flight.
            stalled.sendall(
                b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"X-Twilio-Signature: x\r\nContent-Length: 100\r\n\r\nMessageStatus="
            )
            time.sleep(0.2)
            stopper = threading.Thread(target=listener.stop)
            stopper.start()
            stopper.join(10.0)
            assert not stopper.is_alive(), "stop() waited for the stalled client forever"
    finally:
        listener.stop()


def test_a_request_cut_by_the_stop_is_answered_503_not_500() -> None:
    # Found by a crash audit: a request still running when shutdown_timeout ran
    # out was answered 500, which says the listener failed; nothing did, and a
    # 503 tells Twilio it may try again (what was stored stays stored).
    started = threading.Event()

    class Slow(twilio.SmsStatusService):
        async def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
            started.set()
            await asyncio.sleep(60)

    listener = twilio.Listener(
        0, host="127.0.0.1", auth_tokens=[TOKEN], callback_timeout=30, shutdown_timeout=0.5
    )
    listener.attach(Slow())
    listener.start()
    answers: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            signed_post(listener.url, sms_status_payload("sent"), TOKEN, timeout=30.0)
        )
    )
    try:
        sender.start()
        assert started.wait(10.0)
        listener.stop()
        sender.join(30.0)
    finally:
        listener.stop()
    (answer,) = answers
    assert answer.status_code == 503
    assert answer.text == "the listener is stopping; try again\n"


@pytest.mark.parametrize("configured", [None, PUBLIC])
def test_the_refusals_advice_depends_on_whether_public_url_is_set(
    caplog: pytest.LogCaptureFixture, configured: str | None
) -> None:
    # Signed over another URL than the one checked: without public_url, the advice
    # is to set it; with it, to check it, not to "pass" what is already passed.
    caplog.set_level(logging.WARNING, logger=LOGGER)
    recorder = Recorder()
    options = {} if configured is None else {"public_url": configured}
    with running(SmsRecorder(recorder), **options) as listener:
        payload = sms_status_payload("delivered")
        signed = "https://abc123.ngrok-free.app/"
        assert signed_post(listener.url, payload, TOKEN, sign_url=signed).status_code == 403
    (line,) = [r.getMessage() for r in caplog.records if "for any URL form tried" in r.getMessage()]
    if configured is None:
        assert "pass public_url=<the URL configured in Twilio>" in line, line
    else:
        assert "check that public_url is the URL configured in Twilio" in line, line
        assert "pass public_url=" not in line, line
    assert recorder.calls == []
