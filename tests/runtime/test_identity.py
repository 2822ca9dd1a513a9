"""What identifies one delivery, and the headers kept beside it (``_identity.py``)."""

from __future__ import annotations

import re

import pytest

from twilio_trigger import SmsStatusChangeEvent
from twilio_trigger._core.kinds import kind_named
from twilio_trigger._core.payloads import call_event, sms_event
from twilio_trigger._core.signature import signed_payload
from twilio_trigger._identity import MAX_KEPT_HEADER, delivery_key, kept_header

SID = "SM" + "0123456789abcdef" * 2
CALL_SID = "CA" + "fedcba9876543210" * 2


# -- delivery_key ----------------------------------------------------------------------
# The key is made of signed content only (DESIGN §2, "Identity"): the unsigned
# I-Twilio-Idempotency-Token header is no argument of it, so no header can change it.
def test_the_same_event_has_the_same_key() -> None:
    # Two payloads of one delivery differ in fields that are not its identity.
    first = sms_event("delivered", sid=SID, Body="one")
    again = sms_event("delivered", sid=SID, Body="two")
    assert first.get("MessagingServiceSid") != again.get("MessagingServiceSid")
    assert delivery_key(first) == delivery_key(again)
    assert delivery_key(first) == f"e:sms:{SID}:delivered::"  # readable where it can be


@pytest.mark.parametrize(
    ("other_status", "other_overrides"),
    [
        ("sent", {}),  # the status
        ("delivered", {"MessageSid": "SM" + "9" * 32, "SmsSid": "SM" + "9" * 32}),  # the SID
        ("delivered", {"ErrorCode": "30003"}),  # the error code
    ],
)
def test_message_key_distinguishes_sid_status_and_error_code(
    other_status: str, other_overrides: dict[str, str]
) -> None:
    base = sms_event("delivered", sid=SID)
    other = sms_event(other_status, sid=SID, **other_overrides)
    assert delivery_key(base) != delivery_key(other)


def test_message_key_distinguishes_error_codes_of_one_status() -> None:
    first = sms_event("failed", sid=SID, ErrorCode="30008")
    second = sms_event("failed", sid=SID, ErrorCode="30003")
    assert delivery_key(first) != delivery_key(second)


def test_call_key_distinguishes_sequence_numbers() -> None:
    first = call_event("in-progress", sid=CALL_SID, SequenceNumber="2")
    second = call_event("in-progress", sid=CALL_SID, SequenceNumber="3")
    again = call_event("in-progress", sid=CALL_SID, SequenceNumber="2")
    assert delivery_key(first) != delivery_key(second)
    assert delivery_key(first) == delivery_key(again)


def test_a_calls_status_callbacks_are_deduplicated_its_requests_for_twiml_are_not() -> None:
    # A call's request for TwiML (no CallbackSource) is asked again at each
    # <Redirect>, the same URL included: never a copy.  Its status callbacks are
    # deliveries: one wherever they are sent.
    call = kind_named("call")
    asking = call_event("in-progress", sid=CALL_SID, CallbackSource=None)
    status = call_event("in-progress", sid=CALL_SID)
    assert call.deduplicates is not None
    assert not call.deduplicates(asking)
    assert call.deduplicates(status)
    status._at("/", "a=1")
    other = call_event("in-progress", sid=CALL_SID)
    other._at("/voice", "b=2")
    assert delivery_key(status) == delivery_key(other)


def test_conversations_keys_tell_apart_a_state_reached_again_and_a_users_reachability() -> None:
    from twilio_trigger._core.payloads import conversations_params
    from twilio_trigger._core.routing import to_event

    made: dict[str, dict[str, str]] = {}  # one payload per type: its made-up fields fixed

    def key(event_type: str, **changes: str) -> str:
        if event_type not in made:
            made[event_type] = conversations_params(event_type, sid="CH" + "1" * 32)
        event = to_event(list({**made[event_type], **changes}.items()))
        assert event is not None
        return delivery_key(event)

    state = "onConversationStateUpdated"
    first = key(state, StateTo="inactive", StateUpdated="2026-12-01T10:00:00Z")
    again = key(state, StateTo="inactive", StateUpdated="2026-12-01T12:00:00Z")
    assert first != again
    assert first == key(state, StateTo="inactive", StateUpdated="2026-12-01T10:00:00Z")
    user = "onUserUpdated"
    assert key(user, isOnline="true") != key(user, isOnline="false")
    assert key(user, isNotifiable="true") != key(user, isNotifiable="false")


