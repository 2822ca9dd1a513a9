"""The daemon threads plain ``def`` callbacks run in (``_threads.py``)."""

from __future__ import annotations

import threading
import time

import pytest

from twilio_trigger._threads import CallbackThreads, callback_threads


def test_work_runs_in_daemon_threads_no_more_than_asked_and_reused() -> None:
    threads = CallbackThreads(most=2, name="test-threads")
    gate = threading.Event()
    names: list[str] = []

    def work(n: int) -> int:
        gate.wait(10)
        names.append(threading.current_thread().name)
        assert threading.current_thread().daemon
        return n * 2

    futures = [threads.submit(work, n) for n in range(6)]
    gate.set()
    assert [f.result(10) for f in futures] == [0, 2, 4, 6, 8, 10]
    assert set(names) <= {"test-threads-1", "test-threads-2"}
    # An idle thread takes the next work: no third thread.
    assert threads.submit(work, 7).result(10) == 14
    assert not any(t.name == "test-threads-3" for t in threading.enumerate())
    threads.shutdown()


def test_an_error_is_the_futures_and_a_shut_down_pool_takes_no_work() -> None:
    threads = CallbackThreads(most=1)

    def fail() -> None:
        raise ValueError("from the callback")

    with pytest.raises(ValueError, match="from the callback"):
        threads.submit(fail).result(10)
    gate = threading.Event()
    busy = threads.submit(gate.wait, 10)
    deadline = time.monotonic() + 10
    while not busy.running():  # taken by the one thread
        assert time.monotonic() < deadline, "the thread never took the work"
        time.sleep(0.001)
    waiting = threads.submit(lambda: "never")
    threads.shutdown(cancel_futures=True)
    assert waiting.cancelled()
    gate.set()
    assert busy.result(10) is True
    with pytest.raises(RuntimeError, match="shut down"):
        threads.submit(lambda: None)


def test_the_process_has_one_pool() -> None:
    assert callback_threads() is callback_threads()
