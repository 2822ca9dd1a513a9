"""What a 200 from a listener with a Redis inbox promises, against real redis-servers.

- ``fsync`` (the default): a private redis-server with an append-only file is SIGKILLed
  in the middle of a burst of signed events, then restarted on the same port and
  folder: every event answered 200 is dispatched.  On PATH's Redis (7.0 here) it runs
  with ``appendfsync always``; on a 7.2+ binary, when there is one, with ``everysec``
  and ``WAITAOF`` confirming each write.  Before 7.2, a server that stops fsyncing
  each write is refused until it does again.
- A Redis that keeps nothing on disk (the shared one, or a private one): the default
  refuses to start, in one line that names the Redis setting and the option; the
  command line exits with an error; ``memory`` starts, with a WARNING.
- ``replicas:1``: without a replica, 503, nothing stored, nothing dispatched; with a
  private replica, 200 and the event on the replica.
- A Redis that comes back empty while events wait: an ERROR saying how many were lost.
- ``twilio-trigger worker`` acknowledges nothing, and checks no durability.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.redis_support import (
    MEMORY,
    NO_PERSISTENCE,
    RedisServer,
    durable_redis,
    keys_under,
    no_waitaof,
    own_redis,
    path_binary,
    prefix,
    redis_url,
    server_version,
    waitaof_binary,
    waitaof_redis,
)
from twilio_trigger.inbox import State
from twilio_trigger.inbox.redis import RedisInbox

from ._processes import Process
from ._support import (
    TOKEN,
    Recorder,
    SmsRecorder,
    eventually,
    free_port,
    records,
    running,
    wait_until,
)

__all__ = ["durable_redis", "own_redis", "prefix", "redis_url", "waitaof_redis"]  # fixtures

#: The service module of the command-line tests: each dispatched SID, a line in a file.
SERVICE = """
import pathlib

import twilio_trigger as twilio

OUT = pathlib.Path(__file__).with_name("dispatched.txt")
listener = twilio.Listener()


@listener.service
class Notes(twilio.SmsStatusService):
    def on_delivered(self, event):
        with OUT.open("a") as out:
            out.write(event.sid + "\\n")
"""


def dispatched(recorder: Recorder) -> set[str]:
    with recorder.lock:
        return {str(call.event.sid) for call in recorder.calls}


def stored_keys(url: str, key_prefix: str) -> list[str]:
    """The keys of stored events and of their delivery keys, under *key_prefix*."""
    return [k for k in keys_under(url, key_prefix) if ":inbox:e:" in k or ":inbox:k:" in k]


def describe(url: str, sids: set[str]) -> list[dict[str, str]]:
    """What the inbox at *url* holds of the events of *sids* (for failure messages)."""
    client = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)
    try:
        found = []
        for key in client.scan_iter(match="twilio-trigger:inbox:e:*", count=1000):
            entry: Any = client.hgetall(key)
            if entry.get("sid") in sids:
                found.append({"key": key, **{k: v for k, v in entry.items() if k != "params"}})
        found.append({"stream": str(client.xinfo_groups("twilio-trigger:inbox:stream"))})
        return found
    finally:
        client.close()


def environment(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TWILIO_TRIGGER_") and k != "TWILIO_AUTH_TOKEN"
    }
    env.update(TWILIO_AUTH_TOKEN=TOKEN, **extra)
    return env


# -- fsync: SIGKILL in the middle of a burst ------------------------------------------------
@pytest.fixture(params=["durable_redis", "waitaof_redis"])
def persistent_redis(request: pytest.FixtureRequest) -> RedisServer:
    """A private Redis that keeps each confirmed write: ``appendfsync always``, or 7.2+
    with ``appendfsync everysec`` (``WAITAOF`` then confirms each write)."""
    server: RedisServer = request.getfixturevalue(request.param)
    return server


def test_a_redis_killed_mid_burst_keeps_every_event_it_acknowledged(
    persistent_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = persistent_redis
    total, kill_after = 120, 30
    recorder = Recorder()
    events = [sms_status_payload("delivered") for _ in range(total)]
    answers: list[tuple[str, int]] = []  # in the order they came
    lock = threading.Lock()
    enough = threading.Event()

    def count(code: int) -> int:
        with lock:
            return sum(1 for _, c in answers if c == code)

    def answered() -> int:
        with lock:
            return len(answers)

    with running(SmsRecorder(recorder), inbox=server.url, concurrency=4) as listener:

        def send(params: dict[str, str]) -> None:
            try:
                with httpx.Client(timeout=30.0) as client:
                    code = signed_post(listener.url, params, TOKEN, client=client).status_code
            except httpx.HTTPError:
                code = 0
            with lock:
                answers.append((params["MessageSid"], code))
            if count(200) >= kill_after:
                enough.set()

        with ThreadPoolExecutor(10) as pool:
            sending = [pool.submit(send, params) for params in events]
            assert enough.wait(60), f"{count(200)} events acknowledged in 60 s"
            server.kill()  # SIGKILL: whatever Redis had not written is gone
            at_kill = answered()
            wait_until(lambda: answered() >= min(total, at_kill + 10), "answers during the outage")
            server.start()  # the same port and folder: it replays its append-only file
            at_restart = answered()
            for future in sending:
                future.result()

        acknowledged = {sid for sid, code in answers if code == 200}
        if not eventually(lambda: acknowledged <= dispatched(recorder), 60):
            missing = acknowledged - dispatched(recorder)
            raise AssertionError(
                f"{len(missing)} acknowledged events not dispatched in 60 s; in Redis: "
                f"{describe(server.url, missing)}"
            )

    assert count(200) >= kill_after
    assert any(code != 200 for _, code in answers), "the kill interrupted nothing"
    assert any(code == 200 for _, code in answers[at_restart:]), "nothing served after restart"
    lost = acknowledged - dispatched(recorder)
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged events lost"
    assert len(acknowledged & dispatched(recorder)) == len(acknowledged)
    assert not [m for m in map(logging.LogRecord.getMessage, caplog.records) if "lost" in m]


# -- a Redis without persistence: refused by default, allowed as memory --------------------
def startup_error(**options: Any) -> str:
    """The error of a listener's start with *options*, as raised to its caller."""
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], **options)

    async def start() -> None:
        try:
            await listener.startup()
        finally:
            await listener.shutdown()

    with pytest.raises(twilio.ConfigurationError) as refused:
        asyncio.run(start())
    return str(refused.value)


