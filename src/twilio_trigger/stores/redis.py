"""Stores in Redis, shared by every listener that names the same Redis and prefix.

Each operation is one round trip running a small Lua script, so that a claim,
a completion or a status update is atomic across listeners:

- a delivery key ``{prefix}d:{key}`` holds ``busy`` (with a lease, so that a
  listener that died while handling it does not block it for ever) or ``done``
  (for the dedup ttl);
- a SID key ``{prefix}s:{kind}:{sid}`` is a hash of the most advanced status,
  its rank and the status before it, kept for the dedup ttl.

While Redis cannot be reached, each operation raises
:class:`~twilio_trigger._outage.OutageError` (the listener answers 503), and
the outage is told once when it begins and once when it ends, for both stores
of a Redis together.

Needs the ``redis`` package: ``pip install twilio-trigger[redis]``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import weakref
from typing import TYPE_CHECKING, Any

from .._core.order import Standing
from .._outage import Outage, watched
from ..inbox import UnreachableError
from . import Claim, DeliveryStore, StatusStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisDeliveryStore", "RedisStatusStore", "connect", "connection_errors"]

logger = logging.getLogger("twilio_trigger")

# A claim holds "busy:<owner>", the owner being one random token per claim, so
# that only the listener holding a claim releases or extends it.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if not value then
    redis.call('SET', KEYS[1], 'busy:' .. ARGV[2], 'PX', ARGV[1])
    return 0
end
if string.sub(value, 1, 4) == 'done' then return 1 end
return 2
"""
# 'done', then the reply the delivery was answered with, if any.
_COMPLETE = "redis.call('SET', KEYS[1], 'done' .. ARGV[2], 'PX', ARGV[1])"
_RELEASE = """
if redis.call('GET', KEYS[1]) == 'busy:' .. ARGV[1] then redis.call('DEL', KEYS[1]) end
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == 'busy:' .. ARGV[2] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0
"""
# The same rules as _order.settle: a repeat of the current status at its rank
# reports the one before it; a lower rank is stale and changes nothing;
# otherwise the status becomes current.  Returns {previous status or false, stale 0/1}.
_OBSERVE = """
local known = redis.call('HMGET', KEYS[1], 'status', 'rank', 'previous')
local status, rank = ARGV[1], tonumber(ARGV[2])
if not known[1] then
    redis.call('HSET', KEYS[1], 'status', status, 'rank', rank)
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {false, 0}
end
if known[1] == status and tonumber(known[2]) == rank then return {known[3], 0} end
if rank < tonumber(known[2]) then return {known[1], 1} end
redis.call('HSET', KEYS[1], 'status', status, 'rank', rank, 'previous', known[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {known[1], 0}
"""
_CLAIMS = (Claim.ACQUIRED, Claim.DONE, Claim.BUSY)


def connection_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean Redis cannot be reached (rather than a bug): refused,
    reset, timed out, still loading its data after a restart."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


# The URL each client was made for (connect), to name it in the log.
_urls: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# The outage of each Redis the stores use, by URL: both stores of a listener
# (two clients) tell one outage once.  Dropped when a store closes.
_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def connect(url: str) -> Redis:
    """A Redis client for *url* (``redis://host:6379/0``, ``rediss://`` for TLS)."""
    try:
        from redis.asyncio import Redis
    except ImportError:
        raise ImportError(
            "a redis:// store needs the redis package: pip install 'twilio-trigger[redis]'"
        ) from None
    client: Redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    _urls[client] = url
    return client


def _url_of(client: Redis) -> str:
    url = _urls.get(client)
    if url is not None:
        return url
    found = client.connection_pool.connection_kwargs
    return f"redis://{found.get('host', '?')}:{found.get('port', '?')}/{found.get('db', 0)}"


def _outage_of(client: Redis) -> Outage:
    url = _url_of(client)
    with _outages_lock:
        outage = _outages.get(url)
        if outage is None:
            outage = _outages[url] = Outage("Redis store", url, connection_errors)
        return outage


