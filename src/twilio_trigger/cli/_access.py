"""What every `inbox` command shares: the inbox it names, opened; its work run on it.

The inbox comes from the command's own ``--inbox`` (and ``--schema``), else the
group's, else the environment, and a bad value is blamed on whichever gave it;
the work runs with the inbox opened and closed around it, and a failure to reach
or read it is said in one line.  Used by the commands of ``_inbox`` and ``_control``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import click

from .._config import ENVIRONMENT
from .._exceptions import ConfigurationError
from .._held_logs import HeldLogs
from .._option_parsers import valid_schema
from .._options import OPTIONS
from .._postgres_schema import SchemaError
from ..inbox import Inbox, UnreachableError, open_inbox
from ..inbox.postgres import PostgresInbox
from ..inbox.sqlite import SQLiteInbox
from ._common import warn

__all__ = ["inbox_option", "local_time", "open_named", "run_on", "schema_option"]

_T = TypeVar("_T")


def _given(ctx: click.Context, name: str, value: str | None, variable: str) -> tuple[str, str]:
    """A value of the command's own flag, else the group's, else its variable's,
    and where it came from ("" when none is given)."""
    group = ctx.obj if isinstance(ctx.obj, dict) else {}
    for given in (value, group.get(name)):
        if given:
            return given, f"--{name}"
    from_environment = os.environ.get(variable, "")
    return from_environment, variable if from_environment.strip() else ""


def _refusal(message: str, source: str) -> click.UsageError:
    """A bad value, blamed on the flag or the variable it came from."""
    if source.startswith("--"):
        return click.BadParameter(message, param_hint=source)
    return click.UsageError(message if message.startswith(source) else f"{source}: {message}")


def open_named(
    ctx: click.Context, url: str | None, schema: str | None, *, quiet: bool = False
) -> Inbox:
    """The inbox the command names (not connected yet): the command's flags, else
    the group's (``inbox --inbox URL stats``), else the environment."""
    url, url_source = _given(ctx, "inbox", url, ENVIRONMENT["inbox"])
    if not url_source:
        raise click.UsageError("no inbox: pass --inbox sqlite:///path/events.db or set "
                               "TWILIO_TRIGGER_INBOX")  # fmt: skip
    try:
        url = OPTIONS.inbox.parse(url, url_source) or url
    except ConfigurationError as error:
        raise _refusal(str(error), url_source) from None
    schema, schema_source = _given(ctx, "schema", schema, ENVIRONMENT["postgres_schema"])
    schema = schema.strip() if schema_source else OPTIONS.postgres_schema.default
    if not valid_schema(schema):
        raise _refusal(
            f"{schema[:80]!r} is not a schema name (lower-case letters, digits, underscores)",
            schema_source,
        )
    variable = ENVIRONMENT["redis_prefix"]
    prefix = os.environ.get(variable) or OPTIONS.redis_prefix.default
    try:
        prefix = OPTIONS.redis_prefix.parse(prefix, variable)
    except ConfigurationError as error:
        raise _refusal(str(error), variable) from None
    try:
        box = open_inbox(url, prefix=prefix, schema=schema)
    except ValueError as error:
        raise _refusal(str(error), url_source) from None
    if schema_source == "--schema" and not isinstance(box, PostgresInbox) and not quiet:
        warn(f"--schema has no effect on {box.location}: only a postgresql:// inbox has one")
    return box


def run_on(box: Inbox, work: Callable[[Inbox], Awaitable[_T]]) -> _T:
    """*work* done on *box*, opened and closed around it; a failure is one line
    (the log lines of its attempt, such as an outage's, would only repeat it)."""
    if isinstance(box, SQLiteInbox) and not box.path.exists():
        raise click.ClickException(f"no inbox at {box.path}")

    async def session() -> _T:
        try:
            return await work(box)
        finally:
            await box.close()

    with HeldLogs() as held:
        try:
            return asyncio.run(session())
        except Exception as error:
            failure = _failure(box, error)
            if failure is None:
                raise
            held.drop()
            raise failure from None


def _failure(box: Inbox, error: Exception) -> click.ClickException | None:
    """What to say of *error*, raised while using *box*; ``None`` for a bug."""
    if isinstance(error, sqlite3.Error | OSError):
        return click.ClickException(f"cannot read the inbox {box.location}: {error}")
    if isinstance(error, ImportError | SchemaError):
        return click.ClickException(str(error))
    module = type(error).__module__
    if isinstance(error, UnreachableError) or module.startswith(("redis.", "psycopg")):
        reason = " ".join(str(error).split())  # a database's message may span lines
        if module.startswith("psycopg.errors") and "does not exist" in reason:
            reason += " (no tables yet: `twilio-trigger inbox migrate` makes them)"
        return click.ClickException(f"cannot read the inbox {box.location}: {reason}")
    return None


def local_time(moment: float | None) -> str:
    """A time an inbox keeps (seconds since the epoch), in this machine's zone; "-" for none."""
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S")


inbox_option = click.option(
    "--inbox", "url", metavar="URL",
    help="The inbox, e.g. sqlite:///events.db, redis://127.0.0.1:6379/0 (key prefix from "
    "$TWILIO_TRIGGER_REDIS_PREFIX) or postgresql://user@127.0.0.1:5432/db.  Before or after "
    "the command's name; the command's own wins.  [default: $TWILIO_TRIGGER_INBOX]",
)  # fmt: skip
schema_option = click.option(
    "--schema", metavar="NAME",
    help="The schema of a PostgreSQL inbox's tables.  Before or after the command's name; "
    "the command's own wins.  [default: $TWILIO_TRIGGER_POSTGRES_SCHEMA, else twilio_trigger]",
)  # fmt: skip
