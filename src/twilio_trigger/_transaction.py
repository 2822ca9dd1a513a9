"""Callbacks whose database writes commit with the event.

A callback that takes a second argument (``async def on_delivered(self, event,
tx)``) gets a PostgreSQL connection in an open transaction.  Dispatched from a
PostgreSQL inbox, that transaction also marks the inbox entry done, and
commits only when the callback succeeds: its writes and the entry's outcome are
kept together or not at all.  Dispatched inline (no inbox, or an event
answered while Twilio waits), the transaction commits when the callback
returns and rolls back when it raises.

The worker sets :data:`entry_transactions` for the entry it runs; otherwise
the dispatcher's own source (the PostgreSQL inbox's or store's) is used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol

from ._core.events import TwilioEvent

__all__ = ["LeaseLostError", "TransactionSource", "entry_transactions"]

#: A callback that takes a transaction: ``(event, connection)``.
TransactionalCallback = Callable[[TwilioEvent, Any], Awaitable[object]]


class TransactionSource(Protocol):
    """Where a callback's transaction comes from."""

    async def run(
        self,
        function: TransactionalCallback,
        event: TwilioEvent,
        succeeded: Callable[[object], bool],
    ) -> object:
        """Call *function* with *event* and a connection in a transaction; commit
        when it returns a result that *succeeded* accepts, roll back otherwise."""


class LeaseLostError(Exception):
    """The inbox entry was taken over by another worker before its transaction
    began: this attempt does nothing, the other one runs it."""


#: The transaction source of the inbox entry being dispatched in this task.
entry_transactions: ContextVar[TransactionSource | None] = ContextVar(
    "twilio_trigger_entry_transactions", default=None
)
