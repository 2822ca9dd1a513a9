"""Receive Twilio webhooks and dispatch each event to a method of your service.

Example::

    import twilio_trigger as twilio

    listener = twilio.Listener(8090)

    @listener.service
    class DeliveryTracker(twilio.SmsStatusService):
        async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
            print("delivered", event.message_sid, "to", event.to)

    listener.run()

The package began as the Python counterpart of the Ballerina package
``ballerinax/trigger.twilio``; the names that package gives the message and call
events, ``SmsStatusChangeEventWrapper`` and ``CallStatusEventWrapper``, remain as
aliases of :class:`SmsStatusChangeEvent` and :class:`CallStatusEvent`.
"""

from ._alerts import Alert
from ._core import events as _events
from ._core import services as _services
from ._core.events import *  # noqa: F403 - the event class of every kind
from ._core.events import CallStatusEvent, SmsStatusChangeEvent
from ._core.kinds import kind_named as _kind_named
from ._core.replies import Reject
from ._core.services import *  # noqa: F403 - the service base class of every kind
from ._core.signature import compute_signature
from ._core.verifier import SignatureVerifier
from ._exceptions import ConfigurationError, ServiceError, SignatureError, TwilioTriggerError
from ._limits import Limit
from ._listener import Listener
from ._logging import JsonFormatter, TextFormatter

#: Other names of the message and call event classes (see the docstring above).
SmsStatusChangeEventWrapper = SmsStatusChangeEvent
CallStatusEventWrapper = CallStatusEvent

#: The callbacks of each service base class, in the order of Twilio's statuses.
SMS_CALLBACKS: tuple[str, ...] = _kind_named("sms").callbacks
CALL_CALLBACKS: tuple[str, ...] = _kind_named("call").callbacks
RECORDING_CALLBACKS: tuple[str, ...] = _kind_named("recording").callbacks

__version__ = "0.1.0"

__all__ = [
    "CALL_CALLBACKS",
    "RECORDING_CALLBACKS",
    "SMS_CALLBACKS",
    "Alert",
    "CallStatusEventWrapper",
    "ConfigurationError",
    "JsonFormatter",
    "Limit",
    "Listener",
    "Reject",
    "ServiceError",
    "SignatureError",
    "SignatureVerifier",
    "SmsStatusChangeEventWrapper",
    "TextFormatter",
    "TwilioTriggerError",
    "__version__",
    "compute_signature",
]
# Each kind's event and service classes, from the modules that define them: a new
# kind is exported without a change here.
__all__ += _events.__all__
__all__ += _services.__all__

# The public classes show as ``twilio_trigger.Listener`` (in reprs, tracebacks and
# documentation), not under the private module that defines them.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and _value.__module__.startswith(f"{__name__}."):
        _value.__module__ = __name__
del _name, _value
