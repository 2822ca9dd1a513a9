"""`demo`: a listener with example services, sent a scripted flow of signed events."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

from .._exceptions import TwilioTriggerError
from .._listener import Listener
from .._signals import on_stop_signals
from ._common import CONTEXT
from ._demo_services import CallTracker, DeliveryTracker, script
from ._send import signed_post

__all__ = ["demo"]


class _Notes(logging.Handler):
    """Keeps the library's log lines, to print each under the event that caused it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._lines: list[str] = []
        self._lock = threading.Lock()

    live = False  # once set, lines are printed as they come

    def emit(self, record: logging.LogRecord) -> None:
        if self.live:
            click.echo(f"  {record.getMessage()}")
            return
        with self._lock:
            self._lines.append(record.getMessage())

    def take(self) -> list[str]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (handlers restored after)."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    with on_stop_signals(handle):
        yield stop


def program() -> str:
    """This command as another terminal runs it.

    ``twilio-trigger`` when that name finds this very script outside a virtual
    environment; else the script's full path, since another terminal may not
    have the environment's bin folder on its PATH (``scripts/demo`` puts it on
    its own); else ``python -m twilio_trigger`` with this Python.
    """
    script = Path(sys.argv[0])
    if script.stem == "twilio-trigger" and script.is_file() and os.access(script, os.X_OK):
        found = shutil.which("twilio-trigger")
        in_environment = sys.prefix != sys.base_prefix
        if found and not in_environment and Path(found).resolve() == script.resolve():
            return "twilio-trigger"
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m twilio_trigger"


@click.command(context_settings=CONTEXT)
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True,
              help="Port to listen on (0 picks a free one).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--once", is_flag=True, help="Exit after the script: 0 if every event was dispatched."
)
def demo(port: int, host: str, once: bool) -> None:
    """Start a listener with example services and send it a scripted flow of signed events.

    An SMS delivery tracker and a call tracker keep each SID's status history and
    log its transitions; the call tracker answers an incoming call with a menu
    (a <Gather>) and the key pressed with what the caller hears next.  After the
    script the listener keeps running, so that you can send it more with
    `twilio-trigger send`, until Ctrl-C.

    \b
    Example:
      twilio-trigger demo            # then, in another terminal, the send command it prints
      twilio-trigger demo --once     # CI smoke test: exit status says if all went well
    """
    notes = _Notes()
    package_logger = logging.getLogger("twilio_trigger")
    package_logger.addHandler(notes)
    package_logger.setLevel(logging.INFO)
    package_logger.propagate = False
    token = secrets.token_hex(16)
    # Each event's own log line would repeat what the demo prints for it.
    listener = Listener(port, host=host, auth_tokens=[token], event_log_level="debug")
    messages, calls = DeliveryTracker(), CallTracker()
    listener.attach(messages)
    listener.attach(calls)
    try:
        listener.start()
    except TwilioTriggerError as error:
        raise click.ClickException(str(error)) from None
    try:
        url = listener.url
        click.echo("twilio-trigger demo")
        click.echo(f"  listening on   {url}")
        click.echo(f"  auth token     {token}   (generated for this run)")
        steps = script()
        click.echo(f"\nSending {len(steps)} signed events, as Twilio would:")
        notes.take()
        failures = 0
        for step in steps:
            seen = len(messages.calls), len(calls.calls)
            params = list(step.params.items())
            answer = signed_post(url, params, token, None, 15.0)
            made = messages.calls[seen[0] :] + calls.calls[seen[1] :]
            reached = made[0][0] if len(made) == 1 else f"{len(made)} callbacks"
            ok = answer.status == 200 and reached == step.callback
            failures += not ok
            sid = step.params.get("CallSid") or step.params.get("MessageSid", "?")
            shown = answer.text.partition("?>")[2] or answer.text  # without <?xml ...?>
            click.echo(
                f"  {'ok ' if ok else 'BAD'} {step.kind:<6} {sid}  {step.status:<11} "
                f"→ {reached:<31} {answer.status} {shown.strip()}  {answer.milliseconds:.1f} ms"
            )
            for note in notes.take():
                click.echo(f"        {note}")
        if failures:
            click.echo(f"\n{failures} of {len(steps)} events did not reach their callback.")
        else:
            click.echo(f"\nAll {len(steps)} events were dispatched to the expected callback.")
        if once:
            sys.exit(1 if failures else 0)
        with _stop_signals() as stop:
            click.echo("\nStill listening.  Send more events from another terminal, e.g.:")
            click.echo(f"  {program()} send sms delivered --url {url} --auth-token {token}")
            click.echo("Press Ctrl-C to stop.\n")
            notes.live = True
            while not stop.wait(0.5):
                pass
    finally:
        listener.stop()
