"""The Redis scale-out under load and under a Redis outage, with real processes.

(1) Two ``run`` listeners and two ``worker`` processes share a Redis inbox; 5,000
distinct status callbacks (and 500 copies, sent to the other listener) go in while
one worker is killed with SIGKILL.  The callback records each run (RPUSH) and its
effect idempotently (SET NX): every event must have exactly one effect, and what the
killed worker held must be finished by the others.

(2) An in-process listener on a private redis-server (fsync'd, as the default
durability requires): 503 while Redis is down, 200 and dispatched again once it is
back, without a restart.

The shared Redis is used only under the test's own key prefix, deleted afterwards.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.redis_support import MEMORY, RedisServer, durable_redis, prefix, redis_url

from ._processes import Process
from ._support import TOKEN, Recorder, SmsRecorder, eventually, free_port

__all__ = ["durable_redis", "prefix", "redis_url"]  # the fixtures, imported for pytest to find

#: The service module: each run is RPUSHed as "sid pid", its effect is SET NX.
SERVICE = """
import asyncio
import os

import redis.asyncio

import twilio_trigger as twilio

PREFIX = os.environ["TWILIO_TRIGGER_REDIS_PREFIX"]
URL = os.environ["TWILIO_TRIGGER_INBOX"]
_client = None

listener = twilio.Listener()


def client():
    global _client
    if _client is None:
        _client = redis.asyncio.Redis.from_url(URL)
    return _client


@listener.service
class Effects(twilio.SmsStatusService):
    async def on_delivered(self, event):
        pid = str(os.getpid())
        await asyncio.sleep(0.03)  # work in flight when a worker is killed
        await client().rpush(PREFIX + "runs", f"{event.sid} {pid}")
        await client().set(PREFIX + "effect:" + event.sid, pid, nx=True)
