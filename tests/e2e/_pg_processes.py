"""Listener and worker processes on a PostgreSQL inbox, for the crash tests.

Every process is ``python -m twilio_trigger run|worker service:listener`` in a
temporary folder (through :class:`~tests.e2e._processes.Process`), loading
:data:`SERVICE`: its ``on_delivered`` takes the transaction and inserts the
event's SID into an effects table of the test, in the same transaction that
marks the inbox entry done.  What each process does is told by environment
variables (``TEST_*``), its options by the listener's own (``TWILIO_TRIGGER_*``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.payloads import signed_post

from ._processes import Process
from ._support import TOKEN, free_port

__all__ = ["SERVICE", "Burst", "PgSetup", "send_burst"]

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

#: The service the processes load.  ``TEST_EFFECTS`` is the effects table;
#: ``TEST_DELAY`` seconds pass in the transaction after the insert;
#: ``TEST_REACHED`` is a file written once the row is inserted, and then the
#: callback waits (still in the transaction) for the file ``TEST_RELEASE``.
SERVICE = """
import asyncio
import os
import pathlib

import twilio_trigger as twilio

EFFECTS = os.environ["TEST_EFFECTS"]
DELAY = float(os.environ.get("TEST_DELAY", "0"))
REACHED = os.environ.get("TEST_REACHED")
RELEASE = os.environ.get("TEST_RELEASE")

listener = twilio.Listener()


@listener.service
class Effects(twilio.SmsStatusService):
    async def on_delivered(self, event, tx):
        await tx.execute(
            f"INSERT INTO {EFFECTS} (sid, pid) VALUES (%s, %s)", (event.sid, os.getpid())
        )
        if DELAY:
            await asyncio.sleep(DELAY)
        if REACHED:
            pathlib.Path(REACHED).write_text(event.sid)
        if RELEASE:
            while not pathlib.Path(RELEASE).exists():
                await asyncio.sleep(0.02)
"""


class PgSetup:
    """The folder, database, schema and environment of one test; every process it started."""

    def __init__(self, folder: Path, url: str, schema: str, **options: str) -> None:
        self.folder = folder
        self.url = url
        self.schema = schema
        #: The effects table, as SQL names it.
        self.effects = f'"{schema}".effects'
        self.events = f'"{schema}".events'
        self.processes: list[Process] = []
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TWILIO_TRIGGER_", "TEST_")) and k != "TWILIO_AUTH_TOKEN"
        }
        env.update(
            PYTHONPATH=str(SRC),
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_TRIGGER_INBOX=url,
            TWILIO_TRIGGER_POSTGRES_SCHEMA=schema,
            TEST_EFFECTS=self.effects,
        )
        env.update(options)
        self.env = env
        (folder / "service.py").write_text(SERVICE)

    # -- the database ----------------------------------------------------------------
    def sql(self, query: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of *query*, where ``{effects}`` and ``{events}`` name the tables."""
        query = query.replace("{effects}", self.effects).replace("{events}", self.events)
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection:
            cursor = connection.execute(query, args)
            return cursor.fetchall() if cursor.description else []

    def make_effects(self, *, unique: bool) -> None:
        """The effects table (UNIQUE on the SID when *unique*), in the test's schema."""
        self.sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        constraint = " UNIQUE" if unique else ""
        self.sql("CREATE TABLE {effects} (sid text NOT NULL" + constraint + ", pid integer)")

    def effect_sids(self) -> list[str]:
        return [str(row[0]) for row in self.sql("SELECT sid FROM {effects}")]

    def effect_count(self) -> int:
        return int(self.sql("SELECT count(*) FROM {effects}")[0][0])

    def states(self) -> dict[str, int]:
        """The inbox's entries per state (``{}`` before its table exists)."""
        exists = self.sql("SELECT to_regclass(%s) IS NOT NULL", (self.events,))[0][0]
        if not exists:
            return {}
        rows = self.sql("SELECT state, count(*) FROM {events} GROUP BY state")
        return {str(state): int(count) for state, count in rows}

    def repeated_keys(self) -> list[tuple[Any, ...]]:
        return self.sql("SELECT key, count(*) FROM {events} GROUP BY key HAVING count(*) > 1")

    def repeated_effects(self) -> list[tuple[Any, ...]]:
        return self.sql("SELECT sid, count(*) FROM {effects} GROUP BY sid HAVING count(*) > 1")

    # -- processes ---------------------------------------------------------------------
    def start(self, name: str, *args: str, **extra: str) -> Process:
        process = Process(self.folder, self.env, name, *args, extra=extra)
        self.processes.append(process)
        return process

    def listener(self, name: str, port: int | None = None, **extra: str) -> tuple[Process, str]:
        """A ``run`` process on a loopback port (free, unless given), once it accepts
        connections, and its URL."""
        port = free_port() if port is None else port
        process = self.start(
            name, "run", "service:listener", "--port", str(port), "--host", "127.0.0.1", **extra
        )
        process.wait_listening(port)
        # The port is bound before the inbox opens: wait for the inbox too.
        process.wait_for(lambda: "listening on" in process.log, "'listening on' in its log")
        return process, f"http://127.0.0.1:{port}/"

    def worker(self, name: str, **extra: str) -> Process:
        """A ``worker`` process, once it dispatches."""
        process = self.start(name, "worker", "service:listener", **extra)
        process.wait_working()
        return process

    def check_alive(self) -> bool:
        """True, or an AssertionError with its log when a process not killed by the
        test has exited."""
        for process in self.processes:
            code = process.popen.poll()
            if code is not None and code != -signal.SIGKILL:
                raise AssertionError(f"{process.name} exited ({code}):\n{process.tail()}")
        return True

    def kill_all(self) -> None:
        for process in self.processes:
            process.kill()


@dataclass
class Burst:
    """What a burst of POSTs got: the SIDs answered 200, and the others with their answer."""

    acknowledged: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def acked(self) -> set[str]:
        with self.lock:
            return set(self.acknowledged)

    def codes(self) -> dict[str, int]:
        with self.lock:
            counts: dict[str, int] = {"200": len(self.acknowledged)}
            for _, code in self.refused:
                counts[code] = counts.get(code, 0) + 1
            return counts

    def join(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self.threads if thread.is_alive()]
        assert not alive, f"senders still running after {timeout} s: {alive}"


def send_burst(
    sends: Sequence[tuple[str, dict[str, str]]],
    senders: int,
    *,
    on_answer: Callable[[Burst], None] | None = None,
) -> Burst:
    """POST each ``(url, params)`` of *sends*, signed, from *senders* threads (each
    with its client, taking every *senders*-th send); return at once.

    A sender stops early once the burst's ``stop`` is set; *on_answer* is called
    (outside the lock) after each answer.
    """
    burst = Burst()

    def send(share: Sequence[tuple[str, dict[str, str]]]) -> None:
        with httpx.Client(timeout=15.0) as client:
            for url, params in share:
                if burst.stop.is_set():
                    return
                sid = params["MessageSid"]
                try:
                    answer = signed_post(url, params, TOKEN, client=client)
                except httpx.HTTPError as error:
                    with burst.lock:
                        burst.refused.append((sid, type(error).__name__))
                else:
                    with burst.lock:
                        if answer.status_code == 200:
                            burst.acknowledged.append(sid)
                        else:
                            burst.refused.append((sid, str(answer.status_code)))
                if on_answer is not None:
                    on_answer(burst)

    burst.threads = [
        threading.Thread(target=send, args=(sends[n::senders],), name=f"sender-{n}", daemon=True)
        for n in range(senders)
    ]
    for thread in burst.threads:
        thread.start()
    return burst
