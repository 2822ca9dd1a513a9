"""What every adapter test shares."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable

import pytest

import twilio_trigger as twilio
from tests.payloads import sms_status_payload

#: How long a test waits for another thread before it fails (never a measured delay).
DEADLINE = 10.0


@pytest.fixture(autouse=True)
def _no_listener_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every option these listeners do not pass would be read from the environment.
    for name in list(os.environ):
        if name == "TWILIO_AUTH_TOKEN" or name.startswith("TWILIO_TRIGGER_"):
            monkeypatch.delenv(name)


class Calls(twilio.CallStatusService):
    """Records the calls completed, on an event loop, and the threads they ran in."""

    def __init__(self) -> None:
        self.events: list[twilio.CallStatusEvent] = []
        self.threads: list[int] = []

    async def on_completed(self, event: twilio.CallStatusEvent) -> None:
        asyncio.get_running_loop()  # raises unless on an event loop
        self.events.append(event)
        self.threads.append(threading.get_ident())


Send = Callable[[dict[str, str]], int]


def check_concurrent_requests(serve: Callable[[twilio.SmsStatusService], Send]) -> None:
    """Eight requests at once through the framework: each runs its callback once, in
    the thread that made the request, and all of them run at the same time.

    *serve* attaches the service to a new listener served by the framework and
    returns a function that posts signed parameters and gives the status code.
    """
    count = 8
    # Every callback waits for all the others: requests served one at a time
    # would break the barrier (its timeout only guards against a hang).
    together = threading.Barrier(count, timeout=DEADLINE)
    ran: dict[str, list[int]] = {}
    lock = threading.Lock()

    class Together(twilio.SmsStatusService):
        def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
            together.wait()
            with lock:
                ran.setdefault(event.message_sid or "", []).append(threading.get_ident())

    send = serve(Together())
    answers: dict[str, tuple[int, int]] = {}

    def deliver(params: dict[str, str]) -> None:
        status = send(params)
        with lock:
            answers[params["MessageSid"]] = (status, threading.get_ident())

    payloads = [sms_status_payload("delivered") for _ in range(count)]
    threads = [threading.Thread(target=deliver, args=(params,)) for params in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in threads)

    sids = {params["MessageSid"] for params in payloads}
    assert set(answers) == set(ran) == sids
    for sid in sids:
        status, thread_id = answers[sid]
        assert status == 200
        assert ran[sid] == [thread_id]
