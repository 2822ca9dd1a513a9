"""An outage told once: its start, its end, and successes that prove nothing."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from twilio_trigger._outage import Outage, OutageError, not_answering, refused, watched

LOGGER = "twilio_trigger"


def told(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_an_operation_begun_before_the_outage_was_told_does_not_end_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage = Outage("PostgreSQL inbox", "postgresql://user:secret@db:5432/app")
    before = time.monotonic()  # a statement under way when the server went down
    outage.failed(ConnectionError("server closed the connection unexpectedly"))
    outage.recovered(before)  # it completed on a connection the crash had not reached
    assert outage.ongoing
    outage.failed(ConnectionError("server closed the connection unexpectedly"))
    lines = told(caplog)
    assert len(lines) == 1  # told once, not once per racing completion
    assert lines[0].startswith("the PostgreSQL inbox postgresql://user:***@db:5432/app cannot be")
    assert "secret" not in lines[0]

    outage.recovered(time.monotonic())  # begun after: the database answers again
    assert not outage.ongoing
    lines = told(caplog)
    assert len(lines) == 2
    assert lines[1].startswith("the PostgreSQL inbox postgresql://user:***@db:5432/app can be")
    assert "2 operations failed" in lines[1]


def test_a_success_without_a_start_time_ends_the_outage() -> None:
    outage = Outage("Redis inbox", "redis://127.0.0.1:6379/0")
    outage.failed(ConnectionError("refused"))
    outage.recovered()
    assert not outage.ongoing


# -- during an outage, one operation at a time tries the database ------------------------
def _down() -> Outage:
    outage = Outage("Redis inbox", "redis://127.0.0.1:6379/0")
    outage.failed(ConnectionError("Connection closed by server."))
    return outage


def test_without_an_outage_every_operation_goes_on_at_once() -> None:
    outage = Outage("Redis inbox", "redis://127.0.0.1:6379/0")

    async def both() -> list[bool]:
        return list(await asyncio.gather(outage.admit(), outage.admit()))

    assert asyncio.run(both()) == [False, False]  # none is "the one trying"


def test_those_waiting_go_on_when_the_one_trying_succeeds() -> None:
    outage = _down()

    async def scenario() -> list[bool]:
        assert await outage.admit() is True  # the first tries the database
        waiting = [asyncio.ensure_future(outage.admit(wait=60)) for _ in range(3)]
        await asyncio.sleep(0)  # they wait, each on its loop
        assert not any(task.done() for task in waiting)
        outage.recovered(time.monotonic())  # it succeeded: the outage is over
        outage.tried()
        return list(await asyncio.gather(*waiting))

    assert asyncio.run(scenario()) == [False, False, False]  # no outage: all go on
    assert not outage.ongoing


def test_when_the_one_trying_fails_the_next_one_tries() -> None:
    outage = _down()

    async def scenario() -> list[bool]:
        assert await outage.admit() is True
        waiting = [asyncio.ensure_future(outage.admit(wait=60)) for _ in range(2)]
        await asyncio.sleep(0)
        outage.failed(TimeoutError("Timeout reading from socket"))
        outage.tried()  # failed: still down
        done, pending = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        assert [task.result() for task in done] == [True]  # the next one tries
        (other,) = pending
        outage.tried()
        return [await other]

    assert asyncio.run(scenario()) == [True]  # and then the last one
    assert outage.ongoing


def test_waiting_in_vain_fails_with_the_last_reason_and_counts_as_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage = _down()

    async def scenario() -> OutageError:
        assert await outage.admit() is True  # tries, and hangs (a host that drops packets)
        with pytest.raises(OutageError) as raised:
            await asyncio.ensure_future(outage.admit(wait=0.01))  # another task
        return raised.value

    error = asyncio.run(scenario())
    assert str(error) == (
        "the Redis inbox cannot be reached: ConnectionError: Connection closed by server. "
        "(waited 0.01 s for another operation trying it)"
    )
    assert error.outage is outage
    refused(error)  # a request answered 503 for it
    outage.tried()
    outage.recovered()
    (back,) = [m for m in told(caplog) if "reached again" in m]
    assert "1 request refused (answered 503) meanwhile, 1 operation failed" in back


def test_a_waiter_on_another_event_loop_is_woken_too() -> None:
    outage = _down()
    trying = threading.Event()
    result: list[bool] = []

    def other_loop() -> None:
        async def wait() -> bool:
            trying.wait(10)
            return await outage.admit(wait=60)

        result.append(asyncio.run(wait()))

    async def scenario() -> None:
        assert await outage.admit() is True
        thread = threading.Thread(target=other_loop)
        thread.start()
        trying.set()
        await asyncio.to_thread(_wait_for_waiter, outage)
        outage.recovered(time.monotonic())
        outage.tried()
        await asyncio.to_thread(thread.join, 10)

    asyncio.run(scenario())
    assert result == [False]


def _wait_for_waiter(outage: Outage) -> None:
    deadline = time.monotonic() + 10
    while not outage._waiting and time.monotonic() < deadline:
        time.sleep(0.001)
    assert outage._waiting, "the other loop's operation never waited"


class Watching:
    """An object with an outage and two watched methods, one calling the other (as
    an inbox's list of entries reads each entry)."""

    def __init__(self, outage: Outage) -> None:
        self.outage = outage
        self.calls: list[str] = []

    @watched
    async def outer(self) -> str:
        self.calls.append("outer")
        return await self.inner()

    @watched
    async def inner(self) -> str:
        self.calls.append("inner")
        return "read"


def test_a_watched_method_trying_the_database_may_call_another() -> None:
    outage = _down()
    watching = Watching(outage)
    assert asyncio.run(watching.outer()) == "read"  # not held back by its own try
    assert watching.calls == ["outer", "inner"]
    assert not outage.ongoing  # it succeeded: the outage is over


def test_psycopgs_lines_about_queries_it_could_not_cancel_are_the_outages(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that stops answering leaves psycopg unable to cancel each
    # statement under way: a WARNING apiece, a dozen an outage, each already
    # told by the outage.  Kept out while a database of the package is out; a
    # line that is not about cancelling, or one after the outage, still passes.
    import weakref

    from twilio_trigger._postgres import Database, _cancel_log

    # The outages of this test's database alone (another test's may be ongoing).
    monkeypatch.setattr(_cancel_log, "outages", weakref.WeakSet())
    caplog.set_level(logging.INFO)
    database = Database(
        "postgresql://127.0.0.1:1/none", what="PostgreSQL inbox", pool="twilio-trigger-t",
        max_size=1, statement_timeout=1.0,
    )  # fmt: skip
    psycopg = logging.getLogger("psycopg")

    def told() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "psycopg"]

    database.outage.failed(TimeoutError("no answer"))
    psycopg.warning("query cancellation failed: %s", "cancellation timeout expired")
    psycopg.warning("query not terminated after cancellation: closing connection")
    psycopg.warning("error ignored in rollback on %s: %s", "conn", "boom")
    assert told() == ["error ignored in rollback on conn: boom"]
    database.outage.recovered(None)
    psycopg.warning("query cancellation failed: %s", "after")
    assert told()[-1] == "query cancellation failed: after"


def test_a_process_that_answers_no_request_says_what_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A worker (Listener.work): nothing it does is answered 503.
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage = Outage("Redis inbox", "redis://127.0.0.1:6379/0")
    with not_answering():
        outage.failed(ConnectionError("Connection refused."))
        outage.recovered()
    outage.failed(ConnectionError("Connection refused."))  # a listener's, after
    outage.recovered()
    worker_start, worker_end, start, end = told(caplog)
    assert worker_start.endswith(
        "(ConnectionError: Connection refused.): dispatch waits until it can"
    )
    assert worker_end.endswith(": 1 operation failed")
    assert start.endswith("events are answered 503 until it can")
    assert "0 requests refused (answered 503) meanwhile, 1 operation failed" in end
