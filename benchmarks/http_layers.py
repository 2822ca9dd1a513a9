"""What each layer of uvicorn costs a request: the budget the listener's own server has.

Four servers on the listener's own HTTP protocol (``_edge.EdgeProtocol``), each
answering every POST with the same 200, each pinned to one CPU and loaded by
``wrk -t1 -c32`` with ``post.lua`` on the other, one after the other:

- ``bare``: answers from the parser's callbacks, without uvicorn's request state
  (no scope, no request cycle): the HTTP parsing and the socket's cost alone;
- ``callbacks``: uvicorn's own parser callbacks (the ASGI scope, the request cycle
  and its event), the answer written when the body is in, without a task;
- ``task``: the same, the answer written by a task made for each request (as the
  listener's webhook requests are: a callback's time limit cancels that task);
- ``asgi``: a bare ASGI app behind uvicorn's request cycle (its task, its receive
  and send messages): the benchmarks' floor, on the listener's protocol.

Prints req/s and µs per request of each, and what each layer adds.  Not part of
``scripts/bench``: it explains the floor rather than measuring the listener.

    .venv/bin/python benchmarks/http_layers.py [--duration 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import run as bench

LAYERS = ("bare", "callbacks", "task", "asgi")
_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: 11\r\n\r\n<Response/>"


def serve(layer: str, port: int) -> None:
    """Serve *layer* on *port* until killed (run in the server's own process)."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from twilio_trigger._edge import EdgeConfig, EdgeProtocol
    from twilio_trigger._edge_limits import EdgeLimits

    sys.path.insert(0, str(bench.SERVERS_DIR))
    import floor

    class Bare(EdgeProtocol):
        def on_message_begin(self) -> None:
            self._body = bytearray()

        def on_url(self, url: bytes) -> None:
            pass

        def on_header(self, name: bytes, value: bytes) -> None:
            pass

        def on_headers_complete(self) -> None:
            self._phase = 2  # the body's deadline, as the edge's own

        def on_body(self, body: bytes) -> None:
            self._body += body

        def on_message_complete(self) -> None:
            self._phase = 0
            self._head_bytes = 0
            self.transport.write(_ANSWER)

    class Callbacks(EdgeProtocol):
        started: RequestResponseCycle | None = None

        def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
            self.started = cycle

        def on_message_complete(self) -> None:
            super().on_message_complete()
            cycle = self.started
            assert cycle is not None
            cycle.response_started = cycle.response_complete = True
            if layer == "task":
                self.loop.create_task(self._answer(cycle))
            else:
                self.transport.write(_ANSWER)
                cycle.on_response()

        async def _answer(self, cycle: RequestResponseCycle) -> None:
            self.transport.write(_ANSWER)
            cycle.on_response()

    protocol = {"bare": Bare, "callbacks": Callbacks, "task": Callbacks, "asgi": EdgeProtocol}
    config = EdgeConfig(
        floor.app,
        limits=EdgeLimits(),
        host=bench.HOST,
        port=port,
        http=protocol[layer],
        loop="uvloop",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run()


def measure(layer: str, args: argparse.Namespace, wrk: str, tmp: Path) -> float:
    port = bench.free_port()
    data = tmp / f"{layer}.txt"
    bench.write_requests(data, port, "benchtoken", 2000)
    log = tmp / f"{layer}.log"
    command = ["taskset", "-c", str(args.server_cpu), sys.executable, __file__, "--serve", layer,
               "--port", str(port)]  # fmt: skip
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    with bench.started(command, env=env, cwd=bench.HERE, log=log) as process:
        bench.wait_for_port(port, process, log)
        load = ["taskset", "-c", str(args.client_cpu), wrk, "-t1", f"-c{args.connections}",
                f"-d{args.duration}s", "--latency", "-s", str(bench.POST_LUA),
                f"http://{bench.HOST}:{port}{bench.PATH}"]  # fmt: skip
        done = bench.run_bounded(
            load,
            env=dict(os.environ, BENCH_DATA=str(data), BENCH_NONCE="00000000-0000-4abc"),
            timeout=args.duration + 30,
        )
    return bench.parse_wrk(done.stdout).requests_per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--serve", choices=LAYERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("http_layers.py: wrk is not installed (scripts/bench installs it)")
    with tempfile.TemporaryDirectory(prefix="tt-layers-") as folder:
        rates = {layer: measure(layer, args, wrk, Path(folder)) for layer in LAYERS}
    print("| layer | req/s | µs per request | added by this layer |")
    print("|---|--:|--:|--:|")
    before = None
    for layer in LAYERS:
        micros = 1e6 / rates[layer]
        added = "" if before is None else f"{micros - before:+.1f} µs"
        print(f"| {layer} | {rates[layer]:,.0f} | {micros:.1f} | {added} |")
        before = micros
    return 0


if __name__ == "__main__":
    sys.exit(main())
