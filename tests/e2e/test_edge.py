"""The listener's own server against clients that misbehave, over raw sockets.

Each limit of the edge (``_edge.py``): the request head's size and header count,
the time to send a head and a body, idle keep-alive, the number of connections,
and a connection that ends when its request is refused before its body was
read.  Limits are made small here so that each test shows the behaviour
quickly; what is asserted is the behaviour, never a duration, except that a
connection is closed at all (within a bound many times its limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import twilio_trigger as twilio

from ..payloads import FORM, encode_form, sign, sms_status_payload
from ._support import (
    LOGGER,
    TOKEN,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    closed_by_server,
    read_answer,
    records,
    running,
    wait_until,
)

SOCKET_TIMEOUT = 20.0


def connect(listener: twilio.Listener) -> socket.socket:
    return socket.create_connection(("127.0.0.1", listener.port), timeout=SOCKET_TIMEOUT)


def signed_request(listener: twilio.Listener, status: str = "delivered") -> tuple[bytes, str]:
    """A signed status callback as raw bytes, keep-alive, and its SID."""
    params = sms_status_payload(status)
    body = encode_form(params)
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {len(body)}\r\n"
        f"X-Twilio-Signature: {sign(listener.url, params, TOKEN)}\r\n"
        "User-Agent: TwilioProxy/1.1\r\n\r\n"
    ).encode("ascii")
    return head + body, params["MessageSid"]


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def read_bytes() -> int:
    """What this process has read so far (sockets included): the listener runs in it."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def served(recorder: Recorder) -> Iterator[twilio.Listener]:
    with running(
        SmsRecorder(recorder),
        max_head_bytes=4096,
        max_headers=20,
        head_timeout=1.0,
        body_timeout=1.0,
        keepalive_timeout=1.0,
        max_body_bytes=64 * 1024,
    ) as listener:
        yield listener


def assert_still_serving(listener: twilio.Listener, recorder: Recorder) -> None:
    params = sms_status_payload("delivered")
    response = httpx.post(
        listener.url,
        content=encode_form(params),
        headers={"Content-Type": FORM, "X-Twilio-Signature": sign(listener.url, params, TOKEN)},
    )
    assert_empty_twiml(response)
    assert params["MessageSid"] in {call.event.sid for call in recorder.calls}


# -- the request head -----------------------------------------------------------------
def test_an_oversized_head_gets_431_and_the_connection_is_closed(
    served: twilio.Listener, recorder: Recorder
) -> None:
    with connect(served) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        # Far more than the limit, and no end of head in sight: the server
        # answers and closes long before, so sending fails on the way.
        sent = 0
        try:
            for _ in range(2048):
                sock.sendall(b"a" * 16384)
                sent += 16384
        except OSError:
            pass
        assert sent < 2048 * 16384
        answer = closed_by_server(sock)
    assert status_of(answer) == 431, answer[:200]
    assert recorder.calls == []
    assert_still_serving(served, recorder)


def test_one_long_header_reads_no_more_than_the_limit(
    served: twilio.Listener, recorder: Recorder
) -> None:
    before = read_bytes()
    with connect(served) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(2048):  # 32 MiB offered
                sock.sendall(b"a" * 16384)
        except OSError:
            pass
        answer = closed_by_server(sock)
    read = read_bytes() - before
    assert status_of(answer) == 431
    # The kernel's buffers may hold more, but the server read about its limit.
    assert read < 1024 * 1024, f"the server read {read} bytes of a 4 KiB head limit"


def test_too_many_headers_get_431(served: twilio.Listener, recorder: Recorder) -> None:
    headers = "".join(f"X-H{n}: {n}\r\n" for n in range(200))
    with connect(served) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        answer = closed_by_server(sock)
    assert status_of(answer) == 431
    assert b"too many request headers" in answer
    assert_still_serving(served, recorder)


def test_a_head_just_under_the_limits_is_served(
    served: twilio.Listener, recorder: Recorder
) -> None:
    request, sid = signed_request(served)
    head, _, body = request.partition(b"\r\n\r\n")
    # Up to the header count limit (20), and close to the size limit (4096).
    padding = b"".join(b"\r\nX-Pad%d: %s" % (n, b"p" * 180) for n in range(13))
    request = head + padding + b"\r\n\r\n" + body
    assert len(head + padding) < 4096
    with connect(served) as sock:
        sock.sendall(request)
        status, _, _ = read_answer(sock)
    assert status == 200
    assert [call.event.sid for call in recorder.calls] == [sid]


