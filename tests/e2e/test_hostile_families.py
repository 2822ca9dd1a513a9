"""Hostile requests against what issue 15 added: GET webhooks, Basic auth, the JSON
object fallback, the new families' events and answers, services at paths.

Every request here is hostile: a query that does not decode, a header that is
too long or not ASCII, a JSON object with odd keys or too many of them, values
a callback reads or echoes, a path spelt another way.  For each, the listener
must answer as the project's rules say (a 4xx refusal, or the usual 2xx),
never a 500, never hang, tell nothing unescaped in its log and no secret
anywhere, and go on serving the next request.  Requests are real, over
loopback; raw sockets where httpx would normalise what is sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio
from twilio_trigger.testing import (
    conference_params,
    conversations_params,
    gather_params,
    taskrouter_params,
    unknown_params,
)

from ..payloads import FORM, encode_form, sign, signed_json, signed_post
from ._support import (
    LOGGER,
    TOKEN,
    assert_empty_twiml,
    closed_by_server,
    read_answer,
    running,
    wait_until,
)

USER, PASSWORD = "twilio", "s3cret-Pa55word"  # a made-up pair

#: What must never reach a log record's message raw (``_logging.printable``'s set):
#: C0 and C1 controls, DEL, the line and paragraph separators, bidi controls.
UNSAFE = frozenset(
    [
        *map(chr, range(0x20)),
        "\x7f",
        *map(chr, range(0x80, 0xA0)),
        "\u2028",
        "\u2029",
        *map(chr, range(0x202A, 0x202F)),
        *map(chr, range(0x2066, 0x206A)),
    ]
)
HOSTILE_NAMES = ("Line\nBreak", "Esc\x1b[31mRed", "Sep\u2028Arator", "Bidi\u202eIdib", "Nul\x00")


# -- helpers ---------------------------------------------------------------------------
class Everything(twilio.FallbackService):
    """Records every event no other service takes."""

    def __init__(self) -> None:
        self.events: list[twilio.TwilioEvent] = []
        self.lock = threading.Lock()

    def on_event(self, event: twilio.TwilioEvent) -> None:
        with self.lock:
            self.events.append(event)

    def got(self) -> list[twilio.TwilioEvent]:
        with self.lock:
            return list(self.events)


def exchange(listener: twilio.Listener, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send *request* as raw bytes on a new connection; its answer."""
    with socket.create_connection(("127.0.0.1", listener.port), timeout=20.0) as sock:
        sock.sendall(request)
        return read_answer(sock)


def url_of(listener: twilio.Listener, target: str) -> str:
    """The absolute URL of a request target (``/path?query``), as Twilio signs it."""
    return f"http://127.0.0.1:{listener.port}{target}"


def get_request(
    listener: twilio.Listener,
    target: str,
    *,
    signature: str | None = "oracle",
    extra: bytes = b"",
    body: bytes = b"",
) -> bytes:
    """A GET of *target* (sent byte for byte), signed over its URL unless told."""
    if signature == "oracle":
        signature = str(RequestValidator(TOKEN).compute_signature(url_of(listener, target), {}))
    head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n"
    if signature is not None:
        head += f"X-Twilio-Signature: {signature}\r\n"
    head += "User-Agent: TwilioProxy/1.1\r\n"
    return head.encode("latin-1") + extra + b"\r\n" + body


def form_request(
    listener: twilio.Listener,
    params: Mapping[str, str] | list[tuple[str, str]],
    *,
    target: str = "/",
    extra: bytes = b"",
) -> bytes:
    """A signed form POST to *target* as raw bytes, with *extra* header lines."""
    body = encode_form(params)
    head = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {len(body)}\r\n"
        f"X-Twilio-Signature: {sign(url_of(listener, target), params, TOKEN)}\r\n"
    ).encode("latin-1")
    return head + extra + b"\r\n" + body


def post_json_text(url: str, text: str) -> httpx.Response:
    """POST *text* as a JSON body, signed as Twilio signs one (its SHA-256 in the URL)."""
    body = text.encode("utf-8")
    target = f"{url}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = str(RequestValidator(TOKEN).compute_signature(target, {}))
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}
    return httpx.post(target, content=body, headers=headers, timeout=20.0)


