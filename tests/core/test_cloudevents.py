"""Event Streams bodies: CloudEvents parsed, and mapped onto the status-webhook events.

The payloads follow Twilio's documented examples (field names, value types and
casing), cited in ``src/twilio_trigger/_core/cloudevents.py``:

- events/event-types/messaging/outbound-message (``Messaging.MessageStatus``),
- events/event-types/messaging/inbound-message (``Messaging.InboundMessageV1``),
- events/event-types/voice/status-callback (``Voice.WebhookEvent``).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_trigger._core.cloudevents import (
    MAX_DEPTH,
    CloudEvent,
    CloudEventError,
    convert,
    json_object_params,
    parse_cloudevents,
    to_params,
)
from twilio_trigger._core.events import (
    CallStatusEvent,
    MachineDetectionEvent,
    SmsStatusChangeEvent,
    TwilioEvent,
)
from twilio_trigger._core.routing import callback_for, of_kind, to_event

OUTBOUND_STATUSES = ("queued", "sent", "delivered", "undelivered", "failed", "read")
CALL_EVENTS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "answered": "in-progress",
    "completed": "completed",
}
MAPPED_TYPES = (
    *(f"com.twilio.messaging.message.{status}" for status in OUTBOUND_STATUSES),
    "com.twilio.messaging.inbound-message.received",
    *(f"com.twilio.voice.status-callback.call.{x}" for x in CALL_EVENTS),
    *(f"com.twilio.voice.webhook.status-callback.call.{x}" for x in CALL_EVENTS),
    "com.twilio.voice.status-callback.amd.detected",
)


def sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def envelope(event_type: str, data: object, **extra: object) -> dict[str, object]:
    """A CloudEvent as Twilio's examples show it (with a real ``datacontenttype``)."""
    schema = {
        "messaging.message": "Messaging.MessageStatus/8",
        "messaging.inbound-message": "Messaging.InboundMessageV1/6",
        "voice": "Voice.WebhookEvent/2",
    }
    name = next((v for k, v in schema.items() if event_type.startswith(f"com.twilio.{k}")), "X/1")
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json",
        "id": sid("EZ"),
        "dataschema": f"https://events-schemas.twilio.com/{name}",
        "datacontenttype": "application/json",
        "time": "2025-01-01T00:00:00.000Z",
        "data": data,
        **extra,
    }


def body_of(*events: object) -> bytes:
    return json.dumps(list(events)).encode()


def one(event: dict[str, object]) -> CloudEvent:
    (parsed,) = parse_cloudevents(body_of(event))
    return parsed


def dispatched(event: dict[str, object]) -> TwilioEvent:
    params = to_params(one(event))
    assert params is not None
    assert all(isinstance(n, str) and n and isinstance(v, str) for n, v in params)
    result = to_event(params)
    assert result is not None
    return result


def outbound_data(status: str, **changes: object) -> dict[str, object]:
    """``Messaging.MessageStatus`` data, as in the outbound-message page's example."""
    data: dict[str, object] = {
        "messageSid": sid("SM"),
        "timestamp": "2025-01-01T00:00:00.000Z",
        "accountSid": "AC00000000000000000000000000000001",
        "eventName": f"com.twilio.messaging.message.{status}",
        "apiVersion": "2010-04-01",
        "from": "+11234567890",
        "to": "+12345678901",
        "messageStatus": status.upper(),
        "messagingServiceSid": "MG00000000000000000000000000000001",
        "body": "Ahoy!",
        "statusCallBackUrl": "https://mycompany.com/an-endpoint",
        "tags": {},
        "mnc": "090",
        "mcc": "310",
        "rawDlrDoneDate": "2303072155",
        "numberOfSegments": 1,
        "dateUpdated": "2025-01-01T00:01:00.000Z",
    }
    data.update(changes)
    return data


