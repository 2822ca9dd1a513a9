"""Load benchmark of twilio-trigger against a bare-ASGI floor and a Flask peer.

Each server is pinned to one core (``taskset -c 0``) and loaded by ``wrk`` pinned
to the other (``taskset -c 1 wrk -t1 -c32 --latency``) with signed Twilio SMS
status callbacks, every one a distinct MessageSid and I-Twilio-Idempotency-Token:

  a  floor: a bare ASGI app on uvicorn (uvloop, httptools) that reads the body, 200
  b  twilio-trigger, inline, signatures verified, a no-op ``async on_delivered``
  c  b with duplicate detection (``deduplicate=True``)
  d  b with the durable SQLite inbox (``inbox="sqlite:///..."``)
  e  Flask on gunicorn (one sync worker) validating with twilio's RequestValidator
  f  b with the Redis inbox (Redis on 127.0.0.1:6379; its CPU counted as the server's)
  g  b with the PostgreSQL inbox (on 127.0.0.1:5432, in a database of its own, created
     and dropped; the CPU of the backends serving that database counted as the server's)

Each is measured ``--runs`` times after a warm-up; medians are reported with the
ratio to the floor of the same run, the server's RSS and every non-2xx answer or
socket error.  Then the pure core is micro-benchmarked (``core_micro.py``).  The
results and the machine's description go to ``--out`` (benchmarks/RESULTS.md).

Only 127.0.0.1 is ever contacted; every load run is bounded in time; every process
started here runs in its own process group and is stopped by it, also on errors.
Use ``scripts/bench`` (it sets up the environment and wrk), e.g.
``scripts/bench --only a,b,e --duration 5``.
"""

# ruff: noqa: S603, S607

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from twilio_trigger.testing import sign, sms_status_params

if TYPE_CHECKING:
    import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVERS_DIR = HERE / "servers"
POST_LUA = HERE / "post.lua"
HOST = "127.0.0.1"  # the only address this script ever talks to
PATH = "/"
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
START_TIMEOUT = 30.0


class BenchError(Exception):
    """A server could not be measured; the message says why."""


