"""What one client may cost the listener's own server: :class:`EdgeLimits`, and the
open-file limit its connections must fit under (:func:`raise_file_limit`).

The protocol that applies them is :mod:`._edge`'s.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass, replace

__all__ = ["FILE_RESERVE", "EdgeLimits", "raise_file_limit"]

logger = logging.getLogger("twilio_trigger")

#: Files kept for everything but client connections: the listening sockets, an
#: inbox and its journal, Redis and metrics connections, logs.
FILE_RESERVE = 64


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What one client may cost the server before it has proven anything."""

    max_head_bytes: int = 32 * 1024
    max_headers: int = 100
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    max_connections: int = 1000
    max_pipelined: int = 16
    write_timeout: float = 30.0
    #: The largest body a request may have: what is read of a body, its framing
    #: included (a chunked body's sizes and extensions), is bounded by a few times it.
    max_body_bytes: int = 256 * 1024

    @property
    def max_body_read(self) -> int:
        """Bytes read at most for one request's body, its chunked framing included."""
        return 4 * self.max_body_bytes + 1024 * 1024

    def fitted(self, file_limit: int) -> EdgeLimits:
        """These limits, with ``max_connections`` lowered to what *file_limit*
        (the process's open-file limit) leaves for connections."""
        room = max(1, file_limit - FILE_RESERVE)
        if self.max_connections <= room:
            return self
        logger.warning(
            "serving at most %d connections instead of max_connections=%d: the process may "
            "open only %d files (raise `ulimit -n` to serve more)",
            room,
            self.max_connections,
            file_limit,
        )
        return replace(self, max_connections=room)


def raise_file_limit() -> int:
    """Raise the soft open-file limit to the hard one where allowed; the soft limit then."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError):  # not allowed here (a container, a sandbox)
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20
