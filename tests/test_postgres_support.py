"""The test suite's own PostgreSQL support: what a killed run leaves is dropped."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from tests.postgres_support import POSTGRES_ADMIN_URL, _drop_left_behind, require_postgres


def _databases() -> set[str]:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        return {str(row[0]) for row in admin.execute("SELECT datname FROM pg_database")}


def test_the_database_of_a_run_whose_process_is_gone_is_dropped() -> None:
    require_postgres()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    gone = f"tt_{int(ended.stdout)}_{uuid.uuid4().hex[:12]}"
    alive = f"tt_{os.getpid()}_{uuid.uuid4().hex[:12]}"  # this run's own
    # A live run in another PID namespace: its process is out of sight, its lock held.
    elsewhere = f"tt_{int(ended.stdout)}_{uuid.uuid4().hex[:12]}"
    names = (gone, alive, elsewhere)
    with (
        psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin,
        psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as other_run,
    ):
        other_run.execute("SELECT pg_advisory_lock(hashtext(%s))", (elsewhere,))
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            _drop_left_behind(admin)
            left = _databases()
            assert gone not in left
            assert alive in left
            assert elsewhere in left
        finally:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_run_stopped_by_sigterm_tears_its_fixtures_down(tmp_path: Path) -> None:
    # As Ctrl-C: the session's fixtures (a database on the shared cluster) are
    # torn down before the run ends.
    torn = tmp_path / "torn-down"
    (tmp_path / "test_held.py").write_text(
        "import os, pathlib, signal, pytest\n"
        "@pytest.fixture(scope='session')\n"
        "def held():\n"
        "    yield\n"
        f"    pathlib.Path({str(torn)!r}).write_text('yes')\n"
        "def test_killed(held):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    conftest = Path(__file__).with_name("conftest.py")
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert torn.read_text() == "yes", result.stdout + result.stderr