# -- servers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    key: str
    name: str
    verifies: bool  # answers 403 to a bad signature

    def command(self, port: int) -> list[str]:
        py = sys.executable
        if self.key == "a":
            return [
                py, "-m", "uvicorn", "floor:app", "--host", HOST, "--port", str(port),
                "--no-access-log", "--loop", "uvloop", "--http", "httptools",
                "--lifespan", "off", "--log-level", "warning",
            ]  # fmt: skip
        if self.key in ("b", "c", "d", "f", "g"):
            return [py, str(SERVERS_DIR / "trigger.py")]
        if self.key == "e":
            return [
                py, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b", f"{HOST}:{port}",
                "--log-level", "warning", "flask_peer:app",
            ]  # fmt: skip
        raise AssertionError(self.key)

    def environment(self, port: int, token: str, tmpdir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            BENCH_PORT=str(port),
            BENCH_AUTH_TOKEN=token,
            BENCH_TMPDIR=str(tmpdir),
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.pop("TWILIO_AUTH_TOKEN", None)
        mode = {"b": "inline", "c": "dedup", "d": "inbox", "f": "redis", "g": "postgres"}.get(
            self.key
        )
        if mode:
            env["BENCH_MODE"] = mode
        if self.key == "g":
            env["BENCH_POSTGRES_DATABASE"] = postgres_database()
            env.pop("BENCH_POSTGRES_URL", None)
        return env


SERVERS = {
    s.key: s
    for s in (
        Server("a", "floor: bare ASGI on uvicorn", verifies=False),
        Server("b", "twilio-trigger, inline", verifies=True),
        Server("c", "twilio-trigger + duplicate detection", verifies=True),
        Server("d", "twilio-trigger + SQLite inbox", verifies=True),
        Server("e", "peer: Flask on gunicorn + RequestValidator", verifies=True),
        Server(
            "f",
            "twilio-trigger + Redis inbox (Redis's CPU counted as the server's)",
            verifies=True,
        ),
        Server(
            "g",
            "twilio-trigger + PostgreSQL inbox (its backends' CPU counted as the server's)",
            verifies=True,
        ),
    )
}


def redis_pid() -> int | None:
    """The PID of the Redis on 127.0.0.1:6379 (the Redis inbox's), from its INFO."""
    try:
        with socket.create_connection((HOST, 6379), timeout=2) as connection:
            connection.sendall(b"INFO server\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    for line in reply.decode("latin-1").splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


POSTGRES = "postgresql://postgres@127.0.0.1:5432/"  # the PostgreSQL inbox's (g), trust auth


def postgres_database() -> str:
    """The database the PostgreSQL row's server creates, uses, and drops at exit."""
    return f"tt_bench_{os.getpid()}"


def _postgres_admin() -> psycopg.Connection[tuple[Any, ...]]:
    try:
        import psycopg
    except ImportError:
        raise BenchError("the PostgreSQL row needs psycopg (the bench extra has it)") from None
    try:
        return psycopg.connect(POSTGRES + "postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split())
        raise BenchError(
            f"the PostgreSQL inbox needs a PostgreSQL on {HOST}:5432: {reason}"
        ) from None


def drop_postgres_database() -> None:
    """Drop the row's database if its server could not (it was killed): never left behind."""
    name = postgres_database()
    try:
        with _postgres_admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as error:
        print(f"WARNING: could not drop database {name}: {error}", file=sys.stderr, flush=True)


def postgres_about() -> str:
    """The PostgreSQL the row ran on, and what a commit (a 200) waits for."""
    names = ["server_version", "synchronous_commit", "fsync", "wal_sync_method", "autovacuum"]
    try:
        with _postgres_admin() as connection:
            rows = connection.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (names,)
            ).fetchall()
    except BenchError as error:
        return str(error)
    found = {str(name): str(setting) for name, setting in rows}
    return f"{HOST}:5432, " + ", ".join(f"{name}={found.get(name, '?')}" for name in names)


class PostgresBackends:
    """The PostgreSQL processes serving one database's connections, and their CPU time.

    Backends are PostgreSQL's processes, one per connection: those of the listener's
    pool and its LISTEN connection, found in ``pg_stat_activity`` by the database's
    name, through a connection to another database (``postgres``: it is not counted).
    The cluster's shared processes (walwriter, checkpointer, background writer) are
    not counted: they serve every database, and show as *other load*.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self._connection = _postgres_admin()

    def pids(self) -> list[int]:
        rows = self._connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
        ).fetchall()
        return [int(row[0]) for row in rows]

    def snapshot(self) -> dict[int, float]:
        """CPU seconds used so far by each backend of the database."""
        found = {}
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                found[pid] = own_cpu_seconds(pid)
        return found

    def close(self) -> None:
        self._connection.close()


# -- processes: each in its own group, always stopped by that group ----------------


def stop_group(process: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group *process* leads, SIGKILL it after *grace* seconds."""
    pgid = process.pid  # start_new_session=True: the group's id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(max(0.0, deadline - time.monotonic()))
    # The leader may be gone while others of its group (a gunicorn worker) live on.
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)
    if process.poll() is None or _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def started(
    command: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_group(process)


def run_bounded(
    command: list[str], *, env: dict[str, str] | None = None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run *command* in its own process group; kill the group after *timeout* seconds."""
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{shlex.join(command)} did not finish in {timeout:.0f} s") from None
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(
        command, process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server exited with status {process.returncode}: {tail(log)}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing listens on {HOST}:{port} after {START_TIMEOUT:.0f} s: {tail(log)}")


def tail(log: Path, lines: int = 6) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def family(pid: int) -> list[int]:
    """*pid* and all its descendants (a gunicorn master and its worker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_bytes(pid: int) -> tuple[int, int]:
    """VmRSS of *pid* and all its descendants, and how many processes that is."""
    total = count = 0
    for member in family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    count += 1
    return total, count


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by *pid* and all its descendants."""
    total = 0
    for member in family(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def own_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by *pid* alone; OSError once it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU: (ticks spent running tasks: user, nice, system; all ticks)."""
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
            result[int(name[3:])] = (ticks[0] + ticks[1] + ticks[2], sum(ticks))
    return result


def cpu_busy(seconds: float = 1.0) -> dict[int, float]:
    """How busy each CPU is running tasks, over *seconds*, as a fraction."""
    before = cpu_ticks()
    time.sleep(seconds)
    after = cpu_ticks()
    busy = {}
    for cpu, (running, total) in after.items():
        elapsed = total - before[cpu][1]
        busy[cpu] = (running - before[cpu][0]) / elapsed if elapsed else 0.0
    return busy


def children_cpu_seconds() -> float:
    """CPU time of this script's reaped children (wrk, once a load run is over)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the requests -----------------------------------------------------------------


def signed_request(url: str, token: str) -> tuple[str, str]:
    """A delivered status callback with a fresh MessageSid: (signature, form body)."""
    pairs = list(sms_status_params("delivered").items())
    return sign(url, pairs, token), urlencode(pairs)


def bodies_for(requests_per_second: float, args: argparse.Namespace) -> int:
    """Distinct bodies enough for one run (or the warm-up) at *requests_per_second*,
    the floor's rate: no server here goes faster than the floor."""
    seconds: float = max(args.duration, args.warmup)
    return max(1000, math.ceil(requests_per_second * seconds * 1.25))


def write_requests(path: Path, port: int, token: str, count: int) -> int:
    """The file post.lua reads: ``host:port path``, then ``signature body`` lines."""
    url = f"http://{HOST}:{port}{PATH}"
    size = 0
    with path.open("w", encoding="ascii") as out:
        out.write(f"{HOST}:{port} {PATH}\n")
        for _ in range(count):
            signature, body = signed_request(url, token)
            out.write(f"{signature} {body}\n")
            size = len(body)
    return size


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


def post_once(port: int, signature: str, body: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://{HOST}:{port}{PATH}",
        data=body.encode("ascii"),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        },
    )
    try:
        with _NO_PROXY.open(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError as error:
        raise BenchError(f"the check request failed: {error}") from None


def check_server(server: Server, port: int, token: str) -> None:
    """One valid request must get 200; a forged one 403 where signatures are verified."""
    url = f"http://{HOST}:{port}{PATH}"
    signature, body = signed_request(url, token)
    status, answer = post_once(port, signature, body)
    if status != 200:
        raise BenchError(
            f"a valid signed request got {status} {answer[:200]!r}, not 200: "
            f"a benchmark of those answers would be worthless"
        )
    if server.verifies:
        forged, body = signed_request(url, token + "x")
        status, answer = post_once(port, forged, body)
        if status != 403:
            raise BenchError(
                f"a request signed with another token got {status}, not 403: "
                f"is signature verification on?"
            )


# -- wrk --------------------------------------------------------------------------


@dataclass
class LoadRun:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    server_cpu: float = 0.0  # the server's CPU time over the run's length (1.0: one core)
    other_cpu: float = 0.0  # CPU time of everything else but wrk, in cores
    companions_lost: int = 0  # companion processes gone during the run: CPU not counted


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise BenchError(f"cannot read the latency {text!r} in wrk's output")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse_wrk(output: str) -> LoadRun:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"no {pattern!r} in wrk's output:\n{output}")
        return match

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return LoadRun(
        requests_per_second=float(find(r"^Requests/sec:\s+([\d.]+)")[1]),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)")[1]),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)")[1]),
        requests=int(find(r"^\s+(\d+) requests in")[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def load(
    wrk: str,
    port: int,
    data: Path,
    *,
    server_pid: int,
    companions: Callable[[], dict[int, float]] | None = None,
    seconds: float,
    connections: int,
    server_cpu: int,
    client_cpu: int,
) -> LoadRun:
    command = [
        "taskset", "-c", str(client_cpu), wrk, "-t1", f"-c{connections}",
        f"-d{seconds:g}s", "--latency", "-s", str(POST_LUA), f"http://{HOST}:{port}{PATH}",
    ]  # fmt: skip
    hexes = uuid.uuid4().hex  # a new token prefix for every run: no token repeats
    nonce = f"{hexes[:8]}-{hexes[8:12]}-4{hexes[13:16]}"
    env = dict(os.environ, BENCH_DATA=str(data), BENCH_NONCE=nonce)

    # The server's CPU time, and its companions' (Redis for the Redis inbox, the
    # backends for the PostgreSQL inbox), each by its pid: a companion that starts
    # during the run counts whole, one that ends during it is lost (and counted).
    before = companions() if companions else {}
    ticks, children, server = cpu_ticks(), children_cpu_seconds(), cpu_seconds(server_pid)
    started_at = time.monotonic()
    done = run_bounded(command, env=env, timeout=seconds + 30)
    elapsed = time.monotonic() - started_at
    server = cpu_seconds(server_pid) - server
    after = companions() if companions else {}
    server += sum(spent - before.get(pid, 0.0) for pid, spent in after.items())
    wrk_cpu = children_cpu_seconds() - children
    ticks_after = cpu_ticks()
    cpus = (server_cpu, client_cpu)
    running = sum(ticks_after[cpu][0] - ticks[cpu][0] for cpu in cpus) / _TICK
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    run = parse_wrk(done.stdout)
    run.server_cpu = server / seconds
    run.companions_lost = len(before.keys() - after.keys())
    # Whatever ran besides the server and wrk: other processes (and kernel threads).
    run.other_cpu = max(0.0, running - server - wrk_cpu) / elapsed
    return run


# -- one server -------------------------------------------------------------------


@dataclass
class Outcome:
    server: Server
    runs: list[LoadRun] = field(default_factory=list)
    warmup: LoadRun | None = None
    rss: int = 0
    processes: int = 0
    body_bytes: int = 0
    error: str | None = None
    discarded: list[LoadRun] = field(default_factory=list)  # disturbed, and repeated

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(run, attribute) for run in self.runs))

    @property
    def non_2xx(self) -> int:
        return sum(run.non_2xx for run in self.runs)

    @property
    def socket_errors(self) -> int:
        return sum(run.socket_errors for run in self.runs)

    @property
    def other_load(self) -> float:
        return max((run.other_cpu for run in self.runs), default=0.0)

    @property
    def clean(self) -> bool:
        return bool(self.runs) and self.error is None and not self.non_2xx + self.socket_errors


def measure(server: Server, args: argparse.Namespace, wrk: str, tmp: Path) -> Outcome:
    outcome = Outcome(server)
    workdir = tmp / server.key
    workdir.mkdir()
    port = free_port()
    token = secrets.token_hex(16)  # an auth token is 32 hex digits
    # Fresh SIDs for every load run, all written before the server starts.
    files = [workdir / f"requests-{i}.txt" for i in range(args.runs + 1)]
    try:
        _measure(server, args, wrk, outcome, files, workdir, port, token)
    finally:
        for path in files:  # about 11 MB each
            path.unlink(missing_ok=True)
    return outcome


def _measure(
    server: Server,
    args: argparse.Namespace,
    wrk: str,
    outcome: Outcome,
    files: list[Path],
    workdir: Path,
    port: int,
    token: str,
) -> None:
    for path in files:
        outcome.body_bytes = write_requests(path, port, token, args.bodies_per_run)
    log = workdir / "server.log"
    command = ["taskset", "-c", str(args.server_cpu), *server.command(port)]
    print(f"[{server.key}] {server.name}: {shlex.join(command)}", flush=True)
    with contextlib.ExitStack() as stack:
        if server.key == "g":
            # Dropped after the server stops, should it not have dropped it itself.
            stack.callback(drop_postgres_database)
        process = stack.enter_context(
            started(command, env=server.environment(port, token, workdir), cwd=SERVERS_DIR, log=log)
        )
        _load_server(server, args, wrk, outcome, files, workdir, port, token, process, log)


def _companions(
    server: Server, stack: contextlib.ExitStack
) -> Callable[[], dict[int, float]] | None:
    """What measures the CPU time of the processes that serve the server's inbox."""
    if server.key == "f":
        pid = redis_pid()
        if pid is None:
            raise BenchError("the Redis inbox needs a Redis on 127.0.0.1:6379")
        return lambda: {pid: cpu_seconds(pid)}
    if server.key == "g":
        backends = PostgresBackends(postgres_database())
        stack.callback(backends.close)
        if not backends.pids():
            raise BenchError(f"no PostgreSQL backend serves database {backends.database}")
        return backends.snapshot
    return None


def _load_server(
    server: Server,
    args: argparse.Namespace,
    wrk: str,
    outcome: Outcome,
    files: list[Path],
    workdir: Path,
    port: int,
    token: str,
    process: subprocess.Popen[bytes],
    log: Path,
) -> None:
    wait_for_port(port, process, log)
    check_server(server, port, token)
    with contextlib.ExitStack() as stack:
        common = {
            "server_pid": process.pid,
            "companions": _companions(server, stack),
            "connections": args.connections,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
        }
        outcome.warmup = load(wrk, port, files[0], seconds=args.warmup, **common)
        warm = outcome.warmup
        if warm.non_2xx + warm.socket_errors:
            print(
                f"[{server.key}]   warm-up: {warm.non_2xx} non-2xx, "
                f"{warm.socket_errors} socket errors in {warm.requests} requests",
                flush=True,
            )
        if warm.non_2xx + warm.socket_errors > warm.requests // 2:
            raise BenchError(
                f"warm-up: {warm.non_2xx} non-2xx answers and {warm.socket_errors} socket "
                f"errors in {warm.requests} requests; see {log}: {tail(log)}"
            )
        pending, retries, attempt = list(files[1:]), args.retries, 0
        while pending:
            attempt += 1
            run = load(wrk, port, pending.pop(0), seconds=args.duration, **common)
            disturbed = run.other_cpu > args.max_other_load
            flag = f"  non-2xx {run.non_2xx}" if run.non_2xx else ""
            flag += f"  socket errors {run.socket_errors}" if run.socket_errors else ""
            if run.companions_lost:
                flag += f"  ({run.companions_lost} inbox process(es) ended: CPU not counted)"
            if disturbed:
                flag += "  DISTURBED by other load" + (": repeated" if retries else "")
            print(
                f"[{server.key}]   run {attempt}: {run.requests_per_second:9,.0f} req/s  "
                f"p50 {run.p50_ms:7.3f} ms  p99 {run.p99_ms:7.3f} ms  "
                f"server CPU {run.server_cpu:4.0%}  other load {run.other_cpu:4.0%}{flag}",
                flush=True,
            )
            if disturbed and retries:
                retries -= 1
                outcome.discarded.append(run)
                extra = workdir / f"requests-{len(files)}.txt"  # fresh SIDs again
                files.append(extra)
                write_requests(extra, port, token, args.bodies_per_run)
                pending.append(extra)
            else:
                outcome.runs.append(run)
        if process.poll() is not None:
            raise BenchError(f"the server died during the load: {tail(log)}")
        outcome.rss, outcome.processes = rss_bytes(process.pid)


# -- the report -------------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(wrk: str) -> list[tuple[str, str]]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    info = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in lscpu.splitlines())
    }
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    done = run_bounded([wrk, "-v"], timeout=10)
    wrk_version = (done.stdout + done.stderr).strip().splitlines()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    cpu = info.get("Model name", platform.processor() or "?")
    if info.get("Hypervisor vendor"):
        cpu += f" (virtual machine, {info['Hypervisor vendor']})"
    return [
        ("CPU", cpu),
        ("cores", f"{os.cpu_count()} ({info.get('Thread(s) per core', '?')} thread(s) per core)"),
        ("memory", memory),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        (
            "servers",
            f"uvicorn {_version('uvicorn')}, uvloop {_version('uvloop')}, "
            f"httptools {_version('httptools')}; gunicorn {_version('gunicorn')}, "
            f"Flask {_version('flask')}, Werkzeug {_version('werkzeug')}",
        ),
        (
            "packages",
            f"twilio-trigger {_version('twilio-trigger')} (git {commit or '?'}), "
            f"twilio {_version('twilio')}",
        ),
        ("load generator", wrk_version[0] if wrk_version else wrk),
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]


