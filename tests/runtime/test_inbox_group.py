"""The group commit the PostgreSQL and Redis inboxes share (``inbox/_group.py``):
rows that arrive while a write is under way go together in the next, each row gets
its own result or its write's exception, and no row is ever left to nobody.

A writer here is a coroutine the test holds open with an :class:`asyncio.Event`,
so what is under way at each moment is the test's to say, never a matter of time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from twilio_trigger.inbox import UnreachableError
from twilio_trigger.inbox._group import Group


class Writer:
    """Records each write's rows; each write waits for :attr:`go` when *held*."""

    def __init__(self, *, held: bool = False, fail_on: object = None) -> None:
        self.writes: list[list[Any]] = []
        self.under_way = 0
        self.most_under_way = 0
        self.go = asyncio.Event()
        if not held:
            self.go.set()
        self.fail_on = fail_on

    async def __call__(self, rows: list[Any]) -> list[Any]:
        self.writes.append(list(rows))
        self.under_way += 1
        self.most_under_way = max(self.most_under_way, self.under_way)
        try:
            await self.go.wait()
        finally:
            self.under_way -= 1
        if self.fail_on is not None and self.fail_on in rows:
            raise RuntimeError(f"cannot write {self.fail_on}")
        return [f"wrote {row}" for row in rows]


