"""The part of the Redis inbox every other part stands on: its state and its way to Redis.

:class:`RedisCore` holds the names of the inbox's keys (described in
:mod:`twilio_trigger.inbox.redis`), what this process knows of the data (the
inbox's marker, the highest id seen, the entries it runs), and the client of
each event loop with the scripts registered on it.  It runs a script by its
digest, alone or many at once in one pipeline (a script Redis lost is loaded
again and its calls rerun), and writes the rows of its groups (new events,
releases, outcomes) that way.  It adopts the inbox's data at start and after a
loss, which :mod:`~twilio_trigger.inbox._redis_loss` tells.  The workers' side
(:mod:`~twilio_trigger.inbox._redis_work`), the operators' side
(:mod:`~twilio_trigger.inbox._redis_admin`) and :class:`RedisInbox`, which
stores, are built on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._logging import shown_url
from .._options import OPTIONS
from .._outage import Outage
from ..stores.redis import connection_errors
from . import Entry, Inbox, State, _redis_gates, _redis_lua, decode_headers
from ._group import STORE_WAIT, Group
from ._redis_durability import Durability
from ._redis_loss import Look, tell_loss

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["GROUP", "RedisCore", "entry_of_fields", "text"]

#: The consumer group of the workers, on the inbox's stream.
GROUP = "workers"
_BATCH = 500  # events at most per pipeline of writes
_PARALLEL_PUTS = 3  # pipelines of new events under way at once (each waits for its fsync)


def text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def entry_of_fields(entry_id: int, flat: Sequence[Any]) -> Entry:
    fields = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}
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


def _connect(url: str, read_timeout: float) -> Redis:
    try:
        from redis.asyncio import Redis
    except ImportError:
        raise ImportError(
            "a redis:// inbox needs the redis package: pip install 'twilio-trigger[redis]'"
        ) from None
    client: Redis = Redis.from_url(url, socket_timeout=read_timeout, socket_connect_timeout=5)
    return client


class RedisCore(Inbox):
    """What the parts of a Redis inbox share; its arguments are those of
    :class:`~twilio_trigger.inbox.redis.RedisInbox`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = OPTIONS.redis_prefix.default,
        claim_idle: float = OPTIONS.claim_idle.default,
        retention: float = OPTIONS.dedup_ttl.default,
        durability: str = OPTIONS.redis_durability.default,
        wait_timeout: float = OPTIONS.redis_wait_timeout.default,
    ) -> None:
        self.location = shown_url(url)  # no password in logs
        self.durability = durability
        self.wait_timeout = wait_timeout
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
        self._marker = f"{base}marker"
        self._settings = f"{base}settings"
        self._counters = f"{base}counters"
        self._gates_base = f"{base}gate:"  # paces and places (see _redis_gates)
        # Written at start to try a confirmation: its key under the inbox's own.
        self._durability = Durability(durability, wait_timeout, self.location, f"{base}probe")
        #: Told once when Redis cannot be reached, and once when it can again.
        self.outage = Outage("Redis inbox", url, connection_errors)
        self._idle_ms = max(1, round(claim_idle * 1000))
        self._retention_ms = max(1, round(retention * 1000))
        self._consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._client: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: dict[str, Any] = {}
        self._new_groups()
        self._recovering = asyncio.Lock()
        # Entries this inbox is running: id -> (message, the marker they were claimed under).
        self._messages: dict[int, tuple[str, str]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._orphans = False  # messages read by this consumer may have been left behind
        self._reclaim_at = 0.0  # when to look for a silent worker's messages next (monotonic)
        # What this process knows of the data, to notice when Redis loses it.
        self._epoch = ""  # the inbox's marker
        self._known = 0  # the highest id seen
        self._generation = 0  # losses handled so far
        self._look = Look()

    # -- connection ------------------------------------------------------------
    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A WAIT or WAITAOF blocks the connection up to wait_timeout each.
            client = _connect(self._url, 5.0 + 2 * self.wait_timeout)
            self._client, self._loop = client, loop
            self._recovering = asyncio.Lock()
            self._scripts = {
                name.lower(): client.register_script(getattr(module, name))
                for module in (_redis_lua, _redis_gates)
                for name in module.__all__
            }
            self._new_groups()
        return self._client

    def _new_groups(self) -> None:
        """The writes grouped on this event loop: new events, releases, outcomes."""
        # Bounded past the time Redis may take to confirm (wait_timeout), if longer.
        limit = max(STORE_WAIT, self.wait_timeout + 1.0)
        self._puts = Group(self._store, _PARALLEL_PUTS, _BATCH, limit=limit, late=self._late)
        self._releases = Group(self._release, 1, _BATCH)
        self._outcomes = Group(self._record, 1, _BATCH)

    def _late(self, limit: float) -> BaseException:
        return self.outage.unreachable(TimeoutError(f"no answer within {limit:g} s"))

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        self._redis()
        return await self._scripts[name](keys=list(keys), args=list(args))

    async def _pipelined(
        self, name: str, calls: Sequence[tuple[list[str], list[Any]]], then: Sequence[Any] = ()
    ) -> list[tuple[Any, list[Any]]]:
        """Run the script *name* once for each of *calls* (its keys and arguments),
        then the commands *then*, in one pipeline on one connection; for each call,
        its reply (or the exception of its command) and the replies to the *then*
        that followed it.  By the scripts' digests, not with redis-py's scripts in a
        pipeline, which ask Redis whether they exist first (a round trip more each
        time): a script Redis does not have (restarted, or its scripts flushed) is
        loaded and those calls run again, with *then* after them."""
        from redis.exceptions import NoScriptError

        client = self._redis()
        script = self._scripts[name]
        done: list[tuple[Any, list[Any]]] = [(None, [])] * len(calls)
        todo = list(range(len(calls)))
        for attempt in (1, 2):
            async with client.pipeline(transaction=False) as pipe:
                for index in todo:
                    keys, args = calls[index]
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                for command in then:
                    pipe.execute_command(*command)
                got = await pipe.execute(raise_on_error=False)
            followed = got[len(todo) :]
            for index, reply in zip(todo, got, strict=False):
                done[index] = (reply, followed)
            todo = [index for index in todo if isinstance(done[index][0], NoScriptError)]
            if not todo or attempt == 2:
                break
            script.sha = await client.script_load(script.script)
        return done

    async def _store(self, rows: list[tuple[list[str], list[Any]]]) -> list[tuple[Any, Any]]:
        """Write the events of *rows* (the put script's keys and arguments of each)
        with one pipeline, followed by the confirmations the durability asks for:
        on one connection, WAIT and WAITAOF confirm that connection's writes, all
        of the batch's at once.  Returns each event's reply (or the exception of
        its script) and the replies to the confirmations that followed it."""
        await self._durability.recheck(self._redis())
        return await self._pipelined("put", rows, self._durability.confirm)

    async def _release(self, entry_ids: list[int]) -> list[Any]:
        """Let the workers take the confirmed entries of *entry_ids*, with one
        pipeline; each entry's reply, or the exception of its script."""
        now = repr(time.time())
        calls = [
            ([self._retry], [f"{self._entry}{entry_id}", entry_id, now]) for entry_id in entry_ids
        ]
        return [reply for reply, _ in await self._pipelined("release", calls)]

    async def _record(self, rows: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Record outcomes (the finish script's keys and arguments of each) with one
        pipeline; each one's reply, or the exception of its script."""
        return [reply for reply, _ in await self._pipelined("finish", rows)]

    # -- the data this process knows: adopted at start and after a loss ---------------
    async def _adopt(self, *, replace: bool) -> tuple[str, int, int, bool]:
        reply = await self._script(
            "epoch",
            [self._marker, self._seq, self._stream, self._counters],
            [
                self._epoch,
                secrets.token_hex(8),
                self._known,
                "1" if replace else "0",
                GROUP,
                round(time.time() * 1000),
            ],
        )
        return text(reply[0]), int(reply[1]), int(reply[2]), int(reply[3]) == 1

    async def _recover(
        self, generation: int, seen: str, marker: str | None, seq: int | None
    ) -> None:
        """Tell what Redis lost, and carry on with the inbox as it is now."""
        async with self._recovering:
            if self._generation != generation:
                return  # another task of this process saw the same loss
            replace = marker == seen and seq is not None and seq < self._known
            new, _, after, _ = await self._adopt(replace=replace)
            tell_loss(
                seen,
                marker,
                seq,
                location=self.location,
                durability=self.durability,
                known=self._known,
                look=self._look,
            )
            self._epoch, self._known = new, max(self._known, after)
            self._generation += 1
            self._look = Look(at=time.time())
