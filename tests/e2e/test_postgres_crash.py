"""Crashes with a PostgreSQL inbox: real processes killed, a real database stopped.

The listeners and workers are ``python -m twilio_trigger`` processes
(:mod:`tests.e2e._pg_processes`) whose ``on_delivered`` takes the transaction
and inserts the event's SID into an effects table, in the transaction that
marks the inbox entry done.  Each test works in a schema of its own in the
run's database, or in a cluster of its own when it stops the database.
"""

from __future__ import annotations

import asyncio
import collections
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.postgres_support import PostgresCluster, own_postgres, pg_schema, postgres_database
from twilio_trigger._postgres_schema import SCHEMA_VERSION, migrate
from twilio_trigger.inbox.postgres import PostgresInbox

from ._pg_processes import PgSetup, send_burst
from ._processes import Process
from ._support import TOKEN, eventually, free_port

# The fixtures, imported for pytest to find.
__all__ = ["own_postgres", "pg_schema", "postgres_database"]


@pytest.fixture
def setups() -> Iterator[list[PgSetup]]:
    """The test's setups, whose processes are all killed at the end."""
    made: list[PgSetup] = []
    try:
        yield made
    finally:
        for setup in made:
            setup.kill_all()


def settle(setup: PgSetup, expected: set[str], timeout: float) -> bool:
    """Whether, within *timeout* seconds, every SID of *expected* has its effect and the
    inbox has nothing pending or running."""

    def done() -> bool:
        setup.check_alive()
        states = setup.states()
        busy = states.get("pending", 0) + states.get("running", 0)
        return busy == 0 and expected <= set(setup.effect_sids())

    return eventually(done, timeout, 0.1)


# -- 1. a listener killed with SIGKILL mid-burst ----------------------------------------------
EVENTS = 300
SENDERS = 6


