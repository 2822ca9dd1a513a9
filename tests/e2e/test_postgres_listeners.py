"""Listeners, workers and the inspector on a shared PostgreSQL inbox or store.

Real listeners on loopback (in this process, or ``twilio-trigger run`` and
``twilio-trigger worker`` processes loading a small module from a temporary
folder), signed requests, and the machine's PostgreSQL: each test works in a
schema of its own (``pg_schema``) of the run's database, dropped afterwards.

- two listeners on one inbox: a delivery sent to both is stored once and run once;
- two listeners on one store (inline): a copy at the other listener is a
  duplicate, and the order of a SID's statuses spans them;
- a worker process dispatches what a listener process stores, and a worker is
  woken by ``LISTEN``/``NOTIFY`` rather than by its poll;
- retries with backoff, then a dead letter; the inspector lists, shows and
  replays; the ``inbox`` commands read, replay and purge.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.postgres_support import pg_schema, postgres_database, scalar
from twilio_trigger._worker import WorkerPool

from ._processes import Process
from ._support import TOKEN, assert_empty_twiml, eventually, free_port, wait_until

pytestmark = pytest.mark.usefixtures("no_listener_options")


__all__ = ["pg_schema", "postgres_database"]  # the fixtures, imported for pytest to find

#: The command line, as installed beside this Python (``python -m twilio_trigger``
#: where it is not): what follows ``sys.executable``.
_SCRIPT = Path(sys.executable).with_name("twilio-trigger")
COMMAND = (str(_SCRIPT),) if _SCRIPT.exists() else ("-m", "twilio_trigger")
REPLAY = {"X-Inspector": "replay"}
WAIT = 20.0


# -- what the in-process listeners' callbacks record ----------------------------------------
@dataclass(frozen=True)
class Call:
    """One callback run, as the callback saw it."""

    listener: str
    callback: str
    sid: str | None
    previous_status: str | None
    stale: bool
    at: float


class Calls:
    """Every callback run of every listener of a test, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def all(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def of(self, sid: str) -> list[Call]:
        return [call for call in self.all() if call.sid == sid]

    def sids(self) -> list[str | None]:
        return [call.sid for call in self.all()]


class Recording(twilio.SmsStatusService):
    """Records its callbacks into *calls*; can take its time, or fail."""

    def __init__(self, name: str, calls: Calls, *, delay: float = 0.0) -> None:
        self.name = name
        self.calls = calls
        self.delay = delay
        self.failing: set[str] = set()  # SIDs it fails for; "*": every one

    async def _record(self, callback: str, event: twilio.SmsStatusChangeEvent) -> None:
        self.calls.add(
            Call(self.name, callback, event.sid, event.previous_status, event.stale, time.time())
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if "*" in self.failing or event.sid in self.failing:
            raise RuntimeError(f"carrier lookup exploded for {event.sid}")

    async def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        await self._record("on_sent", event)

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        await self._record("on_delivered", event)

    async def on_undelivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        await self._record("on_undelivered", event)


@contextlib.contextmanager
def listening(service: object, schema: str, **options: Any) -> Iterator[twilio.Listener]:
    """A listener on loopback with *service*, its tables in *schema*."""
    options.setdefault("callback_timeout", 5)
    listener = twilio.Listener(
        0, host="127.0.0.1", auth_tokens=[TOKEN], postgres_schema=schema, **options
    )
    listener.attach(service)
    with listener:
        yield listener


def deliver(url: str, params: dict[str, str], token: str | None = None) -> httpx.Response:
    """One signed delivery of *params*; the same *token* again is Twilio's retry of it."""
    return signed_post(
        url,
        params,
        TOKEN,
        headers={"I-Twilio-Idempotency-Token": token or str(uuid.uuid4())},
        timeout=30,
    )


def rows(url: str, query: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        return connection.execute(query, args).fetchall()


def entries_of(url: str, schema: str, sid: str) -> list[tuple[Any, ...]]:
    """(state, attempts, last_error) of every inbox entry of *sid*."""
    return rows(
        url,
        f'SELECT state, attempts, last_error FROM "{schema}".events WHERE sid = %s ORDER BY id',
        (sid,),
    )


def counts(url: str, schema: str) -> dict[str, int]:
    found = rows(url, f'SELECT state, count(*) FROM "{schema}".events GROUP BY state')
    return {state: int(number) for state, number in found}


# -- two listeners, one inbox ------------------------------------------------------------------
def test_a_delivery_sent_to_two_listeners_on_one_inbox_is_stored_and_run_once(
    postgres_database: str, pg_schema: str
) -> None:
    calls = Calls()
    a, b = Recording("A", calls, delay=0.05), Recording("B", calls, delay=0.05)
    deliveries = [sms_status_payload("delivered") for _ in range(12)]
    with (
        listening(a, pg_schema, inbox=postgres_database) as one,
        listening(b, pg_schema, inbox=postgres_database) as two,
    ):
        for params in deliveries:
            together = threading.Barrier(2)
            token = str(uuid.uuid4())  # Twilio's retry of one delivery, at both at once

            def post(
                url: str,
                params: dict[str, str] = params,
                token: str = token,
                together: threading.Barrier = together,
            ) -> int:
                together.wait()
                return deliver(url, params, token).status_code

            with ThreadPoolExecutor(2) as pool:
                assert list(pool.map(post, [one.url, two.url])) == [200, 200]
        # A copy once the first is done: a duplicate too, at either listener.
        assert deliver(two.url, deliveries[0]).status_code == 200
        assert deliver(one.url, deliveries[0]).status_code == 200

        def all_done() -> bool:
            return counts(postgres_database, pg_schema) == {"done": len(deliveries)}

        wait_until(all_done, "every entry done", WAIT)
    # Stopped: nothing runs any more, and each ran once.
    sids = [params["MessageSid"] for params in deliveries]
    assert sorted(calls.sids()) == sorted(sids), calls.all()  # type: ignore[type-var]
    for sid in sids:
        assert entries_of(postgres_database, pg_schema, sid) == [("done", 1, None)]


# -- two listeners, one store (inline) ------------------------------------------------------
def test_a_delivery_handled_by_one_listener_is_a_duplicate_at_the_other(
    postgres_database: str, pg_schema: str
) -> None:
    calls = Calls()
    a, b = Recording("A", calls), Recording("B", calls)
    params, token = sms_status_payload("delivered"), str(uuid.uuid4())
    with (
        listening(a, pg_schema, store=postgres_database) as one,
        listening(b, pg_schema, store=postgres_database) as two,
    ):
        assert_empty_twiml(deliver(one.url, params, token))
        assert_empty_twiml(deliver(two.url, params, token))
        assert_empty_twiml(deliver(two.url, params))  # another token: the same delivery
        assert_empty_twiml(deliver(one.url, params, token))
    assert [call.listener for call in calls.all()] == ["A"]


def test_one_delivery_at_both_listeners_at_once_runs_once(
    postgres_database: str, pg_schema: str
) -> None:
    calls = Calls()
    a, b = Recording("A", calls, delay=0.3), Recording("B", calls, delay=0.3)
    params, token = sms_status_payload("delivered"), str(uuid.uuid4())
    with (
        listening(a, pg_schema, store=postgres_database) as one,
        listening(b, pg_schema, store=postgres_database) as two,
    ):
        together = threading.Barrier(2)

        def post(url: str) -> httpx.Response:
            together.wait()
            return deliver(url, params, token)

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(post, [one.url, two.url]))
    for answer in answers:
        assert_empty_twiml(answer)  # the second copy waited for the first's outcome
    assert len(calls.all()) == 1, calls.all()


def test_a_delivery_that_failed_at_one_listener_runs_at_the_other(
    postgres_database: str, pg_schema: str
) -> None:
    calls = Calls()
    a, b = Recording("A", calls), Recording("B", calls)
    a.failing.add("*")
    params, token = sms_status_payload("delivered"), str(uuid.uuid4())
    with (
        listening(a, pg_schema, store=postgres_database) as one,
        listening(b, pg_schema, store=postgres_database) as two,
    ):
        failed = deliver(one.url, params, token)
        assert failed.status_code == 500, failed.text
        assert_empty_twiml(deliver(two.url, params, token))  # Twilio's retry, elsewhere
        assert_empty_twiml(deliver(one.url, params, token))  # and now a duplicate
    assert [(call.listener, call.previous_status, call.stale) for call in calls.all()] == [
        ("A", None, False),
        ("B", None, False),  # a repeat of the same status: still nothing before it
    ]


def test_status_order_spans_the_listeners(postgres_database: str, pg_schema: str) -> None:
    calls = Calls()
    a, b, c = Recording("A", calls), Recording("B", calls), Recording("C", calls)
    sid, skipped = f"SM{uuid.uuid4().hex}", f"SM{uuid.uuid4().hex}"
    with (
        listening(a, pg_schema, store=postgres_database) as one,
        listening(b, pg_schema, store=postgres_database) as two,
        listening(c, pg_schema, store=postgres_database, skip_stale=True) as three,
    ):
        assert_empty_twiml(deliver(one.url, sms_status_payload("delivered", sid=sid)))
        # Twilio's late "sent", after "delivered" at another listener: stale.
        assert_empty_twiml(deliver(two.url, sms_status_payload("sent", sid=sid)))
        assert_empty_twiml(deliver(one.url, sms_status_payload("delivered", sid=skipped)))
        assert_empty_twiml(deliver(three.url, sms_status_payload("sent", sid=skipped)))
    assert [
        (call.listener, call.callback, call.previous_status, call.stale) for call in calls.of(sid)
    ] == [
        ("A", "on_delivered", None, False),
        ("B", "on_sent", "delivered", True),
    ]
    # C skips stale events: its "sent" after A's "delivered" is acknowledged, not run.
    assert [(call.listener, call.callback) for call in calls.of(skipped)] == [("A", "on_delivered")]


# -- listeners that make the tables at the same moment ----------------------------------------
def advisory_waiters(url: str) -> int:
    found = scalar(
        url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    assert isinstance(found, int)
    return found


@contextlib.contextmanager
def migrations_held(url: str, schema: str) -> Iterator[None]:
    """The migration lock of *schema* held until the block ends, as by a listener
    that is making the tables; released without making any."""
    with psycopg.connect(url, autocommit=True) as connection, connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"twilio-trigger:{schema}",)
        )
        yield


@pytest.mark.parametrize("part", ["inbox", "store"])
def test_listeners_starting_together_on_a_new_schema_all_start(
    postgres_database: str, pg_schema: str, part: str
) -> None:
    # Both reach the migration lock while another holds it (a third listener
    # making the tables, here the test), then make the tables one after the other.
    # The one that waited must see the tables made (a bug: to_regclass() answered
    # from a catalog cache that the wait for the lock never refreshed, and it
    # failed with DuplicateTable: the inbox's listener did not start).
    calls = Calls()
    listeners = [
        twilio.Listener(
            0,
            host="127.0.0.1",
            auth_tokens=[TOKEN],
            postgres_schema=pg_schema,
            **{part: postgres_database},  # type: ignore[arg-type]
        )
        for _ in range(2)
    ]
    for name, listener in zip("AB", listeners, strict=True):
        listener.attach(Recording(name, calls))
    outcomes: list[object] = []

    def start_and_send(listener: twilio.Listener) -> object:
        try:
            listener.start()
        except RuntimeError as error:
            return error
        return deliver(listener.url, sms_status_payload("delivered")).status_code

    try:
        with ThreadPoolExecutor(2) as pool:
            with migrations_held(postgres_database, pg_schema):
                # The tables (of the inbox, or of the store) are made as the listener starts.
                started = [pool.submit(start_and_send, one) for one in listeners]
                wait_until(lambda: advisory_waiters(postgres_database) == 2, "both waiting")
            for future in started:
                outcomes.append(future.result(timeout=60))
    finally:
        for listener in listeners:
            listener.stop()
    assert outcomes == [200, 200]
    assert len(calls.all()) == 2


# -- processes: `twilio-trigger run` and `twilio-trigger worker` ------------------------------
#: The service module the processes load; ``OPTIONS`` are the Listener's arguments.
SERVICE = """
import asyncio
import os
import pathlib
import time

import twilio_trigger as twilio

OUT = pathlib.Path(__file__).with_name("dispatched.txt")
BLOCK = os.environ.get("TEST_BLOCK") == "1"

listener = twilio.Listener({options})


def note(line):
    with OUT.open("a") as out:
        out.write(line + "\\n")
        out.flush()


@listener.service
class Recorder(twilio.SmsStatusService):
    async def on_delivered(self, event):
        await asyncio.sleep(0.05)
        note(f"{{event.sid}} {{event.status}} {{os.getpid()}}")

    def on_sent(self, event):
        note(f"start {{event.sid}} {{os.getpid()}}")
        time.sleep(60 if BLOCK else 0.01)
        note(f"{{event.sid}} {{event.status}} {{os.getpid()}}")
"""


class Setup:
    """The folder, module and environment of one test; every process it started."""

    def __init__(self, folder: Path, url: str, schema: str) -> None:
        self.folder = folder
        self.url = url
        self.schema = schema
        self.output = folder / "dispatched.txt"
        self.processes: list[Process] = []
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TWILIO_TRIGGER_") and k != "TWILIO_AUTH_TOKEN"
        }
        env.update(
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_TRIGGER_INBOX=url,
            TWILIO_TRIGGER_POSTGRES_SCHEMA=schema,
        )
        self.env = env
        (folder / "mod.py").write_text(SERVICE.format(options=""))

    def start(self, name: str, *args: str, **extra: str) -> Process:
        """``twilio-trigger ARGS``, the command line installed beside this Python."""
        process = Process(self.folder, self.env, name, *COMMAND, *args, extra=extra, cli=False)
        self.processes.append(process)
        return process

    def serve(self, name: str, **extra: str) -> tuple[Process, str]:
        port = free_port()
        process = self.start(
            name, "run", "mod:listener", "--port", str(port), "--host", "127.0.0.1", **extra
        )
        process.wait_listening(port)
        return process, f"http://127.0.0.1:{port}/"

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *COMMAND, *args],
            cwd=self.folder,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def lines(self) -> list[list[str]]:
        if not self.output.exists():
            return []
        return [line.split() for line in self.output.read_text().splitlines() if line]

    def listening_backends(self) -> int:
        """Connections LISTENing on the inbox's channel (each process's one)."""
        found = scalar(
            self.url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = %s",
            (f'LISTEN "{self.schema}.inbox"',),
        )
        assert isinstance(found, int)
        return found


