"""Realistic payloads of each kind (``_core/payloads/``), as the test kit, ``twilio-trigger
send`` and the demo build them: Twilio's parameters, fresh SIDs, overrides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

import twilio_trigger as twilio
from twilio_trigger import testing
from twilio_trigger._core import payloads
from twilio_trigger._core.kinds import KINDS
from twilio_trigger._core.payloads import (
    ACCOUNT_SID,
    call_cloudevent,
    call_event,
    call_status_params,
    cloudevent,
    inbound_call_params,
    inbound_message_cloudevent,
    inbound_sms_params,
    message_cloudevent,
    new_sid,
    recording_event,
    recording_status_params,
    sms_event,
    sms_status_params,
)
from twilio_trigger._core.routing import of_kind

SMS_STATUSES = [
    "accepted", "queued", "sending", "sent", "failed", "delivered", "undelivered",
    "receiving", "received", "scheduled", "canceled", "read", "partially_delivered",
]  # fmt: skip
INBOUND_STATUSES = {"receiving", "received"}
CALL_STATUSES = [
    "queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
    "no-answer", "canceled",
]  # fmt: skip
TERMINAL_CALL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}

SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")


def assert_sid(value: str | None, *prefixes: str) -> None:
    assert value is not None
    assert SID.fullmatch(value), value
    assert len(value) == 34
    assert value[:2] in prefixes, value


def assert_every_sid_is_well_formed(params: dict[str, str]) -> None:
    sids = {name: value for name, value in params.items() if name.endswith("Sid")}
    assert sids, params
    for name, value in sids.items():
        assert SID.fullmatch(value), (name, value)


# -- factories ---------------------------------------------------------------------------
def test_the_status_lists_are_the_packages_callbacks() -> None:
    assert tuple("on_" + s for s in SMS_STATUSES) == twilio.SMS_CALLBACKS
    assert tuple("on_" + s.replace("-", "_") for s in CALL_STATUSES) == twilio.CALL_CALLBACKS


@pytest.mark.parametrize("status", SMS_STATUSES)
def test_sms_status_params_look_like_twilios(status: str) -> None:
    params = sms_status_params(status)
    assert all(isinstance(value, str) for value in params.values())
    assert_every_sid_is_well_formed(params)
    assert_sid(params["AccountSid"], "AC")
    assert_sid(params["MessagingServiceSid"], "MG")
    assert params["ApiVersion"] == "2010-04-01"
    assert params["From"]
    assert params["To"]
    assert params["SmsSid"] == params["MessageSid"]
    assert params["SmsStatus"] == status
    if status in INBOUND_STATUSES:
        # An inbound message webhook: SmsStatus only, the legacy SID aliases, its media.
        assert "MessageStatus" not in params
        assert_sid(params["MessageSid"], "SM", "MM")
        assert params["SmsMessageSid"] == params["MessageSid"]
        assert params["Body"]
        media = int(params["NumMedia"])
        assert [f"MediaUrl{i}" in params for i in range(media + 1)] == [True] * media + [False]
    else:
        assert params["MessageStatus"] == status
        assert_sid(params["MessageSid"], "SM")
        assert {"NumSegments", "NumMedia", "Body"} <= params.keys()
    if status in ("failed", "undelivered"):
        assert params["ErrorCode"].isdigit()
        assert params["ErrorCode"].startswith("300")
    else:
        assert "ErrorCode" not in params
    event = sms_event(status)
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.status == status
    assert event.kind == "sms"


@pytest.mark.parametrize("status", CALL_STATUSES)
def test_call_status_params_look_like_twilios(status: str) -> None:
    params = call_status_params(status)
    assert all(isinstance(value, str) for value in params.values())
    assert_every_sid_is_well_formed(params)
    assert_sid(params["CallSid"], "CA")
    assert_sid(params["AccountSid"], "AC")
    assert params["CallStatus"] == status
    expected = {
        "AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "Caller", "Direction",
        "From", "To", "Timestamp", "SequenceNumber", "CallbackSource",
    }  # fmt: skip
    assert expected <= params.keys()
    assert params["SequenceNumber"].isdigit()
    assert ("CallDuration" in params) == (status in TERMINAL_CALL_STATUSES)
    assert ("Duration" in params) == (status == "completed")
    event = call_event(status)
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.status == status
    assert event.call_status == status
    assert isinstance(event.timestamp, datetime)
    assert event.timestamp.tzinfo is not None


def test_a_call_sequence_numbers_follow_the_calls_progress() -> None:
    numbers = [int(call_status_params(s)["SequenceNumber"]) for s in CALL_STATUSES[1:5]]
    assert numbers == sorted(numbers)
    assert numbers[0] < numbers[-1]


def test_overrides_replace_add_remove_and_stringify() -> None:
    params = sms_status_params(
        "failed",
        To="+447700900123",  # replaces
        ChannelStatusMessage="carrier said no",  # adds
        Body=None,  # removes
        ErrorCode=30007,  # an int, sent as text
        NumSegments=3,
    )
    assert params["To"] == "+447700900123"
    assert params["ChannelStatusMessage"] == "carrier said no"
    assert "Body" not in params
    assert params["ErrorCode"] == "30007"
    assert params["NumSegments"] == "3"
    assert sms_status_params("undelivered", ErrorCode=None).get("ErrorCode") is None
    call = call_status_params("completed", CallDuration=612, AnsweredBy=None, Custom=True)
    assert call["CallDuration"] == "612"
    assert "AnsweredBy" not in call
    assert call["Custom"] == "True"
    event = sms_event("failed", ErrorCode=30005, NumMedia=None)
    assert event.error_code == 30005
    assert event.num_media is None


def test_sid_sets_every_sid_alias() -> None:
    sid = "SM" + "0123456789abcdef" * 2
    outbound = sms_status_params("sent", sid=sid)
    assert (outbound["MessageSid"], outbound["SmsSid"]) == (sid, sid)
    mms = "MM" + "fedcba9876543210" * 2
    for inbound in (sms_status_params("received", sid=mms), inbound_sms_params(sid=mms)):
        assert (inbound["MessageSid"], inbound["SmsSid"], inbound["SmsMessageSid"]) == (
            mms,
            mms,
            mms,
        )
        assert mms in inbound["MediaUrl0"]
    call_sid = "CA" + "00ff" * 8
    assert call_status_params("ringing", sid=call_sid)["CallSid"] == call_sid
    assert sms_event("delivered", sid=sid).message_sid == sid
    assert call_event("busy", sid=call_sid).call_sid == call_sid


def test_each_payload_has_fresh_sids() -> None:
    messages = [sms_status_params("delivered")["MessageSid"] for _ in range(20)]
    inbound = [inbound_sms_params()["MessageSid"] for _ in range(20)]
    calls = [call_status_params("completed") for _ in range(20)]
    assert len(set(messages)) == 20
    assert len(set(inbound)) == 20
    assert len({c["CallSid"] for c in calls}) == 20
    assert len({c["RecordingSid"] for c in calls}) == 20
    assert all(c["ParentCallSid"] != c["CallSid"] for c in calls)


def test_new_sid() -> None:
    assert_sid(new_sid("SM"), "SM")
    assert_sid(new_sid("ca"), "CA")
    assert new_sid("SM") != new_sid("SM")
    with pytest.raises(ValueError, match="two letters"):
        new_sid("SMS")


def test_typed_events_convert_their_parameters() -> None:
    failed = sms_event("failed", ErrorCode=30003)
    assert isinstance(failed, twilio.SmsStatusChangeEvent)
    assert failed.error_code == 30003
    assert failed.num_segments == 1
    inbound = sms_event("received")
    assert len(inbound.media) == int(inbound["NumMedia"]) == 1
    assert inbound.media[0].content_type == "image/jpeg"
    completed = call_event("completed")
    assert isinstance(completed, twilio.CallStatusEvent)
    assert completed.call_duration == 47
    assert completed.sip_response_code == 200
    assert completed.recording_sid is not None
    assert completed.recording_sid.startswith("RE")


# -- inbound calls -----------------------------------------------------------------------
def test_inbound_call_params_is_an_incoming_calls_webhook() -> None:
    params = inbound_call_params()
    assert "CallbackSource" not in params
    assert params["Direction"] == "inbound"
    assert params["CallStatus"] == "ringing"
    assert SID.fullmatch(params["CallSid"])
    assert params["CallSid"].startswith("CA")
    assert params["CallSid"] != inbound_call_params()["CallSid"]
    assert inbound_call_params(sid="CA" + "1" * 32)["CallSid"] == "CA" + "1" * 32
    assert "StirVerstat" not in inbound_call_params(StirVerstat=None)
    assert inbound_call_params(Digits="5")["Digits"] == "5"


def test_recording_durations_are_twilios() -> None:
    assert recording_status_params("completed")["RecordingDuration"] == "45"
    assert recording_status_params("in-progress")["RecordingDuration"] == "-1"
    assert "RecordingDuration" not in recording_status_params("absent")


def test_recording_event_is_typed() -> None:
    event = recording_event("completed")
    assert event.kind == "recording"
    assert event.recording_duration == 45
    assert event.recording_start_time == datetime(2023, 11, 14, 18, 29, 13, tzinfo=UTC)


# -- CloudEvents ------------------------------------------------------------------------
def test_cloudevent_has_the_envelope_event_streams_sends() -> None:
    event = cloudevent("com.twilio.messaging.message.sent", {"messageSid": "SM1"})
    assert event["specversion"] == "1.0"
    assert event["type"] == "com.twilio.messaging.message.sent"
    assert event["data"] == {"messageSid": "SM1"}
    assert event["datacontenttype"] == "application/json"
    assert isinstance(event["source"], str)
    assert isinstance(event["time"], str)
    assert isinstance(event["id"], str)
    assert event["id"] != cloudevent("x", {})["id"]
    assert cloudevent("x", {}, id="EZ-1")["id"] == "EZ-1"
    json.dumps(event)  # it is JSON as it is


# -- every factory ------------------------------------------------------------------------
#: Each parameter factory, a status it takes, the parameter of its SID, and its prefix.
FACTORIES = [
    pytest.param(sms_status_params, "sent", "MessageSid", "SM", id="sms_status_params"),
    pytest.param(sms_status_params, "received", "MessageSid", "MM", id="sms_status_received"),
    pytest.param(inbound_sms_params, "received", "MessageSid", "MM", id="inbound_sms_params"),
    pytest.param(call_status_params, "completed", "CallSid", "CA", id="call_status_params"),
    pytest.param(inbound_call_params, "ringing", "CallSid", "CA", id="inbound_call_params"),
    pytest.param(
        recording_status_params, "completed", "RecordingSid", "RE", id="recording_status_params"
    ),
]


@pytest.mark.parametrize(("factory", "status", "sid_param", "prefix"), FACTORIES)
def test_each_factory_makes_its_sid_with_its_prefix_and_an_account(
    factory: Callable[..., dict[str, str]], status: str, sid_param: str, prefix: str
) -> None:
    params = factory(status)
    assert_sid(params[sid_param], prefix)
    assert params["AccountSid"] == ACCOUNT_SID
    assert_sid(ACCOUNT_SID, "AC")
    assert_every_sid_is_well_formed(params)
    assert factory(status)[sid_param] != params[sid_param]


@pytest.mark.parametrize(("factory", "status", "sid_param", "prefix"), FACTORIES)
def test_a_none_override_removes_the_parameter_from_any_factory(
    factory: Callable[..., dict[str, str]], status: str, sid_param: str, prefix: str
) -> None:
    full = factory(status)
    for name in full:
        if name == sid_param:
            continue
        assert name not in factory(status, **{name: None}), name
    # Removing a name the payload lacks is no error; the others are kept.
    trimmed = factory(status, NotSent=None, AccountSid=None)
    assert "NotSent" not in trimmed
    assert set(trimmed) == set(full) - {"AccountSid"}


@pytest.mark.parametrize(
    ("factory", "sid_param", "prefix", "kind"),
    [
        (sms_event, "MessageSid", "SM", "sms"),
        (call_event, "CallSid", "CA", "call"),
        (recording_event, "RecordingSid", "RE", "recording"),
    ],
)
def test_each_event_factory_is_typed_with_its_sid(
    factory: Callable[..., twilio.TwilioEvent], sid_param: str, prefix: str, kind: str
) -> None:
    event = factory()
    assert event.kind == kind
    assert event.sid == event[sid_param]
    assert_sid(event.sid, prefix)
    assert sid_param not in factory(**{sid_param: None}).raw
    given = prefix + "1" * 32
    assert factory(sid=given).sid == given


def test_every_kinds_payload_is_one_of_these_factories() -> None:
    for kind in KINDS:
        for value in kind.events or (None,):
            params = kind.payload() if value is None else kind.payload(value)
            event = of_kind(kind, list(params.items()))
            if kind.sid_params and value != "onConversationAdd":  # no SID before it exists
                assert event.sid is not None, (kind.name, value)
                assert event.sid[:2] in kind.sid_prefixes, (kind.name, value)
            if kind.route_by and value is not None:
                assert (event.status or "").lower() == value.lower(), (kind.name, value)
            assert kind.recognises(params) or kind.name == "other", (kind.name, value)
        for variant in kind.variants.values():
            assert variant()[kind.sid_param][:2] in kind.sid_prefixes


def test_new_sid_refuses_what_is_not_two_letters() -> None:
    for bad in ("", "S", "S1", "12", "S-", "SMS"):
        with pytest.raises(ValueError, match="two letters"):
            new_sid(bad)


def test_the_cloudevent_factories_make_their_types_and_ids() -> None:
    message = message_cloudevent("undelivered", sid="SM" + "4" * 32, body=None, errorCode=30007)
    assert message["type"] == "com.twilio.messaging.message.undelivered"
    data = message["data"]
    assert isinstance(data, dict)
    assert (data["messageSid"], data["messageStatus"], data["errorCode"]) == (
        "SM" + "4" * 32,
        "UNDELIVERED",
        30007,
    )
    assert "body" not in data  # None removes a field
    assert_sid(str(message["id"]), "EZ")
    inbound = inbound_message_cloudevent(id="EZ-given")
    assert inbound["type"] == "com.twilio.messaging.inbound-message.received"
    assert inbound["id"] == "EZ-given"
    call = call_cloudevent("busy", sid="CA" + "5" * 32)
    assert call["type"] == "com.twilio.voice.status-callback.call.completed"
    call_data = call["data"]
    assert isinstance(call_data, dict)
    assert call_data["sid"] == "CA" + "5" * 32
    assert call_data["request"]["parameters"]["CallStatus"] == "busy"
    assert str(call_cloudevent("in-progress")["type"]).endswith(".call.answered")
    json.dumps([message, inbound, call])


def test_the_test_kit_exports_these_factories() -> None:
    for name in (
        "new_sid", "sms_status_params", "inbound_sms_params", "call_status_params",
        "inbound_call_params", "recording_status_params", "sms_event", "call_event",
        "recording_event", "cloudevent", "message_cloudevent", "inbound_message_cloudevent",
        "call_cloudevent",
    ):  # fmt: skip
        assert getattr(testing, name) is getattr(payloads, name), name
