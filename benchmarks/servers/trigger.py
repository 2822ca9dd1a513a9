"""(b), (c), (d): a twilio-trigger Listener with a no-op ``async on_delivered``.

Configured by the environment (``benchmarks/run.py`` sets it):

- ``BENCH_PORT``: the port, on 127.0.0.1;
- ``BENCH_AUTH_TOKEN``: the auth token the signatures are verified with (always on);
- ``BENCH_MODE``: ``inline`` (no duplicate detection), ``dedup`` (``deduplicate=True``),
  ``inbox`` (the durable SQLite inbox, ``inbox="sqlite:///<BENCH_TMPDIR>/bench.db"``) or
  ``redis`` (the Redis inbox on 127.0.0.1:6379, under a prefix of its own, removed at exit,
  with ``redis_durability="memory"``: that Redis keeps nothing on disk).

The ``deduplicate`` and ``inbox`` options are passed only when the mode needs them,
so ``inline`` runs on a twilio-trigger that does not have them yet.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import Any

import twilio_trigger as twilio


class Delivered(twilio.SmsStatusService):
    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        pass


def listener_options(mode: str, tmpdir: str) -> dict[str, Any]:
    accepted = inspect.signature(twilio.Listener).parameters
    options: dict[str, Any] = {}
    if mode == "inline":
        if "deduplicate" in accepted:  # explicit, whatever the default becomes
            options["deduplicate"] = False
    elif mode == "dedup":
        options["deduplicate"] = True
    elif mode == "inbox":
        options["inbox"] = f"sqlite:///{os.path.join(tmpdir, 'bench.db')}"
    elif mode == "redis":
        options["inbox"] = "redis://127.0.0.1:6379/0"
        options["redis_prefix"] = f"twilio-trigger-bench-{os.getpid()}:"
        if "redis_durability" in accepted:
            # The machine's Redis keeps nothing on disk: the row measures the
            # inbox's own cost, as it did before durability was checked.
            options["redis_durability"] = "memory"
    else:
        sys.exit(f"trigger.py: unknown BENCH_MODE {mode!r} (inline, dedup, inbox or redis)")
    missing = [name for name in options if name not in accepted]
    if missing:
        sys.exit(
            f"trigger.py: this twilio_trigger.Listener has no {', '.join(missing)} option "
            f"(needed by BENCH_MODE={mode}); is the branch that adds it merged?"
        )
    return options


def main() -> None:
    # Configured before run(), so the listener does not set up INFO logging.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    mode = os.environ.get("BENCH_MODE", "inline")
    options = listener_options(mode, os.environ.get("BENCH_TMPDIR", "."))
    listener = twilio.Listener(
        int(os.environ["BENCH_PORT"]),
        host="127.0.0.1",
        auth_tokens=[os.environ["BENCH_AUTH_TOKEN"]],
        **options,
    )
    listener.attach(Delivered())
    print(f"trigger.py: mode={mode} options={sorted(options)} url={listener.url}", flush=True)
    try:
        listener.run()
    finally:
        if mode == "redis":
            forget(options["redis_prefix"])


def forget(prefix: str) -> None:
    """Remove the benchmark's keys from the shared Redis."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    batch = list(client.scan_iter(match=prefix + "*", count=1000))
    while batch:
        client.delete(*batch[:1000])
        batch = batch[1000:]
    client.close()


if __name__ == "__main__":
    main()
