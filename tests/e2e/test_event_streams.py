"""Event Streams webhook sinks over real HTTP: a JSON array of CloudEvents per POST.

Each body is signed as Twilio signs it: ``bodySHA256=<hex SHA-256 of the body>``
is appended to the URL, and twilio-python's ``RequestValidator`` signs that URL
alone; every signature is also checked with ``RequestValidator.validate``.  The
CloudEvents are written out here from Twilio's documented examples, not taken
from the package's test kit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio

from ._support import (
    OTHER_TOKEN,
    TOKEN,
    CallRecorder,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    records,
    running,
    wait_until,
)

ACCOUNT = "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978"
UNKNOWN_TYPE = "com.twilio.studio.flow.execution.started"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

CloudEvent = dict[str, Any]


def event_id() -> str:
    return str(uuid.uuid4())


def envelope(kind: str, data: object, *, id: str | None = None) -> CloudEvent:
    return {
        "specversion": "1.0",
        "type": kind,
        "source": f"/2010-04-01/Accounts/{ACCOUNT}/Messages",
        "id": id or event_id(),
        "dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/4",
        "datacontenttype": "application/json",
        "time": "2024-11-21T18:30:00.000Z",
        "data": data,
    }


def message_event(status: str, *, sid: str | None = None, **data: object) -> CloudEvent:
    """``com.twilio.messaging.message.<status>`` (Messaging.MessageStatus)."""
    fields: dict[str, object] = {
        "messageSid": sid or "SM" + uuid.uuid4().hex,
        "accountSid": ACCOUNT,
        "from": "+14155550143",
        "to": "+15558675310",
        "messageStatus": status.upper(),
        "numberOfSegments": 1,
        "timestamp": "2024-11-21T18:30:00.000Z",
        **data,
    }
    return envelope(f"com.twilio.messaging.message.{status}", fields)


def inbound_event(body: str = "Where is my parcel?", **data: object) -> CloudEvent:
    """``com.twilio.messaging.inbound-message.received`` (Messaging.InboundMessageV1)."""
    fields: dict[str, object] = {
        "messageSid": "SM" + uuid.uuid4().hex,
        "accountSid": ACCOUNT,
        "from": "+15558675310",
        "to": "+14155550143",
        "body": body,
        "numMedia": 0,
        "numSegments": 1,
        "timestamp": "2024-11-21T18:30:00.000Z",
        **data,
    }
    return envelope("com.twilio.messaging.inbound-message.received", fields)


def call_event(
    status: str = "completed",
    *,
    prefix: str = "com.twilio.voice.status-callback.call.",
    **parameters: str,
) -> CloudEvent:
    """``com.twilio.voice.status-callback.call.<status>`` (Voice.WebhookEvent)."""
    sid = "CA" + uuid.uuid4().hex
    sent = {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "CallStatus": status,
        "CallbackSource": "call-progress-events",
        "Direction": "outbound-api",
        "From": "+14155550143",
        "To": "+15558675310",
        "SequenceNumber": "3",
        "CallDuration": "47",
        "Timestamp": "Thu, 21 Nov 2024 18:30:00 +0000",
        **parameters,
    }
    data = {
        "sid": sid,
        "timestamp": "2024-11-21T18:30:00.000Z",
        "eventSid": "EV" + uuid.uuid4().hex,
        "request": {"method": "POST", "url": "https://hooks.example.com/", "parameters": sent},
        "response": {"responseCode": 200, "contentType": "text/xml", "responseBody": ""},
    }
    return envelope(prefix + status, data)


def unknown_event() -> CloudEvent:
    return envelope(UNKNOWN_TYPE, {"executionSid": "FN" + uuid.uuid4().hex})


def encode(events: Sequence[object]) -> bytes:
    return json.dumps(list(events)).encode("utf-8")


def signed_url(url: str, body: bytes) -> str:
    """*url* with the body's ``bodySHA256``, as Twilio requests it."""
    return f"{url}?bodySHA256={hashlib.sha256(body).hexdigest()}"


def oracle_signature(url: str, token: str) -> str:
    return str(RequestValidator(token).compute_signature(url, {}))


def post_body(
    url: str,
    body: bytes,
    *,
    token: str = TOKEN,
    sign_body: bytes | None = None,
    content_type: str = JSON,
) -> httpx.Response:
    """POST *body* as Twilio would, signed over the ``bodySHA256`` of *sign_body*
    (by default *body* itself); the oracle must agree when they are the same."""
    target = signed_url(url, body if sign_body is None else sign_body)
    signature = oracle_signature(target, token)
    if sign_body is None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            assert RequestValidator(token).validate(target, text, signature)
    headers = {
        "Content-Type": content_type,
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "User-Agent": "Twilio-Event-Streams/1.0",
    }
    return httpx.post(target, content=body, headers=headers, timeout=10.0)


