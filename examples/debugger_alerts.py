"""Get an alert when Twilio could not reach one of your webhooks, or got an error from it.

    TWILIO_AUTH_TOKEN=... twilio-trigger run examples/debugger_alerts.py

Point the Console Debugger's webhook (Console → Monitor → Debugger → Webhook) at
this listener's public URL.  Twilio then posts each error and warning of the
account here; errors 11200 (Twilio's request to a webhook of yours failed, an
error status included) and 11205 (it could not connect) raise an alert, with the
URL that failed and, when there was one, the HTTP status it answered.  These are
the failures a webhook receiver never sees itself.

Run it apart from the listeners it watches (another host, or at least another
process and URL): when they are down, this one still hears about it.  Do not
alert through something that itself calls a webhook of yours (an SMS whose
status callback points at the failing listener): each failure would raise a new
alert, whose failure raises the next.  Alerts are limited to one per URL and
error code every ten minutes, which also breaks such a loop.  Try it locally,
from another terminal:

    twilio-trigger send debugger error
    twilio-trigger send debugger warning
"""

from __future__ import annotations

import logging
import time

import twilio_trigger as twilio

log = logging.getLogger("debugger_alerts")

listener = twilio.Listener()

#: Twilio could not get a usable answer from a webhook: the HTTP request failed
#: (11200), or the connection did (11205).
WEBHOOK_FAILURES = frozenset({11200, 11205})
#: At most one alert per webhook URL and error code in this many seconds.
QUIET_SECONDS = 600.0


def alert(text: str) -> None:
    """Tell a person.  Replace with your pager, chat or e-mail."""
    log.error("ALERT: %s", text)


class WebhookAlerts(twilio.DebuggerService):
    """Alerts on the Debugger's webhook failures; logs its other errors and warnings."""

    def __init__(self) -> None:
        #: (URL, error code) → when it was last alerted (time.monotonic()).
        self._alerted: dict[tuple[str, int], float] = {}
        #: (URL, error code) → failures not alerted since the last alert.
        self.held_back: dict[tuple[str, int], int] = {}

    def on_error(self, event: twilio.DebuggerEvent) -> None:
        code = event.error_code
        if code is None or code not in WEBHOOK_FAILURES:
            log.info("Twilio error %s about %s (alert %s)", code, event.resource_sid, event.sid)
            return
        request = event.webhook_request or {}
        response = event.webhook_response or {}
        more_info = event.more_info or {}
        url = str(request.get("url") or more_info.get("url") or "an unknown URL")
        key = (url, code)
        now = time.monotonic()
        last = self._alerted.get(key)
        if last is not None and now - last < QUIET_SECONDS:
            self.held_back[key] = self.held_back.get(key, 0) + 1
            log.info("Twilio error %s at %s again (alert %s): held back", code, url, event.sid)
            return
        self._alerted[key] = now
        status = response.get("status_code")
        answer = f"it answered HTTP {status}" if status else "no HTTP answer"
        more = self.held_back.pop(key, 0)
        alert(
            f"Twilio error {code}: {request.get('method') or 'a request'} to {url} failed "
            f"({answer}) for {event.resource_sid}, at {event.timestamp}"
            + (f"; {more} more since the last alert" if more else "")
        )

    def on_warning(self, event: twilio.DebuggerEvent) -> None:
        message = (event.more_info or {}).get("msg")
        log.warning("Twilio warning %s about %s: %s", event.error_code, event.resource_sid, message)


alerts = WebhookAlerts()
listener.attach(alerts)


if __name__ == "__main__":
    listener.run()
