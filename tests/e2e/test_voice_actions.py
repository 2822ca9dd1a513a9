"""The results of TwiML voice verbs over real HTTP: each reaches its own callback.

Every request is a payload of the fact sheet's parameter tables (the test kit's
factories, which follow them, with overrides where the sheet shows more), signed
by twilio-python's ``RequestValidator`` and posted to a listener on loopback.
One service defines every ``CallStatusService`` callback and records each call,
so every test checks the callback that ran, the typed fields it saw, the answer
Twilio got (the TwiML the callback returned for a verb's result, empty TwiML for
a notification), and that no other callback ran.  The ambiguous pairs of the
fact sheet's "Shared parameters that cause misrouting" table are each posted and
routed; a verb's result is never taken for a copy, a status callback is; with
an SQLite inbox a verb's result is still answered inline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from twilio.twiml.voice_response import VoiceResponse

import twilio_trigger as twilio
from tests.payloads import signed_post
from twilio_trigger import testing

from ._support import TOKEN, CallLog, assert_empty_twiml, every_callback, running, wait_until

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
#: The callbacks of a call's own statuses (kind ``call``).
CALL_CALLBACKS = (
    "on_queued", "on_initiated", "on_ringing", "on_in_progress", "on_completed", "on_busy",
    "on_failed", "on_no_answer", "on_canceled",
)  # fmt: skip


def say(text: str) -> str:
    """The TwiML a callback answers with: it names the callback that ran."""
    return f"<Response><Say>{text}</Say></Response>"


# -- the recording service -------------------------------------------------------------
@every_callback
class Voice(CallLog[twilio.CallStatusEvent], twilio.CallStatusService):
    """Every ``CallStatusService`` callback, half of them ``async def``: each records
    its call and returns ``say(<its name>)``, or what :attr:`replies` says for it."""

    def default_reply(self, name: str) -> object:
        return say(self.label + name)


class Menu(twilio.CallStatusService):
    """An IVR menu at a path of its own: only ``on_gather`` and ``on_in_progress``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, twilio.CallStatusEvent]] = []
        self.lock = threading.Lock()

    def on_gather(self, event: twilio.GatherEvent) -> str:
        with self.lock:
            self.calls.append(("menu.on_gather", event))
        return say("menu.on_gather")

    async def on_in_progress(self, event: twilio.CallStatusEvent) -> str:
        with self.lock:
            self.calls.append(("menu.on_in_progress", event))
        return say("menu.on_in_progress")


def test_the_recording_service_defines_every_call_status_callback() -> None:
    every = set(twilio.CallStatusService.callback_names)
    assert every >= {"on_gather", "on_dial", "on_record", "on_machine_detection", *CALL_CALLBACKS}
    assert every <= set(vars(Voice))


# -- fixtures and helpers --------------------------------------------------------------
@pytest.fixture(scope="module")
def voice() -> Voice:
    return Voice()


@pytest.fixture(scope="module")
def listener(voice: Voice) -> Iterator[twilio.Listener]:
    with running(voice) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _fresh(voice: Voice) -> Iterator[None]:
    voice.reset()
    yield
    voice.reset()


def post(listener: twilio.Listener, params: dict[str, str], target: str = "") -> httpx.Response:
    """POST *params* to the listener's URL (plus *target*), signed by RequestValidator."""
    return signed_post(listener.url + target, params, TOKEN)


