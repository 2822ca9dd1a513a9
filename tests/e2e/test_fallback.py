"""The catch-all over real HTTP: ``FallbackService.on_event`` and, without one, a warning.

A verified webhook no kind recognises (a Video room callback here), a CloudEvent
type with no mapping, and an event of a known kind for which no service of that
kind is attached all reach ``on_event``.  Without a FallbackService they are
acknowledged (200, empty TwiML) with one warning per parameter shape; never 400.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid

import httpx
import pytest
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio
from twilio_trigger.testing import (
    call_status_params,
    conference_params,
    sms_status_params,
    unknown_params,
)

from ..payloads import FORM, Params, encode_form, pairs_of, signed_post
from ..payloads import signed_json as shared_signed_json
from ._support import (
    OTHER_TOKEN,
    TOKEN,
    CallbackError,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    records,
    running,
)

ACCOUNT = "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978"


class Fallback(twilio.FallbackService):
    """Records every event it gets; fails on request."""

    def __init__(self, fail: str | None = None) -> None:
        self.events: list[twilio.TwilioEvent] = []
        self.lock = threading.Lock()
        self.fail = fail

    def on_event(self, event: twilio.TwilioEvent) -> Exception | None:
        with self.lock:
            self.events.append(event)
        error = CallbackError(f"the room database exploded for {event.sid}")
        if self.fail == "raise":
            raise error
        return error if self.fail == "return" else None

    def got(self) -> list[twilio.TwilioEvent]:
        with self.lock:
            return list(self.events)


class OnlyDelivered(twilio.SmsStatusService):
    """A message service that handles one status only."""

    def __init__(self) -> None:
        self.sids: list[str | None] = []

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.sids.append(event.sid)


def room_event(event: str = "room-created") -> dict[str, str]:
    """A Video room status callback (no kind of twilio-trigger's), fact-sheet style."""
    params = unknown_params(event)
    assert "RoomSid" in params
    assert params["StatusCallbackEvent"] == event
    return params


def signed_json(url: str, document: object, token: str = TOKEN) -> httpx.Response:
    return shared_signed_json(url, document, token)


def envelope(event_type: str, data: dict[str, object]) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": f"/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{uuid.uuid4().hex}",
        "id": str(uuid.uuid4()),
        "dataschema": "https://events-schemas.twilio.com/Voice.TwiML/1",
        "datacontenttype": "application/json",
        "time": "2024-11-21T18:30:00.000Z",
        "data": data,
    }


