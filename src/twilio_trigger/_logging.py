"""Log output for the command line and ``Listener.run()``: text for people, JSON for machines.

The library itself only logs through ``logging.getLogger("twilio_trigger")``,
with each event's fields (``sid``, ``kind``, ``status``, ``callback``,
``outcome``, ``duration_ms``, ...) as attributes of the record; this module
decides how records look when twilio-trigger owns the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import sys
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ._config import Settings

__all__ = [
    "LOG_FORMATS",
    "FirstWarning",
    "JsonFormatter",
    "TextFormatter",
    "bounded",
    "configure_logging",
    "parse_level",
    "printable",
    "set_up_logging",
    "shown_url",
    "trim_traceback",
    "url_names_only",
    "utc_stamp",
]

LOG_FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord carries; anything else was passed in `extra` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


# Characters that could end a log line, move the cursor, recolour a terminal or
# reorder what is shown: C0 and C1 controls, DEL, the Unicode line and paragraph
# separators, and the bidirectional overrides and isolates.
_UNSAFE = [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F)]
_UNSAFE += [*range(0x2066, 0x206A)]
_ESCAPES = {
    code: {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}.get(
        code, f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    )
    for code in _UNSAFE
}


# In a JSON string, the characters json.dumps leaves raw that a line-based reader
# (Python's splitlines, some log shippers) or a terminal would act on.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _UNSAFE if code >= 0x7F}


def printable(text: str) -> str:
    """*text* with every character that could forge or disturb a log line escaped
    (``\\n``, ``\\x1b``, ``\\u2028``...); text that has none comes back as it is."""
    if text.isprintable():  # the common case, decided in C
        return text
    return text.translate(_ESCAPES)


def bounded(text: str, limit: int) -> str:
    """*text* escaped (:func:`printable`) and cut to at most *limit* characters (an
    ellipsis says so)."""
    shown = printable(text[: limit * 2])  # an escape is longer than what it escapes
    return shown if len(shown) <= limit and len(text) <= limit else shown[: limit - 1] + "…"


def url_names_only(url: str) -> str:
    """A request's URL as a log or a record may show it: without user and password,
    its query's names without their values (a message's body, a phone number), and
    no longer than a few thousand characters.  Not escaped: see :func:`bounded`."""
    try:
        parts = urlsplit(url[:4096])
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(a URL that could not be read)"
    shown = f"{parts.scheme}://{host}{parts.path}"
    if parts.query:
        names = (pair.partition("=")[0] for pair in parts.query.split("&"))
        shown += "?" + "&".join(f"{name}=…" for name in names)
    return shown


class FirstWarning:
    """WARNING the first time a cause is told, DEBUG after: a cause that repeats with
    every request (a status nobody handles) must not flood the log.

    At most *limit* causes are remembered; past that, new ones warn every time.
    """

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._seen: set[Hashable] = set()

    def level(self, cause: Hashable) -> int:
        """The level to tell *cause* at, this time."""
        if cause in self._seen:
            return logging.DEBUG
        if len(self._seen) < self._limit:
            self._seen.add(cause)
        return logging.WARNING


# Where the frames a callback's traceback starts with come from, before the
# user's own: this package (the dispatch), asyncio and the thread pool.
_NOT_THE_USERS = tuple(
    {
        os.path.join(os.path.dirname(form(path)), "")
        for path in (__file__, asyncio.__file__, concurrent.futures.__file__)
        for form in (str, os.path.abspath)
    }
)


def _not_the_users(code_file: str) -> bool:
    return code_file.startswith(_NOT_THE_USERS)


def trim_traceback(error: BaseException) -> BaseException:
    """*error*, its traceback starting at the user's first frame: without the
    frames of this package, asyncio and the thread pool a callback ran under,
    which say nothing about what failed.  The same for the errors it is chained
    to (its cause, its context, a group's members).  A traceback without a
    frame of the user's (the package's own error) is left whole."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending and len(seen) < 100:  # a chain is short; a cycle is possible
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        first = current.__traceback__
        while first is not None and _not_the_users(first.tb_frame.f_code.co_filename):
            first = first.tb_next
        if first is not None and first is not current.__traceback__:
            current.__traceback__ = first
        pending += [linked for linked in (current.__cause__, current.__context__) if linked]
        if isinstance(current, BaseExceptionGroup):
            pending += current.exceptions
    return error


