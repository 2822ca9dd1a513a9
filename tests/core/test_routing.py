"""Which kind a request is, and which callback it calls (``routing.py``)."""

from __future__ import annotations

import pytest

from twilio_trigger import (
    CALL_CALLBACKS,
    SMS_CALLBACKS,
    CallStatusEvent,
    GatherEvent,
    GatherPartialEvent,
    RecordingStatusEvent,
    SmsStatusChangeEvent,
)
from twilio_trigger._core import payloads
from twilio_trigger._core.kinds import KINDS, kind_named
from twilio_trigger._core.routing import callback_for, event_of_kind, to_event

# -- routing ---------------------------------------------------------------------------


def test_call_status_wins_over_message_status() -> None:
    event = to_event([("MessageStatus", "delivered"), ("CallStatus", "completed")])
    assert isinstance(event, CallStatusEvent)
    assert callback_for(event) == "on_completed"


def test_message_status_routes_to_sms() -> None:
    event = to_event([("MessageSid", "SM1"), ("MessageStatus", "sent")])
    assert isinstance(event, SmsStatusChangeEvent)
    assert event.sid == "SM1"
    assert callback_for(event) == "on_sent"


def test_sms_status_alone_routes_to_sms() -> None:
    event = to_event([("SmsSid", "SM1"), ("SmsStatus", "received")])
    assert isinstance(event, SmsStatusChangeEvent)
    assert event.status == "received"
    assert callback_for(event) == "on_received"


def test_an_inbound_message_without_a_status_is_received() -> None:
    # Twilio's list of an inbound message's parameters (no SmsStatus).
    params = [
        ("MessageSid", "SM1"), ("SmsSid", "SM1"), ("SmsMessageSid", "SM1"),
        ("AccountSid", "AC1"), ("From", "+15551230000"), ("To", "+15551239999"),
        ("Body", "hello"), ("NumMedia", "0"), ("NumSegments", "1"),
    ]  # fmt: skip
    event = to_event(params)
    assert isinstance(event, SmsStatusChangeEvent)
    assert event.status == "received"
    assert event.sms_status is None
    assert callback_for(event) == "on_received"
    # Without NumMedia, MessageSid alone is no message's: left to a fallback.
    assert to_event([p for p in params if p[0] != "NumMedia"]) is None
    # A CallStatus still makes it a call's; a stated status still wins.
    assert not isinstance(to_event([*params, ("CallStatus", "ringing")]), SmsStatusChangeEvent)
    stated = to_event([*params, ("MessageStatus", "delivered")])
    assert stated is not None
    assert stated.status == "delivered"
    # An event made by hand without a status and without NumMedia states none.
    assert SmsStatusChangeEvent({"MessageSid": "SM1"}).status is None
    assert SmsStatusChangeEvent({"MessageSid": "SM1", "NumMedia": "2"}).status == "received"


def test_empty_status_values_count_as_absent() -> None:
    event = to_event([("CallStatus", ""), ("MessageStatus", "delivered")])
    assert isinstance(event, SmsStatusChangeEvent)
    assert callback_for(event) == "on_delivered"
    event = to_event([("MessageStatus", ""), ("SmsStatus", "sent")])
    assert isinstance(event, SmsStatusChangeEvent)
    assert callback_for(event) == "on_sent"
    assert to_event([("CallStatus", ""), ("MessageStatus", ""), ("SmsStatus", "")]) is None
    assert to_event([("MessageSid", "SM1"), ("Body", "hi")]) is None
    assert to_event([]) is None


def test_routing_keeps_every_parameter() -> None:
    params = [("CallStatus", "ringing"), ("X", "1"), ("X", "2")]
    event = to_event(params)
    assert event is not None
    assert event.params == tuple(params)
    assert event.getall("X") == ("1", "2")


@pytest.mark.parametrize(
    ("params", "callback"),
    [
        ([("CallStatus", "in-progress")], "on_in_progress"),
        ([("CallStatus", "no-answer")], "on_no_answer"),
        ([("CallStatus", "Ringing")], "on_ringing"),
        ([("CallStatus", " busy ")], "on_busy"),
        ([("MessageStatus", "Delivered")], "on_delivered"),
        ([("MessageStatus", "partially_delivered")], "on_partially_delivered"),
        ([("SmsStatus", "UNDELIVERED")], "on_undelivered"),
        ([("MessageStatus", "exploded")], None),
        ([("CallStatus", "exploded")], None),
        ([("MessageStatus", "in-progress")], None),  # a call status on a message
        ([("MessageStatus", "ringing")], None),
        ([("CallStatus", "delivered")], None),  # a message status on a call
        ([("CallStatus", "on_busy")], None),
    ],
)
def test_callback_for(params: list[tuple[str, str]], callback: str | None) -> None:
    event = to_event(params)
    assert event is not None
    assert callback_for(event) == callback


