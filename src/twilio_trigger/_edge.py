"""The listener's own HTTP server: uvicorn's httptools protocol, with the limits an
open port needs.

A webhook URL is public, and uvicorn alone bounds neither a request's head nor the
time a client may take to send it, nor the number of connections (its
``limit_concurrency`` answers 503 only once a head has arrived).  What a client may
cost before it has proven anything is bounded here, per connection:

- the request head: at most ``max_head_bytes`` (request line and headers) and
  ``max_headers`` headers, else 431; the parser is never fed more than the limit,
  so one long header costs no more memory than many short ones;
- time: ``head_timeout`` from a request's first byte to the end of its head,
  ``body_timeout`` from there to the end of its body (408 while an answer can
  still be given), ``keepalive_timeout`` idle between requests, and a connection
  that sends nothing at all is closed after ``head_timeout``;
- connections: beyond ``max_connections`` a new one gets a 503 and is closed at
  once, while those already open keep being served;
- requests sent ahead on one connection (pipelined): at most ``max_pipelined`` wait
  behind the one being answered; the next ends the connection once the answers
  before it are written (each waiting request costs memory, and uvicorn would read
  and queue as many as a client sends);
- answers a client does not read: a connection whose answers have waited
  ``write_timeout`` for the client to make room is ended (nothing else would end
  it: every other deadline is for what the client sends);
- a body: what is read of it, a chunked body's framing included (its sizes and
  extensions, which decoding does not count), at most ``4 * max_body_bytes +
  1 MiB``, else 413;
- a request answered before its body was read (413, 415, 403...) ends its
  connection: reading the rest only to keep the connection open would let the
  client decide how much the server reads.

The webhook's own requests are served without ASGI (:mod:`._direct`); the
bounds here hold for every request alike.

Every refusal is told to the listener's observers (log, metrics), rate-limited
there.  :class:`EdgeConfig` carries the limits to the protocol, in this process
and, pickled with it, in the worker processes of ``run --workers N``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.utils import get_remote_addr

from ._batched import Batched
from ._core import answers
from ._direct import DirectProtocol, closing_bytes
from ._edge_limits import EdgeLimits
from ._observe import Refusal, RefusalLog, Rejection

__all__ = ["EdgeConfig", "EdgeProtocol"]

logger = logging.getLogger("twilio_trigger")


class EdgeConfig(uvicorn.Config):
    """uvicorn's configuration, with the :class:`EdgeLimits` the protocol applies."""

    def __init__(self, app: Any, *, limits: EdgeLimits, **options: Any) -> None:
        options.setdefault("http", EdgeProtocol)
        options.setdefault("ws", "none")  # a webhook never upgrades
        # Annotated as int, used as a delay: a float works.
        options.setdefault("timeout_keep_alive", limits.keepalive_timeout)
        super().__init__(app, **options)
        self.limits = limits

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to the processes of `run --processes`: each finds its own app.
        state = self.__dict__.copy()
        state.pop("_direct", None)
        return state


