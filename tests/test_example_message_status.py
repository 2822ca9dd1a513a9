"""examples/message_status.py: every status counted once, through Twilio's repeats.

The example's listener serves on a loopback port with its inbox and store in the
run's PostgreSQL database (a schema of the test's own); the statuses of a few
messages are posted signed, with Twilio's duplicates and a late ``sent``, and a
callback that fails once on its first attempt (a broken connection to the
database, say) must not count its status twice.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

import twilio_trigger as twilio
from twilio_trigger.testing import sms_status_params

from .payloads import signed_post
from .postgres_support import pg_schema, postgres_database

__all__ = ["pg_schema", "postgres_database"]  # fixtures, used by name

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "message_status.py"
TOKEN = "5b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e"


@pytest.fixture
def example(
    monkeypatch: pytest.MonkeyPatch, postgres_database: str, pg_schema: str
) -> Iterator[ModuleType]:
    """The example, imported as `twilio-trigger run` would, its listener serving."""
    for name in list(os.environ):
        if name.startswith("TWILIO_TRIGGER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_TRIGGER_PORT", "0")
    monkeypatch.setenv("TWILIO_TRIGGER_HOST", "127.0.0.1")
    monkeypatch.setenv("TWILIO_TRIGGER_POSTGRES_SCHEMA", pg_schema)
    monkeypatch.setenv("TWILIO_TRIGGER_RETRY_BACKOFF", "0.05")
    monkeypatch.setenv("DATABASE_URL", postgres_database)
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS message_status")
    spec = importlib.util.spec_from_file_location("message_status_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "message_status_example", module)
    spec.loader.exec_module(module)
    listener = module.listener
    assert isinstance(listener, twilio.Listener)
    try:
        with listener:
            yield module
    finally:
        with psycopg.connect(postgres_database, autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS message_status")


def _rows(url: str) -> dict[str, tuple[str, str | None, int]]:
    with psycopg.connect(url, autocommit=True) as connection:
        found = connection.execute("SELECT sid, status, error_code, events FROM message_status")
        return {sid: (status, error, events) for sid, status, error, events in found}


def _wait_for(
    url: str, events: int, timeout: float = 30.0
) -> dict[str, tuple[str, str | None, int]]:
    """The table once it has counted *events* status events in all (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(url)
        if sum(row[2] for row in rows.values()) >= events or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_every_status_is_counted_once_through_duplicates_and_late_events(
    example: ModuleType, postgres_database: str
) -> None:
    url = example.listener.url
    first, second = "SM" + "1" * 32, "SM" + "2" * 32
    sent = [
        sms_status_params("queued", sid=first),
        sms_status_params("sent", sid=first),
        sms_status_params("delivered", sid=first),
        sms_status_params("queued", sid=second),
        sms_status_params("failed", sid=second, ErrorCode="30003"),
    ]
    for params in sent:
        assert signed_post(url, params, TOKEN).status_code == 200
    # Twilio's repeats of a delivery: acknowledged, stored once, counted once.
    for params in sent[1:3]:
        assert signed_post(url, params, TOKEN).status_code == 200
    rows = _wait_for(postgres_database, 5)
    assert rows == {first: ("delivered", None, 3), second: ("failed", "30003", 2)}
    # A message whose "sent" comes after its "delivered": counted, without going back.
    third = "SM" + "4" * 32
    assert signed_post(url, sms_status_params("delivered", sid=third), TOKEN).status_code == 200
    assert _wait_for(postgres_database, 6)[third] == ("delivered", None, 1)
    assert signed_post(url, sms_status_params("sent", sid=third), TOKEN).status_code == 200
    assert _wait_for(postgres_database, 7)[third] == ("delivered", None, 2)


def test_a_callback_that_fails_after_writing_counts_its_status_once(
    example: ModuleType, postgres_database: str
) -> None:
    service = example.MessageStatus
    original = service.on_delivered
    failed: list[str] = []

    async def flaky(
        self: object, event: twilio.SmsStatusChangeEvent, tx: psycopg.AsyncConnection
    ) -> None:
        await original(self, event, tx)  # written in the transaction...
        if not failed:
            failed.append(event.sid or "")
            raise ConnectionError("the CRM went away")  # ...then rolled back with it

    listener = example.listener
    for attached in listener.services:
        listener.detach(attached)
    patched = type("FlakyStatus", (service,), {"on_delivered": flaky})
    listener.attach(patched())
    sid = "SM" + "3" * 32
    assert (
        signed_post(listener.url, sms_status_params("delivered", sid=sid), TOKEN).status_code == 200
    )
    rows = _wait_for(postgres_database, 1)
    assert failed == [sid]
    assert rows == {sid: ("delivered", None, 1)}
    # Retried once, then done: nothing more comes.
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        schema = os.environ["TWILIO_TRIGGER_POSTGRES_SCHEMA"]
        deadline = time.monotonic() + 10
        while True:
            state, attempts = connection.execute(
                f'SELECT state, attempts FROM "{schema}".events WHERE sid = %s', (sid,)
            ).fetchone() or ("", 0)
            if state == "done" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert (state, attempts) == ("done", 2)
    assert _rows(postgres_database)[sid][2] == 1
