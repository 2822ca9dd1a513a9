"""Voice: conferences, the status callback of a ``<Conference>`` for each of its
``StatusCallbackEvent`` values, in the order of a conference's life.  A
conference's events describe the conference and its participants, not one call,
so they are a family apart from the calls and the TwiML verbs.
"""

from __future__ import annotations

from ._common import ACCOUNT_SID, _apply, _require, new_sid

_RFC2822_TIME = "Tue, 14 Nov 2023 18:30:00 +0000"


# Each StatusCallbackEvent, with a default SequenceNumber in the order of a conference's life.
_CONFERENCE_SEQUENCE = {
    "participant-join": 1, "conference-start": 2,
    "participant-mute": 3, "participant-unmute": 3, "participant-hold": 3,
    "participant-unhold": 3, "participant-modify": 3, "participant-speech-start": 3,
    "participant-speech-stop": 3, "announcement-end": 3, "announcement-fail": 3,
    "participant-leave": 4, "conference-end": 5,
}  # fmt: skip


def conference_params(
    event: str = "participant-join", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A conference status callback (``<Conference statusCallback>``).  *event* is the
    ``StatusCallbackEvent`` (``conference-start``/``-end``, ``participant-join``,
    ``-leave``, ``-mute``, ``-unmute``, ``-hold``, ``-unhold``, ``-modify``,
    ``-speech-start``, ``-speech-stop``, ``announcement-end``/``-fail``); participant
    and announcement events describe the participant, ``participant-leave`` and
    ``conference-end`` say why.  *sid* is the ``ConferenceSid``.
    """
    _require("conference event", event, tuple(_CONFERENCE_SEQUENCE))
    params = {
        "ConferenceSid": sid or new_sid("CF"),
        "FriendlyName": "support-room-42",
        "AccountSid": ACCOUNT_SID,
        "SequenceNumber": str(_CONFERENCE_SEQUENCE[event]),
        "Timestamp": _RFC2822_TIME,
        "StatusCallbackEvent": event,
    }
    if event.startswith(("participant-", "announcement-")):
        params.update(
            CallSid=new_sid("CA"),
            Muted="true" if event == "participant-mute" else "false",
            Hold="true" if event == "participant-hold" else "false",
            Coaching="false",
            EndConferenceOnExit="false",
            StartConferenceOnEnter="true",
            ParticipantLabel="customer",
        )
    if event == "participant-leave":
        params.update(
            ParticipantCallStatus="completed", ReasonParticipantLeft="participant_hung_up"
        )
    elif event == "conference-end":
        params.update(
            ReasonConferenceEnded="last-participant-left",
            Reason="The last participant left the conference",
            CallSidEndingConference=new_sid("CA"),
            ParticipantLabelEndingConference="customer",
        )
    elif event.startswith("announcement-"):
        params["AnnounceUrl"] = "https://hooks.example.com/voice/announcement.xml"
        if event == "announcement-fail":
            params["ReasonAnnouncementFailed"] = "Internal error"
    return _apply(params, overrides)
