"""Small services that unit tests of attaching and dispatching share."""

from __future__ import annotations

from twilio_trigger import (
    CallStatusEvent,
    CallStatusService,
    SmsStatusChangeEvent,
    SmsStatusService,
)


class Tracker(SmsStatusService):
    """Notes the SIDs of delivered (async callback) and failed (sync) messages."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    async def on_delivered(self, event: SmsStatusChangeEvent) -> None:
        self.seen.append(("delivered", event.sid))

    def on_failed(self, event: SmsStatusChangeEvent) -> None:
        self.seen.append(("failed", event.sid))


class Calls(CallStatusService):
    """A call service with one callback that does nothing."""

    async def on_completed(self, event: CallStatusEvent) -> None:
        pass