@pytest.fixture
def setup(tmp_path: Path, postgres_database: str, pg_schema: str) -> Iterator[Setup]:
    made = Setup(tmp_path, postgres_database, pg_schema)
    try:
        yield made
    finally:
        for process in made.processes:
            process.kill()


def test_a_worker_process_dispatches_what_a_listener_process_stores(setup: Setup) -> None:
    # The listener dispatches too, one callback at a time; the worker, four.
    listener, url = setup.serve("listener", TWILIO_TRIGGER_CONCURRENCY="1")
    worker = setup.start("worker", "worker", "mod:listener", TWILIO_TRIGGER_CONCURRENCY="4")
    worker.wait_working()
    assert "dispatching from postgresql://" in worker.log

    distinct = [sms_status_payload("delivered") for _ in range(60)]
    sends = [(params, str(uuid.uuid4())) for params in distinct]
    sends += sends[:10]  # Twilio's retries of ten of them

    def send(item: tuple[dict[str, str], str]) -> int:
        return deliver(url, *item).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(send, sends))
    assert collections.Counter(codes) == {200: 70}, listener.log

    sids = {params["MessageSid"] for params in distinct}

    def all_done() -> bool:
        return counts(setup.url, setup.schema) == {"done": 60}

    worker.wait_for(all_done, "every entry done", timeout=30)
    lines = setup.lines()
    per_sid = collections.Counter(line[0] for line in lines)
    assert set(per_sid) == sids
    assert all(n == 1 for n in per_sid.values()), per_sid.most_common(3)
    pids = collections.Counter(line[2] for line in lines)
    assert str(worker.pid) in pids, f"the worker dispatched nothing: {pids}\n{worker.log}"
    assert set(pids) <= {str(listener.pid), str(worker.pid)}

    for process in (listener, worker):
        assert process.terminate() == 0, process.log
        assert "Traceback" not in process.log, process.log


