"""The webhook's requests, served by the listener's own server without ASGI.

uvicorn's ASGI cycle (its ``receive`` and ``send`` messages, a check of every
header of every answer) is about a quarter of a bare server's time per request
(``benchmarks/http_layers.py`` shows each layer).  For a
request for the webhook (a POST or GET to the listener's path or a service's)
:class:`DirectProtocol` checks the head as soon as it has arrived, keeps the body
(at most ``max_body_bytes``), and writes the answer whole, by the same
:meth:`WebhookApp.read_head` and :meth:`WebhookApp.respond` the ASGI application
uses.  Every other request (the health and metrics endpoints, ``HEAD``, an
``Expect: 100-continue``, an application that is not a listener's, or one wrapped
in other middleware, an access log, the inspector keeping refused requests) goes
through uvicorn as before.

The request keeps a task of its own, as under uvicorn: a callback's time limit
cancels the task it runs in.  :mod:`._edge` builds its bounds on this protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import re
from collections.abc import Coroutine
from typing import Any

import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from ._asgi import Head, WebhookApp
from ._core import answers
from ._core.answers import Answer

__all__ = ["Direct", "DirectProtocol", "closing_bytes"]

logger = logging.getLogger("twilio_trigger")

_INTERNAL_ERROR = answers.closing(answers.reject(500, "internal server error"))
#: A request still being handled when the stop's time to finish is over: nothing
#: about it failed, and what it stored stays stored; Twilio may try it again.
_STOPPED = answers.closing(answers.reject(503, "the listener is stopping; try again"))


async def _settled(scope: Any, receive: Any, send: Any) -> None:
    return None


#: What the proxy headers' reading is given to receive and send with: never called.
_UNUSED: Any = _settled


def _run_now(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run *coroutine*, which never waits, to its end."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()  # pragma: no cover - it waited: not one of ours
    raise RuntimeError("a coroutine that never waits waited")  # pragma: no cover


class Direct:
    """How a connection serves the webhook's requests without ASGI, found once per
    server configuration: the listener's :class:`WebhookApp` under uvicorn's
    middleware, and that middleware's reading of ``X-Forwarded-*`` from trusted
    proxies, applied to each request as uvicorn would (its own code, on a copy
    that passes nothing on)."""

    __slots__ = ("app", "proxy")

    def __init__(self, app: WebhookApp, proxy: ProxyHeadersMiddleware | None) -> None:
        self.app = app
        self.proxy = proxy

    @classmethod
    def of(cls, config: Any, app: Any) -> Direct | None:
        found: Direct | bool | None = getattr(config, "_direct", False)
        if found is not False:
            return found  # type: ignore[return-value]
        proxy = None
        if isinstance(app, ProxyHeadersMiddleware):
            proxy = ProxyHeadersMiddleware(_settled)
            proxy.trusted_hosts = app.trusted_hosts
            app = app.app
        direct = (
            cls(app, proxy)
            if isinstance(app, WebhookApp)
            and not app.keeps_refused
            and not getattr(config, "access_log", False)
            else None
        )
        with contextlib.suppress(AttributeError):  # a configuration with slots: not kept
            config._direct = direct
        return direct


#: A header name (RFC 9110 token) and a value (no control character but tab):
#: what uvicorn checks of each header it sends, checked here once per set of headers.
_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


class _Rendered:
    """The head of an answer, but its default headers and its ``connection`` header."""

    __slots__ = ("closes", "lines", "sized", "status")

    def __init__(self, answer: Answer) -> None:
        self.status = _status_line(answer.status)
        lines = []
        self.closes = False
        self.sized = answer.status in (204, 304)  # no body, no length
        for name, value in answer.headers:
            if _NAME.fullmatch(name) is None or _BAD_VALUE.search(value) is not None:
                raise ValueError(f"invalid header in an answer: {name!r}")
            name = name.lower()
            if name == b"content-length":
                self.sized = True
            elif name == b"connection":
                if b"close" in (token.strip().lower() for token in value.split(b",")):
                    self.closes = True
                continue  # written by the connection, once
            lines.append(b"%s: %s\r\n" % (name, value))
        self.lines = b"".join(lines)


#: Answers' heads, by status and headers: the listener gives a few dozen kinds.
_RENDERED: dict[tuple[int, tuple[tuple[bytes, bytes], ...]], _Rendered] = {}


def _rendered(answer: Answer) -> _Rendered:
    key = (answer.status, answer.headers)
    found = _RENDERED.get(key)
    if found is None:
        found = _Rendered(answer)
        if len(_RENDERED) < 256:
            _RENDERED[key] = found
    return found


def closing_bytes(answer: Answer, defaults: bytes = b"") -> bytes:
    """*answer* as written on a connection it ends, after the header lines
    *defaults* (the server's: its Date): the edge's refusals."""
    rendered = _rendered(answer)
    length = b"" if rendered.sized else b"content-length: %d\r\n" % len(answer.body)
    closing = b"connection: close\r\n\r\n"
    return b"".join((rendered.status, defaults, rendered.lines, length, closing, answer.body))


class DirectProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, serving the webhook's requests without ASGI."""

    def __init__(self, config: uvicorn.Config, **state: Any) -> None:
        # uvicorn makes it with keywords: server_state, app_state, _loop.
        super().__init__(config, **state)
        self._direct = Direct.of(config, self.app)
        # The webhook's request whose body is being read (by its task, once complete).
        self._reading: tuple[RequestResponseCycle, Head] | None = None
        self._defaults: tuple[object, bytes] = (None, b"")  # default headers, rendered
        # The request whose turn has come (after the answers to those before it).
        self._serving: RequestResponseCycle | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._reading = None
        super().connection_lost(exc)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvicorn's start of a request, once its head is in and its turn has come
        # (after the answers to those before it on the connection).
        self._serving = cycle
        direct = self._direct
        if direct is None or app is not self.app or cycle.waiting_for_100_continue:
            return super()._start_asgi_task(cycle, app)
        scope: Any = cycle.scope
        method = scope["method"]
        webhook = direct.app.webhook_route(scope) if method in ("POST", "GET") else None
        if webhook is None:
            return super()._start_asgi_task(cycle, app)
        if direct.proxy is not None:
            _run_now(direct.proxy(scope, _UNUSED, _UNUSED))
        head = direct.app.read_head(scope, webhook)
        if isinstance(head, Answer):
            return self._write_answer(cycle, head)
        handler = direct.app.handler
        # A GET's body is read and bounded as a POST's, then ignored: left unread,
        # it would hold the answer (uvicorn stops reading at 64 KiB until it is).
        if len(cycle.body) > handler.max_body_bytes:
            return self._write_answer(cycle, handler.too_large(head.remote))
        if cycle.more_body:
            self._reading = (cycle, head)
        # One task per request, as uvicorn's: the time limit of a callback cancels it.
        task = self.loop.create_task(self._respond(cycle, head))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
        return None

    def on_body(self, body: bytes) -> None:
        reading = self._reading
        if reading is None or reading[0] is not self.cycle:
            return super().on_body(body)
        # The body of the webhook's request: kept whole for its task, never beyond
        # the limit (uvicorn's would pause reading at 64 KiB until the app reads).
        cycle, head = reading
        cycle.body += body
        handler = self._direct.app.handler  # type: ignore[union-attr]
        if len(cycle.body) > handler.max_body_bytes:
            self._reading = None
            self._write_answer(cycle, handler.too_large(head.remote))
        return None

    async def _respond(self, cycle: RequestResponseCycle, head: Head) -> None:
        try:
            while cycle.more_body and not (cycle.disconnected or cycle.response_complete):
                await cycle.message_event.wait()
                cycle.message_event.clear()
            if cycle.disconnected or cycle.response_complete:
                return  # gone, or answered while its body came (413)
            body = bytes(cycle.body)
            cycle.body = bytearray()
            answer = await self._direct.app.respond(head, body)  # type: ignore[union-attr]
        except asyncio.CancelledError:  # stopping, and the time to finish is over
            self._write_answer(cycle, _STOPPED)
            raise
        except Exception:
            logger.exception("the listener failed to answer a request; answered 500")
            answer = _INTERNAL_ERROR
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()  # the client reads its answers slower than it asks
        self._write_answer(cycle, answer)

    def _write_answer(self, cycle: RequestResponseCycle, answer: Answer) -> None:
        """Write *answer* whole, as uvicorn's cycle would from its two messages."""
        if cycle.disconnected or cycle.response_complete:
            return
        try:
            rendered = _rendered(answer)
        except ValueError:
            logger.exception("the listener made an answer it cannot send; answered 500")
            answer = _INTERNAL_ERROR
            rendered = _rendered(answer)
        keep_alive = cycle.keep_alive and not rendered.closes
        defaults = self.server_state.default_headers
        if defaults is not self._defaults[0]:  # a new list every second (the date)
            self._defaults = (defaults, b"".join(b"%s: %s\r\n" % pair for pair in defaults))
        parts = [rendered.status, self._defaults[1], rendered.lines]
        if not rendered.sized:
            parts.append(b"content-length: %d\r\n" % len(answer.body))
        parts.append(b"\r\n" if keep_alive else b"connection: close\r\n\r\n")
        parts.append(answer.body)
        cycle.response_started = cycle.response_complete = True
        cycle.keep_alive = keep_alive
        self.transport.write(b"".join(parts))
        cycle.message_event.set()
        if not keep_alive:
            self.transport.close()
        cycle.on_response()
