"""Prometheus metrics of a listener: ``pip install 'twilio-trigger[metrics]'``.

``Listener(metrics=True)`` serves them at ``/metrics``; ``metrics_port=9100``
serves them on a port of their own instead.  Every label takes a bounded set
of values: a status Twilio-trigger does not know is counted as ``other``, and
no SID, number or URL is ever a label.

With several processes (``twilio-trigger run --workers N``) the counters of
all of them are added up through prometheus-client's multiprocess mode, set up
by the command line (``PROMETHEUS_MULTIPROC_DIR``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ._core.answers import Answer, answer
from ._core.events import TwilioEvent
from ._core.kinds import KINDS
from ._exceptions import ConfigurationError
from ._invoke import Outcome, Result
from ._observe import Attempt, Observer, Refusal, Rejection
from .inbox import State

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        Info,
        generate_latest,
    )
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # pragma: no cover - exercised without the extra
    raise ConfigurationError(
        "metrics need prometheus-client: pip install 'twilio-trigger[metrics]'"
    ) from None

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["Metrics"]

#: Each kind's events by their lower case: a label is Twilio's spelling of one
#: (``onMessageAdded``), or ``other``, so that made-up values cannot add series.
_KNOWN = {kind.name: {event.lower(): event for event in kind.events} for kind in KINDS}
# From a fast callback (a database write) to one near Twilio's 15 s limit.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
_SCRAPE_TIMEOUT = 2.0


class _InboxCollector:
    """The inbox's backlog by state, and whether its dispatch is paused, read when
    scraped (the pause is the inbox's, shared by all its processes)."""

    def __init__(
        self,
        backlog: Callable[[float], dict[State, int] | None],
        paused: Callable[[float], bool | None] | None = None,
    ) -> None:
        self._backlog = backlog
        self._paused = paused

    def collect(self) -> Iterator[Metric]:
        counts = self._backlog(_SCRAPE_TIMEOUT)
        if counts is not None:
            family = GaugeMetricFamily(
                "twilio_trigger_inbox_entries",
                "Events in the durable inbox by state (pending, running, dead).",
                labels=["state"],
            )
            for state, count in counts.items():
                family.add_metric([state.value], count)
            yield family
        paused = None if self._paused is None else self._paused(_SCRAPE_TIMEOUT)
        if paused is not None:
            yield GaugeMetricFamily(
                "twilio_trigger_dispatch_paused",
                "1 while dispatch from the inbox is paused (events are still stored), else 0.",
                value=1 if paused else 0,
            )

    def describe(self) -> Iterator[Metric]:
        return iter(())


def _status_label(event: TwilioEvent) -> str:
    known = _KNOWN.get(event.kind)
    if not known:
        return "other"
    return known.get((event.status or "").strip().lower(), "other")


class Metrics(Observer):
    """The listener's counters and histograms, in a registry of their own.

    ``registry`` is a ``prometheus_client.CollectorRegistry``: pass your own to
    export the listener's metrics with the rest of your application's.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from . import __version__

        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._received = Counter(
            "twilio_trigger_events_received",
            "Verified events received, by kind and status.",
            ["kind", "status"],
            registry=r,
        )
        self._events = Counter(
            "twilio_trigger_events",
            "Events by what became of them: handled, failed, timed_out, duplicate, stale, "
            "no_service, no_callback, unknown_status.",
            ["kind", "outcome"],
            registry=r,
        )
        self._rejected = Counter(
            "twilio_trigger_requests_rejected",
            "Requests refused before their event was trusted, by reason.",
            ["reason"],
            registry=r,
        )
        self._responses = Counter(
            "twilio_trigger_responses",
            "Answers of the webhook path, by HTTP status code.",
            ["code"],
            registry=r,
        )
        self._duration = Histogram(
            "twilio_trigger_callback_duration_seconds",
            "Time the callbacks took, by kind and callback.",
            ["kind", "callback"],
            buckets=_BUCKETS,
            registry=r,
        )
        self._retries = Counter(
            "twilio_trigger_inbox_retries",
            "Failed inbox attempts that will be tried again, by kind.",
            ["kind"],
            registry=r,
        )
        self._dead = Counter(
            "twilio_trigger_inbox_dead_letters",
            "Events kept as dead letters after their last attempt failed, by kind.",
            ["kind"],
            registry=r,
        )
        self._breaker_open = Gauge(
            "twilio_trigger_breaker_open",
            "1 while the breaker of a callback is open (its events wait in the inbox), else 0.",
            ["callback"],
            registry=r,
            multiprocess_mode="max",
        )
        self._breaker_changes = Counter(
            "twilio_trigger_breaker_changes",
            "Breakers opened or closed by this process, by callback and what it became "
            "(open, closed).",
            ["callback", "to"],
            registry=r,
        )
        self._held = Counter(
            "twilio_trigger_events_held",
            "Events given back to the inbox for later by their callback's limits, by "
            "callback and limit (concurrency, rate).",
            ["callback", "limit"],
            registry=r,
        )
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # no Info across processes
            Info("twilio_trigger", "The twilio-trigger package.", registry=r).info(
                {"version": __version__}
            )
        # Series that exist from the start, so that rate() and alerts see a 0.
        for reason in Rejection.ALL:
            self._rejected.labels(reason)
        for kind in _KNOWN:
            for outcome in (Outcome.HANDLED, Outcome.FAILED, Outcome.DUPLICATE):
                self._events.labels(kind, outcome.value)
        self._children: dict[tuple[object, ...], Any] = {}
        self._lock = threading.Lock()
        self._inbox: _InboxCollector | None = None
        self._renderer = ThreadPoolExecutor(1, thread_name_prefix="twilio-trigger-metrics")

    def watch_inbox(
        self,
        backlog: Callable[[float], dict[State, int] | None],
        paused: Callable[[float], bool | None] | None = None,
    ) -> None:
        """Report the inbox's backlog, read by *backlog* (a timeout in, counts out),
        and whether its dispatch is paused, read by *paused* (``None``: unknown)."""
        if self._inbox is None:
            self._inbox = _InboxCollector(backlog, paused)
            self.registry.register(self._inbox)

    # A metric's labels() takes a lock and builds a key; each label set is looked
    # up once and kept.
    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children[key] = metric.labels(*labels)
        return child

    # -- Observer ------------------------------------------------------------
    def rejected(self, refusal: Refusal) -> None:
        self._child(self._rejected, refusal.reason).inc()

    def answered(self, status: int) -> None:
        self._child(self._responses, str(status)).inc()

    def received(self, event: TwilioEvent) -> None:
        self._child(self._received, event.kind, _status_label(event)).inc()

    def finished(
        self,
        event: TwilioEvent,
        result: Result,
        attempt: Attempt | None = None,
    ) -> None:
        kind = event.kind
        self._child(self._events, kind, result.outcome.value).inc()
        if result.seconds is not None and result.callback is not None:
            name = result.callback.rpartition(".")[2]  # the method: on_delivered
            self._child(self._duration, kind, name).observe(result.seconds)
        if attempt is None:
            return
        if attempt.retry_in is not None:
            self._child(self._retries, kind).inc()
        elif attempt.dead_letter is not None:
            self._child(self._dead, kind).inc()

    def breaker(self, callback: str, *, opened: bool, here: bool) -> None:
        self._child(self._breaker_open, callback).set(1 if opened else 0)
        if here:
            self._child(self._breaker_changes, callback, "open" if opened else "closed").inc()

    def held(self, callback: str, reason: str) -> None:
        self._child(self._held, callback, reason).inc()

    # -- exposition -------------------------------------------------------------
    def _exposition_registry(self) -> CollectorRegistry:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return self.registry
        from prometheus_client import multiprocess

        # Each process writes its counts to files; a scrape adds them all up.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        if self._inbox is not None:
            registry.register(self._inbox)
        return registry

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format (blocking: call it off the event loop)."""
        return generate_latest(self._exposition_registry())

    async def answer(self) -> Answer:
        """The answer to ``GET /metrics``: rendered in a thread, since reading the
        inbox's backlog needs the event loop free."""
        # Not in the loop's default pool: sync callbacks may hold all its threads.
        body = await asyncio.get_running_loop().run_in_executor(self._renderer, self.exposition)
        return answer(200, body, CONTENT_TYPE_LATEST.encode("latin-1"))
