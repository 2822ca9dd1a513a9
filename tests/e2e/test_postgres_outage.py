"""A PostgreSQL inbox or store that goes away and comes back, under a running listener.

Each test runs a cluster of its own (``own_postgres``: ``initdb`` in a temporary
folder, a free loopback port), stops it (``pg_ctl stop -m fast``) or crashes it
(``-m immediate``) under a real listener on loopback, and starts it again on the
same port.  Meanwhile signed events must be answered 503, never 200, and never
be dispatched; ``/readyz`` must fail; the log must tell the outage once, whatever
the number of requests, without a traceback per request.  Once the cluster is
back, the same listener (not restarted) answers 200 again and dispatches.  The
shared cluster on 127.0.0.1:5432 is never touched here.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.postgres_support import PostgresCluster, free_port, own_postgres, scalar

from ._processes import Process
from ._support import LOGGER, TOKEN, assert_empty_twiml, wait_until

pytestmark = pytest.mark.usefixtures("no_listener_options")


__all__ = ["own_postgres"]  # the fixture, imported for pytest to find

#: The answers of a listener whose inbox or store cannot be reached.
INBOX_UNAVAILABLE = "the event could not be stored; try again"
STORE_UNAVAILABLE = "the listener's store is unreachable; try again"
SCHEMA = "outage"
#: Seconds the listener gets to answer 200 again once the cluster is back.
RECOVERY = 30.0


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        yield client


class Dispatched(twilio.SmsStatusService):
    """Records the SID of every ``delivered`` it is given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sids: list[str] = []

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        assert event.sid is not None
        with self._lock:
            self._sids.append(event.sid)

    def sids(self) -> list[str]:
        with self._lock:
            return list(self._sids)


def deliver(url: str, params: dict[str, str], token: str | None = None) -> tuple[int, str]:
    """One signed delivery of *params*; the same *token* again is Twilio's retry of it."""
    answer = signed_post(
        url,
        params,
        TOKEN,
        headers={"I-Twilio-Idempotency-Token": token or str(uuid.uuid4())},
        timeout=30.0,
    )
    return answer.status_code, answer.text.strip()


def readiness(http: httpx.Client, listener: twilio.Listener) -> tuple[int, object]:
    answer = http.get(f"http://127.0.0.1:{listener.port}/readyz")
    assert answer.headers["content-type"] == "application/json", answer.headers
    return answer.status_code, json.loads(answer.text)


def wait_ready(http: httpx.Client, listener: twilio.Listener, code: int) -> object:
    """``/readyz``'s document once it answers *code* (within :data:`RECOVERY` seconds)."""
    seen: list[int] = []
    deadline = time.monotonic() + RECOVERY
    while True:
        status, found = readiness(http, listener)
        if status == code:
            return found
        seen.append(status)
        assert time.monotonic() < deadline, f"/readyz never answered {code}: {seen}"
        time.sleep(0.05)


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and text in record.getMessage()
    ]


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """No record of the outage carries a traceback (of any logger)."""
    with_traceback = [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.exc_info is not None or record.exc_text or "Traceback" in record.getMessage()
    ]
    assert with_traceback == [], with_traceback


def events_in_table(url: str, sids: list[str]) -> set[str]:
    """The SIDs among *sids* that the inbox's events table holds."""
    found = scalar(
        url,
        f'SELECT coalesce(array_agg(sid), ARRAY[]::text[]) FROM "{SCHEMA}".events '
        f"WHERE sid = ANY(%s)",
        (sids,),
    )
    assert isinstance(found, list)
    return set(found)


def state_of(url: str, sid: str) -> object:
    return scalar(url, f'SELECT state FROM "{SCHEMA}".events WHERE sid = %s', (sid,))


def take_down(cluster: PostgresCluster, how: str) -> None:
    if how == "crash":
        cluster.crash()
    else:
        cluster.stop()
    assert not (cluster.data / "postmaster.pid").exists()


