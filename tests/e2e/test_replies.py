"""Replies over real HTTP: what ``on_received`` and an incoming call's callback return.

An inbound message's callback may return a ``str`` (one escaped ``<Message>``) or
a TwiML object (sent as its ``str()``); a voice request without ``CallbackSource``
may be answered with TwiML.  Whatever cannot be TwiML is a failure (500, one
ERROR record naming the callback).  With an inbox, an incoming call is still
answered inline; an inbound message is stored, and its reply dropped (said once).

TwiML is built with twilio-python's ``MessagingResponse`` and ``VoiceResponse``,
the independent oracle, and every answer is parsed with ``xml.etree``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

import twilio_trigger as twilio
from tests.payloads import (
    Params,
    call_status_payload,
    inbound_message_payload,
    signed_post,
    sms_status_payload,
)

from ._support import (
    TOKEN,
    CallRecorder,
    Recorder,
    assert_empty_twiml,
    records,
    running,
    wait_until,
)

#: The voice webhook of an incoming call, as Twilio sends it (no CallbackSource).
INCOMING_CALL = {
    "AccountSid": "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978",
    "ApiVersion": "2010-04-01",
    "CallStatus": "ringing",
    "Direction": "inbound",
    "From": "+15558675310",
    "Caller": "+15558675310",
    "To": "+14155550143",
    "Called": "+14155550143",
    "CallerCity": "BROOKLYN",
    "CallerState": "NY",
    "CallerCountry": "US",
    "StirVerstat": "TN-Validation-Passed-A",
}

GREETING = "Welcome to Acme Logistics. Your parcel is on its way."


def incoming_call(**overrides: str) -> dict[str, str]:
    """An incoming call's webhook with a fresh CallSid."""
    return {**INCOMING_CALL, "CallSid": "CA" + uuid.uuid4().hex, **overrides}


class ReplyingSms(twilio.SmsStatusService):
    """``on_received`` returns whatever ``reply`` holds; ``on_delivered`` returns text too."""

    def __init__(self) -> None:
        self.reply: object = None
        self.events: list[twilio.SmsStatusChangeEvent] = []
        self.lock = threading.Lock()

    async def on_received(self, event: twilio.SmsStatusChangeEvent) -> object:
        with self.lock:
            self.events.append(event)
        return self.reply

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> object:
        with self.lock:
            self.events.append(event)
        return "a status callback's return value means nothing to Twilio"

    def count(self) -> int:
        with self.lock:
            return len(self.events)


class ReplyingCalls(twilio.CallStatusService):
    """Every callback returns whatever ``reply`` holds."""

    def __init__(self) -> None:
        self.reply: object = None
        self.events: list[twilio.CallStatusEvent] = []
        self.lock = threading.Lock()

    def _record(self, event: twilio.CallStatusEvent) -> object:
        with self.lock:
            self.events.append(event)
        return self.reply

    def on_ringing(self, event: twilio.CallStatusEvent) -> object:
        return self._record(event)

    async def on_in_progress(self, event: twilio.CallStatusEvent) -> object:
        return self._record(event)

    def on_completed(self, event: twilio.CallStatusEvent) -> object:
        return self._record(event)

    def count(self) -> int:
        with self.lock:
            return len(self.events)


class NotXml:
    """A reply object whose ``str()`` is plain text."""

    def __str__(self) -> str:
        return "Thanks, we got your message"


class BrokenTwiml:
    """A reply object whose ``str()`` raises, like a TwiML builder with a bug."""

    def __str__(self) -> str:
        raise RuntimeError("the TwiML template could not be rendered")


@pytest.fixture(scope="module")
def sms() -> ReplyingSms:
    return ReplyingSms()


@pytest.fixture(scope="module")
def calls() -> ReplyingCalls:
    return ReplyingCalls()


@pytest.fixture(scope="module")
def listener(sms: ReplyingSms, calls: ReplyingCalls) -> Iterator[twilio.Listener]:
    with running(sms, calls) as listener:
        yield listener


