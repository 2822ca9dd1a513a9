"""What a row of the inspector shows of an inbox entry, and the ``limit`` of ``/api/events``.

A row is a plain dict, the same for the JSON API and for the event's page:
its id, when it arrived, its kind, status and SID, the callback that took it,
its outcome, how long the last attempt took, how many attempts, the last
line of its error, and the Twilio error code the event carried (``ErrorCode``,
or a Debugger alert's), with its title and Twilio's page about it.

Times are ISO 8601 in the JSON (``received_at``); the pages show them with
their date, in UTC, as :func:`shown` writes them.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from .._core.error_codes import error_code_info, error_code_url
from .._core.events import TwilioEvent
from .._core.routing import callback_for, event_of_kind
from .._invoke import Outcome
from .._logging import utc_stamp
from ..inbox import Entry, State
from ._activity import AttemptRecord

__all__ = [
    "MAX_ROWS",
    "MAX_SHOWN",
    "Label",
    "error_code_link",
    "escape",
    "limit",
    "row",
    "shown",
    "stamp",
]

#: The most rows ``/api/events`` answers with, and how many when not told.
MAX_ROWS = 500
_DEFAULT_ROWS = 100

#: Characters of an entry's SID or status a row carries (Twilio's are a few dozen;
#: a signed request may still carry any): the event's page shows them whole.
MAX_SHOWN = 200

#: Control characters (but tab, line feed and carriage return), which HTML cannot
#: show and a terminal copying a page would obey, and the line separators and
#: direction overrides that would make a value look like another, as escapes.
_CONTROLS = {
    code: f"\\x{code:02x}"
    for code in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))
} | {
    code: f"\\u{code:04x}"
    for code in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}


def escape(text: str, quote: bool = True) -> str:
    """*text* as a page shows it: :func:`html.escape`, control characters as ``\\x1b``."""
    if not text.isprintable():
        text = text.translate(_CONTROLS)
    return html.escape(text, quote)


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_SHOWN:
        return text
    return text[: MAX_SHOWN - 1] + "…"


#: Names the callback that takes an event, when it is not the usual one.
Label = Callable[[TwilioEvent], str | None]


def row(entry: Entry, history: list[AttemptRecord], label: Label) -> dict[str, object]:
    """The row of *entry*, with what this process saw of its attempts (*history*)."""
    last = history[-1] if history else None
    event = event_of_kind(entry.kind, entry.params)
    code = _error_code(event)
    info = error_code_info(code)
    return {
        "id": entry.id,
        "received_at": stamp(entry.received_at),
        "kind": entry.kind,
        "status": _cut(entry.status),
        "sid": _cut(entry.sid),
        "callback": _callback(event, last, label),
        "outcome": _outcome(entry, last),
        "duration_ms": None if last is None else last.milliseconds,
        "attempts": entry.attempts,
        "error": entry.error_line if entry.state is not State.DONE else None,
        "error_code": code,
        "error_code_title": None if info is None else info.title,
        "error_code_url": error_code_url(code),
    }


def limit(text: str) -> int:
    """The ``limit`` of ``/api/events``: clamped to 1..500, the default when not a number."""
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        return _DEFAULT_ROWS
    if text.startswith("-"):
        return 1
    digits = digits.lstrip("0") or "0"
    # Never int() of thousands of digits: anything that long is over the cap anyway.
    return max(1, min(MAX_ROWS, int(digits) if len(digits) <= 9 else MAX_ROWS))


def stamp(moment: float | None) -> str | None:
    """A moment as the JSON API writes it: ``2024-05-01T12:34:56.789Z`` (UTC)."""
    return None if moment is None else utc_stamp(moment)


def shown(moment: float | None) -> str | None:
    """A moment as the pages show it, with its date: ``2024-05-01 12:34:56.789 UTC``.

    ``inspector.js`` writes the list's times the same way from ``received_at``."""
    iso = stamp(moment)
    return None if iso is None else f"{iso[:10]} {iso[11:23]} UTC"


def error_code_link(code: int | None) -> str:
    """The markup of a Twilio error *code*: ``30003 Unreachable destination handset``
    linked to Twilio's page; a code without a title is the number, linked; no
    code is nothing.  Everything in it is escaped here."""
    url = error_code_url(code)
    if code is None or url is None:
        return ""
    info = error_code_info(code)
    text = str(code) if info is None else f"{code} {info.title}"
    return (
        f'<a class="error-code" href="{escape(url)}" rel="noreferrer noopener" '
        f'target="_blank">{escape(text)}</a>'
    )


def _outcome(entry: Entry, last: AttemptRecord | None) -> str:
    if entry.state is State.DEAD:
        return "dead_letter"
    if entry.state is State.RUNNING:
        return "running"
    if entry.state is State.PENDING:
        return "retrying" if entry.attempts else "pending"
    return last.outcome if last is not None else Outcome.HANDLED.value


def _callback(event: TwilioEvent | None, last: AttemptRecord | None, label: Label) -> str | None:
    if last is not None and last.callback is not None:
        return last.callback
    return None if event is None else label(event) or callback_for(event)


def _error_code(event: TwilioEvent | None) -> int | None:
    """The Twilio error code *event* carries; ``None`` for none, ``0`` or nonsense."""
    code = None if event is None else event.error_code
    return code if error_code_url(code) is not None else None
