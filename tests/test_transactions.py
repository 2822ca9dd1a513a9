"""Callbacks that take a transaction (``async def on_delivered(self, event, tx)``).

Real listeners on loopback, signed requests, the machine's PostgreSQL: each test
works in a schema of its own (``pg_schema``), where the listener keeps its tables
and the test a ``ledger`` table that the callbacks write to.  What a callback
writes is looked at from another connection, during the callback (not visible
yet) and after the answer (committed, or not at all).

- inline (``store=postgresql://...``, no inbox): committed when the callback
  returns, rolled back when it raises, returns a failure, runs past its time, or
  calls ``commit()`` itself;
- from a PostgreSQL inbox: the row and the entry's ``done`` commit in one
  transaction (the same ``xmin``), a failed attempt commits neither;
- a sync callback that takes a transaction is refused at attach, an async one
  without a PostgreSQL inbox or store when the listener starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.pq import TransactionStatus

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.postgres_support import pg_schema, postgres_database, scalar

__all__ = ["pg_schema", "postgres_database"]  # the fixtures, imported for pytest to find

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
CALLBACK_FAILED = "the event's callback failed; see the listener's log"
CALLBACK_TIMED_OUT = "the event's callback ran past its time limit"
WAIT = 15.0


@pytest.fixture(autouse=True)
def _no_listener_options_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option these tests rely on comes from the test, none from the environment."""
    for name in list(os.environ):
        if name.startswith("TWILIO_TRIGGER_") or name == "TWILIO_AUTH_TOKEN":
            monkeypatch.delenv(name)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# -- the ledger the callbacks write to ---------------------------------------------------
class Ledger:
    """A table of the test's schema: a row per event a callback booked."""

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.schema = schema
        self.table = f'"{schema}".ledger'
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            connection.execute(
                f"CREATE TABLE {self.table} (sid text PRIMARY KEY, status text NOT NULL)"
            )

    def sids(self) -> list[str]:
        with psycopg.connect(self.url, autocommit=True) as connection:
            rows = connection.execute(f"SELECT sid FROM {self.table} ORDER BY sid").fetchall()
        return [row[0] for row in rows]

    def has(self, sid: str) -> bool:
        return bool(scalar(self.url, f"SELECT count(*) FROM {self.table} WHERE sid = %s", (sid,)))

    def xmin(self, sid: str) -> object:
        """The transaction that wrote *sid*'s row."""
        return scalar(self.url, f"SELECT xmin::text FROM {self.table} WHERE sid = %s", (sid,))

    def entry(self, sid: str) -> tuple[Any, ...] | None:
        """The inbox entry of *sid*: (state, attempts, last_error, xmin)."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            return connection.execute(
                f'SELECT state, attempts, last_error, xmin::text FROM "{self.schema}".events '
                f"WHERE sid = %s",
                (sid,),
            ).fetchone()

    def state(self, sid: str) -> object:
        found = self.entry(sid)
        return None if found is None else found[0]


@pytest.fixture
def ledger(postgres_database: str, pg_schema: str) -> Ledger:
    return Ledger(postgres_database, pg_schema)


@dataclass(frozen=True)
class Seen:
    """What a callback saw of its transaction while it ran."""

    sid: str
    connection: bool  # a psycopg AsyncConnection
    status: TransactionStatus
    row_visible_outside: bool
    entry_state_outside: object


@dataclass
class Booking:
    """What the callbacks do: book the event in the ledger, then maybe fail.

    *fail*: ``"raise"``, ``"return"`` (an exception returned), ``"commit"`` (calls
    ``tx.commit()`` itself), ``"sleep"`` (runs past its time); *failures* says
    how many attempts fail (``None``: every one).
    """

    ledger: Ledger
    fail: str | None = None
    failures: int | None = None
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def book(self, event: twilio.SmsStatusChangeEvent, tx: Any) -> object:
        assert event.sid is not None
        sid = event.sid
        await tx.execute(
            f"INSERT INTO {self.ledger.table} (sid, status) VALUES (%s, %s)", (sid, event.status)
        )
        # Another connection, while the transaction is open: nothing to see yet.
        outside = await asyncio.to_thread(self.ledger.has, sid)
        entry = await asyncio.to_thread(self.ledger.entry, sid)
        with self.lock:
            self.seen.append(
                Seen(
                    sid,
                    isinstance(tx, psycopg.AsyncConnection),
                    tx.info.transaction_status,
                    outside,
                    None if entry is None else entry[0],
                )
            )
            failing = self.fail is not None and (
                self.failures is None or len(self.seen) <= self.failures
            )
        if not failing:
            return None
        if self.fail == "raise":
            raise RuntimeError(f"the ledger refused {sid}")
        if self.fail == "return":
            return RuntimeError(f"the ledger refused {sid}")
        if self.fail == "commit":
            await tx.commit()
        if self.fail == "sleep":
            await asyncio.sleep(30)
        return None

    def calls(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)


class Bookings(twilio.SmsStatusService):
    """A service whose ``on_delivered`` takes the transaction."""

    def __init__(self, booking: Booking) -> None:
        self.booking = booking

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent, tx: Any) -> object:
        return await self.booking.book(event, tx)


@contextlib.contextmanager
def listening(service: object, ledger: Ledger, **options: Any) -> Iterator[twilio.Listener]:
    """A listener on loopback with *service*, its tables in the ledger's schema."""
    options.setdefault("callback_timeout", 5)
    listener = twilio.Listener(
        0, host="127.0.0.1", auth_tokens=[TOKEN], postgres_schema=ledger.schema, **options
    )
    listener.attach(service)
    with listener:
        yield listener


