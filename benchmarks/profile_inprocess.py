"""Cost of the listener's own work per request, without a server, and where it goes.

Drives ``listener.asgi`` directly (on uvloop) with realistic signed status
callbacks, as uvicorn would after parsing HTTP, and prints microseconds per
request; ``--profile`` adds a cProfile table of twilio-trigger's functions.

    .venv/bin/python benchmarks/profile_inprocess.py [--mode inline|dedup|inbox|redis] [--profile]
        [--log] [--metrics] [--compare]

``--log`` writes each event's log line (to /dev/null, through a real handler);
``--metrics`` counts them in Prometheus metrics: the cost of each, per request.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import logging
import os
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlencode

import uvloop

import twilio_trigger as twilio
from twilio_trigger.testing import sign, sms_status_params

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"  # noqa: S105 - a test token
URL = "http://127.0.0.1:8090/"


class Delivered(twilio.SmsStatusService):
    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        pass


def requests(count: int) -> list[tuple[bytes, bytes]]:
    made = []
    for _ in range(count):
        params = sms_status_params("delivered")
        made.append((urlencode(params).encode("ascii"), sign(URL, params, TOKEN).encode()))
    return made


async def drive(app: Any, bodies: list[tuple[bytes, bytes]], count: int) -> None:
    run = uuid.uuid4().hex[:8]  # tokens never repeat from one drive to the next
    for number in range(count):
        body, signature = bodies[number % len(bodies)]
        scope = {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8090"),
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", str(len(body)).encode()),
                (b"x-twilio-signature", signature),
                (b"i-twilio-idempotency-token", f"{run}-{number}".encode()),
                (b"user-agent", b"TwilioProxy/1.1"),
            ],
        }
        answered: list[int] = []

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any], answered: list[int] = answered) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])

        await app(scope, receive, send)
        if answered != [200]:
            raise SystemExit(f"unexpected answer {answered}")


def measure(mode: str, count: int, log: bool, metrics: bool) -> tuple[Any, float]:
    """A fresh listener's app, and its microseconds per request over *count* requests."""
    logging.getLogger("twilio_trigger").setLevel(logging.INFO if log else logging.WARNING)
    options: dict[str, Any] = {}
    if mode == "inbox":
        # On a tmpfs where there is one: the listener's own work, not the disk's fsync.
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()  # noqa: S108
        options["inbox"] = f"sqlite:///{tempfile.mkdtemp(dir=folder)}/profile.db"
    elif mode == "redis":
        options["inbox"] = "redis://127.0.0.1:6379/0"
        options["redis_prefix"] = f"twilio-trigger-profile-{os.getpid()}-{time.time_ns()}:"
        if "redis_durability" in inspect.signature(twilio.Listener).parameters:
            options["redis_durability"] = "memory"  # that Redis keeps nothing on disk
    listener = twilio.Listener(
        auth_tokens=[TOKEN],
        deduplicate=mode != "inline",
        host="127.0.0.1",
        metrics=metrics,
        **options,
    )
    listener.attach(Delivered())
    app = listener.asgi
    # A body per request: sent twice, a body would be a duplicate delivery.
    warm, bodies = requests(2000), requests(count)
    uvloop.run(drive(app, warm, 2000))  # warm-up
    started = time.perf_counter()
    uvloop.run(drive(app, bodies, count))
    return app, (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode",
        choices=["inline", "dedup", "inbox", "redis"],
        default="inline",
        help="inbox: the SQLite inbox on a tmpfs; redis: the Redis inbox on 127.0.0.1:6379",
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--log", action="store_true", help="log a line per event")
    parser.add_argument("--metrics", action="store_true", help="count Prometheus metrics")
    parser.add_argument(
        "--compare", action="store_true", help="plain, +log, +metrics, +both, 3 rounds each"
    )
    args = parser.parse_args()
    package = logging.getLogger("twilio_trigger")
    package.propagate = False
    sink = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package.addHandler(handler)
    if args.compare:
        variants = [(False, False), (True, False), (False, True), (True, True)]
        rounds: dict[tuple[bool, bool], list[float]] = {variant: [] for variant in variants}
        for _ in range(3):  # interleaved, so that a slow moment hits every variant alike
            for log, metrics in variants:
                rounds[log, metrics].append(measure(args.mode, args.requests, log, metrics)[1])
        floor = statistics.median(rounds[False, False])
        for (log, metrics), times in rounds.items():
            name = args.mode + ("+log" if log else "") + ("+metrics" if metrics else "")
            cost = statistics.median(times)
            print(f"{name:<22} {cost:5.1f} us per request   {floor / cost:.2f} of plain")
        return
    app, per_request = measure(args.mode, args.requests, args.log, args.metrics)
    extras = "".join(f" +{name}" for name in ("log", "metrics") if getattr(args, name))
    print(f"{args.mode}{extras}: {per_request:.1f} us per request (in-process)")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(uvloop.run, drive(app, requests(args.requests), args.requests))
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats("twilio_trigger|urllib", 25)


if __name__ == "__main__":
    main()