def outage(
    cluster: PostgresCluster,
    how: str,
    part: str,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    **options: Any,
) -> None:
    """Events before, during and after an outage of the cluster holding *part*."""
    caplog.set_level(logging.INFO, logger=LOGGER)  # the recovery is told at INFO
    unavailable = INBOX_UNAVAILABLE if part == "inbox" else STORE_UNAVAILABLE
    service = Dispatched()
    checks = {"inbox": "ok", "store": "ok"} if part == "inbox" else {"store": "ok"}
    options[part] = cluster.url
    listener = twilio.Listener(
        0,
        host="127.0.0.1",
        auth_tokens=[TOKEN],
        postgres_schema=SCHEMA,
        callback_timeout=5,
        **options,
    )
    listener.attach(service)
    with listener:
        before = sms_status_payload("delivered")
        assert deliver(listener.url, before)[0] == 200
        wait_until(lambda: service.sids() == [before["MessageSid"]], "the first dispatch")
        if part == "inbox":  # and its outcome recorded, before the cluster goes
            wait_until(lambda: state_of(cluster.url, before["MessageSid"]) == "done", "done")
        assert readiness(http, listener) == (200, {"status": "ready", "checks": checks})

        caplog.clear()
        take_down(cluster, how)
        # Many requests, some at once: each answered 503, none logged on its own.
        during = [(sms_status_payload("delivered"), str(uuid.uuid4())) for _ in range(6)]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda item: deliver(listener.url, *item), during[:4]))
        answers += [deliver(listener.url, *item) for item in during[4:]]
        assert answers == [(503, unavailable)] * len(during), answers
        status, found = readiness(http, listener)
        assert status == 503, found
        assert found == {
            "status": "unavailable",
            "checks": dict(checks, **{part: "failing"}),
        }, found
        assert readiness(http, listener)[0] == 503
        assert service.sids() == [before["MessageSid"]]

        cluster.start()  # same port, same data; the listener is not restarted
        after: list[tuple[str, int]] = []
        deadline = time.monotonic() + RECOVERY
        while True:
            params = sms_status_payload("delivered")
            code, text = deliver(listener.url, params)
            after.append((params["MessageSid"], code))
            if code == 200 or time.monotonic() > deadline:
                break
            assert (code, text) == (503, unavailable)
            time.sleep(0.05)
        assert after[-1][1] == 200, f"no 200 within {RECOVERY} s of the cluster's return: {after}"
        for _ in range(3):
            params = sms_status_payload("delivered")
            code, _ = deliver(listener.url, params)
            after.append((params["MessageSid"], code))
            assert code == 200
        ready = wait_ready(http, listener, 200)
        assert ready == {"status": "ready", "checks": checks}

        answered = [sid for sid, code in after if code == 200]
        refused = [params["MessageSid"] for params, _ in during]
        refused += [sid for sid, code in after if code != 200]
        wanted = [before["MessageSid"], *answered]
        wait_until(lambda: sorted(service.sids()) == sorted(wanted), "every 200 dispatched")
        if part == "inbox":
            every = wanted + refused
            assert events_in_table(cluster.url, every) == set(wanted)

        # Twilio's retry of a delivery refused during the outage: stored and run now.
        retried, token = during[0]
        assert_empty_twiml(
            signed_post(listener.url, retried, TOKEN, headers={"I-Twilio-Idempotency-Token": token})
        )
        wanted.append(retried["MessageSid"])
        wait_until(lambda: sorted(service.sids()) == sorted(wanted), "the retry dispatched")

    assert sorted(service.sids()) == sorted(wanted)  # each once
    what = f"the PostgreSQL {part}"
    down = messages(caplog, "cannot be reached")
    told = [message for message in down if message.startswith(what)]
    assert len(told) == 1, f"the outage told {len(told)} times: {told}"
    assert "events are answered 503 until it can" in told[0]
    assert f":{cluster.port}/" in told[0]
    # Readiness says it once too, in its own words (tests/e2e/test_health.py).
    assert [m for m in down if not m.startswith(what)] == [
        m for m in down if m.startswith(f"not ready: the {part} cannot be reached")
    ]
    assert len(messages(caplog, f"not ready: the {part}")) == 1
    back = [r for r in caplog.records if r.name == LOGGER and "can be reached again" in r.msg]
    assert len(back) == 1, back
    assert back[0].levelno == logging.INFO
    assert back[0].getMessage().startswith(what)
    # Each request answered 503 meanwhile is counted, and only those.
    assert f": {len(refused)} requests refused (answered 503)" in back[0].getMessage()
    assert len(messages(caplog, f"ready again: the {part}")) == 1
    assert_no_traceback(caplog)
    # Nothing about the events refused, one by one (the first was retried, and ran).
    for params, _ in during[1:]:
        assert not messages(caplog, params["MessageSid"])