def assert_log_is_safe(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    """No record of the package holds an unsafe character raw, nor any *secrets*."""
    for record in caplog.records:
        if record.name != LOGGER:
            continue
        message = record.getMessage()
        raw = sorted({f"U+{ord(c):04X}" for c in message if c in UNSAFE})
        assert not raw, f"unescaped {raw} in {message[:300]!r}"
        for secret in secrets:
            assert secret not in message, f"secret in {message[:300]!r}"
            assert secret not in repr(vars(record))


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def assert_still_serving(listener: twilio.Listener, path: str = "/") -> None:
    """A signed, ordinary webhook is answered 200 right after the hostile one."""
    url = listener.url.rstrip("/") + path
    assert_empty_twiml(signed_post(url, unknown_params("room-ended"), TOKEN))


def shown_names(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "no kind recognises" in r.getMessage()]


@pytest.fixture
def everything() -> Everything:
    return Everything()


@pytest.fixture
def listener(everything: Everything) -> Iterator[twilio.Listener]:
    with running(everything, keepalive_timeout=1.0, body_timeout=2.0) as served:
        yield served


# -- GET: the parameters come from the query -------------------------------------------
@pytest.mark.parametrize(
    "query",
    ["RoomSid=RM1&Note=%ff%fe", "RoomSid=RM1&Note=%C3", "Room%ffSid=RM1", "RoomSid=%ED%A0%80"],
    ids=["invalid-bytes", "truncated-sequence", "in-a-name", "encoded-surrogate"],
)
def test_a_signed_get_whose_query_is_not_utf8_is_400(
    listener: twilio.Listener, everything: Everything, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards against a query that does not decode reaching a callback, or a 500."""
    status, _, body = exchange(listener, get_request(listener, f"/?{query}"))
    assert status == 400, body
    assert everything.got() == []
    assert_log_is_safe(caplog)
    assert_still_serving(listener)


def test_a_signed_get_with_nul_a_lone_percent_and_a_bad_escape_is_handled(
    listener: twilio.Listener, everything: Everything, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards against odd but decodable escapes making a 500; values reach the
    callback as decoded, and nothing of them reaches the log raw."""
    query = "RoomSid=RM1&Nul=%00&Lone=%&Bad=%zz&Esc=%1B%5B2J&Sep=%E2%80%A8"
    status, _, body = exchange(listener, get_request(listener, f"/?{query}"))
    assert status == 200, body
    (event,) = everything.got()
    assert event["Nul"] == "\x00"
    assert event["Lone"] == "%"
    assert event["Bad"] == "%zz"
    assert event["Esc"] == "\x1b[2J"
    assert event["Sep"] == "\u2028"
    assert event.query["Nul"] == ("\x00",)
    assert_log_is_safe(caplog)
    assert_still_serving(listener)


@pytest.mark.parametrize("count", [3000, 5000])
def test_a_signed_get_with_thousands_of_parameters_is_refused(
    listener: twilio.Listener, everything: Everything, count: int
) -> None:
    """Guards against max_params not holding for a GET's query (413), or a head
    too large for the edge (431): never parsed whole, never a 500."""
    query = "&".join(f"p{n}=1" for n in range(count))
    status, _, _ = exchange(listener, get_request(listener, f"/?RoomSid=RM1&{query}"))
    assert status in (413, 431)
    assert everything.got() == []
    assert_still_serving(listener)


def test_a_signed_get_with_a_30_kb_value_within_the_head_limit_is_handled(
    listener: twilio.Listener, everything: Everything
) -> None:
    """Guards against a long (but allowed) query being cut or refused as a 500."""
    value = "v" * 30_000
    status, _, _ = exchange(listener, get_request(listener, f"/?RoomSid=RM1&Long={value}"))
    assert status == 200
    (event,) = everything.got()
    assert event["Long"] == value


def test_a_get_whose_body_holds_another_request_answers_once_and_runs_once(
    listener: twilio.Listener, everything: Everything
) -> None:
    """Guards against request smuggling: a GET's body is ignored, never read as
    the connection's next request."""
    smuggled = form_request(listener, unknown_params("room-ended", RoomSid="RM" + "5" * 32))
    request = get_request(
        listener,
        "/?RoomSid=RM1&StatusCallbackEvent=room-created",
        extra=b"Content-Length: %d\r\n" % len(smuggled),
        body=smuggled,
    )
    with socket.create_connection(("127.0.0.1", listener.port), timeout=20.0) as sock:
        sock.sendall(request)
        received = closed_by_server(sock)
    assert received.count(b"HTTP/1.1 ") == 1, received[:400]
    assert received.startswith(b"HTTP/1.1 200 ")
    assert [event["RoomSid"] for event in everything.got()] == ["RM1"]


def test_a_get_with_a_body_and_no_query_is_400_its_body_unused(
    listener: twilio.Listener, everything: Everything
) -> None:
    """Guards against a GET's body standing for its parameters: it is not signed so."""
    body = encode_form(unknown_params())
    request = get_request(
        listener,
        "/",
        extra=b"Content-Type: %s\r\nContent-Length: %d\r\n" % (FORM.encode(), len(body)),
        body=body,
    )
    status, _, _ = exchange(listener, request)
    assert status == 400
    assert everything.got() == []


def test_a_get_announcing_a_huge_body_is_answered_without_reading_it(
    listener: twilio.Listener, everything: Everything
) -> None:
    """Guards against a GET skipping the body limit: a declared terabyte is not
    waited for (the query is all there is) and the connection ends."""
    request = get_request(
        listener, "/?RoomSid=RM1", extra=b"Content-Length: 1000000000000\r\n", body=b"x" * 100
    )
    with socket.create_connection(("127.0.0.1", listener.port), timeout=20.0) as sock:
        sock.sendall(request)
        received = closed_by_server(sock)
    assert received.count(b"HTTP/1.1 ") == 1
    assert received.split(b" ", 2)[1] in (b"200", b"408", b"413")
    assert_still_serving(listener)


@pytest.mark.parametrize(
    "signature",
    ["\u00ff\u00fe\u0080", "=" * 4000, ""],
    ids=["latin-1-bytes", "4000-characters", "empty"],
)
def test_a_get_with_a_garbage_signature_is_403(
    listener: twilio.Listener, everything: Everything, signature: str
) -> None:
    """Guards against a signature header that is no base64 making a 500."""
    request = get_request(listener, "/?RoomSid=RM1", signature=signature)
    status, _, _ = exchange(listener, request)
    assert status == 403
    assert everything.got() == []


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE"])
def test_other_methods_at_a_services_path_are_405(method: str) -> None:
    """Guards against a service path answering (or dispatching) another method."""
    fallback = Everything()
    with running() as listener:
        listener.attach(fallback, path="/hooks/other")
        request = (
            f"{method} /hooks/other?RoomSid=RM1 HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode("ascii")
        with socket.create_connection(("127.0.0.1", listener.port), timeout=20.0) as sock:
            sock.sendall(request)
            if method == "HEAD":
                status_line = sock.recv(65536).split(b"\r\n", 1)[0]
                status = int(status_line.split()[1])
                headers: dict[str, str] = {}
            else:
                status, headers, _ = read_answer(sock)
        assert status == 405
        if headers:
            assert headers["allow"] == "POST, GET"
        assert fallback.got() == []
        assert_still_serving(listener, "/hooks/other")


# -- Basic auth --------------------------------------------------------------------------
@pytest.fixture
def guarded(everything: Everything) -> Iterator[twilio.Listener]:
    with running(everything, basic_auth=(USER, PASSWORD)) as served:
        yield served


def credentials(user: str = USER, password: str = PASSWORD) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


@pytest.mark.parametrize(
    "authorization",
    [
        b"Basic",
        b"Basic ",
        b"Basic " + b"A" * 10_000,
        b"Basic \xff\xfe\x80\x85",
        b"\xc3\xa9 " + base64.b64encode(f"{USER}:{PASSWORD}".encode()),
        b"Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()),
        b"Basic " + base64.b64encode(f"{USER}:{PASSWORD}x".encode()),
        b"Basic " + base64.b64encode(f"{USER}\n:{PASSWORD}".encode()),
        b"Basic ====",
    ],
    ids=[
        "scheme-alone",
        "scheme-and-space",
        "10-kb",
        "non-ascii",
        "non-ascii-scheme",
        "other-scheme",
        "wrong-password",
        "newline-in-user",
        "padding-only",
    ],
)
def test_a_malformed_or_wrong_authorization_is_401_and_never_logged(
    guarded: twilio.Listener,
    everything: Everything,
    authorization: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against a hostile Authorization header making a 500, passing, or
    having its content (or the configured password) logged."""
    request = form_request(
        guarded, unknown_params(), extra=b"Authorization: " + authorization + b"\r\n"
    )
    status, headers, body = exchange(guarded, request)
    assert status == 401, body
    assert headers["connection"] == "close"
    assert PASSWORD.encode() not in body
    assert everything.got() == []
    assert_log_is_safe(caplog, PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    # The listener serves on, to the right credentials.
    right = form_request(guarded, unknown_params(), extra=b"Authorization: %s\r\n" % credentials())
    assert exchange(guarded, right)[0] == 200


@pytest.mark.parametrize("order", ["right-then-wrong", "wrong-then-right"])
def test_two_authorization_headers_are_never_a_500_nor_logged(
    guarded: twilio.Listener, order: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards against a repeated Authorization header crashing the precheck or
    leaking either value."""
    right, wrong = credentials(), credentials(password="guess")
    pair = (right, wrong) if order == "right-then-wrong" else (wrong, right)
    extra = b"".join(b"Authorization: " + value + b"\r\n" for value in pair)
    status, _, _ = exchange(guarded, form_request(guarded, unknown_params(), extra=extra))
    assert status in (200, 400, 401)
    assert_log_is_safe(caplog, PASSWORD, right.decode()[6:])


def test_a_get_with_hostile_credentials_is_401_before_its_query_is_read(
    guarded: twilio.Listener, everything: Everything
) -> None:
    """Guards against a GET skipping the credentials check (its query holds the
    parameters, so nothing else stops it)."""
    request = get_request(guarded, "/?RoomSid=RM1", extra=b"Authorization: Basic\r\n")
    assert exchange(guarded, request)[0] == 401
    request = get_request(guarded, "/?RoomSid=RM1", signature=None)
    assert exchange(guarded, request)[0] == 401
    assert everything.got() == []


# -- a signed JSON object: the fallback ------------------------------------------------
def test_a_json_object_with_a_200_kb_string_reaches_the_fallback_whole(
    listener: twilio.Listener, everything: Everything
) -> None:
    """Guards against a long value (under max_body_bytes) being cut or a 500."""
    value = "x" * 200_000
    answer = signed_json(listener.url, {"event_type": "click", "note": value}, TOKEN)
    assert_empty_twiml(answer)
    (event,) = everything.got()
    assert event["note"] == value


def test_a_json_object_with_ten_thousand_keys_is_413(
    listener: twilio.Listener, everything: Everything
) -> None:
    """Guards against max_params not holding for a JSON object."""
    answer = signed_json(listener.url, {f"k{n}": n for n in range(10_000)}, TOKEN)
    assert answer.status_code == 413
    assert everything.got() == []
    assert_still_serving(listener)


def test_an_empty_key_is_left_out_and_a_json_object_of_only_that_is_400(
    listener: twilio.Listener, everything: Everything
) -> None:
    """Guards against an empty parameter name reaching the event, and against a
    body with nothing usable being dispatched (it is refused, never a 500)."""
    assert_empty_twiml(signed_json(listener.url, {"": "blank", "event_type": "click"}, TOKEN))
    (event,) = everything.got()
    assert "" not in event
    assert event.params == (("event_type", "click"),)
    for nothing in ({"": "blank"}, {"a": None}, {"": None}):
        assert signed_json(listener.url, nothing, TOKEN).status_code == 400
    assert len(everything.got()) == 1


@pytest.mark.parametrize(
    ("depth", "status"), [(30, 200), (31, 400), (20_000, 400)], ids=["30", "31", "20000"]
)
def test_a_deeply_nested_json_object_is_bounded(
    listener: twilio.Listener, everything: Everything, depth: int, status: int
) -> None:
    """Guards against deep nesting overflowing a recursive step (a 500) or being
    dispatched past the depth limit (32 levels, the body counting as the first)."""
    nested = "[" * depth + "]" * depth
    # signed_json encodes with json.dumps, which recurses: the text is made here.
    answer = post_json_text(listener.url, '{"event_type":"click","deep":' + nested + "}")
    assert answer.status_code == status, answer.text
    assert len(everything.got()) == (1 if status == 200 else 0)
    assert_still_serving(listener)


@pytest.mark.parametrize(
    "document",
    [
        '{"a":NaN}',
        '{"a":Infinity}',
        '{"\\ud800":"x"}',
        '{"a":"\\udfff"}',
        '{"a":1' + "0" * 5000 + "}",
    ],
    ids=["nan", "infinity", "surrogate-key", "surrogate-value", "5000-digit-integer"],
)
def test_a_json_object_that_is_not_strict_json_is_400(
    listener: twilio.Listener, everything: Everything, document: str
) -> None:
    """Guards against non-JSON (NaN, lone surrogates, huge integers) passing into
    an event, where encoding it later would fail."""
    answer = post_json_text(listener.url, document)
    assert answer.status_code == 400
    assert everything.got() == []


def test_a_json_object_with_hostile_keys_is_warned_about_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against the unrecognised-webhook warning writing a key's line
    break, escape or separator raw (a forged log line)."""
    caplog.set_level(logging.DEBUG, LOGGER)
    with running() as listener:
        document = dict.fromkeys(HOSTILE_NAMES, "v")
        assert_empty_twiml(signed_json(listener.url, document, TOKEN))
    (warning,) = shown_names(caplog)
    assert "Line\\nBreak" in warning
    assert "Esc\\x1b[31mRed" in warning
    assert_log_is_safe(caplog)


def test_a_json_object_at_a_path_goes_to_that_paths_fallback(
    everything: Everything,
) -> None:
    """Guards against a JSON object at a service path reaching another path's
    fallback (or none)."""
    own = Everything()
    with running(everything) as listener:
        listener.attach(own, path="/links")
        url = listener.url.rstrip("/") + "/links"
        assert_empty_twiml(signed_json(url, {"event_type": "click", "sms_sid": "SM1"}, TOKEN))
    (event,) = own.got()
    assert event.path == "/links"
    assert event["sms_sid"] == "SM1"
    assert everything.got() == []


# -- the unrecognised-webhook warning --------------------------------------------------
def test_a_form_whose_parameter_names_are_hostile_is_warned_about_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against parameter names forging log lines through the warning that
    names them."""
    caplog.set_level(logging.DEBUG, LOGGER)
    with running() as listener:
        for value in ("first", "second"):  # the same shape: WARNING, then DEBUG
            params = [(name, value) for name in HOSTILE_NAMES]
            assert_empty_twiml(signed_post(listener.url, params, TOKEN))
    warnings = shown_names(caplog)
    assert len(warnings) == 2
    assert "Sep\\u2028Arator" in warnings[0]
    assert_log_is_safe(caplog)


def test_the_warning_about_an_unrecognised_webhook_is_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against a parameter name of 100 KB being copied whole into a log
    record: what is read from a request is bounded before it is logged."""
    with running() as listener:
        params = [("N" * 100_000, "v"), ("RoomSid", "RM1")]
        assert_empty_twiml(signed_post(listener.url, params, TOKEN))
    (warning,) = shown_names(caplog)
    assert len(warning) < 10_000, f"a warning of {len(warning)} characters"


def test_a_known_kind_without_its_service_is_warned_about_with_its_sid_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against the new families' SIDs (ConferenceSid, ResourceSid...)
    forging a log line through the "no service is attached" warning."""
    forged = "CF1\n2026-01-01 00:00:00,000 CRITICAL twilio_trigger: FORGED\x1b[2J"
    with running() as listener:
        assert_empty_twiml(signed_post(listener.url, conference_params(sid=forged), TOKEN))
        params = taskrouter_params("task.created", ResourceSid="WT\u2028forged")
        assert signed_post(listener.url, params, TOKEN).status_code == 204
    assert_log_is_safe(caplog)


# -- Conversations pre-events: what a callback answers ---------------------------------
class Moderator(twilio.ConversationsService):
    """A pre-event callback whose answer each test chooses."""

    def __init__(self) -> None:
        self.answer: object = None
        self.seen: list[twilio.ConversationsEvent] = []

    def on_message_add(self, event: twilio.ConversationsEvent) -> object:
        self.seen.append(event)
        answer = self.answer
        if callable(answer):
            answer = answer(event)
        if isinstance(answer, BaseException):
            raise answer
        return answer


@pytest.fixture
def moderator() -> Moderator:
    return Moderator()


@pytest.fixture
def conversations(moderator: Moderator) -> Iterator[twilio.Listener]:
    with running(moderator, deduplicate=False) as served:
        yield served


def test_a_reject_reason_with_control_characters_is_sent_safe(
    conversations: twilio.Listener, moderator: Moderator, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards against a reason quoting hostile text (the message's body) sending
    control characters, escapes or bidi overrides back to Twilio's caller."""
    moderator.answer = lambda event: twilio.Reject(f"refused: {event.body}")
    body = "bad\r\nX-Injected: 1\x1b[31m\x00\u202eevil\u2028end" + "!" * 2000
    answer = signed_post(conversations.url, conversations_params("onMessageAdd", Body=body), TOKEN)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.content.decode("utf-8")
    assert "X-Injected" not in answer.headers
    assert len(text) <= 501
    raw = sorted({f"U+{ord(c):04X}" for c in text.rstrip("\n") if c in UNSAFE})
    assert raw == [], f"the 403 body carries {raw}: {text[:80]!r}"
    assert_log_is_safe(caplog)


@pytest.mark.parametrize(
    "attributes",
    ['{"why":"\\ud800"}', '{"why":NaN}', '{"why":"\\udc00x"}'],
    ids=["lone-high-surrogate", "nan", "lone-low-surrogate"],
)
def test_a_reject_quoting_the_attributes_is_a_403_not_a_500(
    conversations: twilio.Listener,
    moderator: Moderator,
    attributes: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against a value parsed from ``Attributes`` (signed, but written by
    a chat user) turning the callback's rejection into a 500."""
    moderator.answer = lambda event: twilio.Reject(
        f"refused: {(event.attributes or {}).get('why')}"
    )
    params = conversations_params("onMessageAdd", Attributes=attributes)
    answer = signed_post(conversations.url, params, TOKEN)
    assert answer.status_code == 403, answer.text
    assert_no_error_logged(caplog)


@pytest.mark.parametrize(
    "attributes",
    ['{"why":"\\ud800"}', '{"why":NaN}', '{"why":-Infinity}'],
    ids=["lone-surrogate", "nan", "infinity"],
)
def test_echoing_the_attributes_back_is_never_a_500(
    conversations: twilio.Listener,
    moderator: Moderator,
    attributes: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guards against ``event.attributes`` holding what is not JSON (NaN, a lone
    surrogate), which the strict JSON answer then cannot encode: a 500 the
    sender of the message chose."""
    moderator.answer = lambda event: {"attributes": event.attributes}
    params = conversations_params("onMessageAdd", Attributes=attributes)
    answer = signed_post(conversations.url, params, TOKEN)
    assert answer.status_code == 200, answer.text
    json.loads(answer.content.decode("utf-8"))
    assert_no_error_logged(caplog)


def test_a_huge_reply_is_sent_whole_and_a_key_that_is_not_a_str_is_a_500(
    conversations: twilio.Listener, moderator: Moderator, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards against a big reply being cut, and a reply the rules refuse (a key
    that is not a field Twilio lets change) crashing the listener: it is the
    callback's failure (500, which Twilio takes as a rejection), told escaped."""
    moderator.answer = {"body": "b" * 1_000_000}
    params = conversations_params("onMessageAdd")
    answer = signed_post(conversations.url, params, TOKEN)
    assert answer.status_code == 200
    assert json.loads(answer.content) == {"body": "b" * 1_000_000}
    for refused in ({1: "x"}, {("body",): "x"}, {"body\n": "x"}, {"body": object()}):
        moderator.answer = refused
        answer = signed_post(conversations.url, params, TOKEN)
        assert answer.status_code == 500
        assert "Traceback" not in answer.text
    assert_log_is_safe(caplog)
    moderator.answer = None
    answer = signed_post(conversations.url, params, TOKEN)
    assert answer.status_code == 200
    assert answer.content == b"{}"


@pytest.mark.parametrize(
    "attributes",
    [
        "[" * 100 + "]" * 100,
        '{"a":' * 100 + "1" + "}" * 100,
        json.dumps([1] * 30_000),
        "NaN",
        "[" * 40_000,
        '"' + "s" * 100_000 + '"',
        "1" * 5000,
    ],
    ids=["100-deep-list", "100-deep-object", "30000-items", "nan", "unclosed-40000", "str", "int"],
)
def test_hostile_attributes_read_as_none_or_a_mapping_never_an_error(
    conversations: twilio.Listener, moderator: Moderator, attributes: str
) -> None:
    """Guards against parsing ``Attributes`` and ``Media`` raising in the callback."""
    read: list[object] = []

    def reads(event: twilio.ConversationsEvent) -> None:
        read.extend([event.attributes, event.media, event.messaging_binding, event.index])
        read.extend([event.date_created, event.date_updated, dict(event.query)])

    moderator.answer = reads
    # Media too, when both fit in the body (percent-encoding triples "[").
    media = attributes if len(attributes) < 10_000 else "[]"
    params = conversations_params("onMessageAdd", Attributes=attributes, Media=media)
    answer = signed_post(conversations.url, params, TOKEN)
    assert answer.status_code == 200, answer.text
    assert read[0] is None or isinstance(read[0], Mapping)
    assert read[1] == () or isinstance(read[1], tuple)


# -- TaskRouter and conference fields ----------------------------------------------------
class Reads(twilio.TaskRouterService):
    """Reads every typed field of a task.created, as a callback may."""

    def __init__(self) -> None:
        self.values: list[dict[str, object]] = []

    def on_task_created(self, event: twilio.TaskRouterEvent) -> None:
        names = [n for n in dir(type(event)) if not n.startswith("_")]
        self.values.append({name: getattr(event, name) for name in names})


@pytest.mark.parametrize(
    "timestamp",
    [str(10**30), "-1", "1e10", "NaN", "999999999999", "99999999999", "", " 12 ", "٣٣٣", "0x10"],
)
def test_a_taskrouter_timestamp_of_any_shape_reads_without_error(timestamp: str) -> None:
    """Guards against a Timestamp that overflows, is negative, or is no number
    raising when a callback reads it (a 500 TaskRouter would retry)."""
    reads = Reads()
    with running(reads) as listener:
        params = taskrouter_params(
            "task.created",
            Timestamp=timestamp,
            TimestampMs=timestamp,
            TaskAttributes="[" * 40_000,
            TaskAge=str(10**40),
        )
        answer = signed_post(listener.url, params, TOKEN)
    assert answer.status_code == 204
    (values,) = reads.values
    assert values["task_attributes"] is None
    assert values["task_age"] is None


class Rooms(twilio.ConferenceService):
    def __init__(self, name: str = "") -> None:
        self.name = name
        self.values: list[dict[str, object]] = []
        self.events: list[twilio.ConferenceEvent] = []
        self.lock = threading.Lock()

    def on_participant_join(self, event: twilio.ConferenceEvent) -> None:
        names = [n for n in dir(type(event)) if not n.startswith("_")]
        with self.lock:
            self.values.append({name: getattr(event, name) for name in names})
            self.events.append(event)

    def got(self) -> list[twilio.ConferenceEvent]:
        with self.lock:
            return list(self.events)


@pytest.mark.parametrize(
    "timestamp",
    [
        "garbage",
        "Tue, 14 Nov 0000 18:30:00 +0000",
        "Tue, 14 Nov 99999999999999999999 18:30:00 +0000",
        "Tue, 99 Nov 2023 99:99:99 +9999",
        "\x00",
        "",
        "1699986600",
    ],
)
def test_a_conference_timestamp_that_is_garbage_reads_without_error(timestamp: str) -> None:
    """Guards against an unparseable Timestamp raising in the callback."""
    rooms = Rooms()
    with running(rooms) as listener:
        params = conference_params("participant-join", Timestamp=timestamp, SequenceNumber="9" * 40)
        assert_empty_twiml(signed_post(listener.url, params, TOKEN))
    (values,) = rooms.values
    # Read without raising; a two-digit or zero year reads as email.utils reads it.
    assert values["timestamp"] is None or isinstance(values["timestamp"], datetime)
    if timestamp in ("garbage", "\x00", "", "1699986600"):
        assert values["timestamp"] is None
    assert values["sequence_number"] is None


# -- services at paths -------------------------------------------------------------------
def test_a_stored_events_query_with_colons_and_length_reaches_its_paths_service(
    tmp_path: Path,
) -> None:
    """Guards against the stored path header (``twilio-trigger-path``) being
    broken by what a query may hold (``:``, ``: ``, escapes, 20 KB), so that the
    worker would hand the event to another path's service, or lose its query."""
    support, sales = Rooms("support"), Rooms("sales")
    query = (
        "team=a:b&sep=x:+y&enc=%3A%20%0A%0D&twilio-trigger-path=/&long="
        + "q" * 20_000
        + "&e=%C3%A9"
    )
    with running(support, inbox=f"sqlite:///{tmp_path}/e.db") as listener:
        listener.attach(sales, path="/conferences/sales")
        target = "/conferences/sales?" + query
        params = conference_params("participant-join")
        status, _, _ = exchange(listener, form_request(listener, params, target=target))
        assert status == 200
        wait_until(lambda: len(sales.got()) == 1, "the worker dispatched the stored event")
    assert support.got() == []
    (event,) = sales.got()
    assert event.path == "/conferences/sales"
    assert event.query["team"] == ("a:b",)
    assert event.query["sep"] == ("x: y",)
    assert event.query["enc"] == (": \n\r",)
    assert event.query["twilio-trigger-path"] == ("/",)
    assert event.query["long"] == ("q" * 20_000,)
    assert event.query["e"] == ("é",)


def test_a_raw_non_ascii_query_is_never_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards against raw bytes past ASCII (NEL 0x85 among them) in a request
    target breaking the stored path or the log."""
    rooms = Rooms()
    with running(inbox=f"sqlite:///{tmp_path}/e.db") as listener:
        listener.attach(rooms, path="/rooms")
        target = "/rooms?x=\u00e9\u0085y"
        params = conference_params("participant-join")
        status, _, _ = exchange(listener, form_request(listener, params, target=target))
        assert status in (200, 400)
        if status == 200:
            wait_until(lambda: len(rooms.got()) == 1, "the stored event dispatched")
            assert rooms.got()[0].path == "/rooms"
        assert_still_serving(listener, "/rooms")
    assert_log_is_safe(caplog)


class Menu(twilio.CallStatusService):
    def __init__(self) -> None:
        self.events: list[twilio.GatherEvent] = []

    def on_gather(self, event: twilio.GatherEvent) -> str:
        self.events.append(event)
        return "<Response><Say>menu</Say></Response>"


@pytest.mark.parametrize("spelling", ["/voice/%6Denu", "/voice/m%65nu", "/voice%2Fmenu"])
def test_a_path_spelt_with_escapes_is_verified_over_what_was_received(spelling: str) -> None:
    """Guards against a request to another spelling of a service's path being
    checked against a URL it was not sent to: signed over the spelling received,
    it reaches the path's service; signed over the plain path, it is refused."""
    menu = Menu()
    with running() as listener:
        listener.attach(menu, path="/voice/menu")
        params = gather_params("digits")
        status, _, body = exchange(listener, form_request(listener, params, target=spelling))
        if spelling == "/voice%2Fmenu":
            # The decoded path is /voice/menu, but "%2F" is no separator: either
            # way, never a 500.
            assert status in (200, 403, 404), body
        else:
            assert status == 200, body
            assert b"<Say>menu</Say>" in body
            assert [event.path for event in menu.events] == ["/voice/menu"]
        # Signed over /voice/menu, sent to the other spelling: not the URL signed.
        body_bytes = encode_form(params)
        request = (
            f"POST {spelling} HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n"
            f"Content-Type: {FORM}\r\nContent-Length: {len(body_bytes)}\r\n"
            f"X-Twilio-Signature: {sign(url_of(listener, '/voice/menu'), params, TOKEN)}\r\n\r\n"
        ).encode("ascii") + body_bytes
        refused, _, _ = exchange(listener, request)
        assert refused in (403, 404)
        assert_still_serving(listener, "/voice/menu")


@pytest.mark.parametrize("path", ["/voice/menu/", "/VOICE/menu", "//voice/menu", "/voice/menu%00"])
def test_near_spellings_of_a_service_path_are_not_found(path: str) -> None:
    """Guards against near spellings of a path reaching its service unsigned for it."""
    menu = Menu()
    with running() as listener:
        listener.attach(menu, path="/voice/menu")
        status, _, _ = exchange(
            listener, form_request(listener, gather_params("digits"), target=quote(path, "/%"))
        )
    assert status == 404
    assert menu.events == []
