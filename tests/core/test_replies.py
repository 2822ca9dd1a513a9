"""What a callback's return value becomes (``_core/replies.py``): ``Reject``, which events
wait for a reply, their receipts, the answer to ``None``, and each reply turned into the
answer Twilio reads (TwiML, or a Conversations/TaskRouter JSON body, or a rejection).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial

import pytest
from twilio.twiml.voice_response import VoiceResponse

import twilio_trigger
from twilio_trigger import AssignmentEvent, ConversationsEvent, TwilioEvent
from twilio_trigger._core.answers import Answer
from twilio_trigger._core.kinds import KINDS, kind_named, kind_of_event
from twilio_trigger._core.replies import (
    Reject,
    expects_reply,
    receipt_for,
    reply_answer,
    silent_answer,
)
from twilio_trigger._core.routing import to_event
from twilio_trigger._core.twiml import EMPTY_RESPONSE, ReplyError
from twilio_trigger._core.vocabulary import (
    CONVERSATIONS_POST_EVENTS,
    CONVERSATIONS_PRE_EVENTS,
    TASKROUTER_EVENT_TYPES,
)
from twilio_trigger.testing import (
    assignment_params,
    call_status_params,
    conference_params,
    conversations_params,
    debugger_params,
    dequeue_params,
    dial_params,
    enqueue_params,
    gather_params,
    gather_partial_params,
    inbound_call_params,
    machine_detection_params,
    pay_params,
    pay_status_params,
    queue_wait_params,
    record_params,
    recording_status_params,
    sms_status_params,
    taskrouter_params,
    transcription_params,
    unknown_params,
)

TWIML = "text/xml"
JSON = "application/json"


def event_of(params: Mapping[str, str], kind: str) -> TwilioEvent:
    """The event the parameters are recognised as, which must be of *kind*."""
    event = to_event(list(params.items()))
    if event is None:
        event = TwilioEvent(params)
    assert kind_of_event(event).name == kind, (kind, dict(params))
    return event


def pre_event(event_type: str) -> ConversationsEvent:
    event = event_of(conversations_params(event_type), "conversations")
    assert isinstance(event, ConversationsEvent)
    assert event.is_pre_event
    return event


def assignment() -> AssignmentEvent:
    event = event_of(assignment_params(), "assignment")
    assert isinstance(event, AssignmentEvent)
    return event


def header(answer: Answer, name: bytes) -> bytes | None:
    return next((value for key, value in answer.headers if key == name), None)


def assert_consistent(answer: Answer) -> None:
    """The content length is the body's."""
    length = header(answer, b"content-length")
    if answer.status != 204:
        assert length == str(len(answer.body)).encode()


# -- Reject ------------------------------------------------------------------------------------
def test_reject_is_exported_and_is_an_exception() -> None:
    assert twilio_trigger.Reject is Reject
    assert issubclass(Reject, Exception)
    with pytest.raises(Reject, match="spam"):
        raise Reject("spam")


def test_reject_defaults_to_403_and_a_reason() -> None:
    default = Reject()
    assert (default.status, default.reason) == (403, "rejected")
    told = Reject("profanity is not allowed")
    assert (told.status, told.reason, str(told)) == (
        403,
        "profanity is not allowed",
        "profanity is not allowed",
    )


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 429, 451, 499])
def test_reject_takes_any_4xx_status(status: int) -> None:
    assert Reject("no", status=status).status == status


@pytest.mark.parametrize("status", [0, 100, 200, 204, 302, 399, 500, 503, 599, -403, 4030])
def test_reject_refuses_a_status_that_is_not_4xx(status: int) -> None:
    with pytest.raises(ValueError, match=str(status)):
        Reject("no", status=status)


