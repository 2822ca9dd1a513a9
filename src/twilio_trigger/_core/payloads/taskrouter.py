"""TaskRouter: a workspace's event callback for each of its ``EventType`` values
and a workflow's assignment callback.  An event carries the fields of the
resources it concerns (task, worker, queue, workflow...), put together here from
one set of SIDs so that the same task or worker has the same SID throughout.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..vocabulary import TASKROUTER_EVENT_TYPES
from ._common import ACCOUNT_SID, _apply, _require, new_sid

# The first segment of an EventType: its ResourceType and the prefix of that resource's SIDs.
_TASKROUTER_RESOURCES = {
    "activity": ("Activity", "WA"),
    "reservation": ("Reservation", "WR"),
    "task": ("Task", "WT"),
    "task-channel": ("TaskChannel", "TC"),
    "task-queue": ("TaskQueue", "WQ"),
    "worker": ("Worker", "WK"),
    "workflow": ("Workflow", "WW"),
    "workspace": ("Workspace", "WS"),
}
_TASK_STATUS = {
    "reservation.created": "reserved",
    "reservation.accepted": "assigned",
    "reservation.canceled": "canceled",
    "reservation.completed": "completed",
    "reservation.wrapup": "wrapping",
    "task.canceled": "canceled",
    "task.wrapup": "wrapping",
    "task.completed": "completed",
    "task.transfer-initiated": "assigned",
    "task.transfer-attempt-failed": "assigned",
    "task.transfer-failed": "assigned",
    "task.transfer-canceled": "assigned",
    "task.transfer-completed": "assigned",
}
_TASK_ATTRIBUTES = '{"type":"support","from":"+15558675310"}'
_WORKER_ATTRIBUTES = '{"skills":["english","billing"]}'
_TASKROUTER_TIMESTAMP = "1699986600"  # 2023-11-14T18:30:00Z


def _taskrouter_groups(event_type: str) -> tuple[str, ...]:
    """The field groups a TaskRouter event carries, after the common ones."""
    resource, _, action = event_type.partition(".")
    if resource == "activity":
        return ("activity",)
    if resource == "reservation":
        worker = () if action == "failed" else ("worker",)
        return ("task", *worker, "queue", "reservation", "workflow")
    if resource == "task":
        return ("task", "workflow") if action == "created" else ("task", "queue", "workflow")
    if resource == "task-channel":
        return ("channel",)
    if resource == "task-queue":
        if action == "created":
            return ("queue", "target", "operating-unit")
        if action in ("deleted", "expression.updated"):
            return ("queue", "target")
        return ("task", "queue", "workflow")
    if resource == "worker":
        if action == "activity.update":
            return ("worker", "previous-activity")
        if action in ("capacity.update", "channel.availability.update"):
            return ("worker", "worker-channel")
        return ("worker",)
    if resource == "workflow":
        return (
            ("workflow",) if action in ("created", "updated", "deleted") else ("task", "workflow")
        )
    return ()


def _taskrouter_group(group: str, event_type: str, sids: Mapping[str, str]) -> dict[str, str]:
    if group == "task":
        fields = {
            "TaskSid": sids["Task"],
            "TaskAttributes": _TASK_ATTRIBUTES,
            "TaskAge": "12",
            "TaskPriority": "0",
            "TaskAssignmentStatus": _TASK_STATUS.get(event_type, "pending"),
        }
        if event_type == "task.canceled":
            fields["TaskCanceledReason"] = "Customer hung up"
        elif event_type == "task.completed":
            fields["TaskCompletedReason"] = "Replacement parcel sent"
        return fields
    if group == "worker":
        return {
            "WorkerSid": sids["Worker"],
            "WorkerName": "alice",
            "WorkerAttributes": _WORKER_ATTRIBUTES,
            "WorkerActivitySid": sids["Activity"],
            "WorkerActivityName": "Available",
            "WorkerVersion": "3",
            "OperatingUnitSid": sids["OperatingUnit"],
        }
    if group == "previous-activity":
        return {
            "WorkerTimeInPreviousActivity": "35",
            "WorkerTimeInPreviousActivityMs": "35120",
            "WorkerPreviousActivitySid": new_sid("WA"),
        }
    if group == "worker-channel":
        return {
            "WorkerChannelAvailable": "true",
            "WorkerChannelAvailableCapacity": "2",
            "WorkerChannelPreviousCapacity": "1",
            "TaskChannelSid": sids["TaskChannel"],
            "TaskChannelUniqueName": "chat",
            "WorkerChannelTaskCount": "0",
        }
    if group == "queue":
        return {"TaskQueueSid": sids["TaskQueue"], "TaskQueueName": "Billing - English"}
    if group == "target":
        return {"TaskQueueTargetExpression": 'skills HAS "billing"'}
    if group == "operating-unit":
        return {"OperatingUnitSid": sids["OperatingUnit"]}
    if group == "workflow":
        return {"WorkflowSid": sids["Workflow"], "WorkflowName": "Support routing"}
    if group == "reservation":
        return {"ReservationSid": sids["Reservation"]}
    if group == "activity":
        return {
            "ActivitySid": sids["Activity"],
            "ActivityName": "Available",
            "ActivityAvailable": "true",
        }
    if group == "channel":
        return {
            "TaskChannelSid": sids["TaskChannel"],
            "TaskChannelName": "Chat",
            "TaskChannelUniqueName": "chat",
            "TaskChannelOptimizedRouting": "false",
        }
    raise AssertionError(group)  # pragma: no cover


def taskrouter_params(
    event_type: str = "task.created", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A TaskRouter workspace event callback (``EventCallbackUrl``).  *event_type* is the
    ``EventType``, one of :data:`TASKROUTER_EVENT_TYPES`; its first segment gives the
    ``ResourceType`` and the other fields sent (task, worker, queue, workflow...).
    *sid* is the ``ResourceSid`` -- a task's ``WT``, a worker's ``WK``, and so on -- and
    the same SID appears in that resource's own field (``TaskSid``, ``WorkerSid``...).
    """
    _require("TaskRouter event type", event_type, TASKROUTER_EVENT_TYPES)
    resource_type = _TASKROUTER_RESOURCES[event_type.partition(".")[0]][0]
    sids = {name: new_sid(p) for name, p in _TASKROUTER_RESOURCES.values()}
    sids["OperatingUnit"] = new_sid("OU")
    resource_sid = sids[resource_type] = sid or sids[resource_type]
    action = event_type.partition(".")[2].replace(".", " ").replace("-", " ")
    params = {
        "EventType": event_type,
        "AccountSid": ACCOUNT_SID,
        "WorkspaceSid": sids["Workspace"],
        "WorkspaceName": "Acme Support",
        "EventDescription": f"{resource_type} {resource_sid} {action}",
        "ResourceType": resource_type,
        "ResourceSid": resource_sid,
        "Timestamp": _TASKROUTER_TIMESTAMP,
        "TimestampMs": _TASKROUTER_TIMESTAMP + "123",
    }
    for group in _taskrouter_groups(event_type):
        params.update(_taskrouter_group(group, event_type, sids))
    return _apply(params, overrides)


def assignment_params(
    event: str = "reservation", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A TaskRouter assignment callback (a workflow's ``AssignmentCallbackUrl``), sent when
    a reservation offers a task to a worker.  Unlike the event callback it has no
    ``EventType``.  *event* accepts only ``reservation``; *sid* is the ``ReservationSid``.
    """
    _require("assignment event", event, ("reservation",))
    params = {
        "Timestamp": _TASKROUTER_TIMESTAMP,
        "AccountSid": ACCOUNT_SID,
        "WorkspaceSid": new_sid("WS"),
        "WorkflowSid": new_sid("WW"),
        "TaskQueueSid": new_sid("WQ"),
        "WorkerSid": new_sid("WK"),
        "WorkerAttributes": _WORKER_ATTRIBUTES,
        "TaskSid": new_sid("WT"),
        "TaskAttributes": _TASK_ATTRIBUTES,
        "TaskAge": "12",
        "TaskPriority": "0",
        "ReservationSid": sid or new_sid("WR"),
    }
    return _apply(params, overrides)
