"""The events passed to callbacks: immutable, typed views over Twilio's parameters.

An event keeps every parameter it was built from, in the order received, and
exposes the documented ones as snake_case attributes that convert on access:
counts, codes and durations to ``int``, timestamps to timezone-aware
``datetime``.  A parameter that is absent or malformed reads as ``None``; it
never makes the event invalid, because Twilio adds and varies parameters
without notice.
"""

from __future__ import annotations

# One module per family of events: params (reading a parameter), base (TwilioEvent),
# status (messages, calls, recordings), debugger, verbs (voice: the results of TwiML
# verbs), conferences, conversations and taskrouter.
from .base import EventKind, TwilioEvent
from .conferences import ConferenceEvent
from .conversations import ConversationsEvent
from .debugger import DebuggerEvent
from .params import Media
from .params import Params as Params
from .params import _Param as _Param
from .status import CallStatusEvent, RecordingStatusEvent, SmsStatusChangeEvent
from .taskrouter import AssignmentEvent, TaskRouterEvent
from .verbs import (
    DequeueEvent,
    DialEvent,
    EnqueueEvent,
    GatherEvent,
    GatherPartialEvent,
    MachineDetectionEvent,
    PayEvent,
    PayStatusEvent,
    QueueWaitEvent,
    RecordEvent,
    TranscriptionEvent,
)

#: The events of every kind: the package exports each (see ``__init__``).
__all__ = [
    "AssignmentEvent",
    "CallStatusEvent",
    "ConferenceEvent",
    "ConversationsEvent",
    "DebuggerEvent",
    "DequeueEvent",
    "DialEvent",
    "EnqueueEvent",
    "EventKind",
    "GatherEvent",
    "GatherPartialEvent",
    "MachineDetectionEvent",
    "Media",
    "PayEvent",
    "PayStatusEvent",
    "QueueWaitEvent",
    "RecordEvent",
    "RecordingStatusEvent",
    "SmsStatusChangeEvent",
    "TaskRouterEvent",
    "TranscriptionEvent",
    "TwilioEvent",
]
