"""What the PostgreSQL inbox and stores share: connections, a callback's
transaction, and telling an outage once (their tables are :mod:`._postgres_schema`'s).

Connections come from a psycopg pool per inbox or store, in autocommit mode:
each statement is its own transaction unless a transaction is opened.  Needs
the ``psycopg`` and ``psycopg-pool`` packages: ``pip install
'twilio-trigger[postgres]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ._logging import printable
from ._outage import OUTAGE_WAIT
from ._outage import Outage as _Outage

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    from ._core.events import TwilioEvent
    from ._transaction import TransactionalCallback

__all__ = [
    "Database",
    "Outage",
    "TransactionAbortedError",
    "connection_errors",
    "in_transaction",
    "is_postgres_url",
    "make_pool",
]

logger = logging.getLogger("twilio_trigger")

#: Seconds to wait for a connection from the pool before the answer is 503.
CONNECTION_WAIT = 3.0
#: Seconds a connection attempt may take (a host that does not answer).
CONNECT_TIMEOUT = 5
#: Seconds a pool retries a connection that failed, on psycopg_pool's own clock,
#: before it leaves the next attempt to the next request for a connection.
RECONNECT_TIMEOUT = 1.0


def is_postgres_url(url: str) -> bool:
    """Whether *url* names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    scheme, separator, _ = url.partition("://")
    return bool(separator) and scheme in ("postgresql", "postgres")


def connection_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean the database cannot be reached (rather than a bug)."""
    import psycopg

    return (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError)


class _PoolLog(logging.Filter):
    """Keeps psycopg_pool's lines about this package's pools out of the log below
    ERROR (a line per failed connection attempt, with the server's message over
    several lines, every few seconds of an outage; one per connection found
    broken when the database restarts), and remembers why connecting failed:
    :class:`Outage` tells the outage once, with that reason."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[str, str] = {}
        #: The connections this package's pools made.
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()

    def _ours(self, thing: object) -> bool:
        if isinstance(thing, str):
            return thing.startswith(_POOL_PREFIX)
        try:
            if thing in self.connections:
                return True
        except TypeError:  # not hashable, not weakly referable: not a connection
            return False
        pool = getattr(thing, "pool", None)  # a pool's maintenance task: a weak reference
        pool = pool() if callable(pool) else pool
        return str(getattr(pool, "name", "")).startswith(_POOL_PREFIX)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or not any(self._ours(arg) for arg in args):
            return True
        if len(args) > 1 and isinstance(args[0], str) and isinstance(args[1], BaseException):
            self.reasons[args[0]] = " ".join(str(args[1]).split())[:300]
        return record.levelno >= logging.ERROR

    async def configure(self, connection: Any) -> None:
        """Given to each pool: remembers the connections it makes."""
        self.connections.add(connection)


_POOL_PREFIX = "twilio-trigger-"
_pool_log = _PoolLog()


class _CancelLog(logging.Filter):
    """Keeps psycopg's lines about a query it could not cancel out of the log
    while an outage of this package's databases is told (a server that stopped
    answering gives one or two per statement under way: a dozen an outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.outages: weakref.WeakSet[Outage] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or not isinstance(record.msg, str):
            return True
        if not record.msg.startswith(("query cancellation", "query not terminated")):
            return True
        return not any(outage.ongoing for outage in list(self.outages))


_cancel_log = _CancelLog()


def make_pool(url: str, *, max_size: int, name: str) -> AsyncConnectionPool[Any]:
    """A closed pool of autocommit connections to *url*; open it on the loop that uses it.

    *name* starts with ``twilio-trigger-``: its failed connection attempts are
    told by :class:`Outage`, once, rather than by psycopg_pool each time.

    psycopg_pool retries a failed connection with a doubling delay (1, 2, 4, 8 s
    ...): left so, a database back after an outage of some seconds was answered
    503 for as long again (about 7 s in an audit), the pool waiting for its next
    attempt.  Given up after :data:`RECONNECT_TIMEOUT`, the slot is free, and the
    next request for a connection tries at once (one attempt at a time per pool),
    so a database that is back serves the first request that asks for it.
    """
    try:
        from psycopg_pool import AsyncConnectionPool
    except ImportError:
        raise ImportError(
            "a postgresql:// inbox or store needs psycopg: pip install 'twilio-trigger[postgres]'"
        ) from None
    assert name.startswith(_POOL_PREFIX)
    pool_logger = logging.getLogger("psycopg.pool")
    if _pool_log not in pool_logger.filters:
        pool_logger.addFilter(_pool_log)

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        timeout=CONNECTION_WAIT,
        reconnect_timeout=RECONNECT_TIMEOUT,
        name=name,
        configure=_pool_log.configure,
        kwargs={
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "twilio-trigger",
        },
    )
    return pool


class Outage(_Outage):
    """An outage of the PostgreSQL database, told once when it begins and once
    when it ends (:class:`~twilio_trigger._outage.Outage`), with the reason the
    pool's connection attempts failed."""

    def __init__(self, what: str, url: str, pool: str) -> None:
        super().__init__(what, url, connection_errors)
        self._pool = pool

    def reason(self, error: BaseException) -> str:
        """Why *error* happened, on one line: a pool's time-out says why no
        connection could be made."""
        if type(error).__name__ == "PoolTimeout" and self._pool in _pool_log.reasons:
            return printable(" ".join(_pool_log.reasons[self._pool].split())[:300])
        return super().reason(error)


