"""Receive Twilio webhooks and dispatch each event to a method of your service.

Example::

    import twilio_trigger as twilio

    listener = twilio.Listener(8090)

    @listener.service
    class DeliveryTracker(twilio.SmsStatusService):
        async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
            print("delivered", event.message_sid, "to", event.to)

    listener.run()
"""

from ._events import (
    CallStatusEvent,
    EventKind,
    Media,
    RecordingStatusEvent,
    SmsStatusChangeEvent,
    TwilioEvent,
)
from ._exceptions import ConfigurationError, ServiceError, TwilioTriggerError
from ._listener import Listener
from ._logging import JsonFormatter, TextFormatter
from ._services import (
    CALL_CALLBACKS,
    RECORDING_CALLBACKS,
    SMS_CALLBACKS,
    CallStatusService,
    RecordingStatusService,
    SmsStatusService,
)
from ._signature import compute_signature

#: The seed's (Ballerina) names for the event types.
SmsStatusChangeEventWrapper = SmsStatusChangeEvent
CallStatusEventWrapper = CallStatusEvent

__version__ = "0.1.0"

__all__ = [
    "CALL_CALLBACKS",
    "RECORDING_CALLBACKS",
    "SMS_CALLBACKS",
    "CallStatusEvent",
    "CallStatusEventWrapper",
    "CallStatusService",
    "ConfigurationError",
    "EventKind",
    "JsonFormatter",
    "Listener",
    "Media",
    "RecordingStatusEvent",
    "RecordingStatusService",
    "ServiceError",
    "SmsStatusChangeEvent",
    "SmsStatusChangeEventWrapper",
    "SmsStatusService",
    "TextFormatter",
    "TwilioEvent",
    "TwilioTriggerError",
    "__version__",
    "compute_signature",
]
