"""A FastAPI application with its own routes and a Twilio listener mounted at /twilio.

Run it from the project's root directory:

    export TWILIO_AUTH_TOKEN=...  # Twilio console → Account → API keys & tokens
    export TWILIO_TRIGGER_PUBLIC_URL=https://hooks.example.com/twilio/
    uvicorn examples.fastapi_app:app --port 8000

then give Twilio ``https://hooks.example.com/twilio/`` as the StatusCallback of your
messages and calls, with its trailing slash: FastAPI answers ``/twilio`` with a redirect
of its own before the listener sees the request.  The listener reads the auth token and
the public URL from those two variables; without ``TWILIO_TRIGGER_PUBLIC_URL`` it checks
signatures against the URL the request arrived at (``http://127.0.0.1:8000/twilio/``
when nothing sits in front of uvicorn).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import twilio_trigger as twilio

log = logging.getLogger("fastapi_app")

listener = twilio.Listener()


@listener.service
class MessageStatus(twilio.SmsStatusService):
    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        log.info("SMS %s delivered to %s", event.message_sid, event.to)

    async def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        log.warning("SMS %s failed: error %s", event.message_sid, event.error_code)


@listener.service
class CallStatus(twilio.CallStatusService):
    async def on_completed(self, event: twilio.CallStatusEvent) -> None:
        log.info("call %s completed after %s s", event.call_sid, event.call_duration)

    def on_no_answer(self, event: twilio.CallStatusEvent) -> None:
        # A plain `def` runs in a worker thread: blocking I/O here does not stall the app.
        log.info("call %s to %s was not answered", event.call_sid, event.to)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # uvicorn sets up its own loggers only: without this the callbacks' INFO records
    # would be dropped.  It does nothing where the process has configured logging.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # A mounted app receives no lifespan events, so the host starts and stops the
    # listener: with an inbox, events stored before the last stop are dispatched now.
    await listener.startup()
    try:
        yield
    finally:
        await listener.shutdown()


app = FastAPI(title="Orders", lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    return {"service": "orders", "twilio_webhook": "/twilio/"}


app.mount("/twilio", listener.asgi)
