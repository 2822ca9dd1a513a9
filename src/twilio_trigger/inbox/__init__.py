"""The durable inbox: verified events are written here before Twilio gets its 200.

Workers in the listener's process take due events from the inbox, dispatch
them, and record the outcome: done, to be retried at a later time, or dead
(a dead letter, kept with its last error until replayed or purged).  An event
that was being handled when the process died is handled again when the inbox
is opened next: delivery is *at least once*.

:class:`Inbox` is the interface; ``sqlite:///path/events.db`` selects the
embedded SQLite implementation, ``redis://`` the Redis one and ``postgresql://``
the PostgreSQL one.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from .._logging import shown_url
from .._option_parsers import sqlite_inbox_path
from .._options import OPTIONS
from ._model import (
    COLUMNS,
    PAUSED,
    Counters,
    Entry,
    NotStoredError,
    State,
    UnreachableError,
    counters_of,
    decode_headers,
    encode_headers,
    entry_of_row,
)
from ._search import FAILED, MAX_LIMIT, Search, SearchPage, check_page

if TYPE_CHECKING:
    from .._transaction import TransactionSource

__all__ = [
    "COLUMNS",
    "PAUSED",
    "Counters",
    "Entry",
    "Inbox",
    "NotStoredError",
    "Search",
    "SearchPage",
    "State",
    "UnreachableError",
    "counters_of",
    "decode_headers",
    "encode_headers",
    "entry_of_row",
    "open_inbox",
]


class Inbox(abc.ABC):
    """A durable queue of events with retries and dead letters."""

    #: Where the inbox lives, for logs and the command line (no secrets in it).
    location: str
    #: Whether other processes' workers take entries from it too.  A worker of an
    #: inbox that is not shared claims entries ahead of its free places: nobody
    #: else could have run them meanwhile.
    shared: ClassVar[bool] = True

    @abc.abstractmethod
    async def open(self) -> int:
        """Make the inbox ready; return how many interrupted entries were made pending again."""

    @abc.abstractmethod
    async def put(
        self, key: str, kind: str, sid: str | None, status: str | None,
        params: Sequence[tuple[str, str]], headers: Sequence[tuple[str, str]] = (),
    ) -> bool:  # fmt: skip
        """Store an event durably, with some of its request's *headers*.

        ``False`` when an entry with *key* exists already.
        """

    @abc.abstractmethod
    async def claim(self, limit: int) -> list[Entry]:
        """Take up to *limit* due pending entries for dispatch (they become running)."""

    @abc.abstractmethod
    async def succeed(self, entry_id: int) -> None:
        """The entry's dispatch succeeded."""

    @abc.abstractmethod
    async def retry(self, entry_id: int, error: str, at: float) -> None:
        """The entry's dispatch failed; try again at *at*."""

    @abc.abstractmethod
    async def bury(self, entry_id: int, error: str) -> None:
        """The entry's last attempt failed: keep it as a dead letter."""

    @abc.abstractmethod
    async def next_due(self) -> float | None:
        """When the earliest pending entry is due, or ``None`` when none is pending."""

    @abc.abstractmethod
    async def stats(self) -> dict[State, int]:
        """How many entries are in each state."""

    async def backlog(self) -> dict[State, int]:
        """How many entries are pending, running or dead: :meth:`stats` without the
        done ones, which may be many and costly to count."""
        counts = await self.stats()
        del counts[State.DONE]
        return counts

    async def counters(self) -> Counters:
        """What this inbox has counted (see :class:`Counters`), shared by all its
        processes and kept across restarts.  ``NotImplementedError`` from an inbox
        that keeps no counters."""
        raise NotImplementedError(f"{type(self).__name__} keeps no counters")

    @abc.abstractmethod
    async def setting(self, name: str) -> str | None:
        """The value of the setting *name* kept in the inbox (``None``: never set),
        the same for every process of this inbox."""

    @abc.abstractmethod
    async def set_setting(self, name: str, value: str) -> None:
        """Keep *value* as the setting *name*, for every process of this inbox and
        across restarts."""

    @abc.abstractmethod
    async def settings(self) -> dict[str, str]:
        """Every setting kept in the inbox, by name: one read for all of them."""

    async def paused(self) -> bool:
        """Whether dispatch is paused: events are still stored and acknowledged,
        but no worker of this inbox claims any until it is resumed."""
        return await self.setting(PAUSED) == "1"

    async def set_paused(self, flag: bool) -> None:
        """Pause dispatch (*flag* true) or resume it, for every process of this inbox;
        workers notice within their poll interval."""
        await self.set_setting(PAUSED, "1" if flag else "0")

    @abc.abstractmethod
    async def defer(self, entry_id: int, at: float, hold: str | None = None) -> None:
        """Give back a claimed entry without counting its attempt: it is pending
        again, due at *at*, its last error unchanged (a callback held back by
        its limits or its open breaker).  With *hold*, the entry is remembered
        under that name, for :meth:`release` to make it due sooner."""

    @abc.abstractmethod
    async def release(self, hold: str) -> int:
        """Make the entries given back under *hold* (and still pending) due now,
        and forget them: how many were (a breaker closed before its time)."""

    @abc.abstractmethod
    async def pace(self, name: str, interval: float, burst: int) -> float:
        """One start of the stream *name*, paced to one per *interval* seconds on
        average with up to *burst* at once (a token bucket, kept as the time
        its next token is due): ``0.0`` when it may start now, and it is
        counted; else the seconds until it may, and nothing is counted.

        Shared by every process of the inbox (on the database's clock for
        Redis and PostgreSQL).
        """

    @abc.abstractmethod
    async def enter(self, name: str, holder: str, limit: int, lease: float) -> bool:
        """Take one of the *limit* places of *name* for *holder* for *lease*
        seconds (taking it again renews it): whether it was free.  A place
        left more than *lease* seconds ago counts as free (its process died).
        Shared as :meth:`pace` is."""

    @abc.abstractmethod
    async def leave(self, name: str, holder: str) -> None:
        """Give back the place of *name* that *holder* took."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise when the inbox cannot take events now (the listener's readiness)."""

    @abc.abstractmethod
    async def entries(self, state: State | None = None, limit: int = 50) -> list[Entry]:
        """The most recent entries (of *state*), newest first."""

    @abc.abstractmethod
    async def search(
        self, search: Search, *, limit: int = 50, before_id: int | None = None
    ) -> SearchPage:
        """Up to *limit* (at most 500) entries that *search* finds, newest first, of
        ids below *before_id* when given: the next page asks for those before the
        :attr:`SearchPage.next_before_id` of the last.  ``ValueError`` for a bad
        *limit* or *before_id*."""

    @abc.abstractmethod
    async def get(self, entry_id: int) -> Entry | None:
        """One entry by its id."""

    @abc.abstractmethod
    async def replay(
        self, entry_ids: Sequence[int] | None = None, *, only: State | None = None
    ) -> int:
        """Make entries pending again with fresh attempts: the given ones (those of
        them in state *only*, when given; never running ones), or every dead letter."""

    async def count_matching(self, search: Search) -> int:
        """How many entries :meth:`replay_matching` would replay for *search* now:
        the number to show before asking for a confirmation.

        The entries replayed are the dead letters *search* finds; or, when its
        outcome is :attr:`State.DONE` (asked for explicitly, as their callbacks
        run again), the done ones.  Pending and running entries are never
        replayed: with either outcome, the count is 0.
        """
        state, narrowed = _replayable(search)
        if state is None:
            return 0
        count = 0
        async for page in self._pages(narrowed, MAX_LIMIT, None):
            count += sum(1 for entry in page.entries if entry.state is state)
        return count

    async def replay_matching(
        self,
        search: Search,
        *,
        batch: int = 500,  # MAX_LIMIT, the most a page holds
        progress: Callable[[int, int], object] | None = None,
    ) -> int:
        """Replay the entries *search* finds (those :meth:`count_matching` counts):
        make them pending with fresh attempts, *batch* (1 to 500) at a time;
        return how many were replayed.

        The set is fixed when it starts: entries received meanwhile are left
        alone, and an entry that left the replayed state meanwhile (taken by a
        worker, replayed by someone else) is skipped.  After each batch,
        ``progress(replayed_so_far, total)`` is called (awaited when it returns
        an awaitable); *total* is the count at the start, raised if more were
        replayed.  ``ValueError`` for a bad *batch*.
        """
        check_page(batch, None)
        state, narrowed = _replayable(search)
        if state is None:
            return 0
        total, newest = 0, 0
        async for page in self._pages(narrowed, MAX_LIMIT, None):
            for entry in page.entries:
                newest = max(newest, entry.id)
                total += entry.state is state
        if total == 0:
            return 0
        done = 0
        async for page in self._pages(narrowed, batch, newest + 1):
            ids = [entry.id for entry in page.entries if entry.state is state]
            if not ids:
                continue
            done += await self.replay(ids, only=state)
            if progress is not None:
                told = progress(done, max(done, total))
                if inspect.isawaitable(told):
                    await told
        return done

    async def _pages(
        self, search: Search, limit: int, before_id: int | None
    ) -> AsyncIterator[SearchPage]:
        """Every page of *search*, newest first, from *before_id*."""
        while True:
            page = await self.search(search, limit=limit, before_id=before_id)
            yield page
            if page.next_before_id is None:
                return
            before_id = page.next_before_id

    @abc.abstractmethod
    async def purge(self, state: State, older_than: float) -> int:
        """Delete entries of *state* finished more than *older_than* seconds ago."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release the inbox."""

    def watch(self, wake: Callable[[], None]) -> None:  # noqa: B027 - most inboxes cannot
        """Call *wake* when another process stores an event or makes one due."""

    def transaction_source(self, entry_id: int | None) -> TransactionSource | None:
        """Where a callback that takes a transaction gets it, for the entry *entry_id*
        (``None``: an event dispatched inline).  ``None`` when this inbox has none."""
        return None


