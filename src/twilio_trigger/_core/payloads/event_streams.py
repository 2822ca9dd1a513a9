"""Event Streams: one CloudEvent as a webhook sink receives it, the CloudEvent that
carries the same event as a webhook's parameters (a call, a message, a
Conversations post-event, a Debugger alert), and ready-made ones for messages
and calls.  Event Streams is a family of its own, JSON rather than a form, so
its payloads are here; they translate the form payloads of the other modules
rather than repeat them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ._common import ACCOUNT_SID, new_sid
from .status import call_status_params, inbound_sms_params, sms_status_params


def cloudevent(
    event_type: str, data: Mapping[str, object], *, id: str | None = None
) -> dict[str, object]:
    """One CloudEvent as an Event Streams webhook sink receives it (one of its array)."""
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": f"/2010-04-01/Accounts/{ACCOUNT_SID}",
        "id": id or new_sid("EZ"),
        "dataschema": "https://events-schemas.twilio.com/",
        "datacontenttype": "application/json",
        "time": "2023-11-14T18:30:00.000Z",
        "data": dict(data),
    }


_CALL_EVENT_NAMES = {"in-progress": "answered", "busy": "completed", "failed": "completed",
                     "no-answer": "completed", "canceled": "completed"}  # fmt: skip


_CONVERSATIONS_TYPES = {
    "Conversation": "conversation",
    "ConversationState": "conversation-state",
    "Message": "message",
    "Participant": "participant",
    "User": "user",
}


def cloudevent_for(params: Mapping[str, str], *, id: str | None = None) -> dict[str, object]:
    """The CloudEvent Event Streams sends for the same event as a webhook's *params*:
    a call's (``CallStatus``), an answering machine detection's, an inbound
    message's (``received``), a message status's, a Conversations post-event's or
    a Debugger alert's (an error log).

    :class:`ValueError` for a webhook Event Streams does not carry.
    """
    event_type = params.get("EventType", "")
    if event_type.startswith("on") and event_type.endswith(("Added", "Updated", "Removed")):
        action = next(a for a in ("Added", "Updated", "Removed") if event_type.endswith(a))
        resource = _CONVERSATIONS_TYPES.get(event_type[2 : -len(action)])
        if resource is None:
            raise ValueError(f"Event Streams does not carry {event_type}")
        # PascalCase data, as the webhook's but for the body and the binding.
        pascal: dict[str, object] = {}
        binding: dict[str, str] = {}
        for name, value in params.items():
            if name.startswith("MessagingBinding."):
                binding[name.partition(".")[2]] = value
            elif name == "Body":
                pascal["MessageBody"] = value
            elif name != "EventType":
                pascal[name] = value
        if binding:
            pascal["MessagingBinding"] = binding
        return cloudevent(f"com.twilio.conversations.{resource}.{action.lower()}", pascal, id=id)
    if params.get("PayloadType") and params.get("Level"):
        payload = json.loads(params.get("Payload") or "{}")
        error: dict[str, object] = {
            "sid": params.get("Sid"),
            "account_sid": params.get("AccountSid"),
            "level": params.get("Level"),
            "date_created": params.get("Timestamp"),
            "product_name": "Programmable Voice",
            **(payload if isinstance(payload, dict) else {}),
        }
        return cloudevent("com.twilio.error-logs.error.logged", error, id=id)
    call_status = params.get("CallStatus")
    amd = params.get("AnsweredBy") and params.get("MachineDetectionDuration")
    if amd and not params.get("CallbackSource"):
        # An asynchronous answering machine detection's result (a status
        # callback may carry the detection's result too).
        return cloudevent(
            "com.twilio.voice.status-callback.amd.detected", _voice_data(params), id=id
        )
    if call_status:
        data = _voice_data(params)
        name = _CALL_EVENT_NAMES.get(call_status, call_status)
        return cloudevent(f"com.twilio.voice.status-callback.call.{name}", data, id=id)
    # Event Streams' data names are the webhook's, camelCase: MessageSid -> messageSid.
    fields: dict[str, object] = {name[:1].lower() + name[1:]: v for name, v in params.items()}
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if status == "received":
        return cloudevent("com.twilio.messaging.inbound-message.received", fields, id=id)
    fields["messageStatus"] = status.upper()
    return cloudevent(f"com.twilio.messaging.message.{status}", fields, id=id)


def _voice_data(params: Mapping[str, str]) -> dict[str, object]:
    # Voice.WebhookEvent: the webhook's own parameters under data.request.
    return {
        "sid": params.get("CallSid"),
        "timestamp": "2023-11-14T18:30:00.000Z",
        "request": {
            "method": "POST",
            "url": "https://hooks.example.com/",
            "parameters": dict(params),
        },
        "response": {"responseCode": 200, "contentType": "text/xml", "responseBody": ""},
    }


def _with_data(event: dict[str, object], data: Mapping[str, object]) -> dict[str, object]:
    fields = event["data"]
    assert isinstance(fields, dict)
    fields.update(data)
    event["data"] = {name: value for name, value in fields.items() if value is not None}
    return event


def message_cloudevent(
    status: str = "delivered", *, sid: str | None = None, id: str | None = None, **data: object
) -> dict[str, object]:
    """A ``com.twilio.messaging.message.<status>`` CloudEvent, with the fields of
    :func:`sms_status_params` in camelCase; *data* overrides them (``None`` removes)."""
    return _with_data(cloudevent_for(sms_status_params(status, sid=sid), id=id), data)


def inbound_message_cloudevent(
    *, sid: str | None = None, id: str | None = None, **data: object
) -> dict[str, object]:
    """A ``com.twilio.messaging.inbound-message.received`` CloudEvent."""
    return _with_data(cloudevent_for(inbound_sms_params("received", sid=sid), id=id), data)


def call_cloudevent(
    status: str = "completed", *, sid: str | None = None, id: str | None = None, **params: object
) -> dict[str, object]:
    """A ``com.twilio.voice.status-callback.call.<event>`` CloudEvent carrying the
    status callback of :func:`call_status_params` (*params* override it)."""
    return cloudevent_for(call_status_params(status, sid=sid, **params), id=id)