def inbound_data(**changes: object) -> dict[str, object]:
    """``Messaging.InboundMessageV1`` data, as in the inbound-message page's example."""
    data: dict[str, object] = {
        "messageSid": sid("SM"),
        "timestamp": "2025-01-01T00:00:00.000Z",
        "accountSid": "AC00000000000000000000000000000001",
        "eventName": "com.twilio.messaging.inbound-message.received",
        "from": "+11234567890",
        "to": "+12345678901",
        "numMedia": 0,
        "numSegments": 1,
        "body": "Ahoy!",
        "toCountry": "US",
        "toState": "FL",
        "toCity": "FORT MEADE",
        "toZip": "33841",
        "fromCountry": "US",
        "fromState": "NH",
        "fromCity": "NASHUA",
        "fromZip": "03049",
        "mnc": "090",
        "mcc": "310",
        "messagingServiceSid": "MG00000000000000000000000000000001",
        "referralCtwaClid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7J",
        "recipients": ["+12345678901", "+15046081420"],
        "optOutType": "STOP",
    }
    data.update(changes)
    return data


def voice_data(call_sid: str, parameters: object) -> dict[str, object]:
    """``Voice.WebhookEvent`` data, as in the voice status-callback page's example."""
    return {
        "sid": call_sid,
        "requestDateCreated": "Sun, 24 Aug 2025 13:49:54 +0000",
        "timestamp": "2025-01-01T00:00:00.000Z",
        "eventSid": sid("VW"),
        "request": {
            "method": "POST",
            "url": "https://mycompany.com/an-endpoint",
            "parameters": parameters,
        },
        "response": {
            "responseCode": 200,
            "requestDuration": 140,
            "contentType": "application/xml;charset=UTF-8",
            "responseBody": "PD94bWwgdmVyc2lvbj0iMS4wIiBlbmNvZGluZz0iVVRGLTgiPz48UmVzcG9uc2UvPg==",
            "dateCreated": "Sun, 24 Aug 2025 13:49:54 +0000",
        },
    }


def completed_call_parameters(call_sid: str, **changes: str) -> dict[str, str]:
    """What a ``completed`` voice status callback posts (fact sheet §3)."""
    parameters = {
        "Called": "+12345678901",
        "ToState": "FL",
        "CallerCountry": "US",
        "Direction": "outbound-api",
        "Timestamp": "Sun, 24 Aug 2025 13:50:36 +0000",
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "3",
        "CallSid": call_sid,
        "To": "+12345678901",
        "AccountSid": "AC00000000000000000000000000000001",
        "From": "+11234567890",
        "ApiVersion": "2010-04-01",
        "CallStatus": "completed",
        "CallDuration": "42",
        "Duration": "1",
        "SipResponseCode": "200",
    }
    parameters.update(changes)
    return parameters


# -- outbound messages ---------------------------------------------------------


@pytest.mark.parametrize("status", OUTBOUND_STATUSES)
def test_an_outbound_message_event_is_a_message_status_event(status: str) -> None:
    data = outbound_data(status)
    event = dispatched(envelope(f"com.twilio.messaging.message.{status}", data))

    assert isinstance(event, SmsStatusChangeEvent)
    assert event.kind == "sms"
    assert event.sid == event.message_sid == data["messageSid"]
    assert event.status == event.message_status == status  # Twilio's upper case, lowered
    assert event.account_sid == data["accountSid"]
    assert event.from_ == "+11234567890"
    assert event.to == "+12345678901"
    assert event.messaging_service_sid == data["messagingServiceSid"]
    assert event.body == "Ahoy!"
    assert event.api_version == "2010-04-01"
    assert event.num_segments == 1  # from numberOfSegments
    assert event.raw_dlr_done_date == "2303072155"
    assert event.error_code is None
    assert event["Tags"] == "{}"
    assert event["StatusCallBackUrl"] == "https://mycompany.com/an-endpoint"


@pytest.mark.parametrize("code", [30003, "30003"])  # integer in the schema, text in one example
def test_an_undelivered_message_carries_its_error_code(code: object) -> None:
    data = outbound_data("undelivered", errorCode=code)
    event = dispatched(envelope("com.twilio.messaging.message.undelivered", data))

    assert isinstance(event, SmsStatusChangeEvent)
    assert event.status == "undelivered"
    assert event.error_code == 30003
    assert event["ErrorCode"] == "30003"


