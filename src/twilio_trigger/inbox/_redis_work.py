"""The workers' side of the Redis inbox: taking entries, running them, recording how they ended.

:class:`RedisWork` claims entries for this process's workers (the due retries put
back on the stream, a silent worker's messages taken over once idle, new
messages read with the consumer group), starts them with one pipeline, keeps
them from looking idle while they run (a heartbeat), and records their outcomes
grouped with the others that end meanwhile; an entry held back by its limits or
its breaker is given back (:meth:`~RedisWork.defer`), and the paces and places
of those limits are kept in Redis for every process.  A claim that finds the
inbox's data changed adopts it (see :mod:`~twilio_trigger.inbox._redis_loss`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from .._outage import watched
from . import Entry, State, UnreachableError
from ._redis_core import GROUP, RedisCore, entry_of_fields, text
from ._redis_loss import DataLostError, Look

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisWork"]

logger = logging.getLogger("twilio_trigger")

_MAX_ERROR = 16_000


class RedisWork(RedisCore):
    """The workers' methods of a Redis inbox (see the module)."""

    # -- claiming ------------------------------------------------------------------
    async def _beat(self) -> None:
        # A worker that is alive keeps its running entries from looking idle,
        # so that nobody (itself included) takes them over while they run.
        this = asyncio.current_task()
        while True:
            if this is not None and this.cancelling():
                raise asyncio.CancelledError  # swallowed by redis-py 8: see WorkerPool._loop
            await asyncio.sleep(self._idle_ms / 3000)
            held: list[int | bytes | str | memoryview] = [
                message for message, epoch in self._messages.values() if epoch == self._epoch
            ]
            if held:
                try:
                    await self._refresh(held)
                except UnreachableError:  # told once: try again at the next beat
                    continue
                except Exception:
                    logger.warning("could not refresh the inbox's running entries", exc_info=True)

    @watched
    async def _refresh(self, held: list[int | bytes | str | memoryview]) -> None:
        await self._redis().xclaim(self._stream, GROUP, self._consumer, 0, held, justid=True)

    @watched
    async def claim(self, limit: int) -> list[Entry]:
        from redis.exceptions import ResponseError

        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        for _ in range(3):
            generation, epoch = self._generation, self._epoch
            try:
                return await self._claim(limit)
            except DataLostError as changed:
                await self._recover(generation, epoch, changed.marker, changed.seq)
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    self._orphans = True
                    raise
                await self._recover(generation, epoch, None, None)
            except Exception:
                self._orphans = True
                raise
        return []

    async def _claim(self, limit: int) -> list[Entry]:
        client = self._redis()
        counted = await self._script(
            "promote",
            [self._retry, self._stream, self._marker, self._seq, self._dead],
            [repr(time.time()), limit, self._epoch, self._known],
        )
        if int(counted[0]) < 0:
            raise DataLostError(text(counted[1]), int(counted[2]))
        self._known = max(self._known, int(counted[1]))
        self._look = Look(int(counted[2]), int(counted[3]), time.time())
        held = {message for message, _ in self._messages.values()}
        messages: dict[str, tuple[Any, dict[Any, Any]]] = {}

        def take(found: Any) -> None:
            for message in found:
                if text(message[0]) not in held:
                    messages.setdefault(text(message[0]), message)

        now = time.monotonic()
        if now >= self._reclaim_at:
            # Messages of a worker that went silent, taken over once idle for
            # claim_idle: looked for at most every quarter of it (and a second),
            # not at every claim, unless the last look found a full batch.
            reclaimed: Any = await client.xautoclaim(
                self._stream, GROUP, self._consumer, self._idle_ms, "0-0", count=limit
            )
            take(reclaimed[1])
            full = len(reclaimed[1]) >= limit
            self._reclaim_at = now if full else now + min(1.0, self._idle_ms / 4000)
        if self._orphans:
            # A failure left messages read by this very consumer, and not held
            # (its start or its finish was cut off): take them again at once
            # rather than after claim_idle, since this consumer is alive.
            own: Any = await client.xreadgroup(
                GROUP, self._consumer, {self._stream: "0"}, count=limit
            )
            for _, batch in own or []:
                take(batch)
            self._orphans = False
        if len(messages) < limit:
            read: Any = await client.xreadgroup(
                GROUP, self._consumer, {self._stream: ">"}, count=limit - len(messages)
            )
            for _, batch in read or []:
                take(batch)
        return await self._start(client, list(messages.values()))

    async def _start(self, client: Redis, found: list[tuple[Any, dict[Any, Any]]]) -> list[Entry]:
        """Start the entries of the messages *found*, with one pipeline."""
        gone = [message for message, fields in found if not fields]  # deleted meanwhile
        live = [(message, fields) for message, fields in found if fields]
        now = repr(time.time())
        ids = [int(text(fields.get(b"id", fields.get("id", 0)))) for _, fields in live]
        calls = [
            ([self._stream, self._retry], [self._entry, entry_id, now, GROUP, message])
            for (message, _), entry_id in zip(live, ids, strict=True)
        ]
        replies = [reply for reply, _ in await self._pipelined("start", calls)] if calls else []
        entries: list[Entry] = []
        failure: Exception | None = None
        for (message, _), entry_id, flat in zip(live, ids, replies, strict=True):
            if isinstance(flat, Exception):
                failure = failure or flat
            elif flat == 0:  # held until the listener confirms it
                pass
            elif not flat:  # purged or withdrawn meanwhile: drop its message
                gone.append(message)
            else:
                self._messages[entry_id] = (text(message), self._epoch)
                self._known = max(self._known, entry_id)
                entries.append(entry_of_fields(entry_id, flat))
        try:
            if gone:
                await client.xack(self._stream, GROUP, *gone)
        except Exception as error:
            failure = failure or error
        if failure is not None:
            if not entries:
                raise failure
            # Those started must run: they are held, so nobody else takes them.
            self._orphans = True
        return entries

    # -- outcomes ------------------------------------------------------------------
    async def _finish(
        self, entry_id: int, state: State, ranked_in: str, score: float, error: str
    ) -> None:
        # An entry claimed before Redis lost its data is not written back into
        # the new data, where its id may name another event.
        message, epoch = self._messages.pop(entry_id, ("0-0", self._epoch))
        now = time.time()
        try:
            self._redis()
            # Recorded with the outcomes of the other callbacks that ended meanwhile.
            reply = await self._outcomes.add((
                [self._stream, ranked_in, self._dead_letters, self._marker, self._counters],
                [
                    message, f"{self._entry}{entry_id}", state.value, repr(score),
                    error[-_MAX_ERROR:], "" if state is State.PENDING else repr(now), GROUP,
                    self._retention_ms, epoch,
                ],
            ))  # fmt: skip
            if isinstance(reply, Exception):
                raise reply
        except Exception:
            self._orphans = True  # its message stays read by this consumer: run it again
            raise

    @watched
    async def succeed(self, entry_id: int) -> None:
        await self._finish(entry_id, State.DONE, self._done, time.time(), "")

    @watched
    async def retry(self, entry_id: int, error: str, at: float) -> None:
        await self._finish(entry_id, State.PENDING, self._retry, at, error)

    @watched
    async def bury(self, entry_id: int, error: str) -> None:
        await self._finish(entry_id, State.DEAD, self._dead, time.time(), error)

    @watched
    async def next_due(self) -> float | None:
        first = await self._redis().zrange(self._retry, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    # -- holding back: entries given back, paces and places -------------------------
    @watched
    async def defer(self, entry_id: int, at: float, hold: str | None = None) -> None:
        message, epoch = self._messages.pop(entry_id, ("0-0", self._epoch))
        held = "" if hold is None else f"{self._gates_base}hold:{hold}"
        try:
            await self._script(
                "defer",
                [self._stream, self._retry, self._marker, held or self._marker],
                [message, f"{self._entry}{entry_id}", repr(at), GROUP, epoch, held],
            )
        except Exception:
            self._orphans = True  # its message stays read by this consumer: run it again
            raise

    @watched
    async def release(self, hold: str) -> int:
        released = await self._script(
            "release_held",
            [f"{self._gates_base}hold:{hold}", self._retry],
            [repr(time.time()), self._entry],
        )
        return int(released)

    @watched
    async def pace(self, name: str, interval: float, burst: int) -> float:
        wait = await self._script("pace", [f"{self._gates_base}pace:{name}"], [interval, burst])
        return float(text(wait))

    @watched
    async def enter(self, name: str, holder: str, limit: int, lease: float) -> bool:
        taken = await self._script(
            "enter", [f"{self._gates_base}places:{name}"], [holder, limit, lease]
        )
        return bool(taken)

    @watched
    async def leave(self, name: str, holder: str) -> None:
        await self._redis().zrem(f"{self._gates_base}places:{name}", holder)
