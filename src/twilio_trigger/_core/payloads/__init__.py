"""Realistic Twilio payloads: what each kind of webhook sends, to test and to demonstrate.

The test kit (:mod:`twilio_trigger.testing`), ``twilio-trigger send`` and the
demo all build their requests here.  Factories take Twilio's parameter names as
keyword overrides; a value of ``None`` removes the parameter.  Every call makes
fresh SIDs unless told.  Each family of webhooks has its module in this package
(the status callbacks of messages, calls and recordings, TwiML verbs,
conferences, Event Streams, the debugger, Conversations, TaskRouter, an unknown
family; named as the event classes' modules in :mod:`..events`), what they share is in
``_common``, and this module re-exports every factory.
"""

from __future__ import annotations

from ..vocabulary import (
    CONVERSATIONS_POST_EVENTS,
    CONVERSATIONS_PRE_EVENTS,
    TASKROUTER_EVENT_TYPES,
)
from ._common import ACCOUNT_SID, CUSTOMER_NUMBER, TWILIO_NUMBER, new_sid
from .conferences import conference_params
from .conversations import conversations_params
from .debugger import debugger_params
from .event_streams import (
    call_cloudevent,
    cloudevent,
    cloudevent_for,
    inbound_message_cloudevent,
    message_cloudevent,
)
from .status import (
    call_event,
    call_status_params,
    inbound_call_params,
    inbound_sms_params,
    recording_event,
    recording_status_params,
    sms_event,
    sms_status_params,
)
from .taskrouter import assignment_params, taskrouter_params
from .unknown import unknown_params
from .verbs import (
    dequeue_params,
    dial_params,
    enqueue_params,
    gather_params,
    gather_partial_params,
    machine_detection_params,
    pay_params,
    pay_status_params,
    queue_wait_params,
    record_params,
    transcription_params,
)

__all__ = [
    "ACCOUNT_SID",
    "CONVERSATIONS_POST_EVENTS",
    "CONVERSATIONS_PRE_EVENTS",
    "CUSTOMER_NUMBER",
    "TASKROUTER_EVENT_TYPES",
    "TWILIO_NUMBER",
    "assignment_params",
    "call_cloudevent",
    "call_event",
    "call_status_params",
    "cloudevent",
    "cloudevent_for",
    "conference_params",
    "conversations_params",
    "debugger_params",
    "dequeue_params",
    "dial_params",
    "enqueue_params",
    "gather_params",
    "gather_partial_params",
    "inbound_call_params",
    "inbound_message_cloudevent",
    "inbound_sms_params",
    "machine_detection_params",
    "message_cloudevent",
    "new_sid",
    "pay_params",
    "pay_status_params",
    "queue_wait_params",
    "record_params",
    "recording_event",
    "recording_status_params",
    "sms_event",
    "sms_status_params",
    "taskrouter_params",
    "transcription_params",
    "unknown_params",
]
