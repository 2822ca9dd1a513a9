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
  purging dead letters trims it too;
- ``marker``: a random token written when the inbox is made.  Each process
  remembers it and the highest id it saw, and its writes check both: a Redis
  that came back empty, or from an older copy of its data, is told as an ERROR
  saying what was lost, never silently made anew;
- ``probe``: a short-lived key written at start, to see a write reach the disk;
- ``settings``: a hash of the settings every process of the inbox shares (such
  as whether dispatch is paused), each with ``{name}:at``, when it was set;
- ``counters``: a hash of what the inbox counted (events received, handled,
  failed attempts, dead letters made, replays), each added to by the very script
  that makes the change it counts, and ``since_ms``, when counting began (written
  once, when the inbox is first opened, or anew after its data was lost).

What a 200 means is the *durability* chosen (``redis_durability``):

- ``fsync`` (the default): the event is in the append-only file on the Redis
  server's disk.  Redis 7.2 and newer confirm each write with ``WAITAOF 1 0``;
  older servers must run with ``appendonly yes`` and ``appendfsync always``,
  with which Redis fsyncs a write before it answers.  A server that can do
  neither is refused at start.
- ``replicas:N``: N replicas have the event (``WAIT N``), and the primary's
  disk too where it has ``appendonly yes`` and ``WAITAOF`` (7.2+).
- ``memory``: Redis has the event in memory; a restart or failover can lose it.

While Redis cannot be reached, each operation raises
:class:`~twilio_trigger._outage.OutageError` (the listener answers 503), and
the outage is told once when it begins and once when it ends.

An event waiting for its confirmation is *held*: workers leave it alone until
the listener confirms it, and one not confirmed in time is withdrawn, so that
an event answered 503 is never dispatched.

Every change of an event is one Lua script, so that it is atomic.  The scripts
of the events stored at the same time go to Redis in one pipeline, followed by
one confirmation for all of them (``inbox/_group.py``); so do the starts of the
entries of a claim, and the outcomes recorded at the same time.  Needs the
``redis`` package (with ``hiredis``, its parser in C): ``pip install
twilio-trigger[redis]``.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._logging import shown_url
from .._options import OPTIONS
from .._outage import Outage, watched
from ..stores.redis import connection_errors
from . import (
    Counters,
    Entry,
    Inbox,
    Search,
    SearchPage,
    State,
    UnreachableError,
    _redis_gates,
    _redis_lua,
    counters_of,
    decode_headers,
    encode_headers,
)
from ._group import Group
from ._redis_durability import Durability, NotStoredError
from ._search import check_page

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["NotStoredError", "RedisInbox"]

logger = logging.getLogger("twilio_trigger")

_GROUP = "workers"
_MAX_ERROR = 16_000
#: The most entries one search page looks at before it stops and says so.
SEARCH_SCAN = 20_000
_SEARCH_BATCH = 200  # entries read per round trip while searching
_BATCH = 500  # events at most per pipeline of writes
_PARALLEL_PUTS = 3  # pipelines of new events under way at once (each waits for its fsync)


class _DataLostError(Exception):
    """The inbox's marker or id counter is not what this process saw: data was lost."""

    def __init__(self, marker: str | None, seq: int | None) -> None:
        super().__init__(marker, seq)
        self.marker = marker  # '' when gone; None when only the consumer group is
        self.seq = seq


@dataclass
class _Look:
    """The inbox as this process last counted it, to tell what a loss took."""

    unfinished: int = 0
    dead: int = 0
    at: float | None = None  # time.time() of the count; None before the first


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


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


def _connect(url: str, read_timeout: float) -> Redis:
    try:
        from redis.asyncio import Redis
    except ImportError:
        raise ImportError(
            "a redis:// inbox needs the redis package: pip install 'twilio-trigger[redis]'"
        ) from None
    client: Redis = Redis.from_url(url, socket_timeout=read_timeout, socket_connect_timeout=5)
    return client


