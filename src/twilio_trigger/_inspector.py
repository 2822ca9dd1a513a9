"""The event inspector: a small web page over the inbox, to look instead of grep.

It lists recent events with what became of them, shows one event whole (its
parameters, its attempts with their errors and tracebacks), and replays dead
letters.  The inbox is the record, whichever process wrote it (SQLite or
Redis); :class:`Activity` adds what this process saw of each attempt (the
callback, the outcome, how long it took) and a few counters.

It is served on a port of its own, on loopback unless told otherwise, and then
only with a token: events hold phone numbers and message bodies.  Server-rendered
HTML, a stylesheet and two small scripts that poll ``/api/events``: no build step.
The scripts and the stylesheet are files of the package (``_inspector_static``),
served on paths of their own, so that the pages' Content-Security-Policy allows no
inline script or style: an escaping mistake in a page could not run anything.

Every request is treated as hostile: bounded (query string, body, the time to
send the body), answered 4xx when it cannot be used, and never written to a log
unescaped.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from importlib import resources
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from ._answers import Answer, answer
from ._asgi import send_answer
from ._delivery import Delivery
from ._dispatch import Outcome, Result, describe_error
from ._events import TwilioEvent
from ._logging import printable
from ._observe import Attempt, Observer
from ._routing import callback_for, to_event
from .inbox import Entry, State

__all__ = ["Activity", "InspectorApp"]

logger = logging.getLogger("twilio_trigger")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_COOKIE = "twilio_trigger_inspector"
#: How long the cookie that ``?token=`` leaves stays good: a working day, so that
#: a debugging session never asks for the token again, while a cookie copied off
#: a shared machine is useless by the next morning.  It never outlives the
#: process either: its key is drawn at start.
_SESSION_SECONDS = 8 * 3600
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_MAX_ROWS = 500
_DEFAULT_ROWS = 100
#: What a replay request may hold: as many ids as the page can list.
_MAX_IDS = _MAX_ROWS
#: The largest id both inboxes can hold (SQLite's INTEGER is 64-bit, signed).
_MAX_ID = 2**63 - 1
_ID_RANGE = f"ids are whole numbers from 1 to {_MAX_ID}"
_MAX_BODY = 64 * 1024
#: Time allowed for a replay request's body, from the end of its head.
_BODY_SECONDS = 10.0
#: The filters and the token fit in far less; beyond this the query is not parsed.
_MAX_QUERY = 8 * 1024


class AttemptRecord(NamedTuple):
    """One attempt at an inbox entry, as this process saw it."""

    at: float
    number: int
    outcome: str
    callback: str | None
    milliseconds: float | None
    error: str | None  # with its traceback


class Activity(Observer):
    """Counters since the start, and the attempts at each inbox entry (the latest ones)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.counts = {"received": 0, "handled": 0, "failed": 0, "duplicates": 0}
        self._limit = limit
        self._attempts: OrderedDict[int, list[AttemptRecord]] = OrderedDict()

    def received(self, event: TwilioEvent) -> None:
        self.counts["received"] += 1

    def finished(self, event: TwilioEvent, result: Result, attempt: Attempt | None = None) -> None:
        outcome = result.outcome
        if outcome is Outcome.DUPLICATE:
            self.counts["duplicates"] += 1
        elif not outcome.ok:
            self.counts["failed"] += 1
        elif outcome is Outcome.HANDLED:
            self.counts["handled"] += 1
        if attempt is None or attempt.entry is None:
            return
        error = None if result.error is None else describe_error(result.error)
        milliseconds = None if result.seconds is None else round(result.seconds * 1000, 3)
        record = AttemptRecord(
            time.time(), attempt.number, outcome.value, result.callback, milliseconds, error
        )
        history = self._attempts.pop(attempt.entry, [])
        history.append(record)
        self._attempts[attempt.entry] = history[-20:]
        while len(self._attempts) > self._limit:
            self._attempts.popitem(last=False)

    def attempts(self, entry_id: int) -> list[AttemptRecord]:
        return list(self._attempts.get(entry_id, ()))


# -- what a row shows ---------------------------------------------------------------
def _outcome(entry: Entry, last: AttemptRecord | None) -> str:
    if entry.state is State.DEAD:
        return "dead_letter"
    if entry.state is State.RUNNING:
        return "running"
    if entry.state is State.PENDING:
        return "retrying" if entry.attempts else "pending"
    return last.outcome if last is not None else Outcome.HANDLED.value


