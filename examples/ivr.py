"""A phone menu of two levels: each menu is a service at a path of its own.

    TWILIO_AUTH_TOKEN=... twilio-trigger run examples/ivr.py

Point your number's "A call comes in" webhook at this listener's public URL
(HTTP POST).  A caller hears the main menu (its keys are posted to
``/voice/main``); 1 leads to the orders menu (``/voice/orders``), 2 to a
person.  In the orders menu, 1 says the status of the caller's last order and
2 connects them to the warehouse.  Each menu is a service attached at its own
path, so that a menu's <Gather> result reaches that menu's ``on_gather``, and
so that the <Redirect> that repeats a menu after silence (a request with no
digits) reaches it too.  Try it locally, from another terminal:

    twilio-trigger send inbound-call ringing
    twilio-trigger send gather digits --set Digits=1 --path /voice/main
    twilio-trigger send gather digits --set Digits=2 --path /voice/orders
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape, quoteattr

import twilio_trigger as twilio

log = logging.getLogger("ivr")

listener = twilio.Listener()

SUPPORT_NUMBER = "+14155550100"
WAREHOUSE_NUMBER = "+14155550101"
MAIN_PATH = "/voice/main"
ORDERS_PATH = "/voice/orders"

#: A stand-in for the shop's database: the caller's number → their last order.
LAST_ORDER = {"+15558675310": "A-1042, shipped yesterday"}


def gather(action: str, prompt: str) -> str:
    """A menu: one key, then Twilio posts it to *action*; silence repeats the menu."""
    return (
        f'<Response><Gather numDigits="1" action={quoteattr(action)}>'
        f"<Say>{escape(prompt)}</Say></Gather>"
        f"<Redirect>{escape(action)}</Redirect></Response>"
    )


def dial(number: str, say: str) -> str:
    """Connect the caller; the <Dial>'s result is posted to the listener's path."""
    return f'<Response><Say>{escape(say)}</Say><Dial action="/">{escape(number)}</Dial></Response>'


MAIN_MENU = "For your orders, press 1. To speak to someone, press 2."
ORDERS_MENU = "To hear the status of your last order, press 1. For the warehouse, press 2."


@listener.service
class Calls(twilio.CallStatusService):
    """The number's own webhook, at the listener's path: the call comes in."""

    def on_ringing(self, event: twilio.CallStatusEvent) -> str | None:
        if event.direction != "inbound":
            return None  # a status callback of a call we made
        return gather(MAIN_PATH, "Welcome to Acme. " + MAIN_MENU)

    def on_dial(self, event: twilio.DialEvent) -> str:
        # A <Dial> of either menu ended (no action: Twilio posts it to the document's URL).
        if event.dial_call_status == "completed":
            return "<Response><Hangup/></Response>"
        return "<Response><Say>Nobody could take your call. Goodbye.</Say></Response>"


class MainMenu(twilio.CallStatusService):
    """The main menu, at its own path: its <Gather> posts the key here."""

    def on_gather(self, event: twilio.GatherEvent) -> str:
        if event.digits == "1":
            return gather(ORDERS_PATH, ORDERS_MENU)
        if event.digits == "2":
            return dial(SUPPORT_NUMBER, "Connecting you now.")
        return gather(MAIN_PATH, MAIN_MENU)  # another key, or nothing


class OrdersMenu(twilio.CallStatusService):
    """The orders menu, at its own path: its <Gather> posts the key here."""

    def on_gather(self, event: twilio.GatherEvent) -> str:
        if event.digits == "1":
            order = LAST_ORDER.get(event.from_ or "", "not found")
            return (
                f"<Response><Say>Your last order: {escape(order)}.</Say>"
                f"<Redirect>{escape(ORDERS_PATH)}</Redirect></Response>"
            )
        if event.digits == "2":
            return dial(WAREHOUSE_NUMBER, "Connecting you to the warehouse.")
        # Nothing entered (the <Redirect> after the <Gather>) or another key.
        return gather(ORDERS_PATH, ORDERS_MENU)


listener.attach(MainMenu(), path=MAIN_PATH)
listener.attach(OrdersMenu(), path=ORDERS_PATH)


if __name__ == "__main__":
    listener.run()
