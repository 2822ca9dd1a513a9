"""The listener's own server: uvicorn with the edge's protocol, and its run modes.

``Serving`` binds the sockets (the webhook's, and the inspector's beside it),
then serves in the foreground until SIGINT or SIGTERM (``run``) or in a
background thread (``start``/``stop``); ``Working`` dispatches from an inbox
without serving HTTP (``work``); each serves the metrics on a port of their own
when asked (``_metrics_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.lifespan.on import LifespanOn

from ._app import ASGIApp, Observed, local_host, url_host
from ._config import Settings
from ._edge import EdgeConfig
from ._edge_limits import EdgeLimits
from ._exceptions import ConfigurationError
from ._held_logs import logs_failed, logs_started
from ._outage import not_answering
from ._signals import STOP_SIGNALS, on_stop_signals
from ._startup import log_startup

if TYPE_CHECKING:
    from ._metrics_server import MetricsServer

__all__ = [
    "ProcessConfig",
    "Serving",
    "StartupLifespan",
    "Working",
    "bind",
    "inspector_url",
    "processes_started",
    "startup_failure",
]

logger = logging.getLogger("twilio_trigger")


class StartupLifespan(LifespanOn):
    """uvicorn's lifespan protocol, with why the application could not start kept in
    ``failure``, for the server to raise; the held logs (:class:`HeldLogs`) are
    written when it starts, dropped when it cannot (uvicorn still logs the failure,
    for servers whose logs are not held)."""

    failure: str | None = None

    async def send(self, message: Any) -> None:
        if message["type"] == "lifespan.startup.failed":
            self.failure = str(message.get("message") or "") or "the application did not start"
            logs_failed()
        elif message["type"] == "lifespan.startup.complete":
            logs_started()
        await super().send(message)


# -- `run --processes`: each process tells the supervisor how its start-up went --------
_FAILED = "failed"
_STARTED = "started-"


class ProcessConfig(EdgeConfig):
    """The configuration pickled to each process of ``run --processes``: their
    lifespan tells the supervisor how their start-up went, as files in *reports*."""

    def __init__(self, app: Any, *, reports: str, limits: EdgeLimits, **options: Any) -> None:
        super().__init__(app, limits=limits, **options)
        self.reports = reports

    def load(self) -> None:
        super().load()
        self.lifespan_class = ReportedLifespan


class ReportedLifespan(StartupLifespan):
    """The lifespan of a process of ``run --processes``: a file for its start-up,
    ``started-PID``, or ``failed`` holding why (the first process to fail writes it)."""

    async def send(self, message: Any) -> None:
        folder = getattr(self.config, "reports", None)
        if folder and message["type"] == "lifespan.startup.failed":
            why = str(message.get("message") or "") or "the application did not start"
            _report(Path(folder) / _FAILED, why)
        elif folder and message["type"] == "lifespan.startup.complete":
            _report(Path(folder) / f"{_STARTED}{os.getpid()}", "")
        await super().send(message)


def _report(path: Path, text: str) -> None:
    with contextlib.suppress(FileExistsError):  # another process told it first
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)


def processes_started(reports: str) -> int:
    """How many processes of ``run --processes`` have started, by their *reports*."""
    return sum(1 for path in Path(reports).iterdir() if path.name.startswith(_STARTED))


def startup_failure(reports: str) -> str | None:
    """Why a process of ``run --processes`` could not start, if one could not."""
    try:
        return (Path(reports) / _FAILED).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


class Server(uvicorn.Server):
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
        if type(self.lifespan) is LifespanOn:  # made by uvicorn's serve() just before
            self.lifespan = StartupLifespan(self.config)
        lifespan = self.lifespan
        try:
            await super().startup(sockets)
        except SystemExit:
            # uvicorn exits the process when the application cannot start: the
            # caller (run(), the command line) says why instead.
            failure = getattr(lifespan, "failure", None)
            if failure is None:
                raise
            raise ConfigurationError(failure) from None
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
        with on_stop_signals(self.handle_exit):
            yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket: connections queue from now on, before the server runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        hint = ""
        if error.errno == errno.EADDRINUSE:
            hint = (
                " (another listener may be running there; pass another port, "
                "or port 0 for a free one)"
            )
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {error.strerror}{hint}"
        ) from error
    sock.set_inheritable(True)
    return sock


def inspector_url(host: str, port: int) -> str:
    """Where the inspector bound to *host*:*port* is reached from this machine."""
    return f"http://{local_host(host)}:{port}/"


class Session:
    """One run of a listener, and the metrics' port of their own while it lasts."""

    def __init__(self, settings: Settings, observed: Observed) -> None:
        self.settings = settings
        self.observed = observed
        self._metrics_server: MetricsServer | None = None

    @property
    def metrics_port(self) -> int | None:
        server = self._metrics_server
        return None if server is None else server.port

    def serve_metrics(self) -> None:
        s, metrics = self.settings, self.observed.metrics
        if metrics is not None and s.metrics_port is not None and not self._metrics_server:
            from ._metrics_server import MetricsServer  # it binds with this module's `bind`

            host = s.metrics_host or s.host
            server = MetricsServer(metrics, host, s.metrics_port)
            self._metrics_server = server
            logger.info("metrics on http://%s:%d/metrics", host, server.port)

    def close_metrics(self) -> None:
        server, self._metrics_server = self._metrics_server, None
        if server is not None:
            server.close()


