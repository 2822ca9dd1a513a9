"""A Flask application with its own routes and a Twilio webhook at ``POST /twilio``.

Run it from the project's root directory:

    export TWILIO_AUTH_TOKEN=...  # Twilio console → Account → API keys & tokens
    export TWILIO_TRIGGER_PUBLIC_URL=https://hooks.example.com/twilio  # optional
    flask --app examples/flask_app.py run

then give Twilio ``https://hooks.example.com/twilio`` as the StatusCallback of your
messages and calls.  The listener reads the auth token and the public URL from those
two variables; without ``TWILIO_TRIGGER_PUBLIC_URL`` it checks signatures against the
URL the request arrived at (``http://127.0.0.1:5000/twilio`` with nothing in front of
Flask).  Send it a signed test event from another terminal:

    twilio-trigger send sms delivered --url http://127.0.0.1:5000/twilio
"""

from __future__ import annotations

import logging

from flask import Flask

import twilio_trigger as twilio
from twilio_trigger.adapters.flask import blueprint

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("flask_app")

listener = twilio.Listener(path="/twilio")


@listener.service
class MessageStatus(twilio.SmsStatusService):
    # Plain `def` callbacks run in Flask's request thread: flask.g and current_app
    # work in them (with an inbox, TWILIO_TRIGGER_INBOX, its workers run them instead).
    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        log.info("SMS %s delivered to %s", event.message_sid, event.to)

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        log.warning("SMS %s failed: error %s", event.message_sid, event.error_code)


@listener.service
class CallStatus(twilio.CallStatusService):
    # `async def` callbacks run on the listener's own event loop, beside Flask.
    async def on_completed(self, event: twilio.CallStatusEvent) -> None:
        log.info("call %s completed after %s s", event.call_sid, event.call_duration)

    async def on_no_answer(self, event: twilio.CallStatusEvent) -> None:
        log.info("call %s to %s was not answered", event.call_sid, event.to)


app = Flask(__name__)
app.register_blueprint(blueprint(listener))


@app.get("/")
def index() -> dict[str, str]:
    return {"service": "orders", "twilio_webhook": "/twilio"}
