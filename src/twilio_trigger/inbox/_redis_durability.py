"""When a Redis inbox counts an event as stored: the ``redis_durability`` it was given.

- ``fsync``: on the server's disk.  Redis 7.2+ confirms each write with
  ``WAITAOF 1 0``; an older one must fsync each write before it answers
  (``appendonly yes``, ``appendfsync always``), which is checked at start and
  every few seconds after, since nothing confirms it per write.
- ``replicas:N``: ``WAIT N`` confirms each write, and ``WAITAOF 1 0`` too where
  the primary writes an append-only file it can confirm.
- ``memory``: nothing is confirmed; a WARNING at start says what that risks.

A server that cannot give the chosen mode is refused at start, in one line that
names the Redis setting to change and the option to choose another mode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from . import NotStoredError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Durability", "NotStoredError"]

logger = logging.getLogger("twilio_trigger")

# How long an event stays held past its confirmation's own time limit: room for
# clocks that disagree a little between machines.  A listener that dies while
# waiting leaves its event held that long; it is dispatched after that.
_HOLD_MARGIN = 30.0
# How often a server trusted to fsync each write (Redis < 7.2) is asked again.
_RECHECK_EVERY = 5.0
_PROBE_TTL_MS = 60_000
_LEGACY_FIX = "`appendonly yes` and `appendfsync always`"

#: A command sent after a write, on its connection, to confirm it.
Command = tuple[str | int, ...]


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _replicas(durability: str) -> int:
    if durability in ("fsync", "memory"):
        return 0
    kind, _, count = durability.partition(":")
    if kind == "replicas" and count.isdigit() and int(count) >= 1:
        return int(count)
    raise ValueError(f"durability must be fsync, replicas:N or memory, got {durability!r}")


def _refusal(problem: str, fix: str) -> ConfigurationError:
    return ConfigurationError(
        f"redis_durability=fsync answers 200 only once an event is on the Redis server's "
        f"disk, and this server cannot promise it: {problem}.  Set {fix} in its "
        f"configuration (redis.conf, or CONFIG SET), or choose another mode with "
        f"redis_durability (TWILIO_TRIGGER_REDIS_DURABILITY): replicas:N, or memory to "
        f"accept that a Redis restart loses events already acknowledged"
    )


async def _info(client: Redis, section: str) -> dict[str, Any] | None:
    from redis.exceptions import ResponseError

    try:
        found: dict[str, Any] = await client.info(section)
    except ResponseError:  # INFO not allowed to this user
        return None
    return found


async def _config(client: Redis, name: str) -> str | None:
    from redis.exceptions import ResponseError

    try:
        found: Any = await client.config_get(name)
    except ResponseError:  # CONFIG is often renamed or denied on managed Redis
        return None
    value = {_text(k): _text(v) for k, v in found.items()}.get(name)
    return value.lower() if value else None


async def _fsync_problem(client: Redis) -> str | None:
    """Why a Redis without WAITAOF does not fsync each write before answering, if so."""
    appendonly = await _config(client, "appendonly")
    if appendonly is None:
        persistence = await _info(client, "persistence")
        if persistence is not None and "aof_enabled" in persistence:
            appendonly = "yes" if int(persistence["aof_enabled"]) == 1 else "no"
    if appendonly == "no":
        return "appendonly is no"
    fsync = await _config(client, "appendfsync")
    if appendonly is None or fsync is None:
        return (
            "its appendonly and appendfsync settings cannot be read (CONFIG GET is not "
            "allowed), and without WAITAOF (Redis 7.2+) nothing else tells whether it "
            "fsyncs each write"
        )
    if fsync != "always":
        return (
            f"appendfsync is {fsync}, and before Redis 7.2 (no WAITAOF) only appendfsync "
            f"always fsyncs a write before Redis answers"
        )
    return None


class Durability:
    """The checks and confirmations of *durability* (``fsync``, ``replicas:N`` or
    ``memory``) for the inbox at *location*, each confirmation waiting up to
    *wait_timeout* seconds; *probe* is a key it may write to try a confirmation."""

    def __init__(self, durability: str, wait_timeout: float, location: str, probe: str) -> None:
        self.mode = durability
        self.replicas = _replicas(durability)
        self.wait_timeout = wait_timeout
        self._wait_ms = max(1, round(wait_timeout * 1000))
        self._location = location
        self._probe = probe
        #: What follows each write, on its connection; empty when nothing confirms it.
        self.confirm: tuple[Command, ...] = ()
        self._recheck_at: float | None = None  # when to ask an older Redis again
        self._lapsed = False

    @property
    def hold(self) -> float:
        """Seconds an event stays held from its write: its confirmations, and a margin."""
        return len(self.confirm) * self.wait_timeout + _HOLD_MARGIN

    # -- at start ----------------------------------------------------------------
    async def check(self, client: Redis) -> None:
        """Find how to confirm writes on this server; refuse one that cannot give the mode."""
        self.confirm, self._recheck_at, self._lapsed = (), None, False
        if self.mode == "memory":
            logger.warning(
                "redis_durability=memory: the inbox %s answers 200 once Redis holds an "
                "event in memory, and a Redis restart or failover loses the events it had "
                "not dispatched although Twilio was told they were stored (choose fsync or "
                "replicas:N to keep them)",
                self._location,
            )
        elif self.replicas:
            await self._check_replicas(client)
        else:
            await self._check_fsync(client)

    async def _check_fsync(self, client: Redis) -> None:
        found = await self._waitaof(client)
        if found == "ok":
            self.confirm = (("WAITAOF", 1, 0, self._wait_ms),)
        elif found == "off":
            raise _refusal("appendonly is no", "`appendonly yes`")
        elif found == "late":
            raise await self._late(client)
        else:
            problem = await _fsync_problem(client)
            if problem is not None:
                raise _refusal(problem, _LEGACY_FIX)
            self._recheck_at = time.monotonic() + _RECHECK_EVERY

    async def _check_replicas(self, client: Redis) -> None:
        # The primary's own disk as well, where it writes an AOF it can confirm.
        persistence = await _info(client, "persistence") or {}
        local = int(persistence.get("aof_enabled", 0)) == 1 and await self._waitaof(client) == "ok"
        waitaof: tuple[Command, ...] = (("WAITAOF", 1, 0, self._wait_ms),) if local else ()
        self.confirm = (("WAIT", self.replicas, self._wait_ms), *waitaof)
        connected = await self._connected(client)
        if connected < self.replicas:
            logger.warning(
                "redis_durability=%s: the Redis of the inbox %s has %s connected; events "
                "are answered 503 until %d confirm each within %s s",
                self.mode,
                self._location,
                _plural(connected, "replica"),
                self.replicas,
                self.wait_timeout,
            )

    async def _connected(self, client: Redis) -> int:
        replication = await _info(client, "replication") or {}
        return int(replication.get("connected_slaves", 0))

    async def _waitaof(self, client: Redis) -> str:
        """Whether a write is confirmed on the server's disk by ``WAITAOF``: ``ok``,
        ``off`` (appendonly no), ``late`` (not in time) or ``missing`` (before 7.2)."""
        from redis.exceptions import ResponseError

        async with client.pipeline(transaction=False) as pipe:
            pipe.set(self._probe, "probe", px=_PROBE_TTL_MS)
            pipe.execute_command("WAITAOF", 1, 0, self._wait_ms)
            written, confirmed = await pipe.execute(raise_on_error=False)
        if isinstance(written, Exception):
            raise written
        if isinstance(confirmed, ResponseError):
            text = str(confirmed).lower()
            if "unknown command" in text:
                return "missing"
            if "appendonly" in text:
                return "off"
            raise confirmed
        return "ok" if int(confirmed[0]) >= 1 else "late"

    async def _late(self, client: Redis) -> ConfigurationError:
        """The refusal of a server that did not confirm a probe on its disk in time."""
        late = f"it did not confirm a write on its disk within {self.wait_timeout} s (WAITAOF)"
        fsync = await _config(client, "appendfsync")
        if fsync == "no":
            return _refusal(
                "appendfsync is no: it leaves fsync to the kernel", "`appendfsync everysec`"
            )
        if fsync == "everysec":
            return ConfigurationError(
                f"redis_durability=fsync: {late}; with appendfsync everysec a write waits "
                f"up to a second for its fsync: set redis_wait_timeout "
                f"(TWILIO_TRIGGER_REDIS_WAIT_TIMEOUT) to 2 or more, or `appendfsync always` "
                f"on the Redis server"
            )
        return _refusal(late, "`appendfsync everysec` or `always`")

    # -- with each event -----------------------------------------------------------
    async def recheck(self, client: Redis) -> None:
        """On a Redis < 7.2, now and then: raise :class:`NotStoredError` while it no
        longer fsyncs each write, since no write of it is confirmed otherwise."""
        now = time.monotonic()
        if self._recheck_at is None or now < self._recheck_at:
            return
        self._recheck_at = now + _RECHECK_EVERY
        problem = await _fsync_problem(client)
        if problem is None:
            if self._lapsed:
                self._lapsed = False
                logger.warning(
                    "the Redis of the inbox %s fsyncs each write again: events are "
                    "acknowledged again",
                    self._location,
                )
            return
        self._recheck_at = now  # ask with every event until it is fixed
        if not self._lapsed:
            self._lapsed = True
            logger.error(
                "the Redis of the inbox %s no longer fsyncs each write (%s): events are "
                "answered 503 until it does (redis_durability=fsync)",
                self._location,
                problem,
            )
        raise NotStoredError(f"Redis does not fsync each write: {problem}")

    def unconfirmed(self, confirm: Sequence[Command], replies: Sequence[Any]) -> str | None:
        """Why the *replies* to *confirm* do not confirm the write, or ``None`` if they do."""
        for command, reply in zip(confirm, replies, strict=True):
            if isinstance(reply, Exception):
                return f"{command[0]} failed: {reply}"
            if command[0] == "WAIT" and int(reply) < self.replicas:
                return (
                    f"{reply} of the {self.replicas} replicas required confirmed the event "
                    f"within {self.wait_timeout} s (WAIT)"
                )
            if command[0] == "WAITAOF" and int(reply[0]) < 1:
                return (
                    f"the Redis server did not confirm the event on its disk within "
                    f"{self.wait_timeout} s (WAITAOF)"
                )
        return None

    async def readiness(self, client: Redis) -> None:
        """Raise :class:`NotStoredError` while events cannot be acknowledged as promised."""
        if self.replicas:
            connected = await self._connected(client)
            if connected < self.replicas:
                raise NotStoredError(
                    f"{_plural(connected, 'replica')} connected, {self.replicas} required"
                )
        elif self._recheck_at is not None:
            problem = await _fsync_problem(client)
            if problem is not None:
                raise NotStoredError(f"Redis does not fsync each write: {problem}")