def assert_twiml(response: httpx.Response, body: str) -> None:
    """*response* is 200, ``text/xml``, the XML declaration followed by *body*."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].partition(";")[0].strip() == "text/xml"
    assert response.text == XML_DECLARATION + body


def assert_empty_answer(response: httpx.Response) -> None:
    """*response* is empty TwiML, with the XML declaration."""
    assert_empty_twiml(response)
    assert response.text.startswith(XML_DECLARATION), response.text


# -- <Gather> ----------------------------------------------------------------------------
def test_gather_digits_reach_on_gather_and_its_twiml_is_the_answer(
    listener: twilio.Listener, voice: Voice
) -> None:
    params = testing.gather_params("digits")
    response = post(listener, params)
    assert_twiml(response, say("on_gather"))
    name, event = voice.only()
    assert name == "on_gather"
    assert isinstance(event, twilio.GatherEvent)
    assert event.kind == "gather"
    assert event.digits == "1"
    assert event.finished_on_key == "#"
    assert event.speech_result is None
    assert event.confidence is None
    assert event.call_sid == params["CallSid"]
    assert event.sid == params["CallSid"]
    assert event.call_status == "in-progress"
    assert event.from_ == params["From"]
    assert event.to == params["To"]
    assert event.direction == "inbound"
    assert event.path == "/"


def test_gather_speech_has_its_transcript_and_a_float_confidence(
    listener: twilio.Listener, voice: Voice
) -> None:
    params = testing.gather_params("speech")
    assert_twiml(post(listener, params), say("on_gather"))
    name, event = voice.only()
    assert name == "on_gather"
    assert isinstance(event, twilio.GatherEvent)
    assert event.speech_result == "I'd like to check my order status."
    assert isinstance(event.confidence, float)
    assert event.confidence == pytest.approx(0.9216)
    assert event.digits is None


def test_a_twiml_object_returned_is_sent_as_its_str(
    listener: twilio.Listener, voice: Voice
) -> None:
    reply = VoiceResponse()
    reply.say("Connecting you to billing.")
    reply.dial("+14155550100")
    voice.replies["on_gather"] = reply
    response = post(listener, testing.gather_params("digits", Digits="2"))
    assert_twiml(
        response,
        "<Response><Say>Connecting you to billing.</Say><Dial>+14155550100</Dial></Response>",
    )
    assert voice.names() == ["on_gather"]


def test_none_returned_by_a_verb_callback_is_an_empty_response(
    listener: twilio.Listener, voice: Voice
) -> None:
    voice.replies["on_gather"] = None
    assert_empty_answer(post(listener, testing.gather_params("digits")))
    assert voice.names() == ["on_gather"]


def test_an_empty_gather_at_a_path_of_its_own_reaches_that_paths_on_gather() -> None:
    voice, menu = Voice(), Menu()
    with running(voice) as listener:
        listener.attach(menu, path="/voice/menu")
        params = testing.gather_params("empty")
        assert "Digits" not in params
        assert "SpeechResult" not in params
        response = post(listener, params, "voice/menu?step=2&lang=en")
        assert_twiml(response, say("menu.on_gather"))
        # The same request at the listener's own path is the call asking for TwiML.
        assert_twiml(post(listener, params), say("on_in_progress"))
    assert [name for name, _ in menu.calls] == ["menu.on_gather"]
    assert voice.names() == ["on_in_progress"]
    event = menu.calls[0][1]
    assert isinstance(event, twilio.GatherEvent)
    assert event.digits is None
    assert event.speech_result is None
    assert event.call_sid == params["CallSid"]
    assert event.path == "/voice/menu"
    assert dict(event.query) == {"step": ("2",), "lang": ("en",)}


def test_gather_digits_at_a_menus_path_reach_the_menu_not_the_listener_wide_service() -> None:
    voice, menu = Voice(), Menu()
    with running(voice) as listener:
        listener.attach(menu, path="/voice/menu")
        params = testing.gather_params("digits", Digits="2")
        assert_twiml(post(listener, params, "voice/menu"), say("menu.on_gather"))
    assert voice.names() == []
    name, event = menu.calls[0]
    assert name == "menu.on_gather"
    assert isinstance(event, twilio.GatherEvent)
    assert event.digits == "2"


class Greeting(twilio.CallStatusService):
    """A path's service with only the call's callback: its <Gather> has no action,
    so Twilio posts the result back to the same URL."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_ringing(self, event: twilio.CallStatusEvent) -> str:
        self.calls.append("greeting.on_ringing")
        return "<Response><Gather numDigits='1'/></Response>"


