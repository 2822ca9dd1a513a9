"""The request thread's executor of the sync bridge, beyond what the adapters' tests reach."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from tests.adapters.conftest import DEADLINE
from twilio_trigger.adapters._sync import _RequestThread


def test_a_function_submitted_after_the_answer_runs_in_a_thread_of_its_own() -> None:
    here = _RequestThread()
    answered: Future[None] = Future()
    answered.set_result(None)
    here.run_until_future(answered)

    # Submitted from another thread, as the event loop does, by a task that
    # outlived its request: nobody serves the request's thread any more.
    with ThreadPoolExecutor(1) as loop_side:
        late = loop_side.submit(here.submit, threading.get_ident).result(DEADLINE)
        submitter = loop_side.submit(threading.get_ident).result(DEADLINE)

    ran_in = late.result(DEADLINE)
    assert ran_in not in (threading.get_ident(), submitter)


def test_a_function_submitted_before_the_answer_runs_in_the_request_thread() -> None:
    here = _RequestThread()
    answered: Future[int] = Future()

    def loop_side() -> None:
        submitted = here.submit(threading.get_ident)
        answered.set_result(submitted.result(DEADLINE))

    thread = threading.Thread(target=loop_side)
    thread.start()
    here.run_until_future(answered)
    thread.join(DEADLINE)

    assert answered.result() == threading.get_ident()


def test_a_system_exit_in_a_function_fails_its_future_and_is_kept_for_the_request_thread() -> None:
    here = _RequestThread()
    answered: Future[BaseException | None] = Future()

    def leave() -> None:
        raise SystemExit(3)

    def loop_side() -> None:
        answered.set_result(here.submit(leave).exception(DEADLINE))

    thread = threading.Thread(target=loop_side)
    thread.start()
    here.run_until_future(answered)
    thread.join(DEADLINE)

    failure = answered.result()
    assert isinstance(failure, RuntimeError)
    assert str(failure) == "the callback raised SystemExit"
    with pytest.raises(SystemExit) as escaped:
        here.raise_escaped()
    assert escaped.value.code == 3
