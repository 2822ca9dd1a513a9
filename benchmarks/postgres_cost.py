"""What each event costs the PostgreSQL inbox's database: WAL bytes, transactions and
statements per event, and events stored per second.

A real listener (``servers/trigger.py``, ``BENCH_MODE=postgres``: a no-op ``async
on_delivered``, the inbox's workers dispatching in the listener's process, every
option at its default) serves on a free loopback port, with its inbox in a database
of its own on the machine's PostgreSQL (``--postgres``, by default
``postgresql://postgres@127.0.0.1:5432/``), created for each scenario and dropped
after it.  For each scenario (``--senders 1,32``: one sender, then 32 concurrent
ones, each on a keep-alive HTTP connection), after a warm-up, ``--events`` signed SMS
status callbacks, each a new event, are posted; every answer must be 200, which
means stored (committed).  Then the script waits until every entry is done
(dispatched), and reads:

- **WAL bytes**: ``pg_wal_lsn_diff`` of ``pg_current_wal_lsn()`` from just before the
  first request to the moment every entry is done.  The WAL is the cluster's: any
  other activity on it (other databases, other tests) adds to it.  So, where the
  cluster's ``pg_wal`` folder can be read (as root, or as its owner) and
  ``pg_waldump`` of the server's version is installed, the records of that span are
  also read with it, and those of the scenario's database kept: the records that
  touch its relations, and every record of the transactions that wrote them (their
  commits);
- **transactions**: ``xact_commit`` (and ``xact_rollback``) of ``pg_stat_database``
  for the scenario's database, which only the listener and this script use: read
  before the events once the warm-up's statistics are flushed (a backend flushes
  them at most once a second, an idle one after 10 s), and after the listener has
  stopped (a backend flushes them at exit); this script's own queries on that
  database are subtracted.  The listener idles between the warm-up and the events,
  and while it stops: its workers' polling (two statements every 0.5 s) counts
  during those few seconds too;
- **statements**: from ``pg_stat_statements`` when the cluster preloads it
  (``shared_preload_libraries``: this script does not change a cluster's settings);
  otherwise counted in the listener's process: ``trigger.py`` with
  ``BENCH_STATEMENTS`` counts the executes of psycopg's async cursors, through which
  every statement of the inbox goes.  The report says which;
- **rows**: ``tup_inserted`` and ``tup_updated`` of ``pg_stat_database``, per event.

Run::

    .venv/bin/python benchmarks/postgres_cost.py                  # 2,000 events, 1 and 32 senders
    .venv/bin/python benchmarks/postgres_cost.py --events 10000 --senders 1,8,32

It prints a markdown table and what the figures rest on.  Only loopback addresses are
contacted; the listener runs in a process group of its own, stopped by it.
"""

# ruff: noqa: S603, S608

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg

from twilio_trigger.testing import sign, sms_status_params

HERE = Path(__file__).resolve().parent
SERVER = HERE / "servers" / "trigger.py"
HOST = "127.0.0.1"
SCHEMA = "twilio_trigger"  # the inbox's default schema
MARK = "/* postgres_cost */ "  # this script's queries, told apart in pg_stat_statements
STATS_IDLE_FLUSH = 11.0  # s: an idle backend flushes its statistics after 10 s
DEADLINE = 300.0  # s: the longest wait for anything


class CostError(Exception):
    """A scenario could not be measured; the message says why."""


Connection = psycopg.Connection[tuple[Any, ...]]


