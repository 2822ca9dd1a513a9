"""The steady-state benchmark: a million distinct SIDs, the stores full and evicting.

``scripts/bench --steady`` runs it (``python benchmarks/steady.py --help``).  Each row
is a server pinned to one CPU, loaded by ``wrk -t1 -c32`` pinned to the other with
``steady.lua``, which sends each request of a file once, each run taking up where the
last left off (wrk runs for a time, not a count: each run is timed at the pace of the
one before, and 1.5 requests are written per SID wanted, 200,000 more for the first):

1. *fill*: runs until half the SIDs were sent (500,000 by default: five times the
   stores' 100,000 entries), so that the stores are full and evicting;
2. *steady*: one run timed to send the other half, measured: req/s, latency
   percentiles (50, 99, 99.9),
   the server's RSS at its start, after the fill and at the end (its growth over
   the second half), and the pauses of Python's garbage collector during it
   (``gc.callbacks`` in the server: the longest, and the count of full collections).

The floor, a bare ASGI app on the same uvicorn, takes the same load in the same run,
and every figure is also given as a ratio to the floor's.  Rows: ``floor``,
``inline`` (no duplicate detection), ``defaults`` (no option: duplicate detection and
status order on), ``sqlite``, ``redis`` (in its durable mode, ``fsync``, on a Redis the
run starts with ``appendfsync always`` and stops) and ``postgres`` (a database the run
creates and drops).  The report replaces the steady-state section of
``benchmarks/RESULTS.md`` (``--out`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import run as bench

from twilio_trigger import compute_signature
from twilio_trigger.testing import sms_status_params

HERE = Path(__file__).resolve().parent
STEADY_LUA = HERE / "steady.lua"
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- steady-state -->", "<!-- /steady-state -->"
ROWS = ("floor", "inline", "defaults", "sqlite", "redis", "postgres")
_MODES = {
    "inline": "inline",
    "defaults": "defaults",
    "sqlite": "inbox",
    "redis": "redis-durable",
    "postgres": "postgres",
}
_NAMES = {
    "floor": "floor: bare ASGI on uvicorn",
    "inline": "twilio-trigger, inline (no duplicate detection)",
    "defaults": "twilio-trigger at its defaults (duplicate detection, status order)",
    "sqlite": "defaults + SQLite inbox",
    "redis": "defaults + Redis inbox, durable (fsync)",
    "postgres": "defaults + PostgreSQL inbox",
}
_LINE = re.compile(
    r"steady: requests (\d+) duration_us (\d+) non2xx (\d+) errors (\d+) p50_us (\d+) "
    r"p99_us (\d+) p999_us (\d+) max_us (\d+) exhausted (\d)"
)
_SPARE = 1.5  # requests written per SID wanted: runs are timed, their counts are not
_PROBE_SPARE = 200_000  # and more for the first run of each row, timed before any pace
_PROBE = 3.0  # seconds of the first run, which sets the pace of the next


@dataclass
class Phase:
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass
class Feed:
    """The requests file, and how many of its requests the runs so far took."""

    path: Path
    lines: int
    taken: int = 0
    sent: int = 0  # requests answered, every one a distinct SID


@dataclass
class Row:
    key: str
    sids: int = 0
    fill: Phase | None = None
    steady: Phase | None = None
    rss_start: int = 0
    rss_filled: int = 0
    rss_end: int = 0
    gc: dict[str, dict[str, float]] = field(default_factory=dict)
    # Events the server's callback ran by the end of the fill and of the measured
    # half, and the seconds between the two counts.
    dispatched_filled: int = 0
    dispatched_end: int = 0
    dispatch_seconds: float = 0.0
    error: str | None = None

    @property
    def dispatch_rate(self) -> float:
        moved = self.dispatched_end - self.dispatched_filled
        return moved / self.dispatch_seconds if self.dispatch_seconds else 0.0

    @property
    def backlog(self) -> int:
        """Requests answered 200 whose event the callback had not run at the end."""
        return max(0, self.sids - self.dispatched_end)

    @property
    def rss_growth(self) -> float:
        return (self.rss_end - self.rss_filled) / self.rss_filled if self.rss_filled else 0.0

    @property
    def longest_pause_ms(self) -> float:
        return 1000 * max((g["longest_s"] for g in self.gc.values()), default=0.0)

    @property
    def collections(self) -> str:
        """Collections of each generation, and the longest pause of each (ms)."""
        return " / ".join(
            f"{int(self.gc.get(str(g), {}).get('count', 0))} "
            f"({1000 * self.gc.get(str(g), {}).get('longest_s', 0.0):.1f})"
            for g in range(3)
        )


# -- the requests ------------------------------------------------------------------
def _lines(job: tuple[str, str, int, int]) -> list[str]:
    url, token, first, count = job
    lines = []
    for _ in range(first, first + count):
        params = sms_status_params("delivered", sid=f"SM{uuid.uuid4().hex}")
        pairs = list(params.items())
        signature = compute_signature(url, pairs, token)
        lines.append(f"{signature} {urlencode(pairs)}\n")
    return lines


def write_requests(path: Path, port: int, token: str, count: int) -> None:
    """*count* signed requests, each a distinct SID, for the server at *port*."""
    url = f"http://{bench.HOST}:{port}{bench.PATH}"
    step = 20_000
    jobs = [(url, token, n, min(step, count - n)) for n in range(0, count, step)]
    with path.open("w", encoding="ascii") as out:
        out.write(f"{bench.HOST}:{port} {bench.PATH}\n")
        for job in jobs:  # about 40 µs each: a minute for 1.7 million
            out.writelines(_lines(job))


# -- one row -----------------------------------------------------------------------
def load(feed: Feed, port: int, seconds: float, args: argparse.Namespace, wrk: str) -> Phase:
    """One wrk run of *seconds*, sending the requests of *feed* not taken yet."""
    command = [
        "taskset", "-c", str(args.client_cpu), wrk, "-t1", f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s", "-s", str(STEADY_LUA),
        f"http://{bench.HOST}:{port}{bench.PATH}",
    ]  # fmt: skip
    hexes = uuid.uuid4().hex
    env = dict(
        os.environ, BENCH_DATA=str(feed.path), BENCH_SKIP=str(feed.taken),
        BENCH_NONCE=f"{hexes[:8]}-{hexes[8:12]}-4abc",
    )  # fmt: skip
    done = bench.run_bounded(command, env=env, timeout=seconds + 60)
    found = _LINE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise bench.BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    n = [int(value) for value in found.groups()]
    if n[8]:
        raise bench.BenchError(f"the {feed.lines:,} requests written ran out: raise _SPARE")
    # The requests still in flight when the run ended were taken too: never sent again.
    feed.taken += n[0] + args.connections
    feed.sent += n[0]
    return Phase(n[0], n[1] / 1e6, n[2], n[3], n[4] / 1e3, n[5] / 1e3, n[6] / 1e3, n[7] / 1e3)


def fill(feed: Feed, port: int, target: int, args: argparse.Namespace, wrk: str) -> Phase:
    """Runs until *target* requests were answered; the pace of the last one."""
    last = load(feed, port, _PROBE, args, wrk)
    while feed.sent < target:
        seconds = min(120.0, max(2.0, (target - feed.sent) / last.rate))
        last = load(feed, port, seconds, args, wrk)
    return last


def gc_report(path: Path, pid: int, timeout: float = 10.0) -> dict[str, dict[str, float]]:
    """The collector's pauses the server counted since the last report (SIGUSR1), by
    generation, and (under ``"dispatched"``) the events its callback ran since its start."""
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise bench.BenchError("the server did not report its collector's pauses")
        time.sleep(0.05)
    document: dict[str, dict[str, float]] = json.loads(path.read_text())
    return document


@contextlib.contextmanager
def durable_redis(tmp: Path) -> Iterator[str]:
    """A Redis of the run's own that fsyncs every write to its append-only file."""
    server = shutil.which("redis-server")
    if server is None:
        raise bench.BenchError("redis-server is not installed")
    port = bench.free_port()
    command = [
        server, "--port", str(port), "--bind", bench.HOST, "--dir", str(tmp),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
    ]  # fmt: skip
    with bench.started(command, env=dict(os.environ), cwd=tmp, log=tmp / "redis.log") as process:
        bench.wait_for_port(port, process, tmp / "redis.log")
        yield f"redis://{bench.HOST}:{port}/0"