def deliver(listener: twilio.Listener, params: dict[str, str], token: str) -> httpx.Response:
    """One signed delivery; the same *token* again is Twilio's retry of it."""
    return signed_post(
        listener.url, params, TOKEN, headers={"I-Twilio-Idempotency-Token": token}, timeout=30
    )


def new_token() -> str:
    return str(uuid.uuid4())


# -- inline: committed when the callback returns -----------------------------------------
def test_inline_the_callbacks_writes_commit_when_it_returns(ledger: Ledger) -> None:
    booking = Booking(ledger)
    params = sms_status_payload("delivered")
    sid = params["MessageSid"]
    with listening(Bookings(booking), ledger, store=ledger.url) as listener:
        answer = deliver(listener, params, new_token())
        assert answer.status_code == 200, answer.text
        # Committed before the answer: visible to anyone once Twilio has its 200.
        assert ledger.sids() == [sid]
        # The same delivery again: a duplicate, not booked twice.
        assert deliver(listener, params, new_token()).status_code == 200
    (seen,) = booking.calls()
    assert seen.sid == sid
    assert seen.connection, "tx is not a psycopg AsyncConnection"
    assert seen.status is TransactionStatus.INTRANS
    assert not seen.row_visible_outside, "the row was committed before the callback returned"
    assert seen.entry_state_outside is None  # no inbox
    assert ledger.sids() == [sid]


@pytest.mark.parametrize("fail", ["raise", "return"])
def test_inline_nothing_commits_when_the_callback_fails(ledger: Ledger, fail: str) -> None:
    booking = Booking(ledger, fail=fail, failures=1)
    params, token = sms_status_payload("delivered"), new_token()
    sid = params["MessageSid"]
    with listening(Bookings(booking), ledger, store=ledger.url) as listener:
        failed = deliver(listener, params, token)
        assert (failed.status_code, failed.text.strip()) == (500, CALLBACK_FAILED)
        assert ledger.sids() == []
        # Twilio's retry runs it again: the first insert is gone, so the second
        # one (same primary key) succeeds and commits.
        retried = deliver(listener, params, token)
        assert retried.status_code == 200, retried.text
        assert ledger.sids() == [sid]
    assert [seen.status for seen in booking.calls()] == [TransactionStatus.INTRANS] * 2


def test_inline_nothing_commits_when_the_callback_runs_past_its_time(ledger: Ledger) -> None:
    booking = Booking(ledger, fail="sleep", failures=1)
    late, then = sms_status_payload("delivered"), sms_status_payload("delivered")
    with listening(Bookings(booking), ledger, store=ledger.url, callback_timeout=0.5) as listener:
        answer = deliver(listener, late, new_token())
        assert (answer.status_code, answer.text.strip()) == (503, CALLBACK_TIMED_OUT)
        # The next event's transaction is a fresh one: the cancelled one left nothing.
        assert deliver(listener, then, new_token()).status_code == 200
        assert ledger.sids() == [then["MessageSid"]]
    assert len(booking.calls()) == 2