class Serving(Session):
    """The listener's server, from binding its sockets to closing them."""

    def __init__(
        self,
        settings: Settings,
        observed: Observed,
        app: ASGIApp,
        inspector: ASGIApp | None,
        limits: Callable[[], EdgeLimits],
    ) -> None:
        super().__init__(settings, observed)
        s = settings
        self.thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.inspector_port: int | None = None
        self._companions: list[tuple[uvicorn.Server, socket.socket]] = []
        if inspector is not None:
            sock = bind(s.inspector_host, s.inspector_port)
            self.inspector_port = sock.getsockname()[1]
            config = EdgeConfig(
                inspector,
                limits=limits(),
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
            )
            logger.info("inspector on %s", inspector_url(s.inspector_host, self.inspector_port))
            self._companions.append((uvicorn.Server(config), sock))
        try:
            self._sock = bind(s.host, s.port)
        except ConfigurationError:
            self._release()
            raise
        self.port: int = self._sock.getsockname()[1]
        config = EdgeConfig(
            app,
            limits=limits(),
            host=s.host,
            port=self.port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            # Annotated as int, used as asyncio.wait_for(timeout=...): floats work.
            timeout_graceful_shutdown=s.shutdown_timeout,
        )
        self.server = Server(config, self._announce, self._companions)

    def _announce(self) -> None:
        s = self.settings
        log_startup(s, f"http://{url_host(s.host)}:{self.port}{s.path}")

    def _release(self) -> None:
        for _, sock in self._companions:
            sock.close()
        self.inspector_port = None

    def run(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM, then stop gracefully."""
        self.server.freeze = True
        try:
            self.serve_metrics()
            self.server.run(sockets=[self._sock])
        finally:
            self._sock.close()
            self._release()
            self.close_metrics()

    def start(self, timeout: float) -> None:
        """Serve in a background thread; return once it accepts connections."""
        server, sock = self.server, self._sock
        try:
            self.serve_metrics()
        except BaseException:
            sock.close()
            self._release()
            raise

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as error:  # reported by start() or stop()
                self._error = error
            finally:
                sock.close()
                self._release()

        thread = threading.Thread(target=serve, name="twilio-trigger-listener", daemon=True)
        self.thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.ready:
            if not thread.is_alive() or time.monotonic() > deadline:
                error = self._error
                self.stop(None)
                why = f": {error}" if isinstance(error, ConfigurationError) else ""
                raise RuntimeError(f"the listener did not start{why}") from error
            time.sleep(0.005)

    def stop(self, timeout: float | None) -> None:
        """Refuse new connections, let running callbacks finish (up to *timeout*
        seconds, else ``shutdown_timeout`` and a little more), then return."""
        server, thread = self.server, self.thread
        if thread is None:
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
        self.thread = None
        self.close_metrics()


class Working(Session):
    """Dispatching from the inbox, without serving HTTP, until SIGINT or SIGTERM."""

    def run(self) -> None:
        delivery = self.observed.delivery
        from .inbox.redis import RedisInbox

        if isinstance(delivery.inbox, RedisInbox):
            # It acknowledges nothing to Twilio: Redis's durability is the listeners' check.
            delivery.inbox.acknowledges = False

        async def serve() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, stop.set)
            try:
                await delivery.startup()
            except ConfigurationError:
                logs_failed()  # it is raised: that says why
                raise
            logs_started()
            logger.info("dispatching from %s", delivery.inbox.location if delivery.inbox else "?")
            await stop.wait()
            logger.info("stopping: letting running callbacks finish")
            await delivery.shutdown(self.settings.shutdown_timeout)

        self.serve_metrics()
        try:
            with not_answering():
                asyncio.run(serve())
        finally:
            self.close_metrics()
