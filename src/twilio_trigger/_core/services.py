"""Service base classes, and what makes a service valid to attach.

A service is an object of a subclass of one of the base classes here
(:class:`SmsStatusService`, :class:`CallStatusService`, ...: one per family of
webhooks, see the registry of kinds) that defines the callbacks it needs.  The
base classes only *declare* the callbacks (as annotations, so that type
checkers and editors know their signatures); a callback the subclass does not
define simply does not exist, and its events are acknowledged without dispatch.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias, TypeVar

from .._exceptions import ServiceError
from .events import (
    AssignmentEvent,
    CallStatusEvent,
    ConferenceEvent,
    ConversationsEvent,
    DebuggerEvent,
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
    RecordingStatusEvent,
    SmsStatusChangeEvent,
    TaskRouterEvent,
    TranscriptionEvent,
    TwilioEvent,
)

#: The service base classes: the package exports each (see ``__init__``).
__all__ = [
    "CallStatusService",
    "ConferenceService",
    "ConversationsService",
    "DebuggerService",
    "FallbackService",
    "RecordingStatusService",
    "SmsStatusService",
    "TaskRouterService",
]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def callback_name(status: str) -> str:
    """The callback for a status: ``in-progress`` → ``on_in_progress``,
    ``task-queue.entered`` → ``on_task_queue_entered``."""
    return "on_" + status.strip().lower().replace("-", "_").replace(".", "_")


def camel_callback_name(event_type: str) -> str:
    """The callback for a Conversations ``EventType``: ``onMessageAdded`` → ``on_message_added``."""
    text = event_type.strip()
    if text[:2].lower() == "on":
        text = text[2:]
    return "on_" + _CAMEL.sub("_", text).lower()


#: What a callback may be: sync or async, returning nothing (or an ``Exception``
#: to report failure, the same as raising it), or a reply: see the services'
#: docstrings.
_E = TypeVar("_E", bound=TwilioEvent)
#: A callback of events *_E*: ``def on_x(self, event)``, or ``async def on_x(self,
#: event, tx)`` for one that writes in the transaction of a PostgreSQL inbox or store.
Handler: TypeAlias = Callable[[_E], object] | Callable[[_E, Any], Awaitable[object]]
SmsCallback = Handler[SmsStatusChangeEvent]
CallCallback = Handler[CallStatusEvent]
RecordingCallback = Handler[RecordingStatusEvent]
DebuggerCallback = Handler[DebuggerEvent]
ConferenceCallback = Handler[ConferenceEvent]
ConversationsCallback = Handler[ConversationsEvent]
TaskRouterCallback = Handler[TaskRouterEvent]


class ServiceBase:
    """What every service base class has, set from the registry of kinds: its
    main kind, every kind it receives, and its callbacks' names."""

    kind: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]] = ()
    callback_names: ClassVar[tuple[str, ...]] = ()


class SmsStatusService(ServiceBase):
    """Base class of a service that receives message status changes.

    Define any of these methods, ``async def`` or plain ``def``:
    ``on_accepted on_queued on_sending on_sent on_failed on_delivered
    on_undelivered on_receiving on_received on_scheduled on_canceled on_read
    on_partially_delivered``.  Each takes one :class:`SmsStatusChangeEvent`.
    Raise (or return an ``Exception``) to answer Twilio with a 500.

    ``on_received`` (an inbound message) may return a reply: a ``str`` is sent
    back as a message, and a TwiML object (whose ``str()`` is TwiML, such as
    twilio-python's ``MessagingResponse``) is sent as it is.
    """

    on_accepted: SmsCallback
    on_queued: SmsCallback
    on_sending: SmsCallback
    on_sent: SmsCallback
    on_failed: SmsCallback
    on_delivered: SmsCallback
    on_undelivered: SmsCallback
    on_receiving: SmsCallback
    on_received: SmsCallback
    on_scheduled: SmsCallback
    on_canceled: SmsCallback
    on_read: SmsCallback
    on_partially_delivered: SmsCallback