async def settled() -> None:
    """Let every task that can run, run (a few passes of the loop)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_rows_added_together_are_written_together_each_with_its_result() -> None:
    async def scenario() -> tuple[list[Any], list[list[Any]]]:
        writer = Writer()
        group = Group(writer, parallel=3)
        results = await asyncio.gather(*(group.add(n) for n in range(20)))
        return results, writer.writes

    results, writes = asyncio.run(scenario())
    assert results == [f"wrote {n}" for n in range(20)]
    assert writes == [list(range(20))]  # one write, not one per row nor one per place


def test_rows_that_arrive_during_a_write_wait_for_the_next_one_together() -> None:
    async def scenario() -> tuple[list[list[Any]], int, list[Any]]:
        writer = Writer(held=True)
        group = Group(writer, parallel=1)
        first = asyncio.ensure_future(group.add("a"))
        await settled()
        assert writer.writes == [["a"]]
        later = [asyncio.ensure_future(group.add(row)) for row in ("b", "c", "d")]
        await settled()
        assert writer.writes == [["a"]]  # nothing more while the one allowed is under way
        writer.go.set()
        results = await asyncio.gather(first, *later)
        return writer.writes, writer.most_under_way, results

    writes, most, results = asyncio.run(scenario())
    assert writes == [["a"], ["b", "c", "d"]]
    assert most == 1
    assert results == ["wrote a", "wrote b", "wrote c", "wrote d"]


def test_no_more_writes_under_way_than_allowed() -> None:
    async def scenario() -> tuple[int, list[list[Any]]]:
        writer = Writer(held=True)
        group = Group(writer, parallel=2)
        adds = []
        for row in range(6):  # a row a pass: each would start a write of its own
            adds.append(asyncio.ensure_future(group.add(row)))
            await settled()
        assert writer.under_way == 2
        writer.go.set()
        await asyncio.gather(*adds)
        return writer.most_under_way, writer.writes

    most, writes = asyncio.run(scenario())
    assert most == 2
    assert writes[:2] == [[0], [1]]
    assert sorted(row for write in writes for row in write) == list(range(6))
    assert len(writes) == 3  # the four that waited went together, in the first write to end


def test_a_write_that_fails_fails_its_own_rows_only() -> None:
    async def scenario() -> list[Any]:
        writer = Writer(held=True, fail_on="bad")
        group = Group(writer, parallel=1)
        first = asyncio.ensure_future(group.add("good"))
        await settled()
        doomed = [asyncio.ensure_future(group.add(row)) for row in ("bad", "also")]
        await settled()
        writer.go.set()
        outcome = await asyncio.gather(first, *doomed, return_exceptions=True)
        after = await group.add("after")  # the group goes on
        return [*outcome, after]

    first, bad, also, after = asyncio.run(scenario())
    assert first == "wrote good"
    assert isinstance(bad, RuntimeError)
    assert bad is also
    assert after == "wrote after"


def test_a_batch_larger_than_a_write_is_written_in_several() -> None:
    async def scenario() -> tuple[list[Any], list[list[Any]]]:
        writer = Writer()
        group = Group(writer, parallel=1, size=4)
        results = await asyncio.gather(*(group.add(n) for n in range(10)))
        return results, writer.writes

    results, writes = asyncio.run(scenario())
    assert results == [f"wrote {n}" for n in range(10)]
    assert writes == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_writer_cancelled_before_it_ran_leaves_its_rows_to_the_next() -> None:
    async def scenario() -> list[Any]:
        writer = Writer()
        group = Group(writer, parallel=1)
        first = asyncio.ensure_future(group.add("a"))
        await asyncio.sleep(0)  # the add ran and made its writing task, not run yet
        assert group.starting is not None
        group.starting.cancel()
        await settled()
        assert writer.writes == []
        assert not first.done()
        second = await group.add("b")
        return [await first, second, writer.writes]

    first, second, writes = asyncio.run(scenario())
    assert (first, second) == ("wrote a", "wrote b")
    assert writes == [["a", "b"]]


def test_a_write_stopped_by_cancellation_tells_its_rows_the_inbox_stopped() -> None:
    async def scenario() -> BaseException | None:
        writer = Writer(held=True)
        group = Group(writer, parallel=1)
        row = asyncio.ensure_future(group.add("a"))
        await settled()
        for task in list(group.writing):
            task.cancel()
        await group.finish()
        return row.exception()

    failure = asyncio.run(scenario())
    assert isinstance(failure, UnreachableError)


@pytest.mark.parametrize("parallel", [1, 3])
def test_every_row_of_a_long_run_is_written_exactly_once(parallel: int) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        writer = Writer()
        group = Group(writer, parallel=parallel, size=7)
        adds = []
        for n in range(300):
            adds.append(asyncio.ensure_future(group.add(n)))
            if n % 11 == 0:
                await asyncio.sleep(0)
        results = await asyncio.gather(*adds)
        return results, [row for write in writer.writes for row in write]

    results, written = asyncio.run(scenario())
    assert results == [f"wrote {n}" for n in range(300)]
    assert sorted(written) == list(range(300))


def test_rows_not_written_within_the_limit_are_told_late_and_the_write_goes_on() -> None:
    # A database that stops answering holds a write for as long as its driver
    # waits; a request must have its answer before Twilio gives up.  With a limit,
    # the rows of a batch are failed with the late error once it has passed, the
    # write itself is left to end (what it stores, a retry finds stored), and the
    # next batch has a limit of its own.
    late_told: list[float] = []

    def late(limit: float) -> BaseException:
        late_told.append(limit)
        return UnreachableError(f"late after {limit} s")

    async def scenario() -> tuple[list[Any], list[Any], list[list[Any]], bool]:
        writer = Writer(held=True)
        group = Group(writer, limit=0.05, late=late)
        failed = await asyncio.gather(*(group.add(n) for n in range(3)), return_exceptions=True)
        still_writing = writer.under_way == 1
        writer.go.set()  # the write ends after all
        await group.finish()
        later = await asyncio.gather(group.add(9), return_exceptions=True)
        return failed, list(later), writer.writes, still_writing

    failed, later, writes, still_writing = asyncio.run(scenario())
    assert [str(error) for error in failed] == ["late after 0.05 s"] * 3
    assert all(isinstance(error, UnreachableError) for error in failed)
    assert still_writing
    assert late_told == [0.05]  # once for the batch, not per row
    assert later == ["wrote 9"]  # written in time: its timer never fired
    assert writes == [[0, 1, 2], [9]]
