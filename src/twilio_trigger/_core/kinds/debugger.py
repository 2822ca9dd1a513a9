"""The row of the Console Debugger's alerts: ``DEBUGGER``.

An error or a warning, each with a ``Sid`` of its own (which a retry repeats), posted
as a webhook or carried by Event Streams, for a ``DebuggerService``; the event class
is in ``events/debugger.py``.
"""

from __future__ import annotations

from .. import payloads
from ..events import DebuggerEvent
from ..services import DebuggerService
from .kind import Kind

DEBUGGER = Kind(
    name="debugger",
    event_class=DebuggerEvent,
    service_class=DebuggerService,
    # A console alert: its Level, and a JSON Payload said to be one.
    signals=(("Level", "PayloadType", "Payload"),),
    route_by=("Level",),
    sid_params=("Sid",),
    events=("error", "warning"),
    sid_prefixes=("NO",),
    payload=payloads.debugger_params,
    # Each alert has a Sid of its own; a retry repeats it.
    key_params=(),
    cloudevent_types=("com.twilio.error-logs.error.logged",),
)
