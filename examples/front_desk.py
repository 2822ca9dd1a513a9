"""Answer inbound messages and calls, and keep the recordings of the calls.

    TWILIO_AUTH_TOKEN=... twilio-trigger run examples/front_desk.py

Point your number's "A message comes in" and "A call comes in" webhooks at this
listener's public URL (HTTP POST), and set the call recordings'
``RecordingStatusCallback`` to it too.  Try it locally, from another terminal:

    twilio-trigger send sms received --set Body=HOURS
    twilio-trigger send inbound-call ringing
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

import twilio_trigger as twilio

log = logging.getLogger("front_desk")

listener = twilio.Listener()

OPENING_HOURS = "We are open 9:00-17:00, Monday to Friday."


@listener.service
class Messages(twilio.SmsStatusService):
    def on_received(self, event: twilio.SmsStatusChangeEvent) -> str | None:
        if event.opt_out_type:  # STOP, START, HELP: Twilio answers those itself
            return None
        text = (event.body or "").strip().upper()
        if text == "HOURS":
            return OPENING_HOURS
        attachments = len(event.media)
        noun = "attachment" if attachments == 1 else "attachments"
        return f"Thanks, we got your message ({attachments} {noun}). We reply within a day."


@listener.service
class Calls(twilio.CallStatusService):
    def on_ringing(self, event: twilio.CallStatusEvent) -> str | None:
        if event.direction != "inbound":
            return None  # a status callback of a call we made
        greeting = f"Thanks for calling Acme. {OPENING_HOURS} Please leave a message."
        # TwiML as text; twilio-python's VoiceResponse builds the same.
        return (
            f"<Response><Say>{escape(greeting)}</Say>"
            f'<Record maxLength="60" playBeep="true"/></Response>'
        )

    async def on_completed(self, event: twilio.CallStatusEvent) -> None:
        log.info(
            "call %s from %s ended after %s s", event.call_sid, event.from_, event.call_duration
        )


@listener.service
class Recordings(twilio.RecordingStatusService):
    async def on_completed(self, event: twilio.RecordingStatusEvent) -> None:
        log.info(
            "voicemail %s of call %s: %s s at %s",
            event.recording_sid,
            event.call_sid,
            event.recording_duration,
            event.recording_url,
        )


if __name__ == "__main__":
    listener.run()