@pytest.mark.parametrize("how", ["stop", "crash"])
def test_an_inbox_outage_answers_503_until_the_database_is_back(
    own_postgres: PostgresCluster,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    outage(own_postgres, how, "inbox", http, caplog, retry_backoff=0.05)


@pytest.mark.parametrize("how", ["stop", "crash"])
def test_a_store_outage_answers_503_until_the_database_is_back(
    own_postgres: PostgresCluster,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    outage(own_postgres, how, "store", http, caplog)


def test_the_status_store_alone_failing_still_refuses_the_event(
    own_postgres: PostgresCluster, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Without deduplication only the status store is in PostgreSQL: it failing
    # must still refuse the event rather than dispatch it out of order.
    outage(own_postgres, "stop", "store", http, caplog, deduplicate=False)


def test_a_long_outage_is_told_once_however_many_requests(
    own_postgres: PostgresCluster, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)  # the recovery is told at INFO
    service = Dispatched()
    listener = twilio.Listener(
        0, host="127.0.0.1", auth_tokens=[TOKEN], inbox=own_postgres.url, postgres_schema=SCHEMA
    )
    listener.attach(service)
    with listener:
        first = sms_status_payload("delivered")
        assert deliver(listener.url, first)[0] == 200
        wait_until(lambda: state_of(own_postgres.url, first["MessageSid"]) == "done", "done")
        caplog.clear()
        own_postgres.crash()
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda _: deliver(listener.url, sms_status_payload("delivered"))[0],
                    range(24),
                )
            )
        assert codes == [503] * 24
        for _ in range(5):
            assert readiness(http, listener)[0] == 503
        told = [m for m in messages(caplog, "cannot be reached") if m.startswith("the ")]
        assert len(told) == 1, told
        assert told[0].startswith("the PostgreSQL inbox")
        package = [record for record in caplog.records if record.name == LOGGER]
        # The outage, and readiness's word on it: not a line per request.
        assert len([r for r in package if r.levelno >= logging.WARNING]) == 2, [
            r.getMessage() for r in package
        ]
        assert_no_traceback(caplog)
        own_postgres.start()
        wait_ready(http, listener, 200)
    (back,) = messages(caplog, "can be reached again")
    # The 24 requests, not the readiness probes nor the workers' polls.
    assert ": 24 requests refused (answered 503) meanwhile" in back, back


#: How long the next test keeps the cluster away: psycopg_pool's own retries
#: (after 1, 2, 4 s ...) would leave its next attempt 4 to 8 s after the return.
LONG_OUTAGE = 8.0
#: Seconds within which a request is served once the cluster is back.
PROMPT = 3.0


@pytest.mark.parametrize("part", ["inbox", "store"])
def test_a_database_back_after_a_long_outage_serves_the_next_requests(
    own_postgres: PostgresCluster, part: str
) -> None:
    # Twilio does not retry a status callback answered 503 (unless told to by the
    # URL): every second of 503s after the database is back loses events.
    service = Dispatched()
    options: dict[str, Any] = {part: own_postgres.url}
    listener = twilio.Listener(
        0, host="127.0.0.1", auth_tokens=[TOKEN], postgres_schema=SCHEMA, **options
    )
    listener.attach(service)
    with listener:
        assert deliver(listener.url, sms_status_payload("delivered"))[0] == 200
        own_postgres.crash()
        # Traffic all along the outage, as Twilio's would be: each answered 503.
        codes = set()
        ends = time.monotonic() + LONG_OUTAGE
        while time.monotonic() < ends:
            codes.add(deliver(listener.url, sms_status_payload("delivered"))[0])
            time.sleep(0.1)
        assert codes == {503}
        own_postgres.start()  # returns once the cluster accepts connections
        back = time.monotonic()
        tried: list[int] = []
        while time.monotonic() - back < RECOVERY:
            tried.append(deliver(listener.url, sms_status_payload("delivered"))[0])
            if tried[-1] == 200:
                break
            time.sleep(0.05)
        waited = time.monotonic() - back
        assert tried[-1] == 200, tried
        assert waited < PROMPT, f"served {waited:.1f} s after the cluster was back: {tried}"


# -- a stop while the database does not answer ---------------------------------------
HUNG_SERVICE = """
import asyncio
import twilio_trigger as twilio

listener = twilio.Listener(host="127.0.0.1")


@listener.service
class Slow(twilio.SmsStatusService):
    async def on_delivered(self, event):
        await asyncio.sleep(1)  # its outcome is written once the database hangs
"""


def test_a_stop_ends_though_the_database_stops_answering(
    own_postgres: PostgresCluster, tmp_path: Path
) -> None:
    # A database host that hangs (here, every process of the cluster stopped) keeps
    # its connections open and answers nothing: the last writes of a stop would
    # wait for it for ever.  The stop ends anyway, within its time limits, and says
    # what it left behind; nothing acknowledged is lost (the leases bring it back).
    (tmp_path / "hung_service.py").write_text(HUNG_SERVICE)
    port = free_port()
    env = {
        **os.environ,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_TRIGGER_INBOX": own_postgres.url,
        "TWILIO_TRIGGER_SHUTDOWN_TIMEOUT": "2",
    }
    process = Process(tmp_path, env, "hung", "run", "hung_service:listener", "--port", str(port))
    try:
        process.wait_listening(port)
        url = f"http://127.0.0.1:{port}/"
        with httpx.Client(trust_env=False, timeout=10.0) as http:
            for _ in range(4):
                answer = signed_post(url, sms_status_payload("delivered"), TOKEN, client=http)
                assert answer.status_code == 200, answer.text
        own_postgres.freeze()
        assert process.terminate(timeout=90) == 0, process.tail()
    finally:
        process.kill()
        own_postgres.freeze(False)
    log = process.log
    assert "stopping:" in log, process.tail()
    assert "Traceback" not in log, process.tail()


@pytest.mark.parametrize("part", ["inbox", "store"])
def test_a_database_that_stops_answering_is_answered_503_before_twilio_gives_up(
    own_postgres: PostgresCluster, caplog: pytest.LogCaptureFixture, part: str
) -> None:
    # A hung database host (every process of the cluster stopped: connections
    # open, no answer) held each request for the insert's time limit, then
    # psycopg's cancel and close: about 20 s, past the 15 s Twilio waits, so
    # Twilio saw a time-out (error 11200) instead of the 503.  A request now has
    # its 503 within STORE_WAIT (10 s), told as the outage; once the database
    # answers again, events are stored.  The same for the duplicate and status
    # stores, whose statements the request waits for too.
    service = Dispatched()
    options: dict[str, Any] = {part: own_postgres.url}
    listener = twilio.Listener(
        0, host="127.0.0.1", auth_tokens=[TOKEN], postgres_schema=SCHEMA, **options
    )
    unavailable = INBOX_UNAVAILABLE if part == "inbox" else STORE_UNAVAILABLE
    listener.attach(service)

    def timed(params: dict[str, str]) -> tuple[int, str, float]:
        started = time.monotonic()
        code, text = deliver(listener.url, params)
        return code, text, time.monotonic() - started

    with listener:
        first = sms_status_payload("delivered")
        assert deliver(listener.url, first)[0] == 200
        wait_until(lambda: first["MessageSid"] in service.sids(), "the first event dispatched")
        own_postgres.freeze()
        try:
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(timed, [sms_status_payload("delivered") for _ in range(4)]))
        finally:
            own_postgres.freeze(False)
        assert [(code, text) for code, text, _ in answers] == [(503, unavailable)] * 4
        assert max(took for _, _, took in answers) < 14.0, answers  # Twilio waits 15 s
        assert messages(caplog, "cannot be reached"), "the outage was not told"
        # psycopg's own lines about the queries it could not cancel are the
        # outage's too: not told again, one per statement.
        cancelled = [r for r in caplog.records if r.getMessage().startswith("query ")]
        assert cancelled == [], [r.getMessage() for r in cancelled]
        after = sms_status_payload("delivered")
        deadline = time.monotonic() + RECOVERY
        while deliver(listener.url, after)[0] != 200:
            assert time.monotonic() < deadline, "the inbox never stored again"
        wait_until(lambda: after["MessageSid"] in service.sids(), "the event after dispatched")
