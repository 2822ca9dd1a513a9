"""Every callback over real HTTP: routing, typed events, answers, failures, logs.

One listener serves the whole module, with a message service and a call service
attached; tests whose assertions depend on log lines said once per listener get
a listener of their own.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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
    records,
    running,
)

#: (MessageStatus, the callback it must reach), spelled out rather than derived.
SMS_ROUTES = [
    ("accepted", "on_accepted"),
    ("queued", "on_queued"),
    ("sending", "on_sending"),
    ("sent", "on_sent"),
    ("failed", "on_failed"),
    ("delivered", "on_delivered"),
    ("undelivered", "on_undelivered"),
    ("receiving", "on_receiving"),
    ("received", "on_received"),
    ("scheduled", "on_scheduled"),
    ("canceled", "on_canceled"),
    ("read", "on_read"),
    ("partially_delivered", "on_partially_delivered"),
]
CALL_ROUTES = [
    ("queued", "on_queued"),
    ("initiated", "on_initiated"),
    ("ringing", "on_ringing"),
    ("in-progress", "on_in_progress"),
    ("completed", "on_completed"),
    ("busy", "on_busy"),
    ("failed", "on_failed"),
    ("no-answer", "on_no_answer"),
    ("canceled", "on_canceled"),
]

#: Attribute → Twilio parameter, by the type the attribute must have.
COMMON_TEXT = {
    "account_sid": "AccountSid",
    "api_version": "ApiVersion",
    "from_": "From",
    "to": "To",
    "error_message": "ErrorMessage",
    "from_city": "FromCity",
    "from_state": "FromState",
    "from_zip": "FromZip",
    "from_country": "FromCountry",
    "to_city": "ToCity",
    "to_state": "ToState",
    "to_zip": "ToZip",
    "to_country": "ToCountry",
}
SMS_TEXT = {
    **COMMON_TEXT,
    "message_sid": "MessageSid",
    "sms_sid": "SmsSid",
    "sms_message_sid": "SmsMessageSid",
    "message_status": "MessageStatus",
    "sms_status": "SmsStatus",
    "messaging_service_sid": "MessagingServiceSid",
    "body": "Body",
    "raw_dlr_done_date": "RawDlrDoneDate",
    "channel_install_sid": "ChannelInstallSid",
    "channel_prefix": "ChannelPrefix",
    "channel_to_address": "ChannelToAddress",
    "event_type": "EventType",
}
SMS_INT = {
    "num_segments": "NumSegments",
    "num_media": "NumMedia",
    "error_code": "ErrorCode",
    "referral_num_media": "ReferralNumMedia",
}
CALL_TEXT = {
    **COMMON_TEXT,
    "call_sid": "CallSid",
    "call_status": "CallStatus",
    "parent_call_sid": "ParentCallSid",
    "direction": "Direction",
    "caller": "Caller",
    "called": "Called",
    "caller_name": "CallerName",
    "forwarded_from": "ForwardedFrom",
    "recording_url": "RecordingUrl",
    "recording_sid": "RecordingSid",
    "callback_source": "CallbackSource",
    "answered_by": "AnsweredBy",
    "call_token": "CallToken",
    "stir_verstat": "StirVerstat",
    "stir_passport_token": "StirPassportToken",
    "stir_status": "StirStatus",
    "caller_city": "CallerCity",
    "caller_state": "CallerState",
    "caller_zip": "CallerZip",
    "caller_country": "CallerCountry",
    "called_city": "CalledCity",
    "called_state": "CalledState",
    "called_zip": "CalledZip",
    "called_country": "CalledCountry",
}
CALL_INT = {
    "call_duration": "CallDuration",
    "duration": "Duration",
    "recording_duration": "RecordingDuration",
    "sequence_number": "SequenceNumber",
    "sip_response_code": "SipResponseCode",
    "machine_detection_duration": "MachineDetectionDuration",
    "error_code": "ErrorCode",
}
TERMINAL_CALL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}


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


@pytest.fixture(autouse=True)
def _fresh_recorder(recorder: Recorder) -> Iterator[None]:
    recorder.reset()
    yield
    recorder.reset()


def post(client: httpx.Client, listener: twilio.Listener, params: Params) -> httpx.Response:
    return signed_post(listener.url, params, TOKEN, client=client)


def assert_fields(
    event: twilio.TwilioEvent,
    payload: dict[str, str],
    text: dict[str, str],
    integers: dict[str, str],
) -> None:
    for attribute, name in text.items():
        value = getattr(event, attribute)
        assert value == payload.get(name), attribute
        assert value is None or type(value) is str, attribute
    for attribute, name in integers.items():
        value = getattr(event, attribute)
        if name in payload:
            assert type(value) is int, attribute
            assert value == int(payload[name]), attribute
        else:
            assert value is None, attribute


# -- every callback ----------------------------------------------------------
@pytest.mark.parametrize(("status", "callback"), SMS_ROUTES, ids=[s for s, _ in SMS_ROUTES])
def test_message_status_reaches_its_callback_only(
    client: httpx.Client,
    listener: twilio.Listener,
    recorder: Recorder,
    status: str,
    callback: str,
) -> None:
    payload = sms_status_payload(status)

    response = post(client, listener, payload)

    assert_empty_twiml(response)
    call = recorder.only()
    assert (call.kind, call.callback) == ("sms", callback)
    event = call.event
    assert type(event) is twilio.SmsStatusChangeEvent
    assert twilio.SmsStatusChangeEventWrapper is twilio.SmsStatusChangeEvent
    assert_fields(event, payload, SMS_TEXT, SMS_INT)
    assert event["MessageSid"] == payload["MessageSid"]
    assert event.sid == payload["MessageSid"]
    assert event.status == status
    assert dict(event.raw) == {name: (value,) for name, value in payload.items()}
    # An async callback runs on the event loop, a sync one in a worker thread.
    is_async = inspect.iscoroutinefunction(getattr(SmsRecorder, callback))
    assert call.on_loop is is_async
    assert call.thread != threading.get_ident()


def test_message_payloads_carry_typed_values(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    # The parametrized test compares with the payload; this pins the values
    # themselves, so that a payload builder gone wrong cannot hide a bug.
    payload = sms_status_payload("undelivered", NumSegments="3")
    assert_empty_twiml(post(client, listener, payload))
    event = recorder.only().event
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert (event.num_segments, event.num_media, event.error_code) == (3, 0, 30003)
    assert event.raw_dlr_done_date == "2311141830"
    assert event.message_sid == event.sms_sid == payload["MessageSid"]
    assert event.message_sid is not None
    assert event.message_sid.startswith("SM")
    assert len(event.message_sid) == 34


def test_inbound_message_exposes_its_media(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    payload = sms_status_payload("received")
    assert "MessageStatus" not in payload  # inbound webhooks carry SmsStatus only
    assert_empty_twiml(post(client, listener, payload))
    event = recorder.only().event
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.media == (twilio.Media(payload["MediaUrl0"], "image/jpeg"),)
    assert (event.num_media, event.referral_num_media) == (1, 0)
    assert event.sms_message_sid == payload["SmsMessageSid"]
    assert event.body == "Here's the photo of the damaged parcel \U0001f4e6"


@pytest.mark.parametrize(("status", "callback"), CALL_ROUTES, ids=[s for s, _ in CALL_ROUTES])
def test_call_status_reaches_its_callback_only(
    client: httpx.Client,
    listener: twilio.Listener,
    recorder: Recorder,
    status: str,
    callback: str,
) -> None:
    payload = call_status_payload(status)

    response = post(client, listener, payload)

    assert_empty_twiml(response)
    call = recorder.only()
    assert (call.kind, call.callback) == ("call", callback)
    event = call.event
    assert type(event) is twilio.CallStatusEvent
    assert twilio.CallStatusEventWrapper is twilio.CallStatusEvent
    assert_fields(event, payload, CALL_TEXT, CALL_INT)
    assert event["CallSid"] == payload["CallSid"]
    assert event.sid == payload["CallSid"]
    assert event.status == status
    assert event.timestamp == datetime(2023, 11, 14, 18, 30, tzinfo=UTC)
    assert event.timestamp is not None
    assert event.timestamp.utcoffset() == timedelta(0)
    assert dict(event.raw) == {name: (value,) for name, value in payload.items()}
    if status in TERMINAL_CALL_STATUSES:
        assert type(event.call_duration) is int
        assert type(event.sip_response_code) is int
    is_async = inspect.iscoroutinefunction(getattr(CallRecorder, callback))
    assert call.on_loop is is_async
    assert call.thread != threading.get_ident()


def test_completed_call_carries_typed_values(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    payload = call_status_payload("completed", Timestamp="Wed, 15 Nov 2023 01:02:03 -0800")
    assert_empty_twiml(post(client, listener, payload))
    event = recorder.only().event
    assert isinstance(event, twilio.CallStatusEvent)
    assert (event.call_duration, event.duration, event.recording_duration) == (47, 1, 45)
    assert (event.sequence_number, event.sip_response_code) == (3, 200)
    assert event.timestamp == datetime(2023, 11, 15, 9, 2, 3, tzinfo=UTC)
    assert event.timestamp is not None
    assert event.timestamp.tzinfo is not None
    assert event.callback_source == "call-progress-events"
    assert event.call_token == payload["CallToken"]


def test_sync_callbacks_run_in_a_worker_thread_and_async_ones_on_the_loop(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    assert inspect.iscoroutinefunction(SmsRecorder.on_delivered)
    assert not inspect.iscoroutinefunction(SmsRecorder.on_sent)
    assert_empty_twiml(post(client, listener, sms_status_payload("delivered")))
    assert_empty_twiml(post(client, listener, sms_status_payload("sent")))

    async_call, sync_call = recorder.calls
    assert async_call.on_loop
    assert not sync_call.on_loop
    # The loop's thread is the one the async callback ran on: the sync one did not.
    assert sync_call.thread != async_call.thread
    assert threading.get_ident() not in (sync_call.thread, async_call.thread)


# -- failures ----------------------------------------------------------------
FAILING = [
    ("sms", "delivered", "on_delivered"),  # async
    ("sms", "sent", "on_sent"),  # sync
    ("call", "busy", "on_busy"),  # async
    ("call", "completed", "on_completed"),  # sync
]


@pytest.mark.parametrize("mode", ["raise", "return"])
@pytest.mark.parametrize(("kind", "status", "callback"), FAILING, ids=[f[2] for f in FAILING])
def test_failing_callback_answers_500_and_logs_the_traceback(
    client: httpx.Client,
    listener: twilio.Listener,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    status: str,
    callback: str,
    mode: str,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    recorder.fail[f"{kind}.{callback}"] = mode
    payload = sms_status_payload(status) if kind == "sms" else call_status_payload(status)
    sid = payload["MessageSid"] if kind == "sms" else payload["CallSid"]

    response = post(client, listener, payload)

    assert response.status_code == 500
    (error,) = recorder.errors
    body = response.text
    assert 0 < len(body) < 200
    for internal in ("Traceback", str(error), sid, ".py", "CallbackError", "_support", "line "):
        assert internal not in body
    assert recorder.only().callback == callback

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    (record,) = errors
    assert record.name == LOGGER
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert sid in message
    assert status in message
    assert callback in message
    assert record.exc_info is not None
    assert record.exc_info[1] is error
    if mode == "raise":
        assert record.exc_info[2] is not None
        assert "Traceback (most recent call last)" in caplog.text
        assert str(error) in caplog.text
        assert "_support.py" in caplog.text  # the file the callback raised in


# -- events acknowledged without a callback ------------------------------------
class DeliveredOnly(twilio.SmsStatusService):
    def __init__(self) -> None:
        self.events: list[twilio.SmsStatusChangeEvent] = []

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.events.append(event)


class CompletedOnly(twilio.CallStatusService):
    def __init__(self) -> None:
        self.events: list[twilio.CallStatusEvent] = []

    def on_completed(self, event: twilio.CallStatusEvent) -> None:
        self.events.append(event)


@pytest.mark.parametrize(
    ("kind", "status", "missing"),
    [("sms", "sent", "on_sent"), ("call", "ringing", "on_ringing")],
)
def test_status_without_callback_is_acknowledged_and_names_the_callback_to_add(
    caplog: pytest.LogCaptureFixture, kind: str, status: str, missing: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    sms, call = DeliveredOnly(), CompletedOnly()
    payload = sms_status_payload(status) if kind == "sms" else call_status_payload(status)
    with running(sms, call) as listener:
        response = signed_post(listener.url, payload, TOKEN)

    assert_empty_twiml(response)
    assert sms.events == []
    assert call.events == []
    (warning,) = records(caplog, logging.WARNING)
    message = warning.getMessage()
    assert missing in message
    assert (payload.get("MessageSid") or payload["CallSid"]) in message
    assert records(caplog, logging.ERROR) == []


NO_SERVICE = [
    ("sms", "delivered", "on_delivered", "SmsStatusService"),
    ("call", "completed", "on_completed", "CallStatusService"),
]


def acknowledge_without_service(
    caplog: pytest.LogCaptureFixture, kind: str, status: str
) -> tuple[str, logging.LogRecord]:
    """Post an event of *kind* to a listener with only a service of the other kind."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    sms, call = DeliveredOnly(), CompletedOnly()
    payload = sms_status_payload(status) if kind == "sms" else call_status_payload(status)
    with running(call if kind == "sms" else sms) as listener:
        response = signed_post(listener.url, payload, TOKEN)
    assert_empty_twiml(response)
    assert sms.events == []
    assert call.events == []
    (warning,) = records(caplog, logging.WARNING)
    return payload.get("MessageSid") or payload["CallSid"], warning