@pytest.fixture(scope="module")
def client(listener: twilio.Listener) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh(sms: ReplyingSms, calls: ReplyingCalls) -> None:
    for service in (sms, calls):
        service.reply = None
        service.events.clear()


def post(
    client: httpx.Client, listener: twilio.Listener, params: Params, token: str | None = None
) -> httpx.Response:
    headers = {"I-Twilio-Idempotency-Token": token} if token else None
    return signed_post(listener.url, params, TOKEN, client=client, headers=headers)


def twiml_of(response: httpx.Response) -> ElementTree.Element:
    """The answer's TwiML document, parsed: 200, text/xml, root <Response>."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].partition(";")[0].strip() == "text/xml"
    root = ElementTree.fromstring(response.content)  # noqa: S314 - our own listener's answer
    assert root.tag == "Response", response.text
    return root


def assert_callback_failed(response: httpx.Response) -> None:
    """500 with a short, one-line plain-text body that tells nothing internal."""
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert len(response.content) < 120, response.text
    assert response.text.count("\n") == 1, response.text
    assert "Error" not in response.text, response.text
    assert "Traceback" not in response.text, response.text


def one_error_naming(caplog: pytest.LogCaptureFixture, label: str) -> logging.LogRecord:
    errors = records(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert label in errors[0].getMessage(), errors[0].getMessage()
    return errors[0]


# -- inbound messages: str replies -------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Reply STOP to unsubscribe",
        "Order #42: 3 < 5 && 5 > 3, \"quoted\" & 'single'",
        "Ça marche, José! Votre colis 📦 arrive demain — 東京 ✓",
        "<Message>not a nested element</Message>]]>",
        "Line one\nLine two\n\ttabbed",
        "&amp; stays literally &amp;",
    ],
    ids=["plain", "markup-characters", "non-ascii", "xml-lookalike", "newlines", "entity-text"],
)
def test_str_reply_is_one_escaped_message(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms, text: str
) -> None:
    sms.reply = text
    root = twiml_of(post(client, listener, inbound_message_payload()))
    assert [child.tag for child in root] == ["Message"]
    assert root[0].text == text
    assert list(root[0]) == []  # the text stayed text: no element smuggled in
    # The same document twilio-python builds for that message.
    oracle = MessagingResponse()
    oracle.message(text)
    expected = ElementTree.fromstring(str(oracle).encode("utf-8"))  # noqa: S314
    assert [(c.tag, c.text) for c in expected] == [(c.tag, c.text) for c in root]
    assert sms.count() == 1


def test_str_reply_body_is_utf8_with_an_xml_declaration(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    sms.reply = "Grüße 📦"
    response = post(client, listener, inbound_message_payload())
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert "Grüße 📦".encode() in response.content
    assert twiml_of(response)[0].text == "Grüße 📦"


def test_an_inbound_message_without_a_status_is_received_and_answered(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    # The parameters Twilio's documentation lists for an inbound message: no
    # SmsStatus (its requests carry one in practice, the list does not).
    params = {
        name: value
        for name, value in inbound_message_payload().items()
        if name not in ("SmsStatus", "MessageStatus")
    }
    assert "NumMedia" in params
    sms.reply = "Got it"
    root = twiml_of(post(client, listener, params))
    assert [(child.tag, child.text) for child in root] == [("Message", "Got it")]
    assert sms.count() == 1
    event = sms.events[0]
    assert event.status == "received"
    assert event.sms_status is None
    assert event.message_sid == params["MessageSid"]


# Characters XML 1.0 allows, without CR (which XML parsers turn into LF).
_XML_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc"),
        blacklist_characters="\ufffe\uffff",
    )
    | st.sampled_from("\t\n<>&\"'"),
    max_size=80,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=_XML_TEXT)
def test_any_str_reply_round_trips_through_the_twiml(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms, text: str
) -> None:
    sms.reply = text
    root = twiml_of(post(client, listener, inbound_message_payload()))
    assert [child.tag for child in root] == ["Message"]
    assert (root[0].text or "") == text


def test_str_reply_with_a_control_character_is_never_malformed_twiml(
    client: httpx.Client,
    listener: twilio.Listener,
    sms: ReplyingSms,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # XML 1.0 forbids U+0000-U+001F but TAB, LF, CR, even as &#12; references:
    # Twilio's parser rejects such a document (error 12100) and the sender gets
    # nothing.  The listener must send well-formed TwiML, or fail loudly (500).
    sms.reply = "Your code is\x0c 4829\x1b10\x00"
    response = post(client, listener, inbound_message_payload())
    if response.status_code == 500:
        assert_callback_failed(response)
        one_error_naming(caplog, "ReplyingSms.on_received")
        return
    root = twiml_of(response)  # a ParseError here is the bug
    assert [child.tag for child in root] == ["Message"]


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        ('<?xml version="1.0" encoding="ISO-8859-1"?><Response><Say>Café</Say></Response>', "Café"),
        ("\ufeff<Response><Say>Read from a file saved with a BOM</Say></Response>",
         "Read from a file saved with a BOM"),
    ],
    ids=["latin-1-declaration", "byte-order-mark"],
)  # fmt: skip
def test_str_twiml_is_sent_as_a_document_twilio_reads_as_written(
    client: httpx.Client,
    listener: twilio.Listener,
    calls: ReplyingCalls,
    caplog: pytest.LogCaptureFixture,
    reply: str,
    said: str,
) -> None:
    # Twilio parses the bytes it gets, by the encoding they declare: the answer
    # must say what the callback wrote, or be refused as the callback's failure.
    calls.reply = reply
    response = post(client, listener, incoming_call())
    if response.status_code == 500:
        assert_callback_failed(response)
        one_error_naming(caplog, "ReplyingCalls.on_ringing")
        return
    root = twiml_of(response)  # a ParseError here is the bug
    assert [say.text for say in root.findall("Say")] == [said]


# -- inbound messages: TwiML objects and None ------------------------------------------
def test_messaging_response_with_two_messages_and_media_is_sent_as_is(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    reply = MessagingResponse()
    reply.message("Your parcel 📦 ships <today> & tomorrow")
    second = reply.message("Here is the shipping label")
    second.media("https://demo.twilio.com/owl.png")
    sms.reply = reply
    response = post(client, listener, inbound_message_payload())
    assert response.content == str(reply).encode("utf-8")
    root = twiml_of(response)
    messages = root.findall("Message")
    assert len(messages) == 2
    assert messages[0].text == "Your parcel 📦 ships <today> & tomorrow"
    assert messages[1].text == "Here is the shipping label"
    assert [m.text for m in messages[1].findall("Media")] == ["https://demo.twilio.com/owl.png"]


def test_none_reply_is_the_empty_response(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    sms.reply = None
    assert_empty_twiml(post(client, listener, inbound_message_payload()))
    assert sms.count() == 1


def test_empty_messaging_response_is_an_empty_response(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    sms.reply = MessagingResponse()
    root = twiml_of(post(client, listener, inbound_message_payload()))
    assert list(root) == []


def test_what_a_status_callback_returns_is_not_sent(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms, calls: ReplyingCalls
) -> None:
    # on_delivered returns a str, on_completed a VoiceResponse: status callbacks
    # are receipts, so both get the empty document, and neither is an error.
    assert_empty_twiml(post(client, listener, sms_status_payload("delivered")))
    assert sms.count() == 1
    say = VoiceResponse()
    say.say(GREETING)
    calls.reply = say
    assert_empty_twiml(post(client, listener, call_status_payload("completed")))
    assert calls.count() == 1


# -- replies that cannot be TwiML -------------------------------------------------
@pytest.mark.parametrize(
    "reply",
    [7, 2.5, True, {"Body": "hi"}, ["Thanks"], b"<Response/>", NotXml()],
    ids=["int", "float", "bool", "dict", "list", "bytes", "str-is-not-xml"],
)
def test_inbound_message_reply_that_is_not_twiml_fails_with_one_error(
    client: httpx.Client,
    listener: twilio.Listener,
    sms: ReplyingSms,
    caplog: pytest.LogCaptureFixture,
    reply: object,
) -> None:
    sms.reply = reply
    response = post(client, listener, inbound_message_payload())
    assert_callback_failed(response)
    record = one_error_naming(caplog, "ReplyingSms.on_received")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], TypeError)  # ReplyError is a TypeError
    assert sms.count() == 1


@pytest.mark.parametrize(
    "reply",
    [
        "Press 1 for sales",
        "<Say>hello</Say>",
        "<Response><Say>unclosed</Response>",
        NotXml(),
        42,
    ],
    ids=["plain-text", "root-is-not-response", "malformed", "object-not-xml", "int"],
)
def test_call_reply_that_is_not_twiml_fails_with_one_error(
    client: httpx.Client,
    listener: twilio.Listener,
    calls: ReplyingCalls,
    caplog: pytest.LogCaptureFixture,
    reply: object,
) -> None:
    calls.reply = reply
    response = post(client, listener, incoming_call())
    assert_callback_failed(response)
    one_error_naming(caplog, "ReplyingCalls.on_ringing")
    assert calls.count() == 1


def test_a_lone_surrogate_in_a_text_reply_is_replaced(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    # Text replies often echo the sender's words: what XML cannot carry becomes
    # U+FFFD, and the rest of the message still goes out.
    sms.reply = "Lone surrogate \ud83d from a bad decode"
    root = twiml_of(post(client, listener, inbound_message_payload()))
    assert root.findtext("Message") == "Lone surrogate \ufffd from a bad decode"


@pytest.mark.parametrize(
    "reply",
    [BrokenTwiml(), "<Response><Say>Lone \ud83d in TwiML</Say></Response>"],
    ids=["str-raises", "lone-surrogate-in-twiml"],
)
def test_reply_that_cannot_be_rendered_is_the_callbacks_failure(
    client: httpx.Client,
    listener: twilio.Listener,
    sms: ReplyingSms,
    caplog: pytest.LogCaptureFixture,
    reply: object,
) -> None:
    # Rendering the reply is part of the callback's outcome: a 500 blamed on the
    # callback, never a 503 that blames the duplicate store.
    sms.reply = reply if isinstance(reply, BrokenTwiml) else _TwimlText(str(reply))
    response = post(client, listener, inbound_message_payload())
    assert_callback_failed(response)
    one_error_naming(caplog, "ReplyingSms.on_received")
    assert not any("store" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]


class _TwimlText:
    """A TwiML object (not a str) whose text is given: sent as it is."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


