"""Malformed request heads: never a 500, never an ERROR record, always still serving.

Each head below is sent over a raw socket to a real listener (with a public_url
and without, so that the Host header matters to the signature check and does
not).  Whatever the head, the answer is a 4xx (or the connection is closed),
nothing is logged at ERROR, and a real webhook is served afterwards.  The test
client is on loopback, a proxy uvicorn trusts, so its X-Forwarded-* headers are
parsed too.
"""

from __future__ import annotations

import logging
import socket

import pytest

from ..payloads import FORM, encode_form, sign, sms_status_payload
from ._support import TOKEN, Recorder, SmsRecorder, closed_by_server, read_answer, running

FORM_HEADERS = b"Content-Type: " + FORM.encode() + b"\r\nX-Twilio-Signature: c2lnbmF0dXJl\r\n"


def post(host: bytes | None, *extra: bytes, body: bytes = b"MessageSid=SM1") -> bytes:
    head = b"POST / HTTP/1.1\r\n"
    if host is not None:
        head += b"Host: " + host + b"\r\n"
    head += FORM_HEADERS + b"".join(line + b"\r\n" for line in extra)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


MALFORMED = {
    # Host headers that no URL can be built from
    "host-open-bracket": post(b"["),
    "host-bracketed-name": post(b"[x]"),
    "host-unclosed-ipv6": post(b"[::1"),
    "host-stray-bracket": post(b"a]b"),
    "host-empty": post(b""),
    "host-at": post(b"evil.example@hooks.example.com"),
    "host-slash": post(b"hooks.example.com/other"),
    "host-hash": post(b"hooks.example.com#x"),
    "host-backslash": post(b"hooks.example.com\\evil"),
    "host-port-letters": post(b"hooks.example.com:http"),
    "host-port-too-big": post(b"hooks.example.com:99999"),
    "host-port-long": post(b"hooks.example.com:1234567"),
    "host-two-colons": post(b"a:1:2"),
    "host-bad-ipv6": post(b"[12345::zz]:80"),
    "host-ipv6-zone": post(b"[fe80::1%25eth0]"),
    "host-latin1": post(b"h\xe9llo.example"),
    "host-utf8": post("hé.example".encode()),
    "host-long": post(b"a" * 3000),
    "host-twice": post(b"a.example", b"Host: b.example"),
    "no-host-http-1.0": post(None).replace(b"HTTP/1.1", b"HTTP/1.0"),
    "no-host": post(None),
    # Proxy headers (the client is a trusted proxy here)
    "forwarded-proto-odd": post(b"x", b"X-Forwarded-Proto: javascript"),
    "forwarded-proto-empty": post(b"x", b"X-Forwarded-Proto: "),
    "forwarded-proto-list": post(b"x", b"X-Forwarded-Proto: https, http, ftp"),
    "forwarded-for-garbage": post(b"x", b"X-Forwarded-For: ,,,[::1, 999.1.1.1, \xff\xfe"),
    "forwarded-for-long": post(b"x", b"X-Forwarded-For: " + b"1.2.3.4, " * 1000),
    "forwarded-host": post(b"x", b"X-Forwarded-Host: [", b"X-Forwarded-Port: abc"),
    "forwarded": post(b"x", b'Forwarded: for="[::1";proto=gopher;host="["'),
    # Headers the webhook reads
    "signature-binary": post(b"x", b"X-Twilio-Signature: \xff\xfe\x80"),
    "signature-huge": post(b"x", b"X-Twilio-Signature: " + b"A" * 8000),
    "settings-garbage": post(b"x", b"X-Twilio-Webhooks-Signature-Settings: ;;==,\xff"),
    "settings-unknown-algorithm": post(
        b"x", b"X-Twilio-Webhooks-Signature-Settings: key=k,algorithm=MD5"
    ),
    "token-binary": post(b"x", b"I-Twilio-Idempotency-Token: \xff\x00"[:-1]),
    "content-type-binary": post(b"x", b"Content-Type: application/\xff"),
    "content-type-params": post(b"x", b"Content-Type: " + FORM.encode() + b'; charset="\xff'),
    "content-type-json-garbage": post(b"x", b"Content-Type: application/json", body=b"[{"),
    "expect-odd": post(b"x", b"Expect: 100-continue, 200-ok"),
    # Framing
    "content-length-negative": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "content-length-letters": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "content-length-huge": (
        b"POST / HTTP/1.1\r\nHost: x\r\n"
        + FORM_HEADERS
        + b"Content-Length: "
        + b"9" * 40
        + b"\r\n\r\n"
    ),
    "content-length-twice": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    ),
    "chunked-and-length": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    ),
    "chunk-size-garbage": (
        b"POST / HTTP/1.1\r\nHost: x\r\n" + FORM_HEADERS + b"Transfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nabc\r\n0\r\n\r\n"
    ),
    "transfer-encoding-odd": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, x\r\n\r\n",
    # Request lines
    "absolute-form": post(b"x").replace(b"POST / ", b"POST http://evil.example/ "),
    "asterisk-form": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-percent": post(b"x").replace(b"POST / ", b"POST /%zz%0 "),
    "raw-latin1-path": post(b"x").replace(b"POST / ", b"POST /\xe9 "),
    "encoded-nul-path": post(b"x").replace(b"POST / ", b"POST /%00 "),
    "odd-query": post(b"x").replace(b"POST / ", b"POST /?%ff=%00&&==&a "),
    "unknown-method": b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
    "http-2-line": b"POST / HTTP/2.0\r\nHost: x\r\n\r\n",
    "http-9": b"POST / HTTP/9.9\r\nHost: x\r\n\r\n",
    "no-version": b"POST /\r\nHost: x\r\n\r\n",
    "lowercase-method": b"post / HTTP/1.1\r\nHost: x\r\n\r\n",
    # Header syntax
    "space-in-name": b"POST / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
    "no-colon": b"POST / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "obs-fold": b"POST / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
    "nul-in-value": b"POST / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare-lf": b"POST / HTTP/1.1\nHost: x\nContent-Length: 0\n\n",
    "upgrade-h2c": post(b"x", b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c"),
    "upgrade-websocket": (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ),
    # request targets in absolute form that name no http(s) host
    "target-userinfo": post(b"a").replace(b"POST / ", b"POST http://user:pw@a/ "),
    "target-other-scheme": post(b"a").replace(b"POST / ", b"POST ftp://a/ "),
    "target-authority-form": post(b"a").replace(b"POST / ", b"CONNECT a:443 "),
    "target-no-host": post(b"a").replace(b"POST / ", b"POST http:///x "),
    "target-no-path": post(b"a").replace(b"POST / ", b"POST http://a "),
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
    "empty-line-only": b"\r\n\r\n\r\n",
}