class _Undo(Exception):  # noqa: N818 - a signal, not an error
    """Leaves a callback's transaction with a rollback, keeping what it returned."""

    def __init__(self, result: object) -> None:
        super().__init__()
        self.result = result


class TransactionAbortedError(Exception):
    """The callback returned, but its transaction had failed: PostgreSQL would
    roll back its commit, so none of its writes were kept."""


async def in_transaction(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]],
    function: TransactionalCallback,
    event: TwilioEvent,
    succeeded: Callable[[object], bool],
    *,
    before: Callable[[AsyncConnection[Any]], Awaitable[None]] | None = None,
    after: Callable[[AsyncConnection[Any]], Awaitable[None]] | None = None,
) -> tuple[object, bool]:
    """Run *function* with *event* and a connection from *connect* in one
    transaction, with *before* and *after* (the inbox entry's lock and its
    completion) in it too.

    The transaction commits when *function* returns a result *succeeded*
    accepts, and rolls back when it raises, returns a failure, or returns after
    an error of its own statements that it caught (the transaction is aborted
    then: :class:`TransactionAbortedError`).  Returns what *function* returned
    and whether it was committed.  What the callback raises is raised again
    outside *connect*, which therefore never takes it for the database's failure.
    """
    from psycopg.pq import TransactionStatus

    failure: BaseException | None = None
    result: object = None
    async with connect() as connection:
        try:
            async with connection.transaction():
                if before is not None:
                    await before(connection)
                try:
                    result = await function(event, connection)
                except Exception as error:
                    failure = error
                    raise _Undo(None) from None
                if connection.info.transaction_status == TransactionStatus.INERROR:
                    failure = TransactionAbortedError(
                        "the callback returned after an error in its transaction, which "
                        "PostgreSQL aborted: none of its writes were kept (let the error "
                        "through, or catch it in a savepoint: async with tx.transaction())"
                    )
                    raise _Undo(None)
                if not succeeded(result):
                    raise _Undo(result)
                if after is not None:
                    await after(connection)
        except _Undo as undo:
            result = undo.result
        else:
            return result, True
    if failure is not None:
        raise failure
    return result, False


