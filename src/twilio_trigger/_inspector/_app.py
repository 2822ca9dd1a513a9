"""The inspector as an ASGI application: its routes, its guards and its JSON API.

``/`` is the list of events and its search, ``/events/<id>`` one event,
``/sids/<SID>`` a SID's timeline, ``/api/events`` the rows as JSON (the search's
filters, ``limit`` and ``before``: :mod:`._search`), ``/api/sids/<SID>`` the
timeline as JSON, ``/api/refused`` the
requests this process refused lately, ``POST /api/replay`` replays dead letters
(``{"ids": [...]}``, or ``{}`` for all of them) or what a search finds
(``{"search": {...}}``, the filters of ``/api/events``; with ``"dry_run": true``
it only counts them), ``/api/dispatch`` says whether dispatch is paused and
``POST /api/dispatch`` pauses or resumes it (``{"paused": true}``),
``/api/limits`` shows each callback's limits and breaker, ``POST /api/limits``
and ``POST /api/breakers`` change them (:mod:`._control`), and
``/static/...`` the stylesheet and scripts.  The counters of ``/api/events`` are
the inbox's (every process, since it began counting) when it keeps them.
Without a token only loopback names are answered; with one, every request needs
it (:mod:`._session`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from urllib.parse import parse_qs

from .._delivery import Delivery
from .._logging import printable
from .._refused import RefusedRequests
from ..inbox import State, UnreachableError
from . import _control, _pages, _rows, _search, _static
from ._activity import Activity
from ._headers import ALLOW, CLOSE, HTML, JSON, TEXT, Message, Receive, Scope, Send, reply
from ._requests import (
    LOOPBACK,
    MAX_QUERY,
    UnusableError,
    dispatch_request,
    guarded_body,
    has_body,
    host_name,
    is_id,
    landing,
    replay_request,
)
from ._session import Sessions

__all__ = ["InspectorApp"]

logger = logging.getLogger("twilio_trigger")

#: The counts this process keeps of its own, shown when the inbox keeps none.
_PROCESS_COUNTS = ("received", "handled", "failed_attempts", "dead_lettered")


class InspectorApp:
    """The inspector as an ASGI application over a listener's delivery."""

    def __init__(
        self,
        delivery: Delivery,
        activity: Activity,
        *,
        token: str | None = None,
        loopback_only: bool = True,
        refused: RefusedRequests | None = None,
    ) -> None:
        if delivery.inbox is None:
            raise ValueError("the inspector shows an inbox: the listener has none")
        self._delivery = delivery
        self._inbox = delivery.inbox
        self._activity = activity
        self._refused = refused
        self._sessions = None if token is None else Sessions(token)
        self._loopback_only = loopback_only
        self._assets = _static.assets()
        self._static = {asset.path: asset for asset in self._assets.values()}

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
        unread = has_body(scope["headers"])

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
                    message = {**message, "headers": [*message["headers"], CLOSE]}
            await send(message)

        try:
            await self._serve(scope, reading, answering)
        except UnreachableError:  # told once per outage by the inbox
            if not answered:
                await reply(send, 503, b"the inbox could not be read; try again\n", TEXT)
        except Exception:
            # What a request holds is refused with a 4xx before it gets here; this
            # is the inbox failing (a locked SQLite file, a Redis gone away).
            logger.exception(
                "the inspector could not answer %s %s",
                printable(str(scope.get("method", ""))[:16]),
                printable(str(scope.get("path", ""))[:200]),
            )
            if not answered:
                await reply(send, 503, b"the inbox could not be read; try again\n", TEXT)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, bytes] = {name.lower(): value for name, value in scope["headers"]}
        raw_query: bytes = scope.get("query_string", b"")
        if len(raw_query) > MAX_QUERY:
            await reply(send, 414, b"query string too long\n", TEXT)
            return
        query = parse_qs(raw_query.decode("utf-8", "replace"))
        refusal = self._refusal(headers, query)
        if refusal is not None:
            await reply(send, *refusal)
            return
        method, path = scope["method"], scope["path"]
        if self._sessions is not None and "token" in query and method in ("GET", "HEAD"):
            # The link with the token, once (_refusal checked it): keep a session
            # in a cookie, not the token in the address bar.
            await reply(
                send, 303, b"", TEXT, (b"location", landing(path).encode("ascii")),
                (b"set-cookie", self._sessions.set_cookie()),
            )  # fmt: skip
            return
        await self._route(method, path, headers, query, receive, send)

    def _refusal(
        self, headers: Mapping[bytes, bytes], query: Mapping[str, list[str]]
    ) -> tuple[int, bytes, str] | None:
        if self._sessions is None:
            # Loopback only: refuse names other than loopback ones, so that a page
            # elsewhere cannot reach this through DNS rebinding.
            host = host_name(headers.get(b"host", b""))
            if self._loopback_only and host not in LOOPBACK:
                return 421, b"this inspector answers on 127.0.0.1 and localhost only\n", TEXT
            return None
        if not self._sessions.authorized(headers, query):
            return 401, _pages.UNAUTHORIZED, HTML
        return None

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
            if path == "/api/replay":
                await self._replay(headers, receive, send)
            elif path == "/api/dispatch":
                await self._dispatch(headers, receive, send)
            elif path == "/api/limits":
                await _control.post_limits(self._delivery, headers, receive, send)
            elif path == "/api/breakers":
                await _control.post_breakers(self._delivery, headers, receive, send)
            else:
                await reply(send, 404, b"not found\n", TEXT)
            return
        if method not in ("GET", "HEAD"):
            await reply(send, 405, b"method not allowed\n", TEXT, (b"allow", ALLOW))
            return
        if path == "/":
            # The filters are checked here too, so that the page says what is wrong
            # with a link even before its script asks.
            error = _search.problem(query)
            page = _pages.index(self._assets, _search.values(query), error)
            await reply(send, 200, page.encode("utf-8"), HTML)
        elif path == "/api/events":
            try:
                found = await self._found(query)
            except ValueError as problem:
                await reply(send, 400, f"{problem}\n".encode(), TEXT)
                return
            document = {
                "counters": await self._counters(),
                "paused": await self._inbox.paused(),
                **found,
            }
            await reply(send, 200, json.dumps(document).encode(), JSON)
        elif path == "/api/dispatch":
            document = {"paused": await self._inbox.paused()}
            await reply(send, 200, json.dumps(document).encode(), JSON)
        elif path == "/api/limits":
            document = await _control.view(self._delivery)
            await reply(send, 200, json.dumps(document).encode(), JSON)
        elif path.startswith("/sids/") and _search.is_sid(path[6:]):
            found = await self._timeline(path[6:])
            await reply(send, 200, _pages.timeline(found, self._assets).encode("utf-8"), HTML)
        elif path.startswith("/api/sids/") and _search.is_sid(path[10:]):
            found = await self._timeline(path[10:])
            await reply(send, 200, json.dumps(found).encode(), JSON)
        elif path.startswith(("/sids/", "/api/sids/")):
            message = f"a SID is letters and digits, at most {_search.MAX_SID}\n"
            await reply(send, 400, message.encode(), TEXT)
        elif path == "/api/refused":
            await reply(send, 200, json.dumps(self._refused_json()).encode(), JSON)
        elif path.startswith("/events/") and is_id(path[8:]):
            entry = await self._inbox.get(int(path[8:]))
            if entry is None:
                await reply(send, 404, b"no such event\n", TEXT)
                return
            history = self._activity.attempts(entry.id)
            row = _rows.row(entry, history, self._delivery.callback_label)
            page = _pages.event(row, entry, history, self._assets)
            await reply(send, 200, page.encode("utf-8"), HTML)
        elif path in self._static:
            await _static.serve(send, self._static[path], headers)
        else:
            await reply(send, 404, b"not found\n", TEXT)

    async def _found(self, query: Mapping[str, list[str]]) -> dict[str, object]:
        label = self._delivery.callback_label
        return await _search.found(self._inbox, self._activity, label, query)

    async def _timeline(self, sid: str) -> dict[str, object]:
        label = self._delivery.callback_label
        return await _search.timeline(self._inbox, self._activity, label, sid)

    def _refused_json(self) -> dict[str, object]:
        if self._refused is None:  # refused_kept=0
            return {"kept": 0, "total": 0, "counts": {}, "refused": []}
        return self._refused.to_json()

    async def _counters(self) -> dict[str, object]:
        """The counters at the top of the page: the inbox's, kept by every process
        since it began counting (``scope`` "inbox"), or this process's since it
        started when the inbox keeps none ("process"); the duplicates are always
        this process's; and the backlog now."""
        backlog = await self._inbox.backlog()
        now = {
            "pending": backlog[State.PENDING],
            "running": backlog[State.RUNNING],
            "dead_letters": backlog[State.DEAD],
        }
        mine = self._activity.counts
        try:
            kept = await self._inbox.counters()
        except NotImplementedError:
            return {
                "scope": "process",
                "since": _rows.stamp(self._activity.started),
                **{name: mine[name] for name in _PROCESS_COUNTS},
                "replayed": None,
                "duplicates": mine["duplicates"],
                **now,
            }
        return {
            "scope": "inbox",
            "since": _rows.stamp(kept.since) if kept.since else None,
            "received": kept.received,
            "handled": kept.handled,
            "failed_attempts": kept.failed_attempts,
            "dead_lettered": kept.dead_lettered,
            "replayed": kept.replayed,
            "duplicates": mine["duplicates"],
            **now,
        }

    async def _dispatch(self, headers: Mapping[bytes, bytes], receive: Receive, send: Send) -> None:
        """Pause or resume dispatch for every process of the inbox (``{"paused":
        true}``), under the replay's guards; this process's workers follow at once."""
        body = await guarded_body(headers, receive, send, b"dispatch", "pausing and resuming come")
        if body is None:
            return
        try:
            paused = dispatch_request(body)
        except UnusableError as error:
            message = f'expected {{"paused": true}} or {{"paused": false}}: {error}\n'
            await reply(send, 400, message.encode("utf-8"), TEXT)
            return
        await self._delivery.set_paused(paused)
        logger.info("the inspector %s dispatch", "paused" if paused else "resumed")
        await reply(send, 200, json.dumps({"paused": paused}).encode(), JSON)

    async def _replay(self, headers: Mapping[bytes, bytes], receive: Receive, send: Send) -> None:
        body = await guarded_body(headers, receive, send, b"replay", "replays come")
        if body is None:
            return
        try:
            request = replay_request(body)
        except UnusableError as error:
            message = f'expected {{"ids": [1, 2]}} or {{}}: {error}\n'
            await reply(send, 400, message.encode("utf-8"), TEXT)
            return
        if request.search is None:
            replayed = await self._inbox.replay(request.ids)
            self._delivery.wake()
            await reply(send, 200, json.dumps({"replayed": replayed}).encode(), JSON)
            return
        try:
            search, _ = _search.search_of(request.search)
        except ValueError as problem:  # the same reason /api/events gives
            await reply(send, 400, f"{problem}\n".encode(), TEXT)
            return
        if request.dry_run:
            count = await self._inbox.count_matching(search)
            await reply(send, 200, json.dumps({"count": count}).encode(), JSON)
            return
        # The workers start on each batch as it is made pending, not after the last.
        replayed = await self._inbox.replay_matching(
            search, progress=lambda done, total: self._delivery.wake()
        )
        self._delivery.wake()
        await reply(send, 200, json.dumps({"replayed": replayed}).encode(), JSON)
