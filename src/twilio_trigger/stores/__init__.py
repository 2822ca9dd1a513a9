"""Where the listener remembers deliveries and statuses: small interfaces, several backends.

- :class:`DeliveryStore` remembers which deliveries were handled, so that a
  repeat is acknowledged without dispatch, and keeps two copies of one
  delivery from running at once.
- :class:`StatusStore` remembers the most advanced status of each SID, so that
  an event can say what came before it and whether it is stale.

``memory`` (the default) keeps both in the process, bounded in count and age.
"""

from __future__ import annotations

import abc
import asyncio
import enum
from typing import Any

from .._core.order import Standing

__all__ = ["Claim", "DeliveryStore", "StatusStore"]


class Claim(enum.Enum):
    """The answer to :meth:`DeliveryStore.claim`."""

    ACQUIRED = "acquired"  # new: the caller runs it, then completes or releases it
    DONE = "done"  # handled successfully before: a duplicate
    BUSY = "busy"  # another copy is being handled right now


class DeliveryStore(abc.ABC):
    """Remembers handled deliveries by key for a while."""

    @abc.abstractmethod
    async def claim(self, key: str) -> Claim:
        """Take *key* for handling, unless it was handled or is being handled."""

    @abc.abstractmethod
    async def complete(self, key: str, reply: bytes | None = None) -> None:
        """The delivery claimed as *key* succeeded: remember it, with the *reply*
        it was answered with (TwiML), for a copy that comes again."""

    async def reply_of(self, key: str) -> bytes | None:
        """The reply remembered with the completed delivery *key*, if any."""
        return None

    @abc.abstractmethod
    async def release(self, key: str) -> None:
        """The delivery claimed as *key* failed: forget it, so that a retry runs."""

    def hold(self, key: str, until: asyncio.Future[Any]) -> None:  # noqa: B027
        """Keep the claim on *key* from lapsing until *until* is done.

        For a sync callback that outlives its time limit: its delivery must stay
        claimed while its thread runs.  Stores whose claims do not lapse (the
        in-memory one) need do nothing.
        """

    async def wait(self, key: str, timeout: float) -> None:  # noqa: ASYNC109
        """Return when *key* may no longer be busy (at the latest after *timeout*)."""
        await asyncio.sleep(min(timeout, 0.05))

    async def open(self) -> None:  # noqa: B027 - most stores need nothing at start
        """Make the store ready when the listener starts (its tables, for one in a
        database); raise when it cannot be."""

    async def check(self) -> None:  # noqa: B027 - a store in memory is always there
        """Raise when the store cannot be reached (the listener's readiness)."""

    async def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release the store's resources."""


class StatusStore(abc.ABC):
    """Remembers, for each SID, its most advanced status."""

    @abc.abstractmethod
    async def observe(self, key: str, status: str, rank: int) -> Standing:
        """Record that *status* (ranked *rank*) arrived for *key*; say how it stands."""

    async def open(self) -> None:  # noqa: B027 - most stores need nothing at start
        """Make the store ready when the listener starts; raise when it cannot be."""

    async def check(self) -> None:  # noqa: B027 - a store in memory is always there
        """Raise when the store cannot be reached (the listener's readiness)."""

    async def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release the store's resources."""
