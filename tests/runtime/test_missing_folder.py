"""A SQLite inbox in a folder that does not exist fails at start, instead of making
a fresh, empty inbox where nobody looks (and a /readyz that says ok over it).

Its file is still made in a folder that exists (the first run), and the folders
are made when the URL asks for it (``?create_folders=1``).  Real files in
``tmp_path``, a real listener on loopback.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import twilio_trigger as twilio
from tests.e2e._support import TOKEN, Recorder, SmsRecorder, running, wait_until
from tests.payloads import signed_post, sms_status_payload
from twilio_trigger.cli import cli
from twilio_trigger.inbox import open_inbox
from twilio_trigger.inbox.sqlite import SQLiteInbox


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            monkeypatch.delenv(name)


def startup_error(inbox: str) -> str:
    """Why a listener with *inbox* cannot start (its ConfigurationError's message)."""
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], inbox=inbox)

    async def start() -> None:
        try:
            await listener.startup()
        finally:
            await listener.shutdown()

    with pytest.raises(twilio.ConfigurationError) as refused:
        asyncio.run(start())
    return str(refused.value)


def test_an_inbox_in_a_missing_folder_fails_at_start_naming_the_folder(tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "dir" / "events.db"
    message = startup_error(f"sqlite:///{db}")
    assert message.startswith(f"cannot open the inbox sqlite:///{db}: ")
    assert f"the folder {db.parent} does not exist" in message
    assert "?create_folders=1" in message  # how to have it made
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []  # nothing made, not even the first folder


def test_a_listener_with_such_an_inbox_does_not_start(tmp_path: Path) -> None:
    db = tmp_path / "missing" / "events.db"
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], inbox=f"sqlite:///{db}")
    with pytest.raises((RuntimeError, twilio.ConfigurationError)):
        listener.start(timeout=30)
    assert not (tmp_path / "missing").exists()


def test_a_missing_file_in_a_folder_that_exists_is_made(tmp_path: Path) -> None:
    db = tmp_path / "events.db"  # the normal first run
    recorder = Recorder()
    with running(SmsRecorder(recorder), inbox=f"sqlite:///{db}") as listener:
        answer = signed_post(listener.url, sms_status_payload("delivered"), TOKEN)
        assert answer.status_code == 200
        wait_until(lambda: len(recorder.calls) == 1, "the callback")
        ready = httpx.get(f"http://127.0.0.1:{listener.port}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_create_folders_in_the_url_makes_them_private(tmp_path: Path) -> None:
    db = tmp_path / "var" / "lib" / "events.db"
    recorder = Recorder()
    inbox = f"sqlite:///{db}?create_folders=1"
    with running(SmsRecorder(recorder), inbox=inbox) as listener:
        answer = signed_post(listener.url, sms_status_payload("delivered"), TOKEN)
        assert answer.status_code == 200
        wait_until(lambda: len(recorder.calls) == 1, "the callback")
    assert db.is_file()
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(("query", "create"), [("", False), ("?create_folders=0", False),
                                               ("?create_folders=true", True)])  # fmt: skip
def test_open_inbox_reads_create_folders_from_the_url(
    tmp_path: Path, query: str, create: bool
) -> None:
    inbox = open_inbox(f"sqlite:///{tmp_path}/events.db{query}")
    assert isinstance(inbox, SQLiteInbox)
    assert inbox.path == tmp_path / "events.db"  # the query is not part of the file's name
    assert inbox.create_folders is create


@pytest.mark.parametrize("query", ["?create=1", "?create_folders=maybe", "?mode=ro", "?"])
def test_any_other_query_is_refused_when_the_listener_is_made(
    tmp_path: Path, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/events.db{query}"
    with pytest.raises(twilio.ConfigurationError, match=r"^inbox: .*takes only \?create_folders"):
        twilio.Listener(0, auth_tokens=[TOKEN], inbox=url)
    monkeypatch.setenv("TWILIO_TRIGGER_INBOX", url)
    with pytest.raises(twilio.ConfigurationError, match=r"^TWILIO_TRIGGER_INBOX: "):
        twilio.Listener(0, auth_tokens=[TOKEN])
    with pytest.raises(ValueError, match=r"takes only \?create_folders"):
        open_inbox(url)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("query", ["", "?create_folders=1"])
def test_the_inbox_commands_still_say_there_is_no_inbox(tmp_path: Path, query: str) -> None:
    db = tmp_path / "nowhere" / "events.db"
    result = CliRunner().invoke(cli, ["inbox", "stats", "--inbox", f"sqlite:///{db}{query}"])
    assert result.exit_code == 1, result.output
    assert f"no inbox at {db}\n" in result.output
    assert not db.parent.exists()
