"""(b), (c), (d), (f), (g): a twilio-trigger Listener with a no-op ``async on_delivered``.

Configured by the environment (``benchmarks/run.py`` sets it):

- ``BENCH_PORT``: the port, on 127.0.0.1;
- ``BENCH_AUTH_TOKEN``: the auth token the signatures are verified with (always on);
- ``BENCH_MODE``: ``inline`` (no duplicate detection), ``dedup`` (``deduplicate=True``),
  ``defaults`` (no option at all, as users run it),
  ``inbox`` (the durable SQLite inbox, ``inbox="sqlite:///<BENCH_TMPDIR>/bench.db"``) or
  ``redis`` (the Redis inbox on 127.0.0.1:6379, under a prefix of its own, removed at exit,
  with ``redis_durability="memory"``: that Redis keeps nothing on disk) or
  ``postgres`` (the PostgreSQL inbox on 127.0.0.1:5432, user ``postgres``, in a database
  of its own: ``BENCH_POSTGRES_DATABASE``, by default ``tt_bench_<pid>``, created at start
  (it must not exist yet) and dropped at exit; or, with ``BENCH_POSTGRES_URL``, the
  database that URL names, used as it is and left in place.  PostgreSQL's own
  durability: a 200 waits for the commit, with the cluster's ``synchronous_commit``,
  ``on`` by default, which the server prints at start).

``redis-durable`` is the Redis inbox in its default, durable mode (``redis_durability=
"fsync"``: a 200 once Redis has the event in its append-only file on disk), on the Redis
that ``BENCH_REDIS_URL`` names (``steady.py`` starts one with ``appendfsync always``).

With ``BENCH_GC_LOG=<file>`` (``steady.py`` sets it), every pause of Python's garbage
collector is timed (``gc.callbacks``), and the longest, the count and the total by
generation written to that file as JSON on ``SIGUSR1`` (then counted afresh) and at exit.
``BENCH_GC_FREEZE=1`` calls ``gc.freeze()`` once the listener is built, before it serves.

With ``BENCH_STATEMENTS=<file>`` (``postgres_cost.py`` sets it), the statements this
process sends to PostgreSQL (the executes of psycopg's async cursors) are counted, and
the count written to that file on ``SIGUSR1`` and at exit.

The ``deduplicate`` and ``inbox`` options are passed only when the mode needs them,
so ``inline`` runs on a twilio-trigger that does not have them yet.
"""

from __future__ import annotations

import atexit
import gc
import inspect
import json
import logging
import os
import re
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import twilio_trigger as twilio

if TYPE_CHECKING:
    import psycopg


#: Events the callback ran so far, reported with the collector's pauses: with an
#: inbox, the workers run them after the 200, and may fall behind the requests.
dispatched = 0


class Delivered(twilio.SmsStatusService):
    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        global dispatched
        dispatched += 1


def listener_options(mode: str, tmpdir: str) -> dict[str, Any]:
    accepted = inspect.signature(twilio.Listener).parameters
    options: dict[str, Any] = {}
    if mode == "inline":
        if "deduplicate" in accepted:  # explicit, whatever the default becomes
            options["deduplicate"] = False
    elif mode == "dedup":
        options["deduplicate"] = True
    elif mode == "defaults":
        pass  # the listener as users run it: duplicate detection and status order on
    elif mode == "inbox":
        options["inbox"] = f"sqlite:///{os.path.join(tmpdir, 'bench.db')}"
    elif mode == "redis":
        options["inbox"] = "redis://127.0.0.1:6379/0"
        options["redis_prefix"] = f"twilio-trigger-bench-{os.getpid()}:"
        if "redis_durability" in accepted:
            # The machine's Redis keeps nothing on disk: the row measures the
            # inbox's own cost, as it did before durability was checked.
            options["redis_durability"] = "memory"
    elif mode == "redis-durable":
        options["inbox"] = os.environ["BENCH_REDIS_URL"]
        options["redis_prefix"] = f"twilio-trigger-bench-{os.getpid()}:"
    elif mode == "postgres":
        options["inbox"] = postgres_url()
    else:
        sys.exit(
            f"trigger.py: unknown BENCH_MODE {mode!r} (inline, dedup, defaults, inbox, redis, "
            f"redis-durable or postgres)"
        )
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
    if os.environ.get("BENCH_STATEMENTS"):
        count_statements(os.environ["BENCH_STATEMENTS"])
    if os.environ.get("BENCH_GC_LOG"):
        time_collections(os.environ["BENCH_GC_LOG"])
    options = listener_options(mode, os.environ.get("BENCH_TMPDIR", "."))
    listener = twilio.Listener(
        int(os.environ["BENCH_PORT"]),
        host="127.0.0.1",
        auth_tokens=[os.environ["BENCH_AUTH_TOKEN"]],
        **options,
    )
    listener.attach(Delivered())
    print(f"trigger.py: mode={mode} options={sorted(options)} url={listener.url}", flush=True)
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        listener.asgi  # noqa: B018 - built now, so that what it holds is frozen too
        gc.freeze()
    created = None
    if mode == "postgres" and "BENCH_POSTGRES_URL" not in os.environ:
        created = postgres_database()
        create_database(created)
    try:
        if mode == "postgres":
            print(f"trigger.py: PostgreSQL {postgres_settings()}", flush=True)
        listener.run()
    finally:
        if mode == "redis":
            forget(options["redis_prefix"])  # the machine's shared Redis
        if created is not None:
            drop_database(created)