@pytest.mark.parametrize("name", SMS_CALLBACKS)
def test_every_sms_status_has_its_callback(name: str) -> None:
    status = name.removeprefix("on_")
    event = to_event([("MessageStatus", status)])
    assert event is not None
    assert callback_for(event) == name


@pytest.mark.parametrize("name", CALL_CALLBACKS)
def test_every_call_status_has_its_callback(name: str) -> None:
    status = name.removeprefix("on_").replace("_", "-")
    event = to_event([("CallStatus", status)])
    assert event is not None
    assert callback_for(event) == name


# -- a path's kinds first -------------------------------------------------------------------
def test_a_paths_preferred_kind_is_tried_first() -> None:
    params = [("CallSid", "CA1"), ("CallStatus", "completed"), ("MessageStatus", "delivered")]
    assert isinstance(to_event(params), CallStatusEvent)
    preferred = to_event(params, None, (kind_named("sms"),))
    assert isinstance(preferred, SmsStatusChangeEvent)
    assert preferred.status == "delivered"
    assert callback_for(preferred) == "on_delivered"
    assert preferred.params == tuple(params)


def test_a_preferred_kind_that_does_not_match_falls_back_to_the_registry() -> None:
    params = [("CallSid", "CA1"), ("CallStatus", "ringing")]
    event = to_event(params, None, (kind_named("recording"), kind_named("sms")))
    assert isinstance(event, CallStatusEvent)
    assert to_event([("Body", "hi")], None, tuple(KINDS)) is None


def test_a_recording_callback_is_a_recording_event_though_it_carries_the_call() -> None:
    params = [("CallSid", "CA1"), ("RecordingSid", "RE1"), ("RecordingStatus", "completed")]
    event = to_event([*params, ("CallStatus", "completed")])
    assert isinstance(event, RecordingStatusEvent)
    assert (event.sid, callback_for(event)) == ("RE1", "on_completed")


def test_the_first_values_given_are_those_recognised() -> None:
    params = [("MessageStatus", ""), ("MessageStatus", "sent")]
    # By default the first value of a name counts: an empty one, so absent.
    assert to_event(params) is None
    # A caller that has each name's first value already passes it on.
    event = to_event(params, {"MessageStatus": "sent"})
    assert isinstance(event, SmsStatusChangeEvent)
    assert event.getall("MessageStatus") == ("", "sent")


# -- event_of_kind -----------------------------------------------------------------------------
def test_event_of_kind_makes_the_named_kinds_event_whatever_the_parameters() -> None:
    params = [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("CallStatus", "busy")]
    event = event_of_kind("sms", params)
    assert isinstance(event, SmsStatusChangeEvent)
    assert (event.sid, event.status, event.params) == ("SM1", "delivered", tuple(params))
    assert isinstance(event_of_kind("call", params), CallStatusEvent)
    assert isinstance(event_of_kind("recording", []), RecordingStatusEvent)


@pytest.mark.parametrize("name", ["fax", "SMS", "", "sms "])
def test_event_of_kind_of_a_name_no_longer_registered_is_none(name: str) -> None:
    assert event_of_kind(name, [("MessageStatus", "delivered")]) is None


def test_a_gather_with_only_the_finish_key_is_a_gathers_result() -> None:
    # The caller pressed only the finish key: Digits is empty, FinishedOnKey says which.
    call = list(payloads.call_status_params("in-progress", CallbackSource=None).items())
    event = to_event([*call, ("Digits", ""), ("FinishedOnKey", "#")])
    assert isinstance(event, GatherEvent)
    assert callback_for(event) == "on_gather"
    assert event.finished_on_key == "#"


def test_a_partial_speech_result_with_an_empty_unstable_part_is_partial() -> None:
    call = list(payloads.call_status_params("in-progress", CallbackSource=None).items())
    event = to_event(
        [
            *call,
            ("UnstableSpeechResult", ""),
            ("StableSpeechResult", "hello"),
            ("SequenceNumber", "2"),
        ]
    )
    assert isinstance(event, GatherPartialEvent)
    assert callback_for(event) == "on_gather_partial"
