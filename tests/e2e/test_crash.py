"""A listener with a SQLite inbox killed with SIGKILL mid-burst loses no acknowledged event.

The listener runs as ``python -m twilio_trigger run`` in a real process; its callback
appends each SID to a file.  A burst of signed events is sent from several threads;
once about a third has been answered 200 the process is killed (no cleanup at all),
then started again on the same inbox file.  Every SID that got a 200 before the kill
must reach the callback, before or after the restart.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.payloads import signed_post, sms_status_payload

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
TOKEN = "7e3a51c0d9b84f26a1c5e0f9d3b27a64"

EVENTS = 300
SENDERS = 6
KILL_AFTER = EVENTS // 3

SERVICE = textwrap.dedent(
    """
    import asyncio
    import pathlib

    import twilio_trigger as twilio

    OUT = pathlib.Path(__file__).with_name("dispatched.txt")

    listener = twilio.Listener(concurrency=1)


    @listener.service
    class Recorder(twilio.SmsStatusService):
        async def on_delivered(self, event):
            await asyncio.sleep(0.02)  # slower than the burst: events pile up
            with OUT.open("a") as out:
                out.write(event.message_sid + "\\n")
                out.flush()
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """``twilio-trigger run service:listener`` in *folder*, its output in a log file."""

    def __init__(self, folder: Path, port: int, name: str) -> None:
        self.log_path = folder / f"{name}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TWILIO_TRIGGER_") and k != "TWILIO_AUTH_TOKEN"
        }
        env.update(
            PYTHONPATH=str(SRC),
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_TRIGGER_INBOX="sqlite:///events.db",
        )
        with self.log_path.open("w") as log:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "twilio_trigger",
                    "run",
                    "service:listener",
                    "--port",
                    str(port),
                    "--host",
                    "127.0.0.1",
                ],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.port = port

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"the listener exited early:\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the listener did not start:\n{self.log}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


def _dispatched(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line]


def test_sigkill_mid_burst_loses_no_acknowledged_event(
    tmp_path: Path, processes: list[Process]
) -> None:
    (tmp_path / "service.py").write_text(SERVICE)
    output = tmp_path / "dispatched.txt"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"

    first = Process(tmp_path, port, "first")
    processes.append(first)
    first.wait_listening()

    burst = [sms_status_payload("delivered") for _ in range(EVENTS)]
    acknowledged: list[str] = []
    refused: list[tuple[str, str]] = []
    lock = threading.Lock()
    enough = threading.Event()
    killed = threading.Event()

    def send(share: list[dict[str, str]]) -> None:
        with httpx.Client(timeout=10.0) as client:
            for params in share:
                if killed.is_set():
                    return
                sid = params["MessageSid"]
                try:
                    answer = signed_post(
                        url,
                        params,
                        TOKEN,
                        client=client,
                        headers={"I-Twilio-Idempotency-Token": str(uuid.uuid4())},
                    )
                except httpx.HTTPError as error:
                    with lock:
                        refused.append((sid, type(error).__name__))
                    continue
                with lock:
                    if answer.status_code == 200:
                        acknowledged.append(sid)
                        if len(acknowledged) >= KILL_AFTER:
                            enough.set()
                    else:
                        refused.append((sid, str(answer.status_code)))

    senders = [
        threading.Thread(target=send, args=(burst[n::SENDERS],), name=f"sender-{n}")
        for n in range(SENDERS)
    ]
    for sender in senders:
        sender.start()
    assert enough.wait(30), f"only {len(acknowledged)} answered 200:\n{first.log}"
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=10)
    killed.set()
    for sender in senders:
        sender.join(timeout=30)
    assert not any(sender.is_alive() for sender in senders)
    assert first.popen.returncode == -signal.SIGKILL

    with lock:
        acked = set(acknowledged)
    before_kill = set(_dispatched(output))
    assert len(acked) == len(acknowledged)  # distinct SIDs, each answered once
    assert before_kill <= {p["MessageSid"] for p in burst}
    assert before_kill - acked == set(), "dispatched events that never got a 200"
    # The kill came mid-burst: some events were acknowledged but not yet dispatched.
    assert len(before_kill) < len(acked), (len(before_kill), len(acked))

    second = Process(tmp_path, port, "second")
    processes.append(second)
    second.wait_listening()

    deadline = time.monotonic() + 30
    while not acked <= set(_dispatched(output)) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = _dispatched(output)
    after = set(lines)
    missing = acked - after
    restart_dispatched = after - before_kill
    recovered = re.search(r"(\d+) events? interrupted by the last stop", second.log)
    report = (
        f"{len(acked)} events acknowledged before the kill, "
        f"{len(before_kill)} dispatched before it, "
        f"{len(restart_dispatched)} dispatched after the restart, "
        f"{len(missing)} lost; {len(lines) - len(after)} dispatched twice; "
        f"{len(refused)} not acknowledged; "
        f"{recovered.group(1) if recovered else 0} interrupted mid-callback"
    )
    print(report)
    assert not missing, f"{report}\nmissing: {sorted(missing)[:10]}\n{second.log}"
    assert after - acked <= {sid for sid, _ in refused}, report  # nothing out of thin air

    second.popen.send_signal(signal.SIGTERM)
    try:
        second.popen.wait(timeout=20)
    finally:
        second.kill()
    assert second.popen.returncode == 0, second.log
    assert "Traceback" not in second.log, second.log
