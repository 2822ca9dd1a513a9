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

The inbox is put together from parts, each in a module of its own, all on the
state and the scripts of ``inbox/_redis_core.py`` (the keys above, the client of
each event loop, scripts by digest in pipelines, the grouped writes):
``_redis_work.py``, the workers' side (claim, outcomes, paces and places);
``_redis_admin.py``, the operators' side (listing, searching, replaying,
purging, counters, settings); ``_redis_loss.py``, the ERROR that tells what a
loss took.  This module stores events: opening, the put and its confirmation,
readiness and closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence

from .._outage import watched
from . import encode_headers
from ._redis_admin import SEARCH_SCAN as SEARCH_SCAN  # its name here too; read there
from ._redis_admin import RedisAdmin
from ._redis_core import text
from ._redis_durability import NotStoredError
from ._redis_work import RedisWork

__all__ = ["NotStoredError", "RedisInbox"]

logger = logging.getLogger("twilio_trigger")


class RedisInbox(RedisWork, RedisAdmin):
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
                await self._recover(generation, epoch, text(reply[1]), int(reply[2]))
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
                    await self._withdraw(key, entry_id, text(reply[2]))
                    raise NotStoredError(failure)
                released = await self._releases.add(entry_id)
                if isinstance(released, Exception):
                    raise released
            self._look.unfinished += 1
            return True
        raise NotStoredError("the inbox's data kept changing while the event was stored")

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

    # -- readiness and closing -------------------------------------------------------
    @watched
    async def check(self) -> None:
        await self._redis().ping()
        if self.acknowledges:  # ready means events can be acknowledged as promised
            await self._durability.readiness(self._redis())

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
