"""The services and the scripted events of ``twilio-trigger demo``.

The two trackers are what a first real service looks like: they keep each
SID's status history in memory and log every transition.  The call tracker
also answers an incoming call with a one-key menu (a ``<Gather>``) and the
key pressed with what the caller hears next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .._core.events import CallStatusEvent, GatherEvent, SmsStatusChangeEvent, TwilioEvent
from .._core.payloads import (
    call_status_params,
    gather_params,
    inbound_call_params,
    new_sid,
    sms_status_params,
)
from .._core.services import CallStatusService, SmsStatusService

__all__ = ["CallTracker", "DeliveryTracker", "Step", "script"]

log = logging.getLogger("twilio_trigger.demo")


class _Tracker:
    def __init__(self) -> None:
        self.history: dict[str, list[str]] = {}
        #: (callback, sid, status) of every call, in order.
        self.calls: list[tuple[str, str, str]] = []

    def _record(self, callback: str, event: TwilioEvent) -> list[str]:
        sid, status = event.sid or "?", event.status or "?"
        history = self.history.setdefault(sid, [])
        log.info("%s %s: %s → %s", event.kind, sid, history[-1] if history else "new", status)
        history.append(status)
        self.calls.append((f"{type(self).__name__}.{callback}", sid, status))
        return history


class DeliveryTracker(_Tracker, SmsStatusService):
    """Follows outbound messages to their final status, and notes inbound ones."""

    async def on_queued(self, event: SmsStatusChangeEvent) -> None:
        self._record("on_queued", event)

    async def on_sent(self, event: SmsStatusChangeEvent) -> None:
        self._record("on_sent", event)

    async def on_delivered(self, event: SmsStatusChangeEvent) -> None:
        self._record("on_delivered", event)

    async def on_undelivered(self, event: SmsStatusChangeEvent) -> None:
        self._record("on_undelivered", event)

    def on_failed(self, event: SmsStatusChangeEvent) -> None:
        self._record("on_failed", event)
        log.warning("message %s to %s failed: error %s", event.sid, event.to, event.error_code)

    async def on_received(self, event: SmsStatusChangeEvent) -> None:
        self._record("on_received", event)
        log.info("message from %s: %r (%d media)", event.from_, event.body, len(event.media))


class CallTracker(_Tracker, CallStatusService):
    """Follows calls through their progress events."""

    async def on_initiated(self, event: CallStatusEvent) -> None:
        self._record("on_initiated", event)

    async def on_ringing(self, event: CallStatusEvent) -> str | None:
        self._record("on_ringing", event)
        if event.direction != "inbound":
            return None  # a status callback: nothing to answer
        # An incoming call asks what to do: a menu of one key, posted back here.
        return MENU

    async def on_gather(self, event: GatherEvent) -> str:
        self.calls.append(("CallTracker.on_gather", event.sid or "?", event.digits or ""))
        log.info("call %s pressed %s", event.sid, event.digits)
        if event.digits == "1":
            return "<Response><Say>Your parcel arrives tomorrow.</Say></Response>"
        return MENU

    async def on_in_progress(self, event: CallStatusEvent) -> None:
        self._record("on_in_progress", event)

    async def on_completed(self, event: CallStatusEvent) -> None:
        self._record("on_completed", event)
        log.info("call %s lasted %s s", event.sid, event.call_duration)

    def on_busy(self, event: CallStatusEvent) -> None:
        self._record("on_busy", event)


#: The menu an incoming call hears: press a key, and Twilio posts it to the listener.
MENU = '<Response><Gather numDigits="1"><Say>For your parcel, press 1.</Say></Gather></Response>'


@dataclass(frozen=True)
class Step:
    """One scripted event and the callback it must reach."""

    params: dict[str, str]
    kind: str
    status: str
    callback: str


def script() -> tuple[Step, ...]:
    """The demo's events: two messages, an inbound one, two calls, and an incoming
    call through a menu; fresh SIDs each time."""
    message, failing, inbound = new_sid("SM"), new_sid("SM"), new_sid("MM")
    call, busy, caller = new_sid("CA"), new_sid("CA"), new_sid("CA")
    steps = [
        Step(sms_status_params(s, sid=message), "sms", s, f"DeliveryTracker.on_{s}")
        for s in ("queued", "sent", "delivered")
    ]
    steps.append(
        Step(
            sms_status_params("failed", sid=failing, ErrorCode=30003),
            "sms",
            "failed",
            "DeliveryTracker.on_failed",
        )
    )
    steps.append(
        Step(
            sms_status_params("received", sid=inbound, Body="Is my parcel on its way?"),
            "sms",
            "received",
            "DeliveryTracker.on_received",
        )
    )
    steps.extend(
        Step(
            call_status_params(s, sid=call),
            "call",
            s,
            f"CallTracker.on_{s.replace('-', '_')}",
        )
        for s in ("initiated", "ringing", "in-progress", "completed")
    )
    steps.append(Step(call_status_params("busy", sid=busy), "call", "busy", "CallTracker.on_busy"))
    # An incoming call: answered with the menu, then the key pressed, answered in turn.
    steps.append(
        Step(
            inbound_call_params("ringing", sid=caller), "call", "ringing", "CallTracker.on_ringing"
        )
    )
    steps.append(
        Step(gather_params(sid=caller, Digits="1"), "gather", "1", "CallTracker.on_gather")
    )
    return tuple(steps)
