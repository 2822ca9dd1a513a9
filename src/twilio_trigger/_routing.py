"""Which kind of event a set of parameters is, and which callback a status calls."""

from __future__ import annotations

from collections.abc import Sequence

from ._events import CallStatusEvent, RecordingStatusEvent, SmsStatusChangeEvent, TwilioEvent
from ._services import (
    CALL_CALLBACKS,
    CALL_STATUSES,
    RECORDING_CALLBACKS,
    RECORDING_STATUSES,
    SMS_CALLBACKS,
    SMS_STATUSES,
    callback_name,
)

__all__ = ["callback_for", "to_event"]

_KNOWN: dict[tuple[str, str], str] = {
    **{("sms", s): n for s, n in zip(SMS_STATUSES, SMS_CALLBACKS, strict=True)},
    **{("call", s): n for s, n in zip(CALL_STATUSES, CALL_CALLBACKS, strict=True)},
    **{("recording", s): n for s, n in zip(RECORDING_STATUSES, RECORDING_CALLBACKS, strict=True)},
}
_VALID = {
    "sms": frozenset(SMS_CALLBACKS),
    "call": frozenset(CALL_CALLBACKS),
    "recording": frozenset(RECORDING_CALLBACKS),
}


def to_event(
    params: Sequence[tuple[str, str]], first: dict[str, str] | None = None
) -> TwilioEvent | None:
    """The event the parameters describe, or ``None`` when they carry no status.

    ``RecordingStatus`` makes a recording event (it carries the call's
    ``CallSid`` too); otherwise ``CallStatus`` makes a call event; otherwise
    ``MessageStatus`` (or the legacy ``SmsStatus``) makes a message event.
    Empty values count as absent.  *first* may pass each name's first value when
    the caller has them already.
    """
    if first is None:
        first = {}
        for name, value in params:
            first.setdefault(name, value)
    if first.get("RecordingStatus"):
        return RecordingStatusEvent._from_parsed(params, first)
    if first.get("CallStatus"):
        return CallStatusEvent._from_parsed(params, first)
    if first.get("MessageStatus") or first.get("SmsStatus"):
        return SmsStatusChangeEvent._from_parsed(params, first)
    return None


def callback_for(event: TwilioEvent) -> str | None:
    """The callback name for the event's status, or ``None`` for a status unknown to us."""
    status = event.status or ""
    name = _KNOWN.get((event.kind, status))
    if name is None:
        name = callback_name(status)  # tolerate "Delivered", " ringing"
        if name not in _VALID[event.kind]:
            return None
    return name
