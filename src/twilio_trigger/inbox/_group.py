"""Rows written together: the group commit the inboxes on a server share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from . import UnreachableError

__all__ = ["STORE_WAIT", "Group", "Late", "Writer"]

#: Seconds a request waits for its event to be stored before it is answered 503:
#: Twilio waits 15 s for an answer, then counts the request as failed and hears
#: nothing of why (error 11200).
STORE_WAIT = 10.0

#: Writes a batch's rows at once; returns each row's result, in order.
Writer = Callable[[list[Any]], Awaitable[list[Any]]]


#: Makes the error given to the rows of a batch not written within the group's
#: *limit* (told as the outage it is).
Late = Callable[[float], BaseException]


class _Batch:
    """Rows waiting to be written together, whoever waits for each, and the
    timer that ends their wait."""

    __slots__ = ("futures", "rows", "timer")

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.timer: asyncio.TimerHandle | None = None

    def expire(self, error: BaseException) -> None:
        for future in self.futures:
            if not future.done():
                future.set_exception(error)


class Group:
    """Rows of one kind (new events, outcomes) written together: while a batch is
    being written, the rows that arrive wait for the next, so the busier the
    listener, the more rows each write carries.  Up to *parallel* writes are
    under way at once (on connections of their own), so that a row waits for at
    most part of a write rather than a whole one; a write carries *size* rows at
    most.  A row's result, or the write's exception, is what :meth:`add` returns
    or raises.

    With a *limit*, a row waits at most that many seconds from its batch's first
    row (one timer per batch): then :meth:`add` raises what *late* makes of the
    limit, and the write goes on without it (a row it stores after all is one
    the sender's retry finds stored).  A request must have its answer before
    Twilio stops waiting, whatever a database that stopped answering and its
    driver's clean-up take."""

    __slots__ = ("batch", "late", "limit", "parallel", "size", "starting", "write", "writing")

    def __init__(
        self,
        write: Writer,
        parallel: int = 1,
        size: int = 500,
        *,
        limit: float | None = None,
        late: Late | None = None,
    ) -> None:
        self.write = write
        self.parallel = parallel
        self.size = size
        self.limit = limit
        self.late = late
        self.batch = _Batch()
        #: The tasks that have not given up their turn yet (see :meth:`add`); one
        #: that has is at its end, with nothing left to wait for.
        self.writing: set[asyncio.Future[Any]] = set()
        #: A task made to write the batch being filled, not running yet.
        self.starting: asyncio.Future[Any] | None = None

    async def add(self, row: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        batch = self.batch
        if self.limit is not None and not batch.rows:
            batch.timer = loop.call_later(self.limit, self._expire, batch)
        batch.rows.append(row)
        batch.futures.append(future)
        # One task is made for the rows of the batch being filled, unless one is
        # made already (it takes them all when it runs) or the writes under way
        # are as many as allowed (the first of them to end takes them).  A task
        # counts as writing until it finds no rows left, with no await between
        # its last look and giving up its turn (not until it is told done, later:
        # counted that long, it would leave this row to nobody).
        if self.starting is None and len(self.writing) < self.parallel:
            task = self.starting = asyncio.ensure_future(self._flush())
            self.writing.add(task)
            task.add_done_callback(self._ended)
        return await future

    def _expire(self, batch: _Batch) -> None:
        limit = self.limit or 0.0
        late = self.late
        batch.expire(
            late(limit) if late is not None else UnreachableError(f"not written within {limit:g} s")
        )

    def _ended(self, task: asyncio.Future[None]) -> None:
        self.writing.discard(task)
        if self.starting is task:  # cancelled before it ran
            self.starting = None

    async def _flush(self) -> None:
        self.starting = None  # this task takes the batch now, before any await
        try:
            await self._write_all()
        finally:
            self.writing.discard(asyncio.current_task())

    async def _write_all(self) -> None:
        while self.batch.rows:
            batch, self.batch = self.batch, _Batch()
            try:
                for start in range(0, len(batch.rows), self.size):
                    await self._write(
                        batch.rows[start : start + self.size],
                        batch.futures[start : start + self.size],
                    )
            finally:
                if batch.timer is not None:
                    batch.timer.cancel()

    async def _write(self, rows: list[Any], futures: list[asyncio.Future[Any]]) -> None:
        try:
            results = await self.write(rows)
        except BaseException as error:
            failure = error if isinstance(error, Exception) else UnreachableError("stopped")
            for future in futures:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(error, Exception):
                raise
            return
        for future, result in zip(futures, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def finish(self) -> None:
        """Wait for the rows being written (their failures are their rows' own)."""
        under_way = [task for task in self.writing if not task.done()]
        if under_way:
            await asyncio.wait(under_way)
