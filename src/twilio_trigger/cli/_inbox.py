"""The `inbox` group: counts, entries, dead letters; replay and purge; pause and resume."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from .._core.error_codes import error_code_info, error_code_url
from .._core.routing import event_of_kind
from .._logging import printable
from ..inbox import Counters, Entry, Inbox, Search, State
from ..inbox._search import MAX_LIMIT
from ..inbox.postgres import PostgresInbox
from ._access import inbox_option, local_time, open_named, run_on, schema_option
from ._common import CONTEXT
from ._filters import FILTERS, duration, search_of, search_options

__all__ = ["inbox"]


def _twilio_error(kind: str, params: Sequence[tuple[str, str]]) -> str | None:
    """The Twilio error code an event carried, with its title and Twilio's page:
    ``30003 Unreachable destination handset (https://...)``; ``None`` for none."""
    event = event_of_kind(kind, params)
    code = None if event is None else event.error_code
    url = error_code_url(code)
    if url is None:
        return None
    info = error_code_info(code)
    return f"{code} {info.title} ({url})" if info is not None else f"{code} ({url})"


@click.group(context_settings=CONTEXT)
@inbox_option
@schema_option
@click.pass_context
def inbox(ctx: click.Context, url: str | None, schema: str | None) -> None:
    """Look into the durable inbox: counts, entries, dead letters; replay and purge;
    pause and resume dispatch, limit a callback's, close its breaker; create or
    upgrade a PostgreSQL inbox's tables.

    --inbox and --schema go before the command's name or after it; given in both
    places, the command's own value wins.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db stats
      twilio-trigger inbox --inbox sqlite:///events.db list --dead
      twilio-trigger inbox --inbox sqlite:///events.db replay --dead
      twilio-trigger inbox migrate --inbox postgresql://admin@db:5432/app
    """
    ctx.obj = {"inbox": url, "schema": schema}


@inbox.command(context_settings=CONTEXT)
@inbox_option
@schema_option
@click.pass_context
def stats(ctx: click.Context, url: str | None, schema: str | None) -> None:
    """How many events are pending, running, done and dead now, and what the inbox
    has counted since it began: received, handled, failed attempts, events that
    failed (dead-lettered) and replayed, for every process of it.

    \b
    Example:
      TWILIO_TRIGGER_INBOX=sqlite:///events.db twilio-trigger inbox stats
    """
    box = open_named(ctx, url, schema)

    async def look(opened: Inbox) -> tuple[dict[State, int], bool, Counters]:
        return await opened.stats(), await opened.paused(), await opened.counters()

    counts, paused, counted = run_on(box, look)
    click.echo(f"inbox {box.location}")
    for state, number in counts.items():
        click.echo(f"  {state.value:<8} {number:>8}")
    click.echo(f"counted since {local_time(counted.since) if counted.since else 'it began'}:")
    for label, number in (
        ("received", counted.received),
        ("handled", counted.handled),
        ("failed attempts", counted.failed_attempts),
        ("events that failed (dead-lettered)", counted.dead_lettered),
        ("replayed", counted.replayed),
    ):
        click.echo(f"  {label:<36} {number:>8}")
    if paused:
        click.echo("dispatch paused: events are stored, none dispatched (`inbox resume`)")


@inbox.command(context_settings=CONTEXT)
@inbox_option
@schema_option
@click.pass_context
def pause(ctx: click.Context, url: str | None, schema: str | None) -> None:
    """Pause dispatch: listeners keep storing and acknowledging events, no worker
    of this inbox dispatches any until `inbox resume` (callbacks running now finish).

    Every process of the inbox stops taking events within its poll interval;
    the pause is kept in the inbox, so restarted processes stay paused.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db pause
    """
    _set_paused(ctx, url, schema, True)


@inbox.command(context_settings=CONTEXT)
@inbox_option
@schema_option
@click.pass_context
def resume(ctx: click.Context, url: str | None, schema: str | None) -> None:
    """Resume dispatch after `inbox pause`: the events stored meanwhile are dispatched.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db resume
    """
    _set_paused(ctx, url, schema, False)


def _set_paused(ctx: click.Context, url: str | None, schema: str | None, flag: bool) -> None:
    box = open_named(ctx, url, schema)

    async def change(opened: Inbox) -> bool:
        was = await opened.paused()
        await opened.set_paused(flag)
        return was

    was = run_on(box, change)
    if flag:
        already = " already" if was else ""
        click.echo(f"dispatch from {box.location} is{already} paused: events are stored, "
                   f"none dispatched until `twilio-trigger inbox resume`")  # fmt: skip
    else:
        click.echo(f"dispatch from {box.location} {'resumed' if was else 'was not paused'}")


@inbox.command(name="list", context_settings=CONTEXT)
@inbox_option
@schema_option
@search_options(dead_help="Only dead letters (as --outcome dead).")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True)
@click.option("--before", "before_id", type=click.IntRange(1), metavar="ID",
              help="Only events older than the event ID: the next page.")  # fmt: skip