def test_the_default_refuses_a_redis_that_keeps_nothing_on_disk(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    message = startup_error(inbox=redis_url, redis_prefix=prefix)
    assert "\n" not in message
    assert message.startswith(f"cannot open the inbox {redis_url}: redis_durability=fsync")
    assert "appendonly is no" in message
    assert "Set `appendonly yes`" in message  # the Redis setting
    assert "redis_durability (TWILIO_TRIGGER_REDIS_DURABILITY)" in message  # the option
    assert "memory" in message
    assert stored_keys(redis_url, prefix) == []

    recorder = Recorder()
    caplog.clear()
    with running(
        SmsRecorder(recorder), inbox=redis_url, redis_prefix=prefix, redis_durability=MEMORY
    ) as listener:
        (warning,) = [r.getMessage() for r in records(caplog, logging.WARNING)]
        assert warning.startswith("redis_durability=memory")
        assert "a Redis restart or failover loses the events" in warning
        params = sms_status_payload("delivered")
        assert signed_post(listener.url, params, TOKEN).status_code == 200
        wait_until(lambda: params["MessageSid"] in dispatched(recorder), "the dispatch")


def _refusing_servers() -> Iterator[Any]:
    legacy = "fix: `appendonly yes` and `appendfsync always`"
    yield pytest.param(
        "path", ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
        ("appendfsync is everysec", legacy), id="7.0-everysec",
    )  # fmt: skip
    yield pytest.param("path", NO_PERSISTENCE, ("appendonly is no", legacy), id="7.0-appendonly-no")
    yield pytest.param(
        "waitaof", NO_PERSISTENCE, ("appendonly is no", "fix: `appendonly yes` in"),
        id="7.2-appendonly-no",
    )  # fmt: skip
    yield pytest.param(
        "waitaof", ("--save", "", "--appendonly", "yes", "--appendfsync", "no"),
        ("appendfsync is no", "fix: `appendfsync everysec`"), id="7.2-appendfsync-no",
    )  # fmt: skip


@pytest.mark.parametrize(("binary", "options", "expected"), list(_refusing_servers()))
def test_the_refusal_names_what_to_change_on_each_kind_of_server(
    tmp_path: Path, binary: str, options: tuple[str, ...], expected: tuple[str, str]
) -> None:
    if binary == "path":
        found: str | None = path_binary()
        assert found is not None
        if server_version(found) >= (7, 2):
            pytest.skip(f"{found} is 7.2 or newer: WAITAOF confirms writes there")
    else:
        found = waitaof_binary()
        if found is None:
            no_waitaof()
    server = RedisServer(found, tmp_path / "redis", options=options)
    server.start()
    try:
        message = startup_error(inbox=server.url)
    finally:
        server.stop()
    problem, fix = expected
    assert "\n" not in message
    assert problem in message
    assert f"Set {fix.removeprefix('fix: ')}" in message
    assert "redis_durability (TWILIO_TRIGGER_REDIS_DURABILITY)" in message


def test_run_exits_with_the_refusal_and_starts_in_memory_mode(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    (tmp_path / "notes.py").write_text(SERVICE)
    port = free_port()
    args = ("run", "notes:listener", "--port", str(port), "--host", "127.0.0.1")
    env = environment(TWILIO_TRIGGER_INBOX=redis_url, TWILIO_TRIGGER_REDIS_PREFIX=prefix)
    refused = subprocess.run(
        [sys.executable, "-m", "twilio_trigger", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0, refused.stderr
    # One line, in the command line's words: the variable names the option.
    told = [line for line in refused.stderr.splitlines() if "DURABILITY=fsync" in line]
    assert len(told) == 1, refused.stderr
    assert told[0].startswith("Error: ")
    assert "appendonly is no" in told[0]
    assert "TWILIO_TRIGGER_REDIS_DURABILITY" in told[0]
    assert "listening on" not in refused.stderr

    memory = Process(tmp_path, {**env, "TWILIO_TRIGGER_REDIS_DURABILITY": MEMORY}, "memory", *args)
    try:
        memory.wait_listening(port)
        memory.wait_for(lambda: "listening on" in memory.log, "'listening on'")
        (warning,) = [line for line in memory.log.splitlines() if "redis_durability=" in line]
        assert "WARNING" in warning
        assert "redis_durability=memory" in warning
        params = sms_status_payload("delivered")
        assert signed_post(f"http://127.0.0.1:{port}/", params, TOKEN).status_code == 200
        out = tmp_path / "dispatched.txt"
        memory.wait_for(
            lambda: out.exists() and params["MessageSid"] in out.read_text(), "the dispatch"
        )
        assert memory.terminate() == 0, memory.tail()
    finally:
        memory.kill()


def test_a_redis_that_stops_fsyncing_each_write_is_refused_until_it_does_again(
    durable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Before 7.2 no write is confirmed: the listener asks the server again every few
    # seconds, and with every event while the answer is wrong.
    binary = path_binary()
    if server_version(binary) >= (7, 2):
        pytest.skip(f"{binary} is 7.2 or newer: WAITAOF confirms each write there")
    recorder = Recorder()
    client = redis.Redis.from_url(durable_redis.url, socket_timeout=5)
    try:
        with (
            running(SmsRecorder(recorder), inbox=durable_redis.url) as listener,
            httpx.Client(timeout=15.0) as http,
        ):

            def answer() -> int:
                params = sms_status_payload("delivered")
                return signed_post(listener.url, params, TOKEN, client=http).status_code

            def ready() -> int:
                return http.get(f"http://127.0.0.1:{listener.port}/readyz").status_code

            assert (answer(), ready()) == (200, 200)
            client.config_set("appendfsync", "everysec")
            assert ready() == 503
            wait_until(lambda: answer() == 503, "events refused", timeout=20)
            (told,) = [
                r.getMessage()
                for r in records(caplog, logging.ERROR)
                if "no longer fsyncs" in r.getMessage()
            ]
            assert "appendfsync is everysec" in told
            client.config_set("appendfsync", "always")
            assert ready() == 200
            assert answer() == 200  # asked again with this event: fixed
            again = [r.getMessage() for r in records(caplog, logging.WARNING)]
            assert any("fsyncs each write again" in m for m in again), again
    finally:
        client.close()


# -- replicas:N ---------------------------------------------------------------------------
def test_replicas_without_a_replica_answer_503_and_dispatch_nothing(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    with (
        running(
            SmsRecorder(recorder), inbox=redis_url, redis_prefix=prefix,
            redis_durability="replicas:1", redis_wait_timeout=0.3,
        ) as listener,
        httpx.Client(timeout=15.0) as http,
    ):  # fmt: skip
        started = [r.getMessage() for r in records(caplog, logging.WARNING)]
        assert any("has 0 replicas connected" in m for m in started), started
        params = sms_status_payload("delivered")
        delivery = {"I-Twilio-Idempotency-Token": str(uuid.uuid4())}
        first = signed_post(listener.url, params, TOKEN, client=http, headers=delivery)
        retried = signed_post(listener.url, params, TOKEN, client=http, headers=delivery)
        assert (first.status_code, retried.status_code) == (503, 503), first.text
        assert first.text.strip() == "the event could not be stored; try again"
        # Logged, with the cause, as one line: an expected condition needs no traceback.
        why = [r.getMessage() for r in records(caplog, logging.ERROR)]
        assert len(why) == 2, why
        assert all("0 of the 1 replicas required confirmed the event" in m for m in why), why
        assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.ERROR)
        ready = http.get(f"http://127.0.0.1:{listener.port}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["inbox"] == "failing"
        # Withdrawn before the answer: nothing left that a worker could dispatch.
        assert stored_keys(redis_url, prefix) == []

        async def stats() -> dict[State, int]:
            inbox = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
            try:
                return await inbox.stats()
            finally:
                await inbox.close()

        assert asyncio.run(stats()) == dict.fromkeys(State, 0)
    assert recorder.calls == []


def test_replicas_with_a_replica_acknowledge_what_the_replica_has(tmp_path: Path) -> None:
    binary = path_binary()
    primary = RedisServer(binary, tmp_path / "primary")
    primary.start()
    replica = RedisServer(
        binary, tmp_path / "replica",
        options=(*NO_PERSISTENCE, "--replicaof", "127.0.0.1", str(primary.port)),
    )  # fmt: skip
    replica.start()
    on_primary = redis.Redis.from_url(primary.url, socket_timeout=5)
    on_replica = redis.Redis.from_url(replica.url, socket_timeout=5)
    try:
        wait_until(
            lambda: on_replica.info("replication").get("master_link_status") == "up",
            "the replica to follow the primary",
        )
        recorder = Recorder()
        with running(
            SmsRecorder(recorder), inbox=primary.url, redis_durability="replicas:1"
        ) as listener:
            events = [sms_status_payload("delivered") for _ in range(3)]
            codes = [signed_post(listener.url, params, TOKEN).status_code for params in events]
            assert codes == [200, 200, 200]
            sids = {params["MessageSid"] for params in events}
            wait_until(lambda: dispatched(recorder) >= sids, "the dispatches")
            ready = httpx.get(f"http://127.0.0.1:{listener.port}/readyz", timeout=15)
            assert ready.status_code == 200, ready.text
        kept = [on_replica.hget(f"twilio-trigger:inbox:e:{n}", "sid") for n in (1, 2, 3)]
        assert {value.decode() for value in kept if isinstance(value, bytes)} == sids
    finally:
        on_primary.close()
        on_replica.close()
        replica.stop()
        primary.stop()


# -- a Redis that comes back empty --------------------------------------------------------
def test_a_redis_back_empty_while_events_wait_is_an_error_saying_how_many(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    recorder.fail["sms.on_delivered"] = "raise"  # each waits for its retry, a minute away
    events = [sms_status_payload("delivered") for _ in range(3)]
    with running(
        SmsRecorder(recorder), inbox=own_redis.url, redis_durability=MEMORY,
        retry_backoff=60, concurrency=4,
    ) as listener:  # fmt: skip
        for params in events:
            assert signed_post(listener.url, params, TOKEN).status_code == 200
        sids = {params["MessageSid"] for params in events}
        wait_until(lambda: dispatched(recorder) == sids, "a first attempt at each")
        client = redis.Redis.from_url(own_redis.url, socket_timeout=5)
        try:
            wait_until(
                lambda: client.zcard("twilio-trigger:inbox:retry") == 3, "three waiting retries"
            )
        finally:
            client.close()
        own_redis.stop()  # no persistence: it comes back empty
        own_redis.start()

        def told() -> list[str]:
            return [m.getMessage() for m in records(caplog, logging.ERROR) if "lost" in m.msg]

        wait_until(lambda: len(told()) == 1, "an ERROR saying what was lost")
        (error,) = told()
        assert f"the Redis inbox {own_redis.url} lost its data" in error
        assert "3 events not yet dispatched" in error
        assert "ids up to 3" in error

        # It carries on: the next event is stored anew, under an id no lost one had.
        def accepted() -> bool:
            answer = signed_post(listener.url, sms_status_payload("sent"), TOKEN)
            return answer.status_code == 200

        wait_until(accepted, "an event accepted after the loss")
        client = redis.Redis.from_url(own_redis.url, socket_timeout=5)
        try:
            found: Any = client.zrange("twilio-trigger:inbox:all", 0, -1)
            ids = sorted(int(i) for i in found)
        finally:
            client.close()
        assert ids[0] > 3, ids
    assert len(told()) == 1


# -- workers acknowledge nothing ----------------------------------------------------------
def test_a_worker_starts_on_a_redis_without_persistence(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    (tmp_path / "notes.py").write_text(SERVICE)
    env = environment(TWILIO_TRIGGER_INBOX=redis_url, TWILIO_TRIGGER_REDIS_PREFIX=prefix)
    worker = Process(tmp_path, env, "worker", "worker", "notes:listener")  # default: fsync
    try:
        worker.wait_working()
        assert "redis_durability" not in worker.log

        async def store() -> str:
            inbox = RedisInbox(redis_url, prefix=prefix, durability=MEMORY)
            await inbox.open()
            try:
                params = sms_status_payload("delivered")
                sid = params["MessageSid"]
                assert await inbox.put(uuid.uuid4().hex, "sms", sid, "delivered", [*params.items()])
                return sid
            finally:
                await inbox.close()

        sid = asyncio.run(store())
        out = tmp_path / "dispatched.txt"
        worker.wait_for(lambda: out.exists() and sid in out.read_text(), "the dispatch")
        assert worker.terminate() == 0, worker.tail()
    finally:
        worker.kill()