class CallStatusService(ServiceBase):
    """Base class of a service that receives voice call status changes.

    Define any of these methods, ``async def`` or plain ``def``:
    ``on_queued on_initiated on_ringing on_in_progress on_completed on_busy
    on_failed on_no_answer on_canceled``.  Each takes one :class:`CallStatusEvent`.
    Raise (or return an ``Exception``) to answer Twilio with a 500.

    For a request that asks what to do with a call (an inbound call's ringing,
    an answered outbound call: no ``CallbackSource``), the callback may return
    TwiML, as a ``str`` or an object such as twilio-python's ``VoiceResponse``,
    and Twilio runs it.

    The results of TwiML verbs have callbacks of their own, each with its own
    event: ``on_gather`` (:class:`GatherEvent`), ``on_dial``, ``on_record``,
    ``on_enqueue``, ``on_queue_wait`` (``<Enqueue waitUrl>``), ``on_dequeue``
    (``<Queue url>``) and ``on_pay`` answer with the TwiML the call goes on
    with; ``None`` answers an empty ``<Response/>``, which ends the call.
    ``on_gather_partial``, ``on_transcription``, ``on_pay_status`` and
    ``on_machine_detection`` (asynchronous AMD) are notifications: what they
    return is not sent.  A status callback never reaches a verb's callback,
    nor a verb's result a status callback.
    """

    on_queued: CallCallback
    on_initiated: CallCallback
    on_ringing: CallCallback
    on_in_progress: CallCallback
    on_completed: CallCallback
    on_busy: CallCallback
    on_failed: CallCallback
    on_no_answer: CallCallback
    on_canceled: CallCallback
    on_gather: Handler[GatherEvent]
    on_gather_partial: Handler[GatherPartialEvent]
    on_transcription: Handler[TranscriptionEvent]
    on_dial: Handler[DialEvent]
    on_record: Handler[RecordEvent]
    on_enqueue: Handler[EnqueueEvent]
    on_queue_wait: Handler[QueueWaitEvent]
    on_dequeue: Handler[DequeueEvent]
    on_pay: Handler[PayEvent]
    on_pay_status: Handler[PayStatusEvent]
    on_machine_detection: Handler[MachineDetectionEvent]


class RecordingStatusService(ServiceBase):
    """Base class of a service that receives call recording status changes.

    Define any of ``on_in_progress on_completed on_absent on_failed``, ``async
    def`` or plain ``def``, each taking one :class:`RecordingStatusEvent`.  Raise (or
    return an ``Exception``) to answer Twilio with a 500.
    """

    on_in_progress: RecordingCallback
    on_completed: RecordingCallback
    on_absent: RecordingCallback
    on_failed: RecordingCallback


class DebuggerService(ServiceBase):
    """Base class of a service that receives the Console Debugger's alerts.

    Define ``on_error`` or ``on_warning`` (the alert's ``Level``), ``async def``
    or plain ``def``, each taking one :class:`DebuggerEvent`.  Raise (or return an
    ``Exception``) to answer Twilio with a 500.  Beware of loops: a callback that
    fails a Twilio webhook of its own raises another alert.
    """

    on_error: DebuggerCallback
    on_warning: DebuggerCallback


class ConferenceService(ServiceBase):
    """Base class of a service that receives conference status callbacks.

    Define any of ``on_conference_start on_conference_end on_participant_join
    on_participant_leave on_participant_mute on_participant_unmute
    on_participant_hold on_participant_unhold on_participant_modify
    on_participant_speech_start on_participant_speech_stop on_announcement_end
    on_announcement_fail``, ``async def`` or plain ``def``, each taking one
    :class:`ConferenceEvent`.  The events of a conference are placed in the
    order of their ``SequenceNumber``: one that arrives after a later one is
    ``stale``.
    """

    on_conference_start: ConferenceCallback
    on_conference_end: ConferenceCallback
    on_participant_join: ConferenceCallback
    on_participant_leave: ConferenceCallback
    on_participant_mute: ConferenceCallback
    on_participant_unmute: ConferenceCallback
    on_participant_hold: ConferenceCallback
    on_participant_unhold: ConferenceCallback
    on_participant_modify: ConferenceCallback
    on_participant_speech_start: ConferenceCallback
    on_participant_speech_stop: ConferenceCallback
    on_announcement_end: ConferenceCallback
    on_announcement_fail: ConferenceCallback


