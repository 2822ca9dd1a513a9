"""The same inbox contract on every backend: a fixture's way to make one of each.

:func:`backend_of` gives, for ``"sqlite"``, ``"redis"`` or ``"postgres"``, a
function that makes a fresh inbox (a SQLite file in the test's folder, a key
prefix of its own on the shared Redis, a schema of its own in PostgreSQL), the
command line's options and environment that name the same inbox;
:func:`session_of` runs async work on a fresh, open inbox and closes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.redis_support import MEMORY
from twilio_trigger.inbox import Inbox
from twilio_trigger.inbox.postgres import PostgresInbox
from twilio_trigger.inbox.redis import RedisInbox
from twilio_trigger.inbox.sqlite import SQLiteInbox

__all__ = ["BACKENDS", "Backend", "Session", "backend_of", "session_of"]

_T = TypeVar("_T")

#: Every backend, as fixtures' params.
BACKENDS = ("sqlite", "redis", "postgres")

#: Runs an async function on a fresh, open inbox of the backend, closed afterwards.
Session = Callable[[Callable[[Inbox], Awaitable[_T]]], _T]


@dataclass(frozen=True)
class Backend:
    """One backend's inbox: how to make it, and how the command line names it."""

    make: Callable[[], Inbox]
    options: list[str]  # --inbox URL (and --schema)
    env: dict[str, str]  # the Redis key prefix

    @property
    def session(self) -> Session[Any]:
        return session_of(self.make)


def session_of(make: Callable[[], Inbox]) -> Session[Any]:
    """Run work on a fresh, open inbox made by *make*, closed afterwards."""

    def run(work: Callable[[Inbox], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            inbox = make()
            try:  # closed even when it cannot open: a pool left open can hang the loop's end
                await inbox.open()
                return await work(inbox)
            finally:
                await inbox.close()

        return asyncio.run(go())

    return run


def backend_of(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The inbox of backend *name* for this test (its Redis and PostgreSQL fixtures
    are asked of *request*, so a SQLite-only run needs neither)."""
    if name == "sqlite":
        path = tmp_path / "events.db"
        return Backend(lambda: SQLiteInbox(path), ["--inbox", f"sqlite:///{path}"], {})
    if name == "redis":
        url = request.getfixturevalue("redis_url")
        key_prefix = request.getfixturevalue("prefix")
        return Backend(
            lambda: RedisInbox(url, prefix=key_prefix, durability=MEMORY),
            ["--inbox", url],
            {"TWILIO_TRIGGER_REDIS_PREFIX": key_prefix},
        )
    assert name == "postgres", name
    database = request.getfixturevalue("postgres_database")
    schema = request.getfixturevalue("pg_schema")
    return Backend(
        lambda: PostgresInbox(database, schema=schema),
        ["--inbox", database, "--schema", schema],
        {},
    )