# -- time -----------------------------------------------------------------------------
def test_slow_clients_are_disconnected_while_others_are_served(
    served: twilio.Listener, recorder: Recorder
) -> None:
    silent = connect(served)
    half_head = connect(served)
    half_head.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty")
    no_body = connect(served)
    no_body.sendall(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + FORM.encode() + b"\r\n"
        b"X-Twilio-Signature: x\r\nContent-Length: 500\r\n\r\nMessageSid=SM"
    )
    dripping = connect(served)
    dripped: list[bytes] = []
    stop = threading.Event()

    def drip() -> None:
        # One header every 0.2 s: each byte comes in time, the head never does.
        dripping.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        for n in range(500):
            if stop.is_set():
                return
            try:
                dripping.sendall(b"X-Drip-%d: 1\r\n" % n)
            except OSError:
                dripped.append(b"closed")
                return
            time.sleep(0.2)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        # Meanwhile, real webhooks are answered.
        for _ in range(3):
            assert_still_serving(served, recorder)
        assert closed_by_server(silent) == b""  # nothing was asked: nothing is answered
        assert status_of(closed_by_server(half_head)) == 408
        assert status_of(closed_by_server(no_body)) == 408
        assert status_of(closed_by_server(dripping)) == 408
    finally:
        stop.set()
        dripper.join()
        for sock in (silent, half_head, no_body, dripping):
            sock.close()
    assert len(recorder.calls) == 3
    assert_still_serving(served, recorder)


def test_an_idle_keep_alive_connection_is_closed(
    served: twilio.Listener, recorder: Recorder
) -> None:
    request, _ = signed_request(served)
    with connect(served) as sock:
        sock.sendall(request)
        assert read_answer(sock)[0] == 200
        assert closed_by_server(sock) == b""
    # A kept-alive connection that goes on sending is served on it.
    with connect(served) as sock:
        for _ in range(3):
            request, _ = signed_request(served)
            sock.sendall(request)
            assert read_answer(sock)[0] == 200


def test_a_connection_kept_alive_is_given_the_keep_alive_time_after_each_answer(
    served: twilio.Listener, recorder: Recorder
) -> None:
    # keepalive_timeout is 1 s: four pauses of 0.6 s, 2.4 s in all, each under
    # it from the answer before, never end the connection.
    with connect(served) as sock:
        for _ in range(4):
            request, _ = signed_request(served)
            sock.sendall(request)
            assert read_answer(sock)[0] == 200
            sock.settimeout(0.6)
            with pytest.raises(TimeoutError):  # open: nothing comes, not even its end
                sock.recv(1)
            sock.settimeout(SOCKET_TIMEOUT)
        assert closed_by_server(sock) == b""  # then idle for longer: ended


# -- connections ----------------------------------------------------------------------
def test_connections_beyond_the_cap_are_refused_and_open_ones_are_served(
    recorder: Recorder,
) -> None:
    with running(SmsRecorder(recorder), max_connections=8, head_timeout=60.0) as listener:
        kept = connect(listener)
        request, _ = signed_request(listener)
        kept.sendall(request)
        assert read_answer(kept)[0] == 200
        idle = [connect(listener) for _ in range(7)]  # 8 open now
        try:
            refused = connect(listener)
            with refused:
                answer = closed_by_server(refused)
            assert status_of(answer) == 503
            assert b"too many connections" in answer
            # The connection that was open before keeps being served.
            request, sid = signed_request(listener)
            kept.sendall(request)
            assert read_answer(kept)[0] == 200
            assert sid in {call.event.sid for call in recorder.calls}
        finally:
            for sock in idle:
                sock.close()
        kept.close()

        # Once connections close, new ones are served again.
        def served_again() -> bool:
            try:
                assert_still_serving(listener, recorder)
            except (AssertionError, httpx.HTTPError):
                return False
            return True

        wait_until(served_again, "a new connection to be served")


# -- refused before the body ------------------------------------------------------------
def test_a_48_mib_chunked_body_gets_413_and_is_not_read(
    served: twilio.Listener, recorder: Recorder
) -> None:
    before = read_bytes()
    sent = 0
    with connect(served) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + FORM.encode() + b"\r\n"
            b"X-Twilio-Signature: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
        try:
            for _ in range(48 * 16):  # 48 MiB
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        answer = closed_by_server(sock)
    read = read_bytes() - before
    assert status_of(answer) == 413, answer[:200]
    assert sent < 48 * 1024 * 1024, "the whole body was taken"
    # 64 KiB of limit, plus what one read and the flow-control window let in.
    assert read < 1024 * 1024, f"the server read {read} bytes"
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": FORM, "X-Twilio-Signature": "x", "Content-Length": "9999999"}, 413),
        ({"Content-Type": "text/plain", "X-Twilio-Signature": "x", "Content-Length": "9000"}, 415),
        ({"Content-Type": FORM, "Content-Length": "9000"}, 403),
        ({"Host": "[", "Content-Type": FORM, "Content-Length": "9000"}, 400),
    ],
    ids=["413", "415", "403-no-signature", "400-bad-host"],
)
def test_a_request_refused_before_its_body_ends_its_connection(
    served: twilio.Listener, recorder: Recorder, headers: dict[str, str], status: int
) -> None:
    lines = {"Host": "x", **headers}
    head = "".join(f"{name}: {value}\r\n" for name, value in lines.items())
    with connect(served) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\n{head}\r\n".encode() + b"a=b" * 10)
        got, answer_headers, _ = read_answer(sock)
        assert got == status
        assert answer_headers.get("connection") == "close"
        assert closed_by_server(sock) == b""
    assert recorder.calls == []