def _callback(
    entry: Entry, last: AttemptRecord | None, label: Callable[[TwilioEvent], str | None]
) -> str | None:
    if last is not None and last.callback is not None:
        return last.callback
    event = to_event(entry.params)
    return None if event is None else label(event) or callback_for(event)


def _stamp(moment: float | None) -> str | None:
    if moment is None:
        return None
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"
    )


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None  # a traceback's last line says what failed


#: The outcomes a filter can ask for, and the entry states that hold them.
_FILTER_STATES: dict[str, tuple[State, ...]] = {
    "handled": (State.DONE,),
    "dead_letter": (State.DEAD,),
    "retrying": (State.PENDING,),
    "pending": (State.PENDING,),
    "running": (State.RUNNING,),
    "failing": (State.PENDING, State.DEAD),
}


class InspectorApp:
    """The inspector as an ASGI application over a listener's delivery."""

    def __init__(
        self,
        delivery: Delivery,
        activity: Activity,
        *,
        token: str | None = None,
        loopback_only: bool = True,
    ) -> None:
        if delivery.inbox is None:
            raise ValueError("the inspector shows an inbox: the listener has none")
        self._delivery = delivery
        self._inbox = delivery.inbox
        self._activity = activity
        self._token = None if token is None else token.encode("utf-8")
        # Drawn per process: a session cookie holds no trace of the token (it
        # cannot be turned back into it) and dies with the process.
        self._session_key = secrets.token_bytes(32)
        self._loopback_only = loopback_only
        self._assets = _assets()
        self._static = {asset.path: asset for asset in self._assets.values()}
        self._page = _page(self._assets).encode("utf-8")

    # -- data ------------------------------------------------------------------------
    def _row(self, entry: Entry) -> dict[str, object]:
        history = self._activity.attempts(entry.id)
        last = history[-1] if history else None
        return {
            "id": entry.id,
            "received_at": _stamp(entry.received_at),
            "kind": entry.kind,
            "status": entry.status,
            "sid": entry.sid,
            "callback": _callback(entry, last, self._delivery.callback_label),
            "outcome": _outcome(entry, last),
            "duration_ms": None if last is None else last.milliseconds,
            "attempts": entry.attempts,
            "error": _first_line(entry.last_error) if entry.state is not State.DONE else None,
        }

    async def _rows(self, query: Mapping[str, list[str]]) -> list[dict[str, object]]:
        def one(name: str) -> str:
            return (query.get(name) or [""])[0].strip()

        outcome, kind, status = one("outcome"), one("kind"), one("status").lower()
        limit = _limit(one("limit"))
        states = _FILTER_STATES.get(outcome, (None,))
        # Filters the inbox cannot apply itself look further back than the limit.
        exact = not (kind or status) and outcome in ("", "handled", "dead_letter", "running")
        entries = [
            entry
            for state in states
            for entry in await self._inbox.entries(state, limit if exact else _MAX_ROWS)
        ]
        entries.sort(key=lambda entry: entry.id, reverse=True)
        rows = [self._row(entry) for entry in entries]
        rows = [
            row
            for row in rows
            if (not kind or row["kind"] == kind)
            and (not status or str(row["status"] or "").lower() == status)
            and (not outcome or row["outcome"] == outcome or (outcome == "failing"
                 and row["outcome"] in ("retrying", "dead_letter")))
        ]  # fmt: skip
        return rows[:limit]

    async def _counters(self) -> dict[str, int]:
        stats = await self._inbox.backlog()
        return {**self._activity.counts, "dead_letters": stats[State.DEAD]}

    # -- the session cookie ----------------------------------------------------------
    def _session(self) -> str:
        """A cookie value good until its expiry, which it carries signed."""
        expiry = int(time.time()) + _SESSION_SECONDS
        return f"{expiry}.{self._signature(str(expiry).encode())}"

    def _signature(self, expiry: bytes) -> str:
        # The expiry as written in the cookie is what is signed: "0123" and "123"
        # are different cookies, so no spelling of a cookie but the one issued works.
        message = b"twilio-trigger inspector session until " + expiry
        return hmac.new(self._session_key, message, hashlib.sha256).hexdigest()

    def _valid_session(self, value: bytes) -> bool:
        expiry, dot, signature = value.partition(b".")
        # bytes.isdigit() is ASCII digits only; twelve of them reach the year 33658.
        if not dot or not expiry.isdigit() or len(expiry) > 12 or len(signature) != 64:
            return False
        expected = self._signature(expiry).encode("ascii")
        return hmac.compare_digest(signature, expected) and time.time() < int(expiry)

    # -- ASGI ------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        answered = False
        # A body left unread (refusals answer before reading it) must not be taken
        # for the next request: such an answer ends the connection, and says so.
        unread = _has_body(scope["headers"])

        async def reading() -> Message:
            nonlocal unread
            message = await receive()
            unread = unread and bool(message.get("more_body"))
            return message

        async def answering(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                if unread:
                    message = {**message, "headers": [*message["headers"], _CLOSE]}
            await send(message)

        try:
            await self._serve(scope, reading, answering)
        except Exception:
            # What a request holds is refused with a 4xx before it gets here; this
            # is the inbox failing (a locked SQLite file, a Redis gone away).
            logger.exception(
                "the inspector could not answer %s %s",
                printable(str(scope.get("method", ""))[:16]),
                printable(str(scope.get("path", ""))[:200]),
            )
            if not answered:
                await _answer(send, 503, b"the inbox could not be read; try again\n", _TEXT)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, bytes] = {name.lower(): value for name, value in scope["headers"]}
        raw_query: bytes = scope.get("query_string", b"")
        if len(raw_query) > _MAX_QUERY:
            await _answer(send, 414, b"query string too long\n", _TEXT)
            return
        query = parse_qs(raw_query.decode("utf-8", "replace"))
        refusal = self._refusal(headers, query)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        method, path = scope["method"], scope["path"]
        if self._token is not None and "token" in query and method in ("GET", "HEAD"):
            # The link with the token, once (_refusal checked it): keep a session
            # in a cookie, not the token in the address bar.
            cookie = (
                f"{_COOKIE}={self._session()}; Max-Age={_SESSION_SECONDS}; HttpOnly; "
                f"SameSite=Strict; Path=/"
            )
            await _answer(
                send, 303, b"", _TEXT, (b"location", _landing(path).encode("ascii")),
                (b"set-cookie", cookie.encode("ascii")),
            )  # fmt: skip
            return
        await self._route(method, path, headers, query, receive, send)

    def _refusal(
        self, headers: Mapping[bytes, bytes], query: Mapping[str, list[str]]
    ) -> tuple[int, bytes, str] | None:
        if self._token is None:
            # Loopback only: refuse names other than loopback ones, so that a page
            # elsewhere cannot reach this through DNS rebinding.
            host = _host_name(headers.get(b"host", b""))
            if self._loopback_only and host not in _LOOPBACK:
                return 421, b"this inspector answers on 127.0.0.1 and localhost only\n", _TEXT
            return None
        if not self._authorized(headers, query):
            return 401, _UNAUTHORIZED, "text/html; charset=utf-8"
        return None

    def _authorized(self, headers: Mapping[bytes, bytes], query: Mapping[str, list[str]]) -> bool:
        """A token in the address must be right even with a good cookie: it becomes one."""
        assert self._token is not None
        given = query.get("token")
        if given is not None:
            return len(given) == 1 and hmac.compare_digest(given[0].encode("utf-8"), self._token)
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            return hmac.compare_digest(authorization[7:].strip(), self._token)
        return any(self._valid_session(value) for value in _cookies(headers))

    async def _route(
        self,
        method: str,
        path: str,
        headers: Mapping[bytes, bytes],
        query: Mapping[str, list[str]],
        receive: Receive,
        send: Send,
    ) -> None:
        if method == "POST":
            if path != "/api/replay":
                await _answer(send, 404, b"not found\n", _TEXT)
                return
            await self._replay(headers, receive, send)
            return
        if method not in ("GET", "HEAD"):
            await _answer(send, 405, b"method not allowed\n", _TEXT, (b"allow", _ALLOW))
            return
        if path == "/":
            await _answer(send, 200, self._page, "text/html; charset=utf-8")
        elif path == "/api/events":
            document = {"counters": await self._counters(), "events": await self._rows(query)}
            await _answer(send, 200, json.dumps(document).encode(), "application/json")
        elif path.startswith("/events/") and _is_id(path[8:]):
            entry = await self._inbox.get(int(path[8:]))
            if entry is None:
                await _answer(send, 404, b"no such event\n", _TEXT)
                return
            history = self._activity.attempts(entry.id)
            page = _detail(self._row(entry), entry, history, self._assets)
            await _answer(send, 200, page.encode("utf-8"), "text/html; charset=utf-8")
        elif path in self._static:
            await _serve_asset(send, self._static[path], headers)
        else:
            await _answer(send, 404, b"not found\n", _TEXT)

    async def _replay(self, headers: Mapping[bytes, bytes], receive: Receive, send: Send) -> None:
        # A header a cross-site form cannot send (a script would need CORS,
        # which this server never grants): replays come from this page only.
        if headers.get(b"x-inspector") != b"replay":
            await _answer(send, 403, b"replays come from the inspector's page\n", _TEXT)
            return
        body = await _read_body(headers, receive)
        if body is None:
            return  # the client left
        if isinstance(body, Answer):
            await send_answer(send, body)
            return
        try:
            ids = _replay_ids(body)
        except _UnusableError as error:
            message = f'expected {{"ids": [1, 2]}} or {{}}: {error}\n'
            await _answer(send, 400, message.encode("utf-8"), _TEXT)
            return
        replayed = await self._inbox.replay(ids)
        self._delivery.wake()
        await _answer(send, 200, json.dumps({"replayed": replayed}).encode(), "application/json")


