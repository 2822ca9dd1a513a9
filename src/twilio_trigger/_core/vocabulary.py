"""Twilio's values that name events, in its own spelling, for the families that
have many: the registry of kinds, the service classes and the payloads read them.

Sources: Conversations webhooks (twilio.com/docs/conversations/conversations-webhooks),
TaskRouter events (twilio.com/docs/taskrouter/api/event/reference), conference
status callbacks (twilio.com/docs/voice/twiml/conference).
"""

from __future__ import annotations

__all__ = [
    "CONFERENCE_EVENTS",
    "CONVERSATIONS_POST_EVENTS",
    "CONVERSATIONS_PRE_EVENTS",
    "TASKROUTER_EVENT_TYPES",
]

#: ``StatusCallbackEvent`` values of a conference status callback.
CONFERENCE_EVENTS = (
    "conference-start", "conference-end", "participant-join", "participant-leave",
    "participant-mute", "participant-unmute", "participant-hold", "participant-unhold",
    "participant-modify", "participant-speech-start", "participant-speech-stop",
    "announcement-end", "announcement-fail",
)  # fmt: skip

#: Conversations pre-events: Twilio waits for the answer before the action happens.
CONVERSATIONS_PRE_EVENTS = (
    "onConversationAdd", "onConversationUpdate", "onConversationRemove",
    "onMessageAdd", "onMessageUpdate", "onMessageRemove",
    "onParticipantAdd", "onParticipantUpdate", "onParticipantRemove",
    "onUserUpdate",
)  # fmt: skip

#: Conversations post-events: told after the action happened.
CONVERSATIONS_POST_EVENTS = (
    "onConversationAdded", "onConversationUpdated", "onConversationRemoved",
    "onConversationStateUpdated",
    "onMessageAdded", "onMessageUpdated", "onMessageRemoved",
    "onParticipantAdded", "onParticipantUpdated", "onParticipantRemoved",
    "onUserAdded", "onUserUpdated",
    "onDeliveryUpdated",
)  # fmt: skip

#: TaskRouter workspace event types (``EventType`` of an event callback).
TASKROUTER_EVENT_TYPES = (
    "activity.created", "activity.updated", "activity.deleted",
    "reservation.created", "reservation.accepted", "reservation.rejected",
    "reservation.timeout", "reservation.canceled", "reservation.rescinded",
    "reservation.completed", "reservation.wrapup", "reservation.failed",
    "task.created", "task.updated", "task.canceled", "task.wrapup", "task.completed",
    "task.deleted", "task.system-deleted", "task.transfer-initiated",
    "task.transfer-attempt-failed", "task.transfer-failed", "task.transfer-canceled",
    "task.transfer-completed",
    "task-channel.created", "task-channel.updated", "task-channel.deleted",
    "task-queue.created", "task-queue.deleted", "task-queue.entered", "task-queue.timeout",
    "task-queue.moved", "task-queue.expression.updated",
    "worker.created", "worker.activity.update", "worker.attributes.update", "worker.deleted",
    "worker.capacity.update", "worker.channel.availability.update",
    "workflow.created", "workflow.updated", "workflow.deleted", "workflow.target-matched",
    "workflow.entered", "workflow.timeout", "workflow.skipped",
    "workspace.created", "workspace.updated", "workspace.deleted",
)  # fmt: skip
