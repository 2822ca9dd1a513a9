"""A signed request cannot forge a log line, in either log format.

The values come from the request (a SID, a status, a body a callback's error
quotes), so they are whatever the sender wants: line breaks, a fake record,
terminal escapes.  The text format must keep every record on lines of its own
(its first at the margin, any traceback marked ``  | ``) with the values
escaped; the JSON format must keep them as JSON strings.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.payloads import FORM, encode_form, sign, signed_post, sms_status_payload

from ._processes import Process
from ._support import TOKEN, free_port, read_answer

FORGED = "2026-01-01 00:00:00,000 CRITICAL twilio_trigger: FORGED"
ESCAPE = "\x1b[2J\x1b[31m"
HEADER_FORGED = b"CRITICAL twilio_trigger: FORGED"

SERVICE = """
import twilio_trigger as twilio

listener = twilio.Listener(host="127.0.0.1")


@listener.service
class Quoting(twilio.SmsStatusService):
    def on_undelivered(self, event):
        raise ValueError(event.body)
"""

_TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")


@pytest.fixture
def runs() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for run in started:
        run.kill()


def hostile_requests(url: str) -> None:
    """Three signed requests whose values try to forge records."""
    with httpx.Client(timeout=15.0, trust_env=False) as client:
        unknown = sms_status_payload("delivered")
        unknown["MessageSid"] = f"SM1\n{FORGED}{ESCAPE}"
        unknown["MessageStatus"] = f"sideways\r\n{FORGED}\u2028{FORGED}"
        assert signed_post(url, unknown, TOKEN, client=client).status_code == 200
        quoted = sms_status_payload("undelivered")
        quoted["Body"] = f"hello\n{FORGED}\n{ESCAPE}"
        assert signed_post(url, quoted, TOKEN, client=client).status_code == 500
    # Refused, with a hostile address in front of it: the test client is a
    # trusted proxy on loopback, so its X-Forwarded-For is believed.  A header
    # cannot carry a line feed, but it can carry NEL (0x85), a line break to
    # some readers.
    refused = sms_status_payload("delivered")
    body = encode_form(refused)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {FORM}\r\n"
        f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {sign(url, refused, 'other')}\r\n"
    ).encode("ascii")
    # (No comma: uvicorn takes the last of a comma-separated list.)
    forwarded = b"X-Forwarded-For: 203.0.113.9\x85" + HEADER_FORGED + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head + forwarded + body)
        assert read_answer(sock)[0] == 403


def serve(tmp_path: Path, runs: list[Process], log_format: str) -> tuple[Process, str]:
    (tmp_path / "quoting.py").write_text(SERVICE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env["TWILIO_AUTH_TOKEN"] = TOKEN
    port = free_port()
    run = Process(
        tmp_path,
        env,
        f"run-{log_format}",
        "run", "quoting.py", "--port", str(port), "--log-format", log_format,
        split=True,
    )  # fmt: skip
    runs.append(run)
    run.wait_listening(port)
    return run, f"http://127.0.0.1:{port}/"


def test_text_log_lines_cannot_be_forged(tmp_path: Path, runs: list[Process]) -> None:
    run, url = serve(tmp_path, runs, "text")
    hostile_requests(url)
    assert run.terminate() == 0, run.stderr
    log = run.stderr
    assert "\x1b" not in log
    assert "\u2028" not in log
    assert "\r" not in log
    for line in log.splitlines():
        # Every line is a record's first line, or a marked continuation of one.
        assert _TEXT_LINE.match(line) or line.startswith("  | "), repr(line)
        assert not line.startswith(FORGED), repr(line)
    # The values are there, escaped, on the record that carries them.
    assert "SM1\\n2026-01-01 00:00:00,000 CRITICAL twilio_trigger: FORGED\\x1b[2J" in log
    assert "sideways\\r\\n" in log
    assert f"  | ValueError: hello\n  | {FORGED}\n  | \\x1b[2J\\x1b[31m" in log
    assert "from 203.0.113.9\\x85CRITICAL twilio_trigger: FORGED (answered 403)" in log


def test_json_log_lines_keep_the_values_as_strings(tmp_path: Path, runs: list[Process]) -> None:
    run, url = serve(tmp_path, runs, "json")
    hostile_requests(url)
    assert run.terminate() == 0, run.stderr
    documents = [json.loads(line) for line in run.stderr.splitlines()]  # every line is JSON
    sids = {document.get("sid") for document in documents}
    assert f"SM1\n{FORGED}{ESCAPE}" in sids  # the value itself, intact in its field
    failures = [d for d in documents if d.get("level") == "ERROR"]
    assert any(f"ValueError: hello\n{FORGED}" in d.get("traceback", "") for d in failures)
    refusals = [d for d in documents if d.get("reason") == "signature_invalid"]
    assert refusals, documents
    assert refusals[0]["remote"] == "203.0.113.9\x85" + HEADER_FORGED.decode()
