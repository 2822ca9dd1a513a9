"""The Redis inbox: a stream with a consumer group, for listeners and workers anywhere.

Keys, under ``{prefix}inbox:``:

- ``e:{id}``: a hash per event (parameters, state, attempts, last error...); ids
  come from the counter ``seq``, so they are small integers like SQLite's;
- ``k:{key}``: the delivery key of each stored event, so that a copy is refused;
- ``stream``: the work queue.  Workers read it with the consumer group ``workers``
  and acknowledge an entry's message once its attempt is recorded; the pending
  messages of a worker that died are claimed by the others once idle for longer
  than ``claim_idle`` seconds;
- ``retry``: events waiting for their next attempt (a sorted set by due time),
  put back on the stream when due; ``done`` and ``dead``: finished events by
  finish time; ``all``: every event, for listing;
- ``dead-letters``: a stream with one message per event given up on (its id,
  SID, status, attempts and last error), for whoever wants to watch them;
  purging dead letters trims it too.

Every change of an event is one Lua script, so that it is atomic.  Needs the
``redis`` package: ``pip install twilio-trigger[redis]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._logging import shown_url
from . import Entry, Inbox, State, decode_headers, encode_headers

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisInbox"]

logger = logging.getLogger("twilio_trigger")

_GROUP = "workers"
_MAX_ERROR = 16_000

_PUT = """
if not redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[7]) then return 0 end
local id = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], id, 'KEEPTTL')
redis.call('HSET', ARGV[8] .. id, 'key', ARGV[1], 'kind', ARGV[2], 'sid', ARGV[3],
    'status', ARGV[4], 'params', ARGV[5], 'received_at', ARGV[6], 'state', 'pending',
    'attempts', 0, 'next_attempt_at', ARGV[6], 'headers', ARGV[9])
redis.call('XADD', KEYS[3], '*', 'id', id)
redis.call('ZADD', KEYS[4], id, id)
return id
"""
_PROMOTE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('XADD', KEYS[2], '*', 'id', id)
end
return #ids
"""
_START = """
local entry = ARGV[1] .. ARGV[2]
if redis.call('EXISTS', entry) == 0 then return false end
redis.call('HINCRBY', entry, 'attempts', 1)
redis.call('HSET', entry, 'state', 'running')
return redis.call('HGETALL', entry)
"""
# KEYS: stream, the state's set (done, dead or retry); ARGV: message, entry key,
# state, score, error, finish time, group, retention ms
_FINISH = """
redis.call('XACK', KEYS[1], ARGV[7], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
local id = string.match(ARGV[2], '(%d+)$')
redis.call('HSET', ARGV[2], 'state', ARGV[3], 'finished_at', ARGV[6])
if ARGV[5] ~= '' then redis.call('HSET', ARGV[2], 'last_error', ARGV[5]) end
if ARGV[3] == 'pending' then redis.call('HSET', ARGV[2], 'next_attempt_at', ARGV[4]) end
redis.call('ZADD', KEYS[2], ARGV[4], id)
if ARGV[3] == 'done' then redis.call('PEXPIRE', ARGV[2], ARGV[8]) end
if ARGV[3] == 'dead' then
    local entry = redis.call('HMGET', ARGV[2], 'kind', 'sid', 'status', 'attempts')
    redis.call('XADD', KEYS[3], '*', 'id', id, 'kind', entry[1], 'sid', entry[2],
        'status', entry[3], 'attempts', entry[4], 'error', ARGV[5])
end
"""
# KEYS: stream, retry, done, dead; ARGV: entry key prefix, id, now
_REPLAY = """
local entry = ARGV[1] .. ARGV[2]
local state = redis.call('HGET', entry, 'state')
if not state or state == 'running' then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('PERSIST', entry)
redis.call('HSET', entry, 'state', 'pending', 'attempts', 0, 'next_attempt_at', ARGV[3],
    'finished_at', '')
redis.call('XADD', KEYS[1], '*', 'id', ARGV[2])
return 1
"""


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _entry(entry_id: int, flat: Sequence[Any]) -> Entry:
    fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
    return Entry(
        id=entry_id,
        key=fields.get("key", ""),
        kind=fields.get("kind", ""),
        sid=fields.get("sid") or None,
        status=fields.get("status") or None,
        params=tuple((n, v) for n, v in json.loads(fields.get("params", "[]"))),
        received_at=float(fields.get("received_at", 0)),
        state=State(fields.get("state", "pending")),
        attempts=int(fields.get("attempts", 0)),
        next_attempt_at=float(fields.get("next_attempt_at") or 0),
        last_error=fields.get("last_error") or None,
        finished_at=float(fields["finished_at"]) if fields.get("finished_at") else None,
        headers=decode_headers(fields.get("headers")),
    )


