"""The listener's ASGI application, built from its settings and services.

The signature verifier, the webhook handler, the delivery (stores, inbox,
retries) and what observes it (the event log, the inspector's activity, the
metrics), and the inspector's own application.  The inspector and the
metrics are imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from ._alerts import Alerts
from ._asgi import Endpoint, Receive, Scope, Send, WebhookApp
from ._config import Settings
from ._core.verifier import SignatureVerifier
from ._delivery import ControlPolicy, Delivery, RetryPolicy
from ._dispatch import Dispatcher
from ._exceptions import ConfigurationError
from ._health import health_endpoints
from ._observe import EventLog, Observer, Observers, parse_level
from ._postgres import is_postgres_url
from ._webhook import WebhookHandler
from .inbox import open_inbox
from .stores import DeliveryStore, StatusStore
from .stores.memory import MemoryDeliveryStore, MemoryStatusStore

if TYPE_CHECKING:
    from ._inspector import Activity
    from ._refused import RefusedRequests
    from .metrics import Metrics

__all__ = [
    "ASGIApp",
    "Application",
    "Observed",
    "build",
    "inspector_app",
    "is_loopback",
    "local_host",
    "observed_delivery",
    "url_host",
]

#: An ASGI application: what ``listener.asgi`` is, and what any ASGI server serves.
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Observed:
    """The delivery, and those of its observers the listener shows elsewhere."""

    delivery: Delivery
    metrics: Metrics | None = None
    activity: Activity | None = None  # the inspector's
    refused: RefusedRequests | None = None  # the inspector's


@dataclass(frozen=True, slots=True)
class Application:
    """The listener's ASGI application and what it was built with."""

    app: WebhookApp
    observed: Observed

    @property
    def delivery(self) -> Delivery:
        return self.observed.delivery


def build(settings: Settings, dispatcher: Dispatcher, alerts: Alerts | None = None) -> Application:
    """The application that verifies, decodes and delivers each webhook to *dispatcher*."""
    s = settings
    verifier = _verifier(s)
    observed = observed_delivery(s, dispatcher, alerts)
    endpoints: dict[str, Endpoint] = {}
    if s.health:
        endpoints.update(health_endpoints(observed.delivery, s.healthz_path, s.readyz_path))
    if observed.metrics is not None and s.metrics_port is None:
        endpoints[s.metrics_path] = observed.metrics.answer
    handler = WebhookHandler(
        observed.delivery,
        verifier,
        public_url=s.public_url,
        max_params=s.max_params,
        max_body_bytes=s.max_body_bytes,
        basic_auth=s.basic_auth,
    )
    app = WebhookApp(
        handler,
        path=s.path,
        shutdown_timeout=s.shutdown_timeout,
        endpoints=endpoints,
        paths=dispatcher.paths,
        keeps_refused=observed.refused is not None,
    )
    return Application(app, observed)


def _verifier(s: Settings) -> SignatureVerifier | None:
    if not s.verify_signatures:
        return None
    if not s.auth_tokens and not s.shared_keys:
        raise ConfigurationError(
            "no auth token to verify Twilio's signatures with: set "
            "TWILIO_AUTH_TOKEN or pass auth_tokens=[...] (pass "
            "verify_signatures=False only for local experiments)"
        )
    named = all(key for key, _ in s.shared_keys)
    shared: dict[str, str] | list[str] = (
        dict(s.shared_keys) if named else [secret for _, secret in s.shared_keys]
    )
    return SignatureVerifier(s.auth_tokens, shared_keys=shared)


def observed_delivery(
    settings: Settings, dispatcher: Dispatcher, alerts: Alerts | None = None
) -> Observed:
    """The delivery, told to the event log and, when asked for, to the inspector's
    activity and refused requests, and to the metrics."""
    s = settings
    observers: list[Observer] = [EventLog(parse_level(s.event_log_level))]
    activity = metrics = refused = None
    if s.inspector:
        from ._inspector import Activity

        activity = Activity()
        observers.append(activity)
        if s.refused_kept:
            from ._refused import RefusedRequests

            refused = RefusedRequests(s.refused_kept)
            observers.append(refused)
    if s.metrics:
        from .metrics import Metrics

        metrics = Metrics()
        observers.append(metrics)
    delivery = _delivery(
        s, dispatcher, observers[0] if len(observers) == 1 else Observers(observers), alerts
    )
    if metrics is not None and delivery.inbox is not None:
        metrics.watch_inbox(delivery.backlog_from_thread, delivery.paused_from_thread)
    return Observed(delivery, metrics, activity, refused)