def test_the_type_gives_the_status_when_data_has_none() -> None:
    data = outbound_data("failed")
    del data["messageStatus"]
    event = dispatched(envelope("com.twilio.messaging.message.failed", data))
    assert event.status == "failed"


@pytest.mark.parametrize("blank", ["", "  ", None])
def test_a_blank_message_status_in_data_counts_as_absent(blank: object) -> None:
    data = outbound_data("sent", messageStatus=blank)
    event = dispatched(envelope("com.twilio.messaging.message.sent", data))
    assert event.status == "sent"
    assert event.getall("MessageStatus") == ("sent",)


def test_the_type_decides_the_status_over_data() -> None:
    # The outbound-message page's first example is a `delivered` event whose
    # data says QUEUED: the type names the change reported, so on_delivered runs.
    data = outbound_data("delivered", messageStatus="QUEUED")
    event = dispatched(envelope("com.twilio.messaging.message.delivered", data))
    assert event.status == "delivered"
    assert event.getall("MessageStatus") == ("delivered",)


def test_nested_values_become_compact_json_and_nulls_are_left_out() -> None:
    data = outbound_data(
        "sent",
        tags={"campaign": "spring", "tier": "gold"},
        body=None,
        mnc=None,
        flag=True,
        ratio=0.5,
    )
    event = dispatched(envelope("com.twilio.messaging.message.sent", data))
    assert event["Tags"] == '{"campaign":"spring","tier":"gold"}'
    assert "Body" not in event
    assert "Mnc" not in event
    assert event["Flag"] == "true"
    assert event["Ratio"] == "0.5"


def test_a_message_event_never_becomes_another_kind() -> None:
    data = outbound_data("delivered", callStatus="completed", recordingStatus="completed")
    event = dispatched(envelope("com.twilio.messaging.message.delivered", data))
    assert isinstance(event, SmsStatusChangeEvent)
    assert "CallStatus" not in event  # it would make the parameters a call's
    assert event.status == "delivered"


# -- inbound messages ----------------------------------------------------------


def test_an_inbound_message_event_is_a_received_message() -> None:
    data = inbound_data()
    event = dispatched(envelope("com.twilio.messaging.inbound-message.received", data))

    assert isinstance(event, SmsStatusChangeEvent)
    assert event.sid == data["messageSid"]
    assert event.status == event.message_status == event.sms_status == "received"
    assert event.body == "Ahoy!"
    assert event.num_media == 0
    assert event.media == ()  # InboundMessageV1 documents no media URLs
    assert event.num_segments == 1
    assert event.from_city == "NASHUA"
    assert event.to_zip == "33841"
    assert event["OptOutType"] == "STOP"
    assert event["Recipients"] == '["+12345678901","+15046081420"]'


def test_an_inbound_message_keeps_a_status_its_data_has() -> None:
    data = inbound_data(smsStatus="RECEIVED", messageStatus="received")
    event = dispatched(envelope("com.twilio.messaging.inbound-message.received", data))
    assert event.getall("SmsStatus") == ("received",)
    assert event.getall("MessageStatus") == ("received",)


def test_inbound_media_fields_would_read_as_the_webhook_s() -> None:
    # Not in the v6 schema; should Twilio add them, the camelCase rule carries them.
    data = inbound_data(
        numMedia=1, mediaUrl0="https://api.twilio.com/m/ME1", mediaContentType0="image/jpeg"
    )
    event = dispatched(envelope("com.twilio.messaging.inbound-message.received", data))
    assert isinstance(event, SmsStatusChangeEvent)
    assert event.num_media == 1
    assert [(m.url, m.content_type) for m in event.media] == [
        ("https://api.twilio.com/m/ME1", "image/jpeg")
    ]


# -- voice ---------------------------------------------------------------------