@pytest.mark.parametrize(
    ("params", "callback"),
    [
        (testing.gather_params("digits", Digits="1"), "on_gather"),
        (testing.dial_params("completed"), "on_dial"),
        (testing.record_params("hangup"), "on_record"),
        (testing.pay_params("success"), "on_pay"),
    ],
    ids=["gather", "dial", "record", "pay"],
)
def test_a_verbs_result_at_a_path_with_only_call_callbacks_keeps_its_own_callback(
    params: dict[str, str], callback: str
) -> None:
    voice, greeting = Voice(), Greeting()
    with running(voice) as listener:
        listener.attach(greeting, path="/voice/incoming")
        assert_twiml(post(listener, params, "voice/incoming"), say(callback))
    assert voice.names() == [callback]  # not on_in_progress, whose <Response/> hangs up
    assert greeting.calls == []


def test_a_partial_gather_result_is_a_notification(listener: twilio.Listener, voice: Voice) -> None:
    params = testing.gather_partial_params()
    assert_empty_answer(post(listener, params))  # the callback's TwiML is not sent
    name, event = voice.only()
    assert name == "on_gather_partial"
    assert isinstance(event, twilio.GatherPartialEvent)
    assert event.unstable_speech_result == "I'd like to check my order"
    assert event.stable_speech_result == "I'd like to"
    assert event.stability == pytest.approx(0.7)
    assert event.sequence_number == 1
    assert event.call_sid == params["CallSid"]


# -- <Record> and its transcription -------------------------------------------------------
@pytest.mark.parametrize(("result", "digits"), [("completed", "#"), ("hangup", "hangup")])
def test_a_record_result_reaches_on_record(
    listener: twilio.Listener, voice: Voice, result: str, digits: str
) -> None:
    params = testing.record_params(result)
    assert_twiml(post(listener, params), say("on_record"))
    name, event = voice.only()
    assert name == "on_record"  # Digits=hangup with a CallSid is not a <Gather>'s
    assert isinstance(event, twilio.RecordEvent)
    assert event.digits == digits
    assert event.recording_url == params["RecordingUrl"]
    assert event.recording_duration == 14
    assert event.recording_sid == params["RecordingSid"]
    assert event.call_sid == params["CallSid"]


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_transcription_reaches_on_transcription_not_on_record(
    listener: twilio.Listener, voice: Voice, status: str
) -> None:
    params = testing.transcription_params(status)
    assert "RecordingUrl" in params
    assert params["CallStatus"] == "completed"
    assert_empty_answer(post(listener, params))
    name, event = voice.only()
    assert name == "on_transcription"
    assert isinstance(event, twilio.TranscriptionEvent)
    assert event.status == status
    assert event.transcription_status == status
    assert event.sid == params["TranscriptionSid"]
    assert event.transcription_sid == params["TranscriptionSid"]
    assert event.transcription_url == params["TranscriptionUrl"]
    assert event.recording_url == params["RecordingUrl"]
    assert event.recording_sid == params["RecordingSid"]
    assert event.call_sid == params["CallSid"]
    if status == "completed":
        assert event.transcription_text is not None
        assert event.transcription_text.startswith("Hi, this is Dana")
    else:
        assert event.transcription_text is None


# -- <Dial> -----------------------------------------------------------------------------
DIAL_FIELDS = {
    # DialCallStatus: (dial_call_duration, dial_bridged, has a DialCallSid)
    "completed": (32, True, True),
    "answered": (None, True, False),  # a conference: no child leg, no duration
    "busy": (0, False, True),
    "no-answer": (0, False, True),
    "failed": (0, False, True),
    "canceled": (0, False, True),
}


@pytest.mark.parametrize("status", list(DIAL_FIELDS))
def test_a_dial_result_reaches_on_dial_for_each_dial_call_status(
    listener: twilio.Listener, voice: Voice, status: str
) -> None:
    params = testing.dial_params(status)
    assert_twiml(post(listener, params), say("on_dial"))
    name, event = voice.only()
    assert name == "on_dial"
    assert isinstance(event, twilio.DialEvent)
    duration, bridged, has_child = DIAL_FIELDS[status]
    assert event.status == status
    assert event.dial_call_status == status
    assert event.dial_call_duration == duration
    assert event.dial_bridged is bridged
    assert event.dial_call_sid == (params["DialCallSid"] if has_child else None)
    assert event.call_sid == params["CallSid"]
    assert event.call_status == "in-progress"


