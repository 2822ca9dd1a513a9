"""Dispatch control with a real listener and a SQLite inbox: the ``limits`` option
holds a callback back (events still answered 200 and stored), a limit set from the
command line is followed by the running listener, a breaker opens with its log
line, metric and alert, and alert hooks run outside the worker, their failures
logged and harmless."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import twilio_trigger as twilio
from tests.cli.conftest import invoke
from tests.payloads import signed_post, sms_status_payload
from twilio_trigger.inbox import State
from twilio_trigger.inbox.sqlite import SQLiteInbox

from ._support import LOGGER, TOKEN, running, wait_until

pytestmark = pytest.mark.usefixtures("no_listener_options")


def sid(number: int) -> str:
    return f"SM{number:032d}"


def counts(path: Path) -> dict[State, int]:
    async def read() -> dict[State, int]:
        inbox = SQLiteInbox(path)
        try:
            return await inbox.stats()
        finally:
            await inbox.close()

    return asyncio.run(read())


class Downstream(twilio.SmsStatusService):
    """Its callbacks wait for :attr:`gate`, count how many run at once, and fail
    while :attr:`failing`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.done: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.failing = False

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.gate.wait(10)
        finally:
            with self.lock:
                self.running -= 1
        if self.failing:
            raise ConnectionError("the CRM is down")
        with self.lock:
            self.done.append(str(event.sid))


def metric(http: httpx.Client, base: str, name: str, **labels: str) -> float | None:
    answer = http.get(f"{base}/metrics")
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_limits_need_an_inbox() -> None:
    with pytest.raises(twilio.ConfigurationError, match="limits and breakers hold events back"):
        twilio.Listener(0, auth_tokens=[TOKEN], limits="on_delivered: rate=5").asgi  # noqa: B018


def test_the_limits_option_is_checked() -> None:
    with pytest.raises(twilio.ConfigurationError, match=r"on_delivred.*is not a callback"):
        twilio.Listener(0, auth_tokens=[TOKEN], limits={"on_delivred": "rate=5"})
    with pytest.raises(twilio.ConfigurationError, match="rate is 0 or more"):
        twilio.Listener(0, auth_tokens=[TOKEN], limits="on_delivered: rate=-1")
    with pytest.raises(twilio.ConfigurationError, match="name=value"):
        twilio.Listener(0, auth_tokens=[TOKEN], limits="on_delivered: speed=3")
    listener = twilio.Listener(
        0, auth_tokens=[TOKEN], limits={"on_delivered": twilio.Limit(concurrency=1)}
    )
    assert listener.settings.limits == (("on_delivered", twilio.Limit(concurrency=1)),)


def test_the_limits_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TWILIO_TRIGGER_LIMITS", "on_delivered: rate=5, burst=10; on_failed: concurrency=2"
    )
    listener = twilio.Listener(0, auth_tokens=[TOKEN])
    assert dict(listener.settings.limits) == {
        "on_delivered": twilio.Limit(rate=5, burst=10),
        "on_failed": twilio.Limit(concurrency=2),
    }


