"""The last requests the listener refused, kept in memory for the inspector to show.

A misconfigured ``public_url`` or auth token shows as 403s at Twilio's end and
nothing in the inbox; :class:`RefusedRequests` keeps the last *kept* refusals
(an observer, told each :class:`~._observe.Refusal`) and a count per reason
since the start, so that the inspector can show them within a second.

What a record holds is chosen so that it can be shown to whoever may see the
inspector: the time, the reason, the status answered, the client's address,
the method and path, the URL forms a signature was checked against (without
credentials, and with the query's values left out: a GET's query is its
body), and the names of the headers present.  Never a body, a header's value,
a signature or a credential.  Everything that came with the request is bounded
and escaped (:func:`~._logging.printable`) as it is kept.

The method, path and header names come from :data:`REQUEST`, which the
webhook's ASGI application sets for the request it serves: the refusals made
by the server itself (a head too large, a timeout, too many connections) come
before any request is known, and are kept without them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from contextvars import ContextVar
from typing import NamedTuple

from ._logging import bounded, url_names_only, utc_stamp
from ._observe import Observer, Refusal, Rejection

__all__ = ["MAX_KEPT", "REQUEST", "RefusedRecord", "RefusedRequests", "Request"]

#: The most refusals a listener may be told to keep (the ``refused_kept`` option).
MAX_KEPT = 10_000
#: Bounds of what a record keeps of a request.
MAX_HEADER_NAMES = 40
MAX_HEADER_NAME = 64
MAX_URLS = 8
MAX_URL = 300
MAX_PATH = 300
MAX_METHOD = 16
MAX_REMOTE = 100
MAX_MESSAGE = 200
#: A reason that is none of :class:`Rejection`'s (another observer's own) counts as this.
OTHER = "other"


class Request(NamedTuple):
    """The request being served, as the webhook's application saw it arrive."""

    method: str
    path: str
    headers: Sequence[tuple[bytes, bytes]]  # the ASGI scope's: names are lower-case


#: The request the webhook's application serves in this task, if any.
REQUEST: ContextVar[Request | None] = ContextVar("twilio_trigger_request", default=None)


class RefusedRecord(NamedTuple):
    """One refused request, as the inspector shows it: bounded, escaped, no secret."""

    at: str  # ISO 8601, UTC
    reason: str  # a Rejection value
    status: int  # 0: closed without an answer
    message: str
    remote: str | None
    method: str | None
    path: str | None
    urls: tuple[str, ...]  # for a signature that matched nothing
    headers: tuple[str, ...]  # names only
    more_headers: int  # names present beyond those kept

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "reason": self.reason,
            "status": self.status,
            "message": self.message,
            "remote": self.remote,
            "method": self.method,
            "path": self.path,
            "urls": list(self.urls),
            "headers": list(self.headers),
            "more_headers": self.more_headers,
        }


def _bounded(text: str, limit: int) -> str:
    """*text* escaped and cut to at most *limit* characters (an ellipsis says so)."""
    return bounded(text, limit)


def shown_url(url: str) -> str:
    """A URL form a signature was checked against, as a record keeps it: without
    user and password, and with the query's names but not its values."""
    return bounded(url_names_only(url), MAX_URL)


def _header_names(headers: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[str, ...], int]:
    """The distinct header names of *headers*, at most :data:`MAX_HEADER_NAMES`, and how
    many more there were."""
    names: dict[str, None] = {}
    for name, _ in headers:
        names[_bounded(name.decode("latin-1").lower(), MAX_HEADER_NAME)] = None
    kept = tuple(names)
    return kept[:MAX_HEADER_NAMES], max(0, len(kept) - MAX_HEADER_NAMES)


def record(refusal: Refusal, request: Request | None, moment: float) -> RefusedRecord:
    """What is kept of *refusal* of *request* (``None``: refused before it was read)."""
    method = path = None
    names: tuple[str, ...] = ()
    more = 0
    if request is not None:
        method = _bounded(request.method, MAX_METHOD)
        path = _bounded(request.path, MAX_PATH)
        names, more = _header_names(request.headers)
    return RefusedRecord(
        at=utc_stamp(moment),
        reason=refusal.reason if refusal.reason in Rejection.ALL else OTHER,
        status=refusal.status,
        message=_bounded(refusal.message, MAX_MESSAGE),
        remote=None if refusal.remote is None else _bounded(refusal.remote, MAX_REMOTE),
        method=method,
        path=path,
        urls=tuple(shown_url(url) for url in refusal.urls[:MAX_URLS]),
        headers=names,
        more_headers=more,
    )


class RefusedRequests(Observer):
    """The last *kept* refused requests, newest last, and a count per reason since the start.

    Told from the listener's loop and from adapters' threads: a lock keeps the
    records and the counts together.
    """

    __slots__ = ("_counts", "_lock", "_records", "kept")

    def __init__(self, kept: int = 100) -> None:
        if not 0 < kept <= MAX_KEPT:
            raise ValueError(f"kept must be between 1 and {MAX_KEPT}, got {kept}")
        self.kept = kept
        self._lock = threading.Lock()
        self._records: deque[RefusedRecord] = deque(maxlen=kept)
        self._counts: dict[str, int] = {}

    def rejected(self, refusal: Refusal) -> None:
        kept = record(refusal, REQUEST.get(), time.time())
        with self._lock:
            self._records.append(kept)
            self._counts[kept.reason] = self._counts.get(kept.reason, 0) + 1

    def counts(self) -> dict[str, int]:
        """Refused requests since the start, per reason."""
        with self._lock:
            return dict(self._counts)

    def records(self) -> list[RefusedRecord]:
        """The refused requests kept, newest first."""
        with self._lock:
            return list(reversed(self._records))

    def to_json(self) -> dict[str, object]:
        """What ``GET /api/refused`` answers: the counts, and the records newest first."""
        with self._lock:
            counts = dict(self._counts)
            records = list(reversed(self._records))
        return {
            "kept": self.kept,
            "total": sum(counts.values()),
            "counts": counts,
            "refused": [kept.to_json() for kept in records],
        }