def test_a_completed_call_event_carries_the_status_callback_s_parameters() -> None:
    call_sid = sid("CA")
    data = voice_data(call_sid, completed_call_parameters(call_sid))
    event = dispatched(envelope("com.twilio.voice.status-callback.call.completed", data))

    assert isinstance(event, CallStatusEvent)
    assert event.kind == "call"
    assert event.sid == event.call_sid == call_sid
    assert event.status == event.call_status == "completed"
    assert event.call_duration == 42
    assert event.duration == 1
    assert event.sequence_number == 3
    assert event.sip_response_code == 200
    assert event.direction == "outbound-api"
    assert event.timestamp == datetime(2025, 8, 24, 13, 50, 36, tzinfo=UTC)
    assert "Response" not in event  # the reply is not a webhook parameter


@pytest.mark.parametrize("prefix", ["status-callback", "webhook.status-callback"])
@pytest.mark.parametrize(("word", "status"), list(CALL_EVENTS.items()))
def test_the_documented_example_with_empty_parameters(prefix: str, word: str, status: str) -> None:
    call_sid = sid("CA")
    data = voice_data(call_sid, {})  # "parameters" : { } as on the docs page
    event = dispatched(envelope(f"com.twilio.voice.{prefix}.call.{word}", data))

    assert isinstance(event, CallStatusEvent)
    assert event.sid == call_sid  # from data.sid
    assert event.status == status


def test_the_parameters_status_wins_over_the_type() -> None:
    # `completed` covers busy, no-answer, failed and canceled too.
    call_sid = sid("CA")
    params = completed_call_parameters(call_sid, CallStatus="no-answer", CallDuration="0")
    event = dispatched(
        envelope("com.twilio.voice.status-callback.call.completed", voice_data(call_sid, params))
    )
    assert event.status == "no-answer"
    assert isinstance(event, CallStatusEvent)
    assert event.call_duration == 0


def test_blank_identity_parameters_do_not_hide_the_call() -> None:
    call_sid = sid("CA")
    data = voice_data(call_sid, {"CallSid": "", "CallStatus": " ", "From": "+11234567890"})
    event = dispatched(envelope("com.twilio.voice.status-callback.call.ringing", data))
    assert event.sid == call_sid
    assert event.status == "ringing"
    assert event.getall("CallStatus") == ("ringing",)


def test_repeated_parameters_become_repeated_pairs() -> None:
    call_sid = sid("CA")
    params: dict[str, object] = {
        "CallSid": call_sid,
        "CallStatus": "in-progress",
        "Digits": ["1", "2"],
    }
    event = dispatched(
        envelope("com.twilio.voice.status-callback.call.answered", voice_data(call_sid, params))
    )
    assert event.getall("Digits") == ("1", "2")


def test_snake_case_parameters_read_as_the_webhook_s() -> None:
    # The REST Call Events resource presents the same parameters in snake_case.
    call_sid = sid("CA")
    params = {"call_sid": call_sid, "call_status": "completed", "call_duration": "7"}
    event = dispatched(
        envelope("com.twilio.voice.status-callback.call.completed", voice_data(call_sid, params))
    )
    assert isinstance(event, CallStatusEvent)
    assert event.call_sid == call_sid
    assert event.call_duration == 7


def test_without_request_parameters_the_data_fields_are_used() -> None:
    call_sid = sid("CA")
    data = {"sid": call_sid, "timestamp": "2025-01-01T00:00:00.000Z", "callDuration": 12}
    event = dispatched(envelope("com.twilio.voice.status-callback.call.completed", data))
    assert isinstance(event, CallStatusEvent)
    assert event.sid == call_sid
    assert event.status == "completed"
    assert event.call_duration == 12


def test_a_call_event_never_becomes_a_recording_event() -> None:
    call_sid = sid("CA")
    params = completed_call_parameters(call_sid, RecordingStatus="completed")
    event = dispatched(
        envelope("com.twilio.voice.status-callback.call.completed", voice_data(call_sid, params))
    )
    assert isinstance(event, CallStatusEvent)
    assert "RecordingStatus" not in event


