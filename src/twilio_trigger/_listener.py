"""The listener: a webhook endpoint, the services attached to it, and its server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import uvicorn

from ._asgi import WebhookApp
from ._config import Settings
from ._delivery import Delivery, RetryPolicy
from ._dispatch import Dispatcher
from ._edge import EdgeConfig, EdgeLimits, raise_file_limit
from ._exceptions import ConfigurationError, ServiceError
from ._health import health_endpoints
from ._inspector import Activity, InspectorApp
from ._logging import configure_logging
from ._observe import EventLog, Observer, Observers, parse_level
from ._signature import SignatureVerifier
from ._webhook import WebhookHandler
from .inbox import open_inbox
from .stores import DeliveryStore, StatusStore
from .stores.memory import MemoryDeliveryStore, MemoryStatusStore

if TYPE_CHECKING:
    from .metrics import Metrics, MetricsServer

__all__ = ["Listener"]

logger = logging.getLogger("twilio_trigger")

_S = TypeVar("_S", bound=type)


class _Server(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        announce: Callable[[], None],
        companions: Iterable[tuple[uvicorn.Server, socket.socket]] = (),
    ) -> None:
        super().__init__(config)
        self._announce = announce
        # Servers of other applications (the inspector) on this loop, started
        # and stopped with this one.
        self._companions = list(companions)
        self.freeze = False  # set by run(), where the process is the listener's
        self.ready = False  # started, companions too, and announced

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            for server, sock in self._companions:
                server.config.load()
                server.lifespan = server.config.lifespan_class(server.config)
                await server.startup(sockets=[sock])
            if self.freeze:
                # What exists now (modules, services, the app) lives as long as
                # the process: keep it out of the garbage collector's way.
                gc.freeze()
            self._announce()  # now accepting, and signals are handled
            self.ready = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server, sock in self._companions:
            if server.started:
                await server.shutdown(sockets=[sock])
        await super().shutdown(sockets)

    # uvicorn re-raises a caught SIGINT/SIGTERM once it has shut down, which
    # would turn a graceful stop into a KeyboardInterrupt or a killed process.
    # The listener's run() returns normally instead.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections queue from now on, before the server runs
    except OSError as error:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    sock.set_inheritable(True)
    return sock


class Listener:
    """Receives Twilio webhooks on one HTTP path and dispatches them to services.

    ``Listener(8090)`` listens on port 8090 of every interface at ``/``, and
    verifies signatures with the auth token(s) in ``TWILIO_AUTH_TOKEN``.  Each
    option not passed is read from its environment variable (see the README),
    else takes its default.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str | None = None,
        path: str | None = None,
        auth_tokens: str | Iterable[str] | None = None,
        shared_keys: str | Mapping[str, str] | Iterable[str] | None = None,
        public_url: str | None = None,
        verify_signatures: bool | None = None,
        max_body_bytes: int | None = None,
        max_params: int | None = None,
        max_head_bytes: int | None = None,
        max_headers: int | None = None,
        head_timeout: float | None = None,
        body_timeout: float | None = None,
        keepalive_timeout: float | None = None,
        max_connections: int | None = None,
        shutdown_timeout: float | None = None,
        deduplicate: bool | None = None,
        dedup_ttl: float | None = None,
        dedup_max_entries: int | None = None,
        skip_stale: bool | None = None,
        callback_timeout: float | None = None,
        inbox: str | None = None,
        file_mode: int | str | None = None,
        workers: int | None = None,
        max_attempts: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        store: str | None = None,
        redis_prefix: str | None = None,
        claim_idle: float | None = None,
        redis_durability: str | None = None,
        redis_wait_timeout: float | None = None,
        health: bool | None = None,
        healthz_path: str | None = None,
        readyz_path: str | None = None,
        metrics: bool | None = None,
        metrics_path: str | None = None,
        metrics_port: int | None = None,
        metrics_host: str | None = None,
        event_log_level: str | None = None,
        log_format: str | None = None,
        log_level: str | None = None,
        inspector: bool | None = None,
        inspector_host: str | None = None,
        inspector_port: int | None = None,
        inspector_token: str | None = None,
    ) -> None:
        self.settings = Settings.resolve(
            {
                "port": port,
                "host": host,
                "path": path,
                "auth_tokens": auth_tokens,
                "shared_keys": shared_keys,
                "public_url": public_url,
                "verify_signatures": verify_signatures,
                "max_body_bytes": max_body_bytes,
                "max_params": max_params,
                "max_head_bytes": max_head_bytes,
                "max_headers": max_headers,
                "head_timeout": head_timeout,
                "body_timeout": body_timeout,
                "keepalive_timeout": keepalive_timeout,
                "max_connections": max_connections,
                "shutdown_timeout": shutdown_timeout,
                "deduplicate": deduplicate,
                "dedup_ttl": dedup_ttl,
                "dedup_max_entries": dedup_max_entries,
                "skip_stale": skip_stale,
                "callback_timeout": callback_timeout,
                "inbox": inbox,
                "file_mode": file_mode,
                "workers": workers,
                "max_attempts": max_attempts,
                "retry_backoff": retry_backoff,
                "retry_backoff_max": retry_backoff_max,
                "store": store,
                "redis_prefix": redis_prefix,
                "claim_idle": claim_idle,
                "redis_durability": redis_durability,
                "redis_wait_timeout": redis_wait_timeout,
                "health": health,
                "healthz_path": healthz_path,
                "readyz_path": readyz_path,
                "metrics": metrics,
                "metrics_path": metrics_path,
                "metrics_port": metrics_port,
                "metrics_host": metrics_host,
                "event_log_level": event_log_level,
                "log_format": log_format,
                "log_level": log_level,
                "inspector": inspector,
                "inspector_host": inspector_host,
                "inspector_port": inspector_port,
                "inspector_token": inspector_token,
            }
        )
        self._dispatcher = Dispatcher()
        self._app: WebhookApp | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._bound_port: int | None = None
        self._metrics: Metrics | None = None
        self._metrics_server: MetricsServer | None = None
        self._activity: Activity | None = None
        self._inspector_port: int | None = None
        self._companions: list[tuple[uvicorn.Server, socket.socket]] = []

    def __repr__(self) -> str:
        s = self.settings
        return f"<Listener {s.host}:{self.port}{s.path} services={len(self.services)}>"

    # -- services ----------------------------------------------------------
    @property
    def services(self) -> tuple[object, ...]:
        """The attached services."""
        return self._dispatcher.services

    def attach(self, service: object) -> None:
        """Attach a service: an instance of a ``SmsStatusService`` or ``CallStatusService``.

        Raises :class:`ServiceError` for a non-service, a misspelt ``on_...``
        method, or a second service of a kind already attached.
        """
        self._dispatcher.attach(service)

    def detach(self, service: object) -> None:
        """Detach a service attached before; its events are acknowledged, undispatched."""
        self._dispatcher.detach(service)

    def service(self, cls: _S) -> _S:
        """Class decorator: instantiate the class with no arguments and attach it."""
        if not isinstance(cls, type):
            raise ServiceError("@listener.service decorates a class; use attach() for instances")
        try:
            instance = cls()
        except TypeError as error:
            raise ServiceError(
                f"@listener.service creates {cls.__name__}() with no arguments ({error}); "
                f"build it yourself and call listener.attach(...) instead"
            ) from None
        self.attach(instance)
        return cls

    # -- the application ---------------------------------------------------
    @property
    def asgi(self) -> Callable[..., Any]:
        """The ASGI application: serve it with any ASGI server or mount it in another app."""
        if self._app is None:
            s = self.settings
            verifier = None
            if s.verify_signatures:
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
                verifier = SignatureVerifier(s.auth_tokens, shared_keys=shared)
            delivery = self._observed_delivery()
            endpoints = {}
            if s.health:
                endpoints.update(health_endpoints(delivery, s.healthz_path, s.readyz_path))
            if self._metrics is not None and s.metrics_port is None:
                endpoints[s.metrics_path] = self._metrics.answer
            handler = WebhookHandler(
                delivery,
                verifier,
                public_url=s.public_url,
                max_params=s.max_params,
                max_body_bytes=s.max_body_bytes,
            )
            self._app = WebhookApp(
                handler, path=s.path, shutdown_timeout=s.shutdown_timeout, endpoints=endpoints
            )
        return self._app

    @property
    def metrics(self) -> Metrics | None:
        """The listener's Prometheus metrics (``metrics=True``), else ``None``.

        Its ``registry`` holds them, to export beside your application's own.
        """
        self.asgi  # noqa: B018 - they are made with the application
        return self._metrics

    @property
    def metrics_port(self) -> int | None:
        """The port the metrics are served on, when on a port of their own and running."""
        server = self._metrics_server
        return None if server is None else server.port

    def _serve_metrics(self) -> None:
        s = self.settings
        if self._metrics is not None and s.metrics_port is not None and not self._metrics_server:
            from .metrics import MetricsServer

            host = s.metrics_host or s.host
            self._metrics_server = MetricsServer(self._metrics, host, s.metrics_port)
            logger.info("metrics on http://%s:%d/metrics", host, self._metrics_server.port)

    def _close_metrics(self) -> None:
        server, self._metrics_server = self._metrics_server, None
        if server is not None:
            server.close()

    def _configure_logging(self) -> None:
        if not logging.getLogger().handlers:
            s = self.settings
            configure_logging(s.log_format, parse_level(s.log_level))

    def _observed_delivery(self) -> Delivery:
        """The delivery, told to the event log and, when asked for, to the metrics."""
        s = self.settings
        observers: list[Observer] = [EventLog(parse_level(s.event_log_level))]
        if s.inspector:
            self._activity = Activity()
            observers.append(self._activity)
        if s.metrics:
            from .metrics import Metrics

            self._metrics = Metrics()
            observers.append(self._metrics)
        delivery = self._delivery(observers[0] if len(observers) == 1 else Observers(observers))
        if self._metrics is not None and delivery.inbox is not None:
            self._metrics.watch_inbox(delivery.backlog_from_thread)
        return delivery

    def _delivery(self, observer: Observer | None = None) -> Delivery:
        s = self.settings

        def stores() -> tuple[DeliveryStore, StatusStore]:
            if s.store == "memory":
                return (
                    MemoryDeliveryStore(ttl=s.dedup_ttl, limit=s.dedup_max_entries),
                    MemoryStatusStore(ttl=s.dedup_ttl, limit=s.dedup_max_entries),
                )
            from .stores.redis import RedisDeliveryStore, RedisStatusStore, connect

            # A claim outlives the callback's time limit, then frees itself if
            # the listener holding it died.
            lease = s.callback_timeout + 5.0
            return (
                RedisDeliveryStore(
                    connect(s.store), prefix=s.redis_prefix, ttl=s.dedup_ttl, lease=lease
                ),
                RedisStatusStore(connect(s.store), prefix=s.redis_prefix, ttl=s.dedup_ttl),
            )

        return Delivery(
            self._dispatcher,
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
            ),
            retry=RetryPolicy(s.workers, s.max_attempts, s.retry_backoff, s.retry_backoff_max),
            retention=s.dedup_ttl,
            observer=observer,
        )

    async def startup(self) -> None:
        """Open the inbox and start its workers, for ``asgi`` mounted in another app.

        ``run()`` and ``start()`` do it themselves, and so does the first request;
        call it from the host application's startup so that events left in the
        inbox by the last stop are dispatched without waiting for a request.
        """
        app = self.asgi
        assert isinstance(app, WebhookApp)
        await app.delivery.startup()

    async def shutdown(self) -> None:
        """Stop the inbox's workers and close it, for ``asgi`` mounted in another app."""
        if self._app is not None:
            await self._app.delivery.shutdown(self.settings.shutdown_timeout)

    # -- serving -------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on: the bound one while running (``port=0`` picks one)."""
        return self._bound_port if self._bound_port is not None else self.settings.port

    @property
    def url(self) -> str:
        """The local URL of the webhook, e.g. ``http://127.0.0.1:8090/``."""
        host = self.settings.host
        if host in ("0.0.0.0", ""):  # noqa: S104
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.settings.path}"

    @property
    def inspector_url(self) -> str | None:
        """The inspector's URL while it is served (``inspector=True``), else ``None``."""
        port = self._inspector_port
        if port is None:
            return None
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(  # noqa: S104 - where to reach it
            self.settings.inspector_host, self.settings.inspector_host
        )
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def _inspector(self) -> list[tuple[uvicorn.Server, socket.socket]]:
        """The inspector's server and socket, when asked for."""
        s = self.settings
        if not s.inspector:
            return []
        app = self.asgi
        assert isinstance(app, WebhookApp)
        assert self._activity is not None
        loopback = s.inspector_host in ("127.0.0.1", "::1", "localhost")
        if not loopback and s.inspector_token is None:
            raise ConfigurationError(
                f"the inspector shows phone numbers and message bodies: bound to "
                f"{s.inspector_host} it needs a token (TWILIO_TRIGGER_INSPECTOR_TOKEN, at "
                f"least 16 characters), or bind it to 127.0.0.1"
            )
        try:
            inspector = InspectorApp(
                app.delivery, self._activity, token=s.inspector_token, loopback_only=loopback
            )
        except ValueError:
            raise ConfigurationError(
                "the inspector shows the inbox: pass inbox=... (or --inbox) with inspector=True"
            ) from None
        sock = _bind(s.inspector_host, s.inspector_port)
        self._inspector_port = sock.getsockname()[1]
        config = EdgeConfig(
            inspector,
            limits=self.edge_limits(),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
        )
        logger.info("inspector on %s", self.inspector_url)
        return [(uvicorn.Server(config), sock)]

    def _prepare(self) -> tuple[_Server, socket.socket]:
        app = self.asgi
        s = self.settings
        companions = self._inspector()
        try:
            sock = _bind(s.host, s.port)
        except ConfigurationError:
            self._release(companions)
            raise
        self._bound_port = sock.getsockname()[1]
        config = EdgeConfig(
            app,
            limits=self.edge_limits(),
            host=s.host,
            port=self._bound_port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            # Annotated as int, used as asyncio.wait_for(timeout=...): floats work.
            timeout_graceful_shutdown=s.shutdown_timeout,
        )
        where = f"http://{f'[{s.host}]' if ':' in s.host else s.host}:{self._bound_port}{s.path}"

        def announce() -> None:
            if s.verify_signatures:
                tokens, keys = len(s.auth_tokens), len(s.shared_keys)
                secrets = [f"{tokens} auth token{'' if tokens == 1 else 's'}"] if tokens else []
                if keys:
                    secrets.append(f"{keys} shared key{'' if keys == 1 else 's'}")
                logger.info(
                    "listening on %s (signatures verified with %s)", where, " and ".join(secrets)
                )
            else:
                logger.warning(
                    "listening on %s with signature verification OFF: anyone who can reach "
                    "this port can forge Twilio events",
                    where,
                )

        server = _Server(config, announce, companions)
        self._companions = companions
        return server, sock

    def edge_limits(self) -> EdgeLimits:
        """The limits of the listener's own server (its options ``max_head_bytes``,
        ``head_timeout``...), within what the process's open-file limit allows: the
        soft limit is raised to the hard one first, where that is allowed."""
        s = self.settings
        limits = EdgeLimits(
            max_head_bytes=s.max_head_bytes,
            max_headers=s.max_headers,
            head_timeout=s.head_timeout,
            body_timeout=s.body_timeout,
            keepalive_timeout=s.keepalive_timeout,
            max_connections=s.max_connections,
        )
        return limits.fitted(raise_file_limit())

    def _release(self, companions: Iterable[tuple[uvicorn.Server, socket.socket]]) -> None:
        for _, sock in companions:
            sock.close()
        self._inspector_port = None

    def run(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM, then stop gracefully.

        A graceful stop refuses new connections and lets the requests already
        running finish, for up to ``shutdown_timeout`` seconds, before returning.
        """
        if self._thread is not None:
            raise RuntimeError("the listener is already running in the background")
        self._configure_logging()
        server, sock = self._prepare()
        server.freeze = True
        self._server = server
        try:
            self._serve_metrics()
            server.run(sockets=[sock])
        finally:
            sock.close()
            self._release(self._companions)
            self._close_metrics()
            self._server = None
            self._bound_port = None
        logger.info("stopped")

    def work(self) -> None:
        """Dispatch events from the inbox, without serving HTTP, until SIGINT or SIGTERM.

        For worker processes beside listeners that share a Redis inbox: they
        only store, the workers only dispatch.  Running callbacks get
        ``shutdown_timeout`` seconds to finish when the process is told to stop.
        """
        if self.settings.inbox is None:
            raise ConfigurationError(
                "work() dispatches from an inbox: pass inbox=... or set TWILIO_TRIGGER_INBOX"
            )
        self._configure_logging()
        delivery = self._observed_delivery()  # no HTTP here: no auth token needed
        from .inbox.redis import RedisInbox

        if isinstance(delivery.inbox, RedisInbox):
            # It acknowledges nothing to Twilio: Redis's durability is the listeners' check.
            delivery.inbox.acknowledges = False

        async def serve() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await delivery.startup()
            logger.info("dispatching from %s", delivery.inbox.location if delivery.inbox else "?")
            await stop.wait()
            logger.info("stopping: letting running callbacks finish")
            await delivery.shutdown(self.settings.shutdown_timeout)

        self._serve_metrics()
        try:
            asyncio.run(serve())
        finally:
            self._close_metrics()
        logger.info("stopped")

    def start(self, timeout: float = 10.0) -> None:
        """Start serving in a background thread; return once it accepts connections
        (and has said so in the log)."""
        if self._thread is not None:
            raise RuntimeError("the listener is already running")
        server, sock = self._prepare()
        self._server = server
        self._thread_error = None
        try:
            self._serve_metrics()
        except BaseException:
            sock.close()
            self._release(self._companions)
            self._server = self._bound_port = None
            raise

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as error:  # reported by start() or stop()
                self._thread_error = error
            finally:
                sock.close()
                self._release(self._companions)

        thread = threading.Thread(target=serve, name="twilio-trigger-listener", daemon=True)
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.ready:
            if not thread.is_alive() or time.monotonic() > deadline:
                error = self._thread_error
                self.stop()
                raise RuntimeError("the listener did not start") from error
            time.sleep(0.005)

    def stop(self, timeout: float | None = None) -> None:
        """Stop a listener started with :meth:`start`: refuse new connections,
        let running callbacks finish (up to *timeout* seconds), then return."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        # uvicorn's own graceful stop is bounded by shutdown_timeout; a little more
        # here, so that a server stuck on its way out cannot hang the caller.
        thread.join(timeout if timeout is not None else self.settings.shutdown_timeout + 10.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10.0)
            if thread.is_alive():
                logger.error("the listener's server thread did not end; leaving it behind")
        self._server = self._thread = None
        self._bound_port = None
        self._close_metrics()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
