"""What the listener tells about its work, without any server: the JSON log format,
the one record per event of :class:`EventLog`, level names, and the new options'
validation."""

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

import twilio_trigger as twilio
from twilio_trigger import ConfigurationError, JsonFormatter
from twilio_trigger._config import ENVIRONMENT, Settings
from twilio_trigger._dispatch import Outcome, Result
from twilio_trigger._events import TwilioEvent
from twilio_trigger._logging import TEXT_FORMAT, configure_logging
from twilio_trigger._observe import (
    Attempt,
    EventLog,
    Observer,
    Observers,
    Refusal,
    parse_level,
)
from twilio_trigger.testing import call_event, sms_event

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


# -- EventLog --------------------------------------------------------------------------
class CarrierError(RuntimeError):
    pass


def raised() -> CarrierError:
    try:
        raise CarrierError("the carrier's lookup exploded")
    except CarrierError as error:
        return error


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def one(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    found = [r for r in caplog.records if r.name == LOGGER]
    assert len(found) == 1, [r.getMessage() for r in found]
    return found[0]


def fields(made: logging.LogRecord) -> dict[str, object]:
    names = ("kind", "sid", "status", "callback", "outcome", "duration_ms", "attempt",
             "retry_in_s", "dead_letter", "error", "previous_status")  # fmt: skip
    return {name: getattr(made, name) for name in names if hasattr(made, name)}


def test_event_log_handled(log: pytest.LogCaptureFixture) -> None:
    event = sms_event("delivered")
    EventLog().finished(event, Result(Outcome.HANDLED, "Tracker.on_delivered", None, None, 0.0123))
    made = one(log)
    assert made.levelno == logging.INFO
    assert made.getMessage() == (
        f"sms {event.sid} (delivered) -> Tracker.on_delivered: handled in 12.3 ms"
    )
    assert fields(made) == {
        "kind": "sms",
        "sid": event.sid,
        "status": "delivered",
        "callback": "Tracker.on_delivered",
        "outcome": "handled",
        "duration_ms": 12.3,
    }
    assert made.exc_info is None


def test_event_log_failure_is_an_error_with_its_traceback(log: pytest.LogCaptureFixture) -> None:
    event, error = call_event("completed"), raised()
    EventLog().finished(event, Result(Outcome.FAILED, "Calls.on_completed", error, None, 0.5))
    made = one(log)
    assert made.levelno == logging.ERROR
    assert made.getMessage() == (
        f"call {event.sid} (completed) -> Calls.on_completed: failed in 500.0 ms with CarrierError"
    )
    assert fields(made)["error"] == "CarrierError"
    assert fields(made)["outcome"] == "failed"
    assert made.exc_info is not None
    assert made.exc_info[1] is error
    text = logging.Formatter().format(made)
    assert "Traceback (most recent call last):" in text
    assert "CarrierError: the carrier's lookup exploded" in text


def test_event_log_returned_error_has_no_traceback_frames(log: pytest.LogCaptureFixture) -> None:
    error = CarrierError("returned, not raised")
    EventLog().finished(sms_event("failed"), Result(Outcome.FAILED, "T.on_failed", error))
    made = one(log)
    assert made.levelno == logging.ERROR
    assert made.exc_info is not None
    assert made.exc_info[1] is error
    assert "duration_ms" not in fields(made)  # no time was measured


def test_event_log_timed_out(log: pytest.LogCaptureFixture) -> None:
    event = sms_event("sent")
    result = Result(Outcome.TIMED_OUT, "T.on_sent", TimeoutError("time limit"), None, 10.0)
    EventLog().finished(event, result)
    made = one(log)
    assert made.levelno == logging.ERROR
    assert made.getMessage() == (
        f"sms {event.sid} (sent) -> T.on_sent: timed out in 10000.0 ms (past its time limit)"
    )
    assert made.exc_info is None
    assert "error" not in fields(made)


def test_event_log_retry_note(log: pytest.LogCaptureFixture) -> None:
    event, error = sms_event("undelivered"), raised()
    EventLog().finished(
        event,
        Result(Outcome.FAILED, "T.on_undelivered", error, None, 0.002),
        Attempt(1, 3, retry_in=2.4567),
    )
    made = one(log)
    assert made.levelno == logging.WARNING  # it will be tried again
    assert made.getMessage() == (
        f"sms {event.sid} (undelivered) -> T.on_undelivered: failed in 2.0 ms with "
        f"CarrierError; attempt 1 of 3, next in 2.5 s"
    )
    assert fields(made)["attempt"] == 1
    assert fields(made)["retry_in_s"] == 2.457
    assert "dead_letter" not in fields(made)
    assert made.exc_info is not None


def test_event_log_dead_letter_note(log: pytest.LogCaptureFixture) -> None:
    event, error = sms_event("undelivered"), raised()
    EventLog().finished(
        event,
        Result(Outcome.FAILED, "T.on_undelivered", error, None, 0.002),
        Attempt(3, 3, dead_letter=42),
    )
    made = one(log)
    assert made.levelno == logging.ERROR  # given up on
    assert made.getMessage().endswith("; attempt 3 of 3: kept as dead letter 42")
    assert fields(made)["dead_letter"] == 42
    assert fields(made)["attempt"] == 3
    assert "retry_in_s" not in fields(made)


def test_event_log_handled_on_a_later_attempt(log: pytest.LogCaptureFixture) -> None:
    event = sms_event("delivered")
    EventLog().finished(
        event, Result(Outcome.HANDLED, "T.on_delivered", None, None, 0.001), Attempt(2, 5)
    )
    made = one(log)
    assert made.levelno == logging.INFO
    assert made.getMessage().endswith("handled in 1.0 ms; attempt 2 of 5")
    assert fields(made)["attempt"] == 2


def test_event_log_handled_on_the_first_attempt_says_nothing_of_it(
    log: pytest.LogCaptureFixture,
) -> None:
    event = sms_event("delivered")
    EventLog().finished(
        event, Result(Outcome.HANDLED, "T.on_delivered", None, None, 0.001), Attempt(1, 5)
    )
    made = one(log)
    assert "attempt" not in made.getMessage()
    assert fields(made)["attempt"] == 1


def test_event_log_stale(log: pytest.LogCaptureFixture) -> None:
    event = sms_event("sent")
    event._place("delivered", True)
    EventLog().finished(event, Result(Outcome.STALE))
    made = one(log)
    assert made.levelno == logging.INFO
    assert made.getMessage() == f"sms {event.sid} (sent): stale after delivered"
    assert fields(made) == {
        "kind": "sms",
        "sid": event.sid,
        "status": "sent",
        "callback": None,
        "outcome": "stale",
        "previous_status": "delivered",
    }


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        (Outcome.DUPLICATE, "duplicate"),
        (Outcome.NO_CALLBACK, "no callback"),
        (Outcome.NO_SERVICE, "no service"),
        (Outcome.UNKNOWN_STATUS, "unknown status"),
    ],
)
def test_event_log_undispatched_outcomes(
    log: pytest.LogCaptureFixture, outcome: Outcome, words: str
) -> None:
    event = call_event("ringing")
    EventLog().finished(event, Result(outcome))
    made = one(log)
    assert made.levelno == logging.INFO
    assert made.getMessage() == f"call {event.sid} (ringing): {words}"
    assert fields(made)["outcome"] == outcome.value