def unsigned_post(url: str, params: Params, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": FORM, "User-Agent": "TwilioProxy/1.1"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return httpx.post(url, content=encode_form(params), headers=headers, timeout=10.0)


# -- with a FallbackService ------------------------------------------------------------
def test_an_unknown_family_reaches_on_event_as_a_plain_event() -> None:
    fallback, recorder = Fallback(), Recorder()
    with running(fallback, SmsRecorder(recorder)) as listener:
        params = room_event("room-created")
        assert_empty_twiml(signed_post(listener.url, params, TOKEN))
    (event,) = fallback.got()
    assert type(event) is twilio.TwilioEvent
    assert event.kind == "other"
    assert dict(event.raw) == {name: (value,) for name, value in params.items()}
    assert event.params == tuple(params.items())
    assert event["RoomSid"] == params["RoomSid"]
    assert event["StatusCallbackEvent"] == "room-created"
    assert event.account_sid == ACCOUNT
    assert event.path == "/"
    assert recorder.calls == []


def test_one_form_without_a_sid_sent_to_two_urls_is_two_events() -> None:
    # Nothing but the URL tells them apart, and the URL is signed: two events.
    # The same URL again is Twilio's retry: a copy.
    fallback = Fallback()
    with running(fallback) as listener:
        params = {"AccountSid": ACCOUNT, "Foo": "bar"}
        for query in ("hook=a", "hook=b", "hook=a"):
            url = f"{listener.url}?{query}"
            assert_empty_twiml(signed_post(url, params, TOKEN))
    assert [dict(event.query) for event in fallback.got()] == [{"hook": ("a",)}, {"hook": ("b",)}]


def test_repeated_parameters_of_an_unknown_family_are_all_kept() -> None:
    fallback = Fallback()
    with running(fallback) as listener:
        pairs = [*pairs_of(room_event("participant-connected")), ("Tag", "a"), ("Tag", "b")]
        assert_empty_twiml(signed_post(listener.url, pairs, TOKEN))
    (event,) = fallback.got()
    assert event.raw["Tag"] == ("a", "b")
    assert event.getall("Tag") == ("a", "b")
    assert event.params == tuple(pairs)


@pytest.mark.parametrize(
    ("params", "event_class", "sid_name"),
    [
        (conference_params("participant-join"), twilio.ConferenceEvent, "ConferenceSid"),
        (call_status_params("completed"), twilio.CallStatusEvent, "CallSid"),
    ],
    ids=["conference", "call"],
)
def test_a_known_kind_without_its_service_reaches_on_event_typed(
    params: dict[str, str], event_class: type[twilio.TwilioEvent], sid_name: str
) -> None:
    fallback, recorder = Fallback(), Recorder()
    with running(fallback, SmsRecorder(recorder)) as listener:
        assert_empty_twiml(signed_post(listener.url, params, TOKEN))
    (event,) = fallback.got()
    assert type(event) is event_class
    assert event.sid == params[sid_name]
    assert dict(event.raw) == {name: (value,) for name, value in params.items()}
    assert recorder.calls == []


def test_the_conference_event_the_fallback_gets_has_its_typed_fields() -> None:
    fallback = Fallback()
    with running(fallback, SmsRecorder(Recorder())) as listener:
        params = conference_params("participant-leave")
        assert_empty_twiml(signed_post(listener.url, params, TOKEN))
    (event,) = fallback.got()
    assert isinstance(event, twilio.ConferenceEvent)
    assert event.kind == "conference"
    assert event.conference_sid == params["ConferenceSid"]
    assert event.status_callback_event == "participant-leave"
    assert event.call_sid == params["CallSid"]
    assert event.participant_label == "customer"
    assert event.muted is False
    assert event.reason_participant_left == "participant_hung_up"
    assert event.sequence_number == int(params["SequenceNumber"])


def test_a_service_lacking_the_callback_is_not_bypassed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "twilio_trigger")
    fallback, messages = Fallback(), OnlyDelivered()
    with running(fallback, messages) as listener:
        sent = sms_status_params("sent")
        assert_empty_twiml(signed_post(listener.url, sent, TOKEN))
        delivered = sms_status_params("delivered")
        assert_empty_twiml(signed_post(listener.url, delivered, TOKEN))
    assert fallback.got() == []
    assert messages.sids == [delivered["MessageSid"]]
    hints = [r.getMessage() for r in records(caplog, logging.WARNING)]
    assert any("add `def on_sent" in text and "OnlyDelivered" in text for text in hints), hints


def test_an_unmapped_cloudevent_type_reaches_on_event() -> None:
    fallback, recorder = Fallback(), Recorder()
    call_sid = "CA" + uuid.uuid4().hex
    gather = envelope(
        "com.twilio.voice.twiml.gather.finished",
        {
            "accountSid": ACCOUNT,
            "callSid": call_sid,
            "digits": "1",
            "finishedOnKey": "#",
            "confidence": 0.92,
            "attempts": 2,
            "hints": ["orders", "support"],
        },
    )
    with running(fallback, SmsRecorder(recorder)) as listener:
        response = signed_json(listener.url, [gather])
        assert response.status_code == 200, response.text
    (event,) = fallback.got()
    assert type(event) is twilio.TwilioEvent
    assert event.kind == "other"
    assert event["CloudEventType"] == "com.twilio.voice.twiml.gather.finished"
    assert event["CallSid"] == call_sid
    assert event["AccountSid"] == ACCOUNT
    assert event["Digits"] == "1"
    assert event["FinishedOnKey"] == "#"
    assert event["Attempts"] == "2"
    assert json.loads(event["Hints"]) == ["orders", "support"]
    assert recorder.calls == []


def test_an_unmapped_cloudevent_does_not_take_the_mapped_ones_of_its_batch() -> None:
    fallback, recorder = Fallback(), Recorder()
    message_sid = "SM" + uuid.uuid4().hex
    message = envelope(
        "com.twilio.messaging.message.delivered",
        {
            "messageSid": message_sid,
            "accountSid": ACCOUNT,
            "from": "+14155550143",
            "to": "+15558675310",
            "messageStatus": "DELIVERED",
            "numberOfSegments": 1,
        },
    )
    studio = envelope(
        "com.twilio.studio.flow.execution.started",
        {"executionSid": "FN" + uuid.uuid4().hex, "flowSid": "FW" + uuid.uuid4().hex},
    )
    with running(fallback, SmsRecorder(recorder)) as listener:
        assert signed_json(listener.url, [message, studio]).status_code == 200
    (event,) = fallback.got()
    assert event["CloudEventType"] == "com.twilio.studio.flow.execution.started"
    ((callback, sid),) = [(call.callback, call.event.sid) for call in recorder.calls]
    assert (callback, sid) == ("on_delivered", message_sid)