def _key_of(params: dict[str, str]) -> str:
    from twilio_trigger._core.routing import to_event

    event = to_event(list(params.items()))
    assert event is not None
    return delivery_key(event)


def test_events_that_share_a_sid_and_a_second_keep_apart_by_what_changed() -> None:
    # Found by feeding real payloads: each pair is two events Twilio sends, once each.
    from twilio_trigger._core import payloads

    channel = {"TimestampMs": "1700000100500", "Timestamp": "1700000100"}
    worker = "WK" + "1" * 32
    voice = payloads.taskrouter_params(
        "worker.channel.availability.update", sid=worker, TaskChannelSid="TC1", **channel
    )
    chat = dict(voice, TaskChannelSid="TC2", TaskChannelUniqueName="chat")
    assert _key_of(voice) != _key_of(chat)
    assert _key_of(voice) == _key_of(dict(voice))

    read = payloads.conversations_params(
        "onParticipantUpdated", DateUpdated="2024-01-01T10:01:00Z", LastReadMessageIndex="3"
    )
    assert _key_of(read) != _key_of(dict(read, LastReadMessageIndex="4"))
    edited = payloads.conversations_params(
        "onMessageUpdated", DateUpdated="2024-01-01T10:00:05Z", Body="hello!"
    )
    assert _key_of(edited) != _key_of(dict(edited, Body="hello!!"))
    assert _key_of(edited) == _key_of(dict(edited))

    started = payloads.transcription_params(
        sid="GT" + "2" * 32, TranscriptionEvent="transcription-started", TranscriptionStatus=None
    )
    part = dict(started, TranscriptionEvent="transcription-content", SequenceId="1")
    assert len({_key_of(started), _key_of(part), _key_of(dict(part, SequenceId="2"))}) == 3


def test_conversations_and_taskrouter_events_are_keyed_by_every_parameter() -> None:
    # Found by a payload audit: any field can be all that tells two events apart.
    from twilio_trigger._core import payloads

    when = {"DateUpdated": "2024-03-05T18:31:00Z"}
    renamed = payloads.conversations_params("onConversationUpdated", FriendlyName="A", **when)
    changes = [{"FriendlyName": "A (closed)"}, {"State": "closed"}, {"UniqueName": "u"}]
    role = payloads.conversations_params("onParticipantUpdated", RoleSid="RL" + "1" * 32, **when)
    keys = [_key_of(renamed), *(_key_of(dict(renamed, **change)) for change in changes)]
    keys += [_key_of(role), _key_of(dict(role, RoleSid="RL" + "2" * 32))]
    assert len(set(keys)) == len(keys)
    # A retry repeats the request but for its count: the same delivery.
    assert _key_of(dict(renamed, RetryCount="1")) == _key_of(dict(renamed, RetryCount="2"))
    assert _key_of(dict(renamed, RetryCount="1")) == _key_of(renamed)

    queue = payloads.taskrouter_params("task-queue.entered")
    other_task = dict(queue, TaskSid="WT" + "9" * 32, TaskAttributes='{"n": 2}')
    assert _key_of(queue) != _key_of(other_task)
    assert _key_of(queue) == _key_of(dict(queue))
    assert all(len(key) < 200 for key in (_key_of(queue), _key_of(renamed)))


@pytest.mark.parametrize("name", ["pay_status", "gather_partial"])
def test_a_calls_pay_stages_and_partial_speech_are_never_taken_for_copies(name: str) -> None:
    # A second <Pay> in a call sends its stages again from Attempt 1; a second
    # speech <Gather> numbers its partial results afresh, and the caller may say
    # the same again: nothing signed tells them from the first's.
    from twilio_trigger._core.routing import to_event

    kind = kind_named(name)
    params = kind.payload("payment-card-number" if name == "pay_status" else "partial")
    event = to_event(list(params.items()))
    assert event is not None
    assert event.kind == name
    assert kind.deduplicates is not None
    assert not kind.deduplicates(event)


def test_key_distinguishes_kinds() -> None:
    sid = "XX" + "1" * 32
    message = sms_event("failed", sid=sid)
    call = call_event("failed", sid=sid, SequenceNumber=None, ErrorCode="30008")
    message_no_error = sms_event("failed", sid=sid, ErrorCode=None)
    call_no_error = call_event("failed", sid=sid, SequenceNumber=None)
    assert delivery_key(message) != delivery_key(call)
    assert delivery_key(message_no_error) != delivery_key(call_no_error)