# -- requests -----------------------------------------------------------------------
def _is_id(text: str) -> bool:
    # ASCII digits only ("²" is a digit to str.isdigit), and no more than fit in 63 bits.
    return text.isascii() and text.isdigit() and len(text) <= 18


def _limit(text: str) -> int:
    """The ``limit`` of ``/api/events``: clamped to 1..500, the default when not a number."""
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        return _DEFAULT_ROWS
    if text.startswith("-"):
        return 1
    digits = digits.lstrip("0") or "0"
    # Never int() of thousands of digits: anything that long is over the cap anyway.
    return max(1, min(_MAX_ROWS, int(digits) if len(digits) <= 9 else _MAX_ROWS))


def _landing(path: str) -> str:
    """Where ``?token=`` sends the browser on: a page of the inspector's, else ``/``.

    The path arrives percent-decoded: ``/%5Cevil.example`` is ``/\\evil.example``,
    which a browser reads as ``//evil.example``, another site.  Rather than
    guess what each browser makes of slashes, backslashes, tabs and schemes, only
    the pages this server serves are kept, and their paths are plain ASCII.
    """
    if path in ("/", "/api/events") or (path.startswith("/events/") and _is_id(path[8:])):
        return path
    return "/"


def _host_name(header: bytes) -> str:
    """The host of a ``Host`` header, without its port: ``[::1]:8091`` → ``[::1]``."""
    host = header.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.partition(":")[0]


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"transfer-encoding":
            return True
        if name.lower() == b"content-length" and value.strip().lstrip(b"0"):
            return True
    return False