# -- which events wait for a reply -------------------------------------------------------------
#: (payload, its kind, whether it waits for a reply, the answer format of its kind)
WAITING: list[tuple[Callable[[], dict[str, str]], str, bool, str]] = [
    (lambda: gather_params("digits"), "gather", True, "twiml"),
    (lambda: gather_params("speech"), "gather", True, "twiml"),
    (lambda: dial_params("busy"), "dial", True, "twiml"),
    (lambda: record_params("completed"), "record", True, "twiml"),
    (lambda: enqueue_params("bridged"), "enqueue", True, "twiml"),
    (lambda: queue_wait_params("2"), "queue_wait", True, "twiml"),
    (lambda: dequeue_params(), "dequeue", True, "twiml"),
    (lambda: pay_params("success"), "pay", True, "twiml"),
    (lambda: gather_partial_params(), "gather_partial", False, "receipt"),
    (lambda: transcription_params("completed"), "transcription", False, "receipt"),
    (lambda: pay_status_params("security-code"), "pay_status", False, "receipt"),
    (lambda: machine_detection_params("human"), "amd", False, "receipt"),
    (lambda: conference_params("participant-join"), "conference", False, "receipt"),
    (lambda: assignment_params(), "assignment", True, "json"),
    (lambda: debugger_params("error"), "debugger", False, "receipt"),
    (lambda: recording_status_params("completed"), "recording", False, "receipt"),
    (lambda: sms_status_params("delivered"), "sms", False, "twiml"),
    (lambda: sms_status_params("received"), "sms", True, "twiml"),
    (lambda: call_status_params("completed"), "call", False, "twiml"),
    (lambda: inbound_call_params("ringing"), "call", True, "twiml"),
    (lambda: unknown_params(), "other", False, "receipt"),
]
WAITING += [
    (partial(conversations_params, name), "conversations", True, "json")
    for name in CONVERSATIONS_PRE_EVENTS
]
WAITING += [
    (partial(conversations_params, name), "conversations", False, "json")
    for name in CONVERSATIONS_POST_EVENTS
]
WAITING += [
    (partial(taskrouter_params, name), "taskrouter", False, "receipt")
    for name in TASKROUTER_EVENT_TYPES
]


def _waiting_id(index: int) -> str:
    payload, kind, _, _ = WAITING[index]
    return f"{index}-{kind}-{payload().get('EventType', '')}"


@pytest.mark.parametrize(
    ("payload", "kind", "waits", "answer"),
    WAITING,
    ids=[_waiting_id(i) for i in range(len(WAITING))],
)
def test_expects_reply_for_each_kind(
    payload: Callable[[], dict[str, str]], kind: str, waits: bool, answer: str
) -> None:
    event = event_of(payload(), kind)
    assert expects_reply(event) is waits
    assert kind_of_event(event).answer == answer


def test_a_status_callback_of_a_verbs_kind_is_not_waited_for() -> None:
    # With a CallbackSource the request is no verb's result: the call's status callback.
    event = event_of(gather_params("digits", CallbackSource="call-progress-events"), "call")
    assert not expects_reply(event)


# -- receipts ----------------------------------------------------------------------------------
def test_taskrouter_is_acknowledged_204_with_a_json_content_type_and_no_body() -> None:
    answer = receipt_for(kind_named("taskrouter"))
    assert answer.status == 204
    assert answer.body == b""
    assert answer.content_type == JSON


def test_a_204_receipt_carries_no_content_length() -> None:
    # RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any
    # response with a status code of ... 204 (No Content)."
    assert header(receipt_for(kind_named("taskrouter")), b"content-length") is None


@pytest.mark.parametrize(
    "kind", [kind.name for kind in KINDS if kind.name != "taskrouter"], ids=str
)
def test_every_other_kind_is_acknowledged_with_empty_twiml(kind: str) -> None:
    answer = receipt_for(kind_named(kind))
    assert answer.status == 200
    assert answer.body == EMPTY_RESPONSE
    assert answer.content_type == TWIML
    assert_consistent(answer)


# -- silent_answer: the callback returned None -------------------------------------------------
@pytest.mark.parametrize("event_type", CONVERSATIONS_PRE_EVENTS)
def test_none_lets_a_pre_event_go_on_with_an_empty_json_object(event_type: str) -> None:
    answer = silent_answer(pre_event(event_type))
    assert (answer.status, answer.body, answer.content_type) == (200, b"{}", JSON)
    assert_consistent(answer)


