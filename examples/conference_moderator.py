"""Follow moderated conferences: who joins and leaves, when the moderator is in, why each ends.

    TWILIO_AUTH_TOKEN=... twilio-trigger run examples/conference_moderator.py

Put each caller in the conference with TwiML that sends its status callbacks to
this listener's public URL; label the moderator's participant ``moderator``
(twilio-python: ``dial.conference(..., participant_label="moderator")``):

    <Response><Dial><Conference participantLabel="moderator"
        startConferenceOnEnter="true" endConferenceOnExit="true"
        statusCallback="https://hooks.example.com/"
        statusCallbackEvent="start end join leave">support-room-42</Conference></Dial></Response>

The first participant to join fixes the conference's status callback and its
events, so give every participant's <Conference> the same two attributes.  Try it
locally, from another terminal (the last line is a join that arrives after the
end: it is stale, and ignored):

    twilio-trigger send conference participant-join --sid CF00000000000000000000000000000042 \
        --set ParticipantLabel=moderator
    twilio-trigger send conference participant-join --sid CF00000000000000000000000000000042
    twilio-trigger send conference participant-leave --sid CF00000000000000000000000000000042 \
        --set ParticipantLabel=moderator --set ReasonParticipantLeft=participant_hung_up
    twilio-trigger send conference conference-end --sid CF00000000000000000000000000000042
    twilio-trigger send conference participant-join --sid CF00000000000000000000000000000042
"""

from __future__ import annotations

import logging

import twilio_trigger as twilio

log = logging.getLogger("conference_moderator")

listener = twilio.Listener()

#: The ParticipantLabel of the moderator's participant.
MODERATOR = "moderator"


class Moderation(twilio.ConferenceService):
    """Keeps which conferences have their moderator in, and logs how each one goes."""

    def __init__(self) -> None:
        #: Conference SID → the moderator's call SID, while the moderator is in.
        self.moderated: dict[str, str] = {}

    def on_conference_start(self, event: twilio.ConferenceEvent) -> None:
        log.info("conference %s (%s) started", event.conference_sid, event.friendly_name)

    def on_participant_join(self, event: twilio.ConferenceEvent) -> None:
        if _late(event):
            return
        conference = event.conference_sid or ""
        if event.participant_label == MODERATOR:
            self.moderated[conference] = event.call_sid or ""
            log.info(
                "conference %s (%s): the moderator joined on call %s",
                conference,
                event.friendly_name,
                event.call_sid,
            )
        elif conference in self.moderated:
            log.info("conference %s: call %s joined", conference, event.call_sid)
        else:
            log.info(
                "conference %s: call %s joined and waits for the moderator",
                conference,
                event.call_sid,
            )

    def on_participant_leave(self, event: twilio.ConferenceEvent) -> None:
        if _late(event):
            return
        conference = event.conference_sid or ""
        moderator = self.moderated.get(conference)
        if event.participant_label == MODERATOR or (moderator and moderator == event.call_sid):
            self.moderated.pop(conference, None)
            log.info(
                "conference %s: the moderator left (%s)",
                conference,
                event.reason_participant_left or "no reason given",
            )
        else:
            log.info(
                "conference %s: call %s left (%s, call %s)",
                conference,
                event.call_sid,
                event.reason_participant_left or "no reason given",
                event.participant_call_status,
            )

    def on_conference_end(self, event: twilio.ConferenceEvent) -> None:
        conference = event.conference_sid or ""
        self.moderated.pop(conference, None)
        log.info(
            "conference %s (%s) ended: %s; the last call was %s (%s)",
            conference,
            event.friendly_name,
            event.reason_conference_ended,
            event.call_sid_ending_conference,
            event.participant_label_ending_conference or "no label",
        )


def _late(event: twilio.ConferenceEvent) -> bool:
    """True for an event overtaken by a later one of its conference (and logged).

    Twilio numbers a conference's events (``SequenceNumber``) but does not promise
    to deliver them in that order: a join can arrive after the conference's end.
    Applying it then would mark an ended conference as moderated again.
    """
    if event.stale:
        log.info(
            "conference %s: ignored %s number %s, which arrived after %s",
            event.conference_sid,
            event.status,
            event.sequence_number,
            event.previous_status,
        )
    return event.stale


moderation = Moderation()
listener.attach(moderation)


if __name__ == "__main__":
    listener.run()
