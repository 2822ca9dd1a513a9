"""Listener and worker processes sharing a Redis inbox, as ``python -m twilio_trigger``.

Every process is real: ``run`` listeners on loopback ports and ``worker`` processes,
each loading a small service module from a temporary folder whose callbacks append
``SID status pid`` lines to a file.  The inbox is the shared Redis under a key
prefix of the test's own (``TWILIO_TRIGGER_REDIS_PREFIX``), deleted afterwards.
Without Redis the tests skip, or fail when ``TWILIO_TRIGGER_REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.payloads import signed_post, sms_status_payload
from tests.redis_support import MEMORY, RedisServer, own_redis, prefix, redis_url
from twilio_trigger.inbox import Entry, State
from twilio_trigger.inbox.redis import RedisInbox

from ._processes import Process
from ._support import TOKEN, eventually, free_port

__all__ = ["own_redis", "prefix", "redis_url"]  # the fixtures, imported for pytest to find

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
        await asyncio.sleep(0.01)
        note(f"{{event.sid}} {{event.status}} {{os.getpid()}}")

    def on_sent(self, event):
        note(f"start {{event.sid}} {{os.getpid()}}")
        time.sleep(30 if BLOCK else 0.01)
        note(f"{{event.sid}} {{event.status}} {{os.getpid()}}")

    async def on_failed(self, event):
        if os.environ.get("TEST_BROKEN") == "1":
            raise RuntimeError(f"carrier lookup exploded for {{event.sid}}")
        note(f"{{event.sid}} {{event.status}} {{os.getpid()}}")
"""


class Setup:
    """The folder, module and environment of one test; every process it started."""

    def __init__(self, folder: Path, url: str, key_prefix: str) -> None:
        self.folder = folder
        self.url = url
        self.prefix = key_prefix
        self.output = folder / "dispatched.txt"
        self.processes: list[Process] = []
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TWILIO_TRIGGER_") and k != "TWILIO_AUTH_TOKEN"
        }
        # The shared Redis keeps nothing on disk: listeners accept that explicitly;
        # workers check no durability (they acknowledge nothing), so they keep the default.
        env.update(
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_TRIGGER_INBOX=url,
            TWILIO_TRIGGER_REDIS_PREFIX=key_prefix,
        )
        self.listener_env = {"TWILIO_TRIGGER_REDIS_DURABILITY": MEMORY}
        self.env = env

    def module(self, name: str, options: str) -> None:
        (self.folder / f"{name}.py").write_text(SERVICE.format(options=options))

    def start(self, name: str, *args: str, **extra: str) -> Process:
        process = Process(self.folder, self.env, name, *args, extra=extra)
        self.processes.append(process)
        return process

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "twilio_trigger", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def lines(self) -> list[list[str]]:
        if not self.output.exists():
            return []
        return [line.split() for line in self.output.read_text().splitlines() if line]

    def inbox(self, claim_idle: float = 60.0) -> RedisInbox:
        return RedisInbox(self.url, prefix=self.prefix, claim_idle=claim_idle, durability=MEMORY)


