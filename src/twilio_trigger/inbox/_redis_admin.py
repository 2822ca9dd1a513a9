"""The operators' side of the Redis inbox: what the command line and the inspector use.

:class:`RedisAdmin` counts the entries by state, lists, searches and reads them,
replays and purges them, reads the counters, and reads and writes the settings
every process of the inbox shares (such as whether dispatch is paused, which
workers read too).  None of it is on the path of an event: each call is a few
commands or scripts, on the keys :class:`~twilio_trigger.inbox._redis_core.RedisCore`
names.  Redis has no index on an entry's fields, so a search reads the newest
entries in batches and filters them here, up to :data:`SEARCH_SCAN` per page.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .._outage import watched
from . import Counters, Entry, Search, SearchPage, State, counters_of
from ._redis_core import GROUP, RedisCore, entry_of_fields, text
from ._search import check_page

__all__ = ["SEARCH_SCAN", "RedisAdmin"]

#: The most entries one search page looks at before it stops and says so.
SEARCH_SCAN = 20_000
_SEARCH_BATCH = 200  # entries read per round trip while searching


class RedisAdmin(RedisCore):
    """The operators' methods of a Redis inbox (see the module)."""

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
            if text(group.get("name", b"")) == GROUP:
                counts[State.RUNNING] = int(group.get("pending", 0))
                # Not the group's lag: a withdrawn event, deleted unread, stays in it.
                unread = await client.xlen(self._stream) - counts[State.RUNNING]
                waiting += max(0, unread)
        counts[State.PENDING] = waiting
        return counts

    @watched
    async def setting(self, name: str) -> str | None:
        value = await self._redis().hget(self._settings, name)
        return None if value is None else text(value)

    @watched
    async def settings(self) -> dict[str, str]:
        found = await self._redis().hgetall(self._settings)
        # Each setting has a NAME:at field beside it, the time it was set.
        named = {text(name): text(value) for name, value in found.items()}
        return {name: value for name, value in named.items() if f"{name}:at" in named}

    @watched
    async def set_setting(self, name: str, value: str) -> None:
        mapping: dict[Any, Any] = {name: value, f"{name}:at": repr(time.time())}
        await self._redis().hset(self._settings, mapping=mapping)

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
                entry = await self.get(int(text(raw)))
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
                int(text(raw))
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
                entry = entry_of_fields(
                    entry_id, [item for pair in fields.items() for item in pair]
                )
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
        return entry_of_fields(entry_id, [item for pair in found.items() for item in pair])

    @watched
    async def replay(
        self, entry_ids: Sequence[int] | None = None, *, only: State | None = None
    ) -> int:
        client = self._redis()
        if entry_ids is None:
            entry_ids = [int(text(i)) for i in await client.zrange(self._dead, 0, -1)]
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
        counts = {text(name): int(text(value)) for name, value in found.items()}
        return counters_of(counts, counts.get("since_ms", 0) / 1000)

    @watched
    async def purge(self, state: State, older_than: float) -> int:
        client = self._redis()
        source = {State.DONE: self._done, State.DEAD: self._dead}.get(state)
        if source is None:
            return 0
        found: Any = await client.zrangebyscore(source, "-inf", time.time() - older_than)
        ids = [text(raw) for raw in found]
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
