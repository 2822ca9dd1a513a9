"""Signed GET webhooks over real HTTP: handled like the POST of the same parameters.

Twilio lets a user choose GET for most webhooks (``StatusCallbackMethod=GET``,
``method="GET"`` on TwiML verbs).  It then appends its parameters to the URL's
own query (after the user's, spaces as ``+``, ``'`` left raw) and signs the full
URL with nothing appended: ``RequestValidator(token).compute_signature(url, {})``
is the oracle here.  Every URL is built as a string and sent as it is, and each
test checks that httpx sent exactly the bytes that were signed.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio
from twilio_trigger.testing import (
    call_status_params,
    gather_params,
    sms_status_params,
)

from ..payloads import pairs_of, sign, signed_post
from ._support import (
    OTHER_TOKEN,
    TOKEN,
    CallRecorder,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    running,
)

Pairs = Sequence[tuple[str, str]]


def query_of(pairs: Pairs) -> str:
    """A query as Twilio writes it: form encoding, spaces as ``+``, ``'`` left raw."""
    return urlencode(list(pairs), safe="'")


def oracle(url: str, token: str = TOKEN) -> str:
    """The signature of a GET of *url*: the full URL, no parameters."""
    signature = str(RequestValidator(token).compute_signature(url, {}))
    assert RequestValidator(token).validate(url, {}, signature)
    return signature


def get(url: str, signature: str | None, **headers: str) -> httpx.Response:
    """GET *url* exactly as written, as Twilio would (no body, no content type)."""
    sent = {
        "User-Agent": "TwilioProxy/1.1",
        "Accept": "*/*",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "X-Home-Region": "us1",
        **headers,
    }
    if signature is not None:
        sent["X-Twilio-Signature"] = signature
    response = httpx.get(url, headers=sent, timeout=10.0)
    # httpx must not have re-encoded the query: what was signed is what was sent.
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    assert response.request.url.raw_path == target.encode("ascii")
    return response


def signed_get(url: str, token: str = TOKEN) -> httpx.Response:
    return get(url, oracle(url, token))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def listener(recorder: Recorder) -> Iterator[twilio.Listener]:
    # Without deduplication the same parameters can be sent by GET, then by POST.
    with running(SmsRecorder(recorder), CallRecorder(recorder), deduplicate=False) as served:
        yield served


def invocations(recorder: Recorder) -> list[tuple[str, str, twilio.TwilioEvent]]:
    with recorder.lock:
        return [(call.kind, call.callback, call.event) for call in recorder.calls]


