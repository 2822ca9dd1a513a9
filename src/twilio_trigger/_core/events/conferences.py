"""The events of conferences: ``ConferenceEvent``.

A conference status callback tells that a conference started or ended, or that a
participant joined, left, was muted, held, coached or spoke.  The events of one
conference are ordered by ``SequenceNumber``: one overtaken by a later one is stale.
"""

from __future__ import annotations

from .base import TwilioEvent
from .params import _bool, _int, _text, _time


class ConferenceEvent(TwilioEvent):
    """A conference status callback: the conference started or ended, a participant
    joined, left, was muted, held, spoke, ...

    ``status`` is ``StatusCallbackEvent`` (``participant-join``, ...), ``sid``
    the ``ConferenceSid``.  Events of one conference are ordered by their
    ``SequenceNumber``: one overtaken by a later one is :attr:`stale`.
    """

    __slots__ = ()

    conference_sid = _text("ConferenceSid")
    friendly_name = _text("FriendlyName")
    status_callback_event = _text("StatusCallbackEvent")
    sequence_number = _int("SequenceNumber")
    timestamp = _time("Timestamp")
    call_sid = _text("CallSid")
    participant_label = _text("ParticipantLabel")
    muted = _bool("Muted")
    hold = _bool("Hold")
    coaching = _bool("Coaching")
    call_sid_to_coach = _text("CallSidToCoach")
    end_conference_on_exit = _bool("EndConferenceOnExit")
    start_conference_on_enter = _bool("StartConferenceOnEnter")
    participant_call_status = _text("ParticipantCallStatus")
    reason_participant_left = _text("ReasonParticipantLeft")
    reason_conference_ended = _text("ReasonConferenceEnded")
    reason = _text("Reason")
    call_sid_ending_conference = _text("CallSidEndingConference")
    participant_label_ending_conference = _text("ParticipantLabelEndingConference")
    reason_announcement_failed = _text("ReasonAnnouncementFailed")
    announce_url = _text("AnnounceUrl")