def test_a_worker_is_woken_by_notify_not_by_its_poll(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event stored by listener A runs in listener B, whose workers poll once an hour.

    A (a process) dispatches one callback at a time, and that one is blocked: A
    stores, but cannot run what it stores.  B (in this process) polls the inbox
    every hour: only the notification of A's insert can wake it in time.
    """
    listener, url = setup.serve("listener", TWILIO_TRIGGER_CONCURRENCY="1", TEST_BLOCK="1")
    wait_until(lambda: setup.listening_backends() == 1, "A's LISTEN", WAIT)
    blocker = sms_status_payload("sent")
    assert deliver(url, blocker).status_code == 200
    listener.wait_for(
        lambda: ["start", blocker["MessageSid"], str(listener.pid)] in setup.lines(),
        "A to run the blocking callback",
    )

    defaults = WorkerPool.__init__.__kwdefaults__
    assert defaults is not None
    assert defaults["poll_interval"] == 0.5
    monkeypatch.setitem(defaults, "poll_interval", 3600.0)
    calls = Calls()
    with listening(Recording("B", calls), setup.schema, inbox=setup.url):
        wait_until(lambda: setup.listening_backends() == 2, "B's LISTEN", WAIT)
        for _ in range(3):
            params = sms_status_payload("delivered")
            sid = params["MessageSid"]
            assert deliver(url, params).status_code == 200

            def dispatched(sid: str = sid) -> bool:
                return sid in calls.sids()

            def done(sid: str = sid) -> bool:
                return entries_of(setup.url, setup.schema, sid) == [("done", 1, None)]

            wait_until(dispatched, f"B to dispatch {sid}", WAIT)
            wait_until(done, "its entry done")
    assert [call.listener for call in calls.all()] == ["B"] * 3
    # A ran nothing but its blocked callback.
    assert setup.lines() == [["start", blocker["MessageSid"], str(listener.pid)]]


# -- retries, dead letters, the inspector and the inbox commands ----------------------------
def test_retries_back_off_then_the_event_is_a_dead_letter(
    postgres_database: str, pg_schema: str
) -> None:
    calls = Calls()
    service = Recording("A", calls)
    service.failing.add("*")
    params = sms_status_payload("undelivered")
    sid = params["MessageSid"]
    backoff = 0.2
    with listening(
        service, pg_schema, inbox=postgres_database, max_attempts=4, retry_backoff=backoff
    ) as listener:
        assert deliver(listener.url, params).status_code == 200
        wait_until(
            lambda: [e[:2] for e in entries_of(postgres_database, pg_schema, sid)] == [("dead", 4)],
            "a dead letter",
            WAIT,
        )
        # Dead: not dispatched again, even when Twilio sends it once more.
        assert deliver(listener.url, params).status_code == 200
    times = [call.at for call in calls.of(sid)]
    assert len(times) == 4, calls.all()
    # Each wait at least half the backoff of its attempt (0.2 s, then 0.4, 0.8:
    # half of it fixed, half random).
    for attempt, (earlier, later) in enumerate(itertools.pairwise(times), start=1):
        assert later - earlier >= 0.5 * backoff * 2 ** (attempt - 1) * 0.95, (attempt, times)
    ((_, _, error),) = entries_of(postgres_database, pg_schema, sid)
    assert "Traceback (most recent call last):" in error
    assert f"RuntimeError: carrier lookup exploded for {sid}" in error


@contextlib.contextmanager
def inspected(
    service: object, url: str, schema: str, **options: Any
) -> Iterator[tuple[twilio.Listener, httpx.Client]]:
    """A listener with a PostgreSQL inbox and the inspector, and a client for the inspector."""
    with listening(
        service,
        schema,
        inbox=url,
        inspector=True,
        inspector_port=0,
        max_attempts=2,
        retry_backoff=0.02,
        **options,
    ) as listener:
        assert listener.inspector_url is not None
        with httpx.Client(base_url=listener.inspector_url, timeout=10, trust_env=False) as http:
            yield listener, http


def inspector_rows(http: httpx.Client) -> dict[str, dict[str, Any]]:
    answer = http.get("/api/events", params={"limit": "500"})
    assert answer.status_code == 200, answer.text
    return {row["sid"]: row for row in answer.json()["events"]}


def wait_outcomes(http: httpx.Client, expected: dict[str, str]) -> dict[str, dict[str, Any]]:
    seen: list[dict[str, dict[str, Any]]] = []

    def reached() -> bool:
        seen.append(inspector_rows(http))
        return all(
            seen[-1].get(sid, {}).get("outcome") == outcome
            and seen[-1][sid]["duration_ms"] is not None
            for sid, outcome in expected.items()
        )

    assert eventually(reached, WAIT, 0.02), (expected, seen[-1] if seen else None)
    return seen[-1]


def test_the_inspector_lists_shows_and_replays_postgres_inbox_entries(
    postgres_database: str, pg_schema: str
) -> None:
    calls = Calls()
    service = Recording("A", calls)
    handled, doomed = sms_status_payload("sent"), sms_status_payload("delivered")
    good, dead = handled["MessageSid"], doomed["MessageSid"]
    service.failing.add(dead)
    with inspected(service, postgres_database, pg_schema) as (listener, http):
        assert deliver(listener.url, handled).status_code == 200
        assert deliver(listener.url, doomed).status_code == 200
        rows = wait_outcomes(http, {good: "handled", dead: "dead_letter"})
        assert list(rows) == [dead, good]  # newest first
        assert rows[good]["callback"] == "Recording.on_sent"
        assert rows[good]["attempts"] == 1
        assert rows[dead]["attempts"] == 2
        assert rows[dead]["error"] == f"RuntimeError: carrier lookup exploded for {dead}"
        assert rows[dead]["id"] > rows[good]["id"]

        page = http.get(f"/events/{rows[dead]['id']}")
        assert page.status_code == 200
        assert (
            f'<h1>sms <a class="sid" href="/sids/{dead}">{dead}</a> (delivered)</h1>' in page.text
        )
        assert "Traceback (most recent call last):" in page.text
        assert f"<tr><th>MessageSid</th><td><code>{dead}</code></td></tr>" in page.text
        assert http.get("/events/987654321").status_code == 404

        service.failing.clear()
        replayed = http.post("/api/replay", json={"ids": [rows[dead]["id"]]}, headers=REPLAY)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {"replayed": 1}
        rows = wait_outcomes(http, {dead: "handled"})
        assert rows[dead]["attempts"] == 1  # fresh attempts
        assert rows[dead]["error"] is None
        assert http.post("/api/replay", json={}, headers=REPLAY).json() == {"replayed": 0}
    assert [call.sid for call in calls.all()] == [good, dead, dead, dead]
    # Done, with fresh attempts; the last error is kept, as every inbox keeps it.
    ((state, attempts, error),) = entries_of(postgres_database, pg_schema, dead)
    assert (state, attempts) == ("done", 1)
    assert f"RuntimeError: carrier lookup exploded for {dead}" in error


def test_the_inbox_commands_read_replay_and_purge_a_postgres_inbox(setup: Setup) -> None:
    made = setup.cli("inbox", "migrate", "--inbox", setup.url, "--schema", setup.schema)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().endswith("tables created to version 3"), made.stdout

    calls = Calls()
    service = Recording("A", calls)
    handled = [sms_status_payload("delivered") for _ in range(3)]
    doomed = sms_status_payload("undelivered")
    dead = doomed["MessageSid"]
    service.failing.add(dead)
    with listening(
        service, setup.schema, inbox=setup.url, max_attempts=2, retry_backoff=0.02,
        postgres_migrate=False,
    ) as listener:  # fmt: skip
        for params in [*handled, doomed]:
            assert deliver(listener.url, params).status_code == 200
        wait_until(
            lambda: counts(setup.url, setup.schema) == {"done": 3, "dead": 1}, "the outcomes"
        )

    stats = setup.cli("inbox", "stats")
    assert stats.returncode == 0, stats.stderr
    assert dict(line.split() for line in stats.stdout.splitlines()[1:5]) == {
        "pending": "0", "running": "0", "done": "3", "dead": "1",
    }  # fmt: skip
    assert setup.schema not in stats.stdout.splitlines()[0]  # the URL, without the schema

    listed = setup.cli("inbox", "list", "--dead")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert dead in row
    assert row.split()[0].isdigit()
    entry_id = row.split()[0]
    shown = setup.cli("inbox", "show", entry_id)
    assert shown.returncode == 0, shown.stderr
    assert f"event {entry_id}: sms {dead} (undelivered)" in shown.stdout
    assert "  state          dead" in shown.stdout
    assert f"RuntimeError: carrier lookup exploded for {dead}" in shown.stdout

    # Purge: what finished more recently than the age stays.
    kept = setup.cli("inbox", "purge", "--done", "--older-than", "1d")
    assert (kept.returncode, kept.stdout) == (0, "0 done events purged\n"), kept.stderr
    # Many more done entries than one delete takes, made directly; and one of
    # each other state, which --done never touches.
    e = f'"{setup.schema}".events'
    rows(
        setup.url,
        f"INSERT INTO {e} (key, kind, sid, status, params, received_at, state, "
        f"next_attempt_at, finished_at) SELECT 'bulk-' || n, 'sms', 'SMbulk' || n, "
        f"'delivered', '[]', extract(epoch from now()) - 7200, s, 0, "
        f"CASE WHEN s = 'done' THEN extract(epoch from now()) - 3600 END "
        f"FROM generate_series(1, 12003) AS n, LATERAL (SELECT CASE WHEN n > 12000 "
        f"THEN (ARRAY['pending', 'running', 'pending'])[n - 12000] ELSE 'done' END AS s) "
        f"AS states RETURNING 1",
    )
    older = setup.cli("inbox", "purge", "--done", "--older-than", "30m")
    assert (older.returncode, older.stdout) == (0, "12000 done events purged\n"), older.stderr
    assert counts(setup.url, setup.schema) == {"done": 3, "dead": 1, "pending": 2, "running": 1}
    purged = setup.cli("inbox", "purge", "--done", "--older-than", "0s")
    assert (purged.returncode, purged.stdout) == (0, "3 done events purged\n"), purged.stderr
    gone = setup.cli("inbox", "purge", "--dead", "--older-than", "0s")
    assert (gone.returncode, gone.stdout) == (0, "1 dead event purged\n"), gone.stderr
    assert counts(setup.url, setup.schema) == {"pending": 2, "running": 1}
    assert setup.cli("inbox", "list", "--dead").stdout.strip() == "no events in state dead"
    assert [call.sid for call in calls.all()].count(dead) == 2
    assert header.split()[0] == "ID"


def test_a_replay_from_the_command_line_is_dispatched_by_a_running_listener(
    setup: Setup,
) -> None:
    calls = Calls()
    service = Recording("A", calls)
    doomed = sms_status_payload("undelivered")
    dead = doomed["MessageSid"]
    service.failing.add(dead)
    with listening(
        service, setup.schema, inbox=setup.url, max_attempts=1, retry_backoff=0.02
    ) as listener:
        assert deliver(listener.url, doomed).status_code == 200
        wait_until(lambda: counts(setup.url, setup.schema) == {"dead": 1}, "the dead letter")
        service.failing.clear()
        replayed = setup.cli("inbox", "replay", "--dead")
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout == "1 event pending again\n"
        # The replay notifies: the listener's workers take it without a request.
        wait_until(lambda: counts(setup.url, setup.schema) == {"done": 1}, "the replay done")
    assert [call.sid for call in calls.all()] == [dead, dead]


@pytest.mark.parametrize("part", ["inbox", "store"])
def test_without_migrations_a_listener_on_a_schema_without_tables_refuses_to_start(
    postgres_database: str, pg_schema: str, part: str
) -> None:
    # Teams that forbid DDL at run time: the listener only checks the version, and
    # says what to run; it never answers a request it could not store or claim.
    listener = twilio.Listener(
        0,
        host="127.0.0.1",
        auth_tokens=[TOKEN],
        postgres_schema=pg_schema,
        postgres_migrate=False,
        **{part: postgres_database},  # type: ignore[arg-type]
    )
    listener.attach(Recording("A", Calls()))

    async def start() -> None:
        try:
            await listener.startup()
        finally:
            await listener.shutdown()

    with pytest.raises(twilio.ConfigurationError, match="twilio-trigger inbox migrate"):
        asyncio.run(start())
    assert scalar(postgres_database, "SELECT to_regnamespace(%s) IS NULL", (pg_schema,)) is True