def test_an_answering_machine_detection_is_the_amd_kinds() -> None:
    # Event Streams carries an asynchronous detection's result as a voice
    # webhook event: its own parameters under data.request.
    call_sid = sid("CA")
    params = {
        "AccountSid": sid("AC"),
        "CallSid": call_sid,
        "AnsweredBy": "machine_end_beep",
        "MachineDetectionDuration": "4210",
    }
    converted = convert(
        one(envelope("com.twilio.voice.status-callback.amd.detected", voice_data(call_sid, params)))
    )
    assert converted.kind.name == "amd"
    event = of_kind(converted.kind, converted.params)
    assert isinstance(event, MachineDetectionEvent)
    assert (event.sid, event.answered_by) == (call_sid, "machine_end_beep")
    assert callback_for(event) == "on_machine_detection"
    # Without data.request, the data's own names (the sid as the CallSid).
    bare = convert(
        one(
            envelope(
                "com.twilio.voice.status-callback.amd.detected",
                {"sid": call_sid, "answeredBy": "human", "machineDetectionDuration": "900"},
            )
        )
    )
    assert dict(bare.params)["CallSid"] == call_sid
    assert dict(bare.params)["AnsweredBy"] == "human"


# -- types we do not map, data that is not an object -----------------------------


@pytest.mark.parametrize(
    "event_type",
    [
        "com.twilio.eventstreams.test-event",
        "com.twilio.voice.status-callback.call.unknown",
        "com.twilio.voice.twiml.gather.finished",
        "com.twilio.messaging.message.sending",
        "com.twilio.messaging.message.",
        "com.twilio.messaging.inbound-message.receivedx",
        "com.twilio.conversations.message.sent",
        "com.twilio.conversations.delivery.updated",
    ],
)
@pytest.mark.parametrize("data", [{"messageSid": "SM1", "sid": "CA1"}, None, "text"])
def test_an_unknown_type_maps_to_none(event_type: str, data: object) -> None:
    assert to_params(one(envelope(event_type, data))) is None


@pytest.mark.parametrize("event_type", MAPPED_TYPES)
@pytest.mark.parametrize("data", [None, "text", 3, ["messageSid"]])
def test_a_mapped_type_needs_a_data_object(event_type: str, data: object) -> None:
    event = one(envelope(event_type, data, id="EZ123"))
    with pytest.raises(CloudEventError) as raised:
        to_params(event)
    assert raised.value.message == f"CloudEvent EZ123 of type {event_type} has no data object"


def test_a_mapped_type_without_data_needs_it_too() -> None:
    event = one({"type": "com.twilio.messaging.message.sent", "id": "EZ1"})
    assert event.data is None
    with pytest.raises(CloudEventError, match="has no data object"):
        to_params(event)


def test_the_error_shows_a_long_or_odd_id_bounded() -> None:
    odd = "EZ\n" + "x" * 500
    event = one(envelope("com.twilio.messaging.message.sent", None, id=odd))
    with pytest.raises(CloudEventError) as raised:
        to_params(event)
    message = raised.value.message
    assert "\n" not in message
    assert len(message) < 200
    assert message.startswith("CloudEvent EZ?xxx")


# -- the envelope --------------------------------------------------------------


def test_the_envelope_fields_are_kept() -> None:
    event = envelope("com.twilio.messaging.message.sent", {"messageSid": "SM1"})
    (parsed,) = parse_cloudevents(body_of(event))
    assert parsed == CloudEvent(
        id=str(event["id"]),
        type="com.twilio.messaging.message.sent",
        source=str(event["source"]),
        time="2025-01-01T00:00:00.000Z",
        data={"messageSid": "SM1"},
    )


def test_source_and_time_that_are_not_text_read_as_none() -> None:
    (parsed,) = parse_cloudevents(b'[{"id": "1", "type": "t", "source": 5, "time": null}]')
    assert parsed.source is None
    assert parsed.time is None
    assert parsed.data is None


def test_events_keep_their_order() -> None:
    events = [envelope("com.twilio.messaging.message.sent", {}, id=f"EZ{i}") for i in range(5)]
    assert [e.id for e in parse_cloudevents(body_of(*events))] == [f"EZ{i}" for i in range(5)]


def test_an_empty_array_is_nothing_to_do() -> None:
    assert parse_cloudevents(b"[]") == []
    assert parse_cloudevents(b" [ ]\n") == []


