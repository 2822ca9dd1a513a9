"""What happens to a verified event, as one object for the listener, its
adapters, the health endpoint and the inspector.

:class:`Delivery` is the pipeline events go through (:mod:`._pipeline`:
deduplicated by :mod:`._dedup`, placed in order, dispatched inline or stored
in the inbox, replies shaped) together with its lifecycle (:mod:`._lifecycle`:
startup, shutdown, readiness).  It is the pipeline itself, so that an event
takes no extra step through it, and it owns the lifecycle.
"""

from __future__ import annotations

from typing import Unpack

from ._alerts import Alerts
from ._dispatch import Dispatcher
from ._identity import MAX_KEPT_HEADER, delivery_key, kept_header
from ._lifecycle import ControlPolicy, Lifecycle, RetryPolicy, StoreFactory
from ._options import OPTIONS
from ._pipeline import Pipeline, PipelineOptions
from .inbox import State

__all__ = [
    "MAX_KEPT_HEADER",
    "ControlPolicy",
    "Delivery",
    "RetryPolicy",
    "delivery_key",
    "kept_header",
]


class Delivery(Pipeline):
    """Deduplication, status order, time limit, and inline or durable dispatch,
    started and stopped with the listener.

    It satisfies the webhook handler's :class:`._webhook.Acceptor`.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        retry: RetryPolicy | None = None,
        control: ControlPolicy | None = None,
        alerts: Alerts | None = None,
        retention: float = OPTIONS.dedup_ttl.default,
        stores: StoreFactory | None = None,
        **pipeline: Unpack[PipelineOptions],
    ) -> None:
        """A pipeline made with *pipeline* (:class:`._pipeline.PipelineOptions`), and
        its lifecycle: workers that retry by *retry* and hold callbacks back by
        *control*, telling *alerts*; done entries kept *retention* seconds, stores
        made by *stores* on the loop that uses them."""
        super().__init__(dispatcher, **pipeline)
        self._life = Lifecycle(
            self, retry=retry, control=control, alerts=alerts, retention=retention, stores=stores
        )

    @property
    def keeps_headers(self) -> bool:
        """Whether events are stored (in the inbox) with their request's headers."""
        return self._inbox is not None

    async def startup(self) -> None:
        """Open the inbox and start its workers (once per event loop; idempotent)."""
        await self._life.startup()

    async def shutdown(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Stop the workers (running callbacks get *timeout* seconds) and close the inbox."""
        await self._life.shutdown(timeout)

    def wake(self) -> None:
        """Entries were made due (a replay): let the workers look now."""
        self._life.wake()

    async def readiness(self) -> dict[str, bool]:
        """Whether each part events go through can be reached now (see
        :meth:`._lifecycle.Lifecycle.readiness`)."""
        return await self._life.readiness()

    def recheck(self) -> None:
        """The settings kept in the inbox were changed here (a limit, a breaker):
        this process's workers read them now rather than at their next poll."""
        self._life.recheck()

    @property
    def control(self) -> ControlPolicy:
        """How the workers hold callbacks back: the ``limits`` option and the breaker."""
        return self._life.control

    async def set_paused(self, flag: bool) -> None:
        """Pause or resume dispatch (see :meth:`._lifecycle.Lifecycle.set_paused`)."""
        await self._life.set_paused(flag)

    def paused_from_thread(self, timeout: float) -> bool | None:
        """Whether dispatch is paused, asked from another thread (``None``: unknown)."""
        return self._life.paused_from_thread(timeout)

    def backlog_from_thread(self, timeout: float) -> dict[State, int] | None:
        """The inbox's backlog, asked from another thread than the running loop's.

        ``None`` when there is no inbox, it is not open, or it does not answer
        within *timeout* seconds.
        """
        return self._life.backlog_from_thread(timeout)
