"""The `inbox` commands of dispatch control: each callback's limits and breaker.

What they change is kept in the inbox: every process of it follows within its
poll interval, and a restart keeps it.
"""

from __future__ import annotations

import time

import click

from .._control import BREAKER, LIMIT, BreakerState
from .._control import close_breaker as close_it
from .._limits import LIMIT_FIELDS, Limit
from .._logging import printable
from ..inbox import PAUSED, Inbox
from ..inbox._search import callback_names
from ._access import inbox_option, local_time, open_named, run_on, schema_option
from ._common import CONTEXT
from ._inbox import inbox

__all__ = ["close_breaker", "limit", "limits"]


def _callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value not in callback_names():
        raise click.BadParameter(
            f"{value[:40]!r} is not a callback an event goes to (such as on_delivered, "
            f"on_failed, on_event)",
            ctx,
            param,
        )
    return value


@inbox.command(context_settings=CONTEXT)
@click.argument("callback", callback=_callback)
@click.option(
    "--concurrency",
    type=click.IntRange(0),
    metavar="N",
    help="At most N of its events run at once, over every process (0: no limit).",
)
@click.option(
    "--rate",
    type=click.FloatRange(0),
    metavar="PER_SECOND",
    help="At most this many of its events start per second on average (0: no limit).",
)
@click.option(
    "--burst",
    type=click.IntRange(1),
    metavar="N",
    help="Up to N start at once after a quiet spell (with --rate; default 1).",
)
@click.option(
    "--breaker",
    type=click.IntRange(0),
    metavar="N",
    help="Its breaker opens after N failures in a row (0: never).",
)
@click.option(
    "--cooldown",
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="Seconds its open breaker holds its events before one is tried.",
)
@click.option(
    "--clear",
    is_flag=True,
    help="Forget the limits kept in the inbox: the listener's limits option rules.",
)
@inbox_option
@schema_option
@click.pass_context
def limit(
    ctx: click.Context, callback: str, concurrency: int | None, rate: float | None,
    burst: int | None, breaker: int | None, cooldown: float | None, clear: bool,
    url: str | None, schema: str | None,
) -> None:  # fmt: skip
    """Limit how CALLBACK's events are dispatched, for every process of the inbox.

    The values given are kept in the inbox, over those kept before and over the
    listener's `limits` option, field by field; a restart keeps them.  Events
    held back wait in the inbox: they are acknowledged and stored, and no
    attempt of theirs is counted.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db limit on_delivered --rate 5 --burst 10
      twilio-trigger inbox --inbox sqlite:///events.db limit on_failed --concurrency 1
      twilio-trigger inbox --inbox sqlite:///events.db limit on_delivered --clear
    """
    given = {"concurrency": concurrency, "rate": rate, "burst": burst, "breaker": breaker,
             "cooldown": cooldown}  # fmt: skip
    values = {name: value for name, value in given.items() if value is not None}
    if clear and values:
        raise click.UsageError("--clear forgets the kept limits: give it alone")
    if not clear and not values:
        raise click.UsageError(
            "say what to limit: --concurrency, --rate (with --burst), --breaker, "
            "--cooldown, or --clear"
        )
    try:
        asked = Limit(**values)  # type: ignore[arg-type]
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    box = open_named(ctx, url, schema)

    async def change(opened: Inbox) -> Limit | None:
        if clear:
            await opened.set_setting(LIMIT + callback, "")
            return None
        kept = await opened.setting(LIMIT + callback)
        before = Limit()
        if kept:
            try:
                before = Limit.from_json(kept)
            except ValueError:
                before = Limit()  # unreadable: replaced
        now = asked.over(before)
        await opened.set_setting(LIMIT + callback, now.json())
        return now

    kept = run_on(box, change)
    if kept is None:
        click.echo(f"{callback}: no limits kept in {box.location}; the listener's option rules")
    else:
        click.echo(f"{callback}: {kept.text()} (kept in {box.location}; processes follow "
                   f"within their poll interval)")  # fmt: skip


@inbox.command(context_settings=CONTEXT)
@inbox_option
@schema_option
@click.pass_context
def limits(ctx: click.Context, url: str | None, schema: str | None) -> None:
    """Show what holds dispatch back: the pause, the limits kept in the inbox, and the
    breakers open now.

    Limits set only by a listener's `limits` option are not in the inbox and
    not shown: the listener applies them under these.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db limits
    """
    box = open_named(ctx, url, schema)
    settings = run_on(box, lambda opened: opened.settings())
    click.echo(f"inbox {box.location}")
    paused = settings.get(PAUSED) == "1"
    click.echo(f"  dispatch {'paused (`inbox resume`)' if paused else 'running'}")
    rows = 0
    for name, value in sorted(settings.items()):
        shown = printable(name[:100])
        if name.startswith(LIMIT) and value:
            try:
                text = Limit.from_json(value).text()
            except ValueError:
                text = "(unreadable: set it again with `inbox limit`)"
            click.echo(f"  {shown[len(LIMIT) :]}: {text}")
            rows += 1
        elif name.startswith(BREAKER) and value:
            try:
                state = BreakerState.from_json(value)
            except ValueError:
                continue
            if state is None:
                continue
            left = state.until - time.time()
            when = f"one event tried in {left:.0f} s" if left > 0 else "one event being tried"
            error = f"; last error: {printable(state.error)}" if state.error else ""
            since = local_time(state.opened_at)
            click.echo(
                f"  {shown[len(BREAKER) :]}: breaker OPEN since {since} after "
                f"{state.failures} failures in a row, {when}{error}"
            )
            rows += 1
    if not rows:
        click.echo(f"  no limit kept, no breaker open ({', '.join(LIMIT_FIELDS)}: `inbox limit`)")


@inbox.command(name="close-breaker", context_settings=CONTEXT)
@click.argument("callback", callback=_callback)
@inbox_option
@schema_option
@click.pass_context
def close_breaker(ctx: click.Context, callback: str, url: str | None, schema: str | None) -> None:
    """Close CALLBACK's open breaker now: its events are dispatched again without
    waiting for its cool-down (the downstream system is known to be back).

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db close-breaker on_delivered
    """
    box = open_named(ctx, url, schema)

    if run_on(box, lambda opened: close_it(opened, callback)):
        click.echo(f"the breaker of {callback} is closed: its events are dispatched again")
    else:
        click.echo(f"the breaker of {callback} was not open")
