"""The rows of TaskRouter: ``ASSIGNMENT`` and ``TASKROUTER``.

An assignment callback, whose JSON answer is the instruction for the reservation,
and a workspace event (an ``EventType`` with a dot, ``task.created``), acknowledged
with 204.  Both go to a ``TaskRouterService``; their event classes are in
``events/taskrouter.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import payloads
from ..events import AssignmentEvent, TaskRouterEvent
from ..services import TaskRouterService
from ..vocabulary import TASKROUTER_EVENT_TYPES
from .kind import _JSON_TIME_LIMIT, Kind, _always, _never


def _taskrouter_event(first: Mapping[str, str]) -> bool:
    return "." in first.get("EventType", "")


ASSIGNMENT = Kind(
    name="assignment",
    event_class=AssignmentEvent,
    service_class=TaskRouterService,
    signals=(("ReservationSid", "WorkerAttributes", "TaskAttributes"),),
    excludes=("EventType",),
    route_by=(),
    sid_params=("ReservationSid",),
    events=(),
    callback="on_assignment",
    sid_prefixes=("WR",),
    payload=payloads.assignment_params,
    answer="json",
    waits_for_reply=_always,
    reply_inline=True,
    time_limit=_JSON_TIME_LIMIT,
    deduplicates=_never,
)

TASKROUTER = Kind(
    name="taskrouter",
    event_class=TaskRouterEvent,
    service_class=TaskRouterService,
    signals=(("EventType", "WorkspaceSid"),),
    test=_taskrouter_event,
    route_by=("EventType",),
    sid_params=("ResourceSid", "TaskSid", "ReservationSid", "WorkerSid", "WorkspaceSid"),
    events=TASKROUTER_EVENT_TYPES,
    sid_prefixes=("WT", "WR", "WK", "WA", "WW", "WS", "WQ", "TC"),
    payload=payloads.taskrouter_params,
    receipt="no-content",
    # An event's SID is its resource's (a queue's, a workflow's), which sees
    # the events of many tasks, workers and channels in one millisecond (a
    # worker's channels change together): every signed parameter is the key.
    key_ignores=frozenset(),
)