def test_a_dial_result_with_a_recording_reaches_on_dial_not_on_record(
    listener: twilio.Listener, voice: Voice
) -> None:
    recording = testing.new_sid("RE")
    url = f"https://api.twilio.com/2010-04-01/Accounts/{testing.ACCOUNT_SID}/Recordings/{recording}"
    params = testing.dial_params(
        "completed", RecordingUrl=url, RecordingSid=recording, RecordingDuration="31"
    )
    assert_twiml(post(listener, params), say("on_dial"))
    name, event = voice.only()
    assert name == "on_dial"
    assert isinstance(event, twilio.DialEvent)
    assert event.recording_url == url
    assert event.recording_sid == recording
    assert event.recording_duration == 31
    assert event.dial_call_duration == 32
    assert event.dial_bridged is True


# -- <Enqueue>, its wait URL, and <Queue> ------------------------------------------------
ENQUEUE_RESULTS = (
    "bridged", "bridging-in-process", "error", "hangup", "leave", "redirected",
    "redirected-from-bridged", "queue-full", "system-error",
)  # fmt: skip


@pytest.mark.parametrize("result", ENQUEUE_RESULTS)
def test_an_enqueue_result_reaches_on_enqueue(
    listener: twilio.Listener, voice: Voice, result: str
) -> None:
    params = testing.enqueue_params(result)
    assert_twiml(post(listener, params), say("on_enqueue"))
    name, event = voice.only()
    assert name == "on_enqueue"
    assert isinstance(event, twilio.EnqueueEvent)
    assert event.status == result
    assert event.queue_result == result
    if result == "queue-full":  # never enqueued
        assert event.queue_sid is None
        assert event.queue_time is None
    else:
        assert event.queue_sid == params["QueueSid"]
        assert event.queue_time == 38


def test_a_queue_wait_request_reaches_on_queue_wait(
    listener: twilio.Listener, voice: Voice
) -> None:
    reply = "<Response><Play>https://hooks.example.com/hold.mp3</Play><Redirect/></Response>"
    voice.replies["on_queue_wait"] = reply
    params = testing.queue_wait_params("4")
    assert_twiml(post(listener, params), reply)
    name, event = voice.only()
    assert name == "on_queue_wait"
    assert isinstance(event, twilio.QueueWaitEvent)
    assert event.queue_position == 4
    assert event.current_queue_size == 4
    assert event.avg_queue_time == 40
    assert event.queue_time == 12
    assert event.max_queue_size == 100
    assert event.queue_sid == params["QueueSid"]


def test_a_dequeue_reaches_on_dequeue(listener: twilio.Listener, voice: Voice) -> None:
    params = testing.dequeue_params()
    assert_twiml(post(listener, params), say("on_dequeue"))
    name, event = voice.only()
    assert name == "on_dequeue"
    assert isinstance(event, twilio.DequeueEvent)
    assert event.dequeing_call_sid == params["DequeingCallSid"]
    assert event.queue_sid == params["QueueSid"]
    assert event.queue_time == 95
    assert event.call_sid == params["CallSid"]


# -- <Pay> ------------------------------------------------------------------------------
def test_a_successful_payment_reaches_on_pay(listener: twilio.Listener, voice: Voice) -> None:
    params = testing.pay_params("success")
    assert_twiml(post(listener, params), say("on_pay"))
    name, event = voice.only()
    assert name == "on_pay"
    assert isinstance(event, twilio.PayEvent)
    assert event.status == "success"
    assert event.result == "success"
    assert event.payment_confirmation_code == "ch_a9dc6297cd1a4fb095e61b1a9cf2dd1d"
    assert event.payment_token == params["PaymentToken"]
    assert event.payment_card_number == "xxxx-xxxxxx-x4001"
    assert event.payment_card_type == "visa"
    assert event.expiration_date == "1226"
    assert event.payment_method == "credit-card"
    assert event.profile_id == params["ProfileId"]
    assert event.payment_error is None
    assert event.pay_error_code is None


