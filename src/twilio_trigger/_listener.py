"""The listener: a webhook endpoint, the services attached to it, and its server.

``Listener`` is the facade: its options (``_options``, resolved by ``_config``),
its services, its ASGI application (built by ``_app``) and its own server
(``_server``, imported when it serves: ``import twilio_trigger`` loads no
server).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar

from ._alerts import AlertHook, Alerts
from ._app import Application, ASGIApp, build, inspector_app, local_host, observed_delivery
from ._config import Settings
from ._dispatch import Dispatcher
from ._exceptions import ConfigurationError, ServiceError
from ._limits import Limit
from ._logging import set_up_logging
from ._options import OPTIONS

if TYPE_CHECKING:
    from ._edge_limits import EdgeLimits
    from ._server import Serving, Session
    from .metrics import Metrics

__all__ = ["Listener"]

logger = logging.getLogger("twilio_trigger")

#: The command (``run``, ``worker``...) importing the user's module, while it does:
#: a module that starts its listener when imported would start it twice.
importing_for: str | None = None


def _not_while_imported(method: str) -> None:
    if importing_for is not None:
        raise ConfigurationError(
            f"the module calls listener.{method}() when it is imported, and `twilio-trigger "
            f"{importing_for}` starts the listener itself: put that call under "
            '`if __name__ == "__main__":`'
        )


_S = TypeVar("_S", bound=type)
_P = ParamSpec("_P")


def _unknown_option(error: TypeError, given: dict[str, Any], signature: inspect.Signature) -> str:
    """*error*'s message, with the option meant when a keyword is not one."""
    known = [name for name in signature.parameters if name != "self"]
    for name in given:
        if name not in signature.parameters:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f": did you mean {close[0]}?" if close else ""
            return (
                f"Listener() got an unexpected keyword argument {name!r}{hint} "
                f"(the options are in docs/configuration.md)"
            )
    return f"Listener(): {error}"


