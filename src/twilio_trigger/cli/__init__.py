"""The ``twilio-trigger`` command line: run, worker, demo, send, sign, verify, inbox.

One module per concept: ``_load`` imports the user's module, ``_serve`` runs
listeners and workers, ``_send`` sends, signs and verifies, ``_inbox`` looks into
the durable inbox (``_filters``: the options that choose its events; ``_control``:
each callback's limits and breaker), ``_demo``
plays the demo; ``_common`` holds what they share.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from .. import __version__
from . import _control  # noqa: F401 - adds the limits and breaker commands to `inbox`
from ._common import CONTEXT
from ._demo import demo
from ._inbox import inbox
from ._send import send, sign, verify
from ._serve import run, worker

__all__ = ["cli", "main"]


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="twilio-trigger")
def cli() -> None:
    """Receive Twilio webhooks and dispatch them to your service classes.

    \b
    Examples:
      twilio-trigger demo                       # a listener and a scripted flow of events
      twilio-trigger run examples/delivery_tracker.py
      twilio-trigger send sms delivered --url http://127.0.0.1:8090/ --auth-token TOKEN
    """


for _command in (run, worker, demo, send, sign, verify, inbox):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: click's commands, with every error on one line.

    Exit status: 0 success, 1 failure (an answer that is not 2xx, an invalid
    signature, a listener that cannot start), 2 a usage error.
    """
    try:
        result = cli.main(args=argv, prog_name="twilio-trigger", standalone_mode=False)
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else "twilio-trigger"
        message = " ".join(error.format_message().split())  # click's lists span lines
        click.echo(f"Error: {message} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"Error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