def _forget(outage: Outage) -> None:
    """A store closed: the stores made next for its Redis tell their own outages."""
    with _outages_lock:
        for url, known in list(_outages.items()):
            if known is outage:
                del _outages[url]


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisDeliveryStore(DeliveryStore):
    """Handled deliveries, in Redis, for *ttl* seconds; claims expire after *lease* seconds."""

    def __init__(self, client: Redis, *, prefix: str, ttl: float, lease: float) -> None:
        self._client = client
        self._prefix = f"{prefix}d:"
        self._ttl = str(_milliseconds(ttl))
        self._lease = str(_milliseconds(lease))
        self._lease_seconds = lease
        self._claim: Any = client.register_script(_CLAIM)
        self._complete: Any = client.register_script(_COMPLETE)
        self._release: Any = client.register_script(_RELEASE)
        self._extend: Any = client.register_script(_EXTEND)
        self._owners: dict[str, str] = {}  # claims this store holds: key -> owner token
        self._holding: set[asyncio.Task[None]] = set()
        #: Told once when Redis cannot be reached, and once when it can again.
        self.outage = _outage_of(client)

    @watched
    async def claim(self, key: str) -> Claim:
        owner = secrets.token_hex(8)
        answer = _CLAIMS[
            int(await self._claim(keys=[self._prefix + key], args=[self._lease, owner]))
        ]
        if answer is Claim.ACQUIRED:
            self._owners[key] = owner
        return answer

    @watched
    async def complete(self, key: str, reply: bytes | None = None) -> None:
        self._owners.pop(key, None)
        await self._complete(keys=[self._prefix + key], args=[self._ttl, reply or b""])

    @watched
    async def reply_of(self, key: str) -> bytes | None:
        value = await self._client.get(self._prefix + key)
        if isinstance(value, bytes) and value.startswith(b"done") and len(value) > 4:
            return value[4:]
        return None

    @watched
    async def release(self, key: str) -> None:
        owner = self._owners.pop(key, None)
        if owner is not None:
            await self._release(keys=[self._prefix + key], args=[owner])

    def hold(self, key: str, until: asyncio.Future[Any]) -> None:
        """Keep the claim on *key* alive until *until* is done (a late sync callback)."""

        async def renew() -> None:
            owner = self._owners.get(key)
            while owner is not None and not until.done():
                await asyncio.wait([until], timeout=self._lease_seconds / 3)
                if until.done():
                    return
                try:
                    await self._renew(key, owner)
                except UnreachableError:  # told once; the lease may lapse: try again
                    continue
                except Exception:
                    logger.warning("could not extend the claim on %s", key, exc_info=True)

        task = asyncio.ensure_future(renew())
        self._holding.add(task)
        task.add_done_callback(self._holding.discard)

    @watched
    async def _renew(self, key: str, owner: str) -> None:
        await self._extend(keys=[self._prefix + key], args=[self._lease, owner])

    @watched
    async def check(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        _forget(self.outage)
        await self._client.aclose()


class RedisStatusStore(StatusStore):
    """Each SID's most advanced status, in Redis, for *ttl* seconds."""

    def __init__(self, client: Redis, *, prefix: str, ttl: float) -> None:
        self._client = client
        self._prefix = f"{prefix}s:"
        self._ttl = str(_milliseconds(ttl))
        self._observe: Any = client.register_script(_OBSERVE)
        #: Told once when Redis cannot be reached (with the delivery store's, if
        #: they share a Redis), and once when it can again.
        self.outage = _outage_of(client)

    @watched
    async def observe(self, key: str, status: str, rank: int) -> Standing:
        previous, stale = await self._observe(
            keys=[self._prefix + key], args=[status, str(rank), self._ttl]
        )
        if isinstance(previous, bytes):
            previous = previous.decode("utf-8")
        return Standing(previous, bool(stale))

    @watched
    async def check(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        _forget(self.outage)
        await self._client.aclose()