def test_unicode_survives() -> None:
    data = inbound_data(body="Olá 👋 \u00e9")
    raw = json.dumps([envelope("com.twilio.messaging.inbound-message.received", data)])
    for body in (raw.encode(), raw.encode("utf-8").replace(b"\\u00e9", "é".encode())):
        (parsed,) = parse_cloudevents(body)
        event = to_event(to_params(parsed) or [])
        assert isinstance(event, SmsStatusChangeEvent)
        assert event.body == "Olá 👋 é"


def test_max_events_bounds_the_array() -> None:
    events = [envelope("com.twilio.messaging.message.sent", {}) for _ in range(3)]
    assert len(parse_cloudevents(body_of(*events), max_events=3)) == 3
    with pytest.raises(CloudEventError) as raised:
        parse_cloudevents(body_of(*events), max_events=2)
    assert raised.value.message == "too many CloudEvents (at most 2)"


def test_the_default_bound_is_100() -> None:
    event = {"id": "EZ1", "type": "t"}
    assert len(parse_cloudevents(body_of(*[event] * 100))) == 100
    with pytest.raises(CloudEventError, match=r"at most 100"):
        parse_cloudevents(body_of(*[event] * 101))


def _nested(depth: int) -> bytes:
    """A body whose deepest container is at *depth* (the outer array is 1)."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return f'[{{"id": "1", "type": "t", "data": {inner or "0"}}}]'.encode()


def test_nesting_up_to_the_bound_is_accepted() -> None:
    (parsed,) = parse_cloudevents(_nested(MAX_DEPTH))
    assert parsed.id == "1"


BAD_BODIES: list[tuple[bytes, str]] = [
    (b"\xff[]", "the body is not valid UTF-8"),
    (b'[{"id": "1", "type": "caf\xc3"}]', "the body is not valid UTF-8"),
    (b"", "the body is not valid JSON"),
    (b"[{", "the body is not valid JSON"),
    (b"[1,]", "the body is not valid JSON"),
    (b"id=1&type=t", "the body is not valid JSON"),
    (b"\xef\xbb\xbf[]", "the body is not valid JSON"),  # a UTF-8 byte-order mark
    (b'[{"id": "1", "type": "t", "data": NaN}]', "the body is not valid JSON"),
    (b'[{"id": "1", "type": "t", "data": -Infinity}]', "the body is not valid JSON"),
    (b'[{"id": "1", "type": "t", "data": ' + b"9" * 5000 + b"}]", "the body is not valid JSON"),
    (b'{"id": "1", "type": "t"}', "expected a JSON array of CloudEvents"),
    (b'"[]"', "expected a JSON array of CloudEvents"),
    (b"null", "expected a JSON array of CloudEvents"),
    (b'[{"id": "1", "type": "t"}, 7]', "CloudEvent 1 is not a JSON object"),
    (b'[["id", "type"]]', "CloudEvent 0 is not a JSON object"),
    (b'[{"type": "t"}]', "CloudEvent 0 has no id"),
    (b'[{"id": "", "type": "t"}]', "CloudEvent 0 has no id"),
    (b'[{"id": null, "type": "t"}]', "CloudEvent 0 has no id"),
    (b'[{"id": 12, "type": "t"}]', "CloudEvent 0 has a non-string id"),
    (b'[{"id": ["1"], "type": "t"}]', "CloudEvent 0 has a non-string id"),
    (b'[{"id": "1", "type": "t"}, {"id": "2"}]', "CloudEvent 1 has no type"),
    (b'[{"id": "1", "type": ""}]', "CloudEvent 0 has no type"),
    (b'[{"id": "1", "type": {"a": 1}}]', "CloudEvent 0 has a non-string type"),
    (
        b"[" * 100_000 + b"]" * 100_000,
        f"the body is nested too deeply (at most {MAX_DEPTH} levels)",
    ),
    (_nested(MAX_DEPTH + 1), f"the body is nested too deeply (at most {MAX_DEPTH} levels)"),
    (b'[{"id": "1", "type": "t", "data": "\\ud800"}]', "the body has a lone surrogate \\u escape"),
    (
        b'[{"id": "1", "type": "t", "data": {"\\udfff": 1}}]',
        "the body has a lone surrogate \\u escape",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES, ids=lambda v: repr(v)[:40])
def test_a_bad_body_is_refused_with_a_clear_message(body: bytes, message: str) -> None:
    with pytest.raises(CloudEventError) as raised:
        parse_cloudevents(body)
    assert raised.value.message == message
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)
    assert raised.value.__cause__ is None  # nothing internal chained for a log to leak


def test_a_valid_escape_is_not_a_surrogate() -> None:
    (parsed,) = parse_cloudevents(b'[{"id": "\\u00e9\\ud83d\\udc4b", "type": "t"}]')
    assert parsed.id == "é👋"


# -- properties ------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=8,
)
event_types = st.sampled_from(MAPPED_TYPES) | st.text(min_size=1)
cloud_events = st.fixed_dictionaries(
    {"id": st.text(min_size=1), "type": event_types},
    optional={
        "specversion": st.just("1.0"),
        "source": json_values,
        "time": json_values,
        "dataschema": st.text(),
        "datacontenttype": st.text(),
        "data": json_values,
        "extension": json_values,
    },
)


@settings(max_examples=100, deadline=None)
@given(st.lists(cloud_events, max_size=8), st.booleans())
def test_ids_and_types_round_trip_in_order(events: list[dict[str, Any]], ascii_only: bool) -> None:
    body = json.dumps(events, ensure_ascii=ascii_only).encode()
    parsed = parse_cloudevents(body)
    assert [(e.id, e.type) for e in parsed] == [(e["id"], e["type"]) for e in events]
    assert [e.data for e in parsed] == [e.get("data") for e in events]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(MAPPED_TYPES),
    st.dictionaries(st.text(), json_values, max_size=6),
    st.dictionaries(st.text(), st.text() | st.lists(st.text(), max_size=3), max_size=6),
    st.booleans(),
)
def test_a_mapped_type_always_makes_its_kind_of_event(
    event_type: str,
    data: dict[str, object],
    parameters: dict[str, object],
    with_request: bool,
) -> None:
    if with_request:
        data = {**data, "request": {"parameters": parameters}}
    (parsed,) = parse_cloudevents(body_of(envelope(event_type, data)))
    kind, params = convert(parsed)
    assert all(isinstance(name, str) and name and isinstance(value, str) for name, value in params)
    # As the listener does: the event of the type's kind, whatever names the request's
    # parameters carry (Hypothesis also draws the package's own literals, such as
    # DialCallStatus, which routing by parameters alone would take for a <Dial>).
    event = of_kind(kind, params)
    if event_type.endswith(".amd.detected"):
        # One callback for every result: AnsweredBy, when sent, is its status.
        assert type(event) is MachineDetectionEvent
        return
    expected = CallStatusEvent if ".voice." in event_type else SmsStatusChangeEvent
    assert type(event) is expected
    assert event.status


# -- a JSON object that is no CloudEvent: a webhook of a family with no kind -------------------
def test_a_json_object_becomes_its_fields_as_parameters() -> None:
    body = json.dumps(
        {"event_type": "click", "sms_sid": "SM1", "count": 2, "ok": True, "tags": ["a"],
         "gone": None, "nested": {"b": 1.5}}
    ).encode()  # fmt: skip
    assert json_object_params(body) == [
        ("event_type", "click"),
        ("sms_sid", "SM1"),
        ("count", "2"),
        ("ok", "true"),
        ("tags", '["a"]'),
        ("nested", '{"b":1.5}'),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"{}",
        b'"click"',
        b"\xff{}",
        b'{"a": NaN}',
        b'{"a": 1',
        json.dumps({"specversion": "1.0", "type": "x", "id": "1"}).encode(),
        b'{"a": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}",
        b'{"a": "\\ud800"}',
    ],
    ids=["array", "empty", "string", "not-utf8", "nan", "truncated", "cloudevent", "deep",
         "surrogate"],
)  # fmt: skip
def test_anything_else_is_no_json_object_webhook(body: bytes) -> None:
    assert json_object_params(body) is None
