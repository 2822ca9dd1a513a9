"""The ``twilio-trigger`` console script, run as a real subprocess against real listeners.

Signatures are checked against twilio-python's ``RequestValidator``, the
independent oracle; the package's own signing code is never used to judge itself.
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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import sign as oracle
from tests.payloads import sms_status_payload

CLI = str(Path(sys.executable).parent / "twilio-trigger")
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
OTHER_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
TIMEOUT = 30.0

REFERENCE_URL = "https://example.com/myapp.php?foo=1&bar=2"
REFERENCE_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675310"),
    ("Digits", "1234"),
    ("From", "+14158675310"),
    ("To", "+18005551212"),
]
REFERENCE_SIGNATURE = "L/OH5YylLD5NRKLltdqwSvS0BnU="


# -- helpers ---------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any TWILIO_* variable, plus *extra*."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TWILIO_")}
    env.update(extra)
    return env


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the console script to completion."""
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env() if env is None else env,
        cwd=cwd or ROOT,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error: ...`` line a failing command prints on stderr."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def signed_post(url: str, params: dict[str, str], token: str) -> httpx.Response:
    """POST *params* to *url* the way Twilio does, signed by the oracle."""
    headers = {"X-Twilio-Signature": oracle(url, params.items(), token)}
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        return client.post(url, data=params, headers=headers)


