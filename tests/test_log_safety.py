"""Log lines that a request cannot forge, URLs that never show a password, and
refusals told once a minute per reason."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from twilio_trigger import JsonFormatter, TextFormatter
from twilio_trigger._logging import printable, shown_url
from twilio_trigger._observe import Refusal, RefusalLog

FORGED = "2026-01-01 00:00:00,000 CRITICAL twilio_trigger: FORGED"


def record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
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
        made = record("callback failed for %s", f"SM1\n{FORGED}", exc_info=sys.exc_info())
    lines = TextFormatter().format(made).split("\n")
    assert lines[0].endswith(f"WARNING twilio_trigger: callback failed for SM1\\n{FORGED}")
    assert all(line.startswith("  | ") for line in lines[1:]), lines
    assert lines[1] == "  | Traceback (most recent call last):"
    assert lines[-2:] == ["  | ValueError: quoted", f"  | {FORGED}\\x1b[31m"]


def test_the_json_format_escapes_what_a_line_reader_would_split() -> None:
    line = JsonFormatter().format(record("%s", "a\nb\x85c\u2028d\x1be é"))
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