def test_event_log_level_hides_everyday_events_but_not_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    quiet = EventLog(logging.DEBUG)
    quiet.finished(sms_event("delivered"), Result(Outcome.HANDLED, "T.on_delivered", None, None, 0))
    assert [r for r in caplog.records if r.name == LOGGER] == []
    quiet.finished(sms_event("failed"), Result(Outcome.FAILED, "T.on_failed", raised(), None, 0))
    assert one(caplog).levelno == logging.ERROR


def test_event_log_at_a_chosen_level(log: pytest.LogCaptureFixture) -> None:
    EventLog(logging.WARNING).finished(
        sms_event("delivered"), Result(Outcome.HANDLED, "T.on_delivered", None, None, 0)
    )
    assert one(log).levelno == logging.WARNING


class Told(Observer):
    def __init__(self, name: str, said: list[str]) -> None:
        self.name, self.said = name, said

    def rejected(self, refusal: Refusal) -> None:
        self.said.append(f"{self.name} rejected {refusal.reason}")

    def flush(self) -> None:
        self.said.append(f"{self.name} flushed")

    def answered(self, status: int) -> None:
        self.said.append(f"{self.name} answered {status}")

    def received(self, event: TwilioEvent) -> None:
        self.said.append(f"{self.name} received {event.status}")

    def finished(self, event: TwilioEvent, result: Result, attempt: Attempt | None = None) -> None:
        assert attempt is not None
        self.said.append(
            f"{self.name} finished {result.outcome.value} {attempt.number} {attempt.of} "
            f"{attempt.retry_in} {attempt.dead_letter}"
        )


def test_observers_tell_each_in_order() -> None:
    said: list[str] = []
    both = Observers([Told("a", said), Told("b", said)])
    event = sms_event("sent")
    both.rejected(Refusal("too_large", 413, "request body too large"))
    both.answered(413)
    both.received(event)
    both.finished(event, Result(Outcome.FAILED), Attempt(1, 2, retry_in=0.5))
    both.flush()
    assert said == [
        "a rejected too_large", "b rejected too_large",
        "a answered 413", "b answered 413",
        "a received sent", "b received sent",
        "a finished failed 1 2 0.5 None", "b finished failed 1 2 0.5 None",
        "a flushed", "b flushed",
    ]  # fmt: skip


# -- Settings: the new options ----------------------------------------------------------
NEW_OPTIONS = (
    "health", "healthz_path", "readyz_path", "metrics", "metrics_path", "metrics_port",
    "metrics_host", "event_log_level", "log_format", "log_level",
)  # fmt: skip


