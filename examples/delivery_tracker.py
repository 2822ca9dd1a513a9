"""Log delivered and failed messages: the example of README's quickstart.

Run it with an auth token (Twilio console → Account → API keys & tokens):

    TWILIO_AUTH_TOKEN=... python examples/delivery_tracker.py
    TWILIO_AUTH_TOKEN=... twilio-trigger run examples.delivery_tracker --port 8090

then set the StatusCallback of your messages (or the Messaging Service's
delivery status callback) to the public URL of this listener.
"""

from __future__ import annotations

import logging

import twilio_trigger as twilio

log = logging.getLogger("delivery_tracker")

# The port from TWILIO_TRIGGER_PORT, else 8090; the auth token from TWILIO_AUTH_TOKEN.
listener = twilio.Listener()


@listener.service
class DeliveryTracker(twilio.SmsStatusService):
    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        log.info(
            "SMS delivered: sid=%s status=%s to=%s",
            event.message_sid,
            event.message_status,
            event.to,
        )

    async def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        log.info(
            "SMS failed: sid=%s status=%s error=%s",
            event.message_sid,
            event.message_status,
            event.error_code,
        )


if __name__ == "__main__":
    listener.run()
