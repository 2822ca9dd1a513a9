"""examples/ivr.py, a phone menu of two levels, driven end to end over real HTTP.

The example's own listener is served on a loopback port; every request is what
Twilio would send to the URL the previous answer named (a ``<Gather action>``,
a ``<Redirect>``, a ``<Dial action>``, resolved against the URL of the document
it came in), signed with twilio-python's ``RequestValidator`` over that exact URL.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urljoin

import httpx
import pytest

import twilio_trigger as twilio
from twilio_trigger.testing import dial_params, gather_params, inbound_call_params

from .payloads import sign, signed_post

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ivr.py"
TOKEN = "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
CALLER = "+15558675310"  # the caller the example's LAST_ORDER knows


@pytest.fixture
def ivr(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example, imported as `twilio-trigger run` would, its listener serving."""
    for name in list(os.environ):
        if name.startswith("TWILIO_TRIGGER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_TRIGGER_PORT", "0")
    monkeypatch.setenv("TWILIO_TRIGGER_HOST", "127.0.0.1")
    spec = importlib.util.spec_from_file_location("ivr_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ivr_example", module)
    spec.loader.exec_module(module)
    listener = module.listener
    assert isinstance(listener, twilio.Listener)
    with listener:
        assert listener.url.startswith("http://127.0.0.1:")
        assert not listener.url.endswith(":8090/")
        yield module


class Call:
    """One caller's call: each request goes where the previous answer pointed."""

    def __init__(self, listener: twilio.Listener, caller: str = CALLER) -> None:
        self.entry = listener.url
        self.caller = caller
        self.sid: str | None = None

    def post(self, url: str, params: dict[str, str]) -> ElementTree.Element:
        response = signed_post(url, params, TOKEN)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].partition(";")[0] == "text/xml"
        root = ElementTree.fromstring(response.content)  # noqa: S314 - the example's answer
        assert root.tag == "Response"
        return root

    def ring(self) -> ElementTree.Element:
        params = inbound_call_params("ringing", From=self.caller, Caller=self.caller)
        self.sid = params["CallSid"]
        return self.post(self.entry, params)

    def press(self, url: str, digits: str | None) -> ElementTree.Element:
        """The caller's key at a menu's URL (``None``: the ``<Redirect>`` after silence)."""
        result = "empty" if digits is None else "digits"
        overrides = {} if digits is None else {"Digits": digits}
        params = gather_params(
            result, sid=self.sid, From=self.caller, Caller=self.caller, **overrides
        )
        return self.post(url, params)

    def dialled(self, url: str, status: str) -> ElementTree.Element:
        return self.post(url, dial_params(status, sid=self.sid, From=self.caller))

    def resolve(self, base: str, target: str) -> str:
        return urljoin(base, target)


def menu_of(root: ElementTree.Element) -> tuple[str, str]:
    """A menu's (Gather action, what it says); checks the repeat after silence."""
    gather = root.find("Gather")
    assert gather is not None, ElementTree.tostring(root)
    assert gather.get("numDigits") == "1"
    action = gather.get("action")
    assert action is not None
    say = gather.findtext("Say")
    assert say
    # Silence: the <Redirect> after the <Gather> asks the same menu again.
    assert root.findtext("Redirect") == action
    assert [child.tag for child in root] == ["Gather", "Redirect"]
    return action, say


def dial_of(root: ElementTree.Element) -> tuple[str, str, str]:
    """A transfer's (what it says, the number dialled, the Dial's action)."""
    assert [child.tag for child in root] == ["Say", "Dial"]
    dial = root.find("Dial")
    assert dial is not None
    action = dial.get("action")
    assert action is not None
    return root.findtext("Say") or "", (dial.text or "").strip(), action


# -- the two menus, end to end ---------------------------------------------------------
def test_call_main_menu_orders_menu_then_the_warehouse(ivr: ModuleType) -> None:
    call = Call(ivr.listener)
    entry = call.entry

    action, say = menu_of(call.ring())
    assert action == "/voice/main"
    assert say == "Welcome to Acme. " + ivr.MAIN_MENU
    assert "For your orders, press 1." in say
    main = call.resolve(entry, action)
    assert main == entry.rstrip("/") + "/voice/main"

    action, say = menu_of(call.press(main, "1"))
    assert action == "/voice/orders"
    assert say == ivr.ORDERS_MENU
    orders = call.resolve(main, action)
    assert orders == entry.rstrip("/") + "/voice/orders"

    say, number, action = dial_of(call.press(orders, "2"))
    assert say == "Connecting you to the warehouse."
    assert number == ivr.WAREHOUSE_NUMBER == "+14155550101"
    assert action == "/"

    # The <Dial>'s result goes to the listener's own path.
    done = call.dialled(call.resolve(orders, action), "completed")
    assert [child.tag for child in done] == ["Hangup"]


