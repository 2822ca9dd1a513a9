"""A delivery's identity comes from what its signature covers, over real HTTP.

``I-Twilio-Idempotency-Token`` is not signed: anyone holding one captured request
can send it again with a token of their own.  These tests replay one signed
request with made-up tokens and check that its callback still runs once, inline
(in-memory store), with the SQLite inbox, with the Redis store and with the Redis
inbox; that Twilio's own retry (same request, same token) runs once too; that a
token can neither repeat nor swallow an event; that what the listener keeps of a
2 MiB token is small; and that Event Streams batches are still told apart by
their CloudEvent ids.

Requests are signed by twilio-python's ``RequestValidator`` (``tests.payloads``);
Redis is the shared one on 127.0.0.1:6379, under a key prefix of the test's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.redis_support import keys_under, prefix, redis_url
from twilio_trigger.inbox import Entry, State, open_inbox

from ._support import TOKEN, Recorder, SmsRecorder, assert_empty_twiml, running, wait_until

__all__ = ["prefix", "redis_url"]  # the fixtures, imported for pytest to find

TOKEN_HEADER = "I-Twilio-Idempotency-Token"
#: What the listener may keep of one header value, with room for its digest note.
KEPT_LIMIT = 400


@dataclass
class Setup:
    """How a test's listener stores and deduplicates, and where to read its inbox."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    inbox: str | None = None
    redis_prefix: str | None = None

    def entries(self) -> list[Entry]:
        """Every entry of the inbox, read through an inbox object of its own."""
        assert self.inbox is not None

        async def read() -> list[Entry]:
            box = open_inbox(self.inbox or "", prefix=self.redis_prefix or "twilio-trigger:")
            try:
                return await box.entries(limit=1000)
            finally:
                await box.close()

        return asyncio.run(read())

    def settled(self) -> bool:
        """Nothing is waiting in the inbox or running (trivially so without an inbox)."""
        return self.inbox is None or all(e.state is State.DONE for e in self.entries())


SETUPS = ["inline", "sqlite-inbox", "redis-store", "redis-inbox"]


@pytest.fixture(params=SETUPS)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    name: str = request.param
    if name == "inline":
        return Setup(name)
    if name == "sqlite-inbox":
        url = f"sqlite:///{tmp_path / 'events.db'}"
        return Setup(name, {"inbox": url}, inbox=url)
    # Only the Redis setups ask for Redis: the others run without it.
    url = request.getfixturevalue("redis_url")
    key_prefix = request.getfixturevalue("prefix")
    if name == "redis-store":
        return Setup(name, {"store": url, "redis_prefix": key_prefix}, redis_prefix=key_prefix)
    options = {"inbox": url, "redis_prefix": key_prefix, "redis_durability": "memory"}
    return Setup(name, options, inbox=url, redis_prefix=key_prefix)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def listener(setup: Setup, recorder: Recorder) -> Iterator[twilio.Listener]:
    with running(SmsRecorder(recorder), **setup.options) as listener:
        yield listener


def deliver(url: str, params: dict[str, str], token: str) -> httpx.Response:
    """One signed delivery of *params*, with *token* as its idempotency token."""
    return signed_post(url, params, TOKEN, headers={TOKEN_HEADER: token})


def runs(recorder: Recorder) -> list[tuple[str, str | None]]:
    with recorder.lock:
        return [(call.callback, call.event.sid) for call in recorder.calls]


def settle(setup: Setup, recorder: Recorder, expected: int) -> None:
    """Wait for *expected* callback runs and an inbox with nothing left to run."""
    wait_until(
        lambda: len(runs(recorder)) >= expected and setup.settled(),
        f"{expected} callback run(s) and a settled inbox ({setup.name})",
    )


def new_token() -> str:
    return str(uuid.uuid4())