def open_inbox(
    url: str,
    *,
    prefix: str = OPTIONS.redis_prefix.default,
    claim_idle: float = OPTIONS.claim_idle.default,
    retention: float = OPTIONS.dedup_ttl.default,
    file_mode: int = OPTIONS.file_mode.default,
    durability: str = OPTIONS.redis_durability.default,
    wait_timeout: float = OPTIONS.redis_wait_timeout.default,
    schema: str = OPTIONS.postgres_schema.default,
    migrate: bool = OPTIONS.postgres_migrate.default,
    connections: int = 16,
) -> Inbox:
    """The inbox a URL names.

    ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: a SQLite
    file, for one process, created with *file_mode* in a folder that must exist
    (``?create_folders=1`` after the path: missing folders are created too).
    ``redis://host:6379/0`` (or ``rediss://``): Redis, shared by every listener
    and worker that names it with the same *prefix*; a running entry whose
    worker has been silent for *claim_idle* seconds is taken over by another;
    *durability* (``fsync``, ``replicas:N`` or ``memory``) says when an event
    counts as stored, confirmed within *wait_timeout* seconds.
    ``postgresql://user@host:5432/db``: PostgreSQL, shared by every listener and
    worker that names it with the same *schema*, whose tables are created or
    upgraded at start when *migrate*; leases of *claim_idle* seconds as with
    Redis; up to *connections* connections per process.
    """
    scheme, separator, rest = url.partition("://")
    sqlite = sqlite_inbox_path(url)  # ValueError for a query it does not take
    if sqlite is not None:
        from .sqlite import SQLiteInbox

        path, create_folders = sqlite
        return SQLiteInbox(path, file_mode=file_mode, create_folders=create_folders)
    if scheme in ("redis", "rediss") and separator and rest:
        from .redis import RedisInbox

        return RedisInbox(
            url, prefix=prefix, claim_idle=claim_idle, retention=retention,
            durability=durability, wait_timeout=wait_timeout,
        )  # fmt: skip
    if scheme in ("postgresql", "postgres") and separator:
        from .postgres import PostgresInbox

        return PostgresInbox(
            url, schema=schema, claim_idle=claim_idle, migrate=migrate, connections=connections
        )
    raise ValueError(
        f"inbox must be a URL such as sqlite:///events.db (relative), "
        f"sqlite:////var/lib/app/events.db (absolute), redis://127.0.0.1:6379/0 or "
        f"postgresql://user@127.0.0.1:5432/db, got {shown_url(url)!r}"
    )


def _replayable(search: Search) -> tuple[State | None, Search]:
    """The state of the entries a replay of *search* makes pending (``None``: none),
    and the search narrowed to it where a backend can filter on it."""
    if search.outcome is None or search.outcome is State.DEAD:
        return State.DEAD, dataclasses.replace(search, outcome=State.DEAD)
    if search.outcome is State.DONE:
        return State.DONE, search
    if search.outcome == FAILED:  # the dead ones among them: filtered page by page
        return State.DEAD, search
    return None, search