@pytest.mark.parametrize(("kind", "status", "callback", "base"), NO_SERVICE)
def test_event_without_service_of_its_kind_is_acknowledged_and_logged(
    caplog: pytest.LogCaptureFixture, kind: str, status: str, callback: str, base: str
) -> None:
    sid, warning = acknowledge_without_service(caplog, kind, status)
    message = warning.getMessage()
    assert sid in message
    assert status in message
    assert base in message


@pytest.mark.parametrize(("kind", "status", "callback", "base"), NO_SERVICE)
def test_event_without_service_of_its_kind_logs_the_callback_to_add(
    caplog: pytest.LogCaptureFixture, kind: str, status: str, callback: str, base: str
) -> None:
    # DESIGN §2: "no service of its kind ... a log line that names the callback to add".
    _, warning = acknowledge_without_service(caplog, kind, status)
    assert callback in warning.getMessage()


@pytest.mark.parametrize("kind", ["sms", "call"])
def test_unknown_status_is_acknowledged_and_logged(
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    if kind == "sms":
        payload = sms_status_payload("delivered", MessageStatus="exploded", SmsStatus="exploded")
    else:
        payload = call_status_payload("completed", CallStatus="exploded")
    recorder = Recorder()
    with running(SmsRecorder(recorder), CallRecorder(recorder)) as listener:
        response = signed_post(listener.url, payload, TOKEN)

    assert_empty_twiml(response)
    assert recorder.calls == []
    (warning,) = records(caplog, logging.WARNING)
    assert "exploded" in warning.getMessage()
    assert (payload.get("MessageSid") or payload["CallSid"]) in warning.getMessage()


# -- routing -----------------------------------------------------------------
def test_message_status_alone_is_routed(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    payload = sms_status_payload("delivered")
    del payload["SmsStatus"]
    assert_empty_twiml(post(client, listener, payload))
    call = recorder.only()
    assert call.callback == "on_delivered"
    assert call.event.status == "delivered"
    assert isinstance(call.event, twilio.SmsStatusChangeEvent)
    assert call.event.sms_status is None


def test_sms_status_alone_is_routed(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    payload = sms_status_payload("undelivered")
    del payload["MessageStatus"]
    assert_empty_twiml(post(client, listener, payload))
    call = recorder.only()
    assert call.callback == "on_undelivered"
    assert isinstance(call.event, twilio.SmsStatusChangeEvent)
    assert call.event.message_status is None
    assert call.event.status == "undelivered"


def test_call_status_wins_over_message_status(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    # MessageStatus first in the body: the order must not matter.
    pairs = [("MessageStatus", "delivered"), ("SmsStatus", "delivered")]
    pairs += list(call_status_payload("busy").items())
    assert_empty_twiml(post(client, listener, pairs))
    call = recorder.only()
    assert (call.kind, call.callback) == ("call", "on_busy")
    assert type(call.event) is twilio.CallStatusEvent
    assert call.event["MessageStatus"] == "delivered"


# -- parameters ----------------------------------------------------------------
def test_repeated_and_unknown_parameters_keep_every_value(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder
) -> None:
    payload = sms_status_payload("sent")
    pairs = list(payload.items())
    pairs += [
        ("Tag", "urgent"),
        ("Tag", "billing"),
        ("Tag", "urgent"),  # a duplicate value: Twilio signs it once, it is received twice
        ("To", "+15558675311"),  # a documented name, repeated
        ("FutureParameter", '{"added":"without notice"}'),
        ("EmptyOne", ""),
    ]
    assert_empty_twiml(post(client, listener, pairs))
    event = recorder.only().event

    assert event.getall("Tag") == ("urgent", "billing", "urgent")
    assert event.raw["Tag"] == ("urgent", "billing", "urgent")
    assert event["Tag"] == "urgent"
    assert event.raw["To"] == (payload["To"], "+15558675311")
    assert event.to == payload["To"]
    assert event["FutureParameter"] == '{"added":"without notice"}'
    assert event.raw["EmptyOne"] == ("",)
    expected: dict[str, list[str]] = {}
    for name, value in pairs:
        expected.setdefault(name, []).append(value)
    assert {name: list(values) for name, values in event.raw.items()} == expected


TRICKY = [
    "a&b=c",
    "1+1=2 & 100% sure",
    "%20 is not a space, %25 is a percent",
    "caf\u00e9 \u00fcber \u65e5\u672c\u8a9e \u0645\u0631\u062d\u0628\u0627",
    "\U0001f600\U0001f44d\U0001f3fd \u2764\ufe0f",
    "  leading and trailing spaces  ",
    "line one\r\nline two\ttabbed",
    "=&=&",
    "+",
]


@pytest.mark.parametrize("body", TRICKY)
def test_encoded_values_survive_exactly(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder, body: str
) -> None:
    payload = sms_status_payload("sent", Body=body, ErrorMessage=body[::-1])
    assert_empty_twiml(post(client, listener, payload))
    event = recorder.only().event
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.body == body
    assert event.error_message == body[::-1]
    assert event.raw["Body"] == (body,)


# -- secrets -------------------------------------------------------------------
def test_no_token_or_signature_reaches_a_log_or_an_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Everything the listener and its server log, at every level.
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    recorder = Recorder()
    recorder.fail["sms.on_failed"] = "raise"
    answers: list[httpx.Response] = []
    signatures: list[str] = []

    def send(params: Params, token: str = TOKEN, **headers: str) -> None:
        signatures.append(sign(server.url, params, token))
        answers.append(signed_post(server.url, params, token, headers=headers))

    with running(
        SmsRecorder(recorder), CallRecorder(recorder), auth_tokens=[TOKEN, OTHER_TOKEN]
    ) as server:
        send(sms_status_payload("delivered"))  # handled
        send(sms_status_payload("failed"))  # callback raises
        send(call_status_payload("completed", CallStatus="exploded"))  # unknown status
        send(sms_status_payload("sent"), token="not-the-token")  # bad signature
        send(sms_status_payload("sent"), **{"X-Twilio-Signature": "AAAA" + signatures[0]})
        send({"From": "+14155550143"})  # no kind recognises it: acknowledged
        send(sms_status_payload("sent"), **{"Content-Type": "text/plain"})
        unsigned = encode_form(sms_status_payload("sent"))
        answers.append(httpx.post(server.url, content=unsigned, headers={"Content-Type": FORM}))

    statuses = [a.status_code for a in answers]
    assert statuses == [200, 500, 200, 403, 403, 200, 415, 403]
    logged = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    assert "Traceback" in logged  # the failure was logged: the check below means something
    secrets = [TOKEN, OTHER_TOKEN, *signatures]
    for answer in answers:
        exposed = answer.text + repr(dict(answer.headers))
        for secret in secrets:
            assert secret not in exposed
    for secret in secrets:
        assert secret not in logged
