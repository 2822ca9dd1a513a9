"""Instructions per request of the listener's own work, counted by valgrind's callgrind.

Seconds measured in-process move by a microsecond or so from run to run on a shared
machine, more than many changes to the request path save; instructions counted by
callgrind are the same from run to run for the same code and input.  This drives
``listener.asgi`` as ``profile_inprocess.py`` does (signed status callbacks, each a new
SID), under ``valgrind --tool=callgrind`` twice, with *small* then *large* requests
after the same warm-up, and prints the difference divided by the difference in
requests: the instructions one request costs, start-up and warm-up left out.

    .venv/bin/python benchmarks/instructions.py [--mode inline|dedup] [--small 1000 --large 3000]

Takes about a minute (valgrind runs the interpreter some fifty times slower); needs
``valgrind`` (Debian's package).

``--server`` counts the whole server instead: ``servers/trigger.py`` (uvicorn, the
listener's edge and HTTP path, the listener) under callgrind, sent *small* then
*large* signed requests one after the other on one keep-alive connection over
loopback, stopped with SIGINT; the difference per request is what each request
costs the server process, HTTP included, whatever else the machine is doing::

    .venv/bin/python benchmarks/instructions.py --server --mode defaults
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def counted(mode: str, count: int, large: int) -> int:
    """The instructions of a whole run that sends *count* requests."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("instructions.py: valgrind is not installed (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory() as folder:
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={folder}/out",
            sys.executable, __file__, "--drive", str(count), "--mode", mode,
            "--large", str(large),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"instructions.py: the run under valgrind failed:\n{done.stderr[-2000:]}")
    return int(found[1])


def counted_server(mode: str, count: int) -> int:
    """The instructions of the server process that answers *count* requests."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("instructions.py: valgrind is not installed (apt-get install -y valgrind)")
    sys.path.insert(0, str(HERE))
    import run as bench

    port = bench.free_port()
    requests = _server_requests(port, count)
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "server.log"
        env = dict(
            os.environ, BENCH_PORT=str(port), BENCH_AUTH_TOKEN=_SERVER_TOKEN,
            BENCH_MODE=mode, BENCH_TMPDIR=folder,
        )  # fmt: skip
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={folder}/out",
            sys.executable, str(HERE / "servers" / "trigger.py"),
        ]  # fmt: skip
        with log_path.open("w") as log:
            server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
            try:
                _send_one_by_one(port, requests, server)
            finally:
                server.send_signal(signal.SIGINT)  # uvicorn stops; callgrind writes its count
                try:
                    server.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
        output = log_path.read_text()
    found = _COLLECTED.search(output)
    if found is None:
        sys.exit(f"instructions.py: the server under valgrind failed:\n{output[-2000:]}")
    return int(found[1])


_SERVER_TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"  # noqa: S105 - a test token
_LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)


def _server_requests(port: int, count: int) -> list[bytes]:
    """*count* signed ``delivered`` callbacks, each a new SID, as raw HTTP/1.1."""
    from urllib.parse import urlencode

    from twilio_trigger import compute_signature
    from twilio_trigger.testing import sms_status_params

    url = f"http://127.0.0.1:{port}/"
    made = []
    for number in range(count):
        pairs = list(sms_status_params("delivered").items())
        body = urlencode(pairs).encode("ascii")
        signature = compute_signature(url, pairs, _SERVER_TOKEN).encode("ascii")
        made.append(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: %s\r\n"
            b"I-Twilio-Idempotency-Token: %08d-0000-4000-8000-000000000000\r\n"
            b"User-Agent: TwilioProxy/1.1\r\nContent-Length: %d\r\n\r\n%s"
            % (port, signature, number, len(body), body)
        )
    return made


def _send_one_by_one(port: int, requests: list[bytes], server: subprocess.Popen[bytes]) -> None:
    """Send each request once its answer before it (a 200) is read, on one connection."""
    deadline = time.monotonic() + 300  # the interpreter starts slowly under valgrind
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with sock:
        buffered = b""
        for request in requests:
            sock.sendall(request)
            while b"\r\n\r\n" not in buffered:
                buffered += _received(sock)
            head, _, buffered = buffered.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                sys.exit(f"instructions.py: the server answered {head[:200]!r}")
            length = _LENGTH.search(head)
            size = int(length[1]) if length else 0
            while len(buffered) < size:
                buffered += _received(sock)
            buffered = buffered[size:]


def _received(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        sys.exit("instructions.py: the server closed the connection")
    return chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["inline", "dedup", "defaults"], default="dedup")
    parser.add_argument("--server", action="store_true", help="count the whole server")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=3000)
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)  # the run under valgrind
    args = parser.parse_args()
    if args.drive is not None:
        # Both runs make as many requests (the larger count), so that only the
        # requests sent differ between them.
        drive(args.mode, args.drive, args.large)
        return
    if args.large <= args.small:
        parser.error("--large must be more than --small")
    if args.server:
        small = counted_server(args.mode, args.small)
        large = counted_server(args.mode, args.large)
        per_request = (large - small) / (args.large - args.small)
        print(f"{args.mode}, the whole server: {per_request:,.0f} instructions per request")
        return
    if args.mode == "defaults":
        parser.error("--mode defaults counts the whole server: add --server")
    small = counted(args.mode, args.small, args.large)
    large = counted(args.mode, args.large, args.large)
    per_request = (large - small) / (args.large - args.small)
    print(f"{args.mode}: {per_request:,.0f} instructions per request (callgrind)")


def drive(mode: str, count: int, made: int) -> None:
    """Build a listener, warm it up, make *made* requests and send *count* of them
    (the run under valgrind)."""
    import uvloop

    sys.path.insert(0, str(HERE))
    import profile_inprocess as harness

    import twilio_trigger as twilio

    listener = twilio.Listener(
        auth_tokens=[harness.TOKEN], deduplicate=mode != "inline", host="127.0.0.1"
    )
    listener.attach(harness.Delivered())
    app = listener.asgi
    warm, bodies = harness.requests(1000), harness.requests(made)
    uvloop.run(harness.drive(app, warm, 1000))
    uvloop.run(harness.drive(app, bodies, count))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