def test_silence_in_the_orders_menu_repeats_it(ivr: ModuleType) -> None:
    call = Call(ivr.listener)
    main = call.resolve(call.entry, menu_of(call.ring())[0])
    action, _ = menu_of(call.press(main, "1"))
    orders = call.resolve(main, action)
    # No key: Twilio follows the <Redirect> to the same URL, without Digits.
    for _ in range(2):
        again_action, again_say = menu_of(call.press(orders, None))
        assert again_action == "/voice/orders"
        assert again_say == ivr.ORDERS_MENU
    # And the menu still works after it.
    _, number, _ = dial_of(call.press(orders, "2"))
    assert number == ivr.WAREHOUSE_NUMBER


def test_silence_in_the_main_menu_repeats_it_without_the_welcome(ivr: ModuleType) -> None:
    call = Call(ivr.listener)
    main = call.resolve(call.entry, menu_of(call.ring())[0])
    action, say = menu_of(call.press(main, None))
    assert action == "/voice/main"
    assert say == ivr.MAIN_MENU
    action, say = menu_of(call.press(main, "7"))  # a key the menu does not offer
    assert action == "/voice/main"
    assert say == ivr.MAIN_MENU


def test_orders_menu_key_1_says_the_callers_last_order(ivr: ModuleType) -> None:
    call = Call(ivr.listener)
    main = call.resolve(call.entry, menu_of(call.ring())[0])
    orders = call.resolve(main, menu_of(call.press(main, "1"))[0])
    answer = call.press(orders, "1")
    assert [child.tag for child in answer] == ["Say", "Redirect"]
    assert answer.findtext("Say") == "Your last order: A-1042, shipped yesterday."
    # Then back to the orders menu.
    assert answer.findtext("Redirect") == "/voice/orders"
    action, say = menu_of(call.press(call.resolve(orders, "/voice/orders"), None))
    assert (action, say) == ("/voice/orders", ivr.ORDERS_MENU)


def test_an_unknown_caller_hears_that_no_order_was_found(ivr: ModuleType) -> None:
    call = Call(ivr.listener, caller="+15005550006")
    main = call.resolve(call.entry, menu_of(call.ring())[0])
    orders = call.resolve(main, menu_of(call.press(main, "1"))[0])
    assert call.press(orders, "1").findtext("Say") == "Your last order: not found."


def test_main_menu_key_2_connects_to_support(ivr: ModuleType) -> None:
    call = Call(ivr.listener)
    main = call.resolve(call.entry, menu_of(call.ring())[0])
    say, number, action = dial_of(call.press(main, "2"))
    assert say == "Connecting you now."
    assert number == ivr.SUPPORT_NUMBER
    assert action == "/"


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_a_dial_nobody_answered_says_goodbye(ivr: ModuleType, status: str) -> None:
    call = Call(ivr.listener)
    main = call.resolve(call.entry, menu_of(call.ring())[0])
    orders = call.resolve(main, menu_of(call.press(main, "1"))[0])
    _, _, action = dial_of(call.press(orders, "2"))
    answer = call.dialled(call.resolve(orders, action), status)
    assert [child.tag for child in answer] == ["Say"]
    assert answer.findtext("Say") == "Nobody could take your call. Goodbye."


def test_a_completed_dial_hangs_up(ivr: ModuleType) -> None:
    call = Call(ivr.listener)
    main = call.resolve(call.entry, menu_of(call.ring())[0])
    _, _, action = dial_of(call.press(main, "2"))
    answer = call.dialled(call.resolve(main, action), "completed")
    assert [child.tag for child in answer] == ["Hangup"]


# -- what is not part of the menu ------------------------------------------------------
def test_a_status_callback_of_a_call_we_made_gets_no_menu(ivr: ModuleType) -> None:
    params = inbound_call_params("ringing", Direction="outbound-api")
    root = Call(ivr.listener).post(ivr.listener.url, params)
    assert list(root) == []


def test_each_menu_url_is_signed_as_its_own(ivr: ModuleType) -> None:
    base = ivr.listener.url.rstrip("/")
    params = gather_params("digits", Digits="1")
    # Signed for the main menu, posted to the orders menu: refused.
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(base + "/voice/main", params, TOKEN),
    }
    response = httpx.post(base + "/voice/orders", data=params, headers=headers, timeout=10.0)
    assert response.status_code == 403
    # Signed with another token: refused.
    response = signed_post(base + "/voice/main", params, "0" * 32)
    assert response.status_code == 403
