"""The SQLite inbox's files are private: owner-only whatever the umask, or the mode asked for.

The inbox holds phone numbers and message bodies.  Every test runs under the usual
umask 022 (set here, restored after), under which SQLite alone would make the
database, its ``-wal`` and ``-shm`` 0644 and folders 0755.  Modes are read back
with ``os.stat``; the files are real, in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.e2e._support import TOKEN, Recorder, SmsRecorder, running, wait_until
from tests.payloads import signed_post, sms_status_payload
from twilio_trigger.inbox import open_inbox
from twilio_trigger.inbox.sqlite import SQLiteInbox, folder_mode
from twilio_trigger.testing import sms_status_params

_T = TypeVar("_T")

LOGGER = "twilio_trigger"


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_of(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def while_open(inbox: SQLiteInbox, look: Callable[[], _T], *, opened: bool = True) -> _T:
    """*look* at the files while *inbox* is open and has written (so -wal and -shm exist).

    *opened*: as the listener does (``open()`` first); without, as the command
    line does (straight to reading and writing).
    """

    async def session() -> _T:
        if opened:
            await inbox.open()
        try:
            params = list(sms_status_params("delivered").items())
            await inbox.put("k", "sms", params[0][1], "delivered", params)
            return look()
        finally:
            await inbox.close()

    return asyncio.run(session())


# -- made by the inbox -------------------------------------------------------------------
def test_the_inbox_and_the_folders_it_makes_are_owner_only(tmp_path: Path) -> None:
    before = mode_of(tmp_path)
    db = tmp_path / "var" / "lib" / "events.db"
    inbox = SQLiteInbox(db, create_folders=True)
    modes = while_open(inbox, lambda: {p.name: mode_of(p) for p in files_of(db)})
    assert modes == {"events.db": 0o600, "events.db-wal": 0o600, "events.db-shm": 0o600}
    assert mode_of(tmp_path / "var") == 0o700
    assert mode_of(tmp_path / "var" / "lib") == 0o700
    assert mode_of(tmp_path) == before  # it existed: not the inbox's to change


@pytest.mark.parametrize(
    ("file_mode", "umask"),
    [(0o640, 0o022), (0o600, 0o000), (0o660, 0o077)],
    ids=["640", "600-under-umask-000", "660-under-umask-077"],
)
def test_a_mode_asked_for_is_the_mode_made_whatever_the_umask(
    tmp_path: Path, file_mode: int, umask: int
) -> None:
    os.umask(umask)  # the fixture restores the process's own
    db = tmp_path / "app" / "events.db"
    inbox = open_inbox(f"sqlite:///{db}?create_folders=1", file_mode=file_mode)
    assert isinstance(inbox, SQLiteInbox)
    modes = while_open(inbox, lambda: [mode_of(p) for p in files_of(db)])
    assert modes == [file_mode] * 3
    assert mode_of(db.parent) == folder_mode(file_mode)


def test_folders_get_an_execute_bit_wherever_their_mode_has_a_read_bit() -> None:
    assert folder_mode(0o600) == 0o700
    assert folder_mode(0o640) == 0o750
    assert folder_mode(0o644) == 0o755
    assert folder_mode(0o620) == 0o720  # write without read: nothing to list, no entry


def test_a_folder_that_existed_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "srv"  # stands for /var/lib/app, made by someone else
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    db = shared / "twilio" / "events.db"
    while_open(SQLiteInbox(db, create_folders=True), lambda: None)
    assert mode_of(shared) == 0o755
    assert mode_of(shared / "twilio") == 0o700


# -- found with another mode -------------------------------------------------------------
def legacy_inbox(db: Path) -> sqlite3.Connection:
    """An inbox file as an earlier version left it under umask 022, still open elsewhere
    (so its -wal and -shm exist too): every file 0644."""
    db.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE scratch (x)")
    connection.execute("INSERT INTO scratch VALUES (1)")
    connection.commit()
    assert [mode_of(p) for p in files_of(db)] == [0o644] * 3
    return connection


def test_the_listener_sets_files_found_wider_to_owner_only_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    db = tmp_path / "events.db"
    other = legacy_inbox(db)
    try:
        modes = while_open(SQLiteInbox(db), lambda: [mode_of(p) for p in files_of(db)])
    finally:
        other.close()
    assert modes == [0o600] * 3
    told = [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]
    assert len(told) == 3, told
    for path in files_of(db):
        (message,) = [m for m in told if f"{path} had mode 644: set to 600" in m]
        assert "TWILIO_TRIGGER_FILE_MODE" in message  # and how to keep the old mode


def test_a_wider_mode_asked_for_is_given_to_existing_files_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    db = tmp_path / "events.db"
    while_open(SQLiteInbox(db), lambda: None)
    assert mode_of(db) == 0o600
    modes = while_open(SQLiteInbox(db, file_mode=0o640), lambda: [mode_of(p) for p in files_of(db)])
    assert modes == [0o640] * 3
    changed = [r for r in caplog.records if r.name == LOGGER and "had mode" in r.getMessage()]
    assert changed
    assert {r.levelno for r in changed} == {logging.INFO}  # asked for: nothing to warn about


def test_reading_without_opening_changes_no_mode_and_follows_the_file(tmp_path: Path) -> None:
    # The command line reads and replays without open(): it must not undo a mode
    # the listener was told to use, and SQLite gives its -wal and -shm the file's.
    db = tmp_path / "events.db"
    while_open(SQLiteInbox(db, file_mode=0o640), lambda: None)
    assert mode_of(db) == 0o640
    modes = while_open(SQLiteInbox(db), lambda: [mode_of(p) for p in files_of(db)], opened=False)
    assert modes == [0o640] * 3


def test_a_link_made_ahead_gets_its_file_made_private(tmp_path: Path) -> None:
    # ln -s /data/events.db events.db before the first start: the file is made at
    # the link's end, with the mode, and SQLite's -wal and -shm beside it.
    data = tmp_path / "data"
    data.mkdir()
    link = tmp_path / "events.db"
    link.symlink_to(data / "events.db")
    real = files_of(data / "events.db")
    assert while_open(SQLiteInbox(link), lambda: [mode_of(p) for p in real]) == [0o600] * 3


def test_a_link_to_a_wide_file_has_the_file_and_its_journals_set(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    other = legacy_inbox(data / "events.db")
    link = tmp_path / "events.db"
    link.symlink_to(data / "events.db")
    try:
        real = files_of(data / "events.db")
        assert while_open(SQLiteInbox(link), lambda: [mode_of(p) for p in real]) == [0o600] * 3
    finally:
        other.close()


# -- through the listener ----------------------------------------------------------------
@pytest.mark.parametrize("configured", [None, "640"], ids=["default", "env-640"])
def test_a_listener_makes_its_inbox_private_or_as_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: str | None
) -> None:
    if configured is not None:
        monkeypatch.setenv("TWILIO_TRIGGER_FILE_MODE", configured)
    expected = 0o600 if configured is None else int(configured, 8)
    db = tmp_path / "data" / "events.db"
    recorder = Recorder()
    with running(SmsRecorder(recorder), inbox=f"sqlite:///{db}?create_folders=1") as listener:
        answer = signed_post(listener.url, sms_status_payload("delivered"), TOKEN)
        assert answer.status_code == 200
        wait_until(lambda: len(recorder.calls) == 1, "the callback")
        modes = [mode_of(p) for p in files_of(db)]
    assert modes == [expected] * 3
    assert mode_of(db.parent) == folder_mode(expected)
