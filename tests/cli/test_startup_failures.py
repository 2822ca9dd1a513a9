"""A `run` or `worker` that cannot start says why in one line, and nothing else.

Real console-script processes against what is really unreachable: a Redis or a
PostgreSQL port nobody listens on, the machine's PostgreSQL refusing a role it
does not have, a SQLite file in a folder that does not exist.  stderr must be
exactly one ``Error: ...`` line (no uvicorn lines, no outage line, no
traceback), the exit status 1; a usage error (a SQLite inbox for a worker) 2.
"""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from tests.postgres_support import require_postgres
from tests.test_cli import TOKEN, clean_env, cli, free_port, one_error_line
from twilio_trigger import ConfigurationError, Listener

APP = """
import twilio_trigger as twilio

listener = twilio.Listener(host="127.0.0.1")


@listener.service
class Messages(twilio.SmsStatusService):
    async def on_delivered(self, event):
        pass
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A folder holding app.py, a module-level listener of one service."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    return tmp_path


def failed(app: Path, *args: str, status: int = 1) -> str:
    """The one line a failing command prints, checked to be all it prints."""
    result = cli(*args, env=clean_env(TWILIO_AUTH_TOKEN=TOKEN), cwd=app)
    assert result.returncode == status, (result.stdout, result.stderr)
    assert result.stdout == ""
    line = one_error_line(result)
    assert "Traceback" not in line
    assert "uvicorn" not in line
    return line


def unreachable_postgres() -> str:
    return f"postgresql://postgres:secret@127.0.0.1:{free_port()}/app"


# -- run -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "call"), [("run", "run"), ("run", "start"), ("worker", "work")]
)
def test_a_module_that_starts_its_listener_when_imported_is_told_so(
    tmp_path: Path, command: str, call: str
) -> None:
    # Else the command's listener started only once the module's own had stopped
    # (a first Ctrl-C), and a second was needed.
    (tmp_path / "app.py").write_text(
        textwrap.dedent(APP) + f"\nlistener.{call}()\n", encoding="utf-8"
    )
    inbox = ["--inbox", f"redis://127.0.0.1:{free_port()}/0"] if command == "worker" else []
    line = failed(tmp_path, command, "app", *inbox, status=1)
    assert f"the module calls listener.{call}() when it is imported" in line
    assert f"`twilio-trigger {command}` starts the listener itself" in line
    assert 'if __name__ == "__main__":' in line
    assert "(app.py, line 12)" in line  # the call


def test_run_with_an_unreachable_redis_inbox(app: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    line = failed(app, "run", "app", "--port", "0", "--inbox", url)
    assert line.startswith(f"Error: cannot open the inbox {url}: ")
    assert "refused" in line.lower()


def test_run_with_an_unreachable_postgresql_inbox(app: Path) -> None:
    line = failed(app, "run", "app", "--port", "0", "--inbox", unreachable_postgres())
    assert line.startswith("Error: cannot open the inbox postgresql://postgres:***@127.0.0.1:")
    assert "secret" not in line


def test_run_with_a_postgresql_that_refuses_the_role(app: Path) -> None:
    require_postgres()
    url = "postgresql://tt_no_such_role@127.0.0.1:5432/postgres"
    line = failed(app, "run", "app", "--port", "0", "--inbox", url)
    assert line.startswith("Error: cannot open the inbox postgresql://")
    assert 'role "tt_no_such_role" does not exist' in line


def test_run_with_a_sqlite_inbox_in_a_missing_folder(app: Path) -> None:
    path = app / "no" / "such" / "events.db"
    line = failed(app, "run", "app", "--port", "0", "--inbox", f"sqlite:///{path}")
    assert line.startswith(f"Error: cannot open the inbox sqlite:///{path}: ")
    assert "does not exist" in line
    assert not path.parent.exists()


def test_run_with_processes_and_an_unreachable_inbox(app: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    args = ["run", "app", "--port", "0", "--processes", "2", "--inbox", url]
    line = failed(app, *args)
    assert line.startswith(f"Error: cannot open the inbox {url}: ")


def test_run_on_a_port_in_use_with_processes(app: Path) -> None:
    # uvicorn's own binding logs the error and exits; the listener's says it in one line.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = failed(app, "run", "app", "--port", str(port), "--processes", "2")
    assert line.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert "another listener may be running there; pass another port" in line


# -- worker --------------------------------------------------------------------------------
def test_worker_with_an_unreachable_redis_inbox(app: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    line = failed(app, "worker", "app", "--inbox", url)
    assert line.startswith(f"Error: cannot open the inbox {url}: ")


def test_worker_with_an_unreachable_postgresql_inbox(app: Path) -> None:
    line = failed(app, "worker", "app", "--inbox", unreachable_postgres())
    assert line.startswith("Error: cannot open the inbox postgresql://postgres:***@127.0.0.1:")


def test_worker_without_an_inbox_says_so_in_the_command_lines_words(app: Path) -> None:
    line = failed(app, "worker", "app", status=2)
    assert "pass --inbox URL or set TWILIO_TRIGGER_INBOX" in line
    assert "inbox=" not in line
    assert "work()" not in line


def test_worker_refuses_a_sqlite_inbox_from_the_flag(app: Path) -> None:
    line = failed(app, "worker", "app", "--inbox", "sqlite:///events.db", status=2)
    assert line.startswith("Error: Invalid value for --inbox: a SQLite inbox is one process's")
    assert "redis:// or postgresql://" in line
    assert not (app / "events.db").exists()


def test_worker_refuses_a_sqlite_inbox_from_the_variable(app: Path) -> None:
    result = cli(
        "worker",
        "app",
        env=clean_env(TWILIO_TRIGGER_INBOX="sqlite:///events.db"),
        cwd=app,
    )
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith("Error: Invalid value for TWILIO_TRIGGER_INBOX: a SQLite inbox")


def test_run_with_processes_refuses_a_sqlite_inbox(app: Path) -> None:
    args = ["run", "app", "--port", "0", "--processes", "2", "--inbox", "sqlite:///events.db"]
    line = failed(app, *args, status=2)
    assert "Invalid value for --processes: a SQLite inbox is one process's" in line
    assert "--inbox names one" in line


# -- inbox ---------------------------------------------------------------------------------
def test_inbox_with_an_unreachable_redis_says_only_the_error(app: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    line = failed(app, "inbox", "stats", "--inbox", url)
    assert line.startswith(f"Error: cannot read the inbox {url}: ")


def test_inbox_with_an_unreachable_postgresql_says_only_the_error(app: Path) -> None:
    line = failed(app, "inbox", "list", "--inbox", unreachable_postgres())
    assert line.startswith("Error: cannot read the inbox postgresql://postgres:***@127.0.0.1:")


def test_inbox_with_a_postgresql_that_refuses_says_only_the_error(app: Path) -> None:
    require_postgres()
    url = "postgresql://tt_no_such_role@127.0.0.1:5432/postgres"
    line = failed(app, "inbox", "stats", "--inbox", url)
    assert 'role "tt_no_such_role" does not exist' in line


# -- from Python -----------------------------------------------------------------------------
def test_listener_run_raises_why_it_cannot_start() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    listener = Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], inbox=url)
    with pytest.raises(ConfigurationError, match=r"^cannot open the inbox redis://127\.0\.0\.1:"):
        listener.run()


def test_listener_start_says_why_it_did_not_start() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    listener = Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], inbox=url)
    with pytest.raises(RuntimeError, match=r"did not start: cannot open the inbox redis://"):
        listener.start()
