"""Dispatch control: each callback's limits and breaker, shared by every process of an inbox.

Before a worker runs an event's callback it asks :meth:`Control.admit`: a
callback whose breaker is open, whose places are all taken, or whose pace
says wait, gets its event given back to the inbox (``defer``: pending again,
no attempt counted) at a time spread after the others given back, so that a
backlog is not claimed and given back in a loop.

What is kept in the inbox (for every process, across restarts), as settings:

* ``limit:CALLBACK``: a :class:`~twilio_trigger.Limit` as JSON, set by the
  command line or the inspector, over the ``limits`` option field by field;
* ``breaker:CALLBACK``: its open breaker as JSON (``{"until": ..., "opened_at":
  ..., "failures": ..., "error": ...}``), or empty when closed.

Paces and places are the inbox's (``pace``, ``enter``/``leave``): ``run:NAME``
for the concurrency limit, ``trial:NAME`` (one place) for the one event tried
when a breaker's cool-down ends.  Failures in a row are counted by each
process; the breaker they open is seen by all within a poll interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._alerts import Alert, Alerts
from ._core.events import TwilioEvent
from ._core.kinds import FALLBACK, kind_of_event
from ._limits import Limit
from ._logging import FirstWarning, printable
from ._observe import Observer
from .inbox import Inbox, UnreachableError

__all__ = [
    "BREAKER",
    "LIMIT",
    "BreakerState",
    "Control",
    "Held",
    "Ticket",
    "callback_name",
    "close_breaker",
    "dispatch_view",
]

logger = logging.getLogger("twilio_trigger")

#: The prefixes of the settings this module keeps in the inbox.
LIMIT = "limit:"
BREAKER = "breaker:"

_MIN_SPREAD = 0.01  # seconds between two events given back
_DURATION = 0.05  # the duration assumed of a callback not timed yet


@dataclass(frozen=True, slots=True)
class BreakerState:
    """An open breaker, as kept in the inbox."""

    until: float  # when one event is tried
    opened_at: float
    failures: int
    error: str | None = None

    def json(self) -> str:
        return json.dumps(
            {"until": self.until, "opened_at": self.opened_at, "failures": self.failures,
             "error": self.error}, sort_keys=True,
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> BreakerState | None:
        """The open breaker *text* holds; ``None`` for a closed one (empty text).
        ``ValueError`` when it is not one."""
        if not text:
            return None
        try:
            document = json.loads(text)
            state = cls(
                until=float(document["until"]),
                opened_at=float(document["opened_at"]),
                failures=int(document["failures"]),
                error=None if document.get("error") is None else str(document["error"])[:500],
            )
        except (ValueError, TypeError, KeyError, RecursionError, AttributeError):
            raise ValueError("not a breaker's state") from None
        if not (math.isfinite(state.until) and math.isfinite(state.opened_at)):
            raise ValueError("not a breaker's state")
        return state


class Held(NamedTuple):
    """An event held back: given back to the inbox, due at *at*, remembered under
    *hold* (an open breaker's, so that closing it makes the event due at once)."""

    at: float
    hold: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    """Leave to run one event's callback, and the places it holds meanwhile."""

    callback: str | None
    holder: str = ""
    running: bool = False  # holds a place of the concurrency limit
    trial: bool = False  # the one event tried after a breaker's cool-down


_FREE = Ticket(None)


def dispatch_view(
    settings: dict[str, str],
    limits: Iterable[tuple[str, Limit]] = (),
    *,
    breaker: int = 0,
    cooldown: float = 30.0,
    now: float | None = None,
) -> list[dict[str, object]]:
    """What holds each callback back, for a page or an API: one row per callback
    with a limit (the option's, the inbox's) or an open breaker, sorted by name.

    Each row: ``callback``; ``option`` and ``kept``, the limit's text from the
    ``limits`` option and from the inbox (``None`` for none); ``in_force``, the
    text of what applies (over the listener's *breaker* and *cooldown*);
    ``breaker``: ``None`` when closed, else ``until``, ``opened_at`` (seconds
    since the epoch), ``failures``, ``error`` and ``trying`` (its cool-down has
    ended: one event is being tried).  *settings* are the inbox's
    (:meth:`~twilio_trigger.inbox.Inbox.settings`).
    """
    moment = time.time() if now is None else now
    options = dict(limits)
    kept: dict[str, Limit] = {}
    opened: dict[str, BreakerState] = {}
    for name, value in settings.items():
        try:
            if name.startswith(LIMIT) and value:
                kept[name[len(LIMIT) :]] = Limit.from_json(value)
            elif name.startswith(BREAKER) and value:
                state = BreakerState.from_json(value)
                if state is not None:
                    opened[name[len(BREAKER) :]] = state
        except ValueError:
            continue  # the workers say so in the log
    base = Limit(breaker=breaker, cooldown=cooldown)
    rows: list[dict[str, object]] = []
    for callback in sorted({*options, *kept, *opened}):
        rules = base
        if callback in options:
            rules = options[callback].over(rules)
        if callback in kept:
            rules = kept[callback].over(rules)
        state = opened.get(callback)
        rows.append(
            {
                "callback": callback,
                "option": options[callback].text() if callback in options else None,
                "kept": kept[callback].text() if callback in kept else None,
                "in_force": _in_force(rules),
                "breaker": None
                if state is None
                else {
                    "until": state.until,
                    "opened_at": state.opened_at,
                    "failures": state.failures,
                    "error": state.error,
                    "trying": moment >= state.until,
                },
            }
        )
    return rows


def _in_force(rules: Limit) -> str:
    """What a limit in force does, in words: ``2 at once, 5/s (burst 10), breaker
    after 5 failures (30 s)``; ``no limit`` for none."""
    parts = []
    if rules.concurrency:
        parts.append(f"{rules.concurrency} at once")
    if rules.rate:
        parts.append(f"{rules.rate:g}/s (burst {rules.burst or 1})")
    if rules.breaker:
        failures = "1 failure" if rules.breaker == 1 else f"{rules.breaker} failures"
        parts.append(f"breaker after {failures} ({rules.cooldown or 30:g} s)")
    return ", ".join(parts) or "no limit"


async def close_breaker(inbox: Inbox, callback: str) -> bool:
    """Close the breaker of *callback* in *inbox*, and make the events it held due
    now: whether it was open."""
    was = await inbox.setting(BREAKER + callback)
    await inbox.set_setting(BREAKER + callback, "")
    await inbox.release(BREAKER + callback)
    return bool(was)


def callback_name(event: TwilioEvent) -> str | None:
    """The name of the callback *event* goes to (``on_delivered``; ``on_event`` for
    one no kind recognises), ``None`` for a status unknown to this version."""
    row = kind_of_event(event)
    if row is FALLBACK:
        return "on_event"
    return row.callback_for(event.status)


class Control:
    """This process's view of every callback's limits and breaker, and their use.

    *limits* are the ``limits`` option's; *breaker* and *cooldown* the
    listener's ``breaker_failures`` and ``breaker_cooldown``; *lease* how long
    a place is held at most by a process that died holding it.
    """

    def __init__(
        self,
        inbox: Inbox,
        *,
        limits: Iterable[tuple[str, Limit]] = (),
        breaker: int = 0,
        cooldown: float = 30.0,
        lease: float = 60.0,
        observer: Observer | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self._inbox = inbox
        self._options = dict(limits)
        self._base = Limit(concurrency=0, rate=0, burst=1, breaker=breaker, cooldown=cooldown)
        self._lease = lease
        self._observer = observer if observer is not None else Observer()
        self._alerts = alerts
        self._kept: dict[str, Limit] = {}  # limits kept in the inbox
        self._open: dict[str, BreakerState] = {}  # open breakers, as last read
        self._rules: dict[str, Limit] = {}
        self._failures: dict[str, int] = {}  # failures in a row, in this process
        self._next: dict[str, float] = {}  # when the next event given back is due
        self._durations: dict[str, float] = {}  # each callback's recent duration
        self._token = secrets.token_hex(4)
        self._bad = FirstWarning()

    # -- what is in force -----------------------------------------------------------
    def load(self, settings: dict[str, str]) -> None:
        """Take the limits and breakers kept in the inbox (its :meth:`~Inbox.settings`)."""
        kept: dict[str, Limit] = {}
        opened: dict[str, BreakerState] = {}
        for name, value in settings.items():
            try:
                if name.startswith(LIMIT) and value:  # empty: forgotten
                    kept[name[len(LIMIT) :]] = Limit.from_json(value)
                elif name.startswith(BREAKER):
                    state = BreakerState.from_json(value)
                    if state is not None:
                        opened[name[len(BREAKER) :]] = state
            except (ValueError, TypeError) as error:
                logger.log(
                    self._bad.level(name),
                    "ignored the setting %s kept in the inbox: %s",
                    printable(name[:100]),
                    error,
                )
        for callback in opened:
            if callback not in self._open:
                self._observer.breaker(callback, opened=True, here=False)
        for callback in self._open.keys() - opened.keys():
            self._observer.breaker(callback, opened=False, here=False)
        self._kept, self._open = kept, opened
        self._rules = {}

    def rules(self, callback: str) -> Limit:
        """The limit in force for *callback*: kept in the inbox, over the option,
        over the listener's breaker."""
        rules = self._rules.get(callback)
        if rules is None:
            rules = self._base
            option = self._options.get(callback)
            if option is not None:
                rules = option.over(rules)
            kept = self._kept.get(callback)
            if kept is not None:
                rules = kept.over(rules)
            self._rules[callback] = rules
        return rules

    def breaker_of(self, callback: str) -> BreakerState | None:
        """The open breaker of *callback*, as last read (``None``: closed)."""
        return self._open.get(callback)

    # -- before and after a callback ---------------------------------------------------
    async def admit(self, callback: str | None, entry_id: int) -> Ticket | Held:
        """A ticket to run the callback of inbox entry *entry_id* now, or when to
        give the entry back for (seconds since the epoch) and under what hold."""
        if callback is None:
            return _FREE
        rules = self.rules(callback)
        state = self._open.get(callback)
        if rules.empty and state is None:
            return _FREE
        holder = f"{self._token}:{entry_id}"
        now = time.time()
        trial = False
        if state is not None:
            hold = BREAKER + callback
            if now < state.until:
                at = self._spread(callback, state.until, self._duration(callback))
                return Held(at, hold)
            if not await self._inbox.enter(f"trial:{callback}", holder, 1, self._lease):
                # Another event is being tried: look again once it may have ended.
                wait = min(rules.cooldown or 1.0, max(1.0, 4 * self._duration(callback)))
                return Held(self._spread(callback, now + wait, self._duration(callback)), hold)
            trial = True
        running = False
        if rules.concurrency:
            if not await self._inbox.enter(
                f"run:{callback}", holder, rules.concurrency, self._lease
            ):
                await self._leave(callback, holder, running=False, trial=trial)
                self._observer.held(callback, "concurrency")
                gap = self._duration(callback) / rules.concurrency
                return Held(self._spread(callback, now + self._duration(callback), gap))
            running = True
        if rules.rate:
            interval = 1.0 / rules.rate
            wait = await self._inbox.pace(f"start:{callback}", interval, rules.burst or 1)
            if wait > 0:
                await self._leave(callback, holder, running=running, trial=trial)
                self._observer.held(callback, "rate")
                return Held(self._spread(callback, now + wait, interval))
        return Ticket(callback, holder, running=running, trial=trial)

    async def keep(self, ticket: Ticket, until: asyncio.Future[Any]) -> None:
        """Keep the places of *ticket* (a place of its concurrency, the breaker's
        trial) until *until* is done: a plain ``def`` callback past its time limit
        goes on in its thread, and holds its place until it ends, renewed every
        third of a lease (taking a place again renews it)."""
        callback = ticket.callback
        if callback is None or not (ticket.running or ticket.trial):
            return
        while not until.done():
            await asyncio.wait([until], timeout=self._lease / 3)
            if until.done():
                return
            try:
                if ticket.running:
                    limit = max(1, self.rules(callback).concurrency or 0)
                    await self._inbox.enter(f"run:{callback}", ticket.holder, limit, self._lease)
                if ticket.trial:
                    await self._inbox.enter(f"trial:{callback}", ticket.holder, 1, self._lease)
            except UnreachableError:  # told once by the inbox: try again at the next turn
                continue
            except Exception:
                logger.warning("could not renew the place of %s", callback, exc_info=True)

    def _spread(self, callback: str, at: float, gap: float) -> float:
        """*at*, or later: after the events of *callback* given back before, *gap*
        seconds apart (so that a backlog comes back at the pace it can go)."""
        due = max(at, self._next.get(callback, 0.0))
        self._next[callback] = due + max(_MIN_SPREAD, gap)
        return due

    def _duration(self, callback: str) -> float:
        return self._durations.get(callback, _DURATION)

    async def _leave(self, callback: str, holder: str, *, running: bool, trial: bool) -> None:
        if running:
            await self._inbox.leave(f"run:{callback}", holder)
        if trial:
            await self._inbox.leave(f"trial:{callback}", holder)

    async def finished(
        self, ticket: Ticket, *, ok: bool, seconds: float | None, error: str | None
    ) -> None:
        """The callback of *ticket* ended (*ok*: it succeeded, or had nothing to do)."""
        callback = ticket.callback
        if callback is None:
            return
        if seconds is not None:
            before = self._durations.get(callback)
            recent = seconds if before is None else 0.8 * before + 0.2 * seconds
            self._durations[callback] = min(5.0, max(0.001, recent))
        try:
            if ok:
                self._failures.pop(callback, None)
                if ticket.trial:
                    await self._close(callback)
            else:
                failures = self._failures[callback] = self._failures.get(callback, 0) + 1
                rules = self.rules(callback)
                if ticket.trial or (
                    rules.breaker and failures >= rules.breaker and callback not in self._open
                ):
                    await self._trip(callback, rules, failures, error, again=ticket.trial)
        finally:
            await self._leave(callback, ticket.holder, running=ticket.running, trial=ticket.trial)

    async def _trip(
        self, callback: str, rules: Limit, failures: int, error: str | None, *, again: bool
    ) -> None:
        now = time.time()
        cooldown = rules.cooldown or self._base.cooldown or 30.0
        state = BreakerState(now + cooldown, now, failures, error)
        await self._inbox.set_setting(BREAKER + callback, state.json())
        self._open[callback] = state
        self._failures.pop(callback, None)
        if again:
            logger.warning(
                "the breaker of %s stays open: the event tried after its cool-down failed "
                "too; its events wait %.0f s more (%s)",
                callback, cooldown, printable(error or "failed"),
            )  # fmt: skip
            return
        logger.warning(
            "the breaker of %s opened after %d failures in a row (last: %s): its events "
            "wait in the inbox %.0f s, then one is tried; `twilio-trigger inbox "
            "close-breaker %s` closes it now",
            callback, failures, printable(error or "failed"), cooldown, callback,
        )  # fmt: skip
        self._observer.breaker(callback, opened=True, here=True)
        if self._alerts is not None:
            self._alerts.raise_(
                Alert("breaker_opened", callback, now, error=error, failures=failures,
                      until=state.until)
            )  # fmt: skip

    async def _close(self, callback: str) -> None:
        await close_breaker(self._inbox, callback)
        if self._open.pop(callback, None) is not None:
            self._observer.breaker(callback, opened=False, here=True)
        self._next.pop(callback, None)
        logger.info(
            "the breaker of %s closed: the event tried after its cool-down succeeded", callback
        )