@pytest.fixture
def setup(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[Setup]:
    made = Setup(tmp_path, redis_url, prefix)
    try:
        yield made
    finally:
        for process in made.processes:
            process.kill()


def put_events(setup: Setup, events: list[dict[str, str]]) -> None:
    """Store *events* in the inbox the way a listener does (key, kind, SID, status, params)."""

    async def work() -> None:
        inbox = setup.inbox()
        await inbox.open()
        try:
            for params in events:
                status = params["MessageStatus"]
                sid = params["MessageSid"]
                added = await inbox.put(uuid.uuid4().hex, "sms", sid, status, list(params.items()))
                assert added
        finally:
            await inbox.close()

    asyncio.run(work())


def on_inbox(setup: Setup, work: Callable[[RedisInbox], object]) -> object:
    async def session() -> object:
        inbox = setup.inbox()
        try:
            result = work(inbox)
            return await result if asyncio.iscoroutine(result) else result
        finally:
            await inbox.close()

    return asyncio.run(session())


def settled_stats(setup: Setup, expected: dict[State, int], timeout: float = 10.0) -> object:
    """The inbox's counts once they equal *expected*, or the last counts seen.

    A callback writes its line before its worker records the entry as done, so
    a test that saw the line waits here for the inbox to catch up.
    """
    seen: list[object] = []

    def reached() -> bool:
        seen.append(on_inbox(setup, lambda inbox: inbox.stats()))
        return seen[-1] == expected

    eventually(reached, timeout, 0.05)
    return seen[-1]


# -- (a) one listener, two workers: every event dispatched once -----------------------------
def test_listener_and_two_workers_dispatch_every_event_exactly_once(setup: Setup) -> None:
    # The listener dispatches too, woken at once by each event it stores, while
    # workers poll the stream: one slot for it leaves work for both workers.
    setup.module("mod", "")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    listener = setup.start(
        "listener", "run", "mod:listener", "--port", str(port), "--host", "127.0.0.1",
        TWILIO_TRIGGER_CONCURRENCY="1", **setup.listener_env,
    )  # fmt: skip
    workers = [
        setup.start(f"worker{n}", "worker", "mod:listener", TWILIO_TRIGGER_CONCURRENCY="4")
        for n in (1, 2)
    ]
    listener.wait_listening(port)
    for worker in workers:
        worker.wait_working()

    distinct = [sms_status_payload("delivered") for _ in range(300)]
    sends = [(params, str(uuid.uuid4())) for params in distinct]
    sends += random.sample(sends, 30)  # the same delivery again: same idempotency token
    random.shuffle(sends)

    def send(item: tuple[dict[str, str], str]) -> int:
        params, token = item
        with httpx.Client(timeout=15.0) as client:
            answer = signed_post(
                url, params, TOKEN, client=client, headers={"I-Twilio-Idempotency-Token": token}
            )
        return answer.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, sends))
    assert collections.Counter(codes) == {200: 330}, listener.log

    sids = {params["MessageSid"] for params in distinct}
    settled = eventually(lambda: {line[0] for line in setup.lines()} >= sids, 30, 0.05)
    time.sleep(0.5)  # a copy dispatched late would show now
    lines = setup.lines()
    per_sid = collections.Counter(line[0] for line in lines)
    missing = sids - set(per_sid)
    assert settled, f"{len(missing)} never dispatched: {sorted(missing)[:5]}\n{workers[0].log}"
    twice = {sid: n for sid, n in per_sid.items() if n != 1}
    assert not twice, f"dispatched more than once: {list(twice.items())[:10]}"
    assert set(per_sid) == sids
    assert all(line[1] == "delivered" for line in lines)
    pids = collections.Counter(line[2] for line in lines)
    for worker in workers:
        assert str(worker.pid) in pids, f"worker {worker.pid} dispatched nothing: {pids}"
    assert set(pids) <= {str(p.pid) for p in (listener, *workers)}

    expected = {State.PENDING: 0, State.RUNNING: 0, State.DONE: 300, State.DEAD: 0}
    assert settled_stats(setup, expected) == expected

    for process in (listener, *workers):
        assert process.terminate() == 0, process.log
        assert "Traceback" not in process.log, process.log


# -- (b) a worker killed while holding entries: another takes them over ----------------------
def test_entries_of_a_killed_worker_are_taken_over_by_another(setup: Setup) -> None:
    setup.module("mod", "concurrency=4, claim_idle=1")
    blockers = [sms_status_payload("sent") for _ in range(3)]
    quick = [sms_status_payload("delivered") for _ in range(17)]
    blocker_sids = {p["MessageSid"] for p in blockers}
    quick_sids = {p["MessageSid"] for p in quick}

    first = setup.start("worker1", "worker", "mod:listener", TEST_BLOCK="1")
    first.wait_working()
    put_events(setup, blockers + quick)

    def first_holds_all() -> bool:
        lines = setup.lines()
        started = {line[1] for line in lines if line[0] == "start"}
        finished = {line[0] for line in lines if line[0] != "start"}
        return started >= blocker_sids and finished >= quick_sids

    first.wait_for(first_holds_all, "the first worker to start the blockers and do the rest")
    # The quick ones' outcomes recorded before the kill: a callback's line comes
    # before its outcome's write, and a kill between the two leaves its entry
    # running (taken over and run again, rightly, but not what this test is about).
    held = {State.PENDING: 0, State.RUNNING: 3, State.DONE: 17, State.DEAD: 0}
    assert settled_stats(setup, held) == held
    first.kill()  # SIGKILL while its callbacks block: the entries stay running
    assert first.popen.returncode == -signal.SIGKILL
    assert settled_stats(setup, held) == held

    second = setup.start("worker2", "worker", "mod:listener")
    second.wait_working()

    def taken_over() -> bool:
        return {
            line[0] for line in setup.lines() if line[0] != "start" and line[2] == str(second.pid)
        } >= blocker_sids

    assert eventually(taken_over, 10, 0.05), f"{setup.lines()}\n{second.log}"
    lines = setup.lines()
    finished = [line for line in lines if line[0] != "start"]
    for sid in blocker_sids:
        assert [line[2] for line in finished if line[0] == sid] == [str(second.pid)]
    for sid in quick_sids:  # done before the kill: not dispatched again
        assert [line[2] for line in finished if line[0] == sid] == [str(first.pid)]

    expected = {State.PENDING: 0, State.RUNNING: 0, State.DONE: 20, State.DEAD: 0}
    assert settled_stats(setup, expected) == expected

    async def after(inbox: RedisInbox) -> list[Entry]:
        return await inbox.entries(State.DONE, limit=50)

    done = on_inbox(setup, after)
    assert isinstance(done, list)
    attempts = {e.sid: e.attempts for e in done}
    assert all(attempts[sid] >= 2 for sid in blocker_sids), attempts
    assert all(attempts[sid] == 1 for sid in quick_sids), attempts

    assert second.terminate() == 0, second.log
    assert "Traceback" not in second.log, second.log


