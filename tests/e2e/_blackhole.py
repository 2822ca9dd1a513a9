"""A TCP proxy on loopback that can refuse its clients or swallow what they send.

In front of a real server, :class:`Proxy` passes bytes both ways (``forward``), or
closes every connection and each new one at once (``refuse``: a server that is
down), or keeps every connection open while passing nothing, either way
(``swallow``: a host whose packets are dropped, so that a client waits for its own
time limits).  It counts the connections opened in each mode.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Iterator

__all__ = ["Proxy", "proxy_to"]


class Proxy:
    """A loopback TCP proxy to *upstream* (host, port), in threads of its own."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "forward"
        self.opened: Counter[str] = Counter()  # connections opened, by the mode then
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._start(self._accept)

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def set(self, mode: str) -> None:
        """Change mode; ``refuse`` and ``forward`` close every connection open now
        (the swallowed ones too: their clients see them end, as when a link is back)."""
        assert mode in ("forward", "refuse", "swallow"), mode
        with self._lock:
            self.mode = mode
            gone = list(self._sockets) if mode != "swallow" else []
            self._sockets.difference_update(gone)
        for sock in gone:
            _shut(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                mode = self.mode
                self.opened[mode] += 1
            if mode == "refuse":
                _shut(client)
                continue
            if mode == "swallow":
                with self._lock:
                    self._sockets.add(client)
                self._start(self._drain, client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _shut(client)
                continue
            with self._lock:
                self._sockets.update((client, server))
            self._start(self._pump, client, server)
            self._start(self._pump, server, client)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.mode == "swallow":
                    continue  # dropped, as by the network
                target.sendall(data)
        except OSError:
            pass
        _shut(source)
        _shut(target)

    def _drain(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while client.recv(65536):
                pass
        _shut(client)

    def close(self) -> None:
        _shut(self._listener)
        self.set("refuse")
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def proxy_to(host: str, port: int) -> Iterator[Proxy]:
    """A :class:`Proxy` to *host*:*port*, closed (its threads ended) on exit."""
    proxy = Proxy((host, port))
    try:
        yield proxy
    finally:
        proxy.close()
