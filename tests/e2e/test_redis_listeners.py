"""Listeners sharing a Redis store, over real HTTP: one delivery runs once across them,
a failed one is retried by the other, status order spans them, and a Redis outage
answers 503 until Redis is back.

The shared-Redis tests work under their own key prefix on 127.0.0.1:6379 and delete
their keys afterwards; the outage tests start, stop and restart a private
redis-server.  Without Redis they skip, or fail when ``TWILIO_TRIGGER_REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.redis_support import RedisServer, keys_under, own_redis, prefix, redis_url

from ._support import TOKEN, assert_empty_twiml

__all__ = ["own_redis", "prefix", "redis_url"]  # the fixtures, imported for pytest to find

#: The 503 body of a store that cannot be reached.
STORE_UNAVAILABLE = "the listener's store is unreachable; try again"


@dataclass(frozen=True)
class Call:
    """One callback run, as the callback saw it."""

    listener: str
    callback: str
    sid: str | None
    previous_status: str | None
    stale: bool


class Calls:
    """Every callback run of every listener of a test, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def all(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def of(self, sid: str) -> list[Call]:
        return [call for call in self.all() if call.sid == sid]


class Recording(twilio.SmsStatusService):
    """Records its callbacks into *calls*; can take its time, or fail."""

    def __init__(self, name: str, calls: Calls, *, delay: float = 0.0) -> None:
        self.name = name
        self.calls = calls
        self.delay = delay
        self.failing = False

    async def _record(self, callback: str, event: twilio.SmsStatusChangeEvent) -> None:
        self.calls.add(Call(self.name, callback, event.sid, event.previous_status, event.stale))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:
            raise RuntimeError(f"{self.name} could not handle {event.sid}")

    async def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        await self._record("on_sent", event)

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        await self._record("on_delivered", event)


@contextlib.contextmanager
def listening(service: object, store: str, key_prefix: str, **options: Any) -> Iterator[str]:
    """A listener with a Redis *store* and *service* attached; yields its URL."""
    options.setdefault("callback_timeout", 5)
    listener = twilio.Listener(
        0,
        host="127.0.0.1",
        auth_tokens=[TOKEN],
        store=store,
        redis_prefix=key_prefix,
        **options,
    )
    listener.attach(service)
    with listener:
        yield listener.url


def deliver(url: str, params: dict[str, str], token: str) -> httpx.Response:
    """One delivery of *params*, signed; the same *token* again is Twilio's retry of it."""
    return signed_post(url, params, TOKEN, headers={"I-Twilio-Idempotency-Token": token})


def new_token() -> str:
    return str(uuid.uuid4())


# -- two listeners, one Redis -----------------------------------------------------------
def test_one_delivery_at_both_listeners_at_once_runs_once(redis_url: str, prefix: str) -> None:
    calls = Calls()
    a, b = Recording("A", calls, delay=0.3), Recording("B", calls, delay=0.3)
    params, token = sms_status_payload("delivered"), new_token()
    with listening(a, redis_url, prefix) as url_a, listening(b, redis_url, prefix) as url_b:
        together = threading.Barrier(2)

        def post(url: str) -> httpx.Response:
            together.wait()
            return deliver(url, params, token)

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(post, [url_a, url_b]))
    for answer in answers:
        assert_empty_twiml(answer)
        # Both overlapped the one run: the second copy waited for its outcome.
        assert answer.elapsed.total_seconds() >= 0.25, answer.elapsed
    assert len(calls.all()) == 1, calls.all()
    assert calls.all()[0].callback == "on_delivered"
    # One delivery remembered (its key's form is the delivery key's business) and
    # one SID's status: nothing else under the prefix.
    keys = keys_under(redis_url, prefix)
    deliveries = [key for key in keys if key.startswith(f"{prefix}d:")]
    assert len(deliveries) == 1, keys
    assert keys == sorted([*deliveries, f"{prefix}s:sms:{params['MessageSid']}"])


def test_a_delivery_handled_by_one_listener_is_a_duplicate_at_the_other(
    redis_url: str, prefix: str
) -> None:
    calls = Calls()
    a, b = Recording("A", calls), Recording("B", calls)
    params, token = sms_status_payload("delivered"), new_token()
    with listening(a, redis_url, prefix) as url_a, listening(b, redis_url, prefix) as url_b:
        assert_empty_twiml(deliver(url_a, params, token))
        assert_empty_twiml(deliver(url_b, params, token))
        assert_empty_twiml(deliver(url_a, params, token))
    assert [call.listener for call in calls.all()] == ["A"]


def test_a_delivery_that_failed_at_one_listener_runs_at_the_other(
    redis_url: str, prefix: str
) -> None:
    calls = Calls()
    a, b = Recording("A", calls), Recording("B", calls)
    a.failing = True
    params, token = sms_status_payload("delivered"), new_token()
    sid = params["MessageSid"]
    with listening(a, redis_url, prefix) as url_a, listening(b, redis_url, prefix) as url_b:
        failed = deliver(url_a, params, token)
        assert failed.status_code == 500, failed.text
        assert_empty_twiml(deliver(url_b, params, token))  # Twilio's retry, elsewhere
        assert_empty_twiml(deliver(url_a, params, token))  # and now a duplicate
    assert calls.of(sid) == [
        Call("A", "on_delivered", sid, None, False),
        Call("B", "on_delivered", sid, None, False),  # a repeat: still nothing before it
    ]


