"""Pausing dispatch with a real listener and a SQLite inbox: while paused, signed
events are answered 200 and stored, none is dispatched, ``/readyz`` stays ready and
says so, and the metric is 1; resumed from the command line, they are dispatched."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.conftest import invoke
from tests.payloads import signed_post, sms_status_payload
from twilio_trigger.inbox import State
from twilio_trigger.inbox.sqlite import SQLiteInbox

from ._support import LOGGER, TOKEN, Recorder, SmsRecorder, running, wait_until

pytestmark = pytest.mark.usefixtures("no_listener_options")


READY = {"status": "ready", "checks": {"inbox": "ok", "store": "ok"}}
SIDS = [f"SM{number:032d}" for number in range(1, 4)]


def counts(path: Path) -> dict[State, int]:
    """The inbox's counts, read by an inbox object of its own (as the command line does)."""

    async def read() -> dict[State, int]:
        inbox = SQLiteInbox(path)
        try:
            return await inbox.stats()
        finally:
            await inbox.close()

    return asyncio.run(read())


def paused_gauge(http: httpx.Client, base: str) -> float | None:
    answer = http.get(f"{base}/metrics")
    assert answer.status_code == 200, answer.text
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "twilio_trigger_dispatch_paused":
                return sample.value
    return None


def told(caplog: pytest.LogCaptureFixture, start: str) -> int:
    return sum(
        1
        for record in caplog.records
        if record.name == LOGGER
        and record.levelno == logging.INFO
        and record.getMessage().startswith(start)
    )


def test_a_paused_listener_stores_and_acknowledges_and_dispatches_once_resumed(
    http: httpx.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    recorder = Recorder()
    with running(SmsRecorder(recorder), inbox=url, metrics=True) as listener:
        base = f"http://127.0.0.1:{listener.port}"
        ready = http.get(f"{base}/readyz")
        assert json.loads(ready.text) == READY
        assert paused_gauge(http, base) == 0

        paused = invoke("inbox", "pause", "--inbox", url)  # another process's command
        assert paused.exit_code == 0, paused.output
        wait_until(lambda: told(caplog, "dispatch is paused") == 1, "the workers to pause")

        for sid in SIDS:
            answer = signed_post(listener.url, sms_status_payload("delivered", sid=sid), TOKEN)
            assert answer.status_code == 200, answer.text
        ready = http.get(f"{base}/readyz")
        assert ready.status_code == 200
        assert json.loads(ready.text) == {**READY, "dispatch": "paused"}
        assert paused_gauge(http, base) == 1
        found = counts(path)
        assert (found[State.PENDING], found[State.RUNNING], found[State.DONE]) == (3, 0, 0)
        assert recorder.calls == []

        resumed = invoke("inbox", "resume", "--inbox", url)
        assert resumed.exit_code == 0, resumed.output
        wait_until(lambda: len(recorder.calls) == 3, "the stored events to be dispatched")
        assert sorted(str(call.event.sid) for call in recorder.calls) == SIDS
        wait_until(lambda: counts(path)[State.DONE] == 3, "every event to be done")
        ready = http.get(f"{base}/readyz")
        assert json.loads(ready.text) == READY
        assert paused_gauge(http, base) == 0
    assert told(caplog, "dispatch is paused") == 1
    assert told(caplog, "dispatch resumed") == 1