def test_a_failing_fallback_is_answered_500() -> None:
    for mode in ("raise", "return"):
        fallback = Fallback(fail=mode)
        with running(fallback) as listener:
            params = room_event("room-ended")
            response = signed_post(listener.url, params, TOKEN)
        assert response.status_code == 500, (mode, response.text)
        assert [event["RoomSid"] for event in fallback.got()] == [params["RoomSid"]]


def test_an_unsigned_unrecognised_webhook_is_refused_before_the_fallback() -> None:
    fallback = Fallback()
    with running(fallback) as listener:
        params = room_event()
        assert unsigned_post(listener.url, params, None).status_code == 403
        forged = RequestValidator(OTHER_TOKEN).compute_signature(listener.url, params)
        assert unsigned_post(listener.url, params, str(forged)).status_code == 403
    assert fallback.got() == []


def test_a_fallback_at_a_path_gets_that_paths_unrecognised_webhooks() -> None:
    everywhere, video = Fallback(), Fallback()
    with running(everywhere) as listener:
        listener.attach(video, path="/video")
        base = listener.url.rstrip("/")
        at_video, at_root = room_event("room-created"), room_event("room-ended")
        assert_empty_twiml(signed_post(base + "/video", at_video, TOKEN))
        assert_empty_twiml(signed_post(base + "/", at_root, TOKEN))
        # A known kind with no service, at the path: that path's fallback, typed.
        conference = conference_params("conference-start")
        assert_empty_twiml(signed_post(base + "/video", conference, TOKEN))
    assert [(e["RoomSid"], e.path) for e in video.got()[:1]] == [(at_video["RoomSid"], "/video")]
    assert isinstance(video.got()[1], twilio.ConferenceEvent)
    assert video.got()[1].sid == conference["ConferenceSid"]
    assert len(video.got()) == 2
    assert [(e["RoomSid"], e.path) for e in everywhere.got()] == [(at_root["RoomSid"], "/")]


def test_a_fallback_only_at_a_path_leaves_the_listeners_path_to_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "twilio_trigger")
    video = Fallback()
    with running(SmsRecorder(Recorder())) as listener:
        listener.attach(video, path="/video")
        base = listener.url.rstrip("/")
        at_video, at_root = room_event(), room_event()
        assert_empty_twiml(signed_post(base + "/video", at_video, TOKEN))
        assert_empty_twiml(signed_post(base + "/", at_root, TOKEN))
    assert [e["RoomSid"] for e in video.got()] == [at_video["RoomSid"]]
    (warning,) = records(caplog, logging.WARNING)
    assert "RoomSid" in warning.getMessage()


# -- without a FallbackService ---------------------------------------------------------
def unrecognised_warnings(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in records(caplog, level) if "no kind recognises" in r.getMessage()
    ]


def test_without_a_fallback_one_warning_per_shape(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "twilio_trigger")
    recorder = Recorder()
    with running(SmsRecorder(recorder)) as listener:
        caplog.clear()
        first = room_event("room-created")
        assert_empty_twiml(signed_post(listener.url, first, TOKEN))
        (warning,) = records(caplog, logging.WARNING)
        text = warning.getMessage()
        for name in first:
            assert name in text, (name, text)
        assert first["RoomSid"] not in text  # the shape: names, not values

        # The same shape again (other values): told at DEBUG only.
        again = room_event("room-ended")
        assert set(again) == set(first)
        assert_empty_twiml(signed_post(listener.url, again, TOKEN))
        assert len(records(caplog, logging.WARNING)) == 1
        assert len(unrecognised_warnings(caplog, logging.DEBUG)) == 1

        # Another shape: a second warning, naming the new parameter.
        other = {**room_event("recording-started"), "TrackSid": "MT" + uuid.uuid4().hex}
        assert_empty_twiml(signed_post(listener.url, other, TOKEN))
        warnings = records(caplog, logging.WARNING)
        assert len(warnings) == 2
        assert "TrackSid" in warnings[1].getMessage()
    assert recorder.calls == []


