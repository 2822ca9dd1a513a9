"""The inspector's HTML pages, rendered from the templates of ``templates``.

The templates are :class:`string.Template` files: ``${name}`` is replaced, and
nothing else is.  A value is escaped (:func:`._rows.escape`: :func:`html.escape`,
and control characters written as escapes) by the code that
puts it in, right where it does; what goes in unescaped is either markup built
here (its own values escaped as they are written in), a number, or a path of
this server's.  The rows repeated within a page (facts, attempts, parameters,
headers, the kinds of the filter) are built here, one line each.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from string import Template
from urllib.parse import quote

from .._core.kinds import KINDS
from ..inbox import Entry, State
from ..inbox._search import callback_names
from ._activity import AttemptRecord
from ._rows import error_code_link, escape, shown
from ._search import gap, is_sid
from ._static import Asset

__all__ = ["UNAUTHORIZED", "event", "index", "sid_link", "timeline"]

#: The outcomes the search offers, as the form names them.
_OUTCOME_CHOICES = (
    ("", "all"), ("handled", "handled"), ("failing", "failing"),
    ("failed", "failed at least once"), ("retrying", "retrying"),
    ("dead_letter", "dead letters"), ("pending", "pending"), ("running", "running"),
)  # fmt: skip


@functools.cache
def _template(name: str) -> Template:
    """The template *name* of ``templates``, read once."""
    folder = resources.files(__name__.rpartition(".")[0]).joinpath("templates")
    return Template(folder.joinpath(name).read_text(encoding="utf-8"))


#: The page that asks for the token (it has no value in it).
UNAUTHORIZED = _template("unauthorized.html").substitute().encode("utf-8")


def _head(title: str, assets: Mapping[str, Asset], script: str | None) -> str:
    """The ``<head>`` of a page: its title (escaped here), stylesheet and script."""
    loads = f'<script src="{script}" defer></script>' if script else ""
    return _template("head.html").substitute(
        title=escape(title), stylesheet=assets["inspector.css"].path, script=loads
    )


def _options(choices: list[tuple[str, str]] | tuple[tuple[str, str], ...], chosen: str) -> str:
    """The ``<option>`` list of a select, with *chosen* selected (escaped here)."""
    return "".join(
        f'<option value="{escape(value)}"{" selected" if value == chosen else ""}>'
        f"{escape(text)}</option>"
        for value, text in choices
    )


def index(assets: Mapping[str, Asset], given: Mapping[str, str], error: str | None) -> str:
    """The page of the list of events (``/``): the search form filled with the
    filters *given* in its address (each escaped), the reason they cannot be used
    (*error*), if any; the rows are its script's to fill."""
    e = escape
    head = _head("twilio-trigger inspector", assets, assets["inspector.js"].path)
    kinds = _options([("", "all"), *((kind.name, kind.name) for kind in KINDS)], given["kind"])
    outcomes = _options(_OUTCOME_CHOICES, given["outcome"])
    callbacks = "".join(f'<option value="{e(name)}">' for name in callback_names())
    fields = {name: e(value, quote=True) for name, value in given.items()}
    return _template("index.html").substitute(
        head=head,
        kinds=kinds,
        outcomes=outcomes,
        callbacks=callbacks,
        control_script=assets["control.js"].path,
        error=e(error or ""),
        error_hidden="" if error else " hidden",
        **{f"v_{name}": value for name, value in fields.items()},
    )


def sid_link(sid: str | None) -> str:
    """*sid* linked to its timeline (markup escaped here); a SID that could not
    name a page is the text alone."""
    if not sid:
        return ""
    if not is_sid(sid):
        return escape(sid)
    return f'<a class="sid" href="/sids/{quote(sid)}">{escape(sid)}</a>'


def timeline(found: Mapping[str, object], assets: Mapping[str, Asset]) -> str:
    """The page of one SID's timeline (``/sids/<SID>``): its events oldest first."""
    e = escape
    events = found["events"]
    assert isinstance(events, list)
    lines = []
    for shown_row in events:
        outcome = str(shown_row["outcome"])
        stale = (
            "<span class='stale' title='ranked below a status received before it'>stale</span>"
            if shown_row["stale"]
            else ""
        )
        lines.append(
            f"<tr class='{e(outcome)}{' stale' if shown_row['stale'] else ''}' "
            f"data-id='{int(shown_row['id'])}'>"
            f"<td><a href='/events/{int(shown_row['id'])}'>{int(shown_row['id'])}</a></td>"
            f"<td class='received'>{e(str(shown_row['received']))}</td>"
            f"<td class='gap'>{e(gap(shown_row['after_previous_s']))}</td>"
            f"<td class='status'>{e(str(shown_row['status'] or ''))}</td>"
            f"<td class='stale-mark'>{stale}</td>"
            f"<td>{e(str(shown_row['kind']))}</td>"
            f"<td>{e(str(shown_row['callback'] or ''))}</td>"
            f"<td class='outcome'>{e(outcome.replace('_', ' '))}</td>"
            f"<td>{int(shown_row['attempts'])}</td>"
            f"<td class='error'>{e(str(shown_row['error'] or ''))}</td>"
            f"<td class='error-code'>{error_code_link(shown_row['error_code'])}</td></tr>"
        )
    rows = "".join(lines) or "<tr><td colspan='11'>no event received for this SID</td></tr>"
    final = found["final_status"]
    summary = (
        f"{len(events)} event{'' if len(events) == 1 else 's'}; final status "
        f"<b id='final-status'>{e(str(final))}</b>"
        if final is not None
        else f"{len(events)} events"
    )
    if not found["complete"]:
        summary += f" (only the latest {len(events)} are shown)"
    sid = str(found["sid"])
    head = _head(f"{sid} · twilio-trigger inspector", assets, None)
    return _template("sid.html").substitute(
        head=head,
        sid=e(sid),
        search=e(quote(sid)),
        summary=summary,
        rows=rows,
    )