def split_whole(data: bytes) -> list[tuple[int, bytes]]:
    """The whole answers at the start of *data* (a partial one at its end left out)."""
    whole = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        named = dict(line.lower().split(":", 1) for line in lines[1:])
        length = int(named["content-length"])
        if len(rest) < length:
            break
        whole.append((int(lines[0].split()[1]), rest[:length]))
        data = rest[length:]
    return whole


def test_pipelined_requests_are_answered_whole_and_in_order(
    served: twilio.Listener, recorder: Recorder
) -> None:
    # Answers are written at the end of the event loop's pass (``_Batched``):
    # those of requests sent together must all arrive, whole and in order, and
    # the refusal that ends the connection after them too.
    requests = [signed_request(served) for _ in range(3)]
    with connect(served) as sock:
        sock.sendall(b"".join(raw for raw, _ in requests))
        data = b""  # read until three whole answers are in, however they are split
        while len(split_whole(data)) < 3:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {data!r}"
            data += chunk
        answers = split_whole(data)
        assert [status for status, _ in answers] == [200, 200, 200]
        assert all(body.startswith(b"<?xml") for _, body in answers)
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert split_whole(closed_by_server(sock))[0][0] == 400
    assert [call.event.sid for call in recorder.calls] == [sid for _, sid in requests]


def test_requests_sent_ahead_beyond_max_pipelined_end_the_connection(
    recorder: Recorder,
) -> None:
    # uvicorn reads and queues every request a client sends ahead; each costs
    # memory until answered.  At most max_pipelined wait: they are answered, in
    # order, then the connection ends; the rest are never read, so never run.
    with running(SmsRecorder(recorder), max_pipelined=2, metrics=True) as listener:
        requests = [signed_request(listener) for _ in range(40)]
        with connect(listener) as sock:
            sock.sendall(b"".join(raw for raw, _ in requests))
            answers = split_whole(closed_by_server(sock))
        assert 3 <= len(answers) < len(requests), len(answers)
        assert {status for status, _ in answers} == {200}
        answered = [sid for _, sid in requests[: len(answers)]]
        assert [call.event.sid for call in recorder.calls] == answered
        assert_still_serving(listener, recorder)
        text = httpx.get(listener.url.rstrip("/") + "/metrics").text
    assert 'twilio_trigger_requests_rejected_total{reason="too_many_pipelined"} 1.0' in text


def test_a_client_that_does_not_read_its_answers_is_disconnected(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    # Its answers wait in the server's buffers: no deadline on what it sends
    # applies, so without write_timeout the connection (and what it holds) stays.
    caplog.set_level(logging.INFO, logger=LOGGER)
    with running(
        SmsRecorder(recorder), metrics=True, max_pipelined=1024, write_timeout=0.5
    ) as listener:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(SOCKET_TIMEOUT)
        sock.connect(("127.0.0.1", listener.port))
        with sock:
            # Each answer is the metrics' text: some kilobytes, a thousand of them.
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 1000)

            def told() -> bool:
                return any("answers not read" in r.getMessage() for r in caplog.records)

            wait_until(told, "the stalled connection to be ended", timeout=SOCKET_TIMEOUT)
            closed_by_server(sock)  # what was written, then the end
        assert_still_serving(listener, recorder)


def test_a_keep_alive_connection_gets_each_answer_whole(
    served: twilio.Listener, recorder: Recorder
) -> None:
    with connect(served) as sock:
        for _ in range(5):  # one at a time: each answer is read before the next request
            sock.sendall(signed_request(served)[0])
            status, headers, body = read_answer(sock)
            assert (status, headers.get("connection")) == (200, None)
            assert body.startswith(b"<?xml")
            assert len(body) == int(headers["content-length"])
    assert len(recorder.calls) == 5


