"""Conference status callbacks over real HTTP: each ``StatusCallbackEvent`` reaches
its ``ConferenceService`` callback with a typed ``ConferenceEvent``.

Payloads follow the fact sheet's conference table (§2: the test kit's
``conference_params``, with overrides where the sheet shows more), signed by
twilio-python's ``RequestValidator``.  One service defines every conference
callback and records each call, so each test also checks that no other callback
ran.  Checked besides: the answer (empty TwiML 200), the order of a conference's
events by ``SequenceNumber`` (a late event is ``stale`` with ``previous_status``;
``skip_stale`` does not drop it: a conference's events are facts, not states),
a repeated delivery run once, two participants' joins both run, and a moderator's
conference from first join to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post
from twilio_trigger import testing

from ._support import TOKEN, CallLog, assert_empty_twiml, every_callback, running

EVENTS = (
    "conference-start", "conference-end", "participant-join", "participant-leave",
    "participant-mute", "participant-unmute", "participant-hold", "participant-unhold",
    "participant-modify", "participant-speech-start", "participant-speech-stop",
    "announcement-end", "announcement-fail",
)  # fmt: skip
TIMESTAMP = datetime(2023, 11, 14, 18, 30, tzinfo=UTC)


def callback_of(event: str) -> str:
    return "on_" + event.replace("-", "_")


# -- the recording service -------------------------------------------------------------
@every_callback
class Conferences(CallLog[twilio.ConferenceEvent], twilio.ConferenceService):
    """Every ``ConferenceService`` callback, each recording its call and returning
    TwiML, which a status callback's answer must not carry."""

    def default_reply(self, name: str) -> object:
        return "<Response><Say>not for Twilio</Say></Response>"


def test_the_recording_service_defines_every_conference_callback() -> None:
    assert set(twilio.ConferenceService.callback_names) == {callback_of(e) for e in EVENTS}
    assert set(twilio.ConferenceService.callback_names) <= set(vars(Conferences))


# -- fixtures and helpers --------------------------------------------------------------
@pytest.fixture(scope="module")
def conferences() -> Conferences:
    return Conferences()


@pytest.fixture(scope="module")
def listener(conferences: Conferences) -> Iterator[twilio.Listener]:
    with running(conferences) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _fresh(conferences: Conferences) -> Iterator[None]:
    conferences.reset()
    yield
    conferences.reset()


def post(listener: twilio.Listener, params: dict[str, str]) -> httpx.Response:
    return signed_post(listener.url, params, TOKEN)


# -- each event -------------------------------------------------------------------------
@pytest.mark.parametrize("event", EVENTS)
def test_each_event_reaches_its_callback_typed(
    listener: twilio.Listener, conferences: Conferences, event: str
) -> None:
    params = testing.conference_params(event)
    assert_empty_twiml(post(listener, params))
    name, seen = conferences.only()
    assert name == callback_of(event)
    assert isinstance(seen, twilio.ConferenceEvent)
    assert seen.kind == "conference"
    assert seen.status == event
    assert seen.status_callback_event == event
    assert seen.sid == params["ConferenceSid"]
    assert seen.conference_sid == params["ConferenceSid"]
    assert seen.friendly_name == "support-room-42"
    assert seen.account_sid == testing.ACCOUNT_SID
    assert seen.sequence_number == int(params["SequenceNumber"])
    assert seen.timestamp == TIMESTAMP
    assert seen.stale is False
    if event.startswith(("participant-", "announcement-")):
        assert seen.call_sid == params["CallSid"]
        assert seen.participant_label == "customer"
        assert seen.muted is (event == "participant-mute")
        assert seen.hold is (event == "participant-hold")
        assert seen.coaching is False
        assert seen.end_conference_on_exit is False
        assert seen.start_conference_on_enter is True
    else:
        assert seen.call_sid is None
        assert seen.muted is None


def test_participant_leave_says_why_and_the_calls_status(
    listener: twilio.Listener, conferences: Conferences
) -> None:
    params = testing.conference_params(
        "participant-leave",
        ReasonParticipantLeft="participant_updated_via_api",
        ParticipantCallStatus="in-progress",
    )
    assert_empty_twiml(post(listener, params))
    name, event = conferences.only()
    assert name == "on_participant_leave"
    assert event.reason_participant_left == "participant_updated_via_api"
    assert event.participant_call_status == "in-progress"