# -- made-up tokens --------------------------------------------------------------------
def test_one_request_replayed_with_ten_made_up_tokens_runs_once(
    setup: Setup, listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    tokens = [new_token() for _ in range(10)]
    for token in tokens:
        assert_empty_twiml(deliver(listener.url, params, token))
    settle(setup, recorder, 1)
    assert runs(recorder) == [("on_delivered", params["MessageSid"])]
    if setup.inbox is not None:
        (entry,) = setup.entries()  # one entry: the copies were refused, not stored
        # The token stays as information: the first copy's, as it came.
        assert (TOKEN_HEADER.lower(), tokens[0]) in entry.headers


def test_twilio_retry_with_the_same_token_runs_once(
    setup: Setup, listener: twilio.Listener, recorder: Recorder
) -> None:
    params, token = sms_status_payload("sent"), new_token()
    assert_empty_twiml(deliver(listener.url, params, token))
    settle(setup, recorder, 1)
    assert_empty_twiml(deliver(listener.url, params, token))
    assert_empty_twiml(deliver(listener.url, params, token))
    settle(setup, recorder, 1)
    assert runs(recorder) == [("on_sent", params["MessageSid"])]
    if setup.inbox is not None:
        assert len(setup.entries()) == 1


def test_one_token_on_two_events_swallows_neither(
    setup: Setup, listener: twilio.Listener, recorder: Recorder
) -> None:
    # The converse: a header cannot make a signed event a copy of another one.
    sent = sms_status_payload("sent")
    delivered = sms_status_payload("delivered", sid=sent["MessageSid"])
    token = new_token()
    assert_empty_twiml(deliver(listener.url, sent, token))
    assert_empty_twiml(deliver(listener.url, delivered, token))
    settle(setup, recorder, 2)
    assert sorted(runs(recorder)) == [
        ("on_delivered", sent["MessageSid"]),
        ("on_sent", sent["MessageSid"]),
    ]


def test_events_without_sid_are_told_apart_by_their_signed_parameters(
    setup: Setup, listener: twilio.Listener, recorder: Recorder
) -> None:
    # Without a SID the identity fields are the status alone: keyed by them, the
    # second message would pass for a copy of the first.
    def without_sid(body: str) -> dict[str, str]:
        params = sms_status_payload("received", Body=body)
        for name in ("MessageSid", "SmsSid", "SmsMessageSid"):
            params.pop(name, None)
        return params

    first, second = without_sid("first"), without_sid("second")
    assert_empty_twiml(deliver(listener.url, first, new_token()))
    assert_empty_twiml(deliver(listener.url, second, new_token()))
    assert_empty_twiml(deliver(listener.url, first, new_token()))  # a replay of the first
    settle(setup, recorder, 2)
    with recorder.lock:
        bodies = sorted(call.event.get("Body") or "" for call in recorder.calls)
    assert bodies == ["first", "second"]


def test_without_deduplication_every_request_runs(tmp_path: Path, recorder: Recorder) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    setup = Setup("sqlite-inbox", inbox=url)
    params = sms_status_payload("delivered")
    with running(SmsRecorder(recorder), inbox=url, deduplicate=False) as listener:
        for _ in range(3):
            assert_empty_twiml(deliver(listener.url, params, new_token()))
        settle(setup, recorder, 3)
    assert runs(recorder) == [("on_delivered", params["MessageSid"])] * 3
    assert len(setup.entries()) == 3


# -- a huge token ----------------------------------------------------------------------
HUGE = 2 * 1024 * 1024


@pytest.mark.parametrize("setup", ["sqlite-inbox", "redis-store", "redis-inbox"], indirect=True)
def test_a_two_mebibyte_token_is_kept_bounded(
    setup: Setup, recorder: Recorder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    params = sms_status_payload("delivered")
    token = "T" + uuid.uuid4().hex + "z" * HUGE
    # The edge's head limit is raised so that the token reaches the listener's
    # logic, which is what is checked here.
    options = {**setup.options, "max_head_bytes": 8 * HUGE}
    with running(SmsRecorder(recorder), **options) as listener:
        assert_empty_twiml(deliver(listener.url, params, token))
        assert_empty_twiml(deliver(listener.url, params, token[:-1] + "y"))  # another one
        settle(setup, recorder, 1)
        assert runs(recorder) == [("on_delivered", params["MessageSid"])]
        if setup.inbox is not None:
            (entry,) = setup.entries()
            kept = dict(entry.headers)[TOKEN_HEADER.lower()]
            assert len(kept) <= KEPT_LIMIT
            assert kept.startswith(token[:33])  # recognisable: its start, length, digest
            assert f"{len(token)} characters" in kept
            assert len(entry.key) <= 100
    if setup.inbox is not None and setup.inbox.startswith("sqlite"):
        db = Path(setup.inbox.removeprefix("sqlite:///"))
        stored = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
        assert stored < HUGE // 8, stored  # was 22 MiB when the token was the key
    if setup.redis_prefix is not None:
        url = setup.options.get("store") or setup.inbox or ""
        keys = keys_under(url, setup.redis_prefix)
        assert keys
        assert max(len(key) for key in keys) < 200
        client = redis.Redis.from_url(url)
        try:
            used = sum(client.memory_usage(key) or 0 for key in keys)
        finally:
            client.close()
        assert used < HUGE // 8, used  # was 10 MiB when the token was the key
    run_of_token = "z" * 300
    for record in caplog.records:
        assert run_of_token not in record.getMessage(), record.name
        assert run_of_token not in json.dumps(vars(record), default=str), record.name


# -- Event Streams -----------------------------------------------------------------------
ACCOUNT = "AC" + "3f1c2e4d5b6a79880f1e2d3c4b5a6978"


def cloudevent(event_id: str, status: str, sid: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": f"com.twilio.messaging.message.{status}",
        "source": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
        "id": event_id,
        "datacontenttype": "application/json",
        "time": "2024-11-21T18:30:00.000Z",
        "data": {"messageSid": sid, "accountSid": ACCOUNT, "messageStatus": status.upper()},
    }


def post_batch(url: str, events: list[dict[str, Any]], token: str) -> httpx.Response:
    """A batch as an Event Streams sink sends it: signed over the body's SHA-256."""
    body = json.dumps(events).encode("utf-8")
    target = f"{url}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = RequestValidator(TOKEN).compute_signature(target, {})
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Signature": str(signature),
        TOKEN_HEADER: token,
    }
    return httpx.post(target, content=body, headers=headers, timeout=10.0)


@pytest.mark.parametrize("setup", ["inline", "sqlite-inbox"], indirect=True)
def test_event_streams_batches_are_deduplicated_by_cloudevent_id(
    setup: Setup, listener: twilio.Listener, recorder: Recorder
) -> None:
    sid = "SM" + uuid.uuid4().hex
    sent = cloudevent("EZ" + uuid.uuid4().hex, "sent", sid)
    delivered = cloudevent("EZ" + uuid.uuid4().hex, "delivered", sid)
    # Two events of one SID and status, told apart only by their ids.
    other_sid = "SM" + uuid.uuid4().hex
    first = cloudevent("EZ" + uuid.uuid4().hex, "delivered", other_sid)
    second = cloudevent("EZ" + uuid.uuid4().hex, "delivered", other_sid)
    # A long id is signed too, and kept short in the key.
    long_id = cloudevent("EZ" + "9" * 10_000, "queued", sid)
    assert_empty_twiml(post_batch(listener.url, [sent, delivered, first, long_id], new_token()))
    # Resent with new tokens, and mixed with a new event: only that one runs.
    assert_empty_twiml(post_batch(listener.url, [delivered, second, long_id], new_token()))
    assert_empty_twiml(post_batch(listener.url, [sent, first], new_token()))
    settle(setup, recorder, 5)
    assert sorted(runs(recorder)) == sorted(
        [
            ("on_sent", sid),
            ("on_delivered", sid),
            ("on_queued", sid),
            ("on_delivered", other_sid),
            ("on_delivered", other_sid),
        ]
    )
    if setup.inbox is not None:
        keys = [entry.key for entry in setup.entries()]
        assert len(keys) == 5
        assert max(len(key) for key in keys) <= 100
