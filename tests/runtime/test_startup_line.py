"""The line a listener logs when it starts: where it listens and how it is set up,
in one line for people and as fields for the JSON log format, never a secret.

A real listener on loopback logs it; the other set-ups are read from
``startup_record`` over resolved settings (no Redis or PostgreSQL is opened).
"""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import pytest

import twilio_trigger as twilio
from tests.e2e._support import OTHER_TOKEN, TOKEN, Recorder, SmsRecorder
from tests.test_cli import Running, clean_env, free_port
from twilio_trigger._config import Settings
from twilio_trigger._logging import JsonFormatter, TextFormatter
from twilio_trigger._startup import startup_record

PASSWORD = "hunter2-not-to-be-seen"
WHERE = "http://127.0.0.1:8090/twilio"


def started_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "twilio_trigger" and r.getMessage().startswith("listening on ")
    ]


def record_of(settings: Settings, processes: int = 1) -> logging.LogRecord:
    """The start-up line as a log record, as the listener makes it."""
    level, message, fields = startup_record(settings, WHERE, processes)
    return logging.getLogger("twilio_trigger").makeRecord(
        "twilio_trigger", level, __file__, 0, "%s", (message,), None, extra=fields
    )


def test_a_listener_says_once_where_it_listens_and_how(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_trigger")
    db = tmp_path / "events.db"
    listener = twilio.Listener(
        0,
        host="127.0.0.1",
        path="/twilio",
        auth_tokens=[TOKEN, OTHER_TOKEN],
        public_url="https://hooks.example.com/twilio",
        inbox=f"sqlite:///{db}",
        concurrency=3,
    )
    listener.attach(SmsRecorder(Recorder()))
    with listener:
        port = listener.port
    [line] = started_lines(caplog)
    assert line.levelno == logging.INFO
    message = line.getMessage()
    assert message.startswith(f"listening on http://127.0.0.1:{port}/twilio; "), message
    assert "signatures verified with 2 auth tokens" in message
    assert "against public_url https://hooks.example.com/twilio" in message
    assert f"inbox sqlite:///{db}, 3 callbacks at once" in message
    assert "store memory" in message
    assert message.endswith("; 1 process")
    assert "\n" not in message
    assert TOKEN not in message
    assert OTHER_TOKEN not in message
    # The same, field by field, for the JSON log format.
    fields = {name: vars(line)[name] for name in ("listen_url", "path", "public_url")}
    assert fields == {
        "listen_url": f"http://127.0.0.1:{port}/twilio",
        "path": "/twilio",
        "public_url": "https://hooks.example.com/twilio",
    }
    got = vars(line)
    assert (got["verification"], got["auth_token_count"], got["shared_key_count"]) == (
        "signatures",
        2,
        0,
    )
    assert (got["inbox"], got["store"], got["concurrency"], got["processes"]) == (
        f"sqlite:///{db}",
        "memory",
        3,
        1,
    )
    document = json.loads(JsonFormatter().format(line))
    assert document["listen_url"] == f"http://127.0.0.1:{port}/twilio"
    assert document["concurrency"] == 3
    assert TOKEN not in json.dumps(document)


def test_without_public_url_it_says_the_request_url_is_what_is_signed() -> None:
    record = record_of(Settings.resolve({"auth_tokens": [TOKEN]}, {}))
    message = record.getMessage()
    assert "signatures verified with 1 auth token, against each request's own URL" in message
    assert "no public_url" in message
    assert vars(record)["public_url"] is None


def test_without_an_inbox_it_says_callbacks_run_inline() -> None:
    record = record_of(Settings.resolve({"auth_tokens": [TOKEN], "concurrency": 9}, {}))
    message = record.getMessage()
    assert "no inbox: each callback runs before its request is answered" in message
    assert "callbacks at once" not in message  # the workers' concurrency means nothing here
    assert (vars(record)["inbox"], vars(record)["concurrency"]) == (None, None)


def test_shared_keys_and_basic_auth_are_counted_never_shown() -> None:
    settings = Settings.resolve(
        {
            "shared_keys": {"key-1": PASSWORD, "key-2": PASSWORD + "2"},
            "basic_auth": [("twilio", PASSWORD), ("rotated", PASSWORD + "3")],
        },
        {},
    )
    record = record_of(settings)
    message = record.getMessage()
    assert "signatures verified with 2 shared keys, against" in message
    assert "0 auth tokens" not in message  # it verifies with keys, not with no token
    assert "HTTP Basic auth required (2 users)" in message
    assert vars(record)["basic_auth_users"] == 2
    for shown in (message, JsonFormatter().format(record), TextFormatter().format(record)):
        assert PASSWORD not in shown
        assert "rotated" not in shown  # nor the user names


def test_verification_off_is_a_warning_that_says_so() -> None:
    record = record_of(Settings.resolve({"verify_signatures": False}, {}))
    assert record.levelno == logging.WARNING
    assert "signature verification OFF: anyone who can reach this port can forge" in (
        record.getMessage()
    )
    assert vars(record)["verification"] == "off"


def test_passwords_in_redis_urls_never_show_and_the_key_prefix_does() -> None:
    settings = Settings.resolve(
        {
            "auth_tokens": [TOKEN],
            "inbox": f"redis://:{PASSWORD}@127.0.0.1:6379/0",
            "store": f"redis://app:{PASSWORD}@127.0.0.1:6379/1",
            "redis_prefix": "orders:",
            "concurrency": 16,
        },
        {},
    )
    record = record_of(settings, processes=4)
    message = record.getMessage()
    assert "inbox redis://:***@127.0.0.1:6379/0 (key prefix orders:), 16 callbacks at once" in (
        message
    )
    assert "store redis://app:***@127.0.0.1:6379/1 (key prefix orders:)" in message
    assert message.endswith("; 4 processes")
    assert vars(record)["redis_prefix"] == "orders:"
    for shown in (message, JsonFormatter().format(record), TextFormatter().format(record)):
        assert PASSWORD not in shown
        assert TOKEN not in shown


def test_a_postgresql_inbox_and_store_show_their_schema() -> None:
    settings = Settings.resolve(
        {
            "auth_tokens": [TOKEN],
            "inbox": f"postgresql://app:{PASSWORD}@db.internal:5432/app",
            "store": "postgresql://app@db.internal:5432/app?password=" + PASSWORD,
            "postgres_schema": "hooks",
        },
        {},
    )
    record = record_of(settings)
    message = record.getMessage()
    assert "inbox postgresql://app:***@db.internal:5432/app (schema hooks)" in message
    # A lone name before @ may be a secret: shown_url hides it too.
    assert "store postgresql://***@db.internal:5432/app?password=*** (schema hooks)" in message
    assert vars(record)["postgres_schema"] == "hooks"
    assert not hasattr(record, "redis_prefix")
    assert PASSWORD not in JsonFormatter().format(record)


APP = """
import twilio_trigger as twilio

listener = twilio.Listener(host="127.0.0.1", path="/hooks")


@listener.service
class Messages(twilio.SmsStatusService):
    async def on_delivered(self, event):
        pass
"""


def test_the_command_line_counts_the_processes_it_runs(tmp_path: Path) -> None:
    (tmp_path / "startapp.py").write_text(APP)
    port = free_port()
    args = ["run", "startapp:listener", "--port", str(port), "--processes", "2"]
    args += ["--log-format", "json"]
    with Running(args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=tmp_path) as running:
        running.wait_for("listening on", "stderr")
        # Stopped once both processes serve, as a supervisor is stopped.
        running.wait_for("Application startup complete.", "stderr", count=2)
        assert running.stop(signal.SIGTERM) == 0, running.text("stderr")
    lines = running.text("stderr").splitlines()
    documents = [json.loads(line) for line in lines if line.startswith("{")]
    [line] = [d for d in documents if d["message"].startswith("listening on ")]
    assert line["message"].startswith(f"listening on http://127.0.0.1:{port}/hooks; ")
    assert line["message"].endswith("; 2 processes"), line["message"]
    assert (line["processes"], line["path"], line["verification"]) == (2, "/hooks", "signatures")
    assert TOKEN not in running.text("stderr")