def _mib(value: int) -> str:
    return f"{value / 1024 / 1024:.1f} MiB"


def results_table(outcomes: list[Outcome]) -> str:
    floor = next((o for o in outcomes if o.server.key == "a" and o.runs), None)
    rows = [
        "| | server | req/s (median) | req/s of each run | p50 | p99 | ratio to floor "
        "| server CPU | other load | RSS | non-2xx | socket errors |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for o in outcomes:
        if not o.runs:
            cells = f"| {o.server.key} | {o.server.name} | **not measured**: {o.error} "
            rows.append(cells + "| | | | | | | | | |")
            continue
        rps = o.median("requests_per_second")
        ratio = f"{rps / floor.median('requests_per_second'):.2f}" if floor else "-"
        each = ", ".join(f"{r.requests_per_second:,.0f}" for r in o.runs)
        if o.discarded:
            each += f" ({len(o.discarded)} disturbed run(s) repeated)"
        procs = f" ({o.processes} processes)" if o.processes > 1 else ""
        rows.append(
            f"| {o.server.key} | {o.server.name} | {rps:,.0f} | {each} "
            f"| {o.median('p50_ms'):.2f} ms | {o.median('p99_ms'):.2f} ms | {ratio} "
            f"| {o.median('server_cpu'):.0%} | {o.other_load:.0%} | {_mib(o.rss)}{procs} "
            f"| {o.non_2xx} "
            f"| {o.socket_errors} |"
        )
    return "\n".join(rows)


def postgres_note(outcomes: list[Outcome]) -> list[str]:
    """What the PostgreSQL row (g) measures, when it is in the report."""
    if not any(o.server.key == "g" for o in outcomes):
        return []
    return [
        "g: the PostgreSQL inbox on the machine's PostgreSQL (its settings under "
        "*Machine*), in a database of its own created for the run and dropped after it, "
        "the workers dispatching in the listener's process as for d and f.  A 200 waits "
        "for the commit of the event's insert, as the cluster's `synchronous_commit` says "
        "(`on`, PostgreSQL's default: flushed to the WAL on disk); events that arrive "
        "together share one insert and one commit.  *server CPU* adds the CPU time of "
        "the PostgreSQL backends serving that database (its connections, found in "
        "`pg_stat_activity`; "
        "`/proc/<pid>/stat`), not the cluster's shared processes (walwriter, checkpointer), "
        "which count as *other load*.  PostgreSQL is not pinned.",
        "",
    ]


def targets(outcomes: list[Outcome], max_other_load: float) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the issue's targets, as ratios to the floor."""
    by_key = {o.server.key: o for o in outcomes}
    floor = by_key.get("a")
    checks = [
        ("b", "requests_per_second", 0.5, "twilio-trigger inline: req/s ≥ 0.5 x floor"),
        ("c", "requests_per_second", 0.45, "with duplicate detection: req/s ≥ 0.45 x floor"),
        ("d", "requests_per_second", 0.3, "with the durable SQLite inbox: req/s ≥ 0.3 x floor"),
        ("b", "p99_ms", 3.0, "twilio-trigger inline: p99 ≤ 3 x floor's p99"),
    ]
    verdicts = []
    for key, attribute, limit, text in checks:
        subject = by_key.get(key)
        if floor is None or not floor.runs or subject is None or not subject.runs:
            missing = [k for k, o in (("a", floor), (key, subject)) if o is None or not o.runs]
            verdicts.append((text, "-", f"not measured ({', '.join(missing)})"))
            continue
        ratio = subject.median(attribute) / floor.median(attribute)
        if attribute == "p99_ms":
            met = ratio <= limit
            measured = (
                f"{ratio:.2f} x ({subject.median(attribute):.2f} ms vs "
                f"{floor.median(attribute):.2f} ms)"
            )
        else:
            met = ratio >= limit
            measured = f"{ratio:.2f}"
        verdict = "pass" if met else "**FAIL**"
        if not (floor.clean and subject.clean):
            verdict = "**invalid**: errors during the runs"
        elif max(floor.other_load, subject.other_load) > max_other_load:
            verdict += " (unreliable: other load during the runs)"
        verdicts.append((text, measured, verdict))
    return verdicts


def report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    micro: str | None,
    about: list[tuple[str, str]],
    elapsed: float,
) -> str:
    rerun = shlex.join(["scripts/bench", *sys.argv[1:]])
    body = next((o.body_bytes for o in outcomes if o.body_bytes), 0)
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{rerun}` in {elapsed:.0f} s; rerun with that command (see "
        "[README.md](README.md) for the options and how to read this).",
        "",
        "## Machine",
        "",
        *[f"- **{name}**: {value}" for name, value in about],
        "",
        "## Load test",
        "",
        f"Server pinned to CPU {args.server_cpu}, `wrk -t1 -c{args.connections} --latency` "
        f"pinned to CPU {args.client_cpu}; {args.warmup:g} s warm-up, then {args.runs} runs "
        f"of {args.duration:g} s per server, medians shown.  Each request is a signed SMS "
        f"status callback (`delivered`, {body} bytes) as Twilio sends it; "
        f"{args.bodies_per_run:,} distinct MessageSids per run (fresh for every run, more than "
        "a run sends: no event repeats, so every request is a new delivery), and a "
        "distinct `I-Twilio-Idempotency-Token` on every request.  *server CPU*: the "
        "server's CPU time over a run's length (near 100%: the server was the "
        "bottleneck).  *other load*: CPU time on the two CPUs of everything but the "
        "server and wrk, as a share of one core (highest of the runs); a run with more "
        f"than {args.max_other_load:.0%} is disturbed and repeated, {args.retries} times "
        "per server at most.  RSS: the server's (master and worker for gunicorn) after "
        "the runs.",
        "",
        results_table(outcomes),
        "",
        *postgres_note(outcomes),
        "## Targets (ratios to the floor of the same run)",
        "",
        "| target | measured | result |",
        "|---|--:|---|",
        *[f"| {t} | {m} | {v} |" for t, m, v in targets(outcomes, args.max_other_load)],
        "",
        "What bounds a missed target, from profiles: [PROFILE.md](PROFILE.md).",
        "",
        "## Pure core (micro-benchmark)",
        "",
        micro or "Not run (`--no-micro`).",
        "",
    ]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Servers: " + "; ".join(f"{s.key} = {s.name}" for s in SERVERS.values()),
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per server (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up (2)")
    parser.add_argument(
        "--only", default=",".join(SERVERS), help="servers to measure, e.g. a,b,e (all)"
    )
    parser.add_argument(
        "--bodies",
        type=int,
        default=0,
        help="distinct signed bodies per run (default: 1.25 x the floor's req/s x a run's "
        "seconds, so that no body repeats)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="the report")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmark")
    parser.add_argument("--server-cpu", type=int, default=0, help="the server's CPU (0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="wrk's CPU (1)")
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=0.05,
        help="a run during which other processes used more of the two CPUs than this "
        "(in cores) is disturbed, and repeated (0.05)",
    )
    parser.add_argument(
        "--retries", type=int, default=3, help="disturbed runs repeated per server, at most (3)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a measured target is not met"
    )
    args = parser.parse_args()
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SERVERS]
    if unknown or not keys:
        parser.error(f"--only takes letters among {','.join(SERVERS)}, got {args.only!r}")
    args.servers = [SERVERS[k] for k in SERVERS if k in keys]
    if args.runs < 1 or args.duration <= 0 or args.connections < 1 or args.bodies < 0:
        parser.error("--runs, --duration and --connections must be positive")
    # Until the floor says how fast this machine is: enough for a fast one.
    args.bodies_per_run = args.bodies or bodies_for(30_000.0, args)
    if args.retries < 0 or args.warmup < 1:
        parser.error("--retries cannot be negative, and --warmup is 1 s at least")
    if args.server_cpu == args.client_cpu:
        parser.error("the server and wrk need different CPUs")
    available = os.sched_getaffinity(0)
    for cpu in (args.server_cpu, args.client_cpu):
        if cpu not in available:
            parser.error(f"CPU {cpu} is not available (have {sorted(available)})")
    return args


def idleness(when: str, args: argparse.Namespace) -> str:
    """How busy the two CPUs are while nothing of ours runs; warns when not idle."""
    busy = cpu_busy(1.0)
    cpus = (args.server_cpu, args.client_cpu)
    text = f"{when} the runs, CPU busy " + ", ".join(
        f"{cpu}: {busy.get(cpu, 0.0):.0%}" for cpu in cpus
    )
    if any(busy.get(cpu, 0.0) > 0.1 for cpu in cpus):
        text += " (**the machine was not idle**: other processes compete for the CPUs)"
        print(f"WARNING: {text}", file=sys.stderr, flush=True)
    return text


def kept_steady_state(out: Path) -> str:
    """The steady-state section ``steady.py`` wrote in *out*, kept when the rest of
    the report is written anew ("" when there is none)."""
    begin, end = "<!-- steady-state -->", "<!-- /steady-state -->"
    with contextlib.suppress(OSError):
        before = out.read_text(encoding="utf-8")
        if begin in before and end in before:
            section = before[before.index(begin) : before.index(end) + len(end)]
            return "\n" + section + "\n"
    return ""


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: servers are stopped


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("run.py: wrk is not installed (scripts/bench installs it: apt-get install wrk)")
    if shutil.which("taskset") is None:
        sys.exit("run.py: taskset is not installed (util-linux)")
    began = time.monotonic()
    idle_before = idleness("before", args)
    tmp = Path(tempfile.mkdtemp(prefix="twilio-trigger-bench-"))
    outcomes: list[Outcome] = []
    keep_tmp = False
    try:
        for server in args.servers:
            try:
                outcomes.append(measure(server, args, wrk, tmp))
                if server.key == "a" and not args.bodies and outcomes[-1].runs:
                    # A request body sent twice would be a duplicate delivery (the
                    # listener's key is the event's identity): one per request.
                    args.bodies_per_run = bodies_for(
                        outcomes[-1].median("requests_per_second"), args
                    )
            except BenchError as error:
                keep_tmp = True
                print(f"[{server.key}] NOT MEASURED: {error}", file=sys.stderr, flush=True)
                outcomes.append(Outcome(server, error=str(error).replace("|", "/")))
        micro = None
        if not args.no_micro:
            print("[micro] the pure core, pinned to CPU", args.server_cpu, flush=True)
            command = ["taskset", "-c", str(args.server_cpu), sys.executable]
            try:
                done = run_bounded([*command, str(HERE / "core_micro.py"), "--json"], timeout=300)
            except BenchError as error:
                done = subprocess.CompletedProcess([], 1, "", str(error))
            if done.returncode != 0:
                micro = f"The micro-benchmark failed: `{done.stderr.strip()[-500:]}`"
                print(micro, file=sys.stderr, flush=True)
            else:
                sys.path.insert(0, str(HERE))
                from core_micro import markdown

                micro = markdown(json.loads(done.stdout))
        about = machine(wrk)
        if any(o.server.key == "g" for o in outcomes):
            about.append(("PostgreSQL (g)", postgres_about()))
        about.append(("other load", f"{idle_before}; {idleness('after', args)}"))
        text = report(args, outcomes, micro, about, time.monotonic() - began)
        args.out.write_text(text + kept_steady_state(args.out), encoding="utf-8")
    finally:
        if keep_tmp:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(text)
    print(f"written to {args.out} ({time.monotonic() - began:.0f} s)")
    failed = [o for o in outcomes if o.error]
    if failed:
        return 1
    verdicts = targets(outcomes, args.max_other_load)
    if args.strict and any("FAIL" in verdict for _, _, verdict in verdicts):
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # its servers are stopped on the way out
        sys.exit("interrupted")
