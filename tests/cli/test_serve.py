"""`run`'s process count is `--processes`; `--workers`, its former name, still works.

`--workers` meant server processes for `run` and callbacks at once everywhere
else; the two are now `--processes` and `--concurrency`.  These cases fail before
anything is served (serving with processes: tests/test_cli.py, tests/e2e/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import invoke


def test_workers_is_taken_as_processes_with_a_deprecation_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "cli_serve_absent", "--workers", "2")
    assert "--workers is deprecated: use --processes (the same value)" in result.output
    # Then it goes on as --processes 2 would: here, to the missing module.
    assert result.exit_code == 2
    assert "no module named 'cli_serve_absent'" in result.output


def test_processes_and_workers_together_are_refused() -> None:
    result = invoke("run", "cli_serve_absent", "--workers", "2", "--processes", "2")
    assert result.exit_code == 2
    assert "give --processes alone" in result.output


def test_help_shows_processes_and_concurrency_not_workers() -> None:
    result = invoke("run", "--help")
    assert result.exit_code == 0
    assert "--processes" in result.output
    assert "--concurrency" in result.output
    assert "--workers" not in result.output
