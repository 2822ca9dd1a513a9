"""The alerts of the Console Debugger: ``DebuggerEvent``.

An error or a warning of the account, posted to the Debugger's webhook.  What the
alert is about (a resource, a service, a failed webhook's request and response) is
read from its ``Payload``, parsed from JSON on access.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import TwilioEvent
from .params import _as_int, _iso_time, _mapping, _parse_json, _text


class DebuggerEvent(TwilioEvent):
    """An alert of the Console Debugger: an error or a warning of the account.

    ``status`` is ``Level`` as sent (``ERROR``, ``WARNING``), ``sid`` the alert's
    ``Sid`` (``NO...``).  :attr:`payload` is ``Payload`` parsed from JSON:
    ``resource_sid``, ``service_sid``, ``error_code``, ``more_info`` and, for a
    failed webhook, ``webhook`` (its request and response).
    """

    __slots__ = ()

    level = _text("Level")
    parent_account_sid = _text("ParentAccountSid")
    timestamp = _iso_time("Timestamp")
    """When the alert was raised (ISO 8601 in the request)."""
    payload_type = _text("PayloadType")

    @property
    def payload(self) -> Mapping[str, object] | None:
        """``Payload`` parsed; ``None`` when absent, too long, or not a JSON object."""
        return _mapping(_parse_json(self._first.get("Payload")))

    @property
    def resource_sid(self) -> str | None:
        """The SID of what the alert is about: a call, a message, ..."""
        value = (self.payload or {}).get("resource_sid")
        return value if isinstance(value, str) else None

    @property
    def service_sid(self) -> str | None:
        """The SID of the service involved (a Messaging Service, ...), when there is one."""
        value = (self.payload or {}).get("service_sid")
        return value if isinstance(value, str) else None

    @property
    def error_code(self) -> int | None:  # type: ignore[override]
        """The alert's Twilio error code (``Payload``'s ``error_code``), e.g. ``11200``."""
        value = (self.payload or {}).get("error_code")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return _as_int(value) if isinstance(value, str) else None

    @property
    def alert_code(self) -> int | None:
        """The same as :attr:`error_code`."""
        return self.error_code

    @property
    def more_info(self) -> Mapping[str, object] | None:
        """What the product said about the alert (``msg``, ``url``, ...), when it said it."""
        return _mapping((self.payload or {}).get("more_info"))

    @property
    def webhook(self) -> Mapping[str, object] | None:
        """For a webhook that failed: its ``type``, ``request`` and ``response``."""
        return _mapping((self.payload or {}).get("webhook"))

    @property
    def webhook_request(self) -> Mapping[str, object] | None:
        """The failed webhook's request: ``method``, ``url``, ``headers``, ``parameters``."""
        return _mapping((self.webhook or {}).get("request"))

    @property
    def webhook_response(self) -> Mapping[str, object] | None:
        """What Twilio got back from it: ``status_code``, ``headers``, ``body``."""
        return _mapping((self.webhook or {}).get("response"))
