"""A flag that changes nothing says so: one ``Warning: ...`` line on stderr each,
and the command goes on.

`run` and `worker` are real processes, stopped once they serve (or dispatch);
`send` and `inbox` run in-process.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.redis_support import prefix, redis_url
from tests.test_cli import TOKEN, Running, clean_env

from .conftest import invoke
from .test_inbox_options import make_inbox
from .test_startup_failures import app

__all__ = ["app", "prefix", "redis_url"]  # the fixtures, imported for pytest to find


def warnings_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Warning: ")]


def test_run_warns_of_inspector_flags_without_the_inspector_and_serves(app: Path) -> None:
    args = [
        "run", "app", "--port", "0",
        "--inspector-port", "0", "--inspector-host", "127.0.0.1", "--concurrency", "8",
    ]  # fmt: skip
    with Running(args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=app) as running:
        running.wait_for("listening on http://127.0.0.1:", "stderr")
        assert running.stop(signal.SIGTERM) == 0
        errors = running.text("stderr")
    assert warnings_of(errors) == [
        "Warning: --inspector-host has no effect without --inspector",
        "Warning: --inspector-port has no effect without --inspector",
        "Warning: --concurrency has no effect without an inbox (--inbox URL or "
        "TWILIO_TRIGGER_INBOX): each callback runs in the request that brought its event",
    ]
    assert "inspector on" not in errors


def test_run_does_not_warn_of_flags_that_apply(app: Path, tmp_path: Path) -> None:
    args = [
        "run", "app", "--port", "0", "--inspector", "--inspector-port", "0",
        "--inbox", f"sqlite:///{tmp_path / 'events.db'}", "--concurrency", "8",
    ]  # fmt: skip
    with Running(args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=app) as running:
        running.wait_for("listening on http://127.0.0.1:", "stderr")
        assert running.stop(signal.SIGTERM) == 0
        errors = running.text("stderr")
    assert warnings_of(errors) == []
    assert "inspector on http://127.0.0.1:" in errors


def test_worker_warns_of_metrics_without_a_port_and_dispatches(
    app: Path, redis_url: str, prefix: str
) -> None:
    env = clean_env(
        TWILIO_TRIGGER_REDIS_PREFIX=prefix,
        TWILIO_TRIGGER_REDIS_DURABILITY="memory",  # the shared Redis keeps nothing on disk
    )
    args = ["worker", "app", "--inbox", redis_url, "--metrics"]
    with Running(args, env=env, cwd=app) as running:
        running.wait_for("dispatching from redis://", "stderr")
        assert running.stop(signal.SIGTERM) == 0
        errors = running.text("stderr")
    assert warnings_of(errors) == [
        "Warning: --metrics has no effect without --metrics-port: a worker serves no HTTP"
    ]


def test_send_warns_that_a_shared_key_signs_instead_of_the_token() -> None:
    # Port 9 (discard) on loopback: nobody listens, so the request fails after the warning.
    result = invoke(
        "send", "sms", "delivered", "--url", "http://127.0.0.1:9/",
        "--auth-token", TOKEN, "--shared-key", "webhooks_key_1=" + "s" * 32,
    )  # fmt: skip
    assert warnings_of(result.output) == [
        "Warning: --auth-token has no effect with --shared-key, which signs instead"
    ]
    assert "Error: cannot reach http://127.0.0.1:9/" in result.output  # it went on


def test_send_does_not_warn_of_a_token_from_the_environment() -> None:
    result = invoke(
        "send", "sms", "delivered", "--url", "http://127.0.0.1:9/",
        "--shared-key", "webhooks_key_1=" + "s" * 32,
        env={"TWILIO_AUTH_TOKEN": TOKEN},
    )  # fmt: skip
    assert warnings_of(result.output) == []


def test_inbox_warns_of_a_schema_for_a_sqlite_inbox(tmp_path: Path) -> None:
    url = make_inbox(tmp_path / "events.db")
    result = invoke("inbox", "stats", "--inbox", url, "--schema", "hooks")
    assert result.exit_code == 0, result.output
    assert warnings_of(result.output) == [
        f"Warning: --schema has no effect on {url}: only a postgresql:// inbox has one"
    ]


def test_with_json_logs_the_warning_is_a_json_record(app: Path) -> None:
    args = ["run", "app", "--port", "0", "--inspector-port", "0", "--log-format", "json"]
    with Running(args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=app) as running:
        running.wait_for("listening on http://127.0.0.1:", "stderr")
        assert running.stop(signal.SIGTERM) == 0
        errors = running.text("stderr")
    documents = [json.loads(line) for line in errors.splitlines()]  # every line is JSON
    warned = [d for d in documents if "has no effect" in d["message"]]
    assert [(d["level"], d["message"]) for d in warned] == [
        ("WARNING", "--inspector-port has no effect without --inspector")
    ]