def test_conference_end_says_who_ended_it_and_why(
    listener: twilio.Listener, conferences: Conferences
) -> None:
    params = testing.conference_params(
        "conference-end", ReasonConferenceEnded="participant-with-end-conference-on-exit-left"
    )
    assert_empty_twiml(post(listener, params))
    name, event = conferences.only()
    assert name == "on_conference_end"
    assert event.reason_conference_ended == "participant-with-end-conference-on-exit-left"
    assert event.reason == "The last participant left the conference"
    assert event.call_sid_ending_conference == params["CallSidEndingConference"]
    assert event.participant_label_ending_conference == "customer"


def test_a_coach_modified_and_an_announcement_failed(
    listener: twilio.Listener, conferences: Conferences
) -> None:
    customer = testing.new_sid("CA")
    coach = testing.conference_params(
        "participant-modify", Coaching="true", CallSidToCoach=customer, EndConferenceOnExit="true"
    )
    failed = testing.conference_params("announcement-fail", sid=coach["ConferenceSid"])
    assert_empty_twiml(post(listener, coach))
    assert_empty_twiml(post(listener, failed))
    assert conferences.names() == ["on_participant_modify", "on_announcement_fail"]
    modified, announcement = conferences.events()
    assert modified.coaching is True
    assert modified.call_sid_to_coach == customer
    assert modified.end_conference_on_exit is True
    assert announcement.reason_announcement_failed == "Internal error"
    assert announcement.announce_url == "https://hooks.example.com/voice/announcement.xml"


# -- order, copies, participants ----------------------------------------------------------
def test_an_event_overtaken_by_a_later_one_is_stale(
    listener: twilio.Listener, conferences: Conferences
) -> None:
    conference = testing.new_sid("CF")
    later = testing.conference_params("participant-mute", sid=conference, SequenceNumber="3")
    earlier = testing.conference_params("conference-start", sid=conference, SequenceNumber="2")
    assert_empty_twiml(post(listener, later))
    assert_empty_twiml(post(listener, earlier))
    assert conferences.names() == ["on_participant_mute", "on_conference_start"]
    first, late = conferences.events()
    assert first.stale is False
    assert first.previous_status is None
    assert late.stale is True
    assert late.previous_status == "participant-mute"
    assert late.sequence_number == 2


def test_with_skip_stale_a_late_event_still_runs_marked_stale() -> None:
    # A conference's events are facts, not states that replace one another: a
    # conference-start or a participant's leave that arrives late still happened
    # (skip_stale, meant for a message's or a call's statuses, keeps them).
    conferences = Conferences()
    conference = testing.new_sid("CF")
    with running(conferences, skip_stale=True) as listener:
        later = testing.conference_params("participant-mute", sid=conference, SequenceNumber="3")
        earlier = testing.conference_params("conference-start", sid=conference, SequenceNumber="2")
        assert_empty_twiml(post(listener, later))
        assert_empty_twiml(post(listener, earlier))
        # Another conference's events are ordered on their own.
        other = testing.conference_params("conference-start", SequenceNumber="2")
        assert_empty_twiml(post(listener, other))
    assert conferences.names() == [
        "on_participant_mute", "on_conference_start", "on_conference_start",
    ]  # fmt: skip
    assert [event.stale for event in conferences.events()] == [False, True, False]
    assert conferences.events()[2].conference_sid == other["ConferenceSid"]


def test_a_repeated_delivery_runs_once(listener: twilio.Listener, conferences: Conferences) -> None:
    params = testing.conference_params("participant-join")
    assert_empty_twiml(post(listener, params))
    assert_empty_twiml(post(listener, params))  # Twilio's retry
    assert conferences.names() == ["on_participant_join"]