def _cookies(headers: Mapping[bytes, bytes]) -> Iterator[bytes]:
    """The values of the inspector's cookie in a ``Cookie`` header (there may be several)."""
    for part in headers.get(b"cookie", b"").split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name == _COOKIE.encode():
            yield value.strip()


async def _read_body(headers: Mapping[bytes, bytes], receive: Receive) -> bytes | Answer | None:
    """The body, or the answer that refuses it; ``None`` when the client left."""
    declared = headers.get(b"content-length", b"")
    # Refused before a byte of it is read; digits only, so int() stays cheap.
    if declared.isdigit() and (len(declared) > 12 or int(declared) > _MAX_BODY):
        return _TOO_LARGE
    body = bytearray()
    try:
        async with asyncio.timeout(_BODY_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                body += message.get("body", b"")
                if len(body) > _MAX_BODY:
                    return _TOO_LARGE
                if not message.get("more_body"):
                    return bytes(body)
    except TimeoutError:
        return _TOO_SLOW


class _UnusableError(ValueError):
    """A replay request that cannot be used; its message says why, without quoting it."""


def _replay_ids(body: bytes) -> list[int] | None:
    """The ids a replay request names, or ``None`` for every dead letter (``{}``)."""
    if not body.strip():
        return None  # as {}: what `curl -X POST` sends
    # A usable request is one object holding one list: more brackets than that
    # can only be nesting, which json would follow down to a RecursionError.
    if body.count(b"{") + body.count(b"[") > 2:
        raise _UnusableError("at most one object and one list")
    try:
        request = json.loads(
            body,
            parse_int=_whole_number,
            parse_float=_no_fraction,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except _UnusableError:
        raise
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise _UnusableError("not JSON") from None
    if not isinstance(request, dict):
        raise _UnusableError("not a JSON object")
    if set(request) - {"ids"}:
        raise _UnusableError('no field but "ids"')
    if "ids" not in request:
        return None
    ids = request["ids"]
    if not isinstance(ids, list):
        raise _UnusableError('"ids" must be a list')
    if len(ids) > _MAX_IDS:
        raise _UnusableError(f"at most {_MAX_IDS} ids")
    # type() rather than isinstance(): True is an int to Python, not an id.
    if not all(type(i) is int and 1 <= i <= _MAX_ID for i in ids):
        raise _UnusableError(_ID_RANGE)
    return list(dict.fromkeys(ids))


def _whole_number(text: str) -> int:
    if len(text) > len(str(_MAX_ID)):  # never int() of thousands of digits
        raise _UnusableError(_ID_RANGE)
    return int(text)


def _no_fraction(text: str) -> float:
    raise _UnusableError(_ID_RANGE)


def _no_constant(text: str) -> object:
    raise _UnusableError("not JSON (NaN and Infinity are not)")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _UnusableError("a field given twice")
    return found


# -- answers ------------------------------------------------------------------------
_TEXT = "text/plain; charset=utf-8"
_ALLOW = b"GET, HEAD, POST"
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "
    b"require-trusted-types-for 'script'; trusted-types 'none'"
)
_SECURITY = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", _CSP),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_NO_STORE = (b"cache-control", b"no-store")
#: The assets' paths carry a digest of their content: a new version is a new path.
_IMMUTABLE = (b"cache-control", b"private, max-age=31536000, immutable")
_CLOSE = (b"connection", b"close")
_TOO_LARGE = answer(
    413, b"request body too large: at most 64 KiB\n", _TEXT.encode(), *_SECURITY, _NO_STORE
)
_TOO_SLOW = answer(
    408, b"request body not received in time\n", _TEXT.encode(), *_SECURITY, _NO_STORE
)


async def _answer(
    send: Send, status: int, body: bytes, content_type: str, *extra: tuple[bytes, bytes]
) -> None:
    await send_answer(
        send, answer(status, body, content_type.encode("latin-1"), *_SECURITY, _NO_STORE, *extra)
    )


class _Asset(NamedTuple):
    """A file the pages load: its path here, its bytes, their type and entity tag."""

    path: str
    body: bytes
    content_type: bytes
    etag: bytes


_ASSET_TYPES = {
    "inspector.css": b"text/css; charset=utf-8",
    "inspector.js": b"text/javascript; charset=utf-8",
    "event.js": b"text/javascript; charset=utf-8",
}


@functools.cache
def _assets() -> dict[str, _Asset]:
    """The files of ``_inspector_static``, read once, each under a path with its digest."""
    folder = resources.files("twilio_trigger").joinpath("_inspector_static")
    found = {}
    for name, content_type in _ASSET_TYPES.items():
        body = folder.joinpath(name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:16]
        stem, _, extension = name.rpartition(".")
        etag = f'"{digest}"'.encode("ascii")
        found[name] = _Asset(f"/static/{stem}.{digest}.{extension}", body, content_type, etag)
    return found


async def _serve_asset(send: Send, asset: _Asset, headers: Mapping[bytes, bytes]) -> None:
    cached = headers.get(b"if-none-match", b"")
    tags = {tag.strip().removeprefix(b"W/") for tag in cached.split(b",")}
    common = (*_SECURITY, _IMMUTABLE, (b"etag", asset.etag))
    if asset.etag in tags or b"*" in tags:
        await send_answer(send, Answer(304, b"", common))
        return
    await send_answer(send, answer(200, asset.body, asset.content_type, *common))


# -- HTML ---------------------------------------------------------------------------
_UNAUTHORIZED = (
    b"<!doctype html><title>twilio-trigger inspector</title>"
    b"<p>This inspector needs its token: open it with <code>?token=...</code>.</p>\n"
)


def _head(title: str, assets: Mapping[str, _Asset], script: str | None) -> str:
    """The ``<head>`` of a page: its title (escaped here), stylesheet and script."""
    loads = f'<script src="{script}" defer></script>' if script else ""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<link rel="stylesheet" href="{assets["inspector.css"].path}">{loads}</head>\n'
    )


