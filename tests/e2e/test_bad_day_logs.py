"""Quiet, useful logs on a bad day, over real HTTP.

- A Redis inbox or store that goes away, under a thousand signed requests: each is
  answered 503, and the log says so once (an ERROR with the reason, no traceback),
  then once more at INFO when Redis is back, with the count of requests refused.
  The Redis is a private ``redis-server`` (its append-only file fsync'd before each
  answer, so that a restart loses nothing) that the test stops and starts again.
- An inbox the workers cannot read (Redis refuses a command): the traceback once,
  not at every poll, and a word when it can be read again.
- A callback that raises: its traceback, in the log and in the inspector, starts at
  the callback's own frame, and the inspector shows each distinct error of an event
  once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.redis_support import RedisServer, durable_redis, own_redis
from twilio_trigger._logging import TextFormatter

from ._support import (
    LOGGER,
    TOKEN,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    eventually,
    running,
    wait_until,
)

__all__ = ["durable_redis", "own_redis"]  # the fixtures, imported for pytest to find

HERE = str(Path(__file__).resolve())
#: How many requests come while Redis is away.
REQUESTS = 1_000
#: At most this many records at WARNING and above for the whole outage.
MOST_LOUD = 5
ANSWERS = {
    "inbox": "the event could not be stored; try again",
    "store": "the listener's store is unreachable; try again",
}
#: Paths of the frames a callback's traceback no longer starts with.
INTERNAL = ("src/twilio_trigger/", "/asyncio/", "/concurrent/futures/")


def package_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """The package's records at *level* and above."""
    return [r for r in caplog.records if r.name.startswith(LOGGER) and r.levelno >= level]


def dispatched(recorder: Recorder) -> list[str]:
    with recorder.lock:
        return [str(call.event.sid) for call in recorder.calls]