def _resolving_options(
    init: Callable[Concatenate[Listener, _P], None],
) -> Callable[Concatenate[Listener, _P], None]:
    """Resolve the options actually passed to ``__init__`` into ``self.settings`` first.

    The defaults in the signature are the table's, for readers (``help()``, an
    editor); an option not passed (or passed as ``None``) is read from its
    environment variable before its default applies, so the arguments passed
    are told apart from the defaults here, by binding them to the signature.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def resolving(self: Listener, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            given = signature.bind(self, *args, **kwargs).arguments
        except TypeError as error:
            raise TypeError(_unknown_option(error, kwargs, signature)) from None
        given.pop("self")
        self.settings = Settings.resolve(given, stacklevel=3)
        init(self, *args, **kwargs)

    return resolving


class Listener:
    """Receives Twilio webhooks on one HTTP path and dispatches them to services.

    ``Listener(8090)`` listens on port 8090 of every interface at ``/``, and
    verifies signatures with the auth token(s) in ``TWILIO_AUTH_TOKEN``.  Each
    option not passed (or passed as ``None``) is read from its environment
    variable (see docs/configuration.md), else takes its default.
    ``workers`` is the former name of ``concurrency``: deprecated.
    """

    settings: Settings

    @_resolving_options
    def __init__(  # the options are resolved by the decorator, from what was passed
        self,
        port: int | None = OPTIONS.port.default,
        *,
        host: str | None = OPTIONS.host.default,
        path: str | None = OPTIONS.path.default,
        auth_tokens: str | Iterable[str] | None = OPTIONS.auth_tokens.default,
        # The table's default is the resolved form, () of (id, secret) pairs: empty, it
        # is also an empty Iterable[str].
        shared_keys: str | Mapping[str, str] | Iterable[str] | None = (
            OPTIONS.shared_keys.default  # type: ignore[assignment]
        ),
        basic_auth: str | tuple[str, str] | Iterable[tuple[str, str]] | None = (
            OPTIONS.basic_auth.default
        ),
        public_url: str | None = OPTIONS.public_url.default,
        verify_signatures: bool | None = OPTIONS.verify_signatures.default,
        max_body_bytes: int | None = OPTIONS.max_body_bytes.default,
        max_params: int | None = OPTIONS.max_params.default,
        shutdown_timeout: float | None = OPTIONS.shutdown_timeout.default,
        file_mode: int | str | None = OPTIONS.file_mode.default,
        max_head_bytes: int | None = OPTIONS.max_head_bytes.default,
        max_headers: int | None = OPTIONS.max_headers.default,
        head_timeout: float | None = OPTIONS.head_timeout.default,
        body_timeout: float | None = OPTIONS.body_timeout.default,
        keepalive_timeout: float | None = OPTIONS.keepalive_timeout.default,
        max_connections: int | None = OPTIONS.max_connections.default,
        max_pipelined: int | None = OPTIONS.max_pipelined.default,
        write_timeout: float | None = OPTIONS.write_timeout.default,
        deduplicate: bool | None = OPTIONS.deduplicate.default,
        dedup_ttl: float | None = OPTIONS.dedup_ttl.default,
        dedup_max_entries: int | None = OPTIONS.dedup_max_entries.default,
        skip_stale: bool | None = OPTIONS.skip_stale.default,
        callback_timeout: float | None = OPTIONS.callback_timeout.default,
        inbox: str | None = OPTIONS.inbox.default,
        concurrency: int | None = OPTIONS.concurrency.default,
        max_attempts: int | None = OPTIONS.max_attempts.default,
        retry_backoff: float | None = OPTIONS.retry_backoff.default,
        retry_backoff_max: float | None = OPTIONS.retry_backoff_max.default,
        limits: str | Mapping[str, Limit | str] | None = OPTIONS.limits.default,  # type: ignore[assignment]
        breaker_failures: int | None = OPTIONS.breaker_failures.default,
        breaker_cooldown: float | None = OPTIONS.breaker_cooldown.default,
        store: str | None = OPTIONS.store.default,
        redis_prefix: str | None = OPTIONS.redis_prefix.default,
        claim_idle: float | None = OPTIONS.claim_idle.default,
        redis_durability: str | None = OPTIONS.redis_durability.default,
        redis_wait_timeout: float | None = OPTIONS.redis_wait_timeout.default,
        postgres_schema: str | None = OPTIONS.postgres_schema.default,
        postgres_migrate: bool | None = OPTIONS.postgres_migrate.default,
        health: bool | None = OPTIONS.health.default,
        healthz_path: str | None = OPTIONS.healthz_path.default,
        readyz_path: str | None = OPTIONS.readyz_path.default,
        metrics: bool | None = OPTIONS.metrics.default,
        metrics_path: str | None = OPTIONS.metrics_path.default,
        metrics_port: int | None = OPTIONS.metrics_port.default,
        metrics_host: str | None = OPTIONS.metrics_host.default,
        event_log_level: str | None = OPTIONS.event_log_level.default,
        log_format: str | None = OPTIONS.log_format.default,
        log_level: str | None = OPTIONS.log_level.default,
        inspector: bool | None = OPTIONS.inspector.default,
        inspector_host: str | None = OPTIONS.inspector_host.default,
        inspector_port: int | None = OPTIONS.inspector_port.default,
        inspector_token: str | None = OPTIONS.inspector_token.default,
        refused_kept: int | None = OPTIONS.refused_kept.default,
        workers: int | None = None,  # deprecated: concurrency
    ) -> None:
        self._dispatcher = Dispatcher()
        self._alerts = Alerts()
        self._application: Application | None = None
        self._session: Session | None = None

    def __repr__(self) -> str:
        s = self.settings
        return f"<Listener {s.host}:{self.port}{s.path} services={len(self.services)}>"

    # -- services ----------------------------------------------------------
    @property
    def services(self) -> tuple[object, ...]:
        """The attached services."""
        return self._dispatcher.services

    def attach(self, service: object, *, path: str | None = None) -> None:
        """Attach a service: an instance of a ``SmsStatusService``, ``CallStatusService``, ...

        Or a single callback: a function named after its callback (``on_gather``)
        or taking an annotated event (``def menu(event: twilio.GatherEvent)``).

        With *path* (``"/voice/menu"``), the listener also answers webhooks at
        that path, beside its own, and hands them to this service (to the
        listener-wide one for callbacks it lacks); the kinds whose callbacks it
        defines are tried first there.  A listener takes one service of each base
        class at each path.  Point at a path of its own what parameters alone
        cannot tell apart: a ``<Gather>``'s ``action`` (where a service with only
        ``on_gather`` also receives the request when the caller entered nothing).
        Each path is signed as its own URL: behind a proxy, ``public_url``'s path
        ends with the listener's ``path``, and the service's path takes its place.

        Raises :class:`ServiceError` for a non-service, a misspelt ``on_...``
        method, a second service of a base class already attached at that path,
        or a path that is not one (or is the health or metrics endpoint's).
        """
        if path is not None:
            path = self._service_path(path)
        self._dispatcher.attach(service, path)

    def _service_path(self, path: str) -> str | None:
        s = self.settings
        if not path.startswith("/") or any(c in path for c in "?#") or not path.isprintable():
            raise ServiceError(f"a service's path starts with / and has no query: got {path!r}")
        taken = {s.healthz_path, s.readyz_path, s.metrics_path} - {None, ""}
        if path in taken:
            raise ServiceError(f"{path} is the listener's health or metrics endpoint")
        return None if path == s.path else path

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

    def on_alert(self, hook: AlertHook) -> AlertHook:
        """Call *hook* with an :class:`~twilio_trigger.Alert` when an event becomes a
        dead letter or a callback's breaker opens (usable as a decorator).

        *hook* is a function or an ``async def`` taking the alert (post it to a
        chat, page someone).  It runs in the background, never in the path of
        a request or of the worker whose event raised the alert; a plain
        function runs in a thread.  A hook that fails, or runs past 30 s, is
        logged and the inbox never hears of it.  Alerts come from the
        process where they happen: with several processes, each tells its own.
        """
        self._alerts.add(hook)
        return hook

    def remove_alert_hook(self, hook: AlertHook) -> None:
        """Stop calling *hook* (``ValueError`` when it is not an alert hook)."""
        self._alerts.remove(hook)

    # -- the application ---------------------------------------------------
    @property
    def asgi(self) -> ASGIApp:
        """The ASGI application: serve it with any ASGI server or mount it in another app."""
        return self._built().app

    def _built(self) -> Application:
        if self._application is None:
            self._application = build(self.settings, self._dispatcher, self._alerts)
        return self._application

    @property
    def metrics(self) -> Metrics | None:
        """The listener's Prometheus metrics (``metrics=True``), else ``None``.

        Its ``registry`` holds them, to export beside your application's own.
        """
        return self._built().observed.metrics  # they are made with the application

    @property
    def metrics_port(self) -> int | None:
        """The port the metrics are served on, when on a port of their own and running."""
        return None if self._session is None else self._session.metrics_port

    async def startup(self) -> None:
        """Open the inbox and start its workers, for ``asgi`` mounted in another app.

        ``run()`` and ``start()`` do it themselves, and so does the first request;
        call it from the host application's startup so that events left in the
        inbox by the last stop are dispatched without waiting for a request.
        """
        await self._built().delivery.startup()

    async def shutdown(self) -> None:
        """Stop the inbox's workers and close it, for ``asgi`` mounted in another app."""
        if self._application is not None:
            await self._application.delivery.shutdown(self.settings.shutdown_timeout)

    # -- serving -------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on: the bound one while running (``port=0`` picks one)."""
        serving = self._serving
        return serving.port if serving is not None else self.settings.port

    @property
    def url(self) -> str:
        """The local URL of the webhook, e.g. ``http://127.0.0.1:8090/``."""
        return f"http://{local_host(self.settings.host)}:{self.port}{self.settings.path}"

    @property
    def inspector_url(self) -> str | None:
        """The inspector's URL while it is served (``inspector=True``), else ``None``."""
        serving = self._serving
        if serving is None or serving.inspector_port is None:
            return None
        from ._server import inspector_url

        return inspector_url(self.settings.inspector_host, serving.inspector_port)

    @property
    def _serving(self) -> Serving | None:
        session = self._session
        if session is None:
            return None
        from ._server import Serving  # loaded already: a session exists

        return session if isinstance(session, Serving) else None

    def edge_limits(self) -> EdgeLimits:
        """The limits of the listener's own server (its options ``max_head_bytes``,
        ``head_timeout``...), within what the process's open-file limit allows: the
        soft limit is raised to the hard one first, where that is allowed."""
        from ._edge_limits import EdgeLimits, raise_file_limit

        s = self.settings
        limits = EdgeLimits(
            max_head_bytes=s.max_head_bytes,
            max_headers=s.max_headers,
            head_timeout=s.head_timeout,
            body_timeout=s.body_timeout,
            keepalive_timeout=s.keepalive_timeout,
            max_connections=s.max_connections,
            max_pipelined=s.max_pipelined,
            write_timeout=s.write_timeout,
            max_body_bytes=s.max_body_bytes,
        )
        return limits.fitted(raise_file_limit())

    def _prepare(self) -> Serving:
        from ._server import Serving

        application = self._built()
        inspector = inspector_app(self.settings, application) if self.settings.inspector else None
        return Serving(
            self.settings, application.observed, application.app, inspector, self.edge_limits
        )

    def _in_background(self) -> bool:
        serving = self._serving
        return serving is not None and serving.thread is not None

    def run(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM, then stop gracefully.

        A graceful stop refuses new connections and lets the requests already
        running finish, for up to ``shutdown_timeout`` seconds, before returning.
        """
        if self._in_background():
            raise RuntimeError("the listener is already running in the background")
        _not_while_imported("run")
        set_up_logging(self.settings)
        serving = self._session = self._prepare()
        try:
            serving.run()
        finally:
            self._session = None
        logger.info("stopped")

    def work(self) -> None:
        """Dispatch events from the inbox, without serving HTTP, until SIGINT or SIGTERM.

        For worker processes beside listeners that share a Redis or PostgreSQL
        inbox: they only store, the workers only dispatch.  Running callbacks get
        ``shutdown_timeout`` seconds to finish when the process is told to stop.
        """
        _not_while_imported("work")
        if self.settings.inbox is None:
            raise ConfigurationError(
                "work() dispatches from an inbox: pass inbox=... or set TWILIO_TRIGGER_INBOX"
            )
        from ._server import Working

        set_up_logging(self.settings)
        # No HTTP here: no auth token needed.
        observed = observed_delivery(self.settings, self._dispatcher, self._alerts)
        working = self._session = Working(self.settings, observed)
        try:
            working.run()
        finally:
            self._session = None
        logger.info("stopped")

    def start(self, timeout: float = 10.0) -> None:
        """Start serving in a background thread; return once it accepts connections
        (and has said so in the log)."""
        if self._in_background():
            raise RuntimeError("the listener is already running")
        _not_while_imported("start")
        serving = self._session = self._prepare()
        try:
            serving.start(timeout)
        except BaseException:
            self._session = None
            raise

    def stop(self, timeout: float | None = None) -> None:
        """Stop a listener started with :meth:`start`: refuse new connections,
        let running callbacks finish (up to *timeout* seconds), then return."""
        serving = self._serving
        if serving is None or serving.thread is None:
            return
        serving.stop(timeout)
        self._session = None

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