def _page(assets: Mapping[str, _Asset]) -> str:
    head = _head("twilio-trigger inspector", assets, assets["inspector.js"].path)
    return f"""{head}<body>
<h1>twilio-trigger inspector</h1>
<div class="counters">
  <div class="counter">received<b id="received">0</b></div>
  <div class="counter">handled<b id="handled">0</b></div>
  <div class="counter">failed<b id="failed">0</b></div>
  <div class="counter">duplicates<b id="duplicates">0</b></div>
  <div class="counter">dead letters<b id="dead_letters">0</b></div>
</div>
<form class="filters" id="filters">
  <label>kind <select name="kind"><option value="">all</option><option>sms</option>
    <option>call</option><option>recording</option></select></label>
  <label>status <input name="status" size="12" placeholder="any"></label>
  <label>outcome <select name="outcome"><option value="">all</option>
    <option value="handled">handled</option><option value="failing">failing</option>
    <option value="retrying">retrying</option><option value="dead_letter">dead letters</option>
    <option value="pending">pending</option></select></label>
  <button type="button" id="replay-all">Replay all dead letters</button>
  <span id="note"></span>
</form>
<table><thead><tr><th>#</th><th>received (UTC)</th><th>kind</th><th>status</th><th>SID</th>
<th>callback</th><th>outcome</th><th>duration</th><th>attempts</th><th>error</th><th></th></tr>
</thead><tbody id="events"></tbody></table>
</body></html>
"""


