"""`Listener.run()` in a real process: the README's example answers a signed event,
and SIGTERM/SIGINT stop it gracefully, letting an in-flight callback finish."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "process-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"listener exited early:\n{process.stdout.read() if process.stdout else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("listener did not start listening")


def _post(url: str, params: dict[str, str], timeout: float = 10.0) -> httpx.Response:
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=timeout)


def _spawn(args: list[str], port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_TRIGGER_PORT": str(port)}
    env.pop("TWILIO_TRIGGER_HOST", None)
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def port() -> int:
    return _free_port()


def _finish(process: subprocess.Popen[str]) -> str:
    try:
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    return output


def test_readme_example_answers_a_signed_event(port: int) -> None:
    process = _spawn(["examples/delivery_tracker.py"], port)
    try:
        _wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}/"
        params = {
            "MessageSid": "SM" + "ab" * 16,
            "MessageStatus": "delivered",
            "To": "+15558675310",
        }
        answer = _post(url, params)
        assert answer.status_code == 200
        assert answer.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
        unsigned = httpx.post(url, data=params)
        assert unsigned.status_code == 403
    finally:
        process.send_signal(signal.SIGTERM)
        output = _finish(process)
    assert process.returncode == 0, output
    assert f"SMS delivered: sid={params['MessageSid']}" in output


SLOW_SERVICE = textwrap.dedent(
    """
    import asyncio, os, sys, time
    import twilio_trigger as twilio

    listener = twilio.Listener(host="127.0.0.1")
    marker, started, release = sys.argv[1:4]

    @listener.service
    class Slow(twilio.SmsStatusService):
        async def on_sent(self, event):
            print("callback started", flush=True)
            open(started, "w").close()
            deadline = time.monotonic() + 30  # against a hang only
            while not os.path.exists(release) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            with open(marker, "w") as out:
                out.write(event.message_sid)
            print("callback finished", flush=True)

    listener.run()
    print("run returned", flush=True)
    """
)


def _wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the listener exited early"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def _wait_for_refusal(url: str, timeout: float = 10.0) -> None:
    """Return once a new connection to *url* is refused; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.post(url, data={"MessageStatus": "sent"}, timeout=2)
        except httpx.ConnectError:
            return
        except httpx.HTTPError:
            pass  # accepted while it was closing: not refused yet
        assert time.monotonic() < deadline, f"{url} still accepted connections after {timeout} s"
        time.sleep(0.02)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_after_in_flight_callback(
    port: int, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    script = tmp_path / "slow_service.py"
    script.write_text(SLOW_SERVICE)
    marker, started, release = (tmp_path / name for name in ("done", "started", "release"))
    process = _spawn([str(script), str(marker), str(started), str(release)], port)
    url = f"http://127.0.0.1:{port}/"
    results: list[httpx.Response] = []
    try:
        _wait_for_port(port, process)
        sender = threading.Thread(
            target=lambda: results.append(
                _post(url, {"MessageSid": "SM" + "cd" * 16, "MessageStatus": "sent"})
            )
        )
        sender.start()
        _wait_for_file(started, process)  # the callback now waits inside the listener
        process.send_signal(stop_signal)
        # New connections are refused while the callback is still in flight.
        _wait_for_refusal(url)
        assert not marker.exists(), "the callback finished before the refusal was seen"
        release.touch()
        sender.join(timeout=10)
    finally:
        release.touch()
        output = _finish(process)
    assert [r.status_code for r in results] == [200], output
    assert marker.read_text() == "SM" + "cd" * 16
    assert process.returncode == 0, output
    assert output.index("callback finished") < output.index("run returned")


STUCK_SERVICE = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path

    import twilio_trigger as twilio

    started = Path(sys.argv[1])
    options = {"inbox": "sqlite:///" + sys.argv[2]} if len(sys.argv) > 2 else {}
    listener = twilio.Listener(
        host="127.0.0.1", callback_timeout=1, shutdown_timeout=2, **options
    )


    @listener.service
    class Stuck(twilio.SmsStatusService):
        def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
            started.touch()
            threading.Event().wait()  # never returns


    listener.run()
    print("run returned", flush=True)
    """
)


@pytest.mark.parametrize("inbox", [False, True], ids=["inline", "sqlite"])
def test_a_plain_def_callback_that_never_returns_does_not_hold_the_stop(
    port: int, tmp_path: Path, inbox: bool
) -> None:
    # Its thread cannot be cancelled.  In the event loop's default pool it held
    # the process for ever at its end (asyncio.run and Python's exit wait for
    # that pool's threads): an orchestrator had to kill it.  Its thread is a
    # daemon now: SIGTERM ends the process within its limits.
    script = tmp_path / "stuck_service.py"
    script.write_text(STUCK_SERVICE)
    started = tmp_path / "started"
    args = [str(script), str(started)] + ([str(tmp_path / "events.db")] if inbox else [])
    process = _spawn(args, port)
    try:
        _wait_for_port(port, process)
        answer = _post(
            f"http://127.0.0.1:{port}/", {"MessageSid": "SM" + "ef" * 16, "MessageStatus": "sent"}
        )
        # Inline: 503 at the time limit; with the inbox: stored, then stuck in a worker.
        assert answer.status_code == (200 if inbox else 503), answer.text
        _wait_for_file(started, process)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)  # shutdown_timeout (2 s) and the stop's own limits
    finally:
        output = _finish(process)
    assert process.returncode == 0, output
    assert "run returned" in output, output
