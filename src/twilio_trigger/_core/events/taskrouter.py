"""The events of TaskRouter: ``TaskRouterEvent`` and ``AssignmentEvent``.

A workspace event tells that a task, reservation, worker, queue, workflow, activity
or workspace changed; an assignment callback, that a reservation was made for a
worker, and its answer may be an instruction.  The task's and the worker's
attributes are JSON, parsed on access.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import TwilioEvent
from .params import _as_epoch_or_date, _bool, _int, _mapping, _Param, _parse_json, _text


class TaskRouterEvent(TwilioEvent):
    """A TaskRouter workspace event: a task, reservation, worker, queue, workflow,
    activity or workspace changed.

    ``status`` is ``EventType`` (``task.created``, ``reservation.accepted``, ...),
    ``sid`` the ``ResourceSid``.  TaskRouter is answered ``204`` at once.
    """

    __slots__ = ()

    event_type = _text("EventType")
    event_description = _text("EventDescription")
    workspace_sid = _text("WorkspaceSid")
    workspace_name = _text("WorkspaceName")
    resource_type = _text("ResourceType")
    resource_sid = _text("ResourceSid")
    timestamp = _Param("Timestamp", _as_epoch_or_date)
    timestamp_ms = _int("TimestampMs")
    task_sid = _text("TaskSid")
    task_age = _int("TaskAge")
    task_priority = _int("TaskPriority")
    task_assignment_status = _text("TaskAssignmentStatus")
    task_canceled_reason = _text("TaskCanceledReason")
    task_completed_reason = _text("TaskCompletedReason")
    task_channel_sid = _text("TaskChannelSid")
    task_channel_unique_name = _text("TaskChannelUniqueName")
    task_queue_sid = _text("TaskQueueSid")
    task_queue_name = _text("TaskQueueName")
    task_queue_target_expression = _text("TaskQueueTargetExpression")
    reservation_sid = _text("ReservationSid")
    worker_sid = _text("WorkerSid")
    worker_name = _text("WorkerName")
    worker_activity_sid = _text("WorkerActivitySid")
    worker_activity_name = _text("WorkerActivityName")
    worker_previous_activity_sid = _text("WorkerPreviousActivitySid")
    worker_time_in_previous_activity = _int("WorkerTimeInPreviousActivity")
    worker_channel_available = _bool("WorkerChannelAvailable")
    worker_channel_available_capacity = _int("WorkerChannelAvailableCapacity")
    workflow_sid = _text("WorkflowSid")
    workflow_name = _text("WorkflowName")
    activity_sid = _text("ActivitySid")
    activity_name = _text("ActivityName")
    activity_available = _bool("ActivityAvailable")

    @property
    def task_attributes(self) -> Mapping[str, object] | None:
        """``TaskAttributes`` parsed from JSON; ``None`` when absent or not an object."""
        return _mapping(_parse_json(self._first.get("TaskAttributes")))

    @property
    def worker_attributes(self) -> Mapping[str, object] | None:
        """``WorkerAttributes`` parsed from JSON; ``None`` when absent or not an object."""
        return _mapping(_parse_json(self._first.get("WorkerAttributes")))


class AssignmentEvent(TaskRouterEvent):
    """A TaskRouter assignment callback: a reservation was made for a worker.

    Its callback may answer within 5 seconds with an instruction, a mapping
    sent as JSON (``{"instruction": "accept"}``, ``dequeue``, ``call``,
    ``redirect``, ``reject``); ``None`` answers an empty 200: accept or reject
    the reservation later with Twilio's API.
    """

    __slots__ = ()
