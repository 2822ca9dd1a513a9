"""Log formats (``_logging.py``): the JSON and text formatters, lines a request cannot
forge, URLs that never show a password, ``configure_logging`` and level names.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from twilio_trigger import ConfigurationError, JsonFormatter, TextFormatter
from twilio_trigger._config import Settings
from twilio_trigger._logging import (
    TEXT_FORMAT,
    configure_logging,
    parse_level,
    printable,
    shown_url,
)

LOGGER = "twilio_trigger"
#: 2023-11-14T22:13:20.123 UTC
CREATED = 1_700_000_000.123


# -- JsonFormatter ---------------------------------------------------------------------
def record(
    message: str = "hello %s",
    args: tuple[object, ...] = ("world",),
    *,
    level: int = logging.INFO,
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
    stack: str | None = None,
) -> logging.LogRecord:
    made = logging.getLogger(f"{LOGGER}.tests").makeRecord(
        f"{LOGGER}.tests", level, __file__, 42, message, args, exc_info, "func", extra, stack
    )
    made.created, made.msecs = CREATED, 123.0
    return made


def formatted(made: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(made)
    assert "\n" not in line, line  # one line per record, whatever it holds
    document = json.loads(line)
    assert isinstance(document, dict)
    return document


def test_json_formatter_writes_time_level_logger_and_message() -> None:
    assert formatted(record()) == {
        "time": "2023-11-14T22:13:20.123Z",
        "level": "INFO",
        "logger": "twilio_trigger.tests",
        "message": "hello world",
    }


def test_json_formatter_adds_the_extra_fields_with_their_json_types() -> None:
    extra = {
        "sid": "SM" + "0" * 32,
        "duration_ms": 12.345,
        "attempt": 2,
        "dead_letter": None,
        "stale": True,
        "checks": {"inbox": "ok"},
        "statuses": ["sent", "delivered"],
    }
    document = formatted(record(level=logging.WARNING, extra=extra))
    assert document["level"] == "WARNING"
    for name, value in extra.items():
        assert document[name] == value, name
    assert set(document) == {"time", "level", "logger", "message", *extra}


def test_json_formatter_leaves_out_the_attributes_every_record_has() -> None:
    document = formatted(record(extra={"kind": "sms"}))
    for standard in (
        "args", "msg", "levelno", "levelname", "pathname", "filename", "module", "lineno",
        "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
        "process", "processName", "exc_info", "exc_text", "stack_info", "name",
        "taskName", "asctime", "color_message",
    ):  # fmt: skip
        assert standard not in document, standard
    assert document["kind"] == "sms"


def test_json_formatter_does_not_let_an_extra_field_replace_its_own() -> None:
    document = formatted(record(extra={"level": "DEBUG", "logger": "elsewhere", "time": "0"}))
    assert document["level"] == "INFO"
    assert document["logger"] == "twilio_trigger.tests"
    assert document["time"] == "2023-11-14T22:13:20.123Z"


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


def test_json_formatter_writes_other_values_as_their_text() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    document = formatted(
        record(
            extra={
                "when": moment,
                "where": Path("/var/lib/events.db"),
                "thing": Opaque(),
                "raw": b"\x00\xff",
                "error": ValueError("boom"),
            }
        )
    )
    assert document["when"] == str(moment)
    assert document["where"] == "/var/lib/events.db"
    assert document["thing"] == "<opaque thing>"
    assert document["raw"] == str(b"\x00\xff")
    assert document["error"] == "boom"


def test_json_formatter_keeps_non_ascii_text_as_it_is() -> None:
    line = JsonFormatter().format(record("café %s", ("→ ok",), extra={"city": "São Paulo"}))
    assert "café → ok" in line
    assert "São Paulo" in line
    assert json.loads(line)["message"] == "café → ok"


def test_json_formatter_adds_the_traceback() -> None:
    try:
        raise ValueError("the carrier's lookup exploded")
    except ValueError:
        made = record("failed", (), level=logging.ERROR, exc_info=sys.exc_info())
    document = formatted(made)
    traceback = document["traceback"]
    assert traceback.startswith("Traceback (most recent call last):"), traceback
    assert "test_json_formatter_adds_the_traceback" in traceback
    assert traceback.rstrip().endswith("ValueError: the carrier's lookup exploded")
    assert document["level"] == "ERROR"
    assert document["message"] == "failed"


def test_json_formatter_adds_a_traceback_formatted_before() -> None:
    made = record("failed", ())
    made.exc_text = "Traceback (most recent call last):\nKeyError: 'x'"
    assert formatted(made)["traceback"] == made.exc_text


def test_json_formatter_adds_the_stack() -> None:
    document = formatted(record(stack="Stack (most recent call last):\n  File x"))
    assert document["stack"].startswith("Stack (most recent call last):")


def test_json_formatter_through_a_logger() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"{LOGGER}.tests.through")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("%d events", 3, extra={"sid": "SM1"})
        lookup: dict[str, str] = {}
        try:
            lookup["missing"]
        except KeyError:
            logger.exception("lookup failed", extra={"kind": "call"})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["level"], first["message"], first["sid"]) == ("WARNING", "3 events", "SM1")
    assert (second["level"], second["kind"]) == ("ERROR", "call")
    assert "KeyError: 'missing'" in second["traceback"]


# -- configure_logging -------------------------------------------------------------------
@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level put back as they were afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_configure_logging_json_replaces_the_handlers(
    root_logging: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    root_logging.addHandler(logging.NullHandler())
    configure_logging("json", logging.DEBUG)
    configure_logging("json", logging.DEBUG)  # again: still one handler
    assert len(root_logging.handlers) == 1
    assert isinstance(root_logging.handlers[0].formatter, JsonFormatter)
    assert root_logging.level == logging.DEBUG
    logging.getLogger(f"{LOGGER}.tests").debug("to %s", "stderr", extra={"sid": "SM9"})
    line = capsys.readouterr().err.strip()
    document = json.loads(line)
    assert document["level"] == "DEBUG"
    assert (document["message"], document["sid"]) == ("to stderr", "SM9")


def test_configure_logging_text(
    root_logging: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text", logging.WARNING)
    [handler] = root_logging.handlers
    assert handler.formatter is not None
    assert not isinstance(handler.formatter, JsonFormatter)
    assert handler.formatter._fmt == TEXT_FORMAT
    logger = logging.getLogger(f"{LOGGER}.tests")
    logger.info("hidden")
    logger.warning("shown", extra={"sid": "SM1"})
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING twilio_trigger\.tests: shown\n", err
    ), err


@pytest.mark.parametrize("bad", ["xml", "JSON ", "", "logfmt"])
def test_configure_logging_refuses_other_formats(root_logging: logging.Logger, bad: str) -> None:
    handlers = root_logging.handlers[:]
    with pytest.raises(ValueError, match="text or json"):
        configure_logging(bad)
    assert root_logging.handlers == handlers  # nothing was replaced


FORGED = "2026-01-01 00:00:00,000 CRITICAL twilio_trigger: FORGED"


def warning_record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord(
        "twilio_trigger",
        logging.WARNING,
        __file__,
        1,
        message,
        args,
        exc_info,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain SM123 delivered", "plain SM123 delivered"),
        ("café → ok ✓", "café → ok ✓"),
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("nel\x85c1\x9b", "nel\\x85c1\\x9b"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("bidi\u202eevil\u2066", "bidi\\u202eevil\\u2066"),
        ("nbsp\u00a0zwj\u200d", "nbsp\u00a0zwj\u200d"),  # not printable, but harmless
    ],
)
def test_printable_escapes_what_could_forge_or_disturb_a_line(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_the_text_format_keeps_a_record_on_lines_of_its_own() -> None:
    try:
        raise ValueError(f"quoted\n{FORGED}\x1b[31m")
    except ValueError:
        made = warning_record("callback failed for %s", f"SM1\n{FORGED}", exc_info=sys.exc_info())
    lines = TextFormatter().format(made).split("\n")
    assert lines[0].endswith(f"WARNING twilio_trigger: callback failed for SM1\\n{FORGED}")
    assert all(line.startswith("  | ") for line in lines[1:]), lines
    assert lines[1] == "  | Traceback (most recent call last):"
    assert lines[-2:] == ["  | ValueError: quoted", f"  | {FORGED}\\x1b[31m"]


def test_the_json_format_escapes_what_a_line_reader_would_split() -> None:
    line = JsonFormatter().format(warning_record("%s", "a\nb\x85c\u2028d\x1be é"))
    assert "\n" not in line
    assert "\x85" not in line
    assert "\u2028" not in line
    assert "\x1b" not in line
    assert line.splitlines() == [line]
    assert json.loads(line)["message"] == "a\nb\x85c\u2028d\x1be é"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:pw@host/0", "redis://user:***@host/0"),
        ("redis://token@host", "redis://***@host"),
        ("redis//:pw@host", "redis//:***@host"),
        ("rediss:/ops:pw@host/0", "rediss:/ops:***@host/0"),
        ("user:pw@host", "user:***@host"),
        ("redis://a:b@c@d/1", "redis://a:***@d/1"),
        ("redis://host/0?password=pw&db=1", "redis://host/0?password=***&db=1"),
        ("postgresql://u@h/db?sslmode=require", "postgresql://***@h/db?sslmode=require"),
        ("sqlite:///var/lib/events.db", "sqlite:///var/lib/events.db"),
        ("memory", "memory"),
    ],
)
def test_shown_urls_never_carry_a_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown


# -- parse_level ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("debug", logging.DEBUG),
        ("info", logging.INFO),
        ("warning", logging.WARNING),
        ("error", logging.ERROR),
        ("critical", logging.CRITICAL),
        (" INFO ", logging.INFO),
        ("Warning", logging.WARNING),
    ],
)
def test_parse_level(name: str, level: int) -> None:
    assert parse_level(name) == level


@pytest.mark.parametrize("bad", ["verbose", "", "  ", "10", "Level 5", "inf"])
def test_parse_level_refuses_unknown_names(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        parse_level(bad)


def test_parse_level_refuses_notset() -> None:
    # Level 0 is none of the five names it documents: as event_log_level it would
    # log every event at a level no logger ever passes, hiding them all for good.
    with pytest.raises(ValueError, match="unknown log level"):
        parse_level("notset")
    with pytest.raises(ConfigurationError, match="event_log_level"):
        Settings.resolve({"event_log_level": "notset"}, {})