class Running:
    """A long-running CLI process whose stdout and stderr are read as they come."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str], cwd: Path = ROOT) -> None:
        self.process = subprocess.Popen(
            [CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._pump, args=(stream, name), daemon=True)
            for name, stream in (("stdout", self.process.stdout), ("stderr", self.process.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self, stream: Iterable[str], name: str) -> None:
        for line in stream:
            with self._changed:
                self._lines[name].append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def text(self, stream: str = "stdout") -> str:
        with self._changed:
            return "".join(self._lines[stream])

    def wait_for(
        self, needle: str, stream: str = "stdout", timeout: float = 15.0, count: int = 1
    ) -> str:
        """Everything *stream* printed once it contains *needle* (*count* times)."""

        def ready() -> bool:
            return "".join(self._lines[stream]).count(needle) >= count or not any(
                reader.is_alive() for reader in self._readers
            )

        with self._changed:
            self._changed.wait_for(ready, timeout)
            text = "".join(self._lines[stream])
        assert text.count(needle) >= count, (
            f"{needle!r} not seen; exit={self.process.poll()}\n"
            f"stdout:\n{self.text('stdout')}\nstderr:\n{self.text('stderr')}"
        )
        return text

    def wait_for_port(self, port: int, timeout: float = 15.0) -> None:
        """Return once *port* accepts connections (the server's signal handlers are set)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.text("stderr")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"nothing accepts connections on port {port}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send *sig*, wait for the exit, and return the exit status."""
        self.process.send_signal(sig)
        code = self.process.wait(timeout=TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def __enter__(self) -> Running:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process listeners read TWILIO_* variables: none leaks in from outside."""
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            monkeypatch.delenv(name)


# -- help and version ------------------------------------------------------------------
def test_group_help_lists_every_command_with_runnable_examples() -> None:
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("run", "demo", "send", "sign", "verify"):
        assert re.search(rf"^\s+{command}\s+\S", result.stdout, re.MULTILINE), result.stdout
    # Example invocations a newcomer can paste.
    assert "twilio-trigger demo" in result.stdout
    assert "twilio-trigger send sms delivered --url" in result.stdout


@pytest.mark.parametrize("command", ["run", "demo", "send", "sign", "verify"])
def test_command_help_shows_an_example(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout
    example = result.stdout.partition("Example")[2]
    assert f"twilio-trigger {command}" in example, result.stdout


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"twilio-trigger, version {twilio.__version__}"


# -- sign ------------------------------------------------------------------------------
def test_sign_reproduces_twilios_documented_example() -> None:
    args = [f"{name}={value}" for name, value in REFERENCE_PARAMS]
    result = cli("sign", "--url", REFERENCE_URL, "--auth-token", "12345", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == REFERENCE_SIGNATURE
    assert oracle(REFERENCE_URL, REFERENCE_PARAMS, "12345") == REFERENCE_SIGNATURE


SIGN_CASES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "realistic status callback": (
        "https://hooks.example.com/twilio/sms",
        [
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("MessageStatus", "delivered"),
            ("To", "+15558675310"),
            ("From", "+14155550143"),
        ],
    ),
    "repeated names": (
        "https://hooks.example.com/voice?attempt=2",
        [("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234"), ("Sid", "CA1")],
    ),
    "values with = & spaces": (
        "http://127.0.0.1:8090/",
        [("Query", "a=b=c"), ("Body", "fish & chips, 2 = 3"), ("Note", "  padded  ")],
    ),
    "emoji and non-ASCII": (
        "https://hooks.example.com/sms",
        [("Body", "Here is the parcel \U0001f4e6 café"), ("FromCity", "MÜNCHEN")],
    ),
    "empty values": (
        "https://hooks.example.com/sms",
        [("Empty", ""), ("Body", ""), ("MessageStatus", "sent")],
    ),
    "url with port and query": (
        "https://hooks.example.com:8443/sms?tenant=acme&x=%2F",
        [("MessageStatus", "failed"), ("ErrorCode", "30003")],
    ),
}


@pytest.mark.parametrize("case", list(SIGN_CASES))
def test_sign_agrees_with_request_validator(case: str) -> None:
    url, pairs = SIGN_CASES[case]
    args = [f"{name}={value}" for name, value in pairs]
    result = cli("sign", "--url", url, "--auth-token", TOKEN, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == oracle(url, pairs, TOKEN)


def test_sign_reads_a_form_body_and_then_arguments() -> None:
    url = "https://hooks.example.com/sms"
    body = "Body=fish+%26+chips&To=%2B15558675310&Empty=&Digits=1&Digits=2"
    pairs = [
        ("Body", "fish & chips"),
        ("To", "+15558675310"),
        ("Empty", ""),
        ("Digits", "1"),
        ("Digits", "2"),
        ("Extra", "x=y"),
    ]
    result = cli("sign", "--url", url, "--auth-token", TOKEN, "--body", body, "Extra=x=y")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == oracle(url, pairs, TOKEN)
    simple = cli("sign", "--url", url, "--auth-token", TOKEN, "--body", "a=1&b=2")
    assert simple.stdout.strip() == oracle(url, [("a", "1"), ("b", "2")], TOKEN)


def test_sign_takes_the_token_from_the_environment() -> None:
    url, pairs = SIGN_CASES["realistic status callback"]
    args = [f"{name}={value}" for name, value in pairs]
    result = cli("sign", "--url", url, *args, env=clean_env(TWILIO_AUTH_TOKEN=OTHER_TOKEN))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == oracle(url, pairs, OTHER_TOKEN)
    # An explicit --auth-token wins over the environment.
    explicit = cli(
        "sign", "--url", url, "--auth-token", TOKEN, *args,
        env=clean_env(TWILIO_AUTH_TOKEN=OTHER_TOKEN),
    )  # fmt: skip
    assert explicit.stdout.strip() == oracle(url, pairs, TOKEN)


def test_sign_without_a_token_is_a_usage_error() -> None:
    result = cli("sign", "--url", "https://hooks.example.com/sms", "MessageStatus=sent")
    assert result.returncode == 2
    assert result.stdout == ""
    line = one_error_line(result)
    assert "auth token" in line
    assert "TWILIO_AUTH_TOKEN" in line


def test_sign_rejects_a_parameter_without_equals() -> None:
    result = cli("sign", "--url", "https://h.example.com/", "--auth-token", TOKEN, "Body")
    assert result.returncode == 2
    assert result.stdout == ""
    line = one_error_line(result)
    assert "'Body'" in line
    assert "Name=Value" in line


# -- verify ----------------------------------------------------------------------------
HOOK = "https://hooks.example.com/sms"
HOOK_443 = "https://hooks.example.com:443/sms"
VERIFY_PARAMS = [("MessageSid", "SM0123456789abcdef0123456789abcdef"), ("MessageStatus", "sent")]
VERIFY_ARGS = [f"{name}={value}" for name, value in VERIFY_PARAMS]


def test_verify_names_the_matching_token_and_url_form() -> None:
    signature = oracle(HOOK_443, VERIFY_PARAMS, OTHER_TOKEN)
    result = cli(
        "verify", "--url", HOOK, "--signature", signature,
        "--auth-token", TOKEN, "--auth-token", OTHER_TOKEN, *VERIFY_ARGS,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid")
    assert "token #2" in result.stdout
    assert HOOK_443 in result.stdout
    assert OTHER_TOKEN not in result.stdout  # a token is never printed in full
    # The first token, and the form without the port.
    plain = oracle(HOOK, VERIFY_PARAMS, TOKEN)
    first = cli(
        "verify", "--url", HOOK, "--signature", plain, *VERIFY_ARGS,
        env=clean_env(TWILIO_AUTH_TOKEN=f"{TOKEN},{OTHER_TOKEN}"),
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "token #1" in first.stdout
    assert f"over {HOOK} " in first.stdout


def test_verify_reads_a_form_body() -> None:
    body = "MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=sent&Body=a+%26+b"
    pairs = [*VERIFY_PARAMS, ("Body", "a & b")]
    signature = oracle(HOOK, pairs, TOKEN)
    result = cli(
        "verify", "--url", HOOK, "--signature", signature, "--auth-token", TOKEN, "--body", body
    )
    assert result.returncode == 0, result.stdout
    assert "(3 parameters)" in result.stdout


def test_verify_rejects_a_wrong_signature_and_lists_the_forms_tried() -> None:
    signature = oracle(HOOK, VERIFY_PARAMS, "not-the-token")
    result = cli(
        "verify", "--url", HOOK, "--signature", signature, "--auth-token", TOKEN, *VERIFY_ARGS
    )
    assert result.returncode == 1
    assert result.stdout.startswith("invalid")
    assert HOOK in result.stdout
    assert HOOK_443 in result.stdout
    assert not re.search(r"^valid", result.stdout, re.MULTILINE)


def test_verify_explains_a_scheme_mismatch() -> None:
    signature = oracle(HOOK, VERIFY_PARAMS, TOKEN)
    http_url = HOOK.replace("https://", "http://")
    result = cli(
        "verify", "--url", http_url, "--signature", signature, "--auth-token", TOKEN, *VERIFY_ARGS
    )
    assert result.returncode == 1
    assert result.stdout.startswith("invalid")
    assert f"it matches {HOOK} " in result.stdout
    assert "public_url" in result.stdout


def test_verify_explains_a_trailing_slash_difference() -> None:
    signature = oracle(HOOK + "/", VERIFY_PARAMS, TOKEN)
    result = cli(
        "verify", "--url", HOOK, "--signature", signature, "--auth-token", TOKEN, *VERIFY_ARGS
    )
    assert result.returncode == 1
    assert f"it matches {HOOK}/ " in result.stdout
    assert "trailing slash" in result.stdout


# -- send ------------------------------------------------------------------------------
class RecordingSms(twilio.SmsStatusService):
    def __init__(self) -> None:
        self.events: list[tuple[str, twilio.SmsStatusChangeEvent]] = []

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.events.append(("on_delivered", event))

    def on_received(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.events.append(("on_received", event))

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.events.append(("on_failed", event))
        raise RuntimeError(f"carrier lookup exploded for {event.message_sid}")


class RecordingCalls(twilio.CallStatusService):
    def __init__(self) -> None:
        self.events: list[tuple[str, twilio.CallStatusEvent]] = []

    async def on_ringing(self, event: twilio.CallStatusEvent) -> None:
        self.events.append(("on_ringing", event))

    def on_in_progress(self, event: twilio.CallStatusEvent) -> None:
        self.events.append(("on_in_progress", event))


class Served:
    def __init__(self, listener: twilio.Listener) -> None:
        self.listener = listener
        self.sms = RecordingSms()
        self.calls = RecordingCalls()
        listener.attach(self.sms)
        listener.attach(self.calls)


@pytest.fixture
def served() -> Iterator[Served]:
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    target = Served(listener)
    with listener:
        yield target


def test_send_sms_posts_a_signed_event_and_prints_the_answer(served: Served) -> None:
    sid = "SM" + "0123456789abcdef" * 2
    result = cli(
        "send", "sms", "delivered", "--url", served.listener.url, "--auth-token", TOKEN,
        "--sid", sid, "--set", "ErrorCode=123", "--set", "Body=hello", "--unset", "NumMedia",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sid in lines[0]
    assert re.fullmatch(r"200 OK\s+text/xml\S*\s+\d+(\.\d+)? ms", lines[1]), lines
    assert "<Response/>" in result.stdout
    [(callback, event)] = served.sms.events
    assert callback == "on_delivered"
    assert event.message_sid == sid
    assert event.sms_sid == sid
    assert event.message_status == "delivered"
    assert event.error_code == 123
    assert event.body == "hello"
    assert "NumMedia" not in event
    assert event.account_sid is not None
    assert event.account_sid.startswith("AC")


def test_send_sms_received_is_an_inbound_message(served: Served) -> None:
    result = cli(
        "send", "sms", "received", "--url", served.listener.url,
        env=clean_env(TWILIO_AUTH_TOKEN=TOKEN),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [(callback, event)] = served.sms.events
    assert callback == "on_received"
    assert event.sid is not None
    assert event.sid in result.stdout


def test_send_call_reaches_on_in_progress(served: Served) -> None:
    result = cli("send", "call", "in-progress", "--url", served.listener.url, "--auth-token", TOKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    [(callback, event)] = served.calls.events
    assert callback == "on_in_progress"
    assert event.call_status == "in-progress"
    assert event.call_sid is not None
    assert event.call_sid in result.stdout.splitlines()[0]
    assert served.sms.events == []


def test_send_with_a_wrong_token_shows_403(served: Served) -> None:
    result = cli("send", "sms", "delivered", "--url", served.listener.url, "--auth-token", "x")
    assert result.returncode == 1
    assert re.search(r"^403 ", result.stdout, re.MULTILINE), result.stdout
    assert served.sms.events == []


def test_send_to_a_closed_port_says_it_cannot_reach_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = cli("send", "sms", "delivered", "--url", url, "--auth-token", TOKEN)
    assert result.returncode == 1
    assert result.stdout == ""
    assert one_error_line(result).startswith(f"Error: cannot reach {url}")


def test_send_shows_500_when_the_callback_raises(served: Served) -> None:
    result = cli("send", "sms", "failed", "--url", served.listener.url, "--auth-token", TOKEN)
    assert result.returncode == 1
    assert re.search(r"^500 ", result.stdout, re.MULTILINE), result.stdout
    assert "exploded" not in result.stdout  # nothing internal in the answer
    [(callback, event)] = served.sms.events
    assert callback == "on_failed"
    assert event.error_code == 30008


def test_send_sign_url_matches_a_listener_behind_a_proxy() -> None:
    public = "https://hooks.example.com/twilio"
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], public_url=public)
    target = Served(listener)
    with listener:
        unsigned = cli("send", "sms", "delivered", "--url", listener.url, "--auth-token", TOKEN)
        assert unsigned.returncode == 1
        assert re.search(r"^403 ", unsigned.stdout, re.MULTILINE), unsigned.stdout
        result = cli(
            "send", "sms", "delivered", "--url", listener.url, "--auth-token", TOKEN,
            "--sign-url", public,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^200 ", result.stdout, re.MULTILINE)
    assert [callback for callback, _ in target.sms.events] == ["on_delivered"]


# -- run -------------------------------------------------------------------------------
def sms_delivered(sid: str) -> dict[str, str]:
    return {
        "AccountSid": "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978",
        "ApiVersion": "2010-04-01",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "From": "+14155550143",
        "To": "+15558675310",
    }


def test_run_serves_a_module_listener_and_stops_on_sigterm() -> None:
    port = free_port()
    sid = "SM" + "c0ffee00" * 4
    args = ["run", "examples.delivery_tracker", "--port", str(port), "--host", "127.0.0.1"]
    with Running(args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN)) as running:
        running.wait_for_port(port)
        answer = signed_post(f"http://127.0.0.1:{port}/", sms_delivered(sid), TOKEN)
        assert answer.status_code == 200, answer.text
        assert "<Response/>" in answer.text
        forged = signed_post(f"http://127.0.0.1:{port}/", sms_delivered(sid), OTHER_TOKEN)
        assert forged.status_code == 403
        assert running.stop(signal.SIGTERM) == 0
        output = running.text("stdout") + running.text("stderr")
    assert f"SMS delivered: sid={sid}" in output
    assert output.count("SMS delivered") == 1


def test_run_accepts_a_file_path() -> None:
    port = free_port()
    sid = "CA" + "5eed" * 8
    params = {
        "AccountSid": "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978",
        "CallSid": sid,
        "CallStatus": "ringing",
        "From": "+14155550143",
        "To": "+15558675310",
        "SequenceNumber": "1",
    }
    args = ["run", "examples/call_tracker.py", "--port", str(port), "--host", "127.0.0.1"]
    with Running(args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN)) as running:
        running.wait_for_port(port)
        answer = signed_post(f"http://127.0.0.1:{port}/", params, TOKEN)
        assert answer.status_code == 200, answer.text
        running.wait_for(f"call {sid} ringing", "stderr")
        assert running.stop(signal.SIGTERM) == 0


def write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


INBOX_APP = """
    import logging

    import twilio_trigger as twilio

    log = logging.getLogger("inbox_app")
    hooks = twilio.Listener()


    @hooks.service
    class Inbox(twilio.SmsStatusService):
        def on_received(self, event: twilio.SmsStatusChangeEvent) -> None:
            log.info("inbound %s from %s: %s", event.sid, event.from_, event.body)
"""


def test_run_finds_the_only_listener_of_a_module(tmp_path: Path) -> None:
    write_module(tmp_path, "inbox_app", INBOX_APP)
    port = free_port()
    sid = "MM" + "ab12" * 8
    params = {
        "AccountSid": "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978",
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "From": "+15558675310",
        "To": "+14155550143",
        "Body": "where is my parcel?",
        "NumMedia": "0",
    }
    args = ["run", "inbox_app", "--port", str(port), "--host", "127.0.0.1"]
    with Running(args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=tmp_path) as running:
        running.wait_for_port(port)
        answer = signed_post(f"http://127.0.0.1:{port}/", params, TOKEN)
        assert answer.status_code == 200, answer.text
        running.wait_for(f"inbound {sid} from +15558675310: where is my parcel?", "stderr")
        assert running.stop(signal.SIGINT) == 0


def test_run_asks_which_of_several_listeners(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "two_app",
        """
        import twilio_trigger as twilio

        first = twilio.Listener()
        second = twilio.Listener(path="/calls")
        """,
    )
    result = cli("run", "two_app", env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "two_app:first" in line
    assert "two_app:second" in line


def test_run_of_a_missing_module_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("run", "no_such_module_here", env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=tmp_path)
    assert result.returncode == 2
    assert "no_such_module_here" in one_error_line(result)
    missing_file = cli("run", "nowhere/app.py", env=clean_env(TWILIO_AUTH_TOKEN=TOKEN))
    assert missing_file.returncode == 2
    assert "nowhere/app.py" in one_error_line(missing_file)


def test_run_blames_the_missing_import_not_the_users_module(tmp_path: Path) -> None:
    # orders_app exists; what is missing is the `orders` module it imports.
    write_module(
        tmp_path,
        "orders_app",
        """
        import orders  # not installed

        import twilio_trigger as twilio

        listener = twilio.Listener()
        """,
    )
    result = cli("run", "orders_app", env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=tmp_path)
    line = one_error_line(result)
    assert "no module named 'orders_app'" not in line
    assert "'orders'" in line
    assert result.returncode == 1


def test_run_rejects_an_attribute_that_is_not_a_listener(tmp_path: Path) -> None:
    write_module(tmp_path, "inbox_app", INBOX_APP)
    env = clean_env(TWILIO_AUTH_TOKEN=TOKEN)
    result = cli("run", "inbox_app:log", env=env, cwd=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "inbox_app:log" in line
    assert "not a twilio_trigger.Listener" in line
    absent = cli("run", "inbox_app:nothing", env=env, cwd=tmp_path)
    assert absent.returncode == 2
    assert "'nothing'" in one_error_line(absent)


def test_run_warns_when_the_module_fixes_the_port_itself(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "fixed_app",
        """
        import twilio_trigger as twilio

        listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=["fixed-token"])
        """,
    )
    flag_port = free_port()
    args = ["run", "fixed_app", "--port", str(flag_port)]
    with Running(args, env=clean_env(), cwd=tmp_path) as running:
        log = running.wait_for("listening on http://127.0.0.1:", "stderr")
        bound = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", log)
        assert bound is not None, log
        assert int(bound.group(1)) != flag_port  # the module's port 0 applies
        running.wait_for_port(int(bound.group(1)))
        assert running.stop(signal.SIGTERM) == 0
        errors = running.text("stderr")
    warnings = [line for line in errors.splitlines() if "has no effect" in line]
    assert warnings == [f"Warning: fixed_app sets port=0 itself; --port {flag_port} has no effect"]


def test_run_accepts_connections_once_it_says_it_is_listening() -> None:
    port = free_port()
    args = ["run", "examples.delivery_tracker", "--port", str(port), "--host", "127.0.0.1"]
    with Running(args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN)) as running:
        running.wait_for(f"listening on http://127.0.0.1:{port}/", "stderr")
        # The line is what a person or a script waits for before sending events.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        running.wait_for_port(port)
        assert running.stop(signal.SIGTERM) == 0


def test_run_without_a_token_fails_in_one_line() -> None:
    result = cli("run", "examples.delivery_tracker", "--port", "0", "--host", "127.0.0.1")
    assert result.returncode == 1
    assert "TWILIO_AUTH_TOKEN" in one_error_line(result)


# -- demo ------------------------------------------------------------------------------
DEMO_CALLBACKS = [
    "DeliveryTracker.on_queued",
    "DeliveryTracker.on_sent",
    "DeliveryTracker.on_delivered",
    "DeliveryTracker.on_failed",
    "DeliveryTracker.on_received",
    "CallTracker.on_initiated",
    "CallTracker.on_ringing",
    "CallTracker.on_in_progress",
    "CallTracker.on_completed",
    "CallTracker.on_busy",
    "CallTracker.on_ringing",
    "CallTracker.on_gather",
]
EVENT_LINE = re.compile(
    r"^\s*(?P<verdict>ok|BAD)\s+(?P<kind>sms|call|gather)\s+(?P<sid>[A-Z]{2}\w{32})"
)


def demo_url_and_token(output: str) -> tuple[str, str]:
    url = re.search(r"listening on\s+(http://127\.0\.0\.1:(\d+)/)", output)
    token = re.search(r"auth token\s+([0-9a-f]{32})\b", output)
    assert url is not None, output
    assert token is not None, output
    assert url.group(2) != "0"
    return url.group(1), token.group(1)


def test_demo_once_dispatches_every_scripted_event() -> None:
    result = cli("demo", "--once", "--port", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    demo_url_and_token(output)
    events = [line for line in output.splitlines() if EVENT_LINE.match(line)]
    assert len(events) == 12, output
    assert all(line.strip().startswith("ok ") for line in events), output
    for line, callback in zip(events, DEMO_CALLBACKS, strict=True):
        assert f"→ {callback} " in line, line
    for line in events[:10]:
        assert " 200 <Response/>" in line, line
    # An incoming call hears the menu; the key pressed is answered in turn.
    assert ' 200 <Response><Gather numDigits="1"><Say>' in events[10], events[10]
    assert " 200 <Response><Say>Your parcel arrives tomorrow.</Say></Response>" in events[11]
    assert "error 30003" in output
    assert "All 12 events" in output
    # SMS queued → sent → delivered for one SID, the call's four steps for another.
    sids = [match.group("sid") for line in events if (match := EVENT_LINE.match(line))]
    assert len(set(sids[:3])) == 1
    assert len(set(sids[5:9])) == 1
    assert sids[10] == sids[11]
    assert f"{sids[0]}: sent → delivered" in output


def test_demo_keeps_listening_for_send_until_ctrl_c() -> None:
    with Running(["demo", "--port", "0"], env=clean_env()) as running:
        output = running.wait_for("Press Ctrl-C")
        url, token = demo_url_and_token(output)
        assert f"send sms delivered --url {url} --auth-token {token}" in output
        sid = "SM" + "d15c0" * 6 + "00"
        sent = cli("send", "sms", "delivered", "--url", url, "--auth-token", token, "--sid", sid)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        running.wait_for(f"{sid}: new → delivered")
        assert running.stop(signal.SIGINT) == 0


def test_demo_stops_cleanly_on_ctrl_c_as_soon_as_it_says_so() -> None:
    # "Press Ctrl-C to stop." is a promise: a Ctrl-C right after it stops the demo
    # with status 0, not "Aborted." and status 1.  A race, so tried several times;
    # the signal is sent the moment the line is read.
    for _ in range(8):
        with subprocess.Popen(
            [CLI, "demo", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                if "Press Ctrl-C" in line:
                    process.send_signal(signal.SIGINT)
                    break
            else:
                raise AssertionError("the demo never said 'Press Ctrl-C'")
            _, errors = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, errors


PROCESS_SERVICE = """
import os
import twilio_trigger as twilio

listener = twilio.Listener(host="127.0.0.1")


@listener.service
class Pids(twilio.SmsStatusService):
    async def on_delivered(self, event):
        with open("pids.txt", "a") as out:
            out.write(f"{os.getpid()} {event.sid}\\n")
"""


def test_run_with_workers_serves_from_several_processes(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(PROCESS_SERVICE)
    port = free_port()
    env = clean_env(TWILIO_AUTH_TOKEN=TOKEN)
    args = ["run", "pidapp:listener", "--port", str(port), "--processes", "2"]
    with Running(args, env=env, cwd=tmp_path) as running:
        running.wait_for_port(port)
        # The supervisor's socket accepts before its processes serve: wait for both.
        running.wait_for("Application startup complete.", "stderr", count=2)
        url = f"http://127.0.0.1:{port}/"
        sids = []
        for _ in range(60):
            params = sms_status_payload("delivered")
            sids.append(params["MessageSid"])
            # A new connection each time, so that the kernel spreads them over the processes.
            assert signed_post(url, params, TOKEN).status_code == 200
        assert running.stop(signal.SIGTERM) == 0, running.text("stderr")
    lines = (tmp_path / "pids.txt").read_text().split()
    pids, dispatched = set(lines[0::2]), lines[1::2]
    assert sorted(dispatched) == sorted(sids)
    assert len(pids) == 2, f"all 60 events went to {pids}"