class RedisInbox(Inbox):
    """The inbox in the Redis at *url*, under *prefix*, shared by every process using them."""

    def __init__(
        self, url: str, *, prefix: str = "twilio-trigger:", claim_idle: float = 60.0,
        retention: float = 86400.0,
    ) -> None:  # fmt: skip
        self.location = shown_url(url)  # no password in logs
        self._url = url
        base = f"{prefix}inbox:"
        self._entry = f"{base}e:"
        self._key = f"{base}k:"
        self._seq = f"{base}seq"
        self._stream = f"{base}stream"
        self._retry = f"{base}retry"
        self._done = f"{base}done"
        self._dead = f"{base}dead"
        # Every dead letter is also told on a stream, for whoever wants to watch them.
        self._dead_letters = f"{base}dead-letters"
        self._all = f"{base}all"
        self._idle_ms = max(1, round(claim_idle * 1000))
        self._retention_ms = max(1, round(retention * 1000))
        self._consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._client: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: dict[str, Any] = {}
        self._messages: dict[int, str] = {}  # entries this inbox is running: id -> message
        self._heartbeat: asyncio.Task[None] | None = None

    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from ..stores.redis import connect

            client = connect(self._url)
            self._client, self._loop = client, loop
            self._scripts = {
                name: client.register_script(source)
                for name, source in (
                    ("put", _PUT), ("promote", _PROMOTE), ("start", _START),
                    ("finish", _FINISH), ("replay", _REPLAY),
                )
            }  # fmt: skip
        return self._client

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        self._redis()
        return await self._scripts[name](keys=list(keys), args=list(args))

    async def open(self) -> int:
        from redis.exceptions import ResponseError

        try:
            await self._redis().xgroup_create(self._stream, _GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        return 0  # a dead worker's entries are claimed once idle, by whoever reads

    async def put(
        self,
        key: str,
        kind: str,
        sid: str | None,
        status: str | None,
        params: Sequence[tuple[str, str]],
        headers: Sequence[tuple[str, str]] = (),
    ) -> bool:
        added = await self._script(
            "put",
            [self._key + key, self._seq, self._stream, self._all],
            [
                key, kind, sid or "", status or "", json.dumps(params, ensure_ascii=False),
                repr(time.time()), self._retention_ms, self._entry,
                encode_headers(headers),
            ],
        )  # fmt: skip
        return int(added) != 0

    async def _beat(self) -> None:
        # A worker that is alive keeps its running entries from looking idle,
        # so that nobody (itself included) takes them over while they run.
        while True:
            await asyncio.sleep(self._idle_ms / 3000)
            held: list[int | bytes | str | memoryview] = list(self._messages.values())
            if held:
                try:
                    await self._redis().xclaim(
                        self._stream, _GROUP, self._consumer, 0, held, justid=True
                    )
                except Exception:  # Redis away: try again at the next beat
                    logger.warning("could not refresh the inbox's running entries", exc_info=True)

    async def claim(self, limit: int) -> list[Entry]:
        from redis.exceptions import ResponseError

        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        try:
            return await self._claim(limit)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
        # Redis came back without its data (a restart without persistence, a
        # failover to an empty replica): the stream was made anew, without the
        # consumer group.  Make the group again, from the stream's start.
        await self.open()
        return await self._claim(limit)

    async def _claim(self, limit: int) -> list[Entry]:
        client = self._redis()
        await self._script("promote", [self._retry, self._stream], [repr(time.time()), limit])
        messages: list[tuple[Any, dict[Any, Any]]] = []
        reclaimed: Any = await client.xautoclaim(
            self._stream, _GROUP, self._consumer, self._idle_ms, "0-0", count=limit
        )
        held = set(self._messages.values())
        messages.extend(m for m in reclaimed[1] if _text(m[0]) not in held)
        if len(messages) < limit:
            read: Any = await client.xreadgroup(
                _GROUP, self._consumer, {self._stream: ">"}, count=limit - len(messages)
            )
            for _, batch in read or []:
                messages.extend(batch)
        entries = []
        for message, fields in messages:
            if not fields:  # deleted meanwhile
                continue
            entry_id = int(_text(fields.get(b"id", fields.get("id", 0))))
            flat = await self._script("start", [], [self._entry, entry_id])
            if not flat:  # purged meanwhile: drop its message
                await client.xack(self._stream, _GROUP, message)
                continue
            self._messages[entry_id] = _text(message)
            entries.append(_entry(entry_id, flat))
        return entries

    async def _finish(
        self, entry_id: int, state: State, ranked_in: str, score: float, error: str
    ) -> None:
        message = self._messages.pop(entry_id, "0-0")
        now = time.time()
        await self._script(
            "finish",
            [self._stream, ranked_in, self._dead_letters],
            [
                message, f"{self._entry}{entry_id}", state.value, repr(score),
                error[-_MAX_ERROR:], "" if state is State.PENDING else repr(now), _GROUP,
                self._retention_ms,
            ],
        )  # fmt: skip

    async def succeed(self, entry_id: int) -> None:
        await self._finish(entry_id, State.DONE, self._done, time.time(), "")

    async def retry(self, entry_id: int, error: str, at: float) -> None:
        await self._finish(entry_id, State.PENDING, self._retry, at, error)

    async def bury(self, entry_id: int, error: str) -> None:
        await self._finish(entry_id, State.DEAD, self._dead, time.time(), error)

    async def next_due(self) -> float | None:
        first = await self._redis().zrange(self._retry, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def stats(self) -> dict[State, int]:
        client = self._redis()
        counts = dict.fromkeys(State, 0)
        counts[State.DONE] = await client.zcard(self._done)
        counts[State.DEAD] = await client.zcard(self._dead)
        waiting = await client.zcard(self._retry)
        from redis.exceptions import ResponseError

        try:
            groups: Any = await client.xinfo_groups(self._stream)
        except ResponseError:  # no stream yet: nothing was ever stored
            groups = []
        for group in groups:
            if _text(group.get("name", b"")) == _GROUP:
                counts[State.RUNNING] = int(group.get("pending", 0))
                waiting += int(group.get("lag") or 0)
        counts[State.PENDING] = waiting
        return counts

    async def check(self) -> None:
        await self._redis().ping()

    async def entries(self, state: State | None = None, limit: int = 50) -> list[Entry]:
        client = self._redis()
        source = {State.DONE: self._done, State.DEAD: self._dead}.get(state, self._all)  # type: ignore[arg-type]
        found: list[Entry] = []
        start = 0
        while len(found) < limit:
            ids = await client.zrevrange(source, start, start + 199)
            if not ids:
                break
            start += len(ids)
            for raw in ids:
                entry = await self.get(int(_text(raw)))
                if entry is not None and (state is None or entry.state is state):
                    found.append(entry)
                    if len(found) == limit:
                        break
        return found

    async def get(self, entry_id: int) -> Entry | None:
        found: Any = await self._redis().hgetall(f"{self._entry}{entry_id}")
        if not found:
            return None
        return _entry(entry_id, [item for pair in found.items() for item in pair])

    async def replay(self, entry_ids: Sequence[int] | None = None) -> int:
        client = self._redis()
        if entry_ids is None:
            entry_ids = [int(_text(i)) for i in await client.zrange(self._dead, 0, -1)]
        count = 0
        for entry_id in entry_ids:
            count += int(
                await self._script(
                    "replay",
                    [self._stream, self._retry, self._done, self._dead],
                    [self._entry, entry_id, repr(time.time())],
                )
            )
        return count

    async def purge(self, state: State, older_than: float) -> int:
        client = self._redis()
        source = {State.DONE: self._done, State.DEAD: self._dead}.get(state)
        if source is None:
            return 0
        found: Any = await client.zrangebyscore(source, "-inf", time.time() - older_than)
        ids = [_text(raw) for raw in found]
        if state is State.DEAD:  # stream ids start with their time in ms
            cutoff_ms = int((time.time() - older_than) * 1000)
            await client.xtrim(self._dead_letters, minid=f"{cutoff_ms}-0", approximate=False)
        for entry_id in ids:
            await client.delete(f"{self._entry}{entry_id}")
            await client.zrem(source, entry_id)
            await client.zrem(self._all, entry_id)
        return len(ids)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
