"""Cost of the listener's own work per request, without a server, and where it goes.

Drives ``listener.asgi`` directly (on uvloop) with realistic signed status
callbacks, as uvicorn would after parsing HTTP, and prints microseconds per
request; ``--profile`` adds a cProfile table of twilio-trigger's functions.

    .venv/bin/python benchmarks/profile_inprocess.py [--mode inline|dedup] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import time
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
                (b"i-twilio-idempotency-token", str(number).encode()),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["inline", "dedup"], default="inline")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    logging.getLogger("twilio_trigger").setLevel(logging.WARNING)
    listener = twilio.Listener(
        auth_tokens=[TOKEN], deduplicate=args.mode == "dedup", host="127.0.0.1"
    )
    listener.attach(Delivered())
    app = listener.asgi
    bodies = requests(2000)
    uvloop.run(drive(app, bodies, 2000))  # warm-up
    started = time.perf_counter()
    uvloop.run(drive(app, bodies, args.requests))
    elapsed = time.perf_counter() - started
    print(f"{args.mode}: {elapsed / args.requests * 1e6:.1f} us per request (in-process)")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(uvloop.run, drive(app, bodies, args.requests))
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats("twilio_trigger|urllib", 25)


if __name__ == "__main__":
    main()