def _delivery(
    s: Settings, dispatcher: Dispatcher, observer: Observer, alerts: Alerts | None
) -> Delivery:
    def stores() -> tuple[DeliveryStore, StatusStore]:
        if s.store == "memory":
            return (
                MemoryDeliveryStore(ttl=s.dedup_ttl, limit=s.dedup_max_entries),
                MemoryStatusStore(ttl=s.dedup_ttl, limit=s.dedup_max_entries),
            )
        # A claim outlives the callback's time limit, then frees itself if
        # the listener holding it died.
        lease = s.callback_timeout + 5.0
        if is_postgres_url(s.store):
            from .stores.postgres import PostgresDeliveryStore, PostgresStatusStore, StoreDatabase

            database = StoreDatabase(s.store, schema=s.postgres_schema, migrate=s.postgres_migrate)
            return (
                PostgresDeliveryStore(database, ttl=s.dedup_ttl, lease=lease),
                PostgresStatusStore(database, ttl=s.dedup_ttl),
            )
        from .stores.redis import RedisDeliveryStore, RedisStatusStore, connect

        return (
            RedisDeliveryStore(
                connect(s.store), prefix=s.redis_prefix, ttl=s.dedup_ttl, lease=lease
            ),
            RedisStatusStore(connect(s.store), prefix=s.redis_prefix, ttl=s.dedup_ttl),
        )

    if s.inbox is None and (s.limits or s.breaker_failures):
        raise ConfigurationError(
            "limits and breakers hold events back in the inbox until they may run: "
            "pass inbox=... (or --inbox, TWILIO_TRIGGER_INBOX) with limits or "
            "breaker_failures"
        )
    return Delivery(
        dispatcher,
        stores=stores,
        deduplicate=s.deduplicate,
        deliveries=None,
        statuses=None,
        skip_stale=s.skip_stale,
        callback_timeout=s.callback_timeout,
        inbox=None
        if s.inbox is None
        else open_inbox(
            s.inbox,
            prefix=s.redis_prefix,
            claim_idle=s.claim_idle,
            retention=s.dedup_ttl,
            file_mode=s.file_mode,
            durability=s.redis_durability,
            wait_timeout=s.redis_wait_timeout,
            schema=s.postgres_schema,
            migrate=s.postgres_migrate,
            # The workers' callbacks (each may hold a transaction), the inserts,
            # the claims and the leases.
            connections=s.concurrency + 4,
        ),
        retry=RetryPolicy(s.concurrency, s.max_attempts, s.retry_backoff, s.retry_backoff_max),
        control=ControlPolicy(
            s.limits,
            s.breaker_failures,
            s.breaker_cooldown,
            # A place is held at most this long by a process that died holding it.
            lease=max(s.claim_idle, 2 * s.callback_timeout + 5.0),
        ),
        alerts=alerts,
        retention=s.dedup_ttl,
        observer=observer,
    )


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost")


def url_host(host: str) -> str:
    """*host* as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def local_host(host: str) -> str:
    """Where a server bound to *host* is reached from this machine, as a URL writes
    it: a wildcard address is the loopback one."""
    return url_host({"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host))  # noqa: S104


def inspector_app(settings: Settings, application: Application) -> ASGIApp:
    """The inspector's application, over the listener's inbox and activity."""
    s = settings
    assert application.observed.activity is not None
    loopback = is_loopback(s.inspector_host)
    if not loopback and s.inspector_token is None:
        raise ConfigurationError(
            f"the inspector shows phone numbers and message bodies: bound to "
            f"{s.inspector_host} it needs a token (TWILIO_TRIGGER_INSPECTOR_TOKEN, at "
            f"least 16 characters), or bind it to 127.0.0.1"
        )
    from ._inspector import InspectorApp

    try:
        return InspectorApp(
            application.delivery,
            application.observed.activity,
            token=s.inspector_token,
            loopback_only=loopback,
            refused=application.observed.refused,
        )
    except ValueError:
        raise ConfigurationError(
            "the inspector shows the inbox: pass inbox=... (or --inbox) with inspector=True"
        ) from None