@click.pass_context
def list_entries(
    ctx: click.Context,
    /,
    url: str | None,
    schema: str | None,
    limit: int,
    before_id: int | None,
    **filters: object,
) -> None:
    """The most recent events, newest first; the options find some.

    Every option given must match.  When more events match than --limit, the
    last line says how to ask for the next page (--before ID).

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db list --dead --limit 20
      twilio-trigger inbox list --number +15558675309 --since 1d
      twilio-trigger inbox list --callback on_failed --error-code 30003 --since 2024-05-01
    """
    search = search_of(filters)
    page = run_on(
        open_named(ctx, url, schema),
        lambda box: box.search(search, limit=limit, before_id=before_id),
    )
    entries = list(page.entries)
    _list_entries(entries, search.outcome if isinstance(search.outcome, State) else None)
    if page.next_before_id is not None:
        looked = "" if page.scanned_all else " (this page stopped looking there)"
        click.echo(f"more: add --before {page.next_before_id}{looked}", err=True)


def _list_entries(entries: list[Entry], chosen: State | None) -> None:
    if not entries:
        click.echo("no events" + (f" in state {chosen.value}" if chosen else ""))
        return
    click.echo(
        f"{'ID':>6}  {'RECEIVED':<19}  {'KIND':<4}  {'STATUS':<11}  {'SID':<34}  "
        f"{'STATE':<7}  {'TRIES':>5}  LAST ERROR"
    )
    for e in entries:
        # What came in a request is escaped: a terminal must not act on it.
        status, sid = printable(e.status or "-"), printable(e.sid or "-")
        error = printable((e.error_line or "")[:60])
        click.echo(
            f"{e.id:>6}  {local_time(e.received_at):<19}  {e.kind:<4}  {status:<11}  "
            f"{sid:<34}  {e.state.value:<7}  {e.attempts:>5}  {error}"
        )


@inbox.command(context_settings=CONTEXT)
@inbox_option
@schema_option
@click.argument("entry_id", type=int, metavar="ID")
@click.pass_context
def show(ctx: click.Context, url: str | None, schema: str | None, entry_id: int) -> None:
    """One event: its state, attempts, every parameter and its last error.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db show 42
    """
    entry = run_on(open_named(ctx, url, schema), lambda box: box.get(entry_id))
    if entry is None:
        raise click.ClickException(f"no event {entry_id} in the inbox")
    # What came in a request is escaped: a terminal must not act on it.
    sid, status = printable(str(entry.sid)), printable(str(entry.status))
    click.echo(f"event {entry.id}: {entry.kind} {sid} ({status})")
    click.echo(f"  state          {entry.state.value}")
    click.echo(f"  attempts       {entry.attempts}")
    click.echo(f"  received       {local_time(entry.received_at)}")
    if entry.state is State.PENDING:
        click.echo(f"  next attempt   {local_time(entry.next_attempt_at)}")
    click.echo(f"  finished       {local_time(entry.finished_at)}")
    click.echo(f"  delivery key   {printable(entry.key)}")
    click.echo("  parameters")
    width = max((len(name) for name, _ in entry.params), default=0)
    for name, value in entry.params:
        click.echo(f"    {printable(name):<{width}}  {printable(value)}")
    twilio_error = _twilio_error(entry.kind, entry.params)
    if twilio_error is not None:
        click.echo(f"  Twilio error   {twilio_error}")
    if entry.last_error:
        click.echo("  last error")
        for line in entry.last_error.splitlines():
            click.echo(f"    {printable(line)}")


@inbox.command(context_settings=CONTEXT)
@inbox_option
@schema_option
@search_options(dead_help="Every dead letter; with other options, the ones they find.")
@click.option("--yes", is_flag=True, help="Replay what the options find without asking first.")
@click.argument("entry_ids", type=int, nargs=-1, metavar="[ID]...")
@click.pass_context
def replay(
    ctx: click.Context,
    /,
    url: str | None,
    schema: str | None,
    yes: bool,
    entry_ids: tuple[int, ...],
    **filters: object,
) -> None:
    """Make events pending again, with fresh attempts, for the listener to dispatch.

    Give event IDs, --dead for every dead letter, or the options of `inbox list`
    to replay the dead letters they find: the command says how many, asks
    first (--yes does not), and replays them 500 at a time.  Done events are
    replayed only with --outcome done (their callbacks run again); pending and
    running ones never.  A running listener takes them within a second;
    otherwise the next one started.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db replay 42 43
      twilio-trigger inbox --inbox sqlite:///events.db replay --dead
      twilio-trigger inbox replay --dead --callback on_failed --since 2h
      twilio-trigger inbox replay --outcome failed --error-code 30003 \\
          --since 2024-05-01T13:00 --until 2024-05-01T14:00 --yes
    """
    chosen = any(filters[name] is not None for name in FILTERS)
    dead = bool(filters["dead"])
    if chosen and not entry_ids:
        _replay_matching(ctx, url, schema, search_of(filters), yes)
        return
    if dead == bool(entry_ids) or chosen:
        raise click.UsageError(
            "give event IDs or --dead (not both), or options that find events such as "
            "--callback on_failed --since 2h"
        )
    box = open_named(ctx, url, schema)
    count = run_on(box, lambda opened: opened.replay(None if dead else list(entry_ids)))
    if entry_ids and count < len(entry_ids):
        click.echo(
            f"{len(entry_ids) - count} of the events given are missing or running now",
            err=True,
        )
    click.echo(f"{count} event{'' if count == 1 else 's'} pending again")
    if entry_ids and count == 0:
        sys.exit(1)