def test_a_wrong_path_with_a_body_ends_its_connection(
    served: twilio.Listener, recorder: Recorder
) -> None:
    with connect(served) as sock:
        sock.sendall(b"POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
        assert read_answer(sock)[0] == 404
        assert closed_by_server(sock) == b""


# -- the webhook's requests, served without ASGI -------------------------------------------
def signed_raw(
    listener: twilio.Listener, params: dict[str, str], *lines: str, url: str | None = None
) -> bytes:
    body = encode_form(params)
    head = "".join(
        (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n",
            f"Content-Type: {FORM}\r\nContent-Length: {len(body)}\r\n",
            f"X-Twilio-Signature: {sign(url or listener.url, params, TOKEN)}\r\n",
            *(f"{line}\r\n" for line in lines),
            "\r\n",
        )
    )
    return head.encode("latin-1") + body


def test_a_body_past_64_kib_under_the_limit_is_read_whole(recorder: Recorder) -> None:
    # uvicorn pauses reading a body at 64 KiB until the application reads it; the
    # webhook's requests keep their body whole up to max_body_bytes instead.
    with running(SmsRecorder(recorder), max_body_bytes=256 * 1024) as listener:
        params = sms_status_payload("delivered", Body="x" * (150 * 1024))
        raw = signed_raw(listener, params)
        with connect(listener) as sock:
            for start in range(0, len(raw), 40_000):  # in pieces, as a slow client sends
                sock.sendall(raw[start : start + 40_000])
            status, headers, body = read_answer(sock)
        assert status == 200, body
        assert headers.get("connection") is None
        (call,) = recorder.calls
        assert dict(call.event.params)["Body"] == "x" * (150 * 1024)


def test_a_body_that_grows_past_the_limit_gets_413_and_ends_the_connection(
    served: twilio.Listener, recorder: Recorder
) -> None:
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nContent-Type: {FORM}\r\n"
        "X-Twilio-Signature: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with connect(served) as sock:
        sock.sendall(head.encode())
        chunk = b"8000\r\n" + b"a" * 0x8000 + b"\r\n"
        for _ in range(3):  # 96 KiB: past the fixture's 64 KiB
            sock.sendall(chunk)
        status, headers, _ = read_answer(sock)
        assert (status, headers.get("connection")) == (413, "close")
        assert closed_by_server(sock) == b""
    assert recorder.calls == []


def test_webhook_and_endpoint_requests_pipelined_are_answered_in_order(
    served: twilio.Listener, recorder: Recorder
) -> None:
    first, first_sid = signed_request(served)
    second, second_sid = signed_request(served)
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(served) as sock:
        sock.sendall(first + health + second + health)
        data = b""
        while len(split_whole(data)) < 4:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {data!r}"
            data += chunk
    answers = split_whole(data)
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    assert [body.startswith(b"<?xml") for _, body in answers] == [True, False, True, False]
    assert [call.event.sid for call in recorder.calls] == [first_sid, second_sid]


def test_x_forwarded_proto_from_a_proxy_on_loopback_is_honoured(
    served: twilio.Listener, recorder: Recorder
) -> None:
    # Signed for the https URL the proxy was called at: valid only once the
    # listener takes the scheme from the proxy, as uvicorn does for 127.0.0.1.
    https = served.url.replace("http://", "https://")
    params = sms_status_payload("delivered")
    with connect(served) as sock:
        sock.sendall(signed_raw(served, params, "X-Forwarded-Proto: https", url=https))
        assert read_answer(sock)[0] == 200
        sock.sendall(signed_raw(served, params, url=https))  # no header: plain http
        assert read_answer(sock)[0] == 403
    assert [call.event.sid for call in recorder.calls] == [params["MessageSid"]]


def test_answers_carry_the_date_and_no_server_header(served: twilio.Listener) -> None:
    with connect(served) as sock:
        sock.sendall(signed_request(served)[0])
        status, headers, _ = read_answer(sock)
    assert status == 200
    assert headers["date"].endswith(" GMT")
    assert "server" not in headers
    assert headers["content-type"].startswith("text/xml")


def test_expect_100_continue_is_answered_before_the_body(
    served: twilio.Listener, recorder: Recorder
) -> None:
    raw = signed_raw(served, sms_status_payload("delivered"), "Expect: 100-continue")
    head, _, body = raw.partition(b"\r\n\r\n")
    with connect(served) as sock:
        sock.sendall(head + b"\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(65536)
            assert chunk
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        assert read_answer(sock)[0] == 200
    assert len(recorder.calls) == 1


def test_a_failure_to_answer_is_a_500_that_ends_the_connection(
    served: twilio.Listener,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from twilio_trigger._webhook import WebhookHandler

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in the listener")

    monkeypatch.setattr(WebhookHandler, "handle", broken)
    with caplog.at_level(logging.ERROR, logger=LOGGER), connect(served) as sock:
        sock.sendall(signed_request(served)[0])
        status, headers, _ = read_answer(sock)
        assert (status, headers.get("connection")) == (500, "close")
        assert closed_by_server(sock) == b""
    assert any("answered 500" in r.getMessage() for r in records(caplog, logging.ERROR))
    monkeypatch.undo()
    assert_still_serving(served, recorder)


def test_an_answer_with_a_header_that_could_split_it_is_never_written() -> None:
    from twilio_trigger._core.answers import Answer
    from twilio_trigger._direct import _rendered

    with pytest.raises(ValueError, match="invalid header"):
        _rendered(Answer(200, b"", ((b"x-a", b"1\r\nset-cookie: b"),)))
    with pytest.raises(ValueError, match="invalid header"):
        _rendered(Answer(200, b"", ((b"x a", b"1"),)))
    fine = _rendered(Answer(200, b"ok", ((b"X-A", b"1\t2"), (b"Connection", b"Keep, Close"))))
    assert (fine.lines, fine.closes, fine.sized) == (b"x-a: 1\t2\r\n", True, False)


# -- the log ------------------------------------------------------------------------------
def test_refusals_at_the_edge_are_logged_once_then_counted(
    served: twilio.Listener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    headers = "".join(f"X-H{n}: {n}\r\n" for n in range(50))
    for _ in range(5):
        with connect(served) as sock:
            sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
            assert status_of(closed_by_server(sock)) == 431
    refusals = [r for r in records(caplog, logging.WARNING) if "refused" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert "431" in refusals[0].getMessage()
    assert "127.0.0.1" in refusals[0].getMessage()
    assert refusals[0].__dict__["reason"] == "head_too_large"


# -- processes ------------------------------------------------------------------------
EDGE_SERVICE = """
import twilio_trigger as twilio

listener = twilio.Listener(host="127.0.0.1", head_timeout=1, max_headers=20)


@listener.service
class Quiet(twilio.SmsStatusService):
    async def on_delivered(self, event):
        pass
"""


def test_the_limits_hold_in_every_process_of_run_workers(tmp_path: Path) -> None:
    from ._processes import Process
    from ._support import free_port

    (tmp_path / "edgeapp.py").write_text(EDGE_SERVICE)
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "TWILIO_AUTH_TOKEN": TOKEN, "HOME": str(tmp_path)}
    process = Process(
        tmp_path, env, "workers", "run", "edgeapp:listener", "--port", str(port), "--processes", "2"
    )
    try:
        process.wait_for(
            lambda: process.log.count("Application startup complete.") >= 2, "both processes"
        )
        headers = "".join(f"X-H{n}: {n}\r\n" for n in range(30))
        for _ in range(6):  # new connections: the kernel spreads them over the processes
            with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
                sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
                assert status_of(closed_by_server(sock)) == 431
            with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
                assert closed_by_server(sock) == b""  # silent: closed after head_timeout
        assert process.terminate() == 0, process.tail()
    finally:
        process.kill()


LIMIT_PROBE = """
import resource, sys
import twilio_trigger as twilio

listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=["t"], max_connections=1000)
limits = listener.edge_limits()
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], limits.max_connections)
"""


def test_the_file_limit_is_raised_and_connections_fit_under_it(tmp_path: Path) -> None:
    import resource
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(LIMIT_PROBE)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def probe(soft: int, hard: int) -> tuple[list[str], str]:
        done = subprocess.run(
            [sys.executable, str(script)],
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.split(), done.stderr

    # A low soft limit is raised to the hard one.
    (soft_after, connections), _ = probe(256, hard)
    assert int(soft_after) == hard
    assert int(connections) == min(1000, hard - 64)
    # Where it cannot be raised, connections are capped below it, and that is said.
    (soft_after, connections), stderr = probe(256, 256)
    assert int(soft_after) == 256
    assert int(connections) == 256 - 64
    assert "ulimit -n" in stderr


def test_refusals_at_the_edge_are_counted_in_the_metrics(recorder: Recorder) -> None:
    with running(SmsRecorder(recorder), metrics=True, max_headers=20) as listener:
        headers = "".join(f"X-H{n}: {n}\r\n" for n in range(30))
        for _ in range(3):
            with connect(listener) as sock:
                sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
                assert status_of(closed_by_server(sock)) == 431
        text = httpx.get(listener.url.rstrip("/") + "/metrics").text
    assert 'twilio_trigger_requests_rejected_total{reason="head_too_large"} 3.0' in text


def test_malformed_requests_are_told_once_not_by_uvicorn_per_request(
    served: twilio.Listener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for garbage in (b"\x16\x03\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n") * 5:
        with connect(served) as sock:
            sock.sendall(garbage)
            assert status_of(closed_by_server(sock)) == 400
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warned] == [LOGGER], [(r.name, r.getMessage()) for r in warned]
    assert warned[0].__dict__["reason"] == "malformed_request"


def test_only_a_listeners_own_app_under_uvicorn_is_served_without_asgi() -> None:
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from twilio_trigger._direct import Direct
    from twilio_trigger._edge import EdgeConfig
    from twilio_trigger._edge_limits import EdgeLimits

    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    app = listener.asgi

    def direct(wrapped: object, **options: object) -> Direct | None:
        options.setdefault("access_log", False)  # as the listener's servers are made
        config = EdgeConfig(wrapped, limits=EdgeLimits(), **options)
        return Direct.of(config, wrapped)

    found = direct(ProxyHeadersMiddleware(app))  # type: ignore[arg-type]
    assert found is not None
    assert (found.app, found.proxy is not None) == (app, True)
    bare = direct(app)
    assert bare is not None
    assert (bare.app, bare.proxy) == (app, None)
    assert direct(ProxyHeadersMiddleware(app), access_log=True) is None  # type: ignore[arg-type]

    async def other(scope: object, receive: object, send: object) -> None:
        return None

    assert direct(other) is None
    assert direct(ProxyHeadersMiddleware(ProxyHeadersMiddleware(app))) is None  # type: ignore[arg-type]


def test_a_configuration_pickled_to_another_process_leaves_what_it_found_behind() -> None:
    import pickle

    from twilio_trigger._direct import Direct
    from twilio_trigger._edge import EdgeConfig
    from twilio_trigger._edge_limits import EdgeLimits

    config = EdgeConfig("module:app", limits=EdgeLimits(), access_log=False)
    config._direct = Direct(twilio.Listener(0, auth_tokens=[TOKEN]).asgi, None)  # type: ignore[attr-defined, arg-type]
    copy = pickle.loads(pickle.dumps(config))  # noqa: S301 - our own bytes
    assert not hasattr(copy, "_direct")
    assert copy.limits == config.limits


# -- a chunked body's trailers, and heads pipelined in the same read ----------------------
def test_trailers_of_a_chunked_body_are_bounded_as_a_head_is(recorder: Recorder) -> None:
    # The parser hands trailer fields over as headers, after the head's limits were
    # checked: streamed without end, they would grow the process without bound.
    # Counted against max_head_bytes, they end the connection.
    with running(SmsRecorder(recorder), max_head_bytes=4096) as listener:
        head = (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n"
            f"Content-Type: {FORM}\r\nX-Twilio-Signature: x\r\n"
            "Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
        ).encode("ascii")
        line = b"X-T: " + b"v" * 4000 + b"\r\n"
        sent = 0
        with connect(listener) as sock:
            sock.sendall(head)
            try:
                while sent < 64 * 1024 * 1024:
                    sock.sendall(line * 16)
                    sent += len(line) * 16
            except OSError:  # reset or broken pipe: the server closed it
                pass
            else:
                raise AssertionError(f"the server read {sent:,} bytes of trailers")
            answer = b""
            with contextlib.suppress(OSError):
                answer = closed_by_server(sock)
        assert answer == b"" or status_of(answer) == 431, answer[:100]
        assert sent < 16 * 1024 * 1024, sent  # a few socket buffers past the limit
        assert_still_serving(listener, recorder)


def test_a_trailer_is_never_a_header_of_a_pipelined_request(
    served: twilio.Listener, recorder: Recorder
) -> None:
    # Sent together, the second request starts once the first is answered, after
    # its own body and trailers were parsed: a signature sent only as a trailer
    # must not count, as it does not for a request sent alone.
    first, first_sid = signed_request(served)
    params = sms_status_payload("sent")
    body = encode_form(params).decode("ascii")
    second = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nContent-Type: {FORM}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        f"{len(body):x}\r\n{body}\r\n0\r\n"
        f"X-Twilio-Signature: {sign(served.url, params, TOKEN)}\r\n\r\n"
    ).encode("ascii")
    with connect(served) as sock:
        sock.sendall(first + second)
        answers = split_whole(closed_by_server(sock))
    assert [status for status, _ in answers] == [200, 403]
    assert [call.event.sid for call in recorder.calls] == [first_sid]


def test_a_head_pipelined_in_the_same_read_is_bounded_too(
    served: twilio.Listener, recorder: Recorder
) -> None:
    # The second head arrives in the read that ends the first request's body: it
    # is parsed there, and must be held to max_head_bytes (4096 here) as well.
    # The first body is longer than that limit, so that the rest of the read is
    # handed to the parser as body.
    first_params = {**sms_status_payload("delivered"), "Padding": "x" * 8000}
    first_body = encode_form(first_params)
    first = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {len(first_body)}\r\n"
        f"X-Twilio-Signature: {sign(served.url, first_params, TOKEN)}\r\n\r\n"
    ).encode("ascii") + first_body
    first_sid = first_params["MessageSid"]
    params = sms_status_payload("sent")
    body = encode_form(params).decode("ascii")
    second = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nContent-Type: {FORM}\r\n"
        f"Content-Length: {len(body)}\r\nX-Pad: {'p' * 8000}\r\n"
        f"X-Twilio-Signature: {sign(served.url, params, TOKEN)}\r\n\r\n{body}"
    ).encode("ascii")
    with connect(served) as sock:
        sock.sendall(first + second)
        answers = split_whole(closed_by_server(sock))
    assert [status for status, _ in answers][:1] == [200]
    assert 200 not in [status for status, _ in answers][1:]
    assert [call.event.sid for call in recorder.calls] == [first_sid]
    assert_still_serving(served, recorder)


# -- found by an audit of the edge against RFC 9112 ---------------------------------------
def chunked_head(listener: twilio.Listener) -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\nContent-Type: {FORM}\r\n"
        "Transfer-Encoding: chunked\r\nX-Twilio-Signature: c2lnbmF0dXJl\r\n\r\n"
    ).encode("ascii")


@pytest.mark.parametrize(
    "refused",
    [
        b"zz\r\n",  # a chunk size that is none: 400
        b"0\r\n" + b"".join(b"X-T%d: v\r\n" % n for n in range(30)) + b"\r\n",  # 431
    ],
    ids=["bad-chunk", "trailers"],
)
def test_a_pipelined_request_refused_in_its_body_never_overtakes_the_answer_before_it(
    served: twilio.Listener, recorder: Recorder, refused: bytes
) -> None:
    # RFC 9112, 9.3.2: answers go in the order of the requests.  The second is
    # refused while the first is served: the first's answer comes, then the end.
    first, sid = signed_request(served)
    with connect(served) as sock:
        sock.sendall(first + chunked_head(served) + refused)
        answers = split_whole(closed_by_server(sock))
    assert [status for status, _ in answers] == [200]
    assert [call.event.sid for call in recorder.calls] == [sid]


def test_a_shorter_deadline_set_after_a_longer_one_is_kept(recorder: Recorder) -> None:
    # One timer per connection, armed for its first deadline (head_timeout): the
    # keep-alive after an answer, shorter, was kept only once that timer fired.
    with running(
        SmsRecorder(recorder), head_timeout=120.0, body_timeout=120.0, keepalive_timeout=0.5
    ) as listener:
        request, _ = signed_request(listener)
        with connect(listener) as sock:
            sock.sendall(request)
            assert read_answer(sock)[0] == 200
            assert closed_by_server(sock) == b""  # within 20 s, not 120


def test_a_get_with_a_body_past_64_kib_is_answered(recorder: Recorder) -> None:
    # A GET's body is ignored, but read: left unread, uvicorn stopped reading at
    # 64 KiB and the answer waited for the rest until body_timeout.
    limit = 1024 * 1024
    with running(SmsRecorder(recorder), body_timeout=120.0, max_body_bytes=limit) as listener:
        params = sms_status_payload("delivered")
        url = f"{listener.url}?{encode_form(params).decode('ascii')}"
        body = b"x" * 300_000
        head = (
            f"GET /?{encode_form(params).decode('ascii')} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{listener.port}\r\nContent-Length: {len(body)}\r\n"
            f"X-Twilio-Signature: {sign(url, {}, TOKEN)}\r\n\r\n"
        ).encode("ascii")
        with connect(listener) as sock:
            sock.sendall(head + body)
            assert read_answer(sock)[0] == 200
        too_large = b"x" * (limit + 1)  # past max_body_bytes: as a POST's
        head = head.replace(b"300000", str(len(too_large)).encode())
        with connect(listener) as sock:
            sock.sendall(head)
            assert read_answer(sock)[0] == 413
    assert [call.event.sid for call in recorder.calls] == [params["MessageSid"]]


@pytest.mark.parametrize("target", ["webhook", "healthz"])
def test_a_client_that_half_closes_after_its_request_is_answered(
    served: twilio.Listener, recorder: Recorder, target: str
) -> None:
    request = (
        signed_request(served)[0]
        if target == "webhook"
        else b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with connect(served) as sock:
        sock.sendall(request + (request if target == "healthz" else b""))
        sock.shutdown(socket.SHUT_WR)  # sent all it will
        answers = split_whole(closed_by_server(sock))
    assert [status for status, _ in answers] == ([200] if target == "webhook" else [200, 200])


def test_a_half_close_in_the_middle_of_a_body_ends_the_connection(
    served: twilio.Listener, recorder: Recorder
) -> None:
    request, _ = signed_request(served)
    with connect(served) as sock:
        sock.sendall(request[:-5])
        sock.shutdown(socket.SHUT_WR)
        assert closed_by_server(sock) == b""
    assert recorder.calls == []


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n",  # 431
        b"NOT HTTP AT ALL\r\n\r\n",  # 400
    ],
    ids=["431", "400"],
)
def test_the_edges_refusals_carry_a_date(served: twilio.Listener, request_bytes: bytes) -> None:
    # RFC 9110, 6.6.1: a server with a clock sends Date in every 4xx.
    with connect(served) as sock:
        sock.sendall(request_bytes)
        answer = closed_by_server(sock)
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    assert head.count("\r\ndate: ") == 1, head


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [((), b"missing Host header\n"), ((b"a", b"b"), b"malformed Host header\n")],
    ids=["none", "two"],
)
def test_an_endpoint_request_needs_exactly_one_host(
    served: twilio.Listener, hosts: tuple[bytes, ...], expected: bytes
) -> None:
    # RFC 9112, 3.2, as the webhook's requests already were.
    lines = b"".join(b"Host: %s\r\n" % host for host in hosts)
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + lines + b"\r\n")
        status, _, body = read_answer(sock)
    assert (status, body) == (400, expected)


