"""Memory of deduplication under a flood of distinct deliveries.

Drives the listener's delivery pipeline in-process (deduplication, status order,
dispatch to a no-op async callback) with N distinct events, each with its own SID
and idempotency token, and prints the resident set size at the start, after 10 %,
after 50 % and at the end, with the stores' entry counts.  The in-memory stores are
bounded (``dedup_max_entries``, default 100 000), so memory must stop growing once
they are full.

    PYTHONPATH=src python benchmarks/dedup_memory.py [--events N] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

# Measure the sources next to this script, not whatever copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import twilio_trigger as twilio
from twilio_trigger._delivery import Delivery
from twilio_trigger._dispatch import Dispatcher
from twilio_trigger._options import OPTIONS
from twilio_trigger.stores.memory import MemoryDeliveryStore, MemoryStatusStore


class NoOp(twilio.SmsStatusService):
    """Counts deliveries and does nothing else."""

    def __init__(self) -> None:
        self.count = 0

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.count += 1


def rss_mib() -> float:
    """The process's resident set size (VmRSS), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def flood(events: int, limit: int) -> int:
    service = NoOp()
    dispatcher = Dispatcher()
    dispatcher.attach(service)
    deliveries = MemoryDeliveryStore(ttl=OPTIONS.dedup_ttl.default, limit=limit)
    statuses = MemoryStatusStore(ttl=OPTIONS.dedup_ttl.default, limit=limit)
    delivery = Delivery(
        dispatcher,
        deliveries=deliveries,
        statuses=statuses,
        skip_stale=False,
        callback_timeout=10.0,
    )
    await delivery.startup()
    marks = {events // 10: "after 10%", events // 2: "after 50%"}

    last = [0, 0.0]  # events and seconds at the previous report

    def report(label: str, done: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        rate = (elapsed - last[1]) / (done - last[0]) * 1e6 if done > last[0] else 0.0
        last[:] = [done, elapsed]
        gc.collect()
        print(
            f"{label:<10} events={done:>9,}  rss={rss_mib():8.1f} MiB  "
            f"dedup entries={len(deliveries):>7,}  status entries={len(statuses):>7,}  "
            f"{elapsed:6.1f} s  ({rate:6.1f} us/event since the last line)",
            flush=True,
        )

    started = time.perf_counter()
    gc.collect()
    start_rss = rss_mib()
    report("start", 0, started)
    # Only the SID and the status vary; the rest is what every event carries.
    template = {
        "AccountSid": "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978",
        "From": "+14155550143",
        "To": "+15558675310",
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "ApiVersion": "2010-04-01",
    }
    for number in range(1, events + 1):
        sid = f"SM{number:032x}"
        event = twilio.SmsStatusChangeEvent({**template, "MessageSid": sid, "SmsSid": sid})
        answer = await delivery.accept(event)
        if answer.status != 200:
            raise SystemExit(f"event {number} was answered {answer.status}")
        if number in marks:
            report(marks[number], number, started)
    report("end", events, started)
    end_rss = rss_mib()
    await delivery.shutdown(1.0)
    print(f"callbacks run: {service.count:,} of {events:,}")
    print(f"entry limit per store: {limit:,}")
    print(f"rss end/start: {end_rss / start_rss:.2f}")
    return service.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="distinct events to send")
    parser.add_argument(
        "--limit",
        type=int,
        default=OPTIONS.dedup_max_entries.default,
        help="entries each in-memory store keeps (dedup_max_entries)",
    )
    options = parser.parse_args()
    if options.events < 10:
        parser.error("--events must be at least 10")
    count = asyncio.run(flood(options.events, options.limit))
    if count != options.events:
        raise SystemExit(f"only {count} of {options.events} events reached the callback")


if __name__ == "__main__":
    main()