def test_none_answers_an_assignment_with_an_empty_json_200() -> None:
    answer = silent_answer(assignment())
    assert (answer.status, answer.body, answer.content_type) == (200, b"", JSON)
    assert_consistent(answer)


@pytest.mark.parametrize("event_type", CONVERSATIONS_POST_EVENTS)
def test_none_acknowledges_a_post_event_with_empty_twiml(event_type: str) -> None:
    answer = silent_answer(event_of(conversations_params(event_type), "conversations"))
    assert (answer.status, answer.body, answer.content_type) == (200, EMPTY_RESPONSE, TWIML)


@pytest.mark.parametrize("event_type", ["task.created", "reservation.accepted", "worker.deleted"])
def test_none_acknowledges_a_taskrouter_event_with_204(event_type: str) -> None:
    answer = silent_answer(event_of(taskrouter_params(event_type), "taskrouter"))
    assert (answer.status, answer.body, answer.content_type) == (204, b"", JSON)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (gather_params("digits"), "gather"),
        (dial_params("completed"), "dial"),
        (pay_params("success"), "pay"),
        (transcription_params("completed"), "transcription"),
        (machine_detection_params("fax"), "amd"),
        (conference_params("conference-end"), "conference"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_none_answers_voice_events_with_an_empty_response(
    payload: dict[str, str], kind: str
) -> None:
    answer = silent_answer(event_of(payload, kind))
    assert (answer.status, answer.body, answer.content_type) == (200, EMPTY_RESPONSE, TWIML)


# -- reply_answer: TwiML -----------------------------------------------------------------------
VERBS = [
    (gather_params("digits"), "gather"),
    (dial_params("no-answer"), "dial"),
    (record_params("hangup"), "record"),
    (enqueue_params("leave"), "enqueue"),
    (queue_wait_params("1"), "queue_wait"),
    (dequeue_params(), "dequeue"),
    (pay_params("caller-hung-up"), "pay"),
]


@pytest.mark.parametrize(("payload", "kind"), VERBS, ids=[kind for _, kind in VERBS])
def test_a_verbs_reply_is_its_twiml(payload: dict[str, str], kind: str) -> None:
    event = event_of(payload, kind)
    answer = reply_answer(event, "<Response><Say>Thank you</Say><Hangup/></Response>")
    assert (answer.status, answer.content_type) == (200, TWIML)
    assert answer.body == (
        b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>Thank you</Say><Hangup/></Response>'
    )
    assert_consistent(answer)
    response = VoiceResponse()
    response.say("Caf\u00e9 \u2713")
    twiml = reply_answer(event, response)
    assert "Caf\u00e9 \u2713".encode() in twiml.body
    assert twiml.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Response>')


@pytest.mark.parametrize(("payload", "kind"), VERBS, ids=[kind for _, kind in VERBS])
@pytest.mark.parametrize(
    "reply",
    ["just text", "<Say>no Response root</Say>", {"body": "x"}, b"<Response/>", 3],
    ids=["text", "root", "mapping", "bytes", "int"],
)
def test_a_verbs_reply_that_is_no_twiml_is_a_reply_error(
    payload: dict[str, str], kind: str, reply: object
) -> None:
    with pytest.raises(ReplyError):
        reply_answer(event_of(payload, kind), reply)


@pytest.mark.parametrize(("payload", "kind"), VERBS, ids=[kind for _, kind in VERBS])
def test_a_verb_cannot_be_rejected(payload: dict[str, str], kind: str) -> None:
    with pytest.raises(ReplyError, match=f"events of the kind {kind} cannot be rejected"):
        reply_answer(event_of(payload, kind), Reject("no"))


def test_an_inbound_call_or_message_cannot_be_rejected() -> None:
    with pytest.raises(ReplyError, match="cannot be rejected"):
        reply_answer(event_of(inbound_call_params("ringing"), "call"), Reject("no"))
    with pytest.raises(ReplyError, match="cannot be rejected"):
        reply_answer(event_of(sms_status_params("received"), "sms"), Reject("no", status=400))


# -- reply_answer: Reject for a pre-event ------------------------------------------------------
@pytest.mark.parametrize("event_type", CONVERSATIONS_PRE_EVENTS)
def test_a_reject_blocks_a_pre_event_with_its_status_and_reason(event_type: str) -> None:
    answer = reply_answer(pre_event(event_type), Reject("not in this conversation", status=422))
    assert answer.status == 422
    assert answer.body == b"not in this conversation\n"
    assert answer.content_type.startswith("text/plain")
    assert_consistent(answer)
    default = reply_answer(pre_event(event_type), Reject())
    assert (default.status, default.body) == (403, b"rejected\n")


def test_a_rejections_reason_is_collapsed_to_one_line() -> None:
    event = pre_event("onMessageAdd")
    answer = reply_answer(event, Reject("  spam\r\n\tdetected \x0b\x0c in \u2028 body  "))
    assert answer.body == b"spam detected in body\n"
    assert reply_answer(event, Reject(" \n\t ")).body == b"rejected\n"


def test_a_rejections_reason_is_bounded_to_500_characters() -> None:
    event = pre_event("onMessageAdd")
    answer = reply_answer(event, Reject("\u00e9" * 800))
    assert answer.body.decode("utf-8") == "\u00e9" * 500 + "\n"
    spaced = reply_answer(event, Reject("word   " * 200))
    text = spaced.body.decode("utf-8")
    assert len(text) == 501
    assert text == ("word " * 200)[:500] + "\n"


# -- reply_answer: a mapping for a pre-event ---------------------------------------------------
ALLOWED = {
    "onMessageAdd": {"body", "author", "attributes"},
    "onMessageUpdate": {"body", "author", "attributes"},
    "onConversationAdd": {"friendly_name"},
    "onConversationUpdate": {"friendly_name"},
}


@pytest.mark.parametrize("event_type", CONVERSATIONS_PRE_EVENTS)
def test_a_pre_event_accepts_exactly_its_changeable_fields(event_type: str) -> None:
    allowed = ALLOWED.get(event_type, set())
    event = pre_event(event_type)
    for key in sorted(allowed):
        value = "changed" if key != "attributes" else '{"a":1}'
        answer = reply_answer(event, {key: value})
        assert (answer.status, answer.content_type) == (200, JSON)
        assert json.loads(answer.body) == {key: value}
        assert_consistent(answer)
    every = dict.fromkeys(allowed, "v")
    assert json.loads(reply_answer(event, every).body) == every
    assert reply_answer(event, {}).body == b"{}"
    for key in ("body", "author", "attributes", "friendly_name", "unique_name", "Body", "index"):
        if key in allowed:
            continue
        with pytest.raises(ReplyError, match=key):
            reply_answer(event, {key: "x"})


def test_extra_keys_are_named_in_the_reply_error() -> None:
    event = pre_event("onMessageAdd")
    with pytest.raises(ReplyError) as raised:
        reply_answer(event, {"body": "ok", "zeta": 1, "friendly_name": "x", "Author": "y"})
    message = str(raised.value)
    assert "onMessageAdd" in message
    assert "Author, friendly_name, zeta" in message
    assert "attributes, author, body" in message  # what it may change
    with pytest.raises(ReplyError, match="nothing"):
        reply_answer(pre_event("onParticipantAdd"), {"identity": "mallory"})


@pytest.mark.parametrize("attributes", [{"order": "A-1042", "tags": [1, 2]}, [1, "two", None]])
def test_attributes_given_as_a_dict_or_list_are_sent_as_json_text(attributes: object) -> None:
    answer = reply_answer(pre_event("onMessageUpdate"), {"attributes": attributes, "body": "b"})
    sent = json.loads(answer.body)
    assert isinstance(sent["attributes"], str)
    assert json.loads(sent["attributes"]) == attributes
    assert sent["body"] == "b"


def test_attributes_given_as_text_are_sent_as_they_are() -> None:
    answer = reply_answer(pre_event("onMessageAdd"), {"attributes": '{"raw": true}'})
    assert json.loads(answer.body) == {"attributes": '{"raw": true}'}


def test_non_ascii_is_sent_as_utf8() -> None:
    reply = {"body": "Caf\u00e9 \u2713 \U0001f4e6", "author": "Zo\u00eb"}
    answer = reply_answer(pre_event("onMessageAdd"), reply)
    assert "Caf\u00e9 \u2713 \U0001f4e6".encode() in answer.body
    assert b"\\u" not in answer.body
    assert json.loads(answer.body.decode("utf-8")) == reply
    assert_consistent(answer)


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, b"bytes", 1j, "\ud800"],
    ids=["object", "set", "bytes", "complex", "surrogate"],
)
def test_a_value_that_is_not_json_is_a_reply_error(value: object) -> None:
    with pytest.raises(ReplyError, match="not JSON"):
        reply_answer(pre_event("onMessageAdd"), {"body": value})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=str)
