"""The metrics on a port of their own: a small server of the listener's (the
edge's protocol and limits) in a thread with its own event loop, so that a
process whose loop is busy, or that has none (the supervisor of ``run
--processes N``), serves them too."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn

from ._core.answers import reject
from ._edge import EdgeConfig
from ._edge_limits import EdgeLimits
from ._exceptions import ConfigurationError
from ._server import bind

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["METRICS_CONNECTIONS", "MetricsServer"]


#: Connections the metrics' own port serves at once: a scraper needs one or two.
METRICS_CONNECTIONS = 16
#: Seconds the metrics' server gets to start and to stop.
_SERVER_WAIT = 10.0


class _MetricsApp:
    """``GET /metrics`` (or ``/``) on the metrics' own port; 404 and 405 otherwise."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] not in ("/metrics", "/"):
            found = reject(404, "not found")
        elif scope["method"] not in ("GET", "HEAD"):
            found = reject(405, "method not allowed", (b"allow", b"GET, HEAD"))
        else:
            found = await self._metrics.answer()
        await send(
            {"type": "http.response.start", "status": found.status, "headers": found.headers}
        )
        body = b"" if scope["method"] == "HEAD" else found.body
        await send({"type": "http.response.body", "body": body})


class MetricsServer:
    """The metrics on a port of their own, with the limits of the listener's port
    (the time to send a request's head and body, idle connections) and at most
    :data:`METRICS_CONNECTIONS` connections: a server of its own in a thread, so
    that it serves from a process whose event loop is busy, or that has none
    (the supervisor of ``run --workers N``)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        try:
            sock = bind(host, port)
        except ConfigurationError as error:
            reason = str(error).rpartition(": ")[2]
            raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {reason}") from None
        sock.set_inheritable(False)  # the processes of run --processes serve the webhook's only
        self._sock = sock
        self.port: int = sock.getsockname()[1]
        config = EdgeConfig(
            _MetricsApp(metrics),
            limits=EdgeLimits(max_connections=METRICS_CONNECTIONS),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._serve, name="twilio-trigger-metrics", daemon=True
        )
        self._failed: BaseException | None = None
        self._thread.start()
        deadline = time.monotonic() + _SERVER_WAIT
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                self.close()
                raise ConfigurationError(f"the metrics' server on {host}:{port} did not start")
            time.sleep(0.005)
        if not self._server.started:
            self._sock.close()
            raise ConfigurationError(
                f"cannot serve metrics on {host}:{port}: {self._failed or 'it stopped'}"
            )

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as error:  # told by __init__ when it did not start
            self._failed = error

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(_SERVER_WAIT)
        self._sock.close()