def post_events(url: str, events: Sequence[object], **options: Any) -> httpx.Response:
    return post_body(url, encode(events), **options)


def callbacks(recorder: Recorder) -> list[tuple[str, str]]:
    with recorder.lock:
        return [(call.kind, call.callback) for call in recorder.calls]


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def listener(recorder: Recorder) -> Iterator[twilio.Listener]:
    with running(SmsRecorder(recorder), CallRecorder(recorder)) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _fresh(recorder: Recorder) -> Iterator[None]:
    recorder.reset()
    yield
    recorder.reset()


# -- a batch of several types ----------------------------------------------------------
def test_batch_of_several_types_runs_each_callback_once(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    delivered = message_event("delivered")
    inbound = inbound_event("Where is my parcel? 📦")
    completed = call_event("completed")
    batch = [delivered, inbound, unknown_event(), completed, dict(delivered)]  # one twice
    body = encode(batch)
    with running(SmsRecorder(recorder), CallRecorder(recorder)) as listener:
        assert_empty_twiml(post_body(listener.url, body))
        assert callbacks(recorder) == [
            ("sms", "on_delivered"),
            ("sms", "on_received"),
            ("call", "on_completed"),
        ]
        # The whole batch again (Twilio retries a batch it saw fail): nothing runs.
        assert_empty_twiml(post_body(listener.url, body))
        assert len(callbacks(recorder)) == 3
    by_callback = {call.callback: call.event for call in recorder.calls}
    message = by_callback["on_delivered"]
    assert isinstance(message, twilio.SmsStatusChangeEvent)
    assert message.message_sid == delivered["data"]["messageSid"]
    assert message.status == "delivered"
    assert message.num_segments == 1
    assert message.from_ == "+14155550143"
    received = by_callback["on_received"]
    assert isinstance(received, twilio.SmsStatusChangeEvent)
    assert received.body == "Where is my parcel? 📦"
    assert received.sid == inbound["data"]["messageSid"]
    call = by_callback["on_completed"]
    assert isinstance(call, twilio.CallStatusEvent)
    assert call.call_sid == completed["data"]["sid"]
    assert call.call_duration == 47
    assert call.callback_source == "call-progress-events"
    unknown = [r for r in records(caplog, logging.WARNING) if UNKNOWN_TYPE in r.getMessage()]
    assert len(unknown) == 1, [r.getMessage() for r in unknown]
    assert records(caplog, logging.ERROR) == []


def test_events_of_a_batch_run_in_order(listener: twilio.Listener, recorder: Recorder) -> None:
    sid = "SM" + uuid.uuid4().hex
    batch = [message_event(s, sid=sid) for s in ("queued", "sent", "delivered", "read")]
    assert_empty_twiml(post_events(listener.url, batch))
    assert [c for _, c in callbacks(recorder)] == [
        "on_queued",
        "on_sent",
        "on_delivered",
        "on_read",
    ]
    assert {call.event.sid for call in recorder.calls} == {sid}


def test_an_empty_batch_is_acknowledged(listener: twilio.Listener, recorder: Recorder) -> None:
    assert_empty_twiml(post_events(listener.url, []))
    assert recorder.calls == []


def test_the_cloudevents_batch_media_type_is_accepted(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    response = post_events(
        listener.url,
        [message_event("sent")],
        content_type="application/cloudevents-batch+json; charset=utf-8",
    )
    assert_empty_twiml(response)
    assert callbacks(recorder) == [("sms", "on_sent")]


def test_the_same_event_in_two_batches_runs_once(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    shared = message_event("delivered")
    assert_empty_twiml(post_events(listener.url, [shared, message_event("sent")]))
    assert_empty_twiml(post_events(listener.url, [message_event("queued"), shared]))
    assert sorted(c for _, c in callbacks(recorder)) == ["on_delivered", "on_queued", "on_sent"]


# -- signatures ---------------------------------------------------------------------
def test_a_body_tampered_after_signing_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    signed = encode([message_event("delivered", body="Your code is 482910")])
    tampered = signed.replace(b"482910", b"000000")
    url = signed_url(listener.url, signed)
    signature = oracle_signature(url, TOKEN)
    assert not RequestValidator(TOKEN).validate(url, tampered.decode(), signature)
    response = post_body(listener.url, tampered, sign_body=signed)
    assert response.status_code == 403
    assert recorder.calls == []


def test_a_signature_over_the_url_without_body_sha256_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    body = encode([message_event("delivered")])
    signature = oracle_signature(listener.url, TOKEN)
    headers = {"Content-Type": JSON, "X-Twilio-Signature": signature}
    response = httpx.post(listener.url, content=body, headers=headers, timeout=10.0)
    assert response.status_code == 403
    # ...and with an unrelated query string signed instead of the hash.
    url = listener.url + "?source=event-streams"
    headers["X-Twilio-Signature"] = oracle_signature(url, TOKEN)
    response = httpx.post(url, content=body, headers=headers, timeout=10.0)
    assert response.status_code == 403
    assert recorder.calls == []


def test_a_batchs_signature_never_passes_for_a_get_or_a_form_of_nothing(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    # A batch is signed over its URL alone (bodySHA256 in the query); so would be a
    # GET of that URL, and a form whose one parameter has no name and no value.
    # Neither is Twilio's: refused before its signature is checked.
    url = signed_url(listener.url, encode([message_event("delivered")]))
    signature = oracle_signature(url, TOKEN)
    headers = {"X-Twilio-Signature": signature}
    got = httpx.get(url, headers=headers, timeout=10.0)
    form = httpx.post(url, content=b"=", headers={**headers, "Content-Type": FORM}, timeout=10.0)
    for response in (got, form):
        assert response.status_code == 400, response.text
        assert "never in a Twilio webhook" in response.text
    assert recorder.calls == []


def test_a_signature_with_another_token_is_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    response = post_events(listener.url, [message_event("delivered")], token=OTHER_TOKEN)
    assert response.status_code == 403
    assert recorder.calls == []


def test_a_missing_signature_is_refused(listener: twilio.Listener, recorder: Recorder) -> None:
    body = encode([message_event("delivered")])
    response = httpx.post(
        signed_url(listener.url, body), content=body, headers={"Content-Type": JSON}, timeout=10.0
    )
    assert response.status_code == 403
    assert recorder.calls == []


def test_a_signature_with_the_port_dropped_is_accepted(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    # Twilio may sign the URL without its port; the listener tries both forms.
    body = encode([message_event("delivered")])
    url = signed_url(listener.url, body)
    without_port = url.replace(f":{listener.port}", "")
    headers = {"Content-Type": JSON, "X-Twilio-Signature": oracle_signature(without_port, TOKEN)}
    assert_empty_twiml(httpx.post(url, content=body, headers=headers, timeout=10.0))
    assert callbacks(recorder) == [("sms", "on_delivered")]


# -- bad input: refused whole -------------------------------------------------------
GOOD = [message_event("delivered"), call_event("completed")]


def _without(event: CloudEvent, name: str) -> CloudEvent:
    return {key: value for key, value in event.items() if key != name}


BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "object-not-array": (json.dumps(message_event("sent")).encode(), "array"),
    "string-not-array": (b'"com.twilio.messaging.message.sent"', "array"),
    "no-type": (encode([_without(message_event("sent"), "type")]), "no type"),
    "no-id": (encode([_without(message_event("sent"), "id")]), "no id"),
    "empty-id": (encode([{**message_event("sent"), "id": ""}]), "no id"),
    "numeric-type": (encode([{**message_event("sent"), "type": 7}]), "type"),
    "element-not-object": (encode(["com.twilio.messaging.message.sent"]), "not a JSON object"),
    "invalid-utf8": (b'[{"id": "\xff\xfe", "type": "x"}]', "UTF-8"),
    "not-json": (b"MessageSid=SM123&MessageStatus=sent", "not valid JSON"),
    "truncated-json": (encode(GOOD)[:-7], "not valid JSON"),
    "nan": (b'[{"id": "1", "type": "t", "data": {"n": NaN}}]', "not valid JSON"),
    "bad-after-good": (encode([*GOOD, _without(message_event("sent"), "id")]), "no id"),
    "no-type-after-good": (encode([*GOOD, _without(call_event(), "type")]), "no type"),
    "data-not-object-after-good": (
        encode([*GOOD, {**message_event("sent"), "data": "MessageStatus=sent"}]),
        "no data object",
    ),
    "non-array-after-good-unknown": (encode([unknown_event(), *GOOD, 17]), "not a JSON object"),
    "lone-surrogate": (b'[{"id": "1", "type": "t", "data": {"body": "\\ud83d"}}]', "surrogate"),
    "too-deep": (b'[{"id": "1", "type": "t", "data": ' + b"[" * 40 + b"]" * 40 + b"}]", "deeply"),
    "too-many": (encode([message_event("sent") for _ in range(101)]), "too many"),
}


@pytest.mark.parametrize(("body", "says"), list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_a_batch_with_bad_input_is_refused_whole(
    listener: twilio.Listener, recorder: Recorder, body: bytes, says: str
) -> None:
    response = post_body(listener.url, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert says in response.text, response.text
    assert len(response.content) < 200
    assert "Traceback" not in response.text
    assert recorder.calls == []


def test_the_refusal_names_the_bad_event_by_index(listener: twilio.Listener) -> None:
    response = post_events(listener.url, [*GOOD, _without(message_event("sent"), "id")])
    assert response.status_code == 400
    assert "CloudEvent 2" in response.text


def test_a_batch_refused_as_bad_input_leaves_its_good_events_to_run_later(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    good = message_event("delivered")
    assert post_events(listener.url, [good, {"id": "x"}]).status_code == 400
    assert recorder.calls == []
    # Nothing of it was marked done: sent again, fixed, the good event runs.
    assert_empty_twiml(post_events(listener.url, [good]))
    assert callbacks(recorder) == [("sms", "on_delivered")]


# -- failures ----------------------------------------------------------------------
def test_a_failing_event_makes_the_batch_500_and_only_it_runs_again(
    listener: twilio.Listener, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    first, failing, last = message_event("sent"), message_event("undelivered"), call_event()
    body = encode([first, failing, last])
    recorder.fail["sms.on_undelivered"] = "raise"

    response = post_body(listener.url, body)
    assert response.status_code == 500
    assert "exploded" not in response.text
    assert [c for _, c in callbacks(recorder)] == ["on_sent", "on_undelivered", "on_completed"]
    [error] = records(caplog, logging.ERROR)
    assert "on_undelivered" in error.getMessage()

    # Resent while still failing: only the failed event runs again.
    assert post_body(listener.url, body).status_code == 500
    assert [c for _, c in callbacks(recorder)].count("on_undelivered") == 2

    # Resent once it works: it runs a third time, the others still once.
    recorder.fail.clear()
    assert_empty_twiml(post_body(listener.url, body))
    counted = [c for _, c in callbacks(recorder)]
    assert counted.count("on_sent") == 1
    assert counted.count("on_completed") == 1
    assert counted.count("on_undelivered") == 3

    # And once more: everything is done, nothing runs.
    assert_empty_twiml(post_body(listener.url, body))
    assert len(callbacks(recorder)) == 5


def test_a_returned_exception_fails_the_batch_too(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    recorder.fail["call.on_completed"] = "return"
    response = post_events(listener.url, [call_event(), message_event("read")])
    assert response.status_code == 500
    assert [c for _, c in callbacks(recorder)] == ["on_completed", "on_read"]


# -- replies cannot be sent -------------------------------------------------------------
class Replying(twilio.SmsStatusService):
    def __init__(self) -> None:
        self.bodies: list[str | None] = []
        self.lock = threading.Lock()

    def on_received(self, event: twilio.SmsStatusChangeEvent) -> str:
        with self.lock:
            self.bodies.append(event.body)
        return "Thanks, we'll look into it"


def test_a_reply_to_an_inbound_cloudevent_is_dropped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Replying()
    with running(service) as listener:
        assert_empty_twiml(post_events(listener.url, [inbound_event("first")]))
        assert_empty_twiml(post_events(listener.url, [inbound_event("second")]))
    assert service.bodies == ["first", "second"]
    dropped = [r for r in records(caplog, logging.WARNING) if "cannot be sent" in r.getMessage()]
    assert len(dropped) == 1, [r.getMessage() for r in dropped]
    assert "Replying.on_received" in dropped[0].getMessage()
    assert records(caplog, logging.ERROR) == []


def test_a_call_cloudevent_without_callback_source_is_not_answered_with_twiml(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Answering(twilio.CallStatusService):
        def __init__(self) -> None:
            self.count = 0

        def on_ringing(self, event: twilio.CallStatusEvent) -> str:
            self.count += 1
            return "<Response><Say>Hello</Say></Response>"

    service = Answering()
    event = call_event("ringing", Direction="inbound")
    del event["data"]["request"]["parameters"]["CallbackSource"]
    with running(service) as listener:
        assert_empty_twiml(post_events(listener.url, [event]))
    assert service.count == 1
    # Its type makes it a status callback: what its callback returns means nothing,
    # as for a status callback's POST (no call waits for it).
    assert not [r for r in records(caplog, logging.WARNING) if "cannot be sent" in r.getMessage()]


@pytest.mark.parametrize("inbox", [False, True])
def test_a_call_cloudevent_with_empty_parameters_is_a_status_callback(
    tmp_path: Path, inbox: bool
) -> None:
    # Twilio's own example of the type carries no request parameters: it is a
    # status callback all the same (its type says so), so a copy with the same
    # id runs once, and an earlier status after it is stale.
    recorder = Recorder()
    completed = call_event("completed")
    completed["data"]["request"]["parameters"] = {}
    ringing = call_event("ringing")
    ringing["data"]["request"]["parameters"] = {}
    ringing["data"]["sid"] = completed["data"]["sid"]
    options: dict[str, Any] = {"inbox": f"sqlite:///{tmp_path}/inbox.db"} if inbox else {}
    with running(CallRecorder(recorder), **options) as listener:
        for _ in range(2):
            assert_empty_twiml(post_events(listener.url, [completed]))
        wait_until(lambda: len(recorder.calls) >= 1, "on_completed to run")
        assert_empty_twiml(post_events(listener.url, [ringing]))
        wait_until(lambda: len(recorder.calls) >= 2, "on_ringing to run")
        assert_empty_twiml(post_events(listener.url, [completed]))  # after it ran too
    assert [(call.callback, call.event.stale) for call in recorder.calls] == [
        ("on_completed", False),
        ("on_ringing", True),
    ]
    assert recorder.calls[0].event["CallbackSource"] == "call-progress-events"


def test_the_deprecated_voice_webhook_types_are_call_events(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    event = call_event("completed", prefix="com.twilio.voice.webhook.status-callback.call.")
    assert_empty_twiml(post_events(listener.url, [event]))
    invocation = recorder.only()
    assert (invocation.kind, invocation.callback) == ("call", "on_completed")
    assert invocation.event.sid == event["data"]["sid"]


def test_answered_call_event_reaches_on_in_progress(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    event = call_event("answered", CallStatus="in-progress", SequenceNumber="2")
    assert_empty_twiml(post_events(listener.url, [event]))
    invocation = recorder.only()
    assert invocation.callback == "on_in_progress"
    assert invocation.event.status == "in-progress"


# -- with an inbox ------------------------------------------------------------------------
def test_with_an_inbox_events_are_stored_once_and_dispatched_by_workers(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    recorder = Recorder()
    delivered, inbound, completed = message_event("delivered"), inbound_event(), call_event()
    body = encode([delivered, inbound, unknown_event(), completed, delivered])
    with running(
        SmsRecorder(recorder), CallRecorder(recorder), inbox=f"sqlite:///{db}"
    ) as listener:
        assert_empty_twiml(post_body(listener.url, body))
        assert_empty_twiml(post_body(listener.url, body))
        deadline = time.monotonic() + 10.0
        while len(callbacks(recorder)) < 3 or set(states(db)) != {"done"}:
            assert time.monotonic() < deadline, (callbacks(recorder), states(db))
            time.sleep(0.01)
    assert sorted(callbacks(recorder)) == [
        ("call", "on_completed"),
        ("sms", "on_delivered"),
        ("sms", "on_received"),
    ]
    # The CloudEvent of a type with no kind is stored too, for a FallbackService
    # (none here: acknowledged when its turn comes).
    assert len(states(db)) == 4


def states(db: Path) -> list[str]:
    if not db.exists():
        return []
    connection = sqlite3.connect(db)
    try:
        return [row[0] for row in connection.execute("SELECT state FROM events ORDER BY id")]
    finally:
        connection.close()


def test_an_event_with_more_data_fields_than_max_params_is_413() -> None:
    # As a form with more than max_params parameters: the batch is refused whole.
    recorder = Recorder()
    with running(SmsRecorder(recorder), max_params=50) as listener:
        padded = {f"Extra{n}": str(n) for n in range(60)}
        over = post_events(
            listener.url, [message_event("sent"), message_event("delivered", **padded)]
        )
        within = post_events(listener.url, [message_event("delivered")])
    assert over.status_code == 413
    assert "at most 50" in over.text
    assert within.status_code == 200
    assert [call.callback for call in recorder.calls] == ["on_delivered"]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=utf-8", 200),
        ('application/json; charset="UTF-8"', 200),
        ("application/json; charset=latin-1", 415),
        ("application/cloudevents-batch+json; charset=iso-8859-1", 415),
    ],
)
def test_a_json_batch_is_utf_8_or_refused_as_a_form_in_another_charset_is(
    listener: twilio.Listener, recorder: Recorder, content_type: str, status: int
) -> None:
    answer = post_events(listener.url, [message_event("delivered")], content_type=content_type)
    assert answer.status_code == status, answer.text
    assert len(recorder.calls) == (1 if status == 200 else 0)
