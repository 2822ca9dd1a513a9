"""Observers (``_observe.py``): the one record per event of :class:`EventLog`,
observers told in order, and refusals told once per reason.
"""

from __future__ import annotations

import logging

import pytest

from twilio_trigger._core.events import TwilioEvent
from twilio_trigger._invoke import Outcome, Result
from twilio_trigger._observe import (
    Attempt,
    EventLog,
    Observer,
    Observers,
    Refusal,
    RefusalLog,
)
from twilio_trigger.inbox import UnreachableError
from twilio_trigger.testing import call_event, sms_event

LOGGER = "twilio_trigger"


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


@pytest.mark.parametrize("filler", ["A", "\x1b"])
def test_event_log_cuts_a_long_sid_and_status(log: pytest.LogCaptureFixture, filler: str) -> None:
    # Signed, yet of any length (a captured request re-split): one line of a
    # few hundred characters, in the message and in the fields alike.
    sid, status = "SM" + filler * 200_000, "deliver" + filler * 200_000
    event = sms_event("delivered", MessageSid=sid, SmsSid=sid, MessageStatus=status)
    assert (event.sid, event.status) == (sid, status)
    EventLog().finished(event, Result(Outcome.HANDLED, "Tracker.on_status", None, None, 0.001))
    made = one(log)
    assert len(made.getMessage()) < 300
    assert made.getMessage().isprintable()
    logged = fields(made)
    assert isinstance(logged["sid"], str)
    assert isinstance(logged["status"], str)
    assert len(logged["sid"]) == len(logged["status"]) == 100
    assert logged["sid"] == "SM" + filler * 97 + "…"


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


def test_event_log_of_an_outage_has_no_traceback(log: pytest.LogCaptureFixture) -> None:
    # The database went away while the callback's transaction ran: its Outage told
    # that once; each event it interrupted is one line, not a traceback.
    try:
        raise UnreachableError("the PostgreSQL inbox cannot be reached: connection refused")
    except UnreachableError as caught:
        error = caught
    EventLog().finished(sms_event("sent"), Result(Outcome.FAILED, "T.on_sent", error, None, 0.1))
    made = one(log)
    assert made.getMessage().endswith("failed in 100.0 ms with UnreachableError")
    assert made.exc_info is None


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


def refusal(reason: str = "signature_invalid") -> Refusal:
    return Refusal(reason, 403, "invalid X-Twilio-Signature", "203.0.113.7", ("https://h/p",))


def test_refusals_are_told_once_per_reason_then_summed_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")
    now = [1000.0]
    log = RefusalLog(window=60.0, clock=lambda: now[0])
    for _ in range(500):
        log.told(refusal())
    log.told(refusal("too_large"))
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 2, told
    assert "203.0.113.7" in told[0]
    assert "https://h/p" in told[0]
    assert "twilio-trigger verify" in told[0]
    assert "public_url" in told[0]
    caplog.clear()
    now[0] += 61.0  # a new window: the count of the last one, then the new first
    log.told(refusal())
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 2, told
    assert "refused 499 more requests (signature_invalid) in the last 61 s" in told[0]
    assert told[1].startswith("refused a request from 203.0.113.7")
    caplog.clear()
    log.told(refusal())
    log.flush()
    log.flush()  # nothing more to tell
    told = [r.getMessage() for r in caplog.records]
    assert told == [
        "refused 1 more request (signature_invalid) in the last 0 s, not logged one by one"
    ]


def test_a_refusal_never_shows_a_signature_or_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="twilio_trigger")
    RefusalLog().told(Refusal("signature_missing", 403, "missing X-Twilio-Signature header"))
    [told] = caplog.records
    assert told.levelno == logging.WARNING
    assert "an unknown address" in told.getMessage()
    assert told.__dict__["reason"] == "signature_missing"
    assert told.__dict__["status"] == 403


def test_a_refusals_line_is_bounded_and_keeps_no_query_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What a client controls: its address (an X-Forwarded-For a trusted proxy
    # passed on) and the URL it asked for, query included; the line bounds both
    # and shows the query's names only.
    caplog.set_level(logging.WARNING, logger="twilio_trigger")
    query = "From=%2B15558675309&Body=my+secret+PIN+is+4321&" + "Pad=x" * 6000
    urls = tuple(f"https://hooks.example.com/{n}?{query}" for n in range(20))
    RefusalLog().told(
        Refusal("signature_invalid", 403, "invalid X-Twilio-Signature", "10.0.0.1, " * 3000, urls)
    )
    (record,) = [r for r in caplog.records if r.name == "twilio_trigger"]
    line = record.getMessage()
    assert len(line) < 4000, len(line)
    assert "From=…" in line
    assert "Body=…" in line
    # The record's fields but its numbers: its time may hold any four digits.
    fields = {k: v for k, v in record.__dict__.items() if not isinstance(v, float | int)}
    for secret in ("5558675309", "secret", "4321"):
        assert secret not in line
        assert secret not in repr(fields)
    assert len(record.__dict__["remote"]) <= 100
    assert len(record.__dict__["urls"]) == 8