def answer_to(port: int, request: bytes) -> int:
    """The status answered to *request*, 0 when the connection closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = closed_by_server(sock)
    if not received:
        return 0
    assert received.startswith(b"HTTP/1."), received[:100]
    return int(received.split(b" ", 2)[1])


@pytest.mark.parametrize("public_url", [None, "https://hooks.example.com/"])
def test_no_malformed_head_gives_a_500_or_an_error_record(
    public_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    options = {} if public_url is None else {"public_url": public_url}
    with running(SmsRecorder(recorder), **options) as listener:
        statuses = {name: answer_to(listener.port, request) for name, request in MALFORMED.items()}
        # Still serving: a real, signed webhook.
        params = sms_status_payload("delivered")
        url = public_url or listener.url
        body = encode_form(params)
        with socket.create_connection(("127.0.0.1", listener.port), timeout=20) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\n"
                b"X-Twilio-Signature: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (listener.port, FORM.encode(), sign(url, params, TOKEN).encode(), len(body), body)
            )
            assert read_answer(sock)[0] == 200
    server_errors = {name: status for name, status in statuses.items() if status >= 500}
    assert not server_errors, server_errors
    assert all(status == 0 or 400 <= status < 500 for status in statuses.values()), statuses
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.name, r.getMessage()) for r in errors]
    # The malformed Host headers were refused as such, before any signature check.
    for name in ("host-open-bracket", "host-bracketed-name", "host-unclosed-ipv6", "host-at"):
        assert statuses[name] == 400, (name, statuses[name])
    assert statuses["no-host"] == 400
    assert [call.event.sid for call in recorder.calls] == [params["MessageSid"]]


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_a_request_without_host_is_refused_unless_http_1_0(version: str) -> None:
    # RFC 9112, 3.2: an HTTP/1.1 request without Host is a 400, whatever it
    # carries (here a signature over the server's own address, which a request
    # without Host was checked against).  HTTP/1.0 has no Host to require.
    recorder = Recorder()
    with running(SmsRecorder(recorder)) as listener:
        params = sms_status_payload("delivered")
        body = encode_form(params)
        signature = sign(f"http://127.0.0.1:{listener.port}/", params, TOKEN)
        request = (
            b"POST / HTTP/%s\r\nContent-Type: %s\r\nX-Twilio-Signature: %s\r\n"
            b"Content-Length: %d\r\n\r\n%s"
            % (version.encode(), FORM.encode(), signature.encode(), len(body), body)
        )
        with socket.create_connection(("127.0.0.1", listener.port), timeout=20) as sock:
            sock.sendall(request)
            status, _, answered = read_answer(sock)
    if version == "1.1":
        assert (status, answered) == (400, b"missing Host header\n")
        assert recorder.calls == []
    else:
        assert status == 200
        assert [call.event.sid for call in recorder.calls] == [params["MessageSid"]]


def test_a_target_in_absolute_form_names_the_host_not_the_host_header() -> None:
    # RFC 9112, 3.2.2: the server takes the target's host and ignores Host.
    recorder = Recorder()
    with running(SmsRecorder(recorder)) as listener:
        origin = f"http://127.0.0.1:{listener.port}"

        def status_of(target: str, signed_for: str, params: dict[str, str]) -> int:
            body = encode_form(params)
            request = (
                b"POST %s HTTP/1.1\r\nHost: evil.example\r\nContent-Type: %s\r\n"
                b"X-Twilio-Signature: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (
                    target.encode(),
                    FORM.encode(),
                    sign(signed_for, params, TOKEN).encode(),
                    len(body),
                    body,
                )
            )
            with socket.create_connection(("127.0.0.1", listener.port), timeout=20) as sock:
                sock.sendall(request)
                status, _, _ = read_answer(sock)
            return status

        first, second, third = (sms_status_payload("delivered") for _ in range(3))
        assert status_of(f"{origin}/?hook=a", f"{origin}/?hook=a", first) == 200
        assert status_of(f"{origin}/", "http://evil.example/", second) == 403
        assert status_of(origin, f"{origin}/", third) == 200  # no path: the root's
        empty_user = f"http://@127.0.0.1:{listener.port}/"  # userinfo, though empty
        assert status_of(empty_user, f"{origin}/", sms_status_payload("delivered")) == 400
    assert [call.event.sid for call in recorder.calls] == [
        first["MessageSid"],
        third["MessageSid"],
    ]


@pytest.mark.parametrize(
    ("repeated", "shown"),
    [
        ("x-twilio-signature", "X-Twilio-Signature"),
        ("content-type", "Content-Type"),
        ("authorization", "Authorization"),
        ("x-twilio-webhooks-signature-settings", "X-Twilio-Webhooks-Signature-Settings"),
    ],
)
@pytest.mark.parametrize("valid_first", [True, False])
def test_a_header_that_decides_how_a_request_is_read_may_come_once(
    repeated: str, shown: str, valid_first: bool
) -> None:
    # Which of two signatures (or content types...) counts would be the server's
    # guess, and a proxy in front of it may guess the other way: refused, whatever
    # the order, before any signature check.
    recorder = Recorder()
    with running(SmsRecorder(recorder)) as listener:
        params = sms_status_payload("delivered")
        body = encode_form(params)
        fields = {
            "x-twilio-signature": sign(listener.url, params, TOKEN),
            "content-type": FORM,
            "authorization": "Basic dXNlcjpwYXNz",
            "x-twilio-webhooks-signature-settings": "v1",
        }
        lines = [f"{name}: {value}" for name, value in fields.items() if name != repeated]
        pair = [f"{repeated}: {fields[repeated]}", f"{repeated}: other"]
        lines += pair if valid_first else pair[::-1]
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n" + "".join(
            line + "\r\n" for line in lines
        )
        request = head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body
        with socket.create_connection(("127.0.0.1", listener.port), timeout=20) as sock:
            sock.sendall(request)
            answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.endswith(f"repeated {shown} header\n".encode()), answer[-100:]
    assert recorder.calls == []
