"""The event objects passed to callbacks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import twilio_trigger
from twilio_trigger import (
    CallStatusEvent,
    Media,
    RecordingStatusEvent,
    SmsStatusChangeEvent,
    TwilioEvent,
)
from twilio_trigger._core.events import _Param

EVENT_CLASSES: list[type[TwilioEvent]] = [
    SmsStatusChangeEvent,
    CallStatusEvent,
    RecordingStatusEvent,
]

#: The attributes that convert to int / datetime; every other one is text.
INT_ATTRIBUTES = {
    "error_code",
    "num_segments",
    "num_media",
    "referral_num_media",
    "call_duration",
    "duration",
    "recording_duration",
    "sequence_number",
    "sip_response_code",
    "machine_detection_duration",
    "recording_channels",
}
TIME_ATTRIBUTES = {"timestamp", "recording_start_time"}
FLOAT_ATTRIBUTES = {"latitude", "longitude"}
BOOL_ATTRIBUTES = {"forwarded", "frequently_forwarded"}

#: The fields DESIGN.md names, with Twilio's spelling.
DOCUMENTED = {
    SmsStatusChangeEvent: {
        "message_sid": "MessageSid",
        "sms_sid": "SmsSid",
        "sms_status": "SmsStatus",
        "message_status": "MessageStatus",
        "account_sid": "AccountSid",
        "messaging_service_sid": "MessagingServiceSid",
        "from_": "From",
        "to": "To",
        "body": "Body",
        "num_segments": "NumSegments",
        "num_media": "NumMedia",
        "api_version": "ApiVersion",
        "error_code": "ErrorCode",
        "raw_dlr_done_date": "RawDlrDoneDate",
    },
    CallStatusEvent: {
        "call_sid": "CallSid",
        "call_status": "CallStatus",
        "direction": "Direction",
        "caller": "Caller",
        "called": "Called",
        "call_duration": "CallDuration",
        "recording_url": "RecordingUrl",
        "recording_sid": "RecordingSid",
        "sequence_number": "SequenceNumber",
        "timestamp": "Timestamp",
        "account_sid": "AccountSid",
        "from_": "From",
        "to": "To",
        "error_code": "ErrorCode",
    },
    RecordingStatusEvent: {
        "recording_sid": "RecordingSid",
        "recording_url": "RecordingUrl",
        "recording_status": "RecordingStatus",
        "recording_duration": "RecordingDuration",
        "recording_channels": "RecordingChannels",
        "recording_start_time": "RecordingStartTime",
        "recording_source": "RecordingSource",
        "recording_track": "RecordingTrack",
        "call_sid": "CallSid",
        "error_code": "ErrorCode",
    },
}


def descriptors(cls: type[TwilioEvent]) -> dict[str, _Param[object]]:
    found: dict[str, _Param[object]] = {}
    for name in dir(cls):
        attribute = getattr(cls, name)
        if isinstance(attribute, _Param):
            found[name] = attribute
    return found


def snake_case(twilio_name: str) -> str:
    if twilio_name == "From":
        return "from_"  # `from` is a keyword
    return re.sub(r"(?<!^)(?=[A-Z])", "_", twilio_name).lower()


SMS_PAIRS = [
    ("MessageSid", "SM123"),
    ("SmsSid", "SM123"),
    ("MessageStatus", "delivered"),
    ("SmsStatus", "delivered"),
    ("AccountSid", "AC1"),
    ("From", "+15550001"),
    ("To", "+15550002"),
    ("Body", "the secret text"),
    ("NumSegments", "2"),
    ("ErrorCode", "30003"),
    ("RawDlrDoneDate", "2303072155"),
    ("Unknown", "one"),
    ("Unknown", "two"),
]


# -- attribute mapping -----------------------------------------------------------------


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_every_attribute_is_the_snake_case_of_its_twilio_name(cls: type[TwilioEvent]) -> None:
    found = descriptors(cls)
    assert len(found) >= 20
    for attribute, descriptor in found.items():
        assert attribute == snake_case(descriptor.twilio_name)


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_the_documented_fields_exist_with_their_twilio_names(cls: type[TwilioEvent]) -> None:
    found = descriptors(cls)
    for attribute, twilio_name in DOCUMENTED[cls].items():
        assert found[attribute].twilio_name == twilio_name


@pytest.mark.parametrize("cls", EVENT_CLASSES)
@pytest.mark.parametrize("source", ["dict", "pairs"])
def test_every_attribute_reads_its_own_parameter(cls: type[TwilioEvent], source: str) -> None:
    found = descriptors(cls)
    values: dict[str, str] = {}
    for number, (attribute, descriptor) in enumerate(sorted(found.items()), start=1):
        if attribute in INT_ATTRIBUTES:
            values[descriptor.twilio_name] = str(1000 + number)
        elif attribute in TIME_ATTRIBUTES:
            values[descriptor.twilio_name] = f"Mon, 01 Jan 2024 00:{number:02d}:00 +0000"
        elif attribute in FLOAT_ATTRIBUTES:
            values[descriptor.twilio_name] = f"{number}.5"
        elif attribute in BOOL_ATTRIBUTES:
            values[descriptor.twilio_name] = "true" if number % 2 else "false"
        else:
            values[descriptor.twilio_name] = f"value of {descriptor.twilio_name}"
    event = cls(values) if source == "dict" else cls(list(values.items()))
    for number, (attribute, descriptor) in enumerate(sorted(found.items()), start=1):
        got = getattr(event, attribute)
        if attribute in INT_ATTRIBUTES:
            assert got == 1000 + number, attribute
        elif attribute in TIME_ATTRIBUTES:
            assert got == datetime(2024, 1, 1, 0, number, tzinfo=UTC), attribute
        elif attribute in FLOAT_ATTRIBUTES:
            assert got == number + 0.5, attribute
        elif attribute in BOOL_ATTRIBUTES:
            assert got is bool(number % 2), attribute
        else:
            assert got == f"value of {descriptor.twilio_name}", attribute
        assert getattr(type(event), attribute).twilio_name == descriptor.twilio_name


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_each_attribute_converts_as_documented(cls: type[TwilioEvent]) -> None:
    for attribute, descriptor in descriptors(cls).items():
        got = getattr(cls({descriptor.twilio_name: "42"}), attribute)
        if attribute in INT_ATTRIBUTES:
            assert got == 42, attribute
        elif attribute in FLOAT_ATTRIBUTES:
            assert got == 42.0, attribute
        elif attribute in TIME_ATTRIBUTES | BOOL_ATTRIBUTES:
            assert got is None, attribute
        else:
            assert got == "42", attribute


def test_the_location_and_the_whatsapp_flags_convert() -> None:
    event = SmsStatusChangeEvent(
        {"Latitude": "37.7749", "Longitude": "-122.4194", "Forwarded": "TRUE",
         "FrequentlyForwarded": "false", "OptOutType": "STOP"}
    )  # fmt: skip
    assert (event.latitude, event.longitude) == (37.7749, -122.4194)
    assert (event.forwarded, event.frequently_forwarded) == (True, False)
    assert event.opt_out_type == "STOP"
    for bad in ("nan", "inf", "north", ""):
        assert SmsStatusChangeEvent({"Latitude": bad}).latitude is None


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_absent_parameters_read_as_none(cls: type[TwilioEvent]) -> None:
    event = cls({})
    for attribute in descriptors(cls):
        assert getattr(event, attribute) is None, attribute
    assert event.sid is None
    assert event.status is None


# -- conversions -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("30003", 30003), (" 7 ", 7), ("-1", -1)])
def test_ints_parse(text: str, number: int) -> None:
    assert SmsStatusChangeEvent({"ErrorCode": text}).error_code == number
    assert CallStatusEvent({"CallDuration": text}).call_duration == number


@pytest.mark.parametrize(
    "text",
    ["abc", "", " ", "1.5", "١٢", "²", "1e3", "0x10", "+5", "1_000", "12abc", "--1", "-"],
)
def test_malformed_ints_read_as_none(text: str) -> None:
    assert SmsStatusChangeEvent({"ErrorCode": text}).error_code is None
    assert SmsStatusChangeEvent({"NumSegments": text}).num_segments is None
    assert CallStatusEvent({"SequenceNumber": text}).sequence_number is None


def test_a_huge_int_reads_as_none() -> None:
    # int() refuses strings over 4300 digits; a malformed field must still read as None.
    assert SmsStatusChangeEvent({"ErrorCode": "9" * 5000}).error_code is None


@pytest.mark.parametrize(
    "text",
    [
        "Mon, 01 Jan 2024 12:34:56 +0000",
        "Mon, 01 Jan 2024 12:34:56 -0000",
        "Mon, 01 Jan 2024 12:34:56 GMT",
        "01 Jan 2024 12:34:56 +0000",
    ],
)
def test_timestamps_are_aware_utc(text: str) -> None:
    timestamp = CallStatusEvent({"Timestamp": text}).timestamp
    assert timestamp == datetime(2024, 1, 1, 12, 34, 56, tzinfo=UTC)
    assert timestamp is not None
    assert timestamp.tzinfo is not None
    assert timestamp.utcoffset() == timedelta(0)


def test_a_timestamp_with_an_offset_keeps_the_instant() -> None:
    timestamp = CallStatusEvent({"Timestamp": "Mon, 01 Jan 2024 14:34:56 +0200"}).timestamp
    assert timestamp == datetime(2024, 1, 1, 12, 34, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2024-01-01T12:34:56Z",
        "Mon, 32 Jan 2024 12:34:56 +0000",
        "Mon, 01 Jan 2024 25:00:00 +0000",
        "Mon, 01 Jan 2024",
        "\x00",
    ],
)
def test_malformed_timestamps_read_as_none(text: str) -> None:
    assert CallStatusEvent({"Timestamp": text}).timestamp is None


@pytest.mark.parametrize(
    "text",
    [
        "Mon, 01 Jan 2024 12:34:56 +99999999999999999999",
        "Mon, 01 Jan 99999999999999999999 12:34:56 +0000",
        "Mon, 01 Jan 2024 99999999999999999999:00:00 +0000",
    ],
)
def test_timestamps_with_huge_numbers_read_as_none(text: str) -> None:
    assert CallStatusEvent({"Timestamp": text}).timestamp is None


_text = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(value=_text)
def test_no_attribute_raises_whatever_the_value(value: str) -> None:
    for cls in EVENT_CLASSES:
        found = descriptors(cls)
        event = cls({descriptor.twilio_name: value for descriptor in found.values()})
        for attribute in found:
            getattr(event, attribute)
        assert event.sid == (value or None)
        assert event.status == (value or None)


def test_raw_dlr_done_date_stays_text() -> None:
    event = SmsStatusChangeEvent({"RawDlrDoneDate": "2303072155"})
    assert event.raw_dlr_done_date == "2303072155"


# -- media, sid, status ----------------------------------------------------------------


def test_media_items_in_order() -> None:
    event = SmsStatusChangeEvent(
        [
            ("NumMedia", "3"),
            ("MediaContentType1", "image/png"),
            ("MediaUrl0", "https://api.twilio.com/m0"),
            ("MediaUrl1", "https://api.twilio.com/m1"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl2", "https://api.twilio.com/m2"),
        ]
    )
    assert event.media == (
        Media("https://api.twilio.com/m0", "image/jpeg"),
        Media("https://api.twilio.com/m1", "image/png"),
        Media("https://api.twilio.com/m2", None),
    )
    assert event.media[0].url == "https://api.twilio.com/m0"
    assert event.media[0].content_type == "image/jpeg"
    assert SmsStatusChangeEvent({"NumMedia": "0"}).media == ()


@pytest.mark.parametrize(
    ("params", "sid"),
    [
        ({"MessageSid": "SM1", "SmsSid": "SM2", "SmsMessageSid": "SM3"}, "SM1"),
        ({"SmsSid": "SM2", "SmsMessageSid": "SM3"}, "SM2"),
        ({"SmsMessageSid": "SM3"}, "SM3"),
        ({"MessageSid": "", "SmsSid": "SM2"}, "SM2"),
        ({"CallSid": "CA1"}, None),
    ],
)
def test_sms_sid_falls_back_to_the_legacy_names(params: dict[str, str], sid: str | None) -> None:
    assert SmsStatusChangeEvent(params).sid == sid


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"MessageStatus": "delivered", "SmsStatus": "sent"}, "delivered"),
        ({"SmsStatus": "sent"}, "sent"),
        ({"MessageStatus": "", "SmsStatus": "sent"}, "sent"),
        ({"CallStatus": "ringing"}, None),
    ],
)
def test_sms_status_falls_back_to_sms_status(params: dict[str, str], status: str | None) -> None:
    assert SmsStatusChangeEvent(params).status == status


def test_call_sid_and_status() -> None:
    event = CallStatusEvent({"CallSid": "CA1", "CallStatus": "in-progress", "MessageSid": "SM1"})
    assert (event.sid, event.status, event.kind) == ("CA1", "in-progress", "call")
    assert SmsStatusChangeEvent({}).kind == "sms"


# -- Twilio's own names ----------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        SMS_PAIRS,
        {
            **{name: value for name, value in SMS_PAIRS if name != "Unknown"},
            "Unknown": ["one", "two"],
        },
    ],
    ids=["pairs", "dict"],
)
def test_access_by_twilio_name(
    params: Sequence[tuple[str, str]] | Mapping[str, str | list[str]],
) -> None:
    event = SmsStatusChangeEvent(params)
    assert event["MessageSid"] == "SM123"
    assert event["Unknown"] == "one"
    with pytest.raises(KeyError):
        event["Absent"]
    assert event.get("Unknown") == "one"
    assert event.get("Absent") is None
    assert event.get("Absent", "fallback") == "fallback"
    assert event.getall("Unknown") == ("one", "two")
    assert event.getall("Absent") == ()
    assert "Unknown" in event
    assert "Absent" not in event
    assert event.params == tuple(SMS_PAIRS)
    assert list(event) == list(dict.fromkeys(name for name, _ in SMS_PAIRS))
    assert len(event) == len(SMS_PAIRS) - 1


def test_raw_has_every_value_and_is_read_only() -> None:
    event = SmsStatusChangeEvent(SMS_PAIRS)
    raw = event.raw
    assert raw["Unknown"] == ("one", "two")
    assert raw["MessageSid"] == ("SM123",)
    assert dict(raw) == {name: tuple(v for n, v in SMS_PAIRS if n == name) for name, _ in SMS_PAIRS}
    assert event.raw is raw  # computed once
    with pytest.raises(TypeError):
        raw["Unknown"] = ("three",)  # type: ignore[index]
    with pytest.raises(TypeError):
        del raw["Unknown"]  # type: ignore[attr-defined]
    assert event.raw["Unknown"] == ("one", "two")


def test_repeated_parameters_keep_order_and_blanks() -> None:
    event = SmsStatusChangeEvent([("A", ""), ("A", "x"), ("A", "")])
    assert event["A"] == ""
    assert event.getall("A") == ("", "x", "")
    assert event.raw["A"] == ("", "x", "")


# -- equality, hashing, repr -----------------------------------------------------------


def test_equality_and_hashing() -> None:
    first = SmsStatusChangeEvent(SMS_PAIRS)
    same = SmsStatusChangeEvent(list(SMS_PAIRS))
    assert first == same
    assert hash(first) == hash(same)
    assert len({first, same}) == 1
    assert first != SmsStatusChangeEvent(SMS_PAIRS[:-1])
    assert first != SmsStatusChangeEvent(list(reversed(SMS_PAIRS)))
    assert first != CallStatusEvent(SMS_PAIRS)
    assert first != dict(SMS_PAIRS)
    assert SmsStatusChangeEvent({"A": "1", "B": "2"}) == SmsStatusChangeEvent(
        [("A", "1"), ("B", "2")]
    )


def test_repr_names_sid_and_status_but_not_the_body() -> None:
    text = repr(SmsStatusChangeEvent(SMS_PAIRS))
    assert "SmsStatusChangeEvent" in text
    assert "SM123" in text
    assert "delivered" in text
    assert "secret" not in text
    assert "+15550001" not in text
    call = repr(CallStatusEvent({"CallSid": "CA9", "CallStatus": "busy", "From": "+1555"}))
    assert "CA9" in call
    assert "busy" in call
    assert "+1555" not in call


# -- immutability ----------------------------------------------------------------------


def _public_attributes(cls: type[TwilioEvent]) -> list[str]:
    return [name for name in dir(cls) if not name.startswith("__")]


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_no_attribute_can_be_set_or_deleted(cls: type[TwilioEvent]) -> None:
    event = cls([*SMS_PAIRS, ("CallSid", "CA1"), ("CallStatus", "busy")])
    before = event.params
    names = [*_public_attributes(cls), "_pairs", "_first", "_raw", "new_attribute"]
    assert "body" in names or "call_sid" in names
    for name in names:
        with pytest.raises(AttributeError):
            setattr(event, name, "changed")
        with pytest.raises(AttributeError):
            delattr(event, name)
    assert event.params == before
    assert event.sid == event.get(cls._sid_names[0])


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_descriptors_refuse_writes_even_through_object_setattr(cls: type[TwilioEvent]) -> None:
    event = cls({"To": "+1"})
    with pytest.raises(AttributeError):
        object.__setattr__(event, "to", "+2")
    assert event.to == "+1"


def test_seed_aliases() -> None:
    assert twilio_trigger.SmsStatusChangeEventWrapper is SmsStatusChangeEvent
    assert twilio_trigger.CallStatusEventWrapper is CallStatusEvent
