"""Test kit: realistic Twilio payloads, signatures, and an in-process test client.

Unit-test a service without a server, without Twilio and without a network::

    import twilio_trigger as twilio
    from twilio_trigger.testing import TestClient

    def test_delivered_is_recorded():
        listener = twilio.Listener(auth_tokens=["test-token"])
        tracker = DeliveryTracker()
        listener.attach(tracker)
        with TestClient(listener) as client:
            answer = client.send_sms("delivered", sid="SM" + "1" * 32)
        assert answer.status_code == 200
        assert tracker.delivered == ["SM" + "1" * 32]

Payload factories take Twilio's parameter names as keyword overrides; a value
of ``None`` removes the parameter.  Every call makes fresh SIDs unless told.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from ._asgi import WebhookApp
from ._core import payloads as _payloads
from ._core.kinds import KINDS
from ._core.payloads import *  # noqa: F403 - every kind's payload factory, and its events
from ._core.signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    compute_json_signature,
    compute_signature,
    json_url,
    signature_settings,
)

if TYPE_CHECKING:
    from ._listener import Listener

__all__ = ["TestClient", "TestResponse", "sign", "sign_json"]
# The payload factories of every kind, where the registry's rows take them from.
__all__ += _payloads.__all__

_T = TypeVar("_T")

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def sign_json(url: str, body: bytes, token: str) -> tuple[str, str]:
    """The URL with the body's ``bodySHA256`` that Twilio requests, and its signature."""
    signed_url = json_url(url, body)
    return signed_url, compute_json_signature(signed_url, token)