def test_a_live_worker_does_not_run_its_own_slow_callback_again(setup: Setup) -> None:
    """A callback slower than claim_idle, in a worker that is alive and well.

    The docs say a running entry is taken over when "its worker has been silent for
    claim_idle seconds"; this worker is not silent, only busy.
    """
    setup.module("mod", "concurrency=4, claim_idle=1")
    slow = sms_status_payload("sent")
    sid = slow["MessageSid"]
    worker = setup.start("worker", "worker", "mod:listener", TEST_BLOCK="1")
    worker.wait_working()
    put_events(setup, [slow])
    worker.wait_for(lambda: any(line[:2] == ["start", sid] for line in setup.lines()), "start")
    time.sleep(3.0)  # three times claim_idle, the callback still running
    starts = [line for line in setup.lines() if line[:2] == ["start", sid]]
    worker.kill()
    assert len(starts) == 1, f"the callback for {sid} was started {len(starts)} times: {starts}"


# -- (c) the inbox command on Redis: dead letter, replay, dispatched by a fixed worker --------
def test_inbox_command_lists_and_replays_a_redis_dead_letter(setup: Setup) -> None:
    setup.module("mod", "concurrency=2, max_attempts=2, retry_backoff=0.05")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    listener = setup.start(
        "listener", "run", "mod:listener", "--port", str(port), "--host", "127.0.0.1",
        TEST_BROKEN="1", **setup.listener_env,
    )  # fmt: skip
    listener.wait_listening(port)
    event = sms_status_payload("failed")
    sid = event["MessageSid"]
    assert signed_post(url, event, TOKEN).status_code == 200

    def dead() -> bool:
        stats = setup.cli("inbox", "stats")
        return stats.returncode == 0 and any(
            line.split() == ["dead", "1"] for line in stats.stdout.splitlines()
        )

    listener.wait_for(dead, "the event to be a dead letter", timeout=15)
    assert listener.terminate() == 0, listener.log
    assert "carrier lookup exploded" in listener.log

    stats = setup.cli("inbox", "stats")
    assert stats.returncode == 0, stats.stderr
    counts = dict(line.split() for line in stats.stdout.splitlines()[1:5])
    assert counts == {"pending": "0", "running": "0", "done": "0", "dead": "1"}, stats.stdout
    assert setup.prefix not in stats.stdout  # the location is the URL, the prefix is not shown

    listed = setup.cli("inbox", "list", "--dead")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()
    assert len(rows) == 2, listed.stdout
    assert sid in rows[1]
    assert "dead" in rows[1].split()
    assert "2" in rows[1].split()  # two attempts
    assert "carrier lookup exploded" in rows[1]

    replayed = setup.cli("inbox", "replay", "--dead")
    assert replayed.returncode == 0, replayed.stderr
    assert "1 event pending again" in replayed.stdout
    stats = setup.cli("inbox", "stats")
    counts = dict(line.split() for line in stats.stdout.splitlines()[1:5])
    assert counts == {"pending": "1", "running": "0", "done": "0", "dead": "0"}, stats.stdout
    assert setup.cli("inbox", "list", "--dead").stdout.strip() == "no events in state dead"
    assert setup.lines() == []

    fixed = setup.start("fixed", "worker", "mod:listener")  # TEST_BROKEN unset: it works
    fixed.wait_working()
    assert eventually(lambda: bool(setup.lines()), 10, 0.05), fixed.log
    assert setup.lines() == [[sid, "failed", str(fixed.pid)]]
    # The callback wrote its line before the worker recorded the entry as done.
    done = {"pending": "0", "running": "0", "done": "1", "dead": "0"}
    seen: list[dict[str, str]] = []

    def recorded() -> bool:
        stats = setup.cli("inbox", "stats")
        assert stats.returncode == 0, stats.stderr
        seen.append(dict(line.split() for line in stats.stdout.splitlines()[1:5]))
        return seen[-1] == done

    eventually(recorded, 10, 0.05)
    assert seen[-1] == done, seen[-1]
    assert fixed.terminate() == 0, fixed.log
    assert "Traceback" not in fixed.log, fixed.log


# -- (e) a worker's outage: it answers no request, and its lines say what waits --------------
def test_a_workers_outage_lines_say_dispatch_waits_not_that_requests_get_503(
    setup: Setup, own_redis: RedisServer
) -> None:
    setup.module("mod", "")
    setup.env["TWILIO_TRIGGER_INBOX"] = own_redis.url
    worker = setup.start("worker", "worker", "mod:listener")
    worker.wait_working()
    own_redis.stop()
    worker.wait_for(lambda: "cannot be reached" in worker.log, "the outage's start")
    own_redis.start()
    worker.wait_for(lambda: "can be reached again" in worker.log, "the outage's end")
    assert worker.terminate() == 0, worker.log
    started = next(line for line in worker.log.splitlines() if "cannot be reached" in line)
    ended = next(line for line in worker.log.splitlines() if "can be reached again" in line)
    assert started.endswith("dispatch waits until it can"), started
    assert "refused" not in ended, ended
    assert "503" not in worker.log