# -- a status callback by GET, as by POST ---------------------------------------------
def test_a_call_status_by_get_is_dispatched_like_its_post(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = call_status_params("completed")
    url = f"{listener.url}?{query_of(pairs_of(params))}"
    assert_empty_twiml(signed_get(url))
    assert_empty_twiml(signed_post(listener.url, params, TOKEN))

    calls = invocations(recorder)
    assert [(kind, callback) for kind, callback, _ in calls] == [
        ("call", "on_completed"),
        ("call", "on_completed"),
    ]
    by_get, by_post = calls[0][2], calls[1][2]
    assert type(by_get) is type(by_post) is twilio.CallStatusEvent
    assert isinstance(by_get, twilio.CallStatusEvent)
    assert isinstance(by_post, twilio.CallStatusEvent)
    assert by_get == by_post  # the same parameters, in the same order
    assert by_get.params == tuple(params.items())
    for name in (
        "sid", "status", "call_sid", "call_status", "call_duration", "duration",
        "direction", "from_", "to", "timestamp", "sequence_number", "callback_source",
        "sip_response_code", "recording_url", "recording_duration", "caller_name",
        "call_token", "answered_by",
    ):  # fmt: skip
        assert getattr(by_get, name) == getattr(by_post, name), name
    assert by_get.call_sid == params["CallSid"]
    assert by_get.call_duration == 47
    assert by_get.sequence_number == int(params["SequenceNumber"])
    assert by_get.call_token == params["CallToken"]  # JSON with quotes and braces, decoded
    assert by_get.path == by_post.path == "/"
    # The GET's parameters came in its query; the POST had none.
    assert by_get.query["CallSid"] == (params["CallSid"],)
    assert by_get.query["Timestamp"] == (params["Timestamp"],)
    assert dict(by_post.query) == {}


def test_an_sms_status_by_get_is_dispatched_like_its_post(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_params("delivered")
    url = f"{listener.url}?{query_of(pairs_of(params))}"
    assert_empty_twiml(signed_get(url))
    assert_empty_twiml(signed_post(listener.url, params, TOKEN))

    calls = invocations(recorder)
    assert [(kind, callback) for kind, callback, _ in calls] == [
        ("sms", "on_delivered"),
        ("sms", "on_delivered"),
    ]
    by_get, by_post = calls[0][2], calls[1][2]
    assert isinstance(by_get, twilio.SmsStatusChangeEvent)
    assert isinstance(by_post, twilio.SmsStatusChangeEvent)
    assert by_get == by_post
    for name in (
        "sid", "status", "message_sid", "message_status", "sms_status", "from_", "to",
        "account_sid", "num_segments", "raw_dlr_done_date", "messaging_service_sid",
    ):  # fmt: skip
        assert getattr(by_get, name) == getattr(by_post, name), name
    assert by_get.message_sid == params["MessageSid"]
    assert by_get.message_status == "delivered"


# -- refused ---------------------------------------------------------------------------
def test_a_get_with_a_wrong_signature_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = call_status_params("completed")
    url = f"{listener.url}?{query_of(pairs_of(params))}"
    assert get(url, oracle(url, OTHER_TOKEN)).status_code == 403
    # Signed as a POST of the same parameters would be (URL without query + the
    # sorted names and values): not the signature of a GET.
    assert get(url, sign(listener.url, params, TOKEN)).status_code == 403
    # The signature of another URL: the same query without one parameter.
    shorter = {name: value for name, value in params.items() if name != "CallerName"}
    assert get(url, oracle(f"{listener.url}?{query_of(pairs_of(shorter))}")).status_code == 403
    assert recorder.calls == []


def test_a_get_without_a_signature_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_params("delivered")
    response = get(f"{listener.url}?{query_of(pairs_of(params))}", None)
    assert response.status_code == 403
    assert recorder.calls == []


def test_a_query_changed_after_signing_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = call_status_params("completed")
    url = f"{listener.url}?{query_of(pairs_of(params))}"
    signature = oracle(url)
    tampered = url.replace("CallStatus=completed", "CallStatus=failed")
    assert tampered != url
    assert get(tampered, signature).status_code == 403
    assert recorder.calls == []


# -- the query as Twilio writes it -------------------------------------------------------
def test_twilios_parameters_follow_the_users_own_query(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = call_status_params("completed")
    own = [("menu", "main"), ("step", "2")]
    url = f"{listener.url}?{query_of(own)}&{query_of(pairs_of(params))}"
    assert urlsplit(url).query.startswith("menu=main&step=2&")
    assert_empty_twiml(signed_get(url))
    (kind, callback, event), *_ = invocations(recorder)
    assert (kind, callback) == ("call", "on_completed")
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.query["menu"] == ("main",)
    assert event.query["step"] == ("2",)
    assert event.query["CallSid"] == (params["CallSid"],)
    assert event.query["CallStatus"] == ("completed",)
    assert event.call_sid == params["CallSid"]
    assert event.get("menu") == "main"

    # The user's own parameters are covered by the signature too.
    recorder.reset()
    other_menu = url.replace("menu=main", "menu=admin")
    assert get(other_menu, oracle(url)).status_code == 403
    assert recorder.calls == []


def test_the_users_query_first_then_twilios_exactly_as_twilio_appends_it(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_params("delivered")
    url = f"{listener.url}?menu=main&{query_of(pairs_of(params))}"
    assert urlsplit(url).query.startswith("menu=main&")
    assert_empty_twiml(signed_get(url))
    (_, callback, event), *_ = invocations(recorder)
    assert callback == "on_delivered"
    assert set(event.query) == {"menu", *params}


def test_repeated_names_are_kept(listener: twilio.Listener, recorder: Recorder) -> None:
    params = call_status_params("completed")
    own = [("tag", "vip"), ("tag", "priority"), ("tag", "")]
    url = f"{listener.url}?{query_of(own)}&{query_of(pairs_of(params))}"
    assert_empty_twiml(signed_get(url))
    (_, _, event), *_ = invocations(recorder)
    assert event.getall("tag") == ("vip", "priority", "")
    assert event.query["tag"] == ("vip", "priority", "")
    assert event.raw["tag"] == ("vip", "priority", "")
    assert event["tag"] == "vip"


def test_plus_for_spaces_and_a_raw_apostrophe_verify(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = call_status_params(
        "completed", CallerName="O'Brien Family Trust", ForwardedFrom="+16505550199"
    )
    own = [("greeting", "it's me"), ("note", "a+b = c")]
    url = f"{listener.url}?{query_of(own)}&{query_of(pairs_of(params))}"
    query = urlsplit(url).query
    assert "CallerName=O'Brien+Family+Trust" in query  # as Twilio sends it
    assert "greeting=it's+me" in query
    assert "note=a%2Bb+%3D+c" in query
    assert "ForwardedFrom=%2B16505550199" in query
    assert "%27" not in query
    assert_empty_twiml(signed_get(url))
    (_, callback, event), *_ = invocations(recorder)
    assert callback == "on_completed"
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.caller_name == "O'Brien Family Trust"
    assert event.forwarded_from == "+16505550199"
    assert event.query["greeting"] == ("it's me",)
    assert event.query["note"] == ("a+b = c",)


def test_an_escaped_apostrophe_verifies_over_the_url_as_received(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    # Whatever the encoding, the signature is over the query as received.
    params = call_status_params("completed", CallerName="O'Brien")
    escaped = f"{listener.url}?{query_of(pairs_of(params))}".replace("'", "%27")
    assert "%27" in escaped
    assert_empty_twiml(get(escaped, oracle(escaped)))
    (_, _, event), *_ = invocations(recorder)
    assert event["CallerName"] == "O'Brien"


# -- a service at a path; behind a proxy -----------------------------------------------
class Menu(twilio.CallStatusService):
    def __init__(self) -> None:
        self.events: list[twilio.GatherEvent] = []
        self.lock = threading.Lock()

    def on_gather(self, event: twilio.GatherEvent) -> str:
        with self.lock:
            self.events.append(event)
        return f"<Response><Say>You pressed {event.digits}</Say></Response>"


def test_a_get_to_a_service_at_a_path(recorder: Recorder) -> None:
    menu = Menu()
    with running(CallRecorder(recorder)) as served:
        served.attach(menu, path="/voice/menu")
        base = served.url.rstrip("/")
        params = gather_params("digits", Digits="3")
        url = f"{base}/voice/menu?step=main&{query_of(pairs_of(params))}"
        response = signed_get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/xml")
        assert "You pressed 3" in response.text
        # Signed for the listener's own path, sent to the service's: refused.
        elsewhere = f"{base}/?step=main&{query_of(pairs_of(params))}"
        assert get(url, oracle(elsewhere)).status_code == 403
    assert recorder.calls == []  # the listener-wide service got nothing
    (event,) = menu.events
    assert isinstance(event, twilio.GatherEvent)
    assert event.digits == "3"
    assert event.finished_on_key == "#"
    assert event.call_sid == params["CallSid"]
    assert event.path == "/voice/menu"
    assert event.query["step"] == ("main",)


def test_behind_a_proxy_a_get_is_verified_against_public_url(recorder: Recorder) -> None:
    menu = Menu()
    with running(
        CallRecorder(recorder), path="/twilio", public_url="https://hooks.example.com/twilio"
    ) as served:
        served.attach(menu, path="/voice/menu")
        assert served.url.endswith("/twilio")
        origin = served.url.removesuffix("/twilio")
        params = call_status_params("completed", CallerName="O'Brien Family")
        query = query_of(pairs_of(params))
        local = f"{served.url}?{query}"
        public = f"https://hooks.example.com/twilio?{query}"
        # Signed for the local URL: not the one Twilio called.
        assert get(local, oracle(local)).status_code == 403
        assert recorder.calls == []
        assert_empty_twiml(get(local, oracle(public)))
        # A service's path takes the place of the listener's in public_url.
        gathered = gather_params("digits", Digits="9")
        menu_query = query_of(pairs_of(gathered))
        response = get(
            f"{origin}/voice/menu?{menu_query}",
            oracle(f"https://hooks.example.com/voice/menu?{menu_query}"),
        )
        assert response.status_code == 200, response.text
        assert "You pressed 9" in response.text
    (invocation,) = recorder.calls
    assert invocation.callback == "on_completed"
    assert invocation.event.sid == params["CallSid"]
    assert invocation.event["CallerName"] == "O'Brien Family"
    assert [event.digits for event in menu.events] == ["9"]


# -- other methods, other paths --------------------------------------------------------
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_other_methods_are_not_allowed(
    listener: twilio.Listener, recorder: Recorder, method: str
) -> None:
    params = call_status_params("completed")
    url = f"{listener.url}?{query_of(pairs_of(params))}"
    response = httpx.request(method, url, headers={"X-Twilio-Signature": oracle(url)}, timeout=10.0)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, GET"
    assert recorder.calls == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_other_methods_are_not_allowed_at_a_services_path(method: str) -> None:
    menu = Menu()
    with running() as served:
        served.attach(menu, path="/voice/menu")
        url = served.url.rstrip("/") + "/voice/menu"
        response = httpx.request(method, url, timeout=10.0)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, GET"
    assert menu.events == []


def test_a_get_to_an_unknown_path_is_not_found(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = call_status_params("completed")
    url = f"{listener.url.rstrip('/')}/voice/nowhere?{query_of(pairs_of(params))}"
    assert signed_get(url).status_code == 404
    assert recorder.calls == []


def test_a_refused_gets_log_line_shows_its_querys_names_not_its_values(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    # A GET carries a message's body and the phone numbers in its query: a refusal
    # tells which names the URL had, never their values (docs/security.md).
    caplog.set_level(logging.WARNING, logger="twilio_trigger")
    params = sms_status_params("received")
    params.update(From="+15558675309", Body="my secret PIN is 4321")
    with running(SmsRecorder(recorder)) as served:
        url = f"{served.url}?{query_of(pairs_of(params))}"
        assert get(url, oracle(url, OTHER_TOKEN)).status_code == 403
    lines = [r.getMessage() for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "From=…" in lines[0], lines[0]
    assert "Body=…" in lines[0], lines[0]
    # Every field of every record but the numbers (a record's time, 1796578154.4321...,
    # once held the digits of the PIN: a test that failed one run in a few dozen).
    shown = lines[0] + repr(
        [
            {
                name: value
                for name, value in r.__dict__.items()
                if not isinstance(value, float | int)
            }
            for r in caplog.records
        ]
    )
    for secret in ("5558675309", "secret", "4321"):
        assert secret not in shown, secret
    assert recorder.calls == []
