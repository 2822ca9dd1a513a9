"""``twilio-trigger send`` with the families of webhooks beyond the statuses: a
service's own path, GET webhooks, HTTP Basic credentials, kinds without statuses.

Each command runs in-process (click's runner) against a real listener on loopback.
"""

from __future__ import annotations

import threading

from click.testing import CliRunner, Result

import twilio_trigger as twilio
from twilio_trigger.cli import cli

from ._support import TOKEN, running


class Menu(twilio.CallStatusService):
    def __init__(self) -> None:
        self.heard: list[twilio.GatherEvent] = []
        self.lock = threading.Lock()

    def on_gather(self, event: twilio.GatherEvent) -> str:
        with self.lock:
            self.heard.append(event)
        return f"<Response><Say>pressed {event.digits}</Say></Response>"


def send(*args: str) -> Result:
    return CliRunner().invoke(cli, ["send", *args, "--auth-token", TOKEN])


def test_send_reaches_a_service_at_its_own_path_with_a_query() -> None:
    menu = Menu()
    with running() as listener:
        listener.attach(menu, path="/voice/menu")
        result = send("gather", "--url", listener.url, "--path", "/voice/menu?step=2",
                      "--set", "Digits=7")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "POST " in result.output
    assert "/voice/menu?step=2  gather" in result.output
    assert "<Say>pressed 7</Say>" in result.output
    (event,) = menu.heard
    assert event.path == "/voice/menu"
    assert event.query == {"step": ("2",)}


def test_send_get_puts_the_parameters_in_the_query_and_is_verified() -> None:
    menu = Menu()
    with running(menu) as listener:
        result = send("gather", "speech", "--url", listener.url, "--get")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("GET ")
    (event,) = menu.heard
    assert event.speech_result == "I'd like to check my order status."
    assert event.digits is None


def test_send_passes_basic_credentials_and_is_challenged_without_them() -> None:
    menu = Menu()
    with running(menu, basic_auth=("twilio", "open-sesame")) as listener:
        without = send("gather", "--url", listener.url)
        wrong = send("gather", "--url", listener.url, "--basic-auth", "twilio:closed")
        right = send("gather", "--url", listener.url, "--basic-auth", "twilio:open-sesame")
    assert without.exit_code == wrong.exit_code == 1
    assert "401" in without.output
    assert "401" in wrong.output
    assert right.exit_code == 0, right.output
    assert len(menu.heard) == 1


def test_send_a_taskrouter_event_shows_the_204() -> None:
    with running() as listener:
        result = send("taskrouter", "task.created", "--url", listener.url)
    assert result.exit_code == 0, result.output
    assert "204 No Content  application/json" in result.output