_SECRET_QUERY_NAMES = frozenset({"password", "passwd", "pwd", "secret", "token", "auth"})


def shown_url(url: str) -> str:
    """*url* with its password (and any ``password=`` in its query) replaced by ``***``.

    Made for URLs that may be mistyped (``redis//:pw@host``, ``redis:/u:pw@host``):
    what precedes the last ``@`` before the query, from the authority's start
    (after ``//``, else after the scheme), is user information, shown as
    ``user:***`` (or ``***`` without a colon, since a lone name there may be a
    secret).
    """
    base, question, query = url.partition("?")
    at = base.rfind("@")
    if at >= 0:
        slashes = base.find("//", 0, at)
        if slashes >= 0:
            start = slashes + 2
        else:
            colon = base.find(":", 0, at)
            scheme = base[:colon]
            start = colon + 1 if colon > 0 and scheme.replace("+", "").isalnum() else 0
        user, colon_, _ = base[start:at].partition(":")
        base = f"{base[:start]}{f'{user}:***' if colon_ else '***'}{base[at:]}"
    if question:
        pairs = []
        for pair in query.split("&"):
            name, equals, _ = pair.partition("=")
            secret = equals and name.lower() in _SECRET_QUERY_NAMES
            pairs.append(f"{name}=***" if secret else pair)
        query = "&".join(pairs)
    return f"{base}{question}{query}"


def utc_stamp(moment: float, milliseconds: float | None = None) -> str:
    """A moment (seconds since the epoch) in ISO 8601, UTC, to the millisecond:
    ``2024-05-01T12:34:56.789Z``.  *milliseconds* are the moment's own when known
    more exactly than its float holds them (a log record's ``msecs``)."""
    if milliseconds is None:
        milliseconds = moment % 1 * 1000
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
    return f"{whole}.{int(milliseconds):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra
    fields, and the traceback as text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": utc_stamp(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in document:
                document[name] = value
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["traceback"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(document, default=str, ensure_ascii=False)
        return line if line.isprintable() else line.translate(_JSON_ESCAPES)


class TextFormatter(logging.Formatter):
    """The text format, made so that a log line cannot be forged.

    The message is one line, its unsafe characters escaped (:func:`printable`).
    A traceback follows with every line indented by ``"  | "``: only a record's
    first line starts at the margin, whatever an exception message holds.
    """

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        record.message = printable(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        blocks = []
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            blocks.append(record.exc_text)
        if record.stack_info:
            blocks.append(self.formatStack(record.stack_info))
        for block in blocks:
            # split() on "\n" alone: the other line breaks are escaped within the line.
            text += "".join(f"\n  | {printable(line)}" for line in block.split("\n"))
        return text


def parse_level(name: str) -> int:
    """A level name (debug, info, warning, error, critical) as a ``logging`` level."""
    level = logging.getLevelName(name.strip().upper())
    if not isinstance(level, int) or level == logging.NOTSET:
        raise ValueError(f"unknown log level {name!r}: use debug, info, warning or error")
    return level


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send every log record at *level* and above to stderr, as text or JSON lines.

    It replaces the root logger's handlers: call it where the process is yours.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be text or json, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)


def set_up_logging(settings: Settings, *, replace: bool = False) -> None:
    """:func:`configure_logging` with the listener's ``log_format`` and ``log_level``,
    unless the application set logging up itself (and *replace* is false)."""
    if replace or not logging.getLogger().handlers:
        configure_logging(settings.log_format, parse_level(settings.log_level))
