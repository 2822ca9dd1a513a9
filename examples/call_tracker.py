"""Follow calls through their statuses, with a sync and an async callback.

    TWILIO_AUTH_TOKEN=... python examples/call_tracker.py
    TWILIO_AUTH_TOKEN=... twilio-trigger run examples/call_tracker.py

Create calls with ``StatusCallback`` set to this listener's public URL and
``StatusCallbackEvent`` set to ``initiated ringing answered completed``.
"""

from __future__ import annotations

import logging

import twilio_trigger as twilio

log = logging.getLogger("call_tracker")

listener = twilio.Listener()


@listener.service
class CallTracker(twilio.CallStatusService):
    def on_ringing(self, event: twilio.CallStatusEvent) -> None:
        # A plain `def` runs in a worker thread: blocking I/O here is fine.
        log.info("call %s ringing %s (event #%s)", event.call_sid, event.to, event.sequence_number)

    async def on_in_progress(self, event: twilio.CallStatusEvent) -> None:
        log.info("call %s answered by %s", event.call_sid, event.answered_by or "a person")

    async def on_completed(self, event: twilio.CallStatusEvent) -> None:
        log.info("call %s completed after %s s", event.call_sid, event.call_duration)

    async def on_no_answer(self, event: twilio.CallStatusEvent) -> None:
        log.info("call %s was not answered", event.call_sid)

    async def on_busy(self, event: twilio.CallStatusEvent) -> None:
        log.info("call %s: line busy", event.call_sid)


if __name__ == "__main__":
    listener.run()