def _pairs(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def sign(url: str, params: Params, token: str, algorithm: str = HMAC_SHA1) -> str:
    """The ``X-Twilio-Signature`` Twilio sends when it POSTs *params* to *url*.

    *algorithm* ``HMAC_SHA256`` with a shared key's secret as *token* gives the
    signature of a request signed with that shared key.
    """
    return compute_signature(url, _pairs(params), token, algorithm)


def _payload(
    kind: str, event: str | None, sid: str | None, overrides: Mapping[str, object]
) -> dict[str, str]:
    # A kind by its name, or one of its other payloads as "variant-kind" (inbound-call).
    factories = {k.name: k.payload for k in KINDS}
    factories.update(
        (f"{variant}-{k.name}", factory) for k in KINDS for variant, factory in k.variants.items()
    )
    factory = factories.get(kind)
    if factory is None:
        known = ", ".join(factories)
        raise ValueError(f"no kind {kind!r}: the kinds are {known}")
    if event is None:
        return factory(sid=sid, **overrides)
    return factory(event, sid=sid, **overrides)


@dataclass(frozen=True)
class TestResponse:
    """The listener's answer to one request made by :class:`TestClient`."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    #: The exceptions the listener logged while answering (a failing callback's).
    errors: tuple[BaseException, ...] = field(default=())

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


class TestClient:
    """Drives a listener's ASGI application in-process with signed requests.

    No port, no server: each request goes straight into ``listener.asgi`` on an
    event loop the client runs in a background thread, so it works the same from
    pytest, unittest or a script.  In an ``async`` test, use the ``a``-prefixed
    methods to run the request on the test's own loop instead.

    Requests are signed with the listener's first auth token (or *auth_token*)
    over the URL Twilio would have used: the listener's ``public_url`` when set,
    else ``http://testserver`` and its path.  With *shared_key* ``(key_id,
    secret)`` they are signed as a Webhook Rule's shared key signs them
    (HMAC-SHA256, with ``X-Twilio-Webhooks-Signature-Settings``).  With
    *credentials* ``(user, password)`` they carry HTTP Basic credentials, as
    Twilio sends them once challenged.

    Every request method takes *path*, to reach a service attached at a path of
    its own (``path="/voice/menu"``), and *query*, the URL's query as sent.
    """

    __test__ = False

    def __init__(
        self,
        listener: Listener,
        *,
        auth_token: str | None = None,
        shared_key: tuple[str, str] | None = None,
        host: str = "testserver",
        credentials: tuple[str, str] | None = None,
    ) -> None:
        settings = listener.settings
        self._app = listener.asgi
        self._public_url = settings.public_url
        self._authorization: str | None = None
        if credentials is not None:
            user, password = credentials
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._authorization = f"Basic {token}"
        self._path = settings.path
        self._shutdown_timeout = settings.shutdown_timeout
        self._host = host
        self._base_url = settings.public_url or f"http://{host}{settings.path}"
        tokens = settings.auth_tokens
        self._token = auth_token if auth_token is not None else (tokens[0] if tokens else None)
        self._algorithm = HMAC_SHA1
        self._settings: str | None = None
        if shared_key is not None:
            key_id, self._token = shared_key
            self._algorithm = HMAC_SHA256
            self._settings = signature_settings(key_id, HMAC_SHA256)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- requests ----------------------------------------------------------
    def send(
        self,
        kind: str,
        event: str | None = None,
        *,
        sid: str | None = None,
        path: str | None = None,
        query: str = "",
        method: str = "POST",
        **overrides: object,
    ) -> TestResponse:
        """Send a signed webhook of the kind named *kind* (``sms``, ``gather``, ...,
        or another payload of a kind: ``inbound-call``).

        *event* is the value that picks the callback (a status: ``delivered``)
        or the variant of the payload (``speech`` for a ``gather``); the kind's
        usual one when omitted.  The payload is the kind's factory's, with
        *overrides* (Twilio's names; ``None`` removes a parameter).  *method*
        ``GET`` sends it in the query, as a webhook configured for GET.
        """
        return self._run(
            self.asend(kind, event, sid=sid, path=path, query=query, method=method, **overrides)
        )

    def send_sms(
        self, status: str = "delivered", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """POST a signed message status (or inbound message) webhook."""
        return self.post(_payload("sms", status, sid, overrides))

    def send_call(
        self, status: str = "completed", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """POST a signed call status webhook."""
        return self.post(_payload("call", status, sid, overrides))

    def send_recording(
        self, status: str = "completed", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """POST a signed recording status webhook."""
        return self.post(_payload("recording", status, sid, overrides))

    def post(
        self,
        params: Params,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        body: bytes | None = None,
        path: str | None = None,
    ) -> TestResponse:
        """POST *params* as a form, signed unless *signature* is given (``""``: none).

        *body* replaces the encoded form (to send malformed input); *headers*
        add to or replace the ones Twilio sends.
        """
        return self._run(
            self.apost(
                params, query=query, headers=headers, signature=signature, body=body, path=path
            )
        )

    def get(
        self,
        params: Params,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        path: str | None = None,
    ) -> TestResponse:
        """GET with *params* in the query (after *query*, as Twilio appends them),
        signed over the whole URL unless *signature* is given (``""``: none)."""
        return self._run(
            self.aget(params, query=query, headers=headers, signature=signature, path=path)
        )

    async def asend(
        self,
        kind: str,
        event: str | None = None,
        *,
        sid: str | None = None,
        path: str | None = None,
        query: str = "",
        method: str = "POST",
        **overrides: object,
    ) -> TestResponse:
        """:meth:`send` on the running event loop."""
        params = _payload(kind, event, sid, overrides)
        if method.upper() == "GET":
            return await self.aget(params, query=query, path=path)
        if method.upper() != "POST":
            raise ValueError(f"Twilio sends webhooks with POST or GET, not {method!r}")
        return await self.apost(params, query=query, path=path)

    async def asend_sms(
        self, status: str = "delivered", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """:meth:`send_sms` on the running event loop."""
        return await self.apost(_payload("sms", status, sid, overrides))

    async def asend_call(
        self, status: str = "completed", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """:meth:`send_call` on the running event loop."""
        return await self.apost(_payload("call", status, sid, overrides))

    async def asend_recording(
        self, status: str = "completed", *, sid: str | None = None, **overrides: object
    ) -> TestResponse:
        """:meth:`send_recording` on the running event loop."""
        return await self.apost(_payload("recording", status, sid, overrides))

    async def apost(
        self,
        params: Params,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        body: bytes | None = None,
        path: str | None = None,
    ) -> TestResponse:
        """:meth:`post` on the running event loop."""
        pairs = _pairs(params)
        base = self._url_of(path)
        url = f"{base}?{query}" if query else base
        if signature is None and self._token is not None:
            signature = compute_signature(url, pairs, self._token, self._algorithm)
        content = urlencode(pairs).encode("ascii") if body is None else body
        return await self._send(FORM_CONTENT_TYPE, content, query, signature, headers, path)

    async def aget(
        self,
        params: Params,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        path: str | None = None,
    ) -> TestResponse:
        """:meth:`get` on the running event loop."""
        encoded = urlencode(_pairs(params))
        query = "&".join(part for part in (query, encoded) if part)
        base = self._url_of(path)
        url = f"{base}?{query}" if query else base
        if signature is None and self._token is not None:
            signature = compute_signature(url, [], self._token, self._algorithm)
        return await self._send(None, b"", query, signature, headers, path, method="GET")

    def _url_of(self, path: str | None) -> str:
        # The URL Twilio signs for a request to *path* (the listener's own by default).
        if path is None or path == self._path:
            return self._base_url
        if self._public_url is None:
            return f"http://{self._host}{path}"
        parts = urlsplit(self._public_url)
        tail = self._path.rstrip("/")
        own = parts.path.rstrip("/")
        prefix = own[: len(own) - len(tail)] if own.endswith(tail) else ""
        return urlunsplit((parts.scheme, parts.netloc, prefix + path, "", ""))

    def post_events(
        self,
        events: Sequence[Mapping[str, object]],
        *,
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        body: bytes | None = None,
    ) -> TestResponse:
        """POST CloudEvents as an Event Streams webhook sink receives them: a JSON
        array, signed over the URL with its ``bodySHA256`` (see :func:`cloudevent`).

        *body* replaces the JSON (to send malformed input); it is signed all the same.
        """
        return self._run(self.apost_events(events, headers=headers, signature=signature, body=body))

    async def apost_events(
        self,
        events: Sequence[Mapping[str, object]],
        *,
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        body: bytes | None = None,
    ) -> TestResponse:
        """:meth:`post_events` on the running event loop."""
        content = json.dumps(list(events)).encode("utf-8") if body is None else body
        url = json_url(self._base_url, content)
        query = url.partition("?")[2]
        if signature is None and self._token is not None:
            signature = compute_json_signature(url, self._token, self._algorithm)
        return await self._send("application/json", content, query, signature, headers)

    async def _send(
        self,
        content_type: str | None,
        content: bytes,
        query: str,
        signature: str | None,
        headers: Mapping[str, str] | None,
        path: str | None = None,
        *,
        method: str = "POST",
    ) -> TestResponse:
        sent = {"host": self._host}
        if content_type is not None:
            sent["content-type"] = content_type
            sent["content-length"] = str(len(content))
        sent["user-agent"] = "TwilioProxy/1.1"
        sent["i-twilio-idempotency-token"] = str(uuid.uuid4())
        if self._authorization is not None:
            sent["authorization"] = self._authorization
        if signature:
            sent["x-twilio-signature"] = signature
            if self._settings is not None:
                sent["x-twilio-webhooks-signature-settings"] = self._settings
        sent.update({name.lower(): value for name, value in (headers or {}).items()})
        return await self._call(
            [(name.encode("latin-1"), value.encode("latin-1")) for name, value in sent.items()],
            query,
            content,
            path or self._path,
            method,
        )

    async def _call(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: str,
        content: bytes,
        path: str,
        method: str = "POST",
    ) -> TestResponse:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "root_path": "",
            "headers": list(headers),
            "client": ("127.0.0.1", 50000),
            "server": (self._host, 80),
        }
        done = asyncio.Event()
        delivered = False
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": content, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        collector = _ErrorCollector()
        logger = logging.getLogger("twilio_trigger")
        logger.addHandler(collector)
        try:
            await self._app(scope, receive, send)
        finally:
            logger.removeHandler(collector)
            done.set()
        return TestResponse(
            status_code=started["status"],
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in started["headers"]},
            body=b"".join(chunks),
            errors=tuple(collector.errors),
        )

    # -- the background event loop ----------------------------------------
    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="twilio-trigger-test-client", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def close(self) -> None:
        """Stop what the listener started on the client's loop (an inbox's workers),
        then the loop itself.  The client can be used again after."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if isinstance(self._app, WebhookApp):
            shutdown = self._app.delivery.shutdown(self._shutdown_timeout)
            asyncio.run_coroutine_threadsafe(shutdown, loop).result()
        asyncio.run_coroutine_threadsafe(loop.shutdown_default_executor(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
