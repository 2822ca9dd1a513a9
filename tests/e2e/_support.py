"""What the end-to-end tests share: recording services, answers, raw HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import pytest

import twilio_trigger as twilio
from twilio_trigger._core.services import ServiceBase

#: Auth tokens look like this: 32 lowercase hex digits.
TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
OTHER_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"

LOGGER = "twilio_trigger"

#: The empty TwiML document, in any of the spellings XML allows for it.
_EMPTY_TWIML = {"<Response/>", "<Response />", "<Response></Response>"}


def assert_empty_twiml(response: httpx.Response) -> None:
    """*response* is Twilio's "received, nothing to do": 200, text/xml, ``<Response/>``."""
    assert response.status_code == 200, response.text
    media_type = response.headers["content-type"].partition(";")[0].strip()
    assert media_type == "text/xml"
    text = response.text.strip()
    if text.startswith("<?xml"):
        declaration, _, text = text.partition("?>")
        assert 'version="1.0"' in declaration
    assert text.strip() in _EMPTY_TWIML, response.text


class CallbackError(RuntimeError):
    """What the failing callbacks raise or return; its message must stay in the log."""


@dataclass(frozen=True)
class Invocation:
    """One callback call, as the callback saw it."""

    kind: str
    callback: str
    event: twilio.TwilioEvent
    thread: int
    on_loop: bool


@dataclass
class Recorder:
    """Records every callback invocation; tells chosen callbacks to fail.

    ``fail["sms.on_delivered"] = "raise"`` makes that callback raise a
    :class:`CallbackError`, ``"return"`` makes it return one.
    """

    calls: list[Invocation] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)
    errors: list[CallbackError] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.fail.clear()
            self.errors.clear()

    def record(self, kind: str, callback: str, event: twilio.TwilioEvent) -> Exception | None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_loop = False
        else:
            on_loop = True
        with self.lock:
            self.calls.append(Invocation(kind, callback, event, threading.get_ident(), on_loop))
            mode = self.fail.get(f"{kind}.{callback}")
            if mode is None:
                return None
            error = CallbackError(f"carrier database lookup exploded for {event.sid}")
            self.errors.append(error)
        if mode == "raise":
            raise error
        return error

    def only(self) -> Invocation:
        """The single invocation recorded; fails when there were none or several."""
        with self.lock:
            assert len(self.calls) == 1, [(c.kind, c.callback) for c in self.calls]
            return self.calls[0]


class SmsRecorder(twilio.SmsStatusService):
    """Every message callback, alternately ``async def`` and plain ``def``."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def on_accepted(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_accepted", event)

    def on_queued(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_queued", event)

    async def on_sending(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_sending", event)

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_sent", event)

    async def on_failed(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_failed", event)

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_delivered", event)

    def on_undelivered(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_undelivered", event)

    async def on_receiving(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_receiving", event)

    def on_received(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_received", event)

    async def on_scheduled(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_scheduled", event)

    def on_canceled(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_canceled", event)

    async def on_read(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_read", event)

    def on_partially_delivered(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:
        return self.recorder.record("sms", "on_partially_delivered", event)


class CallRecorder(twilio.CallStatusService):
    """Every call callback, alternately plain ``def`` and ``async def``."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def on_queued(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_queued", event)

    async def on_initiated(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_initiated", event)

    def on_ringing(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_ringing", event)

    async def on_in_progress(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_in_progress", event)

    def on_completed(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_completed", event)

    async def on_busy(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_busy", event)

    def on_failed(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_failed", event)

    async def on_no_answer(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_no_answer", event)

    async def on_canceled(self, event: twilio.CallStatusEvent) -> Exception | None:
        return self.recorder.record("call", "on_canceled", event)


@contextlib.contextmanager
def running(*services: object, **options: Any) -> Iterator[twilio.Listener]:
    """A listener on a free loopback port with *services* attached, stopped on exit."""
    options.setdefault("host", "127.0.0.1")
    if options.get("verify_signatures") is not False:
        options.setdefault("auth_tokens", [TOKEN])
    listener = twilio.Listener(0, **options)
    for service in services:
        listener.attach(service)
    with listener:
        yield listener


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """The records of the package's logger at exactly *level*."""
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 answer with a Content-Length from *sock*."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_by_server(sock: socket.socket, within: float = 20.0) -> bytes:
    """Everything the server sent until it closed *sock* (fails if it never does)."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"still open after {within} s; received {received[:200]!r}") from None
    return received


def eventually(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01
) -> bool:
    """Whether *condition* holds within *timeout* seconds, asked every *interval*."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for *condition*, failing with *what* after *timeout* seconds."""
    if not eventually(condition, timeout):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


E = TypeVar("E", bound=twilio.TwilioEvent)
_DEFAULT = object()


class CallLog(Generic[E]):
    """What a service's callbacks were called with, and what they answer.

    Mixed into a service class with :func:`every_callback`, which gives it every
    callback of its base class, each recording ``(label + name, event)`` and
    returning what :attr:`replies` says for it (an exception is raised), else
    :meth:`default_reply`.
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.calls: list[tuple[str, E]] = []
        self.replies: dict[str, object] = {}
        self.lock = threading.Lock()

    def default_reply(self, name: str) -> object:
        """What a callback returns when :attr:`replies` says nothing for it."""
        return None

    def called(self, name: str, event: E) -> object:
        with self.lock:
            self.calls.append((self.label + name, event))
            reply = self.replies.get(name, _DEFAULT)
        if isinstance(reply, BaseException):
            raise reply
        return self.default_reply(name) if reply is _DEFAULT else reply

    def names(self) -> list[str]:
        with self.lock:
            return [name for name, _ in self.calls]

    def events(self) -> list[E]:
        with self.lock:
            return [event for _, event in self.calls]

    def only(self) -> tuple[str, E]:
        """The one callback that ran, and its event; fails when none or several ran."""
        with self.lock:
            assert len(self.calls) == 1, [name for name, _ in self.calls]
            return self.calls[0]

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.replies.clear()


_Logged = TypeVar("_Logged", bound=type[Any])


def every_callback(cls: _Logged) -> _Logged:
    """*cls*, a :class:`CallLog` service, given every callback of its service base
    class, plain ``def`` and ``async def`` in turn."""
    base = next(klass for klass in cls.__mro__ if "callback_names" in vars(klass))
    assert issubclass(base, ServiceBase)

    def make(name: str, index: int) -> Callable[..., object]:
        if index % 2:

            async def coroutine(self: CallLog[Any], event: twilio.TwilioEvent) -> object:
                return self.called(name, event)

            return coroutine

        def function(self: CallLog[Any], event: twilio.TwilioEvent) -> object:
            return self.called(name, event)

        return function

    names: tuple[str, ...] = base.callback_names
    for index, name in enumerate(names):
        setattr(cls, name, make(name, index))
    return cls