class ConversationsService(ServiceBase):
    """Base class of a service that receives Conversations webhooks.

    One callback per ``EventType``, in snake_case without ``on``: post-events
    (``onMessageAdded`` → ``on_message_added``, ``on_conversation_state_updated``,
    ``on_delivery_updated``, ...) tell what happened; pre-events
    (``onMessageAdd`` → ``on_message_add``, ``on_participant_add``, ...) ask
    whether it may happen, and Twilio waits 5 seconds: return ``None`` to let
    it happen, a mapping of the fields to change (``{"body": ...}``; messages:
    ``body``, ``author``, ``attributes``; conversations: ``friendly_name``), or
    raise or return :class:`~twilio_trigger.Reject` to block it.  A pre-event
    callback that fails blocks the action too (Twilio's rule for any error
    answer), and so does one still running after 4.5 seconds (answered 503
    before Twilio would let the action through unchanged).
    """

    on_conversation_add: ConversationsCallback
    on_conversation_update: ConversationsCallback
    on_conversation_remove: ConversationsCallback
    on_message_add: ConversationsCallback
    on_message_update: ConversationsCallback
    on_message_remove: ConversationsCallback
    on_participant_add: ConversationsCallback
    on_participant_update: ConversationsCallback
    on_participant_remove: ConversationsCallback
    on_user_update: ConversationsCallback
    on_conversation_added: ConversationsCallback
    on_conversation_updated: ConversationsCallback
    on_conversation_removed: ConversationsCallback
    on_conversation_state_updated: ConversationsCallback
    on_message_added: ConversationsCallback
    on_message_updated: ConversationsCallback
    on_message_removed: ConversationsCallback
    on_participant_added: ConversationsCallback
    on_participant_updated: ConversationsCallback
    on_participant_removed: ConversationsCallback
    on_user_added: ConversationsCallback
    on_user_updated: ConversationsCallback
    on_delivery_updated: ConversationsCallback


class TaskRouterService(ServiceBase):
    """Base class of a service that receives TaskRouter's workspace events and
    assignment callbacks.

    One callback per event type, ``task.created`` → ``on_task_created``,
    ``reservation.accepted`` → ``on_reservation_accepted``,
    ``task-queue.entered`` → ``on_task_queue_entered``, ..., each taking one
    :class:`TaskRouterEvent`; events are answered 204 as TaskRouter expects.
    ``on_assignment`` receives the workflow's assignment callback
    (:class:`AssignmentEvent`) and may return an instruction, a mapping sent as
    JSON (``{"instruction": "accept"}``); Twilio waits 5 seconds for it, the
    callback has 4.5.
    """

    on_assignment: Handler[AssignmentEvent]
    on_activity_created: TaskRouterCallback
    on_activity_updated: TaskRouterCallback
    on_activity_deleted: TaskRouterCallback
    on_reservation_created: TaskRouterCallback
    on_reservation_accepted: TaskRouterCallback
    on_reservation_rejected: TaskRouterCallback
    on_reservation_timeout: TaskRouterCallback
    on_reservation_canceled: TaskRouterCallback
    on_reservation_rescinded: TaskRouterCallback
    on_reservation_completed: TaskRouterCallback
    on_reservation_wrapup: TaskRouterCallback
    on_reservation_failed: TaskRouterCallback
    on_task_created: TaskRouterCallback
    on_task_updated: TaskRouterCallback
    on_task_canceled: TaskRouterCallback
    on_task_wrapup: TaskRouterCallback
    on_task_completed: TaskRouterCallback
    on_task_deleted: TaskRouterCallback
    on_task_system_deleted: TaskRouterCallback
    on_task_transfer_initiated: TaskRouterCallback
    on_task_transfer_attempt_failed: TaskRouterCallback
    on_task_transfer_failed: TaskRouterCallback
    on_task_transfer_canceled: TaskRouterCallback
    on_task_transfer_completed: TaskRouterCallback
    on_task_channel_created: TaskRouterCallback
    on_task_channel_updated: TaskRouterCallback
    on_task_channel_deleted: TaskRouterCallback
    on_task_queue_created: TaskRouterCallback
    on_task_queue_deleted: TaskRouterCallback
    on_task_queue_entered: TaskRouterCallback
    on_task_queue_timeout: TaskRouterCallback
    on_task_queue_moved: TaskRouterCallback
    on_task_queue_expression_updated: TaskRouterCallback
    on_worker_created: TaskRouterCallback
    on_worker_activity_update: TaskRouterCallback
    on_worker_attributes_update: TaskRouterCallback
    on_worker_deleted: TaskRouterCallback
    on_worker_capacity_update: TaskRouterCallback
    on_worker_channel_availability_update: TaskRouterCallback
    on_workflow_created: TaskRouterCallback
    on_workflow_updated: TaskRouterCallback
    on_workflow_deleted: TaskRouterCallback
    on_workflow_target_matched: TaskRouterCallback
    on_workflow_entered: TaskRouterCallback
    on_workflow_timeout: TaskRouterCallback
    on_workflow_skipped: TaskRouterCallback
    on_workspace_created: TaskRouterCallback
    on_workspace_updated: TaskRouterCallback
    on_workspace_deleted: TaskRouterCallback