@pytest.mark.parametrize(
    "framing",
    [b"4a;e=", b"0" * 16],  # an endless chunk extension; a size of endless zeros
    ids=["extension", "zeros"],
)
def test_a_chunked_bodys_framing_is_bounded_as_its_body_is(
    served: twilio.Listener, recorder: Recorder, framing: bytes
) -> None:
    # The body is bounded as it is decoded (max_body_bytes, 64 KiB here); its
    # framing was bounded only by body_timeout: gigabytes read in seconds.
    before = read_bytes()
    with connect(served) as sock:
        sock.sendall(chunked_head(served) + framing)
        filler = b"a" if framing.endswith(b"=") else b"0"
        sent = 0
        try:
            for _ in range(1024):  # 16 MiB at most
                sock.sendall(filler * 16384)
                sent += 16384
        except OSError:
            pass
        answer = closed_by_server(sock)
    assert status_of(answer) == 413, answer[:200]
    assert sent < 1024 * 16384
    assert read_bytes() - before < 8 * 1024 * 1024  # 4 x 64 KiB + 1 MiB, and the rest in flight
    assert recorder.calls == []
    assert_still_serving(served, recorder)


class Slow(SmsRecorder):
    """``sent`` takes a second: what is sent behind it waits in the pipeline."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self.started = threading.Event()

    async def on_sent(self, event: twilio.SmsStatusChangeEvent) -> Exception | None:  # type: ignore[override]
        self.started.set()
        await asyncio.sleep(1.0)
        return self.recorder.record("sms", "on_sent", event)


def test_a_half_close_after_a_partial_head_still_answers_the_requests_before_it(
    recorder: Recorder,
) -> None:
    slow = Slow(recorder)
    with running(slow) as listener:
        first, sid = signed_request(listener, "sent")
        with connect(listener) as sock:
            sock.sendall(first)
            wait_until(slow.started.is_set, "the first request's callback")
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x")  # and no more of it
            sock.shutdown(socket.SHUT_WR)
            answers = split_whole(closed_by_server(sock))
    assert [status for status, _ in answers] == [200]
    assert [call.event.sid for call in recorder.calls] == [sid]


def test_a_half_close_after_a_refused_pipelined_request_answers_those_before_it(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with running(Slow(recorder)) as listener:
        (first, one), (second, two) = signed_request(listener, "sent"), signed_request(listener)
        with connect(listener) as sock:
            sock.sendall(first + second + chunked_head(listener) + b"zz\r\n")
            sock.shutdown(socket.SHUT_WR)
            answers = split_whole(closed_by_server(sock))
    assert [status for status, _ in answers] == [200, 200]
    assert [call.event.sid for call in recorder.calls] == [one, two]
    # Told as what the client saw: no answer of its own (the connection ended).
    (told,) = [
        r.getMessage() for r in records(caplog, logging.WARNING) if "refused" in r.getMessage()
    ]
    assert "(closed without an answer)" in told, told


def test_a_request_queued_behind_a_slow_one_is_not_timed_out_while_unread(
    recorder: Recorder,
) -> None:
    # Queued behind a request being served, a request is not read (uvicorn stops
    # reading): its body_timeout runs only once it is.
    slow = Slow(recorder)
    with running(slow, body_timeout=0.5, head_timeout=0.5) as listener:
        (first, one), (second, two) = signed_request(listener, "sent"), signed_request(listener)
        head, _, body = second.partition(b"\r\n\r\n")
        with connect(listener) as sock:
            sock.sendall(first + head + b"\r\n\r\n")  # read together: the second queued
            wait_until(slow.started.is_set, "the first request's callback")
            sock.sendall(body)  # not read until the first is answered, a second later
            answers: list[tuple[int, bytes]] = []
            data = b""
            while len(answers) < 2:
                chunk = sock.recv(65536)
                assert chunk, f"closed after {data!r}"
                data += chunk
                answers = split_whole(data)
    assert [status for status, _ in answers] == [200, 200]
    assert [call.event.sid for call in recorder.calls] == [one, two]