def time_collections(path: str) -> None:
    """Time every pause of the garbage collector; write the longest, the count and the
    total by generation to *path* (JSON) on SIGUSR1, then count afresh, and at exit;
    with them (as ``"dispatched"``), the events the callback ran since the start."""
    started = 0.0
    pauses: dict[int, list[float]] = {}  # generation: [count, total, longest] (seconds)

    def timed(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
            return
        took = time.perf_counter() - started
        seen = pauses.setdefault(info["generation"], [0, 0.0, 0.0])
        seen[0] += 1
        seen[1] += took
        seen[2] = max(seen[2], took)

    def write(*_: object) -> None:
        document = {
            str(generation): {"count": int(c), "total_s": t, "longest_s": m}
            for generation, (c, t, m) in sorted(pauses.items())
        }
        document["dispatched"] = {"count": dispatched}  # never counted afresh
        partial = f"{path}.partial"
        with open(partial, "w", encoding="ascii") as out:
            json.dump(document, out)
        os.replace(partial, path)
        pauses.clear()

    gc.callbacks.append(timed)
    signal.signal(signal.SIGUSR1, write)
    atexit.register(write)


def count_statements(path: str) -> None:
    """Count the statements sent through psycopg's async cursors (the inbox's, all of
    them); write the count to *path* on SIGUSR1 and at exit."""
    import psycopg

    count = 0
    execute = psycopg.AsyncCursor.execute
    executemany = psycopg.AsyncCursor.executemany

    async def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return await execute(self, query, *args, **kwargs)

    async def counted_many(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        nonlocal count
        params_seq = list(params_seq)
        count += len(params_seq)
        return await executemany(self, query, params_seq, **kwargs)

    def write(*_: object) -> None:
        partial = f"{path}.partial"
        with open(partial, "w", encoding="ascii") as out:
            out.write(f"{count}\n")
        os.replace(partial, path)

    setattr(psycopg.AsyncCursor, "execute", counted)  # noqa: B010
    setattr(psycopg.AsyncCursor, "executemany", counted_many)  # noqa: B010
    signal.signal(signal.SIGUSR1, write)
    atexit.register(write)


def forget(prefix: str) -> None:
    """Remove the benchmark's keys from the shared Redis."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    batch = list(client.scan_iter(match=prefix + "*", count=1000))
    while batch:
        client.delete(*batch[:1000])
        batch = batch[1000:]
    client.close()


POSTGRES = "postgresql://postgres@127.0.0.1:5432/"  # the machine's PostgreSQL, trust auth


def postgres_database() -> str:
    """The name of the database this server creates (``BENCH_POSTGRES_DATABASE``)."""
    name = os.environ.get("BENCH_POSTGRES_DATABASE") or f"tt_bench_{os.getpid()}"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        sys.exit(f"trigger.py: BENCH_POSTGRES_DATABASE={name!r} is not a plain database name")
    return name


def postgres_url() -> str:
    return os.environ.get("BENCH_POSTGRES_URL") or POSTGRES + postgres_database()


def _admin() -> psycopg.Connection[tuple[Any, ...]]:
    import psycopg

    return psycopg.connect(POSTGRES + "postgres", autocommit=True, connect_timeout=5)


def create_database(name: str) -> None:
    """Create the benchmark's database; one that exists already is someone else's."""
    import psycopg

    with _admin() as connection:
        try:
            connection.execute(f'CREATE DATABASE "{name}"')
        except psycopg.errors.DuplicateDatabase:
            sys.exit(f"trigger.py: database {name} exists already; it is not this benchmark's")


def drop_database(name: str) -> None:
    """Drop the benchmark's database, and the connections that may still use it."""
    with _admin() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_settings() -> str:
    """The settings that say what a commit (a 200 from this server) waits for."""
    import psycopg

    names = ["server_version", "synchronous_commit", "fsync", "wal_sync_method"]
    with psycopg.connect(postgres_url(), connect_timeout=5) as connection:
        found: dict[str, str] = dict(
            connection.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (names,)
            ).fetchall()
        )
    return ", ".join(f"{name}={found.get(name, '?')}" for name in names)


if __name__ == "__main__":
    main()