def post_all(url: str, payloads: list[dict[str, str]]) -> list[tuple[int, str]]:
    """Post each payload, signed, eight at a time; their statuses and bodies in order."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def post(params: Mapping[str, str]) -> tuple[int, str]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=15.0, trust_env=False)
            with lock:
                clients.append(client)
        answer = signed_post(url, params, TOKEN, client=client)
        return answer.status_code, answer.text.strip()

    try:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(post, payloads))
    finally:
        for client in clients:
            client.close()


# -- Redis goes away under load, and comes back ------------------------------------------
@pytest.mark.parametrize("part", ["inbox", "store"])
def test_a_redis_outage_is_told_once_however_many_requests(
    durable_redis: RedisServer, caplog: pytest.LogCaptureFixture, part: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    recorder = Recorder()
    prefix = f"tt-bad-day-{uuid.uuid4().hex[:8]}:"
    options: dict[str, object] = {part: durable_redis.url, "redis_prefix": prefix}
    if part == "inbox":
        options.update(inspector=True, inspector_port=0)
    with (
        running(SmsRecorder(recorder), **options) as listener,
        httpx.Client(timeout=15.0, trust_env=False) as http,
    ):
        first = sms_status_payload("delivered")
        assert_empty_twiml(signed_post(listener.url, first, TOKEN, client=http))
        wait_until(lambda: dispatched(recorder) == [first["MessageSid"]], "the first dispatch")

        caplog.clear()
        durable_redis.stop()
        during = [sms_status_payload("delivered") for _ in range(REQUESTS)]
        answers = post_all(listener.url, during)
        assert answers == [(503, ANSWERS[part])] * REQUESTS, sorted(set(answers))
        if part == "inbox":  # the inspector cannot read it either, and says so
            assert listener.inspector_url is not None
            page = http.get(listener.inspector_url + "api/events")
            assert (page.status_code, page.text) == (
                503,
                "the inbox could not be read; try again\n",
            )

        # The outage, told once: not a line per request, not a traceback.
        told = package_records(caplog, logging.INFO)
        assert len(told) <= MOST_LOUD, [r.getMessage() for r in told]
        (down,) = [r for r in told if "cannot be reached" in r.getMessage()]
        assert down.levelno == logging.ERROR
        message = down.getMessage()
        assert message.startswith(
            f"the Redis {part} redis://127.0.0.1:{durable_redis.port}/0 cannot be reached "
            f"(ConnectionError: "
        ), message
        assert "refused" in message.lower() or "connect call failed" in message.lower(), message
        assert message.endswith("events are answered 503 until it can"), message
        assert "\n" not in message
        with_traceback = [r.getMessage() for r in caplog.records if r.exc_info or r.exc_text]
        assert with_traceback == []
        shown = "\n".join(r.getMessage() for r in caplog.records)
        assert "Traceback" not in shown
        assert [p["MessageSid"] for p in during if p["MessageSid"] in shown] == []

        durable_redis.start()  # same port, same data; the listener is not restarted
        after: list[tuple[str, int]] = []

        def served() -> bool:
            params = sms_status_payload("delivered")
            answer = signed_post(listener.url, params, TOKEN, client=http)
            after.append((params["MessageSid"], answer.status_code))
            assert answer.status_code in (200, 503), answer.text
            return answer.status_code == 200

        assert eventually(served, 10.0, 0.05), f"no 200 within 10 s of Redis's return: {after}"
        answered = [sid for sid, status in after if status == 200]
        wait_until(lambda: dispatched(recorder) == [first["MessageSid"], *answered], "the dispatch")

    # Back, told once at INFO, with each request refused meanwhile counted.
    refused = REQUESTS + sum(status == 503 for _, status in after)
    back = [r for r in package_records(caplog, logging.DEBUG) if "reached again" in r.msg]
    assert len(back) == 1, [r.getMessage() for r in back]
    assert back[0].levelno == logging.INFO
    assert (
        back[0]
        .getMessage()
        .startswith(
            f"the Redis {part} redis://127.0.0.1:{durable_redis.port}/0 can be reached again, "
            f"after "
        )
    )
    assert f"s: {refused} requests refused (answered 503) meanwhile, " in back[0].getMessage()
    assert getattr(back[0], "refused", None) == refused
    loud = package_records(caplog, logging.WARNING)
    assert len(loud) <= MOST_LOUD, [r.getMessage() for r in loud]
    assert len([r for r in loud if "cannot be reached" in r.getMessage()]) == 1
    assert dispatched(recorder) == [first["MessageSid"], *answered]  # none refused ran


# -- the workers cannot read the inbox --------------------------------------------------------
def test_an_inbox_the_workers_cannot_read_is_told_once_until_they_can(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    recorder = Recorder()
    admin = redis.Redis.from_url(own_redis.url, socket_timeout=5)
    command: Any = admin.execute_command  # ACL SETUSER: the one rule changed, nothing else
    options = {"inbox": own_redis.url, "redis_durability": "memory"}
    try:
        with running(SmsRecorder(recorder), **options) as listener:
            caplog.clear()
            # Redis up, but refusing a command the workers' claim needs.
            command("ACL", "SETUSER", "default", "-xautoclaim")

            def again() -> list[logging.LogRecord]:
                return [r for r in caplog.records if "could not be read again" in r.msg]

            wait_until(lambda: len(again()) >= 3, "three polls failing the same way")
            assert all(r.levelno == logging.DEBUG for r in again())
            (told,) = package_records(caplog, logging.WARNING)
            assert told.levelno == logging.ERROR
            assert told.getMessage().startswith("the inbox could not be read")
            assert told.exc_info is not None
            assert type(told.exc_info[1]).__name__ == "NoPermissionError"

            command("ACL", "SETUSER", "default", "+xautoclaim")
            wait_until(
                lambda: any(
                    r.getMessage() == "the inbox can be read again" for r in caplog.records
                ),
                "the inbox read again",
            )
            params = sms_status_payload("delivered")
            assert_empty_twiml(signed_post(listener.url, params, TOKEN))
            wait_until(lambda: dispatched(recorder) == [params["MessageSid"]], "the dispatch")
        (back,) = [r for r in caplog.records if r.getMessage() == "the inbox can be read again"]
        assert back.levelno == logging.INFO
        assert len(package_records(caplog, logging.WARNING)) == 1
    finally:
        admin.close()


# -- a callback that raises ------------------------------------------------------------------
class CarrierError(RuntimeError):
    """What the callbacks here raise."""


def look_up(sid: str | None, what: str = "the carrier's lookup exploded") -> None:
    raise CarrierError(f"{what} for {sid}")


class Messages(twilio.SmsStatusService):
    """Raises from a sync callback (run in the thread pool) and from an async one;
    ``on_failed`` fails one way, then another, then the first way again."""

    def __init__(self) -> None:
        self.failed_runs = 0

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        look_up(event.sid)

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        look_up(event.sid)

    def on_failed(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.failed_runs += 1
        look_up(event.sid, "refused" if self.failed_runs % 2 == 0 else "timed out")


def frame_lines(text: str) -> list[str]:
    return [line.strip(" |") for line in text.splitlines() if line.strip(" |").startswith("File ")]


@pytest.mark.parametrize("status", ["sent", "delivered"], ids=["sync", "async"])
def test_a_callbacks_logged_traceback_starts_at_its_own_frame(
    caplog: pytest.LogCaptureFixture, status: str
) -> None:
    with running(Messages()) as listener:
        params = sms_status_payload(status)
        assert signed_post(listener.url, params, TOKEN).status_code == 500
    (failed,) = package_records(caplog, logging.ERROR)
    assert failed.exc_info is not None
    assert isinstance(failed.exc_info[1], CarrierError)
    text = TextFormatter().format(failed)  # as the command line writes it
    assert frame_lines(text) == [
        f'File "{HERE}", line {line}, in {name}'
        for line, name in (
            (Messages.on_sent.__code__.co_firstlineno + 1, "on_sent")
            if status == "sent"
            else (Messages.on_delivered.__code__.co_firstlineno + 1, "on_delivered"),
            (look_up.__code__.co_firstlineno + 1, "look_up"),
        )
    ], text
    assert all(internal not in text for internal in INTERNAL), text
    assert text.endswith(f"CarrierError: the carrier's lookup exploded for {params['MessageSid']}")


def inspector_page(listener: twilio.Listener, sid: str, attempts: int) -> str:
    """The inspector's page of the event *sid*, once a dead letter after *attempts*."""
    assert listener.inspector_url is not None
    with httpx.Client(base_url=listener.inspector_url, timeout=10, trust_env=False) as http:

        def buried() -> dict[str, object] | None:
            rows = http.get("/api/events", params={"limit": "50"}).json()["events"]
            row = next((row for row in rows if row["sid"] == sid), None)
            return row if row and row["outcome"] == "dead_letter" else None

        wait_until(lambda: buried() is not None, "the dead letter")
        row = buried()
        assert row is not None
        assert row["attempts"] == attempts

        def page() -> str:
            return http.get(f"/events/{row['id']}").text

        # The last attempt is noted by this process a moment after the entry is buried.
        wait_until(lambda: page().count("<td class='outcome'>failed</td>") == attempts, "notes")
        return page()


