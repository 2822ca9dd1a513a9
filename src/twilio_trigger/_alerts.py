"""Alerts: the user's hooks told when an event is dead-lettered or a breaker opens.

Hooks run in a task of their own, never in the path of a request or of the
worker that raised the alert: the worker only puts the alert in a bounded
queue.  A hook that fails or runs too long is logged, and the inbox never
hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ._logging import printable
from ._threads import callback_threads

__all__ = ["Alert", "AlertHook", "Alerts"]

logger = logging.getLogger("twilio_trigger")

#: Alerts waiting for the hooks, at most; past that new ones are dropped (and counted).
QUEUE_SIZE = 1000
#: Seconds a hook may take per alert before it is given up on.
HOOK_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Alert:
    """Something an operator may want to hear of at once.

    ``what`` is ``"dead_letter"`` (an event's last attempt failed: it is kept
    as a dead letter, to replay) or ``"breaker_opened"`` (a callback failed
    ``failures`` times in a row: its events wait until ``until``, then one is
    tried).  :attr:`text` is one line to post as it is.
    """

    what: Literal["dead_letter", "breaker_opened"]
    #: The callback's name: ``on_delivered``.
    callback: str | None
    #: When it happened, in seconds since the epoch.
    at: float
    #: The last line of the error (``ValueError: CRM said 503``).
    error: str | None = None
    #: A dead letter's event: its kind (``message``), SID, status and inbox entry.
    kind: str | None = None
    sid: str | None = None
    status: str | None = None
    entry: int | None = None
    attempts: int | None = None
    #: A breaker's failures in a row, and when one of its events is tried again.
    failures: int | None = None
    until: float | None = None

    @property
    def text(self) -> str:
        """The alert as one line of plain text (control characters escaped)."""
        error = f": {self.error}" if self.error else ""
        if self.what == "dead_letter":
            tries = "" if self.attempts is None else f" after {self.attempts} attempt"
            tries += "" if self.attempts in (None, 1) else "s"
            line = (
                f"{self.callback or 'an event'}: {self.kind or 'event'} {self.sid or '-'} "
                f"({self.status or '-'}) is a dead letter{tries}, inbox entry "
                f"{self.entry}{error}"
            )
        else:
            wait = "" if self.until is None else f" for {max(0.0, self.until - self.at):.0f} s"
            line = (
                f"the breaker of {self.callback} opened after {self.failures} failures in "
                f"a row{error}; its events wait{wait}, then one is tried"
            )
        return printable(line)


AlertHook: TypeAlias = Callable[[Alert], "Awaitable[object] | object"]


class Alerts:
    """The attached hooks and the queue of alerts on their way to them."""

    def __init__(self, timeout: float = HOOK_TIMEOUT, size: int = QUEUE_SIZE) -> None:
        self.hooks: list[AlertHook] = []
        self._timeout = timeout
        self._size = size
        self._queue: asyncio.Queue[Alert] | None = None
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0

    def add(self, hook: AlertHook) -> None:
        if not callable(hook):
            raise TypeError(f"an alert hook is a function taking an Alert, got {hook!r}")
        if hook in self.hooks:
            raise ValueError(f"{_name(hook)} is already an alert hook")
        self.hooks.append(hook)

    def remove(self, hook: AlertHook) -> None:
        if hook not in self.hooks:
            raise ValueError(f"{_name(hook)} is not an alert hook")
        self.hooks.remove(hook)

    def raise_(self, alert: Alert) -> None:
        """Queue *alert* for the hooks (from the event loop; never waits)."""
        if not self.hooks:
            return
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue(self._size)
            # Its own context: a hook must not see the worker's context variables.
            self._task = loop.create_task(
                self._drain(self._queue), name="twilio-trigger-alerts",
                context=contextvars.Context(),
            )  # fmt: skip
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                logger.warning(
                    "%d alert%s dropped: the alert hooks are slower than the alerts come "
                    "(%d wait)", self._dropped, "" if self._dropped == 1 else "s", self._size,
                )  # fmt: skip

    async def _drain(self, queue: asyncio.Queue[Alert]) -> None:
        while True:
            alert = await queue.get()
            for hook in list(self.hooks):
                await self._tell(hook, alert)
            queue.task_done()

    async def _tell(self, hook: AlertHook, alert: Alert) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                if inspect.iscoroutinefunction(hook):
                    await hook(alert)
                else:
                    loop = asyncio.get_running_loop()
                    told = await loop.run_in_executor(
                        callback_threads(), functools.partial(hook, alert)
                    )
                    if inspect.isawaitable(told):
                        await told
        except TimeoutError:
            logger.warning(
                "the alert hook %s ran past %.0f s and was given up on (%s)",
                _name(hook), self._timeout, alert.what,
            )  # fmt: skip
        except Exception as error:
            logger.warning(
                "the alert hook %s failed (%s): %s",
                _name(hook), alert.what, printable(f"{type(error).__name__}: {error}"[:500]),
                exc_info=error,
            )  # fmt: skip

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        """Let queued alerts reach the hooks for up to *timeout* seconds, then stop."""
        task, queue = self._task, self._queue
        self._task = self._queue = None
        if task is None or queue is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await queue.join()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _name(hook: object) -> str:
    return printable(str(getattr(hook, "__qualname__", None) or repr(hook))[:100])