def test_inline_a_commit_of_its_own_fails_and_nothing_commits(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    booking = Booking(ledger, fail="commit")
    params = sms_status_payload("delivered")
    with listening(Bookings(booking), ledger, store=ledger.url) as listener:
        answer = deliver(listener, params, new_token())
        assert (answer.status_code, answer.text.strip()) == (500, CALLBACK_FAILED)
    assert ledger.sids() == []
    failed = [
        record
        for record in caplog.records
        if record.name == "twilio_trigger" and record.levelno == logging.ERROR
    ]
    assert len(failed) == 1, [record.getMessage() for record in failed]
    assert "Bookings.on_delivered" in failed[0].getMessage()
    assert "ProgrammingError" in failed[0].getMessage()
    assert failed[0].exc_info is not None
    assert "commit() forbidden" in str(failed[0].exc_info[1])


def test_inline_with_a_postgres_inbox_an_answered_inline_event_gets_a_plain_transaction(
    ledger: Ledger,
) -> None:
    # A voice request that asks what the call does next is answered inline even
    # with an inbox: its callback's transaction is a plain one from the inbox's pool.
    committed: list[TransactionStatus] = []

    class Voice(twilio.CallStatusService):
        async def on_gather(self, event: twilio.GatherEvent, tx: Any) -> str:
            committed.append(tx.info.transaction_status)
            await tx.execute(
                f"INSERT INTO {ledger.table} (sid, status) VALUES (%s, 'gather')", (event.sid,)
            )
            return "<Response><Say>hello</Say></Response>"

    from twilio_trigger import testing

    params = testing.gather_params("digits")
    with listening(Voice(), ledger, inbox=ledger.url) as listener:
        answer = deliver(listener, params, new_token())
        assert answer.status_code == 200, answer.text
        assert "<Say>hello</Say>" in answer.text
        assert ledger.sids() == [params["CallSid"]]
        assert ledger.entry(params["CallSid"]) is None  # answered inline, never stored
    assert committed == [TransactionStatus.INTRANS]


# -- from a PostgreSQL inbox: the row and the entry's outcome together ---------------------
def test_with_a_postgres_inbox_the_row_and_the_entrys_done_commit_together(
    ledger: Ledger,
) -> None:
    booking = Booking(ledger)
    params = sms_status_payload("delivered")
    sid = params["MessageSid"]
    with listening(Bookings(booking), ledger, inbox=ledger.url) as listener:
        assert deliver(listener, params, new_token()).status_code == 200
        wait_until(lambda: ledger.state(sid) == "done", "the entry to be done")
        assert ledger.sids() == [sid]
    (seen,) = booking.calls()
    assert seen.connection
    assert seen.status is TransactionStatus.INTRANS
    # While the callback ran, neither was committed.
    assert not seen.row_visible_outside
    assert seen.entry_state_outside == "running"
    entry = ledger.entry(sid)
    assert entry is not None
    state, attempts, error, entry_xmin = entry
    assert (state, attempts, error) == ("done", 1, None)
    # One transaction wrote both: the row, and the entry's last version.
    assert ledger.xmin(sid) == entry_xmin


@pytest.mark.parametrize("fail", ["raise", "return", "commit", "sleep"])
def test_with_a_postgres_inbox_a_failed_attempt_commits_nothing(ledger: Ledger, fail: str) -> None:
    booking = Booking(ledger, fail=fail, failures=1)
    params = sms_status_payload("delivered")
    sid = params["MessageSid"]
    limit = 0.5 if fail == "sleep" else 5.0  # "sleep": past its time, cancelled
    with listening(
        Bookings(booking), ledger, inbox=ledger.url, retry_backoff=0.05, callback_timeout=limit
    ) as listener:
        assert deliver(listener, params, new_token()).status_code == 200
        wait_until(lambda: ledger.state(sid) == "done", "the entry to be done")
    # The first attempt's insert was rolled back, or the second (same primary
    # key) would have failed too.
    assert ledger.sids() == [sid]
    calls = booking.calls()
    assert len(calls) == 2
    assert [seen.entry_state_outside for seen in calls] == ["running", "running"]
    entry = ledger.entry(sid)
    assert entry is not None
    state, attempts, error, entry_xmin = entry
    assert (state, attempts) == ("done", 2)
    assert error is not None  # the first attempt's, kept
    assert ledger.xmin(sid) == entry_xmin


def test_with_a_postgres_inbox_a_dead_letter_commits_nothing(ledger: Ledger) -> None:
    booking = Booking(ledger, fail="raise")
    params = sms_status_payload("delivered")
    sid = params["MessageSid"]
    with listening(
        Bookings(booking), ledger, inbox=ledger.url, retry_backoff=0.05, max_attempts=3
    ) as listener:
        assert deliver(listener, params, new_token()).status_code == 200
        wait_until(lambda: ledger.state(sid) == "dead", "the entry to be a dead letter")
    assert len(booking.calls()) == 3
    assert ledger.sids() == []
    entry = ledger.entry(sid)
    assert entry is not None
    assert entry[:2] == ("dead", 3)
    assert f"RuntimeError: the ledger refused {sid}" in entry[2]


# -- a single function --------------------------------------------------------------------
def single_functions(booking: Booking) -> list[Callable[..., Any]]:
    async def on_delivered(event, tx):  # type: ignore[no-untyped-def]
        return await booking.book(event, tx)

    async def typed(event: twilio.SmsStatusChangeEvent, tx: Any) -> object:
        return await booking.book(event, tx)

    typed.__name__ = typed.__qualname__ = "on_delivered"
    return [on_delivered, typed]


@pytest.mark.parametrize("which", [0, 1], ids=["untyped", "typed"])
@pytest.mark.parametrize("where", ["store", "inbox"])
def test_a_single_function_taking_the_transaction(ledger: Ledger, which: int, where: str) -> None:
    booking = Booking(ledger, fail="raise", failures=1)
    function = single_functions(booking)[which]
    params, token = sms_status_payload("delivered"), new_token()
    sid = params["MessageSid"]
    options: dict[str, Any] = {where: ledger.url, "retry_backoff": 0.05}
    with listening(function, ledger, **options) as listener:
        first = deliver(listener, params, token)
        if where == "store":
            assert (first.status_code, first.text.strip()) == (500, CALLBACK_FAILED)
            assert ledger.sids() == []
            assert deliver(listener, params, token).status_code == 200
        else:
            assert first.status_code == 200
            wait_until(lambda: ledger.state(sid) == "done", "the entry to be done")
            assert ledger.xmin(sid) == ledger.entry(sid)[-1]  # type: ignore[index]
        assert ledger.sids() == [sid]
    statuses = [seen.status for seen in booking.calls()]
    assert statuses == [TransactionStatus.INTRANS] * 2
    assert all(seen.connection and not seen.row_visible_outside for seen in booking.calls())


# -- refused: a sync callback, or no PostgreSQL to give the transaction ---------------------
def test_a_sync_callback_taking_the_transaction_is_refused_at_attach() -> None:
    class Sync(twilio.SmsStatusService):
        def on_delivered(self, event: twilio.SmsStatusChangeEvent, tx: Any) -> None:  # type: ignore[override]
            pass

    def on_delivered(event: twilio.SmsStatusChangeEvent, tx: Any) -> None:
        pass

    for service in (Sync(), on_delivered):
        listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
        with pytest.raises(twilio.ServiceError) as refused:
            listener.attach(service)
        message = str(refused.value)
        assert "async def on_delivered(self, event, tx)" in message
        assert "coroutine" in message


def test_a_callback_taking_three_arguments_is_refused_at_attach() -> None:
    class Three(twilio.SmsStatusService):
        async def on_delivered(  # type: ignore[override]
            self, event: twilio.SmsStatusChangeEvent, tx: Any, more: object
        ) -> None:
            pass

    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    with pytest.raises(twilio.ServiceError, match=r"Three\.on_delivered must accept the event"):
        listener.attach(Three())


class Unstartable(twilio.SmsStatusService):
    async def on_delivered(self, event: twilio.SmsStatusChangeEvent, tx: Any) -> None:
        raise AssertionError("never dispatched: the listener does not start")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"store": "memory"},
        {"inbox": "sqlite"},
    ],
    ids=["nothing", "memory-store", "sqlite-inbox"],
)
def test_a_transactional_callback_without_postgres_refuses_to_start(
    tmp_path: Path, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    if options.get("inbox") == "sqlite":
        options = {"inbox": f"sqlite:///{tmp_path / 'events.db'}"}

    def made() -> twilio.Listener:
        listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], **options)
        listener.attach(Unstartable())
        return listener

    listener = made()

    async def start() -> None:
        try:
            await listener.startup()
        finally:
            await listener.shutdown()

    with pytest.raises(twilio.ConfigurationError) as refused:
        asyncio.run(start())
    message = str(refused.value)
    assert message.startswith("Unstartable.on_delivered takes a transaction")
    assert "postgresql://" in message

    # Served: it does not start, and says why.
    served = made()
    with pytest.raises(RuntimeError, match="did not start"):
        served.start()
    assert any(
        record.getMessage() == message and record.levelno >= logging.ERROR
        for record in caplog.records
    ), [record.getMessage() for record in caplog.records]