def test_a_cloudevent_is_keyed_by_its_id_alone() -> None:
    # Event Streams signs the body, and so the id: Twilio resends a batch with the
    # same ids, and two events of one SID and status are still two events.
    event = sms_event("delivered", sid=SID)
    same_status = sms_event("delivered", sid=SID)
    assert delivery_key(event, "EZ" + "1" * 32) == delivery_key(same_status, "EZ" + "1" * 32)
    assert delivery_key(event, "EZ" + "1" * 32) != delivery_key(event, "EZ" + "2" * 32)
    assert delivery_key(event, "EZ" + "1" * 32) != delivery_key(event)


def test_a_field_holding_the_separator_cannot_pass_for_two_fields() -> None:
    # "A:B" + "C" and "A" + "B:C" join to the same text: such keys are hashed whole.
    first = sms_event("C", sid="SMA:B", SmsSid=None)
    second = sms_event("B:C", sid="SMA", SmsSid=None)
    assert delivery_key(first) != delivery_key(second)
    assert delivery_key(first, "x:y") != delivery_key(first, "x")


@pytest.mark.parametrize("length", [65, 100_000, 2 * 1024 * 1024])
def test_a_long_signed_identity_gives_a_bounded_key(length: int) -> None:
    long_sid = "SM" + "a" * length
    first = sms_event("delivered", sid=long_sid)
    other = sms_event("delivered", sid=long_sid[:-1] + "b")  # differs in its last character
    keys = {delivery_key(first), delivery_key(other)}
    cloud_keys = {
        delivery_key(first, "CE" + "x" * length),
        delivery_key(first, "CE" + "y" * length),
    }
    assert len(keys) == 2
    assert len(cloud_keys) == 2
    assert max(len(key) for key in keys | cloud_keys) <= 100
    # The same identity, hashed, is the same key (another payload of it).
    assert delivery_key(first) == delivery_key(sms_event("delivered", sid=long_sid))


def test_a_key_carries_no_character_that_could_disturb_a_log_or_a_redis_key() -> None:
    hostile = sms_event("delivered\n", sid="SM1\r\nX-Forged: yes", SmsSid=None)
    for key in (delivery_key(hostile), delivery_key(hostile, "id\n\x1b[31m")):
        assert key.isascii()
        assert key.isprintable()
        assert " " not in key


def _no_sid(params: list[tuple[str, str]]) -> SmsStatusChangeEvent:
    event = SmsStatusChangeEvent(params)
    assert event.sid is None
    return event


NO_SID = [("AccountSid", "AC" + "0" * 32), ("MessageStatus", "received"), ("Body", "hello")]


def test_an_event_without_sid_is_keyed_by_all_its_signed_parameters() -> None:
    # Without a SID the identity fields would be the status alone: every such
    # event would collapse into the first one.
    first = _no_sid(NO_SID)
    other_body = _no_sid([*NO_SID[:2], ("Body", "hello again")])
    other_account = _no_sid([("AccountSid", "AC" + "1" * 32), *NO_SID[1:]])
    keys = {delivery_key(event) for event in (first, other_body, other_account)}
    assert len(keys) == 3
    assert all(key.startswith("p:sms:#") and len(key) <= 100 for key in keys)


def test_an_event_without_sid_keeps_its_key_under_what_its_signature_ignores() -> None:
    # Twilio signs the parameters sorted by name, each distinct value once: a
    # reordered body, or a value repeated, carries the same signature, and so
    # must be the same delivery.
    first = _no_sid(NO_SID)
    reordered = _no_sid(list(reversed(NO_SID)))
    repeated = _no_sid([*NO_SID, ("Body", "hello")])
    assert delivery_key(first) == delivery_key(reordered) == delivery_key(repeated)
    # A second, different value of a name is signed: another delivery.
    assert delivery_key(first) != delivery_key(_no_sid([*NO_SID, ("Body", "bye")]))
    assert signed_payload(NO_SID) == signed_payload(list(reversed(NO_SID)))


def test_an_event_without_sid_sent_to_another_url_is_another_delivery() -> None:
    # The URL is signed with the parameters: the same form at another path, or
    # with another query, is another event (an event with a SID is one delivery
    # wherever it is sent: Twilio's retries of a callback keep its SID).
    def at(path: str, query: str) -> SmsStatusChangeEvent:
        event = _no_sid(NO_SID)
        event._at(path, query)
        return event

    keys = [delivery_key(at(path, query)) for path, query in ANOTHER_URL]
    assert len(set(keys)) == len(keys)
    assert delivery_key(at("/", "hook=a")) == delivery_key(at("/", "hook=a"))
    assert all(key.startswith("p:sms:#") and len(key) <= 100 for key in keys)
    with_sid = [sms_event("delivered", sid=SID) for _ in ANOTHER_URL]
    for event, (path, query) in zip(with_sid, ANOTHER_URL, strict=True):
        event._at(path, query)
    assert len({delivery_key(event) for event in with_sid}) == 1