def _header_name(name: str) -> str:
    """``x-home-region`` as it is usually written: ``X-Home-Region``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _detail(
    row: Mapping[str, object],
    entry: Entry,
    history: list[AttemptRecord],
    assets: Mapping[str, _Asset],
) -> str:
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
        ("received", _stamp(entry.received_at)), ("attempts", entry.attempts),
        ("next attempt", _stamp(entry.next_attempt_at) if entry.state is State.PENDING else None),
        ("finished", _stamp(entry.finished_at)),
        ("delivery key", entry.key),
    ]  # fmt: skip
    fact_rows = "".join(
        f"<tr><th>{e(name)}</th><td>{e(str(value))}</td></tr>"
        for name, value in facts
        if value is not None
    )
    attempts = (
        "".join(
            f"<tr class='{e(a.outcome)}'><td>{a.number}</td><td>{e(_stamp(a.at) or '')}</td>"
            f"<td class='outcome'>{e(a.outcome.replace('_', ' '))}</td>"
            f"<td>{'' if a.milliseconds is None else f'{a.milliseconds:.1f} ms'}</td>"
            f"<td>{'' if a.error is None else '<pre>' + e(a.error) + '</pre>'}</td></tr>"
            for a in history
        )
        or "<tr><td colspan='5'>no attempt seen by this process</td></tr>"
    )
    last_error = (
        f"<h2>Last error</h2><pre id='last-error'>{e(entry.last_error)}</pre>"
        if entry.last_error and entry.state is not State.DONE
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
    return f"""{head}<body><p><a href="/">← all events</a></p>
<h1>{e(entry.kind)} {e(entry.sid or "")} ({e(entry.status or "")})</h1>
<table class="facts">{fact_rows}</table>
{replay}{last_error}
<h2>Attempts</h2>
<table><thead><tr><th>#</th><th>at (UTC)</th><th>outcome</th><th>duration</th><th>error</th></tr>
</thead><tbody>{attempts}</tbody></table>
<h2>Parameters</h2><table class="params">{params}</table>
<h2>Headers</h2><table class="headers">{headers}</table>
<p>The signature was verified on arrival; the inbox keeps these headers, not the others.</p>
</body></html>
"""