def measure(key: str, port: int, path: Path, args: argparse.Namespace, wrk: str) -> Row:
    row = Row(key)
    feed = Feed(path, round(args.sids * _SPARE) + _PROBE_SPARE)
    token = args.token
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"tt-steady-{key}-")))
        env = dict(os.environ, BENCH_PORT=str(port), BENCH_AUTH_TOKEN=token,
                   BENCH_TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
        env.pop("TWILIO_AUTH_TOKEN", None)
        gc_log = tmp / "gc.json"
        if key == "floor":
            server = bench.SERVERS["a"]
            command = server.command(port)
        else:
            server = bench.SERVERS["b"]
            command = server.command(port)
            env.update(BENCH_MODE=_MODES[key], BENCH_GC_LOG=str(gc_log))
            if args.gc_freeze:
                env["BENCH_GC_FREEZE"] = "1"
            if key == "redis":
                env["BENCH_REDIS_URL"] = stack.enter_context(durable_redis(tmp))
            if key == "postgres":
                env["BENCH_POSTGRES_DATABASE"] = bench.postgres_database()
        command = ["taskset", "-c", str(args.server_cpu), *command]
        log = tmp / "server.log"
        with bench.started(command, env=env, cwd=bench.SERVERS_DIR, log=log) as process:
            bench.wait_for_port(port, process, log)
            bench.check_server(server, port, token)
            row.rss_start = bench.rss_bytes(process.pid)[0]
            half = args.sids // 2
            row.fill = fill(feed, port, half, args, wrk)
            if key != "floor":
                # The fill's pauses: not counted.
                filled = gc_report(gc_log, process.pid)
                counted_at = time.monotonic()
                row.dispatched_filled = int(filled["dispatched"]["count"])
            row.rss_filled = bench.rss_bytes(process.pid)[0]
            # One run, measured, timed at the fill's last pace to take the rest.
            seconds = 1.1 * (args.sids - feed.sent) / row.fill.rate
            row.steady = load(feed, port, seconds, args, wrk)
            row.rss_end = bench.rss_bytes(process.pid)[0]
            row.sids = feed.sent
            if key != "floor":
                row.gc = gc_report(gc_log, process.pid)
                row.dispatch_seconds = time.monotonic() - counted_at
                row.dispatched_end = int(row.gc.pop("dispatched")["count"])
    return row


# -- the report -----------------------------------------------------------------------
def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _mib(value: int) -> str:
    return f"{value / 2**20:.1f} MiB"


def report(rows: list[Row], args: argparse.Namespace, seconds: float) -> str:
    floor = next((r for r in rows if r.key == "floor" and r.steady), None)
    lines = [
        BEGIN,
        "## Steady state (a million distinct SIDs)",
        "",
        f"Written by `scripts/bench --steady` in {seconds:.0f} s on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; rerun with that command (see "
        f"[README.md](README.md)).  Server pinned to CPU {args.server_cpu}, "
        f"`wrk -t1 -c{args.connections}` (`steady.lua`) to CPU {args.client_cpu}; "
        f"{args.sids:,} distinct signed `delivered` callbacks: the first half fills the "
        f"stores (100,000 entries each), the second half is measured.  Ratios are to the "
        f"floor's figures of this run; *RSS growth* is over the measured half; the GC "
        f"figures are the server's garbage collector's during it; *dispatched/s* is the "
        f"events its callback ran during it, a second (with an inbox, its workers run "
        f"them after the 200, on the same core), and *backlog* the requests answered "
        f"whose event had not run by the end"
        f"{' (`gc.freeze()` at start)' if args.gc_freeze else ''}.",
        "",
        "| row | server | SIDs | req/s | ÷ floor | dispatched/s | backlog | p50 | p99 | "
        "p99.9 | p99 ÷ floor's | p99.9 ÷ floor's | RSS start → filled → end | RSS growth | "
        "longest GC pause | collections of generation 0 / 1 / 2 (longest, ms) | non-2xx |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|",
    ]
    for row in rows:
        if row.error or row.steady is None:
            lines.append(f"| {row.key} | {_NAMES[row.key]} | failed: {row.error} |" + " |" * 14)
            continue
        s = row.steady
        ratio = f"{s.rate / floor.steady.rate:.2f}" if floor and floor.steady else "-"
        p99 = f"{s.p99_ms / floor.steady.p99_ms:.1f}x" if floor and floor.steady else "-"
        p999 = f"{s.p999_ms / floor.steady.p999_ms:.1f}x" if floor and floor.steady else "-"
        pause = "-" if row.key == "floor" else f"{row.longest_pause_ms:.1f} ms"
        full = "-" if row.key == "floor" else row.collections
        dispatch = "-" if row.key == "floor" else f"{row.dispatch_rate:,.0f}"
        backlog = "-" if row.key == "floor" else f"{row.backlog:,}"
        lines.append(
            f"| {row.key} | {_NAMES[row.key]} | {row.sids:,} | {s.rate:,.0f} | {ratio} | "
            f"{dispatch} | {backlog} | {_ms(s.p50_ms)} | "
            f"{_ms(s.p99_ms)} | {_ms(s.p999_ms)} | {p99} | {p999} | {_mib(row.rss_start)} → "
            f"{_mib(row.rss_filled)} → {_mib(row.rss_end)} | {100 * row.rss_growth:+.1f}% | "
            f"{pause} | {full} | {s.non_2xx} |"
        )
    lines += ["", *targets(rows, floor), END]
    return "\n".join(lines) + "\n"


def targets(rows: list[Row], floor: Row | None) -> list[str]:
    if floor is None or floor.steady is None:
        return ["No floor was measured: no target can be judged."]
    base = floor.steady
    found = {row.key: (row, row.steady) for row in rows if row.steady is not None}
    lines = ["| row | target | measured | result |", "|---|---|--:|---|"]

    def judge(key: str, text: str, measured: float, goal: float, most: bool = False) -> None:
        if key in found:
            ok = measured <= goal if most else measured >= goal
            lines.append(f"| {key} | {text} | {measured:.2f} | {'pass' if ok else '**FAIL**'} |")

    for key, goal in (("defaults", 0.45), ("sqlite", 0.30), ("redis", 0.20), ("postgres", 0.20)):
        if key in found:
            judge(key, f"req/s ≥ {goal:.2f} x floor", found[key][1].rate / base.rate, goal)
    if "defaults" in found:
        row, steady = found["defaults"]
        judge("defaults", "p99 ≤ 3 x floor's p99", steady.p99_ms / base.p99_ms, 3.0, most=True)
        judge("defaults", "RSS growth < 5% over the second half", row.rss_growth, 0.05, most=True)
    return lines


def write(text: str, out: Path) -> None:
    """Replace the steady-state section of *out* (or add it at its end)."""
    before = out.read_text(encoding="utf-8") if out.exists() else ""
    if BEGIN in before and END in before:
        head, _, rest = before.partition(BEGIN)
        _, _, tail = rest.partition(END)
        updated = head + text.rstrip("\n") + tail
    else:
        updated = before.rstrip("\n") + ("\n\n" if before else "") + text
    out.write_text(updated, encoding="utf-8")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(ROWS), help="rows: " + ",".join(ROWS))
    parser.add_argument("--sids", type=int, default=1_000_000, help="distinct SIDs in all")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() in the servers")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.rows = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}: choose among {', '.join(ROWS)}")
    if args.sids < 2_000:
        parser.error("--sids: at least 2,000")
    args.token = uuid.uuid4().hex
    return args


