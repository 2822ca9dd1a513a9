"""Rows written together: the group commit the inboxes on a server share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from . import UnreachableError

__all__ = ["Group", "Writer"]

#: Writes a batch's rows at once; returns each row's result, in order.
Writer = Callable[[list[Any]], Awaitable[list[Any]]]


class _Batch:
    """Rows waiting to be written together, and whoever waits for each."""

    __slots__ = ("futures", "rows")

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.futures: list[asyncio.Future[Any]] = []


class Group:
    """Rows of one kind (new events, outcomes) written together: while a batch is
    being written, the rows that arrive wait for the next, so the busier the
    listener, the more rows each write carries.  Up to *parallel* writes are
    under way at once (on connections of their own), so that a row waits for at
    most part of a write rather than a whole one; a write carries *size* rows at
    most.  A row's result, or the write's exception, is what :meth:`add` returns
    or raises."""

    __slots__ = ("batch", "parallel", "size", "starting", "write", "writing")

    def __init__(self, write: Writer, parallel: int = 1, size: int = 500) -> None:
        self.write = write
        self.parallel = parallel
        self.size = size
        self.batch = _Batch()
        #: The tasks that have not given up their turn yet (see :meth:`add`); one
        #: that has is at its end, with nothing left to wait for.
        self.writing: set[asyncio.Future[Any]] = set()
        #: A task made to write the batch being filled, not running yet.
        self.starting: asyncio.Future[Any] | None = None

    async def add(self, row: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.batch.rows.append(row)
        self.batch.futures.append(future)
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
            for start in range(0, len(batch.rows), self.size):
                rows = batch.rows[start : start + self.size]
                futures = batch.futures[start : start + self.size]
                try:
                    results = await self.write(rows)
                except BaseException as error:
                    failure = error if isinstance(error, Exception) else UnreachableError("stopped")
                    for future in futures:
                        if not future.done():
                            future.set_exception(failure)
                    if not isinstance(error, Exception):
                        raise
                    continue
                for future, result in zip(futures, results, strict=True):
                    if not future.done():
                        future.set_result(result)

    async def finish(self) -> None:
        """Wait for the rows being written (their failures are their rows' own)."""
        under_way = [task for task in self.writing if not task.done()]
        if under_way:
            await asyncio.wait(under_way)
