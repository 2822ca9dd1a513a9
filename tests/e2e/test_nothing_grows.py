"""What the listener keeps does not grow with its traffic, in objects the collector walks.

The duplicate and status stores are packed so that Python's garbage collector never
walks their entries (tests/runtime/test_stores_packed.py); this is the same check for
everything else a request touches: the metrics, the log of events and of refusals,
the hints said once per cause, the inspector's list of refused requests, the edge,
the inbox's workers.  A real listener on loopback is sent a round of requests of
every sort (new deliveries, copies with made-up content types, stale statuses,
wrong signatures, statuses and webhooks nobody handles, each with new SIDs and new
statuses), then a second round as large: the
objects the collector tracks (``gc.get_objects()``) must be as many after the
second round as after the first, give or take a few, never one per request.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload
from tests.postgres_support import pg_schema, postgres_database
from tests.redis_support import prefix, redis_url
from twilio_trigger.testing import unknown_params

from ._support import TOKEN, running, wait_until

pytestmark = pytest.mark.usefixtures("no_listener_options")
__all__ = ["pg_schema", "postgres_database", "prefix", "redis_url"]  # fixtures, for pytest

#: Requests per round: enough that keeping one object per request shows at once.
ROUND = 600
#: Tracked objects a round may add: a few (tasks and weak references in flight, caches
#: that fill once), far fewer than its 225 deliveries.
SLACK = 120
OTHER_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


class Messages(twilio.SmsStatusService):
    def __init__(self) -> None:
        self.delivered = 0
        self._lock = threading.Lock()

    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        with self._lock:
            self.delivered += 1

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        pass


class Others(twilio.FallbackService):
    def on_event(self, event: twilio.TwilioEvent) -> None:
        pass


@contextlib.contextmanager
def logged_to_nowhere() -> Iterator[None]:
    """Every event's log line formatted and written (to the null device), kept nowhere:
    the test's own log capture would otherwise hold each record."""
    logger = logging.getLogger("twilio_trigger")
    level, propagate = logger.level, logger.propagate
    with open(os.devnull, "w", encoding="utf-8") as sink:
        handler = logging.StreamHandler(sink)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def send_round(listener: twilio.Listener, client: httpx.Client, service: Messages) -> None:
    """A round of requests of every sort; waits until each delivery is dispatched."""
    expected = service.delivered
    earlier: list[dict[str, str]] = []
    for number in range(ROUND):
        sort = number % 8
        headers: dict[str, str] = {}
        if sort in (0, 1, 2):  # a new delivery
            params = sms_status_payload("delivered")
            earlier.append(params)
            expected += 1
            token = TOKEN
        elif sort == 3:  # Twilio sending a delivery again, its content type made up
            params, token = earlier[-1], TOKEN
            headers = {"Content-Type": f"application/x-www-form-urlencoded; v={number}"}
        elif sort == 4:  # a stale status: sent, after delivered
            params = dict(earlier[-2], MessageStatus="sent", SmsStatus="sent")
            token = TOKEN
        elif sort == 5:  # a wrong signature: refused
            params, token = sms_status_payload("delivered"), OTHER_TOKEN
        elif sort == 6:  # a status nobody handles, a new one every time
            status = f"frobnicated-{number}"
            params = sms_status_payload("delivered", MessageStatus=status, SmsStatus=status)
            token = TOKEN
        else:  # a webhook of a family with no kind, to the fallback
            params, token = unknown_params(), TOKEN
        response = signed_post(listener.url, params, token, client=client, headers=headers)
        assert response.status_code == (403 if token != TOKEN else 200), response.text
    wait_until(lambda: service.delivered >= expected, f"{expected} deliveries dispatched")


def tracked() -> Counter[str]:
    """The objects the collector tracks, counted by type, but for dead weak references:
    sqlite3 keeps one per cursor made, and drops them only every 200 cursors."""
    gc.collect()
    return Counter(
        type(thing).__qualname__
        for thing in gc.get_objects()
        # type(), not isinstance(): a lazy proxy (Django's settings) would evaluate itself.
        if not (type(thing) is weakref.ReferenceType and thing() is None)
    )


def rounds(**options: Any) -> tuple[Counter[str], Counter[str]]:
    """Tracked objects after one round and after a second, the listener still running."""
    service = Messages()
    with (
        logged_to_nowhere(),
        running(service, Others(), metrics=True, **options) as listener,
        httpx.Client(timeout=10, trust_env=False) as client,
    ):
        send_round(listener, client, service)
        send_round(listener, client, service)  # caches and bounded lists filled
        settled(listener, client)
        after_first = tracked()
        send_round(listener, client, service)
        settled(listener, client)
        return after_first, tracked()


def settled(listener: twilio.Listener, client: httpx.Client) -> None:
    """With an inbox, wait until no entry is pending or running: the outcomes'
    writes (each a task of its own while it runs) are over, not counted in flight."""
    url = listener.inspector_url
    if url is None:
        return

    def idle() -> bool:
        counters = client.get(url + "api/events").json()["counters"]
        return bool(counters["pending"] == 0 and counters["running"] == 0)

    wait_until(idle, "the inbox idle")


def assert_flat(first: Counter[str], second: Counter[str]) -> None:
    grown = second.total() - first.total()
    assert grown < SLACK, (
        f"{grown} more tracked objects after {ROUND} requests: {(second - first).most_common(8)}"
    )


def test_inline_at_the_defaults_with_metrics_keeps_nothing_per_request() -> None:
    assert_flat(*rounds())


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_with_an_inbox_and_the_inspector_keeps_nothing_per_request(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    options: dict[str, Any] = {"inspector": True, "inspector_port": 0}
    if backend == "sqlite":
        options["inbox"] = f"sqlite:///{tmp_path}/events.db"
    elif backend == "redis":
        options["inbox"] = request.getfixturevalue("redis_url")
        options["redis_prefix"] = request.getfixturevalue("prefix")
        options["redis_durability"] = "memory"  # the shared Redis keeps nothing on disk
    else:
        options["inbox"] = request.getfixturevalue("postgres_database")
        options["postgres_schema"] = request.getfixturevalue("pg_schema")
    assert_flat(*rounds(**options))