def test_new_options_defaults() -> None:
    settings = Settings.resolve({}, {})
    assert {name: getattr(settings, name) for name in NEW_OPTIONS} == {
        "health": True,
        "healthz_path": "/healthz",
        "readyz_path": "/readyz",
        "metrics": False,
        "metrics_path": "/metrics",
        "metrics_port": None,
        "metrics_host": None,
        "event_log_level": "info",
        "log_format": "text",
        "log_level": "info",
    }


@pytest.mark.parametrize(
    ("option", "text", "parsed"),
    [
        ("health", "off", False),
        ("healthz_path", "/live", "/live"),
        ("readyz_path", "/ready", "/ready"),
        ("metrics", "yes", True),
        ("metrics_path", "/prom", "/prom"),
        ("metrics_port", "9100", 9100),
        ("metrics_host", "10.0.0.5", "10.0.0.5"),
        ("event_log_level", "DEBUG", "debug"),
        ("log_format", " JSON ", "json"),
        ("log_level", "Warning", "warning"),
    ],
)
def test_each_new_option_from_its_environment_variable(
    option: str, text: str, parsed: object
) -> None:
    variable = ENVIRONMENT[option]
    assert variable.startswith("TWILIO_TRIGGER_")
    assert getattr(Settings.resolve({}, {variable: text}), option) == parsed
    assert getattr(Settings.resolve({option: text}, {}), option) == parsed


@pytest.mark.parametrize(
    ("option", "bad", "says"),
    [
        ("event_log_level", "loud", "debug, info, warning, error or critical"),
        ("log_level", "verbose", "debug, info, warning, error or critical"),
        ("log_level", "  ", None),
        ("log_format", "xml", "text or json"),
        ("log_format", "logfmt", "text or json"),
        ("metrics_port", 70000, "between 0 and 65535"),
        ("metrics_port", -1, "between 0 and 65535"),
        ("metrics_port", "ninety", "whole number"),
        ("metrics_port", True, "whole number"),
        ("metrics", "maybe", "true or false"),
        ("health", "perhaps", "true or false"),
        ("healthz_path", "healthz", "path"),
        ("readyz_path", "/ready?full=1", "path"),
        ("metrics_path", "metrics", "path"),
        ("metrics_host", "  ", "empty"),
    ],
)
def test_bad_values_of_new_options_are_refused(option: str, bad: object, says: str | None) -> None:
    with pytest.raises(ConfigurationError, match=option) as caught:
        Settings.resolve({option: bad}, {})
    if says is not None:
        assert says in str(caught.value)
    if isinstance(bad, str) and bad.strip():
        variable = ENVIRONMENT[option]
        with pytest.raises(ConfigurationError, match=variable):
            Settings.resolve({}, {variable: bad})


@pytest.mark.parametrize("option", ["event_log_level", "log_level", "log_format"])
def test_an_empty_variable_counts_as_absent(option: str) -> None:
    assert getattr(Settings.resolve({}, {ENVIRONMENT[option]: "  "}), option) in ("info", "text")


@pytest.mark.parametrize("option", ["event_log_level", "log_level", "log_format"])
def test_the_listener_refuses_bad_log_options(option: str) -> None:
    with pytest.raises(ConfigurationError, match=option):
        twilio.Listener(0, auth_tokens=["t"], **{option: "nonsense"})  # type: ignore[arg-type]


@pytest.mark.parametrize("port", [0, 9100, "9100"])
def test_a_metrics_port_asks_for_metrics(port: object) -> None:
    settings = Settings.resolve({"metrics_port": port}, {})
    assert settings.metrics is True
    assert settings.metrics_port == int(str(port))
    from_env = Settings.resolve({}, {"TWILIO_TRIGGER_METRICS_PORT": str(port)})
    assert (from_env.metrics, from_env.metrics_port) == (True, int(str(port)))


def test_metrics_said_off_stays_off_even_with_a_port() -> None:
    assert Settings.resolve({"metrics": False, "metrics_port": 9100}, {}).metrics is False
    environ = {"TWILIO_TRIGGER_METRICS": "false", "TWILIO_TRIGGER_METRICS_PORT": "9100"}
    assert Settings.resolve({}, environ).metrics is False


def test_the_metrics_path_only_conflicts_where_it_is_served() -> None:
    with pytest.raises(ConfigurationError, match="metrics_path and path"):
        Settings.resolve({"metrics": True, "metrics_path": "/"}, {})
    # On a port of their own, or off, the path is free.
    assert Settings.resolve({"metrics_port": 9100, "metrics_path": "/"}, {}).metrics_path == "/"
    assert Settings.resolve({"metrics_path": "/"}, {}).metrics is False


def test_the_health_paths_only_conflict_when_served() -> None:
    with pytest.raises(ConfigurationError, match="healthz_path and path"):
        Settings.resolve({"path": "/healthz"}, {})
    with pytest.raises(ConfigurationError, match="readyz_path and healthz_path"):
        Settings.resolve({"readyz_path": "/healthz"}, {})
    assert Settings.resolve({"path": "/healthz", "health": False}, {}).path == "/healthz"
