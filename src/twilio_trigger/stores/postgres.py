"""Stores in PostgreSQL, shared by every listener that names the same database and schema.

- ``deliveries``: a row per delivery key, ``done`` (kept for the dedup ttl, with
  the reply it was answered with) or claimed by one listener (with a lease, so
  that a listener that died while handling it does not block it for ever);
- ``statuses``: a row per SID with its most advanced status, its rank and the
  status before it, kept for the dedup ttl; placed by the function
  ``observe`` in one round trip, with the rules of the in-memory store.

Each operation is one statement, atomic across listeners.  Rows past their
time are deleted in the background, in bounded batches.  Needs ``pip install
'twilio-trigger[postgres]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .._core.order import Standing
from .._logging import shown_url
from .._postgres import Database, in_transaction
from .._postgres_schema import prepare, quoted
from ..inbox import UnreachableError
from . import Claim, DeliveryStore, StatusStore

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from .._core.events import TwilioEvent
    from .._transaction import TransactionalCallback

__all__ = ["PostgresDeliveryStore", "PostgresStatusStore", "StoreDatabase"]

logger = logging.getLogger("twilio_trigger")

_POOL = "twilio-trigger-store"
_STATEMENT_TIMEOUT = 5.0
_EXPIRE_EVERY = 60.0  # seconds between removals of rows past their time
_EXPIRE_BATCH = 1_000  # rows per delete


class StoreDatabase:
    """The database both stores of a listener use: one pool, its tables prepared
    once, rows past their time deleted in the background."""

    def __init__(self, url: str, *, schema: str, migrate: bool, connections: int = 8) -> None:
        self.schema = schema
        self.s = quoted(schema)
        self._migrate = migrate
        self._db = Database(
            url,
            what="PostgreSQL store",
            pool=_POOL,
            max_size=connections,
            statement_timeout=_STATEMENT_TIMEOUT,
        )
        self._prepared = False
        self._preparing: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._expiring: asyncio.Task[None] | None = None
        self._users = 0

    def use(self) -> None:
        self._users += 1

    @contextlib.asynccontextmanager
    async def connection(self, *, timed: bool = True) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection with the tables ready (see :meth:`Database.connection`)."""
        async with self._db.connection(timed=timed) as connection:
            if not self._prepared:
                await self._prepare(connection)
            yield connection

    async def _prepare(self, connection: AsyncConnection[Any]) -> None:
        preparing = self._preparing.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with preparing:  # once, not once per first request
            if not self._prepared:
                location = shown_url(self._db.url)
                await prepare(connection, self.schema, allowed=self._migrate, location=location)
                self._prepared = True
                self._start_expiry()

    async def fetch(self, query: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        if not self._prepared:
            async with self.connection():
                pass
        rows = await self._db.execute(query, args)
        return rows[0] if rows else None

    def _start_expiry(self) -> None:
        if self._expiring is None or self._expiring.done():
            self._expiring = asyncio.ensure_future(self._expire_forever())

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(_EXPIRE_EVERY)
            try:
                await self.expire()
            except UnreachableError:
                continue  # told already
            except Exception:
                logger.warning("could not delete the store's old rows", exc_info=True)

    async def expire(self, now: float | None = None) -> int:
        """Delete rows past their time, a bounded batch per statement; return how many."""
        moment = time.time() if now is None else now
        total = 0
        for table, key in (("deliveries", "key"), ("statuses", "key")):
            while True:
                row = await self.fetch(
                    f"WITH gone AS (DELETE FROM {self.s}.{table} WHERE {key} IN "
                    f"(SELECT {key} FROM {self.s}.{table} WHERE expires_at <= %s LIMIT %s) "
                    f"RETURNING 1) SELECT count(*) FROM gone",
                    (moment, _EXPIRE_BATCH),
                )
                count = 0 if row is None else int(row[0])
                total += count
                if count < _EXPIRE_BATCH:
                    break
                await asyncio.sleep(0)  # let requests through between batches
        return total

    async def check(self) -> None:
        await self.fetch("SELECT 1")

    async def open(self) -> None:
        """Prepare the tables now (at start), rather than at the first request:
        tables at the wrong version stop the listener from starting."""
        await self.check()

    async def close(self) -> None:
        self._users -= 1
        if self._users > 0:
            return
        if self._expiring is not None:
            self._expiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiring
            self._expiring = None
        await self._db.close()


class _PlainTransactions:
    """Transactions for callbacks dispatched inline, from the store's pool."""

    __slots__ = ("_database",)

    def __init__(self, database: StoreDatabase) -> None:
        self._database = database

    async def run(
        self,
        function: TransactionalCallback,
        event: TwilioEvent,
        succeeded: Callable[[object], bool],
    ) -> object:
        database = self._database

        def untimed() -> contextlib.AbstractAsyncContextManager[AsyncConnection[Any]]:
            return database.connection(timed=False)

        result, _ = await in_transaction(untimed, function, event, succeeded)
        return result


class PostgresDeliveryStore(DeliveryStore):
    """Handled deliveries, in PostgreSQL, for *ttl* seconds; claims lapse after *lease*."""

    def __init__(self, database: StoreDatabase, *, ttl: float, lease: float) -> None:
        database.use()
        self._db = database
        self._ttl = ttl
        self._lease = lease
        table = f"{database.s}.deliveries"
        self._claim_sql = (
            f"WITH taken AS (INSERT INTO {table} AS d (key, done, owner, reply, expires_at) "
            f"VALUES (%s, false, %s, NULL, %s) ON CONFLICT (key) DO UPDATE SET done = false, "
            f"owner = EXCLUDED.owner, reply = NULL, expires_at = EXCLUDED.expires_at "
            f"WHERE d.expires_at <= %s RETURNING 1) "
            f"SELECT (SELECT count(*) FROM taken), (SELECT done FROM {table} WHERE key = %s)"
        )
        # An upsert: the claim's row may be gone (its lease lapsed and it expired).
        self._complete_sql = (
            f"INSERT INTO {table} (key, done, owner, reply, expires_at) "
            f"VALUES (%s, true, NULL, %s, %s) ON CONFLICT (key) DO UPDATE SET done = true, "
            f"owner = NULL, reply = EXCLUDED.reply, expires_at = EXCLUDED.expires_at"
        )
        self._reply_sql = f"SELECT reply FROM {table} WHERE key = %s AND done AND expires_at > %s"
        self._release_sql = f"DELETE FROM {table} WHERE key = %s AND owner = %s AND NOT done"
        self._extend_sql = (
            f"UPDATE {table} SET expires_at = %s WHERE key = %s AND owner = %s AND NOT done"
        )
        self._owners: dict[str, str] = {}  # claims this store holds: key -> owner token
        self._holding: set[asyncio.Task[None]] = set()

    async def claim(self, key: str) -> Claim:
        owner = secrets.token_hex(8)
        now = time.time()
        row = await self._db.fetch(self._claim_sql, (key, owner, now + self._lease, now, key))
        assert row is not None
        if int(row[0]) == 1:
            self._owners[key] = owner
            return Claim.ACQUIRED
        # Not visible: a copy committed by another listener meanwhile, still busy.
        return Claim.DONE if row[1] is True else Claim.BUSY

    async def complete(self, key: str, reply: bytes | None = None) -> None:
        self._owners.pop(key, None)
        await self._db.fetch(self._complete_sql, (key, reply, time.time() + self._ttl))

    async def reply_of(self, key: str) -> bytes | None:
        row = await self._db.fetch(self._reply_sql, (key, time.time()))
        return None if row is None or row[0] is None else bytes(row[0])

    async def release(self, key: str) -> None:
        owner = self._owners.pop(key, None)
        if owner is not None:
            await self._db.fetch(self._release_sql, (key, owner))

    def hold(self, key: str, until: asyncio.Future[Any]) -> None:
        """Keep the claim on *key* alive until *until* is done (a late sync callback)."""

        async def renew() -> None:
            owner = self._owners.get(key)
            while owner is not None and not until.done():
                await asyncio.wait([until], timeout=self._lease / 3)
                if until.done():
                    return
                try:
                    await self._db.fetch(self._extend_sql, (time.time() + self._lease, key, owner))
                except Exception:  # the database away: the lease may lapse; try again
                    logger.warning("could not extend the claim on %s", key, exc_info=True)

        task = asyncio.ensure_future(renew())
        self._holding.add(task)
        task.add_done_callback(self._holding.discard)

    def transaction_source(self) -> _PlainTransactions:
        """Where a callback dispatched inline gets its transaction."""
        return _PlainTransactions(self._db)

    async def open(self) -> None:
        await self._db.open()

    async def check(self) -> None:
        await self._db.check()

    async def close(self) -> None:
        await self._db.close()


class PostgresStatusStore(StatusStore):
    """Each SID's most advanced status, in PostgreSQL, for *ttl* seconds."""

    def __init__(self, database: StoreDatabase, *, ttl: float) -> None:
        database.use()
        self._db = database
        self._ttl = ttl
        self._sql = f"SELECT previous, stale FROM {database.s}.observe(%s, %s, %s, %s, %s)"

    async def observe(self, key: str, status: str, rank: int) -> Standing:
        now = time.time()
        # A text column holds no NUL: a SID or status with one (not Twilio's) is
        # kept with U+FFFD in its place.
        key, status = key.replace("\x00", "\ufffd"), status.replace("\x00", "\ufffd")
        row = await self._db.fetch(self._sql, (key, status, rank, now + self._ttl, now))
        assert row is not None
        return Standing(row[0], bool(row[1]))

    def transaction_source(self) -> _PlainTransactions:
        """Where a callback dispatched inline gets its transaction (without
        duplicate detection, this store is the listener's only PostgreSQL)."""
        return _PlainTransactions(self._db)

    async def open(self) -> None:
        await self._db.open()

    async def check(self) -> None:
        await self._db.check()

    async def close(self) -> None:
        await self._db.close()
