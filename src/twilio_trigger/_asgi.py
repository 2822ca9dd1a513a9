"""The listener as an ASGI application: HTTP in, :class:`WebhookHandler` answers out."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple

from ._core import answers
from ._core.answers import Answer
from ._core.kinds import Kind
from ._delivery import Delivery
from ._observe import Refusal, Rejection
from ._refused import REQUEST, Request
from ._webhook import WebhookHandler

__all__ = ["Endpoint", "Head", "WebhookApp", "send_answer"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: A GET endpoint beside the webhook (health, metrics): no request, one answer.
Endpoint = Callable[[], Awaitable[Answer]]


async def send_answer(send: Send, answer: Answer) -> None:
    """Send *answer* as the ASGI response."""
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


#: A Host header the webhook's URL can be built from (RFC 3986 host, then an
#: optional port): a registered name, or an IPv6 or IPvFuture literal in brackets.
#: Anything else (an unclosed bracket, a slash, an "@", a space) is refused
#: before it can reach the URL the signature is checked against.
_HOST = re.compile(
    rb"(?:\[[0-9A-Za-z:.%_~-]{2,100}\]|[A-Za-z0-9._~!$&'()*+,;=%-]{1,255})(?::[0-9]{0,5})?"
)


#: Host headers found valid: a listener sees very few (Twilio always sends its own).
_VALID_HOSTS: set[bytes] = set()


def _repeated(raw_headers: Sequence[tuple[bytes, bytes]]) -> Answer | None:
    """The answer to a request that sent Host, or a header of
    :data:`answers.REPEATED_HEADER`, more than once; ``None`` when it did not."""
    seen: set[bytes] = set()
    for name, _ in raw_headers:
        if name == b"host" or name in answers.REPEATED_HEADER:
            if name in seen:
                return answers.MALFORMED_HOST if name == b"host" else answers.REPEATED_HEADER[name]
            seen.add(name)
    return None


def _valid_host(host: bytes) -> bool:
    if host in _VALID_HOSTS:
        return True
    if _HOST.fullmatch(host) is None:
        return False
    if host.startswith(b"["):
        # Only a literal urllib also accepts: it raises for anything else.
        from urllib.parse import urlsplit

        try:
            urlsplit("http://" + host.decode("ascii") + "/").port  # noqa: B018
        except ValueError:
            return False
    if len(_VALID_HOSTS) < 64:  # bounded: made-up hosts cannot grow it
        _VALID_HOSTS.add(host)
    return True


def _remote(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _route_path(scope: Scope) -> str:
    # Mounted under a prefix, `path` includes `root_path` (ASGI spec, Starlette).
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def _full_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path if path.startswith(root) else root + path


class Head(NamedTuple):
    """What the head of a request for the webhook said (:meth:`WebhookApp.read_head`)."""

    scope: Scope
    route: str
    prefer: Sequence[Kind]
    method: str
    headers: dict[bytes, bytes]
    remote: str | None


class WebhookApp:
    """ASGI application serving one webhook path, and the GET endpoints beside it.

    It needs no lifespan events (an app mounted in another never gets them) and
    answers them when they come.
    """

    __slots__ = (
        "_endpoints",
        "_handler",
        "_keeps_refused",
        "_path",
        "_paths",
        "_public_at",
        "_shutdown_timeout",
    )

    def __init__(
        self,
        handler: WebhookHandler[Delivery],
        *,
        path: str,
        shutdown_timeout: float | None = None,
        endpoints: Mapping[str, Endpoint] | None = None,
        paths: Mapping[str, Sequence[Kind]] | None = None,
        keeps_refused: bool = False,
    ) -> None:
        self._handler = handler
        # Whether refused requests are kept (the inspector's): only then does each
        # request leave its method, path and headers where a refusal can read them.
        self._keeps_refused = keeps_refused
        self._path = path
        self._shutdown_timeout = shutdown_timeout
        self._endpoints = dict(endpoints or {})
        # Paths of services attached at their own (live: attach() adds to it).
        self._paths: Mapping[str, Sequence[Kind]] = {} if paths is None else paths
        self._public_at: dict[str, str | None] = {}

    @property
    def handler(self) -> WebhookHandler[Delivery]:
        """The listener's logic, for adapters that translate other frameworks' requests."""
        return self._handler

    @property
    def delivery(self) -> Delivery:
        return self._handler.delivery

    def refused_at_edge(self, refusal: Refusal) -> None:
        """A request refused by the server before it reached this application."""
        self._handler.delivery.observer.rejected(refusal)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # Starts the inbox's workers with the server, so that events stored
        # before a restart are dispatched without waiting for a new request.
        delivery = self._handler.delivery
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await delivery.startup()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await delivery.shutdown(self._shutdown_timeout)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    def webhook_route(self, scope: Scope) -> tuple[str, Sequence[Kind]] | None:
        """The route of *scope*'s request and the kinds its path prefers, when it is
        for the webhook (this app's path or a service's), else ``None``."""
        route = _route_path(scope)
        prefer = self._paths.get(route, ())
        if route != self._path and not prefer:
            return None
        return route, prefer

    @property
    def keeps_refused(self) -> bool:
        """Whether refused requests are kept (then each leaves its head in ``REQUEST``)."""
        return self._keeps_refused

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        webhook = self.webhook_route(scope)
        if webhook is None:
            hosts = [value for name, value in scope["headers"] if name == b"host"]
            if len(hosts) > 1 or (not hosts and scope.get("http_version", "1.1") != "1.0"):
                # RFC 9112, 3.2: an HTTP/1.1 request has exactly one Host.
                return await send_answer(
                    send, answers.MISSING_HOST if not hosts else answers.MALFORMED_HOST
                )
            endpoint = self._endpoints.get(_route_path(scope))
            if endpoint is None:
                return await send_answer(send, answers.NOT_FOUND)
            if scope["method"] not in ("GET", "HEAD"):
                return await send_answer(send, answers.GET_ONLY)
            answer = await endpoint()
            if scope["method"] == "HEAD":
                answer = Answer(answer.status, b"", answer.headers)
            return await send_answer(send, answer)
        method = scope["method"]
        if method != "POST" and method != "GET":
            return await send_answer(send, answers.METHOD_NOT_ALLOWED)
        if self._keeps_refused:  # names only, read if it is refused
            REQUEST.set(Request(method, scope["path"], scope["headers"]))
        head = self.read_head(scope, webhook)
        if isinstance(head, Answer):
            return await send_answer(send, head)

        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body: bytes = message.get("body", b"")
        if method == "POST" and message.get("more_body", False):
            limit = self._handler.max_body_bytes
            chunks = bytearray(body)
            while len(chunks) <= limit and message.get("more_body", False):
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunks += message.get("body", b"")
            body = bytes(chunks)
        return await send_answer(send, await self.respond(head, body))

    def read_head(self, scope: Scope, webhook: tuple[str, Sequence[Kind]]) -> Head | Answer:
        """What the head of a request for the webhook says, or the answer to give
        before its body is read (a malformed Host, then :meth:`WebhookHandler.precheck`).

        *webhook* is what :meth:`webhook_route` gave for *scope*; its method is
        POST or GET.  The ASGI application and the listener's own server
        (:mod:`._direct`) both go through here and :meth:`respond`.
        """
        raw_headers = scope["headers"]
        headers = dict(raw_headers)  # names are lower-case in ASGI
        handler = self._handler
        host = headers.get(b"host")
        if host is None:
            # HTTP/1.0 may leave it out (the URL is then the server's address).
            if scope.get("http_version", "1.1") != "1.0":
                return handler.refuse(Rejection.MALFORMED, answers.MISSING_HOST, _remote(scope))
        elif not _valid_host(host):
            return handler.refuse(Rejection.MALFORMED, answers.MALFORMED_HOST, _remote(scope))
        if len(headers) != len(raw_headers):  # some name repeated: which?
            repeated = _repeated(raw_headers)
            if repeated is not None:
                return handler.refuse(Rejection.MALFORMED, repeated, _remote(scope))
        content_type = headers.get(b"content-type")
        signature = headers.get(b"x-twilio-signature")
        declared = headers.get(b"content-length", b"")
        length = -1  # unknown: the body is counted as it comes
        if declared.isdigit():
            length = int(declared) if len(declared) < 19 else 2**63
        remote = _remote(scope)
        method: str = scope["method"]
        early = handler.precheck(
            content_type,
            signature,
            length,
            remote,
            authorization=headers.get(b"authorization"),
            method=method,
        )
        if early is not None:
            return early
        return Head(scope, webhook[0], webhook[1], method, headers, remote)

    async def respond(self, head: Head, body: bytes) -> Answer:
        """The answer to the request of *head* (from :meth:`read_head`) with *body*,
        read whole or up to one byte past ``max_body_bytes``."""
        handler = self._handler
        method = head.method
        if method == "GET":
            body = b""  # a GET's parameters are in its query; a body is ignored
        elif len(body) > handler.max_body_bytes:
            return handler.too_large(head.remote)
        scope = head.scope
        headers = head.headers
        host = headers.get(b"host")
        if host is None:
            server = scope.get("server") or ("localhost", None)
            host_text = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        else:
            host_text = host.decode("latin-1")
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else _full_path(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        route = head.route
        if route == self._path:
            url = handler.url_for(scope.get("scheme", "http"), host_text, path, query)
        else:
            url = handler.url_for(
                scope.get("scheme", "http"), host_text, path, query, self._public_url_at(route)
            )
        token = headers.get(b"i-twilio-idempotency-token")
        return await handler.handle(
            url,
            headers.get(b"x-twilio-signature"),
            body,
            None if token is None else token.decode("latin-1"),
            content_type=headers.get(b"content-type"),
            settings=headers.get(b"x-twilio-webhooks-signature-settings"),
            headers=headers,
            remote=head.remote,
            prefer=head.prefer,
            path=route,
            query=query,
            method=method,
        )

    def _public_url_at(self, route: str) -> str | None:
        # public_url for a service's own path: its path in place of the listener's.
        if route not in self._public_at:
            self._public_at[route] = self._handler.public_url_beside(self._path, route)
        return self._public_at[route]
