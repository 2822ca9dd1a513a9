"""The log of ``twilio-trigger run`` and ``worker`` as real subprocesses: one line per event.

Each process gets a distinctive auth token and a Redis URL with a password in it
(the shared Redis has no password and accepts any); neither may ever show in the
output.  With ``--log-format json`` every line of stderr must be a JSON object, and
each event's line carries its fields; with ``text`` each event is one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.payloads import signed_post, sms_status_payload
from tests.redis_support import prefix, redis_url
from twilio_trigger.inbox.redis import RedisInbox

from ._processes import Process
from ._support import free_port

__all__ = ["prefix", "redis_url"]  # the fixtures, imported for pytest to find

#: A token nobody could mistake for anything else in the output.
SECRET_TOKEN = "f00dfacecafe" + "5eed" * 5
PASSWORD = "s3cr3tpw"

SERVICE = """
import twilio_trigger as twilio

listener = twilio.Listener()


@listener.service
class Tracker(twilio.SmsStatusService):
    async def on_delivered(self, event):
        pass

    def on_undelivered(self, event):
        raise LookupError("the carrier's lookup exploded")
"""

_TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")
_JSON_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def with_password(url: str) -> str:
    """*url* with a password in it, if this Redis takes one; else *url* itself."""
    guarded = url.replace("redis://", f"redis://:{PASSWORD}@", 1)
    client = redis.Redis.from_url(guarded, socket_timeout=5)
    try:
        client.ping()
    except redis.AuthenticationError:
        return url
    finally:
        client.close()
    return guarded


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "tracked.py").write_text(SERVICE)
    return tmp_path


@pytest.fixture
def env(redis_url: str, prefix: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    base.update(
        TWILIO_AUTH_TOKEN=SECRET_TOKEN,
        TWILIO_TRIGGER_STORE=with_password(redis_url),
        TWILIO_TRIGGER_REDIS_PREFIX=prefix,
    )
    return base


def run_process(
    folder: Path, env: dict[str, str], name: str, *args: str, cli: bool = True
) -> Process:
    """``python -m twilio_trigger ARGS`` (``python ARGS`` without *cli*), stdout and
    stderr in files of their own."""
    return Process(folder, env, name, *args, split=True, cli=cli)


@pytest.fixture
def runs() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for run in started:
        run.kill()


def serve(
    folder: Path, env: dict[str, str], runs: list[Process], *flags: str
) -> tuple[Process, str]:
    port = free_port()
    name = f"run-{len(runs)}"
    args = ("run", "tracked.py", "--port", str(port), "--host", "127.0.0.1", *flags)
    run = run_process(folder, env, name, *args)
    runs.append(run)
    run.wait_listening(port)
    return run, f"http://127.0.0.1:{port}/"


def send_two(url: str) -> tuple[str, str]:
    """A delivered event (handled) and an undelivered one (its callback raises)."""
    good, bad = sms_status_payload("delivered"), sms_status_payload("undelivered")
    with httpx.Client(timeout=15.0, trust_env=False) as client:
        assert signed_post(url, good, SECRET_TOKEN, client=client).status_code == 200
        assert signed_post(url, bad, SECRET_TOKEN, client=client).status_code == 500
    return good["MessageSid"], bad["MessageSid"]


def json_lines(run: Process) -> list[dict[str, Any]]:
    """Every line of stderr as a JSON object; fails on any that is not one."""
    documents = []
    for number, line in enumerate(run.stderr.splitlines(), 1):
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"stderr line {number} is not JSON: {line!r}") from None
        assert isinstance(document, dict), line
        assert _JSON_TIME.match(document["time"]), document
        assert {"level", "logger", "message"} <= set(document), document
        documents.append(document)
    return documents


def of_sid(documents: list[dict[str, Any]], sid: str) -> list[dict[str, Any]]:
    return [d for d in documents if d.get("sid") == sid]


def assert_no_secrets(run: Process) -> None:
    output = run.stdout + run.stderr
    assert SECRET_TOKEN not in output
    assert PASSWORD not in output


# -- JSON lines ----------------------------------------------------------------------
def test_json_log_has_one_object_per_line_and_the_event_fields(
    folder: Path, env: dict[str, str], runs: list[Process]
) -> None:
    run, url = serve(folder, env, runs, "--log-format", "json")
    handled, failed = send_two(url)
    assert run.terminate() == 0, run.stderr
    documents = json_lines(run)
    assert run.stdout == ""

    [good] = of_sid(documents, handled)
    assert good["level"] == "INFO"
    assert good["logger"] == "twilio_trigger"
    assert (good["kind"], good["status"], good["callback"], good["outcome"]) == (
        "sms",
        "delivered",
        "Tracker.on_delivered",
        "handled",
    )
    assert isinstance(good["duration_ms"], float), good
    assert good["duration_ms"] >= 0, good
    assert handled in good["message"]
    assert "handled" in good["message"]
    assert "traceback" not in good
    assert "error" not in good

    [bad] = of_sid(documents, failed)
    assert bad["level"] == "ERROR"
    assert (bad["kind"], bad["status"], bad["callback"], bad["outcome"]) == (
        "sms",
        "undelivered",
        "Tracker.on_undelivered",
        "failed",
    )
    assert bad["error"] == "LookupError"
    assert isinstance(bad["duration_ms"], float), bad
    assert bad["traceback"].startswith("Traceback (most recent call last):"), bad["traceback"]
    assert "LookupError: the carrier's lookup exploded" in bad["traceback"]
    assert "on_undelivered" in bad["traceback"]
    # The listener's own lines are JSON too, to the last.
    assert any(d["message"].startswith("listening on http://127.0.0.1:") for d in documents)
    assert documents[-1]["message"] == "stopped", documents[-1]
    assert_no_secrets(run)


def test_event_log_level_debug_hides_the_event_lines_at_info(
    folder: Path, env: dict[str, str], runs: list[Process]
) -> None:
    run, url = serve(folder, env, runs, "--log-format", "json", "--event-log-level", "debug")
    handled, failed = send_two(url)
    assert run.terminate() == 0, run.stderr
    documents = json_lines(run)
    assert of_sid(documents, handled) == []
    assert not any(handled in d["message"] for d in documents)
    # A failure is not an everyday event: it is still told, at ERROR.
    [bad] = of_sid(documents, failed)
    assert bad["level"] == "ERROR"
    assert all(d["level"] != "DEBUG" for d in documents)
    assert_no_secrets(run)


def test_log_level_debug_shows_the_debug_event_lines(
    folder: Path, env: dict[str, str], runs: list[Process]
) -> None:
    run, url = serve(
        folder, env, runs,
        "--log-format", "json", "--log-level", "debug", "--event-log-level", "debug",
    )  # fmt: skip
    handled, failed = send_two(url)
    assert run.terminate() == 0, run.stderr
    documents = json_lines(run)
    [good] = of_sid(documents, handled)
    assert good["level"] == "DEBUG"
    assert good["outcome"] == "handled"
    [bad] = of_sid(documents, failed)
    assert bad["level"] == "ERROR"
    assert_no_secrets(run)


# -- text lines ----------------------------------------------------------------------
def test_text_log_has_one_line_per_event(
    folder: Path, env: dict[str, str], runs: list[Process]
) -> None:
    run, url = serve(folder, env, runs, "--log-format", "text")
    handled, failed = send_two(url)
    assert run.terminate() == 0, run.stderr
    lines = run.stderr.splitlines()
    good = [line for line in lines if handled in line]
    assert len(good) == 1, good
    assert _TEXT_LINE.match(good[0]), good
    assert " INFO twilio_trigger: " in good[0]
    assert "Tracker.on_delivered" in good[0]
    assert "handled" in good[0]
    bad = [line for line in lines if failed in line]
    assert len(bad) == 1, bad
    assert " ERROR twilio_trigger: " in bad[0]
    assert "failed" in bad[0]
    assert "LookupError" in bad[0]
    after = lines[lines.index(bad[0]) + 1 :]
    # The traceback follows, each line marked as the record's continuation.
    assert after[:1] == ["  | Traceback (most recent call last):"], after[:3]
    assert any(line == "  | LookupError: the carrier's lookup exploded" for line in after)
    assert_no_secrets(run)


# -- the worker: retries and dead letters, in JSON ----------------------------------------
def test_worker_logs_retries_and_dead_letters_as_json(
    folder: Path, env: dict[str, str], runs: list[Process], redis_url: str, prefix: str
) -> None:
    inbox_url = with_password(redis_url)
    worker_env = dict(
        env,
        TWILIO_TRIGGER_INBOX=inbox_url,
        TWILIO_TRIGGER_MAX_ATTEMPTS="2",
        TWILIO_TRIGGER_RETRY_BACKOFF="0.01",
    )
    run = run_process(folder, worker_env, "worker", "worker", "tracked.py", "--log-format", "json")
    runs.append(run)
    run.wait_for(lambda: "dispatching from" in run.stderr, "'dispatching from'")

    good, bad = sms_status_payload("delivered"), sms_status_payload("undelivered")

    async def store() -> None:
        inbox = RedisInbox(inbox_url, prefix=prefix, durability="memory")  # no disk there
        try:
            await inbox.open()
            for params in (good, bad):
                stored = await inbox.put(
                    uuid.uuid4().hex, "sms", params["MessageSid"], params["MessageStatus"],
                    list(params.items()),
                )  # fmt: skip
                assert stored
        finally:
            await inbox.close()

    asyncio.run(store())
    run.wait_for(
        lambda: '"dead_letter"' in run.stderr and good["MessageSid"] in run.stderr,
        "the dead letter and the handled event",
    )
    assert run.terminate() == 0, run.stderr
    documents = json_lines(run)
    [dispatching] = [d for d in documents if d["message"].startswith("dispatching from")]
    assert "127.0.0.1:6379/0" in dispatching["message"]

    [handled] = of_sid(documents, good["MessageSid"])
    assert (handled["level"], handled["outcome"], handled["attempt"]) == ("INFO", "handled", 1)
    first, last = of_sid(documents, bad["MessageSid"])
    assert (first["level"], first["outcome"], first["attempt"]) == ("WARNING", "failed", 1)
    assert isinstance(first["retry_in_s"], float)
    assert 0 < first["retry_in_s"] <= 0.01
    assert "attempt 1 of 2" in first["message"]
    assert "LookupError" in first["traceback"]
    assert (last["level"], last["outcome"], last["attempt"]) == ("ERROR", "failed", 2)
    assert isinstance(last["dead_letter"], int)
    assert f"kept as dead letter {last['dead_letter']}" in last["message"]
    assert "retry_in_s" not in last
    assert "LookupError" in last["traceback"]
    assert_no_secrets(run)


# -- secrets in what the command line says ---------------------------------------------
def test_a_flag_the_module_overrides_is_told_in_json_without_the_password(
    folder: Path, env: dict[str, str], runs: list[Process]
) -> None:
    # The module sets its store itself; --store on the command line has no effect,
    # and the warning saying so must neither break the JSON lines nor show the password.
    store = env.pop("TWILIO_TRIGGER_STORE")
    (folder / "tracked.py").write_text(
        SERVICE.replace("twilio.Listener()", f"twilio.Listener(store={store!r})")
    )
    run, url = serve(folder, env, runs, "--log-format", "json", "--store", "memory")
    send_two(url)
    assert run.terminate() == 0, run.stderr
    assert PASSWORD not in run.stderr + run.stdout, run.stderr.splitlines()[0]
    documents = json_lines(run)
    assert any("--store" in d["message"] for d in documents), "the override was not told"


LOCATIONS = [
    (f"redis://:{PASSWORD}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    (
        f"redis://default:{PASSWORD}@cache.internal:6380/2",
        "redis://default:***@cache.internal:6380/2",
    ),
    (
        f"rediss://app:{PASSWORD}@redis.example.com:6380/0",
        "rediss://app:***@redis.example.com:6380/0",
    ),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
]


@pytest.mark.parametrize(("url", "shown"), LOCATIONS)
def test_redis_inbox_location_never_shows_the_password(url: str, shown: str) -> None:
    location = RedisInbox(url).location
    assert PASSWORD not in location
    assert shown.partition("@")[2] in location  # host, port and database


@pytest.mark.parametrize(("url", "shown"), LOCATIONS)
def test_redis_inbox_location_is_the_url_with_its_password_masked(url: str, shown: str) -> None:
    # As the SQLite inbox's is its sqlite:/// URL: the scheme says plain or TLS, and
    # the user name which account is used; the password is never shown.
    assert RedisInbox(url).location == shown


# -- Listener.run() in a script of one's own ------------------------------------------
SCRIPT = """
import os

import twilio_trigger as twilio

listener = twilio.Listener(int(os.environ["PORT"]), host="127.0.0.1", log_format="json")


@listener.service
class Tracker(twilio.SmsStatusService):
    async def on_delivered(self, event):
        pass


listener.run()
"""


def test_listener_run_logs_json_when_asked(
    folder: Path, env: dict[str, str], runs: list[Process]
) -> None:
    (folder / "script.py").write_text(SCRIPT)
    port = free_port()
    run = run_process(folder, dict(env, PORT=str(port)), "script", "script.py", cli=False)
    runs.append(run)
    run.wait_listening(port)
    good = sms_status_payload("delivered")
    url = f"http://127.0.0.1:{port}/"
    assert signed_post(url, good, SECRET_TOKEN).status_code == 200
    assert run.terminate() == 0, run.stderr
    documents = json_lines(run)
    [line] = of_sid(documents, good["MessageSid"])
    assert (line["level"], line["outcome"], line["callback"]) == (
        "INFO",
        "handled",
        "Tracker.on_delivered",
    )
    assert documents[-1]["message"] == "stopped"
    assert_no_secrets(run)
