"""The log of a start-up held back: written as it would have been once the start-up
succeeds, dropped when it fails (the command then says why in one line).

Real handlers on the real root logger, put back as they were after each test.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from twilio_trigger._held_logs import HeldLogs, logs_failed, logs_started

log = logging.getLogger("twilio_trigger.held_test")


@pytest.fixture
def root() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """The root logger with one handler of ours (WARNING and up), writing to a buffer."""
    logger = logging.getLogger()
    saved, level = list(logger.handlers), logger.level
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    yield logger, out
    logger.handlers = saved
    logger.setLevel(level)


def test_held_records_are_written_in_order_once_started(
    root: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = root
    handlers = list(logger.handlers)
    with HeldLogs():
        items = ["first"]
        log.warning("one %s", items)
        items.append("changed later")  # written as it was said
        log.info("below the handler's level")
        log.error("two")
        assert out.getvalue() == ""
        logs_started()
        assert logger.handlers == handlers
        log.warning("three")
    assert out.getvalue() == "WARNING one ['first']\nERROR two\nWARNING three\n"


def test_a_failed_start_drops_what_was_held_and_what_follows(
    root: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = root
    handlers = list(logger.handlers)
    with HeldLogs():
        log.error("an outage, told before the error that says it")
        logs_failed()
        log.error("Application startup failed. Exiting.")
    assert out.getvalue() == ""
    assert logger.handlers == handlers  # and the next records are written
    log.warning("after")
    assert out.getvalue() == "WARNING after\n"


def test_ending_the_hold_writes_what_is_still_held(
    root: tuple[logging.Logger, io.StringIO],
) -> None:
    _, out = root

    def interrupted() -> None:
        with HeldLogs():
            log.warning("before Ctrl-C")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert out.getvalue() == "WARNING before Ctrl-C\n"
    logs_started()  # no hold now: nothing happens


def test_without_handlers_the_last_resort_writes_them(
    root: tuple[logging.Logger, io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    logger, _ = root
    logger.handlers = []
    with HeldLogs():
        log.warning("told on stderr")
        log.info("not by the last resort")
    assert capsys.readouterr().err == "told on stderr\n"


def test_a_logging_set_up_made_while_held_stays(
    root: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = root
    other = io.StringIO()
    with HeldLogs():
        log.warning("held")
        fresh = logging.StreamHandler(other)
        logger.handlers = [fresh]  # as logging.basicConfig(force=True) would
    assert logger.handlers == [fresh]
    assert other.getvalue() == "held\n"
    assert out.getvalue() == ""
