"""``twilio-trigger send`` for the new kinds, run as a real subprocess.

Against a real listener started in-process (its callbacks reply), and against a
bare HTTP server that keeps each request as it came, so that what the command
sends is judged by twilio-python's ``RequestValidator``, not by the listener's
own verification code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

import twilio_trigger as twilio
from tests.payloads import MultiParams

CLI = str(Path(sys.executable).parent / "twilio-trigger")
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
KEY_ID = "webhooks_sharedkey_7d2f0c1e"
SECRET = "shk_9Q2vX7mLpR4tZ8nB3cF6hJ1kW5yD0aE"
GREETING = "Thanks for calling Acme Logistics"
TIMEOUT = 30.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TWILIO_")}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env() if env is None else env,
        cwd=ROOT,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0]


def twiml_in(stdout: str) -> ElementTree.Element:
    """The TwiML document the command printed (the lines after its two header lines)."""
    lines = stdout.splitlines()
    assert lines[1].startswith("200 "), stdout
    document = "\n".join(lines[2:])
    root = ElementTree.fromstring(document.encode("utf-8"))  # noqa: S314 - our listener's answer
    assert root.tag == "Response", stdout
    return root


# -- a real listener ---------------------------------------------------------------------
class Seen:
    def __init__(self) -> None:
        self.calls: list[tuple[str, twilio.TwilioEvent]] = []
        self.lock = threading.Lock()

    def add(self, callback: str, event: twilio.TwilioEvent) -> None:
        with self.lock:
            self.calls.append((callback, event))

    def only(self) -> tuple[str, twilio.TwilioEvent]:
        with self.lock:
            assert len(self.calls) == 1, [c for c, _ in self.calls]
            return self.calls[0]


class Messages(twilio.SmsStatusService):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.seen.add("on_delivered", event)

    async def on_received(self, event: twilio.SmsStatusChangeEvent) -> str:
        self.seen.add("on_received", event)
        if event.body == "HELP":
            return "Acme alerts: reply STOP to stop, & call +1 415 555 0100 <24/7>"
        return f"You said: {event.body}"


class Calls(twilio.CallStatusService):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def on_ringing(self, event: twilio.CallStatusEvent) -> VoiceResponse:
        self.seen.add("on_ringing", event)
        answer = VoiceResponse()
        answer.say(GREETING)
        return answer

    def on_completed(self, event: twilio.CallStatusEvent) -> None:
        self.seen.add("on_completed", event)


class Recordings(twilio.RecordingStatusService):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def on_completed(self, event: twilio.RecordingStatusEvent) -> None:
        self.seen.add("on_completed", event)


@dataclass
class Served:
    listener: twilio.Listener
    seen: Seen

    @property
    def url(self) -> str:
        return self.listener.url


@contextlib.contextmanager
def serve(**options: object) -> Iterator[Served]:
    seen = Seen()
    listener = twilio.Listener(0, host="127.0.0.1", **options)  # type: ignore[arg-type]
    for service in (Messages(seen), Calls(seen), Recordings(seen)):
        listener.attach(service)
    with listener:
        yield Served(listener, seen)


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serve(auth_tokens=[TOKEN]) as target:
        yield target


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "served" in request.fixturenames:
        target: Served = request.getfixturevalue("served")
        with target.seen.lock:
            target.seen.calls.clear()


# -- a bare HTTP server that keeps what it receives ----------------------------------------
@dataclass(frozen=True)
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes


class Capture:
    def __init__(self) -> None:
        self.requests: list[Captured] = []
        kept = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                kept.append(Captured(self.path, headers, body))
                answer = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def only(self) -> Captured:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def capture() -> Iterator[Capture]:
    server = Capture()
    yield server
    server.close()


def full_url(capture: Capture, request: Captured) -> str:
    return capture.url.rsplit("/hooks", 1)[0] + request.path


# -- replies -----------------------------------------------------------------------------
def test_send_sms_received_prints_the_reply_twiml(served: Served) -> None:
    result = cli("send", "sms", "received", "--set", "Body=HELP", "--url", served.url,
                 "--auth-token", TOKEN)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    root = twiml_in(result.stdout)
    [message] = root.findall("Message")
    assert message.text == "Acme alerts: reply STOP to stop, & call +1 415 555 0100 <24/7>"
    assert "&amp;" in result.stdout  # printed as sent: escaped
    assert "text/xml" in result.stdout.splitlines()[1]
    callback, event = served.seen.only()
    assert callback == "on_received"
    assert isinstance(event, twilio.SmsStatusChangeEvent)
    assert event.body == "HELP"
    assert event.sid is not None
    assert event.sid in result.stdout.splitlines()[0]


def test_send_inbound_call_ringing_prints_the_calls_twiml(served: Served) -> None:
    result = cli("send", "inbound-call", "ringing", "--url", served.url, "--auth-token", TOKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    root = twiml_in(result.stdout)
    assert [say.text for say in root.findall("Say")] == [GREETING]
    callback, event = served.seen.only()
    assert callback == "on_ringing"
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.direction == "inbound"
    assert event.callback_source is None
    assert event.call_sid is not None
    assert event.call_sid in result.stdout.splitlines()[0]


def test_send_recording_completed_reaches_the_recording_service(served: Served) -> None:
    sid = "RE" + "0123456789abcdef" * 2
    result = cli("send", "recording", "completed", "--sid", sid, "--set", "RecordingDuration=12",
                 "--url", served.url, "--auth-token", TOKEN)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert sid in result.stdout.splitlines()[0]
    assert "recording completed" in result.stdout.splitlines()[0]
    callback, event = served.seen.only()
    assert callback == "on_completed"
    assert isinstance(event, twilio.RecordingStatusEvent)
    assert event.recording_sid == sid
    assert event.recording_duration == 12
    assert event.call_sid is not None
    assert event.call_sid.startswith("CA")


def test_send_recording_is_signed_as_twilio_signs(capture: Capture) -> None:
    result = cli("send", "recording", "absent", "--url", capture.url, "--auth-token", TOKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    request = capture.only()
    params = parse_qsl(request.body.decode("ascii"), keep_blank_values=True)
    assert dict(params)["RecordingStatus"] == "absent"
    signature = request.headers["x-twilio-signature"]
    assert RequestValidator(TOKEN).validate(capture.url, MultiParams(params), signature)
    assert "x-twilio-webhooks-signature-settings" not in request.headers


@pytest.mark.parametrize(("kind", "sent"), [("call", "completed"), ("sms", "delivered")])
def test_send_without_a_status_prints_the_one_it_sent(
    capture: Capture, kind: str, sent: str
) -> None:
    result = cli("send", kind, "--url", capture.url, "--auth-token", TOKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    params = dict(parse_qsl(capture.only().body.decode("ascii"), keep_blank_values=True))
    assert sent in params.values()
    assert f" {kind} {sent} " in result.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ("onUserAdded", "UserSid"),
        ("onConversationAdded", "ConversationSid"),
        ("onMessageAdd", "ConversationSid"),  # not its author's ParticipantSid
    ],
)
def test_send_prints_the_sid_the_listener_takes(capture: Capture, event: str, name: str) -> None:
    # The first of the kind's SID parameters present, as the event's sid: not a
    # MessageSid a user's or a conversation's event does not carry.
    result = cli("send", "conversations", event, "--url", capture.url, "--auth-token", TOKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    params = dict(parse_qsl(capture.only().body.decode("ascii"), keep_blank_values=True))
    assert not params.get("MessageSid")
    assert result.stdout.splitlines()[0].endswith(f"  {params[name]}")


# -- Event Streams -----------------------------------------------------------------------
def test_send_call_completed_as_event_streams_reaches_on_completed(served: Served) -> None:
    result = cli("send", "call", "completed", "--event-streams", "--url", served.url,
                 "--auth-token", TOKEN)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1].startswith("200 ")
    callback, event = served.seen.only()
    assert callback == "on_completed"
    assert isinstance(event, twilio.CallStatusEvent)
    assert event.call_sid is not None
    assert event.call_sid in result.stdout.splitlines()[0]


def test_send_event_streams_is_a_signed_cloudevent_array(capture: Capture) -> None:
    result = cli("send", "call", "completed", "--event-streams", "--url", capture.url,
                 "--auth-token", TOKEN)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    request = capture.only()
    assert request.headers["content-type"].startswith("application/json")
    url = full_url(capture, request)
    assert parse_qs(urlsplit(url).query)["bodySHA256"] == [hashlib.sha256(request.body).hexdigest()]
    signature = request.headers["x-twilio-signature"]
    assert RequestValidator(TOKEN).validate(url, request.body.decode("utf-8"), signature)
    events = json.loads(request.body)
    assert isinstance(events, list)
    [event] = events
    assert event["specversion"] == "1.0"
    assert event["type"] == "com.twilio.voice.status-callback.call.completed"
    assert event["id"]
    parameters = event["data"]["request"]["parameters"]
    assert parameters["CallStatus"] == "completed"
    assert parameters["CallSid"] == event["data"]["sid"]


def test_send_sms_received_as_event_streams_runs_on_received_without_a_reply(
    served: Served,
) -> None:
    result = cli("send", "sms", "received", "--event-streams", "--set", "Body=HELP",
                 "--url", served.url, "--auth-token", TOKEN)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(twiml_in(result.stdout)) == []  # Event Streams cannot carry a reply
    callback, event = served.seen.only()
    assert callback == "on_received"
    assert event.get("Body") == "HELP"


@pytest.mark.parametrize("kind", ["recording", "inbound-call"])
def test_send_event_streams_refuses_kinds_it_does_not_carry(capture: Capture, kind: str) -> None:
    status = "completed" if kind == "recording" else "ringing"
    result = cli("send", kind, status, "--event-streams", "--url", capture.url,
                 "--auth-token", TOKEN)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_error_line(result)
    assert "Event Streams" in line
    assert result.stdout == ""
    assert capture.requests == []


# -- shared keys ---------------------------------------------------------------------------
def test_send_with_a_shared_key_is_accepted_by_a_shared_key_listener() -> None:
    with serve(shared_keys={KEY_ID: SECRET}) as target:
        result = cli("send", "sms", "delivered", "--shared-key", f"{KEY_ID}={SECRET}",
                     "--url", target.url)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        callback, event = target.seen.only()
        assert callback == "on_delivered"
        assert event.sid is not None
        assert event.sid in result.stdout.splitlines()[0]
        wrong = cli("send", "sms", "delivered", "--shared-key", f"{KEY_ID}=shk_wrong",
                    "--url", target.url)  # fmt: skip
        assert wrong.returncode == 1
        assert wrong.stdout.splitlines()[1].startswith("403 ")
        assert len(target.seen.calls) == 1


def test_send_with_a_shared_key_signs_with_hmac_sha256(capture: Capture) -> None:
    result = cli("send", "sms", "delivered", "--shared-key", f"{KEY_ID}={SECRET}",
                 "--url", capture.url)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    request = capture.only()
    settings = request.headers["x-twilio-webhooks-signature-settings"]
    assert settings.replace(" ", "") == f"key={KEY_ID},algorithm=HMAC_SHA256"
    params = MultiParams(parse_qsl(request.body.decode("ascii"), keep_blank_values=True))
    signature = request.headers["x-twilio-signature"]
    assert RequestValidator(SECRET).validate(capture.url, params, signature, "HMAC_SHA256")
    assert not RequestValidator(SECRET).validate(capture.url, params, signature)


def test_send_event_streams_with_a_shared_key(capture: Capture) -> None:
    result = cli("send", "sms", "delivered", "--event-streams", "--shared-key",
                 f"{KEY_ID}={SECRET}", "--url", capture.url)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    request = capture.only()
    url = full_url(capture, request)
    signature = request.headers["x-twilio-signature"]
    body = request.body.decode("utf-8")
    assert RequestValidator(SECRET).validate(url, body, signature, "HMAC_SHA256")
    [event] = json.loads(body)
    assert event["type"] == "com.twilio.messaging.message.delivered"


@pytest.mark.parametrize("value", ["no-equals-sign", "=secret", f"{KEY_ID}="])
def test_send_with_a_malformed_shared_key_is_a_usage_error(capture: Capture, value: str) -> None:
    result = cli("send", "sms", "delivered", "--shared-key", value, "--url", capture.url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ID=SECRET" in one_error_line(result)
    assert capture.requests == []


def test_send_help_lists_the_new_kinds_and_options() -> None:
    result = cli("send", "--help")
    assert result.returncode == 0, result.stderr
    for word in ("inbound-call", "recording", "--event-streams", "--shared-key"):
        assert word in result.stdout, word