class Database:
    """Connections to one PostgreSQL database for the inbox or the stores: a pool
    per event loop (a listener runs on one; a test may use two), a time limit per
    statement, and an outage told once (:class:`Outage`), each failure to reach
    the database raised as :class:`~twilio_trigger.inbox.UnreachableError`."""

    def __init__(
        self, url: str, *, what: str, pool: str, max_size: int, statement_timeout: float
    ) -> None:
        self.url = url
        self.what = what
        self._name = pool
        self._max_size = max_size
        self._timeout = statement_timeout
        self.outage = Outage(what, url, pool)
        _cancel_log.outages.add(self.outage)
        psycopg_logger = logging.getLogger("psycopg")
        if _cancel_log not in psycopg_logger.filters:
            psycopg_logger.addFilter(_cancel_log)
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}
        # The checks of idle connections under way, by pool (see _check).
        self._checking: dict[AsyncConnectionPool[Any], asyncio.Future[None]] = {}

    async def pool(self) -> AsyncConnectionPool[Any]:
        """This event loop's pool, opened (not waiting for a connection) when new."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            for gone in [other for other in self._pools if other.is_closed()]:
                del self._pools[gone]
            pool = self._pools[loop] = make_pool(self.url, max_size=self._max_size, name=self._name)
            await pool.open(wait=False)
        return pool

    def _unreachable(self, error: BaseException) -> Exception:
        return self.outage.unreachable(error)

    def _check(self, pool: AsyncConnectionPool[Any]) -> None:
        """Replace *pool*'s idle connections after a failure, in the background: one
        at a time per pool, ended after :data:`CONNECT_TIMEOUT` seconds.

        Replaced, not checked: checking sends each a query, and a server that stopped
        answering held that query's cancellation (psycopg's) past any limit, and with
        it the end of the process's stop.  Closing a connection waits for nothing."""
        if pool in self._checking:
            return
        task = asyncio.ensure_future(self._checked(pool))
        self._checking[pool] = task
        task.add_done_callback(lambda _: self._checking.pop(pool, None))

    @staticmethod
    async def _checked(pool: AsyncConnectionPool[Any]) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await pool.drain()

    def _wait(self) -> float | None:
        # While the database is away, fail fast rather than wait for a connection
        # (as long as the Redis clients wait for the one operation trying theirs).
        return OUTAGE_WAIT if self.outage.ongoing else None

    @contextlib.asynccontextmanager
    async def connection(self, *, timed: bool = True) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection from the pool, in autocommit mode.  With *timed*, what is
        done with it must end within the statement time limit; without (a
        callback's transaction, whose limit is the dispatcher's), a time-out is
        the caller's and passes through."""
        pool = await self.pool()
        started = time.monotonic()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if timed:
                    await stack.enter_async_context(asyncio.timeout(self._timeout))
                yield await stack.enter_async_context(pool.connection(self._wait()))
        except connection_errors() as error:
            if isinstance(error, TimeoutError) and not timed:
                raise
            failure = self._unreachable(error)
            # Idle connections may be broken too (a restart): replaced now, in
            # the background (a server that does not answer would hold this).
            self._check(pool)
            raise failure from error
        if self.outage.ongoing:
            self.outage.recovered(started)

    async def execute(
        self, query: str, args: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """One statement, its own transaction, within the statement time limit (each
        event's statements come here).

        The statement runs in a task of its own, so that the limit is the caller's
        whole wait: a server that stops answering costs psycopg's cancel and the
        connection's close after the limit (5 s each), which go on in the
        background while the caller is told the outage (a request must have its
        503 before Twilio stops waiting)."""
        pool = self._pools.get(asyncio.get_running_loop()) or await self.pool()
        started = time.monotonic()
        statement = asyncio.ensure_future(self._statement(pool, query, args))
        try:
            async with asyncio.timeout(self._timeout):
                rows = await asyncio.shield(statement)
        except BaseException as error:
            if not statement.done():
                statement.cancel()  # its clean-up goes on without the caller
                statement.add_done_callback(_retrieved)
            if not isinstance(error, connection_errors()):
                raise
            failure = self._unreachable(error)
            self._check(pool)
            raise failure from error
        if self.outage.ongoing:
            self.outage.recovered(started)
        return rows

    async def _statement(
        self, pool: AsyncConnectionPool[Any], query: str, args: Sequence[Any] | Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        connection = await pool.getconn(self._wait())
        try:
            cursor = await connection.execute(query, args)
            return await cursor.fetchall() if cursor.description else []
        finally:
            await pool.putconn(connection)

    async def close(self) -> None:
        """Close this event loop's pool."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            checking = self._checking.pop(pool, None)
            if checking is not None:
                checking.cancel()
            await pool.close()


def _retrieved(task: asyncio.Future[Any]) -> None:
    # A statement given up on: its end (cancelled, or the server's error) is
    # not the caller's any more, nor worth a "never retrieved" warning.
    if not task.cancelled():
        task.exception()