def _header_name(name: str) -> str:
    """``x-home-region`` as it is usually written: ``X-Home-Region``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _same(error: str, stored: str) -> bool:
    """Whether *error* (as an attempt saw it) is the error *stored* in the inbox,
    which keeps only the end of a long one."""
    return error == stored or (len(error) > len(stored) > 0 and error.endswith(stored))


def _attempt_errors(history: list[AttemptRecord], last_error: str | None) -> list[str]:
    """What each attempt's error cell holds: its traceback the first time an error
    is shown on the page, and a word on where it is shown for the attempts that
    failed the same way (same type, message and frames: the same text).

    *last_error* is the one shown above the attempts, if any."""
    cells: list[str] = []
    first: dict[str, int] = {}  # each error shown in the table: the attempt showing it
    for attempt in history:
        error = attempt.error
        if error is None:
            cells.append("")
        elif last_error is not None and _same(error, last_error):
            cells.append("<span class='same'>same as the last error, above</span>")
        elif error in first:
            cells.append(f"<span class='same'>same error as attempt {first[error]}</span>")
        else:
            first[error] = attempt.number
            cells.append(f"<pre>{escape(error)}</pre>")
    return cells


def event(
    row: Mapping[str, object],
    entry: Entry,
    history: list[AttemptRecord],
    assets: Mapping[str, Asset],
) -> str:
    """The page of one event (``/events/<id>``): its *row*, its attempts, all it holds."""
    e = escape
    params = "".join(
        f"<tr><th>{e(name)}</th><td><code>{e(value)}</code></td></tr>"
        for name, value in entry.params
    )
    kept = dict(entry.headers)
    headers = (
        "".join(
            f"<tr><th>{e(_header_name(name))}</th><td><code>{e(value)}</code></td></tr>"
            for name, value in kept.items()
        )
        or "<tr><td>none kept</td></tr>"
    )
    facts = [
        ("kind", entry.kind), ("status", entry.status), ("SID", entry.sid),
        ("callback", row["callback"]), ("outcome", str(row["outcome"]).replace("_", " ")),
        ("received", shown(entry.received_at)), ("attempts", entry.attempts),
        ("next attempt", shown(entry.next_attempt_at) if entry.state is State.PENDING else None),
        ("finished", shown(entry.finished_at)),
        ("delivery key", entry.key),
    ]  # fmt: skip
    fact_rows = "".join(
        f"<tr><th>{e(name)}</th><td>{e(str(value))}</td></tr>"
        for name, value in facts
        if value is not None
    )
    code = row.get("error_code")
    if isinstance(code, int):  # its title and link: markup escaped as it is built
        link = error_code_link(code)
        fact_rows += f"<tr><th>Twilio error</th><td id='error-code'>{link}</td></tr>"
    shown_last = bool(entry.last_error) and entry.state is not State.DONE
    errors = _attempt_errors(history, entry.last_error if shown_last else None)
    attempts = (
        "".join(
            f"<tr class='{e(a.outcome)}'><td>{a.number}</td><td>{e(shown(a.at) or '')}</td>"
            f"<td class='outcome'>{e(a.outcome.replace('_', ' '))}</td>"
            f"<td>{'' if a.milliseconds is None else f'{a.milliseconds:.1f} ms'}</td>"
            f"<td>{error}</td></tr>"
            for a, error in zip(history, errors, strict=True)
        )
        or "<tr><td colspan='5'>no attempt seen by this process</td></tr>"
    )
    last_error = (
        f"<h2>Last error</h2><pre id='last-error'>{e(entry.last_error or '')}</pre>"
        if shown_last
        else ""
    )
    running = entry.state is State.RUNNING
    replay = (
        ""
        if running
        else f"<p><button id='replay' type='button' data-id='{entry.id}'>Replay</button> "
        "<span id='note'></span></p>"
    )
    head = _head(
        f"event {entry.id} · twilio-trigger inspector",
        assets,
        None if running else assets["event.js"].path,
    )
    return _template("event.html").substitute(
        head=head,
        kind=e(entry.kind),
        sid=sid_link(entry.sid),
        status=e(entry.status or ""),
        facts=fact_rows,
        replay=replay,
        last_error=last_error,
        attempts=attempts,
        params=params,
        headers=headers,
    )
