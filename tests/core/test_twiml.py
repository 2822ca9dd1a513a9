"""Replies: what a callback may return, and the TwiML it becomes (no server)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from twilio_trigger import CallStatusEvent
from twilio_trigger._core.twiml import EMPTY_RESPONSE, ReplyError, expects_twiml, reply_body
from twilio_trigger.testing import (
    call_event,
    inbound_call_params,
    recording_event,
    sms_event,
)

DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def parsed(body: bytes) -> ElementTree.Element:
    assert body.startswith(DECLARATION)
    return ElementTree.fromstring(body)  # noqa: S314 - produced by the code under test


def test_only_inbound_messages_and_voice_requests_expect_twiml() -> None:
    assert expects_twiml(sms_event("received"))
    assert not expects_twiml(sms_event("delivered"))
    assert expects_twiml(CallStatusEvent(inbound_call_params("ringing")))
    assert not expects_twiml(call_event("ringing"))  # a status callback: CallbackSource
    assert expects_twiml(call_event("in-progress", CallbackSource=None))  # an answered call
    assert not expects_twiml(recording_event("completed"))


@pytest.mark.parametrize(
    "text", ["Thanks!", "a < b & c > d", "quotes \" and ' stay", "emoji \U0001f4e6 and é", ""]
)
def test_a_str_reply_to_a_message_is_one_escaped_message(text: str) -> None:
    root = parsed(reply_body(sms_event("received"), text))
    assert [child.tag for child in root] == ["Message"]
    assert root.findtext("Message") == text


def test_a_twiml_object_is_sent_as_it_is() -> None:
    response = MessagingResponse()
    response.message("one")
    response.message("two").media("https://example.com/a.jpg")
    body = reply_body(sms_event("received"), response)
    assert body == str(response).encode("utf-8")
    messages = parsed(body).findall("Message")
    assert [m.text for m in messages] == ["one", "two"]
    assert messages[1].findtext("Media") == "https://example.com/a.jpg"


def test_a_call_reply_is_twiml_given_as_str_or_object() -> None:
    event = CallStatusEvent(inbound_call_params("ringing"))
    voice = VoiceResponse()
    voice.say("Hello")
    assert parsed(reply_body(event, voice)).findtext("Say") == "Hello"
    text = "  <Response><Say>Hi</Say><Hangup/></Response>\n"
    assert reply_body(event, text) == DECLARATION + text.strip().encode()


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (42, "returned an int"),
        (True, "returned a bool"),
        ({"Body": "x"}, "returned a dict"),
        (["x"], "returned a list"),
        (b"<Response/>", "returned a bytes"),
        (object(), "not TwiML"),
    ],
)
def test_other_replies_are_refused_with_what_was_returned(reply: object, says: str) -> None:
    with pytest.raises(ReplyError, match=says):
        reply_body(sms_event("received"), reply)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Hello caller", "not TwiML"),
        ("<Say>Hello</Say>", "root element is <Say>"),
        ("<Response><Say>unclosed</Response>", "not TwiML"),
    ],
)
def test_a_call_str_must_be_twiml(text: str, says: str) -> None:
    with pytest.raises(ReplyError, match=says):
        reply_body(CallStatusEvent(inbound_call_params("ringing")), text)


def test_the_empty_answer_is_a_bare_response() -> None:
    assert list(parsed(EMPTY_RESPONSE)) == []