def test_status_order_spans_the_listeners(redis_url: str, prefix: str) -> None:
    calls = Calls()
    a, b, c = Recording("A", calls), Recording("B", calls), Recording("C", calls)
    sid, skipped_sid = f"SM{uuid.uuid4().hex}", f"SM{uuid.uuid4().hex}"
    with (
        listening(a, redis_url, prefix) as url_a,
        listening(b, redis_url, prefix) as url_b,
        listening(c, redis_url, prefix, skip_stale=True) as url_c,
    ):
        assert_empty_twiml(deliver(url_a, sms_status_payload("delivered", sid=sid), new_token()))
        assert_empty_twiml(deliver(url_b, sms_status_payload("sent", sid=sid), new_token()))
        for url, status in ((url_a, "delivered"), (url_c, "sent")):
            params = sms_status_payload(status, sid=skipped_sid)
            assert_empty_twiml(deliver(url, params, new_token()))
    assert calls.of(sid) == [
        Call("A", "on_delivered", sid, None, False),
        Call("B", "on_sent", sid, "delivered", True),
    ]
    # C skips stale events: its "sent" after A's "delivered" is acknowledged, not run.
    assert calls.of(skipped_sid) == [Call("A", "on_delivered", skipped_sid, None, False)]


class Blocking(twilio.SmsStatusService):
    """A plain ``def`` callback that runs on past its time limit, until *release* is set."""

    def __init__(self, name: str, calls: Calls, release: threading.Event) -> None:
        self.name = name
        self.calls = calls
        self.release = release

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.calls.add(Call(self.name, "on_delivered", event.sid, None, False))
        self.release.wait(15)


def test_a_sync_callback_past_its_lease_still_keeps_the_retry_from_running_beside_it(
    redis_url: str, prefix: str
) -> None:
    # README: "two copies of a delivery arriving at two listeners never both run", and a
    # plain def callback past callback_timeout keeps its delivery claimed until it ends.
    # The Redis claim is a lease of callback_timeout + 5 s that nobody renews.
    calls, release = Calls(), threading.Event()
    a, b = Blocking("A", calls, release), Blocking("B", calls, release)
    params, token = sms_status_payload("delivered"), new_token()
    try:
        with (
            listening(a, redis_url, prefix, callback_timeout=0.2) as url_a,
            listening(b, redis_url, prefix, callback_timeout=0.2) as url_b,
        ):
            timed_out = deliver(url_a, params, token)
            claimed_by = time.monotonic()  # A claimed the delivery before it answered
            assert timed_out.status_code == 503, timed_out.text
            early = deliver(url_b, params, token)  # within the lease: refused, not run
            assert early.status_code == 503, early.text
            assert early.text.strip() == "another copy of this event is being handled"
            time.sleep(max(0.0, claimed_by + 5.4 - time.monotonic()))  # past the 5.2 s lease
            assert [call.listener for call in calls.all()] == ["A"]  # A's still runs
            retry = deliver(url_b, params, token)  # Twilio's retry, at the other listener
            running = [call.listener for call in calls.all()]
            release.set()
    finally:
        release.set()
    assert running == ["A"], f"a second copy ran beside the first: {running}"
    assert retry.status_code == 503, (retry.status_code, retry.text)
    assert retry.text.strip() == "another copy of this event is being handled"


# -- Redis goes away, then comes back ------------------------------------------------------
def _outage(server: RedisServer, **options: Any) -> None:
    """One event before the outage, 503s during it, and 200s once Redis is back."""
    calls = Calls()
    service = Recording("A", calls)
    key_prefix = f"tt-outage-{uuid.uuid4().hex[:8]}:"
    with listening(service, server.url, key_prefix, **options) as url:
        before = sms_status_payload("delivered")
        assert_empty_twiml(deliver(url, before, new_token()))
        assert [call.sid for call in calls.all()] == [before["MessageSid"]]

        server.stop()
        during = [(sms_status_payload("delivered"), new_token()) for _ in range(3)]
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda delivery: deliver(url, *delivery), during))
        assert [answer.status_code for answer in answers] == [503] * 3, [
            answer.text for answer in answers
        ]
        assert all(answer.text.strip() == STORE_UNAVAILABLE for answer in answers)
        assert len(calls.all()) == 1, calls.all()

        server.start()  # same port; the listener is not restarted
        deadline = time.monotonic() + 5.0
        after: list[tuple[str, int]] = []
        while True:
            params = sms_status_payload("delivered")
            answer = deliver(url, params, new_token())
            after.append((params["MessageSid"], answer.status_code))
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            assert answer.status_code == 503, answer.text
            time.sleep(0.1)
        assert after[-1][1] == 200, f"no 200 within 5 s of Redis coming back: {after}"
        # Twilio's retry of a delivery refused during the outage now runs.
        assert_empty_twiml(deliver(url, *during[0]))

    dispatched = [call.sid for call in calls.all()]
    answered = [sid for sid, status in after if status == 200]
    assert dispatched == [before["MessageSid"], *answered, during[0][0]["MessageSid"]]


def test_a_redis_outage_answers_503_until_redis_is_back(own_redis: RedisServer) -> None:
    _outage(own_redis)


def test_a_redis_outage_answers_503_without_deduplication(own_redis: RedisServer) -> None:
    # Only the status store is in Redis then; it failing must still refuse the event.
    _outage(own_redis, deduplicate=False)
