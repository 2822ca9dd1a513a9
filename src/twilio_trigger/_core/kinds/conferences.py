"""The row of the conference status callbacks: ``CONFERENCE``.

A conference's events, named in ``vocabulary.CONFERENCE_EVENTS``, are ordered by
their ``SequenceNumber`` and go to a ``ConferenceService``; the event class is in
``events/conferences.py``.
"""

from __future__ import annotations

from .. import payloads
from ..events import ConferenceEvent
from ..services import ConferenceService
from ..vocabulary import CONFERENCE_EVENTS
from .kind import Kind

CONFERENCE = Kind(
    name="conference",
    event_class=ConferenceEvent,
    service_class=ConferenceService,
    signals=(("ConferenceSid", "StatusCallbackEvent"),),
    route_by=("StatusCallbackEvent",),
    sid_params=("ConferenceSid",),
    events=CONFERENCE_EVENTS,
    sid_prefixes=("CF",),
    payload=payloads.conference_params,
    # Ordered per conference by SequenceNumber; two participants' joins are
    # two deliveries.
    sequence_param="SequenceNumber",
    # A participant's late join or leave, a conference-start after a join: each
    # still happened, whatever arrived before it.
    replaces=False,
    key_params=("SequenceNumber", "CallSid"),
)