def test_two_participants_joining_are_both_dispatched(
    listener: twilio.Listener, conferences: Conferences
) -> None:
    conference = testing.new_sid("CF")
    # Same conference, event and SequenceNumber: only the CallSid differs.
    alice = testing.conference_params("participant-join", sid=conference, SequenceNumber="1")
    bob = testing.conference_params("participant-join", sid=conference, SequenceNumber="1")
    assert alice["CallSid"] != bob["CallSid"]
    assert_empty_twiml(post(listener, alice))
    assert_empty_twiml(post(listener, bob))
    assert conferences.names() == ["on_participant_join", "on_participant_join"]
    assert [event.call_sid for event in conferences.events()] == [alice["CallSid"], bob["CallSid"]]
    assert not any(event.stale for event in conferences.events())


def test_a_moderated_conference_from_first_join_to_end(
    listener: twilio.Listener, conferences: Conferences
) -> None:
    conference = testing.new_sid("CF")
    moderator, customer = testing.new_sid("CA"), testing.new_sid("CA")
    moderator_fields = {
        "CallSid": moderator,
        "ParticipantLabel": "moderator",
        "StartConferenceOnEnter": "true",
        "EndConferenceOnExit": "true",
    }
    customer_fields = {
        "CallSid": customer,
        "ParticipantLabel": "customer",
        "StartConferenceOnEnter": "false",
    }
    flow: list[tuple[str, dict[str, str]]] = [
        ("participant-join", customer_fields),
        ("participant-join", moderator_fields),
        ("conference-start", {}),
        ("participant-mute", customer_fields),  # the moderator mutes the customer
        ("participant-speech-start", moderator_fields),
        ("participant-speech-stop", moderator_fields),
        ("participant-unmute", customer_fields),
        ("participant-leave", moderator_fields),
        ("conference-end", {"CallSidEndingConference": moderator}),
    ]
    for sequence, (event, fields) in enumerate(flow, start=1):
        params = testing.conference_params(
            event, sid=conference, SequenceNumber=str(sequence), **fields
        )
        assert_empty_twiml(post(listener, params))
    assert conferences.names() == [callback_of(event) for event, _ in flow]
    events = conferences.events()
    assert [e.sequence_number for e in events] == list(range(1, len(flow) + 1))
    assert not any(e.stale for e in events)
    assert {e.conference_sid for e in events} == {conference}
    assert [e.previous_status for e in events[2:4]] == ["participant-join", "conference-start"]
    muted = events[3]
    assert muted.call_sid == customer
    assert muted.participant_label == "customer"
    assert muted.muted is True
    assert muted.start_conference_on_enter is False
    assert events[6].muted is False
    left = events[7]
    assert left.call_sid == moderator
    assert left.end_conference_on_exit is True
    assert left.reason_participant_left == "participant_hung_up"
    assert events[8].call_sid_ending_conference == moderator


def test_an_event_overtaken_by_a_later_one_of_the_same_type_is_stale(
    listener: twilio.Listener, conferences: Conferences
) -> None:
    # Two participants muted: the second mute (SequenceNumber 5) arrives first.
    conference = testing.new_sid("CF")
    later = testing.conference_params("participant-mute", sid=conference, SequenceNumber="5")
    earlier = testing.conference_params("participant-mute", sid=conference, SequenceNumber="4")
    assert_empty_twiml(post(listener, later))
    assert_empty_twiml(post(listener, earlier))
    assert conferences.names() == ["on_participant_mute", "on_participant_mute"]
    first, late = conferences.events()
    assert first.stale is False
    assert late.call_sid == earlier["CallSid"]
    assert late.stale is True
    assert late.previous_status == "participant-mute"


def test_a_later_event_of_the_same_type_moves_the_conference_on(
    listener: twilio.Listener, conferences: Conferences
) -> None:
    # Mutes 3 and 5 arrive in order; the unmute numbered 4 comes after both: stale.
    conference = testing.new_sid("CF")
    for sequence in ("3", "5"):
        mute = testing.conference_params(
            "participant-mute", sid=conference, SequenceNumber=sequence
        )
        assert_empty_twiml(post(listener, mute))
    unmute = testing.conference_params("participant-unmute", sid=conference, SequenceNumber="4")
    assert_empty_twiml(post(listener, unmute))
    assert conferences.names() == ["on_participant_mute"] * 2 + ["on_participant_unmute"]
    late = conferences.events()[2]
    assert late.stale is True
    assert late.previous_status == "participant-mute"