def test_a_postgres_store_without_deduplication_still_gives_transactions(
    ledger: Ledger,
) -> None:
    booking = Booking(ledger)
    params = sms_status_payload("delivered")
    with listening(Bookings(booking), ledger, store=ledger.url, deduplicate=False) as listener:
        assert deliver(listener, params, new_token()).status_code == 200
    assert ledger.sids() == [params["MessageSid"]]


# -- the callback's own database errors ----------------------------------------------------
@pytest.mark.parametrize("where", ["store", "inbox"])
def test_a_callbacks_own_query_error_is_a_callback_failure_not_an_outage(
    ledger: Ledger, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    class Slow(twilio.SmsStatusService):
        async def on_delivered(self, event: twilio.SmsStatusChangeEvent, tx: Any) -> None:
            await tx.execute(
                f"INSERT INTO {ledger.table} (sid, status) VALUES (%s, 'x')", (event.sid,)
            )
            await tx.execute("SET LOCAL statement_timeout = '20ms'")
            await tx.execute("SELECT pg_sleep(2)")

    params = sms_status_payload("delivered")
    sid = params["MessageSid"]
    options: dict[str, Any] = {where: ledger.url, "max_attempts": 1}
    with listening(Slow(), ledger, **options) as listener:
        answer = deliver(listener, params, new_token())
        if where == "store":
            assert (answer.status_code, answer.text.strip()) == (500, CALLBACK_FAILED)
        else:
            assert answer.status_code == 200
            wait_until(lambda: ledger.state(sid) == "dead", "the dead letter")
    assert ledger.sids() == []
    told = [r.getMessage() for r in caplog.records if "reached" in r.getMessage()]
    assert told == [], told
    failed = [r for r in caplog.records if "Slow.on_delivered" in r.getMessage()]
    assert failed
    assert all("QueryCanceled" in r.getMessage() for r in failed), [r.getMessage() for r in failed]


def test_inline_an_aborted_transaction_is_never_answered_as_handled(ledger: Ledger) -> None:
    class Swallowing(twilio.SmsStatusService):
        async def on_delivered(self, event: twilio.SmsStatusChangeEvent, tx: Any) -> None:
            insert = f"INSERT INTO {ledger.table} (sid, status) VALUES (%s, 'x')"
            await tx.execute(insert, (event.sid,))
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                await tx.execute(insert, (event.sid,))  # aborts the transaction

    params, token = sms_status_payload("delivered"), new_token()
    with listening(Swallowing(), ledger, store=ledger.url) as listener:
        answer = deliver(listener, params, token)
        kept = ledger.sids()
    # Either its writes were kept, or Twilio is told to try again.
    assert answer.status_code != 200 or kept == [params["MessageSid"]], (
        answer.status_code,
        kept,
    )