class FallbackService(ServiceBase):
    """Base class of a service that receives every verified webhook no other
    attached service takes: a family twilio-trigger does not know (yet), a
    kind with no service attached, a CloudEvent type with no mapping.

    Define ``on_event``, taking one :class:`TwilioEvent` (the event of its kind
    when the kind is known, else a plain :class:`TwilioEvent` with every
    parameter received).
    """

    on_event: Handler[TwilioEvent]


#: The base classes, for the names of their callbacks.
_BASES: tuple[type[ServiceBase], ...] = (
    SmsStatusService, CallStatusService, RecordingStatusService, DebuggerService,
    ConferenceService, ConversationsService, TaskRouterService, FallbackService,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Callback:
    """One resolved callback: the bound method and how to call it."""

    label: str  # "DeliveryTracker.on_delivered", for logs
    function: Callable[..., object]
    is_async: bool
    #: It takes a second argument, the transaction its writes commit in
    #: (``async def on_delivered(self, event, tx)``): a PostgreSQL inbox's or store's.
    transactional: bool = False


def takes_transaction(function: Callable[..., object], label: str, name: str) -> bool:
    """Whether *function* takes the transaction besides the event (two arguments);
    :class:`ServiceError` when it takes neither one nor two, or two without being async."""
    try:
        signature = inspect.signature(function)
    except ValueError:  # no signature to inspect (some builtins): trust it
        return False
    try:
        signature.bind(None)
        return False
    except TypeError:
        pass
    try:
        signature.bind(None, None)
    except TypeError:
        raise ServiceError(
            f"{label} must accept the event, and may accept the transaction its database "
            f"writes commit in: def {name}(self, event) or async def {name}(self, event, tx)"
        ) from None
    if not _is_async(function):
        raise ServiceError(
            f"{label} takes a second argument, the transaction: it must be a coroutine "
            f"function, async def {name}(self, event, tx)"
        )
    return True


def _is_async(function: Callable[..., object]) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - an object with async __call__
    )


def _guessed(name: str, base: type[ServiceBase]) -> str:
    """*name*, an ``on_...`` method that is no callback of *base*, with what it may
    have been meant to be: a callback of another base class, or a close spelling."""
    others = [
        other.__name__ for other in _BASES if other is not base and name in other.callback_names
    ]
    if others:
        return f"{name} (a callback of {' and '.join(others)})"
    close = difflib.get_close_matches(name, base.callback_names, n=1)
    return f"{name} (did you mean {close[0]}?)" if close else name


def resolve_callbacks(service: object, base: type[ServiceBase]) -> dict[str, Callback]:
    """Callbacks *service*, an instance of a subclass of *base*, defines, by name;
    :class:`ServiceError` for a bad one.

    Rejected: a method named ``on_...`` that is no callback of the base class's
    kinds (a misspelling would otherwise silently never run), a callback
    attribute that is not callable, and one that cannot be called with one
    event argument, or with the event and a transaction (async only).
    """
    valid = base.callback_names
    cls = type(service)
    names = {
        name
        for klass in cls.__mro__
        if klass not in (base, object) and not (isinstance(klass, type) and klass in base.__mro__)
        for name in vars(klass)
        if name.startswith("on_")
    }
    unknown = sorted(names.difference(valid))
    if unknown:
        one = len(unknown) == 1
        raise ServiceError(
            f"{cls.__name__} defines {', '.join(_guessed(name, base) for name in unknown)}, "
            f"which {'is not a callback' if one else 'are not callbacks'} of "
            f"{base.__name__}; its callbacks are {' '.join(valid)}"
        )
    resolved: dict[str, Callback] = {}
    for name in valid:
        if name not in names:
            continue
        function = getattr(service, name)
        label = f"{cls.__name__}.{name}"
        if not callable(function):
            raise ServiceError(f"{label} is not callable")
        transactional = takes_transaction(function, label, name)
        resolved[name] = Callback(label, function, _is_async(function), transactional)
    return resolved