@pytest.mark.parametrize(
    "params",
    [
        [("Foo", "bar")],
        [("EventType", "not-a-known-type")],
        [("StatusCallbackEvent", "participant-join")],  # no ConferenceSid
        [("CallbackSource", "call-progress-events"), ("Noise", "")],
        [("Level", "ERROR")],  # no Payload
        [("Name", "a"), ("Name", "b"), ("Name", "c")],
    ],
    ids=["one", "event-type", "no-conference", "blank", "level", "repeated"],
)
def test_without_a_fallback_unrecognised_webhooks_are_never_400(params: Params) -> None:
    with running(SmsRecorder(Recorder())) as listener:
        assert_empty_twiml(signed_post(listener.url, params, TOKEN))


def test_without_a_fallback_an_unmapped_cloudevent_is_acknowledged_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "twilio_trigger")
    with running(SmsRecorder(Recorder())) as listener:
        caplog.clear()
        gather = envelope(
            "com.twilio.voice.twiml.gather.finished", {"callSid": "CA" + uuid.uuid4().hex}
        )
        assert signed_json(listener.url, [gather]).status_code == 200
        (warning,) = records(caplog, logging.WARNING)
        assert "com.twilio.voice.twiml.gather.finished" in warning.getMessage()
        again = envelope(
            "com.twilio.voice.twiml.gather.finished", {"callSid": "CA" + uuid.uuid4().hex}
        )
        assert signed_json(listener.url, [again]).status_code == 200
        assert len(records(caplog, logging.WARNING)) == 1


def test_without_a_fallback_an_unsigned_unrecognised_webhook_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "twilio_trigger")
    with running(SmsRecorder(Recorder())) as listener:
        params = room_event()
        assert unsigned_post(listener.url, params, None).status_code == 403
    assert unrecognised_warnings(caplog, logging.WARNING) == []
    assert unrecognised_warnings(caplog, logging.DEBUG) == []


# -- a JSON object: a family that posts one (a Link Shortening click) ----------------------
def link_click() -> dict[str, object]:
    """A click on a shortened link, as the Link Shortening click callback posts it."""
    return {
        "event_type": "click",
        "sms_sid": "SM" + "c" * 32,
        "to": "+15558675310",
        "from": "+14155550143",
        "link": "https://www.example.com/orders/A-1042",
        "click_time": "2023-11-14T18:31:02.000Z",
        "messaging_service_sid": "MG" + "d" * 32,
        "account_sid": ACCOUNT,
        "user_agent": "Mozilla/5.0",
    }


def test_a_signed_json_object_reaches_on_event_with_its_fields() -> None:
    fallback = Fallback()
    with running(fallback) as listener:
        answer = signed_json(listener.url, link_click())
    assert_empty_twiml(answer)
    (event,) = fallback.got()
    assert event.kind == "other"
    assert event["event_type"] == "click"
    assert event["sms_sid"] == "SM" + "c" * 32
    assert event["link"] == "https://www.example.com/orders/A-1042"
    assert event.path == "/"
    assert "bodySHA256" in event.query


def test_a_json_object_without_a_fallback_is_acknowledged_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running() as listener:
        answer = signed_json(listener.url, {**link_click(), "nested": {"a": [1, 2]}})
    assert_empty_twiml(answer)
    assert "no kind recognises" in caplog.text
    assert "event_type" in caplog.text


def test_a_json_body_that_is_neither_an_array_of_cloudevents_nor_an_object_is_400() -> None:
    fallback = Fallback()
    with running(fallback) as listener:
        not_events = signed_json(listener.url, [{"no": "type"}])
        a_string = signed_json(listener.url, "click")
        empty = signed_json(listener.url, {})
    assert not_events.status_code == a_string.status_code == empty.status_code == 400
    assert fallback.got() == []


def test_an_unsigned_json_object_is_refused() -> None:
    fallback = Fallback()
    with running(fallback) as listener:
        answer = signed_json(listener.url, link_click(), token="not-the-token")
    assert answer.status_code == 403
    assert fallback.got() == []


def test_a_json_object_with_more_fields_than_max_params_is_413() -> None:
    fallback = Fallback()
    with running(fallback, max_params=50) as listener:
        answer = signed_json(listener.url, {f"field{n}": n for n in range(51)})
        within = signed_json(listener.url, {f"field{n}": n for n in range(50)})
    assert answer.status_code == 413
    assert "at most 50" in answer.text
    assert within.status_code == 200
    assert len(fallback.got()) == 1