def test_a_failed_payment_reaches_on_pay_with_its_error(
    listener: twilio.Listener, voice: Voice
) -> None:
    params = testing.pay_params("payment-connector-error", ConnectorError="card_declined")
    assert_twiml(post(listener, params), say("on_pay"))
    name, event = voice.only()
    assert name == "on_pay"
    assert isinstance(event, twilio.PayEvent)
    assert event.result == "payment-connector-error"
    assert event.payment_error == "Payment Gateway rejected charge creation."
    assert event.pay_error_code == 64008
    assert event.connector_error == "card_declined"
    assert event.payment_confirmation_code is None
    assert event.payment_token is None


def test_a_pay_status_callback_is_a_notification(listener: twilio.Listener, voice: Voice) -> None:
    params = testing.pay_status_params("expiration-date", ErrorType="invalid-date", Attempt="2")
    assert_empty_answer(post(listener, params))
    name, event = voice.only()
    assert name == "on_pay_status"
    assert isinstance(event, twilio.PayStatusEvent)
    assert event.status == "expiration-date"
    assert event.for_ == "expiration-date"
    assert event.attempt == 2
    assert event.error_type == "invalid-date"
    assert event.payment_card_number == "xxxx-xxxxxx-x4001"
    assert event.call_sid == params["CallSid"]


# -- answering machine detection -----------------------------------------------------------
@pytest.mark.parametrize("answered_by", ["machine_end_beep", "human", "fax"])
def test_the_async_amd_callback_reaches_on_machine_detection(
    listener: twilio.Listener, voice: Voice, answered_by: str
) -> None:
    params = testing.machine_detection_params(answered_by)
    assert "CallStatus" not in params
    assert_empty_answer(post(listener, params))
    name, event = voice.only()
    assert name == "on_machine_detection"
    assert isinstance(event, twilio.MachineDetectionEvent)
    assert event.status == answered_by
    assert event.answered_by == answered_by
    assert event.machine_detection_duration == 4210
    assert event.call_sid == params["CallSid"]


def test_a_calls_own_twiml_request_with_sync_amd_reaches_the_call_status_callback(
    listener: twilio.Listener, voice: Voice
) -> None:
    # Synchronous detection: the answered call asks for TwiML, with AnsweredBy.
    params = testing.call_status_params(
        "in-progress",
        CallbackSource=None,
        SequenceNumber=None,
        AnsweredBy="machine_start",
        MachineDetectionDuration="3100",
    )
    assert_twiml(post(listener, params), say("on_in_progress"))
    name, event = voice.only()
    assert name == "on_in_progress"
    assert type(event) is twilio.CallStatusEvent
    assert event.answered_by == "machine_start"
    assert event.machine_detection_duration == 3100


# -- the ambiguous pairs of the fact sheet ---------------------------------------------------
def test_a_gather_result_with_call_status_in_progress_never_reaches_on_in_progress(
    listener: twilio.Listener, voice: Voice
) -> None:
    for result in ("digits", "speech"):
        params = testing.gather_params(result)
        assert params["CallStatus"] == "in-progress"
        assert "CallbackSource" not in params
        assert_twiml(post(listener, params), say("on_gather"))
    assert voice.names() == ["on_gather", "on_gather"]


def test_a_status_callback_with_a_recording_never_reaches_on_record(
    listener: twilio.Listener, voice: Voice
) -> None:
    params = testing.call_status_params("completed")  # Record=true: RecordingUrl, ...
    assert params["CallbackSource"] == "call-progress-events"
    assert {"RecordingUrl", "RecordingDuration", "RecordingSid"} <= set(params)
    assert_empty_answer(post(listener, params))  # a status callback's TwiML is not sent
    name, event = voice.only()
    assert name == "on_completed"
    assert type(event) is twilio.CallStatusEvent
    assert event.recording_url == params["RecordingUrl"]
    assert event.recording_duration == 45