def test_the_inspector_shows_each_distinct_traceback_once(tmp_path: Path) -> None:
    options = {
        "inbox": f"sqlite:///{tmp_path}/events.db",
        "max_attempts": 3,
        "retry_backoff": 0.02,
        "inspector": True,
        "inspector_port": 0,
    }
    with running(Messages(), **options) as listener:
        same = sms_status_payload("sent")  # fails the same way three times
        assert signed_post(listener.url, same, TOKEN).status_code == 200
        shown = inspector_page(listener, same["MessageSid"], 3)
        assert shown.count("Traceback (most recent call last):") == 1
        assert shown.count("same as the last error, above") == 3
        last = shown.split("<pre id='last-error'>", 1)[1].split("</pre>", 1)[0]
        assert last.startswith(
            f"Traceback (most recent call last):\n  File &quot;{HERE}&quot;, line "
        ), last
        assert all(internal not in last for internal in INTERNAL), last

        varied = sms_status_payload("failed")  # timed out, refused, timed out
        assert signed_post(listener.url, varied, TOKEN).status_code == 200
        shown = inspector_page(listener, varied["MessageSid"], 3)
        assert shown.count("Traceback (most recent call last):") == 2
        assert shown.count(f"CarrierError: refused for {varied['MessageSid']}") == 1
        assert shown.count(f"CarrierError: timed out for {varied['MessageSid']}") == 1
        assert shown.count("same as the last error, above") == 2  # attempts 1 and 3