#: Where one form can be sent; the last two would be one if the path and query
#: were joined by a separator either could hold.
ANOTHER_URL = [
    ("/", ""), ("/", "hook=a"), ("/", "hook=b"), ("/other", ""), ("/a?b", ""), ("/a", "b"),
]  # fmt: skip


# -- kept_header -------------------------------------------------------------------------
def test_a_usual_header_is_kept_as_it_came() -> None:
    token = "3c6b7b5e-8f1a-4d1e-9c62-0f5a1e2b3c4d"
    assert kept_header(token) == token
    assert kept_header("TwilioProxy/1.1") == "TwilioProxy/1.1"


@pytest.mark.parametrize("length", [MAX_KEPT_HEADER + 1, 2 * 1024 * 1024])
def test_a_long_header_keeps_its_start_its_length_and_a_digest(length: int) -> None:
    value = "a" * length
    kept = kept_header(value)
    assert len(kept) <= 2 * MAX_KEPT_HEADER
    assert kept.startswith("a" * 64)
    assert f"{length} characters" in kept
    assert kept != kept_header(value[:-1] + "b")  # two made-up tokens stay apart


def test_a_kept_header_cannot_break_a_line_or_grow_by_its_escapes() -> None:
    # The inbox stores headers one per line; a log or a terminal shows them.
    assert kept_header("a\nb\r\x1b[31m") == "a\\nb\\r\\x1b[31m"
    for hostile in ("\x1b" * MAX_KEPT_HEADER, "\u2028" * MAX_KEPT_HEADER):
        kept = kept_header(hostile)
        assert len(kept) <= 2 * MAX_KEPT_HEADER
        assert kept.isprintable()


# -- readable where it can be, hashed when odd --------------------------------------------
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


@pytest.mark.parametrize("event_id", ["EZ" + "0" * 32, "a.b_c-1", "x" * 64])
def test_a_plain_cloudevent_id_is_kept_readable(event_id: str) -> None:
    assert delivery_key(sms_event("delivered", sid=SID), event_id) == "ce:" + event_id


@pytest.mark.parametrize("event_id", ["x" * 65, "has space", "a:b", "é", "", "id\n"])
def test_an_odd_cloudevent_id_is_hashed(event_id: str) -> None:
    key = delivery_key(sms_event("delivered", sid=SID), event_id)
    assert key.startswith("ce:#")
    assert HEX_DIGEST.fullmatch(key.removeprefix("ce:#"))


def test_an_odd_sid_or_status_is_hashed_under_its_kind() -> None:
    for event in (
        sms_event("delivered", sid="SM with space\t", SmsSid=None),
        sms_event("deli:vered", sid=SID),
        call_event("completed", sid=CALL_SID, SequenceNumber="1\x00"),
    ):
        key = delivery_key(event)
        prefix = f"e:{event.kind}:#"
        assert key.startswith(prefix), key
        assert HEX_DIGEST.fullmatch(key.removeprefix(prefix)), key
    assert delivery_key(call_event("completed", sid=CALL_SID, SequenceNumber="3")) == (
        f"e:call:{CALL_SID}:completed::3"
    )


def test_a_key_is_a_function_of_the_event_alone() -> None:
    # No header, no time, no process state: the same parameters are the same key
    # however often, and wherever, they are keyed.
    params = list(sms_event("failed", sid=SID, ErrorCode="30008").params)
    keys = {delivery_key(SmsStatusChangeEvent(params)) for _ in range(3)}
    assert keys == {f"e:sms:{SID}:failed:30008:"}


# -- kept_header at its bound -----------------------------------------------------------------
def test_a_plain_header_of_the_bound_exactly_is_kept_whole() -> None:
    value = "t" * MAX_KEPT_HEADER
    assert kept_header(value) == value
    assert kept_header(value + "t") != value + "t"


def test_a_short_header_with_control_characters_is_kept_escaped_when_that_fits() -> None:
    assert kept_header("token\x00") == "token\\x00"
    shown = kept_header("\x1b" * 100)  # escapes to 400 characters: past the bound
    assert shown.startswith("\\x1b")
    assert "(100 characters, sha256 " in shown
    assert shown.isprintable()