"""

EVENTS = 5000
DUPLICATES = EVENTS // 10


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def held_by(client: redis.Redis, key_prefix: str, pid: int) -> dict[str, str]:
    """The SIDs of the entries the consumer(s) of process *pid* hold: SID -> message id."""
    stream = f"{key_prefix}inbox:stream"
    summary: Any = client.xpending(stream, "workers")
    held: dict[str, str] = {}
    for consumer in summary.get("consumers") or []:
        name = _text(consumer["name"])
        if f"-{pid}-" not in name:
            continue
        pending: Any = client.xpending_range(stream, "workers", "-", "+", 10_000, name)
        for row in pending:
            message = _text(row["message_id"])
            found: Any = client.xrange(stream, message, message)
            if not found:
                continue
            entry_id = _text(found[0][1][b"id"])
            sid: Any = client.hget(f"{key_prefix}inbox:e:{entry_id}", "sid")
            held[_text(sid)] = message
    return held


def inbox_stats(folder: Path, env: dict[str, str]) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "twilio_trigger", "inbox", "stats"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    counts = {}
    for line in done.stdout.splitlines()[1:5]:  # the states, before what was counted
        words = line.split()
        if len(words) == 2 and words[1].isdigit():
            counts[words[0]] = int(words[1])
    return counts


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "scale.py").write_text(SERVICE)
    return tmp_path


# -- (1) 2 listeners, 2 workers, 5,000 events, one worker SIGKILLed --------------------------
def test_two_listeners_two_workers_5000_events_one_worker_killed(
    folder: Path, redis_url: str, prefix: str
) -> None:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TWILIO_TRIGGER_") and k != "TWILIO_AUTH_TOKEN"
    }
    base.update(
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_TRIGGER_INBOX=redis_url,
        TWILIO_TRIGGER_REDIS_PREFIX=prefix,
        TWILIO_TRIGGER_CLAIM_IDLE="2",
    )
    # The shared Redis keeps nothing on disk: the listeners accept it explicitly
    # (workers acknowledge nothing and check no durability).
    memory = {"TWILIO_TRIGGER_REDIS_DURABILITY": MEMORY}
    processes: list[Process] = []
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        ports = [free_port(), free_port()]
        while ports[0] == ports[1]:
            ports[1] = free_port()
        listeners = [
            Process(
                folder, {**base, **memory, "TWILIO_TRIGGER_CONCURRENCY": "1"}, f"listener{n}",
                "run", "scale:listener", "--port", str(port), "--host", "127.0.0.1",
            )
            for n, port in enumerate(ports, 1)
        ]  # fmt: skip
        processes += listeners
        workers = [
            Process(
                folder, {**base, "TWILIO_TRIGGER_CONCURRENCY": "8"}, f"worker{n}",
                "worker", "scale:listener",
            )
            for n in (1, 2)
        ]  # fmt: skip
        processes += workers
        for listener, port in zip(listeners, ports, strict=True):
            listener.wait_listening(port)
        for worker in workers:
            worker.wait_working()
        urls = [f"http://127.0.0.1:{port}/" for port in ports]

        # (params, token, listener index); a copy goes to the other listener, later.
        distinct = [sms_status_payload("delivered") for _ in range(EVENTS)]
        sids = {params["MessageSid"] for params in distinct}
        assert len(sids) == EVENTS
        originals = [(params, str(uuid.uuid4()), n % 2) for n, params in enumerate(distinct)]
        ordered: list[tuple[float, tuple[dict[str, str], str, int]]] = [
            (float(n), item) for n, item in enumerate(originals)
        ]
        for n in random.sample(range(EVENTS), DUPLICATES):
            params, token, index = originals[n]
            ordered.append((n + random.randint(16, 600) + 0.5, (params, token, 1 - index)))
        sends = [item for _, item in sorted(ordered, key=lambda pair: pair[0])]

        local = threading.local()
        lock = threading.Lock()
        clients: list[httpx.Client] = []
        answered = [0]
        not_ok: list[tuple[str, int, str]] = []

        def send(item: tuple[dict[str, str], str, int]) -> int:
            params, token, index = item
            http: httpx.Client | None = getattr(local, "client", None)
            if http is None:
                http = httpx.Client(timeout=20.0)
                local.client = http
                with lock:
                    clients.append(http)
            try:
                answer = signed_post(
                    urls[index], params, TOKEN, client=http,
                    headers={"I-Twilio-Idempotency-Token": token},
                )  # fmt: skip
                code, body = answer.status_code, answer.text[:200]
            except httpx.HTTPError as error:
                code, body = -1, f"{type(error).__name__}: {error}"
            with lock:
                answered[0] += 1
                if code != 200:
                    not_ok.append((params["MessageSid"], code, body))
            return code

        killed = workers[0]
        held: dict[str, str] = {}
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(16) as pool:
                futures: list[Future[int]] = [pool.submit(send, item) for item in sends]
                while answered[0] < EVENTS // 3 and not all(f.done() for f in futures[-50:]):
                    time.sleep(0.005)
                # SIGKILL at a moment worker1 holds entries (its callbacks sleep 30 ms):
                # stopped first, so that what it holds cannot change between the look
                # and the kill.
                deadline = time.monotonic() + 5
                while True:
                    killed.popen.send_signal(signal.SIGSTOP)
                    held = held_by(client, prefix, killed.pid)
                    if held or time.monotonic() > deadline:
                        break
                    killed.popen.send_signal(signal.SIGCONT)
                    time.sleep(0.005)
                killed.kill()
                killed_at = answered[0]
                codes = collections.Counter(f.result() for f in futures)
        finally:
            for http in clients:
                http.close()
        sent_in = time.monotonic() - started
        assert killed.popen.returncode == -signal.SIGKILL

        effect_glob = f"{prefix}effect:*"

        def effect_count() -> int:
            return sum(1 for _ in client.scan_iter(match=effect_glob, count=1000))

        settled = eventually(lambda: effect_count() >= EVENTS, 40, 0.1)

        # quiet: nothing pending or running any more
        quiet_env = {**base}
        stats: dict[str, int] = {}

        def quiet() -> bool:
            nonlocal stats
            stats = inbox_stats(folder, quiet_env)
            return stats.get("pending") == 0 and stats.get("running") == 0

        is_quiet = eventually(quiet, 15, 0.1)
        time.sleep(0.5)  # a late re-run would show now
        runs = [_text(raw).split() for raw in client.lrange(f"{prefix}runs", 0, -1)]
        per_pid = collections.Counter(pid for _, pid in runs)
        runs_per_sid = collections.Counter(sid for sid, _ in runs)
        effects = {
            _text(key)[len(prefix) + len("effect:") :]: _text(client.get(key))
            for key in client.scan_iter(match=effect_glob, count=1000)
        }
        stream = f"{prefix}inbox:stream"
        xpending: Any = client.xpending(stream, "workers")
        pids = {str(p.pid): p.name for p in processes}
        report = (
            f"events {EVENTS}, duplicates sent {DUPLICATES}, answers {dict(codes)} in "
            f"{sent_in:.1f}s, worker1 (pid {killed.pid}) killed after {killed_at} answers "
            f"holding {len(held)} entries; runs recorded "
            f"{len(runs)} (re-runs {len(runs) - len(runs_per_sid)}), runs per pid "
            f"{ {pids.get(pid, pid): n for pid, n in per_pid.items()} }, effect keys "
            f"{len(effects)}, inbox stats {stats}, XPENDING {xpending.get('pending')}"
        )
        print(report)

        assert not not_ok, f"{len(not_ok)} answers were not 200, e.g. {not_ok[:5]}; {report}"
        assert codes == {200: EVENTS + DUPLICATES}, report
        missing = sids - set(effects)
        assert settled, (
            f"effect keys {len(effects)} after 40 s, missing e.g. {sorted(missing)[:5]}; "
            f"{report}\n{workers[1].tail()}"
        )
        assert not missing, report
        assert set(effects) == sids, f"SIDs never sent: {sorted(set(effects) - sids)[:5]}"
        assert set(runs_per_sid) == sids, f"runs for SIDs never sent; {report}"
        assert len(runs) >= EVENTS, report
        assert set(per_pid) <= set(pids), f"runs by unknown pids; {report}"
        assert str(killed.pid) in per_pid, f"the killed worker ran nothing; {report}"
        assert held, f"the killed worker held no entries when killed; {report}"
        survivors = {str(p.pid) for p in processes if p is not killed}
        unfinished = {
            sid for sid in held if not any(pid in survivors for s, pid in runs if s == sid)
        }
        assert not unfinished, (
            f"{len(unfinished)} of the {len(held)} entries held by the killed worker were "
            f"never run by another process: {sorted(unfinished)[:5]}; {report}"
        )
        assert is_quiet, f"the inbox did not become quiet; {report}"
        assert stats == {"pending": 0, "running": 0, "done": EVENTS, "dead": 0}, report
        assert xpending.get("pending") == 0, f"XPENDING not empty: {xpending}; {report}"
        delivery_keys = sum(1 for _ in client.scan_iter(match=f"{prefix}inbox:k:*", count=1000))
        assert delivery_keys == EVENTS, f"{delivery_keys} delivery keys; {report}"

        for process in processes:
            if process is killed:
                continue
            assert process.terminate() == 0, process.tail()
            assert "Traceback" not in process.log, process.tail(80)
    finally:
        for process in processes:
            process.kill()
        client.close()


# -- (2) Redis down: 503, never 200; back: 200 and dispatched, no restart --------------------
def test_redis_outage_with_a_redis_inbox_answers_503_then_recovers(
    durable_redis: RedisServer,
) -> None:
    # A Redis that fsyncs each write, as the default durability (fsync) requires.
    own_redis = durable_redis
    recorder = Recorder()
    key_prefix = f"tt-test-{uuid.uuid4().hex[:12]}:"
    listener = twilio.Listener(
        0, host="127.0.0.1", auth_tokens=[TOKEN], inbox=own_redis.url,
        redis_prefix=key_prefix,
    )  # fmt: skip
    listener.attach(SmsRecorder(recorder))

    def dispatched() -> set[str]:
        with recorder.lock:
            return {str(call.event.sid) for call in recorder.calls}

    with listener, httpx.Client(timeout=15.0) as http:
        first = sms_status_payload("delivered")
        answer = signed_post(listener.url, first, TOKEN, client=http)
        assert answer.status_code == 200, answer.text
        assert eventually(lambda: first["MessageSid"] in dispatched(), 10, 0.1), recorder.calls

        own_redis.stop()
        during = [sms_status_payload("delivered") for _ in range(5)]
        codes = []
        for params in during:
            started = time.monotonic()
            answer = signed_post(listener.url, params, TOKEN, client=http)
            codes.append((answer.status_code, round(time.monotonic() - started, 2)))
        assert [code for code, _ in codes] == [503] * len(during), codes
        time.sleep(1.0)
        assert dispatched() == {first["MessageSid"]}, "a callback ran during the outage"

        own_redis.start()
        back = time.monotonic()
        attempts: list[tuple[int, float]] = []
        recovered: dict[str, str] | None = None
        while time.monotonic() - back < 10:
            params = sms_status_payload("delivered")
            answer = signed_post(listener.url, params, TOKEN, client=http)
            attempts.append((answer.status_code, round(time.monotonic() - back, 2)))
            if answer.status_code == 200:
                recovered = params
                break
            time.sleep(0.2)
        assert recovered is not None, f"no 200 within 10 s of Redis's return: {attempts}"
        sid = recovered["MessageSid"]
        assert eventually(lambda: sid in dispatched(), 10, 0.1), (
            f"accepted after the outage (answers {attempts}) but not dispatched within 10 s"
        )
        assert all(code in (200, 503) for code, _ in attempts), attempts
        seen = dispatched()
        assert not seen & {p["MessageSid"] for p in during}, "an event answered 503 ran"
        assert attempts[0][0] == 200, (
            f"the first request after Redis was back was not served: {attempts}"
        )
