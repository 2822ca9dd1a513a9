"""A connection's writes, held until the event loop's next pass: :class:`Batched`."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Batched"]


class Batched:
    """A connection's transport, as its protocol and each request's cycle write to it:
    what they write is held until the event loop's next pass, then written at once.

    uvicorn writes an answer's head and body separately, each at once: two system
    calls, and, while the server is the slower side, a wake-up of the client for
    each (the costliest part of a write on loopback).  Held this way, an answer is
    one write, and the answers of the requests handled in one pass of the loop
    go out together, after that pass's work: at the defaults under load, a
    third more requests a second (benchmarks/PROFILE.md).  Nothing waits longer
    than the pass; order is kept (everything goes through here), and closing
    writes what is held first.  Anything else is the transport's own.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            held.append(data)
        else:
            self._held = [data]
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is held now (nothing once the transport is closing)."""
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