def main() -> int:
    args = parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("steady.py: wrk is not installed (scripts/bench installs it)")
    started_at = time.monotonic()
    port = bench.free_port()  # the same for every row: the requests are signed for it
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tt-steady-") as folder:
        path = Path(folder) / "requests.txt"
        lines = round(args.sids * _SPARE) + _PROBE_SPARE
        print(f"steady.py: writing {lines:,} signed requests", flush=True)
        write_requests(path, port, args.token, lines)
        for key in [k for k in ROWS if k in args.rows]:
            print(f"steady.py: {key}: {_NAMES[key]}", flush=True)
            try:
                row = measure(key, port, path, args, wrk)
            except bench.BenchError as error:
                row = Row(key, error=str(error)[:300])
            rows.append(row)
            if row.steady:
                told = f"{row.steady.rate:,.0f} req/s, p99 {row.steady.p99_ms:.2f} ms"
                print(f"steady.py: {key}: {told}, GC {row.longest_pause_ms:.1f} ms", flush=True)
            else:
                print(f"steady.py: {key}: failed: {row.error}", flush=True)
    text = report(rows, args, time.monotonic() - started_at)
    write(text, args.out)
    print(text)
    return 0 if all(row.steady for row in rows) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, bench._terminate)
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # its servers are stopped on the way out
        sys.exit("interrupted")