def test_listener_killed_mid_burst_loses_no_acknowledged_event(
    tmp_path: Path, postgres_database: str, pg_schema: str, setups: list[PgSetup]
) -> None:
    setup = PgSetup(
        tmp_path,
        postgres_database,
        pg_schema,
        TWILIO_TRIGGER_CLAIM_IDLE="1",
        TWILIO_TRIGGER_CONCURRENCY="2",
        TEST_DELAY="0.02",  # slower than the burst: entries pile up, pending and running
    )
    setups.append(setup)
    setup.make_effects(unique=False)  # a copy would show as a second row
    first, url = setup.listener("first")

    payloads = [sms_status_payload("delivered") for _ in range(EVENTS)]
    burst = send_burst([(url, params) for params in payloads], SENDERS)
    first.wait_for(lambda: len(burst.acked()) >= EVENTS // 3, "a third answered 200", 30)
    first.kill()
    assert first.popen.returncode == -signal.SIGKILL
    burst.stop.set()
    burst.join()

    acked = burst.acked()
    before = set(setup.effect_sids())
    states = setup.states()
    assert len(acked) == len(burst.acknowledged)  # each SID answered once
    # The kill came mid-burst: acknowledged events were still waiting or running.
    assert len(before) < len(acked), (len(before), len(acked), states)

    second, _ = setup.listener("second")
    settled = settle(setup, acked, 30)
    after = set(setup.effect_sids())
    report = (
        f"{len(acked)} answered 200 before the kill, {len(before)} dispatched before it, "
        f"inbox then {states}, {len(after - before)} dispatched after the restart, "
        f"{len(acked - after)} lost, answers {burst.codes()}"
    )
    print(report)
    assert settled, f"{report}\ninbox now {setup.states()}\n{second.tail()}"
    assert acked <= after, report
    assert after <= {params["MessageSid"] for params in payloads}  # nothing out of thin air
    assert setup.repeated_effects() == [], report
    assert setup.repeated_keys() == []
    assert set(setup.states()) == {"done"}, setup.states()
    assert second.terminate() == 0, second.log
    assert "Traceback" not in second.log, second.log


# -- 2. the database crashes mid-burst and comes back -----------------------------------------
def test_database_crash_mid_burst_loses_no_acknowledged_event(
    tmp_path: Path, own_postgres: PostgresCluster, setups: list[PgSetup]
) -> None:
    cluster = own_postgres
    setup = PgSetup(
        tmp_path,
        cluster.url,
        "crash_inbox",
        TWILIO_TRIGGER_CLAIM_IDLE="1",
        TWILIO_TRIGGER_CONCURRENCY="4",
        TWILIO_TRIGGER_RETRY_BACKOFF="0.1",
        TWILIO_TRIGGER_RETRY_BACKOFF_MAX="0.5",
        TWILIO_TRIGGER_MAX_ATTEMPTS="100",
        TEST_DELAY="0.01",
    )
    setups.append(setup)
    setup.make_effects(unique=True)
    listener, url = setup.listener("listener")

    events = 400
    burst = send_burst([(url, sms_status_payload("delivered")) for _ in range(events)], 8)
    listener.wait_for(lambda: len(burst.acked()) >= events // 4, "a quarter answered 200", 30)
    cluster.crash()
    acked_before_crash = len(burst.acked())
    # The database is away: the events that arrive now are answered 503.
    listener.wait_for(lambda: burst.codes().get("503", 0) >= 5, "503 answers", 30)
    cluster.start()
    burst.join(90)

    acked = burst.acked()
    codes = burst.codes()
    refused = {sid for sid, _ in burst.refused}
    report = (
        f"{acked_before_crash} answered 200 before the crash, {len(acked)} in all; answers {codes}"
    )
    print(report)
    assert set(codes) <= {"200", "503"}, report  # the listener answered every request
    assert len(acked) > acked_before_crash, report  # it took events again after the restart
    settled = settle(setup, acked, 30)
    stored = {str(row[0]) for row in setup.sql("SELECT sid FROM {events}")}
    effects = set(setup.effect_sids())
    assert settled, f"{report}\ninbox {setup.states()}\n{listener.tail()}"
    assert acked <= stored, f"{len(acked - stored)} acknowledged events lost"
    assert acked <= effects
    assert stored <= acked | refused
    assert effects == stored  # what was stored was dispatched, answered 200 or not
    assert set(setup.states()) == {"done"}, setup.states()
    assert setup.repeated_effects() == []

    log = listener.log
    lines = [line for line in log.splitlines() if "cannot be reached" in line]
    told = [line for line in lines if "answered 503 until it can" in line]
    assert len(told) == 1, "\n".join(lines) or log
    # Besides, each entry running at the crash says it will be dispatched again:
    # at most one line per callback slot, never one per request.
    others = [line for line in lines if line not in told]
    assert all("could not record the outcome of inbox entry" in line for line in others), _around(
        log, others
    )
    assert len(others) <= 4, "\n".join(others)
    assert "can be reached again" in log, log
    assert "Traceback" not in log, log
    assert listener.terminate() == 0, listener.tail()


def _around(log: str, lines: list[str]) -> str:
    """Each of *lines* with the first line of the record it belongs to (a traceback's
    lines start with ``  | ``)."""
    all_lines = log.splitlines()
    shown = []
    for line in lines:
        at = start = all_lines.index(line)
        while start > 0 and all_lines[start].startswith("  |"):
            start -= 1
        shown.append(f"{all_lines[start]}\n  ...\n{line}" if start != at else line)
    return "\n---\n".join(shown)


def entry_of(setup: PgSetup, sid: str) -> tuple[str, int] | None:
    """The state and attempts of the inbox entry of *sid* (None when there is none)."""
    rows = setup.sql("SELECT state, attempts FROM {events} WHERE sid = %s", (sid,))
    assert len(rows) <= 1, rows
    return None if not rows else (str(rows[0][0]), int(rows[0][1]))


# -- 3. SIGKILL inside a callback that took the transaction ----------------------------------
def test_kill_inside_the_callback_commits_nothing_and_the_retry_commits_once(
    tmp_path: Path, postgres_database: str, pg_schema: str, setups: list[PgSetup]
) -> None:
    reached = tmp_path / "reached"  # the callback inserted its row, then blocks
    release = tmp_path / "release"  # the callback blocks until this file exists
    setup = PgSetup(
        tmp_path,
        postgres_database,
        pg_schema,
        TWILIO_TRIGGER_CLAIM_IDLE="1",
        TWILIO_TRIGGER_CALLBACK_TIMEOUT="60",
        TEST_REACHED=str(reached),
        TEST_RELEASE=str(release),
    )
    setups.append(setup)
    setup.make_effects(unique=True)
    first, url = setup.listener("first")

    params = sms_status_payload("delivered")
    sid = params["MessageSid"]
    assert signed_post(url, params, TOKEN).status_code == 200
    first.wait_for(reached.exists, "the callback to insert its row and block")
    assert reached.read_text() == sid
    assert setup.effect_count() == 0  # inserted, not committed
    assert entry_of(setup, sid) == ("running", 1)

    first.kill()
    assert first.popen.returncode == -signal.SIGKILL
    # The transaction died with its connection: nothing of it was kept.
    assert setup.effect_count() == 0
    assert entry_of(setup, sid) == ("running", 1)  # until its lease lapses

    release.touch()
    reached.unlink()
    second, _ = setup.listener("second")
    second.wait_for(lambda: entry_of(setup, sid) == ("done", 2), "the entry done on attempt 2")
    assert reached.read_text() == sid  # dispatched again, by the second listener
    rows = setup.sql("SELECT sid, pid FROM {effects}")
    assert rows == [(sid, second.pid)]
    assert second.terminate() == 0, second.log
    assert "Traceback" not in second.log, second.log


# -- 4. a callback that fails after writing through its transaction -------------------------
def test_callback_failing_after_its_insert_commits_only_the_retry(
    tmp_path: Path, postgres_database: str, pg_schema: str
) -> None:
    marker = tmp_path / "failed-once"
    setup = PgSetup(tmp_path, postgres_database, pg_schema)  # for its tables, no process
    setup.make_effects(unique=True)
    insert = "INSERT INTO {effects} (sid, pid) VALUES (%s, 0)".replace("{effects}", setup.effects)

    class FailsOnce(twilio.SmsStatusService):
        async def on_delivered(self, event: twilio.SmsStatusChangeEvent, tx: Any) -> None:
            await tx.execute(insert, (event.sid,))
            if not marker.exists():
                marker.touch()
                raise RuntimeError(f"the first attempt for {event.sid} fails after its insert")

    listener = twilio.Listener(
        0,
        host="127.0.0.1",
        auth_tokens=[TOKEN],
        inbox=postgres_database,
        postgres_schema=pg_schema,
        claim_idle=1,
        retry_backoff=0.05,
        retry_backoff_max=0.1,
        concurrency=2,
    )
    listener.attach(FailsOnce())
    params = sms_status_payload("delivered")
    sid = params["MessageSid"]
    with listener:
        assert signed_post(listener.url, params, TOKEN).status_code == 200
        done = eventually(lambda: entry_of(setup, sid) == ("done", 2), 15, 0.05)
        assert done, entry_of(setup, sid)
    assert marker.exists()
    assert setup.sql("SELECT sid FROM {effects}") == [(sid,)]
    rows = setup.sql("SELECT state, attempts, last_error FROM {events}")
    assert len(rows) == 1
    state, attempts, last_error = rows[0]
    assert (state, attempts) == ("done", 2)
    assert "fails after its insert" in str(last_error)


# -- 5. two listeners, two workers, one worker killed ---------------------------------------
DISTINCT = 5000
COPIES = 500


def test_two_listeners_and_two_workers_with_one_killed_take_effect_once(
    tmp_path: Path, postgres_database: str, pg_schema: str, setups: list[PgSetup]
) -> None:
    deadline = time.monotonic() + 90
    setup = PgSetup(
        tmp_path,
        postgres_database,
        pg_schema,
        TWILIO_TRIGGER_CLAIM_IDLE="2",
        TWILIO_TRIGGER_RETRY_BACKOFF="0.1",
        TWILIO_TRIGGER_RETRY_BACKOFF_MAX="0.5",
        TEST_DELAY="0.01",
    )
    setups.append(setup)
    setup.make_effects(unique=True)
    # The listeners dispatch too (a listener with an inbox always does): one slot each
    # leaves most of the work to the workers.  The first one creates the tables; the
    # others start together once it has.
    ports = [free_port(), free_port()]

    def serve(n: int, port: int) -> Process:
        return setup.start(
            f"listener{n}",
            "run",
            "service:listener",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            TWILIO_TRIGGER_CONCURRENCY="1",
        )

    listeners = [serve(1, ports[0])]
    listeners[0].wait_for(lambda: "listening on" in listeners[0].log, "'listening on'")
    listeners.append(serve(2, ports[1]))
    workers = [
        setup.start(f"worker{n}", "worker", "service:listener", TWILIO_TRIGGER_CONCURRENCY="8")
        for n in (1, 2)
    ]
    listeners[1].wait_for(lambda: "listening on" in listeners[1].log, "'listening on'")
    for worker in workers:
        worker.wait_working()
    doomed, survivor = workers

    distinct = [sms_status_payload("delivered") for _ in range(DISTINCT)]
    sends = [(f"http://127.0.0.1:{ports[0]}/", params) for params in distinct]
    sends += [
        (f"http://127.0.0.1:{ports[1]}/", params) for params in random.sample(distinct, COPIES)
    ]
    random.shuffle(sends)
    burst = send_burst(sends, 16)

    doomed.wait_for(
        lambda: setup.check_alive() and setup.effect_count() >= DISTINCT // 3,
        "a third of the effects",
        timeout=deadline - time.monotonic(),
    )
    doomed.kill()
    assert doomed.popen.returncode == -signal.SIGKILL
    held = setup.sql(
        "SELECT count(*) FROM {events} WHERE state = 'running' AND worker LIKE %s",
        (f"%-{doomed.pid}-%",),
    )[0][0]
    at_kill = setup.effect_count()
    burst.join(max(1.0, deadline - time.monotonic()))

    codes = burst.codes()
    assert codes == {"200": DISTINCT + COPIES}, codes
    sids = {params["MessageSid"] for params in distinct}
    settled = settle(setup, sids, max(1.0, deadline - time.monotonic()))
    per_pid = collections.Counter(row[0] for row in setup.sql("SELECT pid FROM {effects}"))
    attempts = collections.Counter(row[0] for row in setup.sql("SELECT attempts FROM {events}"))
    report = (
        f"killed worker {doomed.pid} at {at_kill} effects, holding {held} entries; "
        f"effects per process {dict(per_pid)}; entries per attempts {dict(attempts)}; "
        f"inbox {setup.states()}; {time.monotonic() - deadline + 90:.1f} s"
    )
    print(report)
    assert settled, f"{report}\n{survivor.tail()}"
    assert setup.effect_count() == DISTINCT, report
    assert set(setup.effect_sids()) == sids
    assert setup.repeated_effects() == []
    assert setup.repeated_keys() == []
    assert setup.states() == {"done": DISTINCT}, report
    assert per_pid[doomed.pid] > 0, report  # it worked before it was killed
    assert per_pid[survivor.pid] > 0, report
    # What the killed worker held was taken over: a second attempt each.
    assert sum(n for tries, n in attempts.items() if tries >= 2) >= held, report
    for process in (*listeners, survivor):
        assert process.terminate() == 0, process.tail()
    for process in (*listeners, *workers):
        log = process.log
        assert "duplicate key" not in log, process.tail()
        assert "UniqueViolation" not in log, process.tail()
        if process is not doomed:
            assert "Traceback" not in log, process.tail()


# -- processes creating the tables together ---------------------------------------------------
def test_an_inbox_opening_while_another_process_creates_the_tables_opens(
    postgres_database: str, pg_schema: str
) -> None:
    """What happens when listeners and workers start together on a new schema: one
    creates the tables under the migration lock, the others wait for it, then find
    the tables made.  Here the other process is a connection of the test that holds
    the lock, waits until the inbox waits for it, and migrates."""

    async def race() -> None:
        inbox = PostgresInbox(postgres_database, schema=pg_schema)
        other = await psycopg.AsyncConnection.connect(postgres_database, autocommit=True)
        try:
            async with other.transaction():
                await other.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"twilio-trigger:{pg_schema}",)
                )
                opening = asyncio.ensure_future(inbox.open())
                deadline = time.monotonic() + 10
                while True:  # until the inbox waits for the lock
                    cursor = await other.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
                        "granted AND database = (SELECT oid FROM pg_database WHERE datname = "
                        "current_database()) AND objid::bigint = (hashtext(%s)::bigint & "
                        "4294967295)",
                        (f"twilio-trigger:{pg_schema}",),
                    )
                    row = await cursor.fetchone()
                    if row is not None and row[0] > 0:
                        break
                    assert not opening.done(), opening.result()
                    assert time.monotonic() < deadline, "the inbox never waited for the lock"
                    await asyncio.sleep(0.02)
                assert await migrate(other, pg_schema) == (0, SCHEMA_VERSION)
            await opening  # the tables are there: nothing to do
        finally:
            await other.close()
            await inbox.close()

    asyncio.run(race())