@pytest.mark.parametrize("where", ["pre-event", "assignment", "attributes"])
def test_a_number_json_cannot_carry_is_a_reply_error(value: float, where: str) -> None:
    # json.dumps writes NaN and Infinity, which are not JSON: Twilio could not read them.
    event: TwilioEvent = assignment() if where == "assignment" else pre_event("onMessageAdd")
    replies: dict[str, dict[str, object]] = {
        "pre-event": {"body": value},
        "assignment": {"instruction": "dequeue", "timeout": value},
        "attributes": {"attributes": {"score": value}},
    }
    with pytest.raises(ReplyError):
        reply_answer(event, replies[where])


@pytest.mark.parametrize(
    "attributes",
    [{"when": object()}, [{1, 2}], {"n": 1j}],
    ids=["object", "set", "complex"],
)
def test_attributes_that_are_not_json_are_a_reply_error(attributes: object) -> None:
    with pytest.raises(ReplyError):
        reply_answer(pre_event("onMessageAdd"), {"attributes": attributes})


@pytest.mark.parametrize(
    "reply",
    ["body text", ["body"], [("body", "x")], 3, True, b"{}"],
    ids=["str", "list", "pairs", "int", "bool", "bytes"],
)
def test_a_pre_events_reply_that_is_not_a_mapping_is_a_reply_error(reply: object) -> None:
    with pytest.raises(ReplyError, match="mapping"):
        reply_answer(pre_event("onMessageAdd"), reply)
    with pytest.raises(ReplyError, match="mapping"):
        reply_answer(assignment(), reply)


# -- reply_answer: an assignment ---------------------------------------------------------------
def test_an_assignment_may_answer_any_instruction() -> None:
    instruction = {
        "instruction": "dequeue",
        "to": "client:alice",
        "from": "+14155550143",
        "post_work_activity_sid": "WA" + "1" * 32,
        "timeout": 30,
        "record": "record-from-answer",
        "status_callback_events": ["initiated", "completed"],
        "accept": True,
    }
    answer = reply_answer(assignment(), instruction)
    assert (answer.status, answer.content_type) == (200, JSON)
    assert json.loads(answer.body) == instruction
    assert_consistent(answer)
    assert json.loads(reply_answer(assignment(), {"instruction": "accept"}).body) == {
        "instruction": "accept"
    }
    assert reply_answer(assignment(), {}).body == b"{}"


def test_an_assignment_cannot_be_rejected() -> None:
    # TaskRouter takes any answer but a 200 for a failure, and calls the fallback
    # URL: a reservation is rejected with the "reject" instruction instead.
    with pytest.raises(ReplyError, match="events of the kind assignment cannot be rejected"):
        reply_answer(event_of(assignment_params(), "assignment"), Reject("no"))