def _can_ask() -> bool:
    """Whether someone at a terminal can answer a question."""
    return sys.stdin.isatty()


def _replay_matching(
    ctx: click.Context, url: str | None, schema: str | None, search: Search, yes: bool
) -> None:
    """Replay what *search* finds, once its count is confirmed."""
    if search.outcome in (State.PENDING, State.RUNNING):
        raise click.UsageError(
            "pending and running events are not replayed: they are waiting for a worker "
            "or with one now"
        )
    done = search.outcome is State.DONE
    what = "done events (their callbacks run again)" if done else "dead letters"
    count = run_on(open_named(ctx, url, schema), lambda box: box.count_matching(search))
    if count == 0:
        click.echo(f"no {what.partition(' (')[0]} found: nothing to replay")
        return
    plural = "" if count == 1 else "s"
    click.echo(f"{count} {what if count != 1 else what.replace('letters', 'letter')} found")
    if not yes:
        if not _can_ask():
            raise click.UsageError(
                f"no terminal to confirm replaying {count} event{plural}: add --yes"
            )
        click.confirm(f"Replay {count} event{plural}?", abort=True)

    def told(replayed: int, total: int) -> None:
        click.echo(f"  {replayed} of {total} replayed", err=True)

    replayed = run_on(
        open_named(ctx, url, schema, quiet=True),
        lambda box: box.replay_matching(search, progress=told),
    )
    click.echo(f"{replayed} event{'' if replayed == 1 else 's'} pending again")


@inbox.command(context_settings=CONTEXT)
@inbox_option
@schema_option
@click.option("--dead", "state", flag_value=State.DEAD.value, help="Purge dead letters.")
@click.option("--done", "state", flag_value=State.DONE.value, help="Purge handled events.")
@click.option("--older-than", "older_than", required=True, metavar="AGE",
              help="Only those finished longer ago than AGE: 45s, 30m, 12h, 7d.")  # fmt: skip
@click.pass_context
def purge(
    ctx: click.Context, url: str | None, schema: str | None, state: str | None, older_than: str
) -> None:
    """Delete dead letters (or handled events) that finished long enough ago.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db purge --dead --older-than 7d
    """
    if state is None:
        raise click.UsageError("say what to purge: --dead or --done")
    age = duration(older_than)
    count = run_on(open_named(ctx, url, schema), lambda box: box.purge(State(state), age))
    click.echo(f"{count} {state} event{'' if count == 1 else 's'} purged")


@inbox.command(context_settings=CONTEXT)
@inbox_option
@schema_option
@click.pass_context
def migrate(ctx: click.Context, url: str | None, schema: str | None) -> None:
    """Create or upgrade the tables of a PostgreSQL inbox and store.

    Listeners do it themselves when they start, unless postgres_migrate is off
    (TWILIO_TRIGGER_POSTGRES_MIGRATE=0), for teams whose applications may not
    change tables: run this then, with a role that may, before the listeners.
    A store in another database than the inbox is migrated by naming its URL.

    \b
    Example:
      twilio-trigger inbox migrate --inbox postgresql://admin@db.internal:5432/app
    """
    box = open_named(ctx, url, schema)
    if not isinstance(box, PostgresInbox):
        raise click.UsageError(
            "only a postgresql:// inbox has tables to create: SQLite and Redis make "
            "their own when first used"
        )
    before, after = run_on(box, box_migrate)
    where = f"schema {box.schema} of {box.location}"
    if before == after:
        click.echo(f"{where}: the tables are at version {after} already")
    else:
        made = "created" if before == 0 else f"upgraded from version {before}"
        click.echo(f"{where}: tables {made} to version {after}")


async def box_migrate(box: Inbox) -> tuple[int, int]:
    assert isinstance(box, PostgresInbox)
    return await box.migrate_schema()
