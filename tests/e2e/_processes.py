"""A ``python -m twilio_trigger`` process for the end-to-end tests, read through its log."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Process"]


class Process:
    """``python -m twilio_trigger ARGS`` in *folder*, its output in a log file.

    With *split*, stdout goes to a file of its own and the log is stderr alone;
    without *cli*, the command is ``python ARGS``.
    """

    def __init__(
        self,
        folder: Path,
        env: dict[str, str],
        name: str,
        *args: str,
        extra: dict[str, str] | None = None,
        split: bool = False,
        cli: bool = True,
    ) -> None:
        self.name = name
        self.log_path = folder / f"{name}.log"
        self.out_path = folder / f"{name}.out" if split else self.log_path
        command = [sys.executable, *(["-m", "twilio_trigger"] if cli else []), *args]
        with self.log_path.open("wb") as log, self.out_path.open("ab") as out:
            self.popen = subprocess.Popen(
                command,
                cwd=folder,
                env={**env, **(extra or {})},
                stdout=out if split else log,
                stderr=log if split else subprocess.STDOUT,
            )
        self.pid = self.popen.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.log

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    def wait_for(self, done: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited early ({what}):\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: timed out waiting for {what}:\n{self.log}")

    def wait_listening(self, port: int) -> None:
        def accepts() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return False

        self.wait_for(accepts, f"port {port}")

    def wait_working(self) -> None:
        self.wait_for(lambda: "dispatching from" in self.log, "'dispatching from' in its log")

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit code (killed with SIGKILL if it lingers)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.tail()}") from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