def test_a_concurrency_limit_holds_events_in_the_inbox_and_the_command_line_changes_it(
    http: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    service = Downstream()
    service.gate.clear()
    with running(
        service, inbox=url, concurrency=4, limits="on_delivered: concurrency=1"
    ) as listener:
        for number in range(4):
            answer = signed_post(
                listener.url, sms_status_payload("delivered", sid=sid(number)), TOKEN
            )
            assert answer.status_code == 200, answer.text  # stored, acknowledged
        wait_until(lambda: service.running == 1, "one callback to run")
        found = counts(path)  # the others wait in the inbox (one may be taken to be given back)
        assert found[State.PENDING] + found[State.RUNNING] == 4
        service.gate.set()
        wait_until(lambda: len(service.done) == 4, "the events to be handled one at a time")
        assert service.most == 1

        # From the command line, while the listener runs: two at once.
        changed = invoke("inbox", "limit", "on_delivered", "--concurrency", "2", "--inbox", url)
        assert changed.exit_code == 0, changed.output
        assert "on_delivered: concurrency=2" in changed.output
        shown = invoke("inbox", "limits", "--inbox", url)
        assert "on_delivered: concurrency=2" in shown.output
        service.gate.clear()
        service.most = 0
        for number in range(4, 10):
            answer = signed_post(
                listener.url, sms_status_payload("delivered", sid=sid(number)), TOKEN
            )
            assert answer.status_code == 200, answer.text
        wait_until(lambda: service.running == 2, "two callbacks to run")
        service.gate.set()
        wait_until(lambda: len(service.done) == 10, "the rest to be handled")
        assert service.most == 2
    # Every event ran once: the waits in the inbox counted no attempt.
    assert counts(path)[State.DONE] == 10


def test_a_breaker_opens_with_a_log_line_a_metric_and_an_alert_and_closes_from_the_command_line(
    http: httpx.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    service = Downstream()
    service.failing = True
    alerts: list[twilio.Alert] = []
    with running(
        service, inbox=url, concurrency=1, breaker_failures=2, breaker_cooldown=3600,
        retry_backoff=0.01, retry_backoff_max=0.02, max_attempts=50, metrics=True,
    ) as listener:  # fmt: skip
        listener.on_alert(alerts.append)
        base = f"http://127.0.0.1:{listener.port}"
        for number in range(3):
            answer = signed_post(
                listener.url, sms_status_payload("delivered", sid=sid(number)), TOKEN
            )
            assert answer.status_code == 200, answer.text
        wait_until(lambda: any(a.what == "breaker_opened" for a in alerts), "the breaker alert")
        assert metric(http, base, "twilio_trigger_breaker_open", callback="on_delivered") == 1
        assert (
            metric(
                http,
                base,
                "twilio_trigger_breaker_changes_total",
                callback="on_delivered",
                to="open",
            )
            == 1
        )
        lines = [
            r.getMessage()
            for r in caplog.records
            if "breaker of on_delivered opened" in r.getMessage()
        ]
        assert len(lines) == 1
        assert "after 2 failures in a row (last: ConnectionError: the CRM is down)" in lines[0]
        shown = invoke("inbox", "limits", "--inbox", url)
        assert "on_delivered: breaker OPEN" in shown.output, shown.output
        assert "the CRM is down" in shown.output

        service.failing = False  # the CRM is back: the operator closes the breaker
        closed = invoke("inbox", "close-breaker", "on_delivered", "--inbox", url)
        assert closed.exit_code == 0, closed.output
        wait_until(lambda: len(service.done) == 3, "the held events to be handled")
        wait_until(
            lambda: metric(http, base, "twilio_trigger_breaker_open", callback="on_delivered") == 0,
            "the gauge to fall",
        )
    assert counts(path)[State.DONE] == 3


def test_alert_hooks_hear_of_dead_letters_and_their_failures_harm_nothing(
    http: httpx.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = tmp_path / "events.db"
    service = Downstream()
    service.failing = True
    heard: list[twilio.Alert] = []
    release = threading.Event()

    def slow(alert: twilio.Alert) -> None:  # a hook that blocks until released
        release.wait(10)
        heard.append(alert)

    async def broken(alert: twilio.Alert) -> None:
        raise RuntimeError("Slack said 500\nforged line")

    with running(service, inbox=f"sqlite:///{path}", max_attempts=1) as listener:
        listener.on_alert(slow)
        listener.on_alert(broken)
        for number in range(3):
            answer = signed_post(
                listener.url, sms_status_payload("delivered", sid=sid(number)), TOKEN
            )
            assert answer.status_code == 200, answer.text
        # The hook blocks, and the worker goes on: every event is a dead letter.
        wait_until(lambda: counts(path)[State.DEAD] == 3, "three dead letters")
        assert heard == []
        release.set()
        wait_until(lambda: len(heard) == 3, "the alerts to reach the hook")
        with pytest.raises(ValueError, match="already an alert hook"):
            listener.on_alert(slow)
        listener.remove_alert_hook(broken)
    assert sorted(str(a.sid) for a in heard) == [sid(n) for n in range(3)]
    alert = heard[0]
    assert (alert.what, alert.callback, alert.kind, alert.attempts) == (
        "dead_letter", "on_delivered", "sms", 1,
    )  # fmt: skip
    assert alert.error == "ConnectionError: the CRM is down"
    assert alert.entry is not None
    assert f"is a dead letter after 1 attempt, inbox entry {alert.entry}" in alert.text
    failures = [r for r in caplog.records if "the alert hook" in r.getMessage()]
    assert len(failures) == 3
    assert "\n" not in failures[0].getMessage()
    assert "Slack said 500\\nforged line" in failures[0].getMessage()
