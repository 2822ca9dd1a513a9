"""The inspector's HTML pages, rendered from the templates of ``templates``.

The templates are :class:`string.Template` files: ``${name}`` is replaced, and
nothing else is.  A value is escaped (:func:`html.escape`) by the code that
puts it in, right where it does; what goes in unescaped is either markup built
here (its own values escaped as they are written in), a number, or a path of
this server's.  The rows repeated within a page (facts, attempts, parameters,
headers, the kinds of the filter) are built here, one line each.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Mapping
from importlib import resources
from string import Template

from .._core.kinds import KINDS
from ..inbox import Entry, State
from ._activity import AttemptRecord
from ._rows import error_code_link, shown
from ._static import Asset

__all__ = ["UNAUTHORIZED", "event", "index"]


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
        title=html.escape(title), stylesheet=assets["inspector.css"].path, script=loads
    )


def index(assets: Mapping[str, Asset]) -> str:
    """The page of the list of events (``/``): the rows are its script's to fill."""
    head = _head("twilio-trigger inspector", assets, assets["inspector.js"].path)
    kinds = "".join(f"<option>{html.escape(kind.name)}</option>" for kind in KINDS)
    return _template("index.html").substitute(head=head, kinds=kinds)


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
            cells.append(f"<pre>{html.escape(error)}</pre>")
    return cells


def event(
    row: Mapping[str, object],
    entry: Entry,
    history: list[AttemptRecord],
    assets: Mapping[str, Asset],
) -> str:
    """The page of one event (``/events/<id>``): its *row*, its attempts, all it holds."""
    e = html.escape
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
        sid=e(entry.sid or ""),
        status=e(entry.status or ""),
        facts=fact_rows,
        replay=replay,
        last_error=last_error,
        attempts=attempts,
        params=params,
        headers=headers,
    )
