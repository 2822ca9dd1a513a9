"""The options of the `inbox` commands that choose events (`list`, `replay`), and the
search they make; durations and moments as the command line writes them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import click

from ..inbox import Search, State
from ..inbox._search import FAILED

__all__ = ["FILTERS", "duration", "moment", "search_of", "search_options"]

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> float:
    number, unit = (text[:-1], text[-1]) if text[-1:] in UNITS else (text, "s")
    try:
        value = float(number) * UNITS[unit]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a duration such as 45s, 30m, 12h or 7d", param_hint="--older-than"
        ) from None
    if value < 0:
        raise click.BadParameter("a duration is not negative", param_hint="--older-than")
    return value


_F = TypeVar("_F", bound=Callable[..., object])


def search_options(dead_help: str) -> Callable[[_F], _F]:
    """The options that choose events, shared by `list` and `replay`; the command
    gets them as keyword arguments, for :func:`search_of`."""
    options = [
        click.option("--dead", is_flag=True, help=dead_help),
        click.option("--state", type=click.Choice([s.value for s in State]),
                     help="Only this state (as --outcome)."),
        click.option("--outcome", type=click.Choice([*(s.value for s in State), FAILED]),
                     help="Only this state, or failed: at least one attempt failed."),
        click.option("--sid", metavar="SID", help="Only this message's or call's SID."),
        click.option("--number", metavar="NUMBER",
                     help="Only events from or to this number, e.g. +15558675309."),
        click.option("--kind", metavar="KIND", help="Only this kind: sms, call, recording..."),
        click.option("--status", metavar="STATUS", help="Only this status, e.g. undelivered."),
        click.option("--callback", metavar="NAME",
                     help="Only events for this callback, e.g. on_failed."),
        click.option("--error-code", "error_code", metavar="CODE",
                     help="Only events with this Twilio ErrorCode, e.g. 30003."),
        click.option("--since", metavar="WHEN",
                     help="Only events received since WHEN: a date (2024-05-01), a time "
                     "(2024-05-01T13:30) or a time ago (2h, 30m, 7d)."),
        click.option("--until", metavar="WHEN",
                     help="Only events received before WHEN (as --since)."),
        click.option("--text", metavar="TEXT",
                     help="Only messages whose body holds TEXT (any case)."),
    ]  # fmt: skip

    def apply(command: _F) -> _F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


#: The options of :func:`search_options` that filter, besides --dead.
FILTERS = (
    "state", "outcome", "sid", "number", "kind", "status", "callback", "error_code", "since",
    "until", "text",
)  # fmt: skip


def search_of(filters: dict[str, object]) -> Search:
    """The search the options of :func:`search_options` ask for."""
    dead, state, outcome = filters["dead"], filters["state"], filters["outcome"]
    outcomes = {o for o in (State.DEAD.value if dead else None, state, outcome) if o}
    if len(outcomes) > 1:
        raise click.UsageError("--dead, --state and --outcome disagree: give one")
    chosen = str(outcomes.pop()) if outcomes else None
    now = time.time()

    def text(name: str) -> str | None:
        value = filters[name]
        return value if isinstance(value, str) else None

    def at(name: str) -> float | None:
        value = text(name)
        return None if value is None else moment(value, f"--{name}", now)

    try:
        return Search(
            sid=text("sid"), number=text("number"), kind=text("kind"), status=text("status"),
            outcome=chosen, callback=text("callback"),
            error_code=text("error_code"), text=text("text"),
            since=at("since"), until=at("until"),
        )  # fmt: skip
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def moment(text: str, option: str, now: float) -> float:
    """*text* as a time: a date or time in ISO form (local time unless it says
    otherwise), or a duration (2h, 30m, 7d) ago."""
    text = text.strip()
    if text[:1].isdigit() and text[-1:] in UNITS:
        with contextlib.suppress(click.BadParameter):
            return now - duration(text)
    try:
        return datetime.fromisoformat(text).astimezone().timestamp()
    except (ValueError, OverflowError, OSError):
        raise click.BadParameter(
            f"{text[:40]!r} is not a date (2024-05-01), a time (2024-05-01T13:30) or a "
            f"time ago (2h, 30m, 7d)",
            param_hint=option,
        ) from None
