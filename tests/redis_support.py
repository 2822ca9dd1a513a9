"""What the Redis tests share: the shared Redis's fixtures, and throw-away Redis servers.

The shared Redis is ``127.0.0.1:6379``.  When it cannot be reached, the tests that
need it skip, unless ``TWILIO_TRIGGER_REQUIRE_REDIS=1`` (CI sets it): then they fail.
Each test works under its own key prefix (:func:`prefix`), deleted afterwards; nothing
here ever flushes a database.

:class:`RedisServer` runs a private ``redis-server`` on a free loopback port, for the
tests that stop and restart it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis

__all__ = [
    "REDIS_URL",
    "RedisServer",
    "free_port",
    "keys_under",
    "own_redis",
    "prefix",
    "redis_url",
    "require_redis",
]

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
REQUIRE = "TWILIO_TRIGGER_REQUIRE_REDIS"


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


class RedisServer:
    """A private, throw-away ``redis-server`` on a loopback port (no persistence)."""

    def __init__(self, binary: str, directory: Path, port: int | None = None) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{REDIS_HOST}:{self.port}/0"

    def start(self, timeout: float = 5.0) -> None:
        """Start the server and return once it answers PING."""
        assert self.process is None, "already running"
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", REDIS_HOST,
            "--save", "",
            "--appendonly", "no",
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


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server, running; stopped at teardown whatever the test did to it."""
    binary = shutil.which("redis-server")
    if binary is None:
        require_redis("no redis-server binary on PATH to run a private Redis")
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
