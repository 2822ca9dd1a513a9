"""Service base classes, and what makes a service valid to attach.

A service is an object of a subclass of :class:`SmsStatusService`,
:class:`CallStatusService` or :class:`RecordingStatusService` that defines the
callbacks it needs.  The base
classes only *declare* the callbacks (as annotations, so that type checkers
and editors know their signatures); a callback the subclass does not define
simply does not exist, and its events are acknowledged without dispatch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .._exceptions import ServiceError
from .events import CallStatusEvent, DebuggerEvent, RecordingStatusEvent, SmsStatusChangeEvent

if TYPE_CHECKING:
    from .kinds import Kind

#: The service base classes: the package exports each (see ``__init__``).
__all__ = ["CallStatusService", "DebuggerService", "RecordingStatusService", "SmsStatusService"]


def callback_name(status: str) -> str:
    """The callback for a status: ``in-progress`` → ``on_in_progress``."""
    return "on_" + status.strip().lower().replace("-", "_")


#: What a callback may be: sync or async, returning nothing (or an ``Exception``
#: to report failure, as the Ballerina seed's ``returns error?``), or a reply:
#: see the services' docstrings.
SmsCallback = Callable[[SmsStatusChangeEvent], object]
CallCallback = Callable[[CallStatusEvent], object]
RecordingCallback = Callable[[RecordingStatusEvent], object]
DebuggerCallback = Callable[[DebuggerEvent], object]


class ServiceBase:
    """What every service base class has: its kind and its callbacks' names, set
    from the kind's row by the registry of kinds."""

    kind: ClassVar[str]
    callback_names: ClassVar[tuple[str, ...]]


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


class RecordingStatusService(ServiceBase):
    """Base class of a service that receives call recording status changes.

    Define any of ``on_in_progress on_completed on_absent``, ``async def`` or
    plain ``def``, each taking one :class:`RecordingStatusEvent`.  Raise (or
    return an ``Exception``) to answer Twilio with a 500.
    """

    on_in_progress: RecordingCallback
    on_completed: RecordingCallback
    on_absent: RecordingCallback


class DebuggerService(ServiceBase):
    """Base class of a service that receives the Console Debugger's alerts.

    Define ``on_error`` or ``on_warning`` (the alert's ``Level``), ``async def``
    or plain ``def``, each taking one :class:`DebuggerEvent`.  Raise (or return an
    ``Exception``) to answer Twilio with a 500.  Beware of loops: a callback that
    fails a Twilio webhook of its own raises another alert.
    """

    on_error: DebuggerCallback
    on_warning: DebuggerCallback


@dataclass(frozen=True, slots=True)
class Callback:
    """One resolved callback: the bound method and how to call it."""

    label: str  # "DeliveryTracker.on_delivered", for logs
    function: Callable[[Any], object]
    is_async: bool


def _is_async(function: Callable[..., object]) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - an object with async __call__
    )


def resolve_callbacks(service: object, kind: Kind) -> dict[str, Callback]:
    """Callbacks *service*, a service of *kind*, defines, by name; :class:`ServiceError`
    for a bad one.

    Rejected: a method named ``on_...`` that is no callback of the service's kind
    (a misspelling would otherwise silently never run), a callback attribute that
    is not callable, and one that cannot be called with one event argument.
    """
    base = kind.service_class
    valid = kind.callbacks
    cls = type(service)
    names = {
        name
        for klass in cls.__mro__
        if klass not in (base, object)
        for name in vars(klass)
        if name.startswith("on_")
    }
    unknown = sorted(names.difference(valid))
    if unknown:
        raise ServiceError(
            f"{cls.__name__} defines {', '.join(unknown)}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not {base.__name__} "
            f"callback{'' if len(unknown) == 1 else 's'}; valid names: {' '.join(valid)}"
        )
    resolved: dict[str, Callback] = {}
    for name in valid:
        if name not in names:
            continue
        function = getattr(service, name)
        label = f"{cls.__name__}.{name}"
        if not callable(function):
            raise ServiceError(f"{label} is not callable")
        try:
            inspect.signature(function).bind(None)
        except TypeError:
            raise ServiceError(
                f"{label} must accept exactly one argument, the event: def {name}(self, event)"
            ) from None
        except ValueError:  # no signature to inspect (some builtins): trust it
            pass
        resolved[name] = Callback(label, function, _is_async(function))
    return resolved