# -- retries ---------------------------------------------------------------------------
def test_a_retry_of_a_replied_message_does_not_run_the_callback_again(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    sms.reply = "We got it, thanks!"
    payload = inbound_message_payload()
    token = str(uuid.uuid4())
    first = post(client, listener, payload, token)
    assert twiml_of(first)[0].text == "We got it, thanks!"
    again = post(client, listener, payload, token)
    assert again.status_code == 200, again.text
    assert again.headers["content-type"].partition(";")[0] == "text/xml"
    # The copy gets the reply the first one got: Twilio retried because the
    # answer was late or lost, and the sender must still hear back.
    assert again.content == first.content
    assert sms.count() == 1


def test_a_call_asking_the_same_url_again_runs_its_callback_again(
    client: httpx.Client, listener: twilio.Listener, calls: ReplyingCalls
) -> None:
    # A hold loop (<Play/><Redirect>/</Redirect>) asks the same URL with the same
    # parameters each time round: each request must run the callback, which
    # decides whether the caller still waits.  Twilio does not retry a call's
    # requests for TwiML on its own: they are never taken for copies.
    payload = incoming_call(CallStatus="in-progress")
    said = []
    for text in ("Please hold", "Please hold", "Connecting you now"):
        voice = VoiceResponse()
        voice.say(text)
        calls.reply = voice
        said.append(twiml_of(post(client, listener, payload, str(uuid.uuid4()))).findtext("Say"))
    assert said == ["Please hold", "Please hold", "Connecting you now"]
    assert calls.count() == 3


class StepCalls(twilio.CallStatusService):
    """Answers each request for TwiML with the step its URL's query names."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.steps: list[str] = []

    def on_in_progress(self, event: twilio.CallStatusEvent) -> str:
        step = event.query.get("step", ("none",))[0]
        self.steps.append(step)
        return f"<Response><Say>{self.name} {step}</Say></Response>"


def test_each_redirect_of_a_live_call_runs_its_callback() -> None:
    # A call asks for TwiML again at each <Redirect>, with the same CallSid and
    # CallStatus: each is a request of its own, the same URL again too.
    calls = StepCalls()
    params = call_status_payload("in-progress", CallbackSource=None)
    with running(calls) as served, httpx.Client(trust_env=False, timeout=10.0) as http:
        said = []
        for step in ("1", "2", "1"):
            url = f"{served.url}?step={step}"
            said.append(twiml_of(signed_post(url, params, TOKEN, client=http)).findtext("Say"))
    assert said == ["main 1", "main 2", "main 1"]
    assert calls.steps == ["1", "2", "1"]


def test_a_live_calls_requests_at_two_paths_each_run_their_service() -> None:
    main, menu = StepCalls("main"), StepCalls("menu")
    params = call_status_payload("in-progress", CallbackSource=None)
    served = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    served.attach(main)
    served.attach(menu, path="/voice/menu")
    with served, httpx.Client(trust_env=False, timeout=10.0) as http:
        first = twiml_of(signed_post(served.url, params, TOKEN, client=http))
        menu_url = served.url.rstrip("/") + "/voice/menu"
        second = twiml_of(signed_post(menu_url, params, TOKEN, client=http))
    assert (first.findtext("Say"), second.findtext("Say")) == ("main none", "menu none")
    assert (main.steps, menu.steps) == (["none"], ["none"])


def test_status_callbacks_of_one_call_at_two_urls_are_still_one_delivery() -> None:
    # Only a request that says what the call does counts its URL: a status
    # callback is its SID, status and sequence number, wherever it is sent.
    recorder = Recorder()
    params = call_status_payload("completed")
    with running(CallRecorder(recorder)) as served:
        for query in ("", "?from=a", "?from=b"):
            assert signed_post(served.url + query, params, TOKEN).status_code == 200
    assert len(recorder.calls) == 1


def test_a_retry_after_a_bad_reply_runs_the_callback_again(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    payload = inbound_message_payload()
    token = str(uuid.uuid4())
    sms.reply = {"not": "twiml"}
    assert_callback_failed(post(client, listener, payload, token))
    sms.reply = "Second time lucky"
    root = twiml_of(post(client, listener, payload, token))
    assert root[0].text == "Second time lucky"
    assert sms.count() == 2


# -- incoming calls ---------------------------------------------------------------
def test_incoming_call_is_answered_with_a_voice_response(
    client: httpx.Client, listener: twilio.Listener, calls: ReplyingCalls
) -> None:
    answer = VoiceResponse()
    answer.say(GREETING, voice="alice")
    answer.dial("+14155550100")
    calls.reply = answer
    params = incoming_call()
    response = post(client, listener, params)
    assert response.content == str(answer).encode("utf-8")
    root = twiml_of(response)
    [say] = root.findall("Say")
    assert say.text == GREETING
    assert say.get("voice") == "alice"
    assert [d.text for d in root.findall("Dial")] == ["+14155550100"]
    [event] = calls.events
    assert event.call_sid == params["CallSid"]
    assert event.direction == "inbound"
    assert event.callback_source is None


def test_incoming_call_is_answered_with_a_str_of_twiml(
    client: httpx.Client, listener: twilio.Listener, calls: ReplyingCalls
) -> None:
    calls.reply = f"  <Response><Say>{GREETING}</Say><Hangup/></Response>\n"
    response = post(client, listener, incoming_call())
    assert response.content.startswith(b"<?xml")  # a declaration is added
    root = twiml_of(response)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text == GREETING


def test_str_twiml_with_its_own_declaration_is_sent_once_declared(
    client: httpx.Client, listener: twilio.Listener, calls: ReplyingCalls
) -> None:
    calls.reply = (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{GREETING}</Say></Response>'
    )
    response = post(client, listener, incoming_call())
    assert response.content.count(b"<?xml") == 1
    assert twiml_of(response)[0].text == GREETING


def test_answered_outbound_call_without_callback_source_is_answered_too(
    client: httpx.Client, listener: twilio.Listener, calls: ReplyingCalls
) -> None:
    # The Url of an outbound call is fetched when it is answered: CallStatus
    # in-progress, no CallbackSource, and Twilio waits for what the call does.
    say = VoiceResponse()
    say.say("This is Acme with your delivery window.")
    calls.reply = say
    params = call_status_payload("in-progress", CallbackSource=None)
    root = twiml_of(post(client, listener, params))
    assert root.findall("Say")[0].text == "This is Acme with your delivery window."


def test_incoming_call_answered_with_none_gets_the_empty_response(
    client: httpx.Client, listener: twilio.Listener, calls: ReplyingCalls
) -> None:
    assert_empty_twiml(post(client, listener, incoming_call()))
    assert calls.count() == 1


# -- with an inbox ------------------------------------------------------------------
def rows(db: Path, sid: str) -> list[tuple[str, str, str]]:
    """``(kind, status, state)`` of the inbox's rows for *sid*, read with plain sqlite3."""
    if not db.exists():
        return []
    connection = sqlite3.connect(db)
    try:
        query = "SELECT kind, status, state FROM events WHERE sid = ? ORDER BY id"
        return connection.execute(query, (sid,)).fetchall()
    finally:
        connection.close()


def test_with_an_inbox_calls_are_answered_inline_and_messages_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "events.db"
    sms, calls = ReplyingSms(), ReplyingCalls()
    sms.reply = "Thanks! This reply cannot be sent from the inbox"
    answer = VoiceResponse()
    answer.say(GREETING)
    calls.reply = answer
    with running(sms, calls, inbox=f"sqlite:///{db}", retry_backoff=0.05) as listener:
        # The incoming call waits for its TwiML: answered inline, never stored.
        ringing = incoming_call()
        response = signed_post(listener.url, ringing, TOKEN)
        assert response.content == str(answer).encode("utf-8")
        assert twiml_of(response).findall("Say")[0].text == GREETING
        assert calls.count() == 1
        # A status callback of that call (CallbackSource set) is stored.
        status = call_status_payload("completed", sid=ringing["CallSid"])
        assert_empty_twiml(signed_post(listener.url, status, TOKEN))
        # Two inbound messages: stored, acknowledged with the empty document.
        first, second = inbound_message_payload(), inbound_message_payload()
        for params in (first, second):
            assert_empty_twiml(signed_post(listener.url, params, TOKEN))
        wait_until(lambda: calls.count() == 2 and sms.count() == 2, "the workers' callbacks")
        wait_until(
            lambda: (
                [r[2] for r in rows(db, first["MessageSid"])] == ["done"]
                and [r[2] for r in rows(db, second["MessageSid"])] == ["done"]
            ),
            "both messages done in the inbox",
        )
        assert rows(db, ringing["CallSid"]) == [("call", "completed", "done")]
    assert [e.status for e in calls.events] == ["ringing", "completed"]
    dropped = [r for r in records(caplog, logging.WARNING) if "cannot be sent" in r.getMessage()]
    assert len(dropped) == 1, [r.getMessage() for r in dropped]
    assert "ReplyingSms.on_received" in dropped[0].getMessage()
    assert records(caplog, logging.ERROR) == []


def test_with_an_inbox_a_bad_call_reply_is_still_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = ReplyingCalls()
    calls.reply = "Please hold"
    with running(calls, inbox=f"sqlite:///{tmp_path / 'events.db'}") as listener:
        response = signed_post(listener.url, incoming_call(), TOKEN)
    assert_callback_failed(response)
    one_error_naming(caplog, "ReplyingCalls.on_ringing")


def test_without_deduplication_replies_work_the_same(caplog: pytest.LogCaptureFixture) -> None:
    sms = ReplyingSms()
    with running(sms, deduplicate=False) as listener:
        sms.reply = "No store, same answer"
        root = twiml_of(signed_post(listener.url, inbound_message_payload(), TOKEN))
        assert root[0].text == "No store, same answer"
        sms.reply = 12
        assert_callback_failed(signed_post(listener.url, inbound_message_payload(), TOKEN))
        one_error_naming(caplog, "ReplyingSms.on_received")


def test_without_deduplication_a_reply_that_cannot_be_rendered_is_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Without a duplicate store nothing catches the error of str(reply): it must
    # still be the callback's failure, not an exception out of the ASGI app.
    sms = ReplyingSms()
    sms.reply = BrokenTwiml()
    with running(sms, deduplicate=False) as listener:
        response = signed_post(listener.url, inbound_message_payload(), TOKEN)
    assert_callback_failed(response)
    one_error_naming(caplog, "ReplyingSms.on_received")


# -- what an inbound message carries ---------------------------------------------------
def test_inbound_whatsapp_message_fields_arrive_typed(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    sid = "MM" + uuid.uuid4().hex
    media = [
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg"),
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2", "audio/ogg"),
    ]
    params = {
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "MessageSid": sid,
        "SmsStatus": "received",
        "AccountSid": "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978",
        "From": "whatsapp:+15558675310",
        "To": "whatsapp:+14155550143",
        "Body": "STOP",
        "NumMedia": "2",
        "NumSegments": "1",
        "MediaUrl0": media[0][0],
        "MediaContentType0": media[0][1],
        "MediaUrl1": media[1][0],
        "MediaContentType1": media[1][1],
        "Latitude": "37.7749",
        "Longitude": "-122.4194",
        "Address": "1 Market St, San Francisco",
        "Label": "Acme HQ",
        "ProfileName": "José 📦",
        "WaId": "15558675310",
        "Forwarded": "true",
        "FrequentlyForwarded": "false",
        "ButtonText": "Track my parcel",
        "ButtonPayload": "track:42",
        "ReferralBody": "Free shipping this week",
        "ReferralHeadline": "Acme",
        "ReferralSourceId": "120211",
        "ReferralSourceType": "ad",
        "ReferralSourceUrl": "https://fb.me/acme",
        "ReferralCtwaClid": "ARAkLkA8",
        "ReferralNumMedia": "0",
        "OptOutType": "STOP",
        "ApiVersion": "2010-04-01",
    }
    sms.reply = "You are unsubscribed"
    root = twiml_of(post(client, listener, params))
    assert root[0].text == "You are unsubscribed"
    [event] = sms.events
    assert event.media == tuple(media)
    assert [(m.url, m.content_type) for m in event.media] == media
    assert event.num_media == 2
    assert event.latitude == pytest.approx(37.7749)
    assert event.longitude == pytest.approx(-122.4194)
    assert type(event.latitude) is float
    assert event.address == "1 Market St, San Francisco"
    assert event.label == "Acme HQ"
    assert event.profile_name == "José 📦"
    assert event.wa_id == "15558675310"
    assert event.forwarded is True
    assert event.frequently_forwarded is False
    assert event.button_text == "Track my parcel"
    assert event.button_payload == "track:42"
    assert event.referral_body == "Free shipping this week"
    assert event.referral_headline == "Acme"
    assert event.referral_source_id == "120211"
    assert event.referral_source_type == "ad"
    assert event.referral_source_url == "https://fb.me/acme"
    assert event.referral_ctwa_clid == "ARAkLkA8"
    assert event.referral_num_media == 0
    assert event.opt_out_type == "STOP"


def test_inbound_message_without_media_or_location(
    client: httpx.Client, listener: twilio.Listener, sms: ReplyingSms
) -> None:
    params = inbound_message_payload(
        NumMedia="0", MediaUrl0=None, MediaContentType0=None, Latitude="not a number"
    )
    assert_empty_twiml(post(client, listener, params))
    [event] = sms.events
    assert event.media == ()
    assert event.latitude is None
    assert event.longitude is None
    assert event.forwarded is None
    assert event.opt_out_type is None