def test_a_child_leg_status_callback_reaches_the_call_status_callbacks(
    listener: twilio.Listener, voice: Voice
) -> None:
    parent = testing.new_sid("CA")
    answered = testing.call_status_params(
        "in-progress", ParentCallSid=parent, Direction="outbound-dial", SequenceNumber="2"
    )
    assert_empty_answer(post(listener, answered))
    recording = testing.new_sid("RE")
    ended = testing.call_status_params(
        "completed",
        sid=answered["CallSid"],
        ParentCallSid=parent,
        Direction="outbound-dial",
        SequenceNumber="3",
        RecordingSid=recording,
    )
    assert_empty_answer(post(listener, ended))
    assert voice.names() == ["on_in_progress", "on_completed"]
    first, last = (event for _, event in voice.calls)
    assert type(first) is twilio.CallStatusEvent
    assert first.parent_call_sid == parent
    assert first.callback_source == "call-progress-events"
    assert first.direction == "outbound-dial"
    assert first.timestamp == datetime(2023, 11, 14, 18, 30, tzinfo=UTC)
    assert first.sequence_number == 2
    assert last.recording_sid == recording
    assert last.call_duration == 47


def test_the_same_verb_result_twice_runs_twice_a_status_callback_twice_once(
    listener: twilio.Listener, voice: Voice
) -> None:
    call = testing.new_sid("CA")
    gather = testing.gather_params("digits", sid=call)
    assert_twiml(post(listener, gather), say("on_gather"))
    assert_twiml(post(listener, gather), say("on_gather"))  # the caller pressed 1 again
    ringing = testing.call_status_params("ringing", sid=call)
    assert_empty_answer(post(listener, ringing))
    assert_empty_answer(post(listener, ringing))  # Twilio's retry
    assert voice.names() == ["on_gather", "on_gather", "on_ringing"]
    assert all(event.call_sid == call for _, event in voice.calls)


def test_a_second_pay_and_a_second_speech_gather_run_as_the_first_did(
    listener: twilio.Listener, voice: Voice
) -> None:
    # Their requests repeat the first's (Attempt 1 again; partial results numbered
    # afresh, the caller saying "yes" again): nothing signed tells them apart, so
    # they are never taken for copies.
    call = testing.new_sid("CA")
    stage = testing.pay_status_params("payment-card-number", sid=call, Attempt="1")
    partial = testing.gather_partial_params(
        sid=call, UnstableSpeechResult="yes", StableSpeechResult="", SequenceNumber="1"
    )
    for _ in range(2):  # the first <Pay> and <Gather>, then the second
        assert_empty_answer(post(listener, stage))
        assert_empty_answer(post(listener, partial))
    assert voice.names() == ["on_pay_status", "on_gather_partial"] * 2


def test_a_failing_verb_callback_is_answered_500(listener: twilio.Listener, voice: Voice) -> None:
    voice.replies["on_dial"] = RuntimeError("the CRM lookup failed")
    response = post(listener, testing.dial_params("busy"))
    assert response.status_code == 500
    assert voice.names() == ["on_dial"]


# -- with an inbox ------------------------------------------------------------------------
def test_with_an_sqlite_inbox_a_gather_is_still_answered_inline(tmp_path: Path) -> None:
    voice = Voice()
    with running(voice, inbox=f"sqlite:///{tmp_path}/events.db") as listener:
        params = testing.gather_params("digits")
        assert_twiml(post(listener, params), say("on_gather"))
        # Run before the answer was given: inline, not by a worker.
        assert voice.names() == ["on_gather"]
        # A notification is stored, acknowledged, and run by a worker.
        transcription = testing.transcription_params("completed")
        assert_empty_answer(post(listener, transcription))
        wait_until(lambda: "on_transcription" in voice.names(), "the stored transcription")
    assert voice.names() == ["on_gather", "on_transcription"]
    gather = voice.calls[0][1]
    assert isinstance(gather, twilio.GatherEvent)
    assert gather.digits == "1"
    stored = voice.calls[1][1]
    assert isinstance(stored, twilio.TranscriptionEvent)
    assert stored.transcription_sid == transcription["TranscriptionSid"]