class _RefusedError(Exception):
    """Raised where the protocol finds a request it will not serve."""

    def __init__(self, reason: str, status: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.message = message


# Phases of a connection, for its one timer.
_IDLE = 0  # no deadline: a request being served
_HEAD = 1
_BODY = 2
_KEPT = 3  # answered, kept alive for the next request until timeout_keep_alive

#: Tells refusals when no listener's observers can be found (an app of another kind).
_fallback = RefusalLog()


def _observer_of(app: Any) -> Any:
    """The listener application under uvicorn's middleware, if it is one."""
    for _ in range(8):
        if hasattr(app, "refused_at_edge"):
            return app
        app = getattr(app, "app", None)
    return None


class EdgeProtocol(DirectProtocol):
    """uvicorn's httptools protocol, serving the webhook's requests without ASGI
    (:class:`DirectProtocol`), bounded as the module's docstring says."""

    def __init__(self, config: uvicorn.Config, **state: Any) -> None:
        super().__init__(config, **state)
        limits = getattr(config, "limits", None)
        self._limits = limits if isinstance(limits, EdgeLimits) else EdgeLimits()
        self._head_bytes = 0
        self._phase = _HEAD
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        # The timer fires at least this often while armed: no deadline is shorter,
        # so a deadline set after it was armed is never missed.
        self._step = min(
            self._limits.head_timeout, self._limits.body_timeout, self.timeout_keep_alive
        )
        self._ended = False  # refused or timed out: nothing more is read
        self._kept_alive: Any = None  # the request whose keep-alive waits for its body
        # A request whose head began while the one before it was read (pipelined in
        # the same read): its head is measured once complete, not as it is fed.
        self._uncounted = False
        # The headers of the request whose body is being read, as many as its head
        # had: what the parser adds after them (a chunked body's trailers) is not.
        self._fields: list[tuple[bytes, bytes]] | None = None
        self._field_count = 0
        self._trailer_bytes = 0
        self._trailer_count = 0
        self._body_bytes = 0  # read while the body of the request in phase _BODY was
        self._write_timer: asyncio.TimerHandle | None = None

    # -- connections -----------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self._limits.max_connections:
            # Refused before it costs anything more than this answer; never
            # counted among the connections served.
            self.transport = transport
            self._ended = True
            transport.write(self._refusal(503, "too many connections; try again"))
            transport.close()
            address = get_remote_addr(transport)
            self._tell(
                Rejection.CONNECTIONS,
                503,
                f"more than max_connections={self._limits.max_connections} connections open",
                address[0] if address else None,
            )
            return
        super().connection_made(transport)
        # Everything written to the connection from now on goes through it.
        self.transport = Batched(transport, self.loop)  # type: ignore[assignment]
        self._set_deadline(_HEAD, self._limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase = _IDLE
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio's signature
        # The client has sent all it will (a half-close).  The requests it sent
        # whole are answered, in order, then the connection ends; one cut short
        # (a partial head, a body that will not end) is dropped.
        cut = self.cycle if self._phase == _BODY else None
        for queued in [entry for entry in self.pipeline if entry[0] is cut]:
            self.pipeline.remove(queued)
        serving = self._serving
        if self.pipeline:
            last = self.pipeline[0][0]  # the newest whole request
        elif serving is not None and serving is not cut and not serving.response_complete:
            last = serving
        else:
            last = None
        if last is None or self.transport.is_closing():
            if isinstance(self.transport, Batched):
                self.transport.flush()  # an answer held for the loop's next pass
            return None  # the transport closes
        self._ended = True
        last.keep_alive = False  # its answer ends the connection
        return True

    # -- reading ---------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._ended:
            return
        try:
            if self._phase == _BODY:
                self._count_body(len(data))
                self.parser.feed_data(data)
                fields = self._fields
                if fields is not None and len(fields) > self._field_count:
                    self._drop_trailers()
            else:
                self._feed_head(data)
        except httptools.HttpParserUpgrade:
            # What follows the head is not HTTP any more, and this listener never
            # upgrades: the request is answered as it is, then the connection ends.
            self._ended = True
            if self.cycle is not None:
                self.cycle.keep_alive = False
            logger.debug("a request asked to upgrade its connection: closed after its answer")
        except httptools.HttpParserError as error:
            context = error.__context__
            if isinstance(context, _RefusedError):
                self._refuse(context)
            else:
                self._refuse(_RefusedError(Rejection.MALFORMED, 400, "invalid HTTP request"))
        except _RefusedError as refused:
            self._refuse(refused)

    def _feed_head(self, data: bytes) -> None:
        limit = self._limits.max_head_bytes
        while data:
            phase = self._phase
            if phase == _BODY:  # the head ended inside the last chunk
                self._count_body(len(data))
                self.parser.feed_data(data)
                fields = self._fields
                if fields is not None and len(fields) > self._field_count:
                    self._drop_trailers()
                return
            if phase in (_IDLE, _KEPT):  # the first bytes of the next request
                self._set_deadline(_HEAD, self._limits.head_timeout)
            room = limit - self._head_bytes
            if room <= 0:
                raise _RefusedError(Rejection.HEAD_TOO_LARGE, 431, "request head too large")
            if len(data) <= room:
                chunk, data = data, b""
            else:  # never hand the parser more of a head than the limit
                chunk, data = data[:room], data[room:]
            self._head_bytes += len(chunk)
            self.parser.feed_data(chunk)
        if self._phase == _HEAD and self._head_bytes >= limit:
            raise _RefusedError(Rejection.HEAD_TOO_LARGE, 431, "request head too large")

    def on_message_begin(self) -> None:
        # Fed by _feed_head, a head is in phase _HEAD; one that begins while the
        # body before it is fed (pipelined in the same read) is not counted there.
        self._uncounted = self._phase != _HEAD
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        # Counted here, not header by header: max_head_bytes already bounds what
        # the headers hold in memory, and the common path stays uvicorn's own.
        headers = self.headers
        limits = self._limits
        if len(self.pipeline) >= limits.max_pipelined:
            # Queued behind the one being answered, already as many as allowed:
            # those are answered, then the connection ends (this one unread).
            raise _RefusedError(
                Rejection.PIPELINED,
                0,
                f"more than max_pipelined={limits.max_pipelined} requests sent ahead",
            )
        if len(headers) > limits.max_headers:
            raise _RefusedError(Rejection.HEAD_TOO_LARGE, 431, "too many request headers")
        if self._uncounted and (
            len(self.url) + sum(len(name) + len(value) + 4 for name, value in headers)
            > limits.max_head_bytes
        ):
            raise _RefusedError(Rejection.HEAD_TOO_LARGE, 431, "request head too large")
        if self.url[:1] != b"/" and self.url != b"*":
            self._absolute_form(headers)
        self._fields, self._field_count = headers, len(headers)
        self._trailer_bytes = self._trailer_count = self._body_bytes = 0
        self._set_deadline(_BODY, self._limits.body_timeout)
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.keep_alive and not self.parser.should_upgrade():
            # Until the body has been read, an answer ends the connection, and says
            # so (`connection: close`): a client must not send its next request on
            # a connection about to close.  Restored once the body is complete.
            cycle.keep_alive = False
            self._kept_alive = cycle

    def _absolute_form(self, headers: list[tuple[bytes, bytes]]) -> None:
        # RFC 9112, 3.2.2: a target in absolute form names the host, and the Host
        # header is ignored.  What follows reads the origin form and that host.
        try:
            target = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError:
            target = None
        if (
            target is None
            or (target.schema or b"").lower() not in (b"http", b"https")
            or not target.host
            or b"@" in self.url.split(b"/", 3)[2]  # userinfo (RFC 9110, 4.2.4), even empty
        ):
            raise _RefusedError(Rejection.MALFORMED, 400, "invalid request target")
        host = b"[%s]" % target.host if b":" in target.host else target.host
        if target.port is not None:
            host += b":%d" % target.port
        headers[:] = [pair for pair in headers if pair[0] != b"host"]
        headers.append((b"host", host))
        query = b"" if target.query is None else b"?" + target.query
        self.url = (target.path or b"/") + query

    def on_message_complete(self) -> None:
        fields = self._fields
        if fields is not None and len(fields) > self._field_count:
            self._drop_trailers()
        self._fields = None
        self._phase = _IDLE
        self._head_bytes = 0
        super().on_message_complete()
        cycle, self._kept_alive = self._kept_alive, None
        if cycle is not None and not cycle.response_started:
            cycle.keep_alive = True

    def _count_body(self, count: int) -> None:
        # A body is bounded as it is decoded (max_body_bytes), its framing is not:
        # a chunk size with endless leading zeros, an endless chunk extension.
        self._body_bytes += count
        if self._body_bytes > self._limits.max_body_read:
            raise _RefusedError(Rejection.TOO_LARGE, 413, "request body too large")

    def _drop_trailers(self) -> None:
        """Take the trailer fields of a chunked body out of the request's headers
        (the parser adds them there): never read as headers, and bounded as a
        head is, by ``max_head_bytes`` and ``max_headers`` (431 beyond)."""
        fields, count = self._fields, self._field_count
        assert fields is not None
        trailers = fields[count:]
        del fields[count:]
        self._trailer_count += len(trailers)
        self._trailer_bytes += sum(len(name) + len(value) + 4 for name, value in trailers)
        limits = self._limits
        if self._trailer_bytes > limits.max_head_bytes or self._trailer_count > limits.max_headers:
            raise _RefusedError(Rejection.HEAD_TOO_LARGE, 431, "request trailers too large")

    def shutdown(self) -> None:
        self._kept_alive = None  # a stop ends every connection after its answer
        super().shutdown()

    # -- answering -------------------------------------------------------------
    def on_response_complete(self) -> None:
        cycle = self.cycle
        if (
            self._phase == _BODY
            and cycle is not None
            and cycle.response_complete
            and not self.transport.is_closing()
        ):
            # Answered before the body was read (a refusal): the connection ends.
            self._ended = True
            self._phase = _IDLE
            self.transport.close()
        # uvicorn's, but for its keep-alive: a timer made and cancelled per request
        # there, the connection's one timer here (1.8 µs a request less).
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if not self._ended:  # (refused, or the client has sent all it will)
            self.flow.resume_reading()
            if self._phase in (_HEAD, _BODY):  # not read while this one was served
                self._deadline = self.loop.time() + self._timeout_of(self._phase)
        if self.pipeline:  # the next request, read while this one was served
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._phase == _IDLE:  # (not if the next head has begun)
            self._set_deadline(_KEPT, self.timeout_keep_alive)

    def _refuse(self, refused: _RefusedError) -> None:
        """Answer *refused* where an answer can still be given, and close."""
        self._ended = True
        phase, self._phase = self._phase, _IDLE
        status = refused.status  # what the client is told, 0 for nothing
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        serving = self._serving
        if phase == _BODY and busy and serving is not cycle and serving is not None:
            # A request queued behind the one being served (pipelined) is refused
            # while its body is read: it is never started, and those before it
            # are answered first, in order; the last of them ends the connection.
            for queued in [entry for entry in self.pipeline if entry[0] is cycle]:
                self.pipeline.remove(queued)
            last = self.pipeline[0][0] if self.pipeline else serving
            last.keep_alive = False
            self.flow.pause_reading()
            status = 0  # the connection ends unanswered after those
        elif busy and phase != _BODY:
            # The next request is refused while this one is served (its head,
            # fed as it came or pipelined in the same read): finish this one,
            # then close (its answer must not be cut by ours).
            assert cycle is not None
            cycle.keep_alive = False
            self.flow.pause_reading()
            status = 0
        elif not self.transport.is_closing():
            if refused.status and not (busy and cycle is not None and cycle.response_started):
                self.transport.write(self._refusal(refused.status, refused.message))
            else:
                status = 0
            self.transport.close()
        client = self.client
        self._tell(refused.reason, status, refused.message, client[0] if client else None)

    def _refusal(self, status: int, message: str) -> bytes:
        # With the server's default headers: the Date every 4xx must carry.
        defaults = b"".join(b"%s: %s\r\n" % pair for pair in self.server_state.default_headers)
        return closing_bytes(answers.reject(status, message), defaults)

    def _tell(self, reason: str, status: int, message: str, remote: str | None) -> None:
        refusal = Refusal(reason, status, message, remote)
        app = _observer_of(self.app)
        if app is None:
            _fallback.told(refusal)
        else:
            app.refused_at_edge(refusal)

    # -- answers the client does not read ---------------------------------------
    def pause_writing(self) -> None:
        # The transport holds more than it may: the client reads slower than it
        # is answered.  It has write_timeout to make room.
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(
                self._limits.write_timeout, self._write_stalled
            )

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()

    def _write_stalled(self) -> None:
        self._write_timer = None
        self._ended = True
        client = self.client
        self._tell(
            Rejection.TIMEOUT,
            0,
            f"answers not read within write_timeout={self._limits.write_timeout:g} s",
            client[0] if client else None,
        )
        # Ends the connection and releases what waits to write (its requests'
        # answers are dropped: the client was not reading them).
        self.transport.abort()

    # -- time ------------------------------------------------------------------
    def _set_deadline(self, phase: int, seconds: float) -> None:
        # One timer per connection, never moved: most requests change phase
        # without touching it.  Armed at most the shortest timeout ahead, it fires
        # before any deadline set since (none is shorter), and looks again.
        self._phase = phase
        now = self.loop.time()
        self._deadline = deadline = now + seconds
        if self._timer is None:
            self._timer = self.loop.call_at(min(deadline, now + self._step), self._check_deadline)

    def _timeout_of(self, phase: int) -> float:
        return self._limits.head_timeout if phase == _HEAD else self._limits.body_timeout

    def _check_deadline(self) -> None:
        self._timer = None
        phase = self._phase
        if phase == _IDLE or self._ended or self.transport.is_closing():
            return
        now = self.loop.time()
        if phase != _KEPT and self.flow.read_paused:
            # Requests queued ahead: the server does not read, the client is not late.
            self._deadline = now + self._timeout_of(phase)
        if now < self._deadline:
            when = min(self._deadline, now + self._step)
            self._timer = self.loop.call_at(when, self._check_deadline)
            return
        if phase == _KEPT:  # no next request within timeout_keep_alive: as uvicorn
            self._phase = _IDLE
            self.transport.close()
            return
        if phase == _HEAD and not self._head_bytes:
            # Connected and silent: nothing to answer.
            refused = _RefusedError(Rejection.TIMEOUT, 0, "no request within head_timeout")
        elif phase == _HEAD:
            refused = _RefusedError(Rejection.TIMEOUT, 408, "request head not received in time")
        else:
            refused = _RefusedError(Rejection.TIMEOUT, 408, "request body not received in time")
        self._refuse(refused)