def connect(url: str) -> Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def one(connection: Connection, query: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    row = connection.execute(MARK + query, args).fetchone()
    if row is None:
        raise CostError(f"no row from {query!r}")
    return row


# -- the listener -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def listener(
    port: int, token: str, inbox: str, log: Path, statements: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``servers/trigger.py`` with its inbox at *inbox*, counting its statements into
    *statements*, stopped (SIGTERM, then SIGKILL after 15 s) by its process group."""
    env = dict(
        os.environ,
        BENCH_MODE="postgres",
        BENCH_POSTGRES_URL=inbox,
        BENCH_STATEMENTS=str(statements),
        BENCH_PORT=str(port),
        BENCH_AUTH_TOKEN=token,
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("TWILIO_AUTH_TOKEN", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(SERVER)],
            cwd=SERVER.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise CostError(f"the listener exited with {process.returncode}: {tail(log)}")
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise CostError(f"the listener did not listen in 30 s: {tail(log)}") from None
                time.sleep(0.05)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def statements_sent(process: subprocess.Popen[bytes], path: Path) -> int:
    """The statements the listener has sent so far (it writes them on SIGUSR1)."""
    path.unlink(missing_ok=True)
    os.kill(process.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not path.exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise CostError("the listener did not tell how many statements it sent")
        time.sleep(0.01)
    return int(path.read_text())


def tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-6:])
    return "(no log)"


# -- the requests -------------------------------------------------------------------


def signed_requests(port: int, token: str, count: int) -> list[tuple[str, str]]:
    """*count* delivered status callbacks, each a new MessageSid: (signature, body)."""
    url = f"http://{HOST}:{port}/"
    requests = []
    for _ in range(count):
        pairs = list(sms_status_params("delivered").items())
        requests.append((sign(url, pairs, token), urlencode(pairs)))
    return requests


def send(port: int, requests: list[tuple[str, str]], senders: int) -> float:
    """Post *requests* from *senders* threads, each on a keep-alive connection; return
    the seconds it took.  Every answer must be 200 (stored)."""
    lock = threading.Lock()
    todo = iter(requests)
    answers: collections.Counter[str] = collections.Counter()

    def sender() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            while True:
                with lock:
                    request = next(todo, None)
                if request is None:
                    return
                signature, body = request
                connection.request(
                    "POST",
                    "/",
                    body=body.encode("ascii"),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature,
                        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
                        "User-Agent": "TwilioProxy/1.1",
                    },
                )
                answer = connection.getresponse()
                answer.read()
                with lock:
                    answers[str(answer.status)] += 1
        except (OSError, http.client.HTTPException) as error:
            with lock:
                answers[f"{type(error).__name__}: {error}"] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if set(answers) != {"200"} or answers["200"] != len(requests):
        raise CostError(f"not every request was answered 200: {dict(answers)}")
    return elapsed


# -- one scenario ---------------------------------------------------------------------


@dataclass
class Counters:
    lsn: str
    commits: int
    rollbacks: int
    inserted: int
    updated: int
    checkpoints: int


def counters(admin: Connection, database: str) -> Counters:
    """The cluster's WAL position and the database's statistics, as flushed so far."""
    lsn, commits, rollbacks, inserted, updated = one(
        admin,
        "SELECT pg_current_wal_lsn()::text, xact_commit, xact_rollback, tup_inserted, "
        "tup_updated FROM pg_stat_database WHERE datname = %s",
        (database,),
    )
    (checkpoints,) = one(admin, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
    return Counters(lsn, commits, rollbacks, inserted, updated, checkpoints)


def wal_bytes(admin: Connection, before: str, after: str) -> int:
    return int(one(admin, "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (after, before))[0])


class Monitor:
    """This script's connection to the scenario's database; counts its statements."""

    def __init__(self, url: str) -> None:
        self.connection = connect(url)
        self.pid = self.connection.info.backend_pid
        self.statements = 0

    def row(self, query: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        self.statements += 1
        return one(self.connection, query, args)

    def wait_done(self, total: int) -> None:
        """Until *total* entries are stored and every one is done."""
        deadline = time.monotonic() + DEADLINE
        while True:
            done, stored, other = self.row(
                f"SELECT count(*) FILTER (WHERE state = 'done'), count(*), "
                f"count(*) FILTER (WHERE state NOT IN ('done', 'pending', 'running')) "
                f"FROM {SCHEMA}.events"
            )
            if other:
                raise CostError(f"{other} inbox entries neither done nor waiting (dead?)")
            if done == stored == total:
                return
            if time.monotonic() > deadline:
                raise CostError(f"{done} of {total} entries done after {DEADLINE:.0f} s")
            time.sleep(0.02)

    def close(self) -> None:
        self.connection.close()


def wait_no_backends(admin: Connection, database: str) -> None:
    """Until no connection uses *database* (each backend flushes its statistics
    before it leaves)."""
    deadline = time.monotonic() + 30
    while one(admin, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,))[0]:
        if time.monotonic() > deadline:
            raise CostError(f"connections to {database} still open 30 s after the listener")
        time.sleep(0.05)


def wait_gone(admin: Connection, pid: int) -> None:
    """Until the backend *pid* has left (and flushed its statistics)."""
    deadline = time.monotonic() + 30
    while one(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))[0]:
        if time.monotonic() > deadline:
            raise CostError(f"backend {pid} still there 30 s after its connection closed")
        time.sleep(0.02)


def preloaded_statements(admin: Connection) -> bool:
    (libraries,) = one(admin, "SELECT current_setting('shared_preload_libraries')")
    return "pg_stat_statements" in re.split(r"[\s,]+", str(libraries))


@dataclass
class OwnWal:
    """The WAL records of one database, read with pg_waldump."""

    bytes: int  # their share of the span's bytes (records, alignment, page headers)
    records: int
    full_pages: int  # records carrying a full-page image
    full_page_bytes: int  # the bytes of those records, likewise
    kinds: dict[str, int]  # bytes by resource manager and record type, likewise


_RECORD = re.compile(
    r"rmgr: (\w+)\s+len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*(\d+), .*?desc: ([A-Z_+0-9]+)"
)
_BLOCK = re.compile(r"blkref #\d+: rel \d+/(\d+)/\d+(?: fork \w+)? blk \d+( FPW)?")


def pg_waldump(admin: Connection) -> tuple[str, Path] | str:
    """pg_waldump of the server's version and the cluster's pg_wal folder, or why not."""
    (version,) = one(admin, "SELECT current_setting('server_version_num')::int / 10000")
    try:
        (data,) = one(admin, "SELECT current_setting('data_directory')")
    except psycopg.Error as error:
        return f"the data directory is not shown to this user ({error.sqlstate})"
    candidates = [f"/usr/lib/postgresql/{version}/bin/pg_waldump", shutil.which("pg_waldump")]
    program = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if program is None:
        return f"no pg_waldump of PostgreSQL {version} here"
    wal = Path(data) / "pg_wal"
    if not os.access(wal, os.R_OK | os.X_OK):
        return f"{wal} cannot be read by this user"
    return program, wal


def own_wal(
    tool: tuple[str, Path], admin: Connection, oid: int, start: str, end: str, span: int
) -> OwnWal | str:
    """The records between *start* and *end* of the database *oid* (see the module's
    text), as a share of the *span* bytes, or why they could not be read."""
    deadline = time.monotonic() + 10  # pg_waldump reads what is on disk
    while not one(admin, "SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (end,))[0]:
        if time.monotonic() > deadline:
            return "the WAL was not flushed up to the end of the span within 10 s"
        time.sleep(0.05)
    program, wal = tool
    try:
        done = subprocess.run(
            [program, "-p", str(wal), "-s", start, "-e", end],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"pg_waldump failed: {error}"
    records = []  # (aligned bytes, xid, of this database, full-page image, kind)
    for line in done.stdout.splitlines():
        match = _RECORD.search(line)
        if match is None:
            continue
        blocks = _BLOCK.findall(line)
        ours = any(int(database) == oid for database, _ in blocks)
        full = any(fpw for database, fpw in blocks if int(database) == oid)
        size = (int(match[2]) + 7) // 8 * 8  # each record starts MAXALIGNed
        records.append((size, int(match[3]), ours, full, f"{match[1]} {match[4]}"))
    if done.returncode != 0 or not records:
        return f"pg_waldump failed ({done.returncode}): {done.stderr.strip()[-300:]}"
    xids = {xid for _, xid, ours, _, _ in records if ours and xid}
    mine = [(size, full, kind) for size, xid, ours, full, kind in records if ours or xid in xids]
    total = sum(record[0] for record in records)
    share = span / total  # page headers, spread over the records
    kinds: collections.Counter[str] = collections.Counter()
    for size, _, kind in mine:
        kinds[kind] += size
    return OwnWal(
        bytes=round(sum(size for size, _, _ in mine) * share),
        records=len(mine),
        full_pages=sum(1 for _, full, _ in mine if full),
        full_page_bytes=round(sum(size for size, full, _ in mine if full) * share),
        kinds={kind: round(size * share) for kind, size in kinds.most_common()},
    )


@dataclass
class Outcome:
    senders: int
    events: int
    seconds_stored: float
    seconds_done: float
    wal: int  # the cluster's
    own: OwnWal | str  # the scenario's database's, or why it is not known
    transactions: int
    rollbacks: int
    statements: int | None  # from pg_stat_statements, when preloaded
    sent: int | None  # counted in the listener's process
    inserted: int
    updated: int
    checkpoints: int


def scenario(base: str, admin: Connection, senders: int, events: int, tmp: Path) -> Outcome:
    database = f"tt_cost_{os.getpid()}_{senders}"
    url = base + database
    admin.execute(MARK + f'CREATE DATABASE "{database}"')
    try:
        return _scenario(url, database, admin, senders, events, tmp)
    finally:
        admin.execute(MARK + f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _scenario(
    url: str, database: str, admin: Connection, senders: int, events: int, tmp: Path
) -> Outcome:
    statements = preloaded_statements(admin)
    if statements:
        with connect(url) as setup:
            setup.execute(MARK + "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    port, token = free_port(), secrets.token_hex(16)
    warmup = max(100, 4 * senders)
    warm, measured = (
        signed_requests(port, token, warmup),
        signed_requests(port, token, events),
    )
    log = tmp / f"listener-{senders}.log"
    counted = tmp / f"statements-{senders}.txt"
    with listener(port, token, url, log, counted) as process:
        print(f"[{senders} sender(s)] warm-up: {warmup} events", file=sys.stderr, flush=True)
        send(port, warm, senders)
        monitor = Monitor(url)
        monitor.wait_done(warmup)
        monitor.close()
        wait_gone(admin, monitor.pid)
        # The warm-up's statistics reach pg_stat_database once its backends idle.
        time.sleep(STATS_IDLE_FLUSH)
        if statements:
            with connect(url) as reset:
                one(
                    reset,
                    "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()), 0)",
                )
                pid = reset.info.backend_pid
            wait_gone(admin, pid)  # its statistics flushed: not counted below
        before = counters(admin, database)
        sent_before = statements_sent(process, counted)
        print(f"[{senders} sender(s)] {events} events", file=sys.stderr, flush=True)
        began = time.perf_counter()
        stored = send(port, measured, senders)
        monitor = Monitor(url)
        monitor.wait_done(warmup + events)
        done = time.perf_counter() - began
        lsn_after = one(admin, "SELECT pg_current_wal_lsn()::text")[0]
        monitor.close()
        span = wal_bytes(admin, before.lsn, lsn_after)
        tool = pg_waldump(admin)
        if isinstance(tool, str):
            own: OwnWal | str = tool
        else:
            (oid,) = one(admin, "SELECT oid FROM pg_database WHERE datname = %s", (database,))
            own = own_wal(tool, admin, int(oid), before.lsn, lsn_after, span)
        counted.unlink(missing_ok=True)
        stop(process)
        if process.returncode not in (0, -signal.SIGTERM):
            print(f"the listener exited with {process.returncode}: {tail(log)}", file=sys.stderr)
        # Written at its exit.
        sent = int(counted.read_text()) - sent_before if counted.exists() else None
    wait_no_backends(admin, database)
    after = counters(admin, database)
    calls = None
    if statements:
        with connect(url) as reader:
            calls = int(
                one(
                    reader,
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND query NOT LIKE %s",
                    (MARK.strip() + "%",),
                )[0]
            )
    return Outcome(
        senders=senders,
        events=events,
        seconds_stored=stored,
        seconds_done=done,
        wal=span,
        own=own,
        transactions=after.commits - before.commits - monitor.statements,
        rollbacks=after.rollbacks - before.rollbacks,
        statements=calls,
        sent=sent,
        inserted=after.inserted - before.inserted,
        updated=after.updated - before.updated,
        checkpoints=after.checkpoints - before.checkpoints,
    )


# -- the report ---------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| senders | events | stored/s | all done after | WAL bytes/event: this database's "
        "(of which full pages) | WAL bytes/event: whole cluster | transactions/event "
        "| statements/event | rows inserted, updated/event |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for o in outcomes:
        n = o.events
        own = (
            "-"
            if isinstance(o.own, str)
            else f"{o.own.bytes / n:,.0f} ({o.own.full_page_bytes / n:,.0f})"
        )
        statements = o.statements if o.statements is not None else o.sent
        rows.append(
            f"| {o.senders} | {n:,} | {n / o.seconds_stored:,.0f} | {o.seconds_done:.2f} s "
            f"| {own} | {o.wal / n:,.0f} | {o.transactions / n:.2f}"
            f"{f' (+{o.rollbacks / n:.2f} rolled back)' if o.rollbacks else ''} "
            f"| {'-' if statements is None else f'{statements / n:.2f}'} "
            f"| {o.inserted / n:.2f}, {o.updated / n:.2f} |"
        )
    return "\n".join(rows)


def settings(admin: Connection) -> str:
    names = ["server_version", "synchronous_commit", "fsync", "wal_sync_method", "autovacuum"]
    rows = admin.execute(
        MARK + "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (names,)
    ).fetchall()
    found = {str(name): str(value) for name, value in rows}
    return ", ".join(f"{name}={found.get(name, '?')}" for name in names)


def notes(outcomes: list[Outcome], preloaded: bool) -> list[str]:
    method = (
        "counted by pg_stat_statements (calls in the scenario's database, this script's "
        "queries left out)"
        if preloaded
        else "pg_stat_statements is not preloaded on this cluster (and a shared cluster's "
        "settings are not changed): counted in the listener's process, every execute of "
        "psycopg's async cursors (`servers/trigger.py` with `BENCH_STATEMENTS`)"
    )
    lines = [
        f"- *statements*: {method}.  The inbox's connections are in autocommit mode, and "
        "with a callback that takes no transaction no statement opens one: each "
        "statement is a transaction of its own.  *transactions* exceed them by the "
        "transactions PostgreSQL runs by itself: the LISTEN connection reads the "
        "notifications it is woken for in one, a new connection starts with one, and so "
        "does a statement's first preparation on a connection.",
        "- *WAL bytes*, from the first request until every entry was done, over the "
        "events: *whole cluster*, `pg_wal_lsn_diff` of `pg_current_wal_lsn()`, includes "
        "whatever else ran on the cluster meanwhile (other databases, other tests); *this "
        "database's*: the records of that span, read with `pg_waldump`, that touch the "
        "scenario's own database's relations, and every record of the transactions "
        "that wrote them (their commits), with the span's page headers spread over the "
        "records; *full pages*: those of its records that carry a full-page image (the "
        "first change of a page after a checkpoint).",
        "- *transactions*: `xact_commit` of the scenario's own database, this script's "
        "own queries there left out; they include the workers' polling while idle (2 "
        "statements every 0.5 s) while the listener stopped, and for up to a second "
        "before the events (statistics a backend had not flushed yet).",
        "- Per event, the code path's statements: the INSERT of its batch (shared by the "
        "events that arrived together), the claiming UPDATE of its batch (shared by up to "
        "`concurrency` entries), the UPDATE that records its outcome (shared by the outcomes "
        "that finished together), and, each "
        "time the workers look and find nothing more due, one more claim and one "
        "`next_due` SELECT.",
        "- *stored/s*: events over the time until the last 200 (a 200 waits for the "
        "insert's commit); *all done after*: until every entry was dispatched and marked "
        "done.",
    ]
    for o in outcomes:
        if preloaded and o.sent is not None:
            lines.append(
                f"- statements counted in the listener, {o.senders} sender(s), for "
                f"comparison: {o.sent / o.events:.2f}/event."
            )
    for o in outcomes:
        if isinstance(o.own, str):
            lines.append(f"- this database's WAL, {o.senders} sender(s): not read, {o.own}.")
            continue
        kinds = ", ".join(
            f"{kind} {size / o.events:,.0f}"
            for kind, size in o.own.kinds.items()
            if size / o.events >= 1
        )
        lines.append(
            f"- this database's WAL, {o.senders} sender(s), bytes/event by record type "
            f"(pg_waldump's names): {kinds}; {o.own.records / o.events:.1f} records/event."
        )
    checkpoints = sum(o.checkpoints for o in outcomes)
    if checkpoints:
        lines.append(
            f"- {checkpoints} checkpoint(s) happened during the measurements: the first "
            "change of each page after one writes the whole page to the WAL."
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per scenario (2000)")
    parser.add_argument(
        "--senders", default="1,32", help="concurrent senders, one scenario each (1,32)"
    )
    parser.add_argument(
        "--postgres",
        default=f"postgresql://postgres@{HOST}:5432/",
        help="the PostgreSQL server, a URL without a database; one is created (and "
        "dropped) per scenario (postgresql://postgres@127.0.0.1:5432/)",
    )
    args = parser.parse_args()
    try:
        senders = [int(s) for s in args.senders.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--senders takes numbers, e.g. 1,32, got {args.senders!r}")
    if args.events < 1 or not senders or min(senders) < 1:
        parser.error("--events and --senders must be positive")
    base = args.postgres if args.postgres.endswith("/") else args.postgres + "/"
    host = urlsplit(base).hostname
    if host not in (HOST, "localhost", "::1"):
        parser.error(f"--postgres must be on the loopback interface, got {host!r}")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    outcomes = []
    with connect(base + "postgres") as admin, tempfile.TemporaryDirectory() as tmp:
        preloaded = preloaded_statements(admin)
        about = settings(admin)
        for count in senders:
            outcomes.append(scenario(base, admin, count, args.events, Path(tmp)))
    print(table(outcomes))
    print()
    print(f"PostgreSQL: {about}; a database of its own per scenario.")
    print("\n".join(notes(outcomes, preloaded)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (CostError, psycopg.Error) as failure:
        sys.exit(f"postgres_cost.py: {failure}")
