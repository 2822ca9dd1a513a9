"""What the PostgreSQL tests share: a database of their own on the machine's
PostgreSQL, a schema per test, and throw-away clusters to crash.

The machine's PostgreSQL is ``127.0.0.1:5432`` (trust authentication, user
``postgres``).  When it cannot be reached, the tests that need it skip, unless
``TWILIO_TRIGGER_REQUIRE_POSTGRES=1`` (CI sets it): then they fail.  Each test
module that uses :func:`postgres_database` creates a database of its own
(``tt_<pid>_<random>``, named by the test run's process, which holds an advisory
lock on its name while it runs), dropped at the end of the run; one left by a run
killed before its end (SIGKILL, a time limit) is dropped by the next run once that
process is gone and its lock free.  Each test works in a schema
of its own (:func:`pg_schema`), dropped afterwards.  Nothing here stops,
restarts or reconfigures the shared cluster.

:class:`PostgresCluster` makes a private cluster with ``initdb`` in a temporary
folder and runs it on a free loopback port, for the tests that stop it (``-m
immediate``: as a crash) and start it again.  ``initdb`` refuses to run as root:
as root, the cluster belongs to the ``postgres`` user and its commands run as it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

__all__ = [
    "POSTGRES_ADMIN_URL",
    "PostgresCluster",
    "database_url",
    "free_port",
    "own_postgres",
    "pg_binary",
    "pg_schema",
    "postgres_database",
    "require_postgres",
    "scalar",
]

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
#: The shared cluster's maintenance database, to create and drop databases from.
POSTGRES_ADMIN_URL = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"
REQUIRE = "TWILIO_TRIGGER_REQUIRE_POSTGRES"


def database_url(name: str, host: str = POSTGRES_HOST, port: int = POSTGRES_PORT) -> str:
    return f"postgresql://postgres@{host}:{port}/{name}"


def _missing(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1)")
    pytest.skip(reason)


def require_postgres() -> None:
    """Skip (or fail, with ``TWILIO_TRIGGER_REQUIRE_POSTGRES=1``) without PostgreSQL."""
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as error:
        _missing(f"no PostgreSQL at {POSTGRES_HOST}:{POSTGRES_PORT}: {error}")


def scalar(url: str, query: str, args: tuple[object, ...] = ()) -> object:
    """The first column of the first row of *query* on *url* (a new connection)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        row = connection.execute(query, args).fetchone()
        return None if row is None else row[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


#: The connection of this process that holds an advisory lock per database it made,
#: for as long as it runs: a run in another PID namespace (a container) that the
#: process check cannot see is still seen alive by PostgreSQL.
_holder: psycopg.Connection[tuple[object, ...]] | None = None


def _hold(name: str) -> None:
    global _holder
    if _holder is None or _holder.closed:
        _holder = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True)
    _holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))


def _release(name: str) -> None:
    if _holder is not None and not _holder.closed:
        _holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))


def _drop_left_behind(admin: psycopg.Connection[tuple[object, ...]]) -> None:
    """Drop the databases of test runs that ended without dropping them: a run
    killed by SIGKILL never reaches its teardown.  One is left behind when the
    process named in it is gone here and no session holds its lock."""
    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'tt\\_%'")
    for (name,) in rows.fetchall():
        parts = str(name).split("_")
        if len(parts) != 3 or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        free = admin.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
        if free is None or not free[0]:
            continue  # its run is alive, out of this process's sight
        try:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a database made for this test run on the shared cluster, dropped after."""
    require_postgres()
    name = f"tt_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    _hold(name)
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        _drop_left_behind(admin)
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _release(name)


@pytest.fixture
def pg_schema(postgres_database: str) -> Iterator[str]:
    """A schema name of this test's own in the run's database, dropped after it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(postgres_database, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pg_binary(name: str) -> str:
    """The path of a PostgreSQL server program (``initdb``, ``pg_ctl``)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    _missing(f"no {name}: install PostgreSQL's server (Debian: postgresql)")


class PostgresCluster:
    """A PostgreSQL cluster of the test's own, in a temporary folder, on a free
    loopback port; :meth:`remove` stops it and deletes the folder.

    The folder is made directly under the temporary directory: as root, the
    cluster belongs to ``postgres``, who could not enter a folder of root's
    (pytest's ``tmp_path`` is one).

    Trust authentication for the ``postgres`` user; ``fsync`` on (the crash
    tests need commits on disk).  :meth:`crash` stops it with ``-m immediate``
    (no checkpoint, as a power cut to the server process); :meth:`start`
    starts it again on the same port, with crash recovery.
    """

    def __init__(self) -> None:
        folder = self.folder = Path(tempfile.mkdtemp(prefix="twilio-trigger-pg-"))
        self.data = folder / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        self._run(
            pg_binary("initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--no-instructions", "-E", "UTF8",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{folder}'\nfsync = on\n"
                f"synchronous_commit = on\nmax_connections = 100\n"
            )
        self.url = database_url("postgres", port=self.port)

    def _run(self, *command: str) -> None:
        prefix = ("runuser", "-u", "postgres", "--") if self._as_postgres else ()
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            pg_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def crash(self) -> None:
        """Stop at once, without a checkpoint: what was committed must survive."""
        self._run(pg_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def freeze(self, frozen: bool = True) -> None:
        """Stop (SIGSTOP) or resume (SIGCONT) every process of the cluster: a server
        that keeps its connections open and answers nothing, as a hung host."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        found = subprocess.run(
            ["pgrep", "-P", str(main)], capture_output=True, text=True, timeout=10, check=False
        )
        for pid in [main, *(int(child) for child in found.stdout.split())]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(pg_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the cluster (if running, frozen or not) and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(OSError, ValueError):
                self.freeze(False)
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A running cluster of the test's own, removed after it."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