class RedisInbox(Inbox):
    """The inbox in the Redis at *url*, under *prefix*, shared by every process using them.

    *durability* (``fsync``, ``replicas:N`` or ``memory``) says when an event
    counts as stored; its confirmations wait up to *wait_timeout* seconds.
    """

    #: Whether what this process stores is acknowledged to Twilio, which makes
    #: :meth:`open` check that Redis keeps events as *durability* promises.
    #: Processes that only dispatch (``twilio-trigger worker``) set it to
    #: ``False``: they acknowledge nothing, and an outcome of theirs that Redis
    #: loses only makes an event run again.
    acknowledges: bool = True

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
        self._look = _Look()

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
        self._puts = Group(self._store, _PARALLEL_PUTS, _BATCH)
        self._releases = Group(self._release, 1, _BATCH)
        self._outcomes = Group(self._record, 1, _BATCH)

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        self._redis()
        return await self._scripts[name](keys=list(keys), args=list(args))

    # -- opening: the marker and the durability ----------------------------------
    async def open(self) -> int:
        seen, generation = self._epoch, self._generation
        marker, before, after, written = await self._adopt(replace=False)
        if seen and (marker != seen or before < self._known):
            # Lost while this inbox was closed (a listener stopped and started again).
            await self._recover(generation, seen, "" if written else marker, before)
        else:
            self._epoch, self._known = marker, max(self._known, after)
        if self.acknowledges:
            await self._durability.check(self._redis())
        return 0  # a dead worker's entries are claimed once idle, by whoever reads

    async def _adopt(self, *, replace: bool) -> tuple[str, int, int, bool]:
        reply = await self._script(
            "epoch",
            [self._marker, self._seq, self._stream, self._counters],
            [
                self._epoch,
                secrets.token_hex(8),
                self._known,
                "1" if replace else "0",
                _GROUP,
                round(time.time() * 1000),
            ],
        )
        return _text(reply[0]), int(reply[1]), int(reply[2]), int(reply[3]) == 1

    # -- losses ------------------------------------------------------------------
    async def _recover(
        self, generation: int, seen: str, marker: str | None, seq: int | None
    ) -> None:
        """Tell what Redis lost, and carry on with the inbox as it is now."""
        async with self._recovering:
            if self._generation != generation:
                return  # another task of this process saw the same loss
            replace = marker == seen and seq is not None and seq < self._known
            new, _, after, _ = await self._adopt(replace=replace)
            self._tell_loss(seen, marker, seq)
            self._epoch, self._known = new, max(self._known, after)
            self._generation += 1
            self._look = _Look(at=time.time())

    def _tell_loss(self, seen: str, marker: str | None, seq: int | None) -> None:
        if marker is None:
            logger.error(
                "the work queue of the Redis inbox %s is gone (its stream or consumer "
                "group was deleted) and is made anew: the events that were waiting in it "
                "stay pending without being dispatched; `twilio-trigger inbox list "
                "--state pending` shows them and `twilio-trigger inbox replay ID` queues "
                "one again",
                self.location,
            )
            return
        look = self._look
        counted = (
            "this process had not counted them yet"
            if look.at is None
            else f"{_plural(look.unfinished, 'event')} not yet dispatched when this "
            f"process last counted, {time.time() - look.at:.1f} s before"
        )
        advice = {
            "memory": "redis_durability=memory accepts this; fsync or replicas:N keep "
            "acknowledged events across a restart",
            "fsync": "redis_durability=fsync was to prevent this: check that this is the "
            "same server, with its append-only file and data folder",
        }.get(self.durability, "check that the failover promoted a replica that had the data")
        if marker == seen and seq is not None:
            logger.error(
                "the Redis inbox %s went back to an older copy of its data (its id counter "
                "went from %d to %d): the %s stored after that copy (ids %d to %d) are "
                "gone, and Twilio, told they were stored, will not send them again (%s); "
                "events of the copy handled since may run again; %s",
                self.location,
                self._known,
                seq,
                _plural(self._known - seq, "event"),
                seq + 1,
                self._known,
                counted,
                advice,
            )
            return
        why = (
            "Redis restarted without persistence, failed over to a replica that lacked "
            "it, or was flushed"
            if not marker
            else "another process found it gone and made the inbox anew"
        )
        dead = f"; {_plural(look.dead, 'dead letter')} too" if look.dead else ""
        logger.error(
            "the Redis inbox %s lost its data (%s): gone are %s (ids up to %d), which "
            "Twilio was told were stored and will not send again, and the record of the "
            "events handled before%s; %s",
            self.location,
            why,
            counted,
            self._known,
            dead,
            advice,
        )

    # -- storing -------------------------------------------------------------------
    @watched
    async def put(
        self,
        key: str,
        kind: str,
        sid: str | None,
        status: str | None,
        params: Sequence[tuple[str, str]],
        headers: Sequence[tuple[str, str]] = (),
    ) -> bool:
        for _ in range(3):
            generation, epoch = self._generation, self._epoch
            confirm = self._durability.confirm
            now = time.time()
            hold = repr(now + self._durability.hold) if confirm else ""
            keys = [
                self._key + key, self._seq, self._stream, self._all, self._marker, self._counters,
            ]  # fmt: skip
            args = [
                key, kind, sid or "", status or "", json.dumps(params, ensure_ascii=False),
                repr(now), self._retention_ms, self._entry, encode_headers(headers),
                epoch, self._known, hold, repr(now),
            ]  # fmt: skip
            self._redis()
            # Stored with the events that arrive meanwhile: one round trip, and one
            # confirmation, for all of them.
            reply, confirmations = await self._puts.add((keys, args))
            if isinstance(reply, Exception):
                raise reply
            outcome = int(reply[0])
            if outcome < 0:
                await self._recover(generation, epoch, _text(reply[1]), int(reply[2]))
                continue
            entry_id = int(reply[1])
            self._known = max(self._known, entry_id)
            failure = self._durability.unconfirmed(confirm, confirmations)
            if outcome == 0:  # a copy: the original's confirmation decides
                if int(reply[2]) == 1:
                    raise NotStoredError("a copy of this event is still waiting to be confirmed")
                if failure is not None:
                    raise NotStoredError(failure)
                return False
            if confirm:
                if failure is not None:
                    await self._withdraw(key, entry_id, _text(reply[2]))
                    raise NotStoredError(failure)
                released = await self._releases.add(entry_id)
                if isinstance(released, Exception):
                    raise released
            self._look.unfinished += 1
            return True
        raise NotStoredError("the inbox's data kept changing while the event was stored")

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

    async def _withdraw(self, key: str, entry_id: int, message: str) -> None:
        try:
            await self._script(
                "withdraw",
                [self._key + key, self._stream, self._retry, self._all, self._counters],
                [f"{self._entry}{entry_id}", entry_id, message],
            )
        except Exception as error:
            away = self.outage.catches(error)  # no traceback: told once, as an outage
            if away:
                self.outage.failed(error)
            logger.warning(
                "could not withdraw inbox entry %d, answered 503 as not confirmed: it will "
                "be dispatched once its hold lapses (at least once)",
                entry_id,
                exc_info=not away,
            )

    # -- working -------------------------------------------------------------------
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
        await self._redis().xclaim(self._stream, _GROUP, self._consumer, 0, held, justid=True)

    @watched
    async def claim(self, limit: int) -> list[Entry]:
        from redis.exceptions import ResponseError

        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        for _ in range(3):
            generation, epoch = self._generation, self._epoch
            try:
                return await self._claim(limit)
            except _DataLostError as changed:
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
            raise _DataLostError(_text(counted[1]), int(counted[2]))
        self._known = max(self._known, int(counted[1]))
        self._look = _Look(int(counted[2]), int(counted[3]), time.time())
        held = {message for message, _ in self._messages.values()}
        messages: dict[str, tuple[Any, dict[Any, Any]]] = {}

        def take(found: Any) -> None:
            for message in found:
                if _text(message[0]) not in held:
                    messages.setdefault(_text(message[0]), message)

        now = time.monotonic()
        if now >= self._reclaim_at:
            # Messages of a worker that went silent, taken over once idle for
            # claim_idle: looked for at most every quarter of it (and a second),
            # not at every claim, unless the last look found a full batch.
            reclaimed: Any = await client.xautoclaim(
                self._stream, _GROUP, self._consumer, self._idle_ms, "0-0", count=limit
            )
            take(reclaimed[1])
            full = len(reclaimed[1]) >= limit
            self._reclaim_at = now if full else now + min(1.0, self._idle_ms / 4000)
        if self._orphans:
            # A failure left messages read by this very consumer, and not held
            # (its start or its finish was cut off): take them again at once
            # rather than after claim_idle, since this consumer is alive.
            own: Any = await client.xreadgroup(
                _GROUP, self._consumer, {self._stream: "0"}, count=limit
            )
            for _, batch in own or []:
                take(batch)
            self._orphans = False
        if len(messages) < limit:
            read: Any = await client.xreadgroup(
                _GROUP, self._consumer, {self._stream: ">"}, count=limit - len(messages)
            )
            for _, batch in read or []:
                take(batch)
        return await self._start(client, list(messages.values()))

    async def _start(self, client: Redis, found: list[tuple[Any, dict[Any, Any]]]) -> list[Entry]:
        """Start the entries of the messages *found*, with one pipeline."""
        gone = [message for message, fields in found if not fields]  # deleted meanwhile
        live = [(message, fields) for message, fields in found if fields]
        now = repr(time.time())
        ids = [int(_text(fields.get(b"id", fields.get("id", 0)))) for _, fields in live]
        calls = [
            ([self._stream, self._retry], [self._entry, entry_id, now, _GROUP, message])
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
                self._messages[entry_id] = (_text(message), self._epoch)
                self._known = max(self._known, entry_id)
                entries.append(_entry(entry_id, flat))
        try:
            if gone:
                await client.xack(self._stream, _GROUP, *gone)
        except Exception as error:
            failure = failure or error
        if failure is not None:
            if not entries:
                raise failure
            # Those started must run: they are held, so nobody else takes them.
            self._orphans = True
        return entries

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
                    error[-_MAX_ERROR:], "" if state is State.PENDING else repr(now), _GROUP,
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

    @watched
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
                # Not the group's lag: a withdrawn event, deleted unread, stays in it.
                unread = await client.xlen(self._stream) - counts[State.RUNNING]
                waiting += max(0, unread)
        counts[State.PENDING] = waiting
        return counts

    @watched
    async def setting(self, name: str) -> str | None:
        value = await self._redis().hget(self._settings, name)
        return None if value is None else _text(value)

    @watched
    async def settings(self) -> dict[str, str]:
        found = await self._redis().hgetall(self._settings)
        # Each setting has a NAME:at field beside it, the time it was set.
        named = {_text(name): _text(value) for name, value in found.items()}
        return {name: value for name, value in named.items() if f"{name}:at" in named}

    @watched
    async def defer(self, entry_id: int, at: float, hold: str | None = None) -> None:
        message, epoch = self._messages.pop(entry_id, ("0-0", self._epoch))
        held = "" if hold is None else f"{self._gates_base}hold:{hold}"
        try:
            await self._script(
                "defer",
                [self._stream, self._retry, self._marker, held or self._marker],
                [message, f"{self._entry}{entry_id}", repr(at), _GROUP, epoch, held],
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
        return float(_text(wait))

    @watched
    async def enter(self, name: str, holder: str, limit: int, lease: float) -> bool:
        taken = await self._script(
            "enter", [f"{self._gates_base}places:{name}"], [holder, limit, lease]
        )
        return bool(taken)

    @watched
    async def leave(self, name: str, holder: str) -> None:
        await self._redis().zrem(f"{self._gates_base}places:{name}", holder)

    @watched
    async def set_setting(self, name: str, value: str) -> None:
        mapping: dict[Any, Any] = {name: value, f"{name}:at": repr(time.time())}
        await self._redis().hset(self._settings, mapping=mapping)

    @watched
    async def check(self) -> None:
        await self._redis().ping()
        if self.acknowledges:  # ready means events can be acknowledged as promised
            await self._durability.readiness(self._redis())

    @watched
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

    @watched
    async def search(
        self, search: Search, *, limit: int = 50, before_id: int | None = None
    ) -> SearchPage:
        """The entries *search* finds: Redis has no index on their fields, so the
        newest entries are read in batches and filtered here, up to
        :data:`SEARCH_SCAN` of them per page.  A page that stopped there says so
        (``scanned_all`` false), and its ``next_before_id`` goes on from there."""
        check_page(limit, before_id)
        client = self._redis()
        found: list[Entry] = []  # up to one more than asked: is there another page?
        scanned = 0
        below = "+inf" if before_id is None else f"({before_id}"  # scores are the ids
        cut = True
        while scanned < SEARCH_SCAN and len(found) <= limit:
            batch = min(_SEARCH_BATCH, SEARCH_SCAN - scanned)
            ids = [
                int(_text(raw))
                for raw in await client.zrevrangebyscore(self._all, below, "-inf", 0, batch)
            ]
            if not ids:
                cut = False
                break
            async with client.pipeline(transaction=False) as pipe:
                for entry_id in ids:
                    pipe.hgetall(f"{self._entry}{entry_id}")
                hashes: list[Any] = await pipe.execute()
            for entry_id, fields in zip(ids, hashes, strict=True):
                scanned += 1
                below = f"({entry_id}"
                if not fields:  # purged, or expired, meanwhile
                    continue
                entry = _entry(entry_id, [item for pair in fields.items() for item in pair])
                if search.matches(entry):
                    found.append(entry)
                    if len(found) > limit:
                        break
        if len(found) >= limit:  # a full page: whatever is further back, the next one's
            page = tuple(found[:limit])
            return SearchPage(page, page[-1].id if len(found) > limit or cut else None)
        if cut:  # stopped looking: the next page goes on from the last entry looked at
            return SearchPage(tuple(found), int(below[1:]), scanned_all=False)
        return SearchPage(tuple(found), None)

    @watched
    async def get(self, entry_id: int) -> Entry | None:
        found: Any = await self._redis().hgetall(f"{self._entry}{entry_id}")
        if not found:
            return None
        return _entry(entry_id, [item for pair in found.items() for item in pair])

    @watched
    async def replay(
        self, entry_ids: Sequence[int] | None = None, *, only: State | None = None
    ) -> int:
        client = self._redis()
        if entry_ids is None:
            entry_ids = [int(_text(i)) for i in await client.zrange(self._dead, 0, -1)]
            only = None
        count = 0
        for entry_id in entry_ids:
            count += int(
                await self._script(
                    "replay",
                    [self._stream, self._retry, self._done, self._dead, self._counters],
                    [self._entry, entry_id, repr(time.time()), "" if only is None else only.value],
                )
            )
        return count

    @watched
    async def counters(self) -> Counters:
        async with self._redis().pipeline(transaction=False) as pipe:
            # Opening the inbox wrote when counting began; this is for data lost
            # since and not yet noticed: counting begins again now.
            pipe.hsetnx(self._counters, "since_ms", round(time.time() * 1000))
            pipe.hgetall(self._counters)
            _, found = await pipe.execute()
        counts = {_text(name): int(_text(value)) for name, value in found.items()}
        return counters_of(counts, counts.get("since_ms", 0) / 1000)

    @watched
    async def purge(self, state: State, older_than: float) -> int:
        client = self._redis()
        source = {State.DONE: self._done, State.DEAD: self._dead}.get(state)
        if source is None:
            return 0
        found: Any = await client.zrangebyscore(source, "-inf", time.time() - older_than)
        ids = [_text(raw) for raw in found]
        if state is State.DEAD:  # stream ids start with their time in ms
            # The millisecond of the cutoff counts as reached: a letter told in it
            # was told before the cutoff, or within a millisecond after it.
            cutoff_ms = int((time.time() - older_than) * 1000)
            await client.xtrim(self._dead_letters, minid=f"{cutoff_ms + 1}-0", approximate=False)
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
        await self._puts.finish()
        await self._releases.finish()
        await self._outcomes.finish()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
