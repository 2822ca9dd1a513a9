"""Log output for the command line and ``Listener.run()``: text for people, JSON for machines.

The library itself only logs through ``logging.getLogger("twilio_trigger")``,
with each event's fields (``sid``, ``kind``, ``status``, ``callback``,
``outcome``, ``duration_ms``, ...) as attributes of the record; this module
decides how records look when twilio-trigger owns the process.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Hashable
from typing import Final

__all__ = ["LOG_FORMATS", "FirstWarning", "JsonFormatter", "configure_logging", "shown_url"]

LOG_FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord carries; anything else was passed in `extra` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


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


def shown_url(url: str) -> str:
    """*url* without the user and password it may carry, to log or print it."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra
    fields, and the traceback as text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        document: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
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
        return json.dumps(document, default=str, ensure_ascii=False)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send every log record at *level* and above to stderr, as text or JSON lines.

    It replaces the root logger's handlers: call it where the process is yours.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be text or json, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
