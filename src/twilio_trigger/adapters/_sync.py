"""The listener's asynchronous handler, driven from a synchronous (WSGI) framework.

A listener's stores, inbox and workers belong to one event loop.  A
:class:`SyncBridge` keeps that loop in a background thread, one per listener,
and runs every request's :meth:`WebhookHandler.handle` there.  Meanwhile the
request thread runs the sync callbacks the loop hands back to it, so that they
see the framework's context (``flask.current_app``, ``flask.g``, ...): it waits
in asgiref's ``CurrentThreadExecutor``, as ``asgiref.sync.async_to_sync`` does.

``async_to_sync`` itself is not used: called from a plain (WSGI) thread, it
runs each call on a new event loop in a new thread and cancels what the call
left on it, and the listener needs one loop that outlives its requests (the
inbox's workers run on it between them).  Nor does it let a waiting thread go
when the loop stops, or stop its loops at the interpreter's exit: ``_Runner``
and ``_close_at_exit`` do that.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import logging
import threading
import weakref
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import quote, unquote_to_bytes, urlsplit

# asgiref 3.9 or later: CurrentThreadExecutor takes its parent executor, and runs
# what was submitted before run_until_future() returns (3.7 and 3.8 could leave a
# function submitted as the request ended in the queue, its caller waiting forever).
from asgiref.current_thread_executor import CurrentThreadExecutor

from .._asgi import WebhookApp
from .._core import answers
from .._core.answers import Answer
from .._invoke import callback_executor
from .._webhook import KEPT_HEADERS, declared_length

if TYPE_CHECKING:
    from .._listener import Listener

__all__ = ["STOPPED", "SyncBridge", "bridge_for", "read_bounded", "request_path"]

logger = logging.getLogger("twilio_trigger")

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: The answer to a request caught by the bridge's stop.
STOPPED = answers.reject(503, "the listener is stopping; try again")

# What a path segment may hold unescaped (RFC 3986 pchar), and "/".
_PATH_SAFE = "/:@!$&'()*+,;=~"


def read_bounded(read: Callable[[int], bytes], limit: int) -> bytes | None:
    """The body, read with *read* until its end; ``None`` once it is longer than *limit*.

    At most ``limit + 1`` bytes are read, whatever the client declared.
    """
    body = bytearray()
    while len(body) <= limit:
        # A stream may return less than asked for before its end.
        chunk = read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    return None


def request_path(environ: Mapping[str, Any], path: str) -> str:
    """The request's path as the client sent it, to check the signature against.

    *path* is the framework's decoded path, script name included.  The raw
    request target (``REQUEST_URI``: werkzeug, uWSGI, mod_wsgi; ``RAW_URI``:
    gunicorn) keeps Twilio's exact escaping and is used when it decodes to
    *path*; when it does not (no such variable, or middleware that rewrote the
    script name), *path* is escaped again.
    """
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if isinstance(raw, str) and raw:
        target = raw.partition("?")[0].partition("#")[0]
        if not target.startswith("/"):  # an absolute-form target: http://host/path
            target = urlsplit(target).path
        decoded = unquote_to_bytes(target.encode("latin-1", "replace"))
        if decoded.decode("utf-8", "replace") == path:
            return target
    return quote(path, safe=_PATH_SAFE)


def _header(environ: Mapping[str, Any], name: str) -> bytes | None:
    value = environ.get(name)
    # WSGI strings carry the header's bytes as latin-1 code points.
    return value.encode("latin-1", "replace") if isinstance(value, str) else None


def _wsgi_name(header: bytes) -> str:
    name = header.decode("ascii").upper().replace("-", "_")
    return name if name == "CONTENT_TYPE" else "HTTP_" + name


class _RequestThread(CurrentThreadExecutor):
    """Runs what the event loop submits in the request's thread, while it waits.

    asgiref's executor, with the two things it does not do for the bridge:

    * A callback that raises ``SystemExit`` or ``KeyboardInterrupt``: asgiref
      would hand that exception to the event loop, where the task awaiting the
      callback re-raises it out of the loop and so stops the listener's loop for
      every request.  Here the loop sees a ``RuntimeError`` (the callback
      failed), and :meth:`raise_escaped` raises the exception itself in the
      request's thread once the request is answered.
    * A submission after the request was answered (by a task that outlived it):
      asgiref refuses it with a ``RuntimeError``; here the function still runs,
      in a thread of its own.
    """

    def __init__(self) -> None:
        super().__init__(None)  # not nested in another asgiref executor
        self._escaped: list[BaseException] = []

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        call = functools.partial(fn, *args, **kwargs)
        try:
            return super().submit(_contained, call, self._escaped)
        except RuntimeError:  # run_until_future() has returned: the request was answered
            return _in_new_thread(call)

    def raise_escaped(self) -> None:
        """Raise the ``SystemExit`` or ``KeyboardInterrupt`` a callback raised here, if any."""
        if self._escaped:
            raise self._escaped[0]


def _contained(call: Callable[[], _T], escaped: list[BaseException]) -> _T:
    """What *call* returns; a ``BaseException`` that is no ``Exception`` becomes one.

    The exception itself goes to *escaped*, for the thread's owner to raise.
    """
    try:
        return call()
    except BaseException as error:
        if isinstance(error, Exception):
            raise
        escaped.append(error)
        raise RuntimeError(f"the callback raised {type(error).__name__}") from error


def _in_new_thread(call: Callable[[], _T]) -> Future[_T]:
    future: Future[_T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(_contained(call, []))
        except Exception as error:
            future.set_exception(error)

    threading.Thread(target=run, name="twilio-trigger-callback", daemon=True).start()
    return future


class _Runner:
    """An event loop running in a thread of its own, and what other threads wait on.

    Not asgiref's: its loops live for one ``async_to_sync`` call (see the module).
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        #: The requests being handled (used on the loop only).
        self.requests: set[asyncio.Task[Any]] = set()
        self._waiting: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._stopped = False
        # A daemon, so that it never holds up the interpreter's exit: the exit
        # hook (_close_at_exit) stops it before that.
        self.thread = threading.Thread(target=self._main, name="twilio-trigger-bridge", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        loop = self.loop
        try:
            loop.run_forever()
        finally:
            with self._lock:
                self._stopped = True
                waiting = list(self._waiting)
            # No thread may wait for a loop that no longer runs.
            for future in waiting:
                future.cancel()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            # Does not wait for the default executor's threads: a sync callback
            # past its time limit would hold the stop for as long as it runs.
            loop.close()

    def submit(
        self, coroutine: Coroutine[Any, Any, _T], *, clean: bool = False
    ) -> Future[_T] | None:
        """Run *coroutine* on the loop; ``None`` (and the coroutine closed) once it stopped.

        The task inherits the caller's context variables, unless *clean*: what
        lives on in the loop (the inbox's workers) must not keep one request's.
        """
        with self._lock:
            if self._stopped:
                coroutine.close()
                return None
            schedule = asyncio.run_coroutine_threadsafe
            if clean:
                future = contextvars.Context().run(schedule, coroutine, self.loop)
            else:
                future = schedule(coroutine, self.loop)
            self._waiting.add(future)
        future.add_done_callback(self._settled)
        return future

    @property
    def stopped(self) -> bool:
        """True once the loop has stopped: nothing submitted runs any more."""
        return self._stopped

    def _settled(self, future: Future[Any]) -> None:
        with self._lock:
            self._waiting.discard(future)

    def stop(self) -> None:
        """Stop the loop, cancel what still runs on it, and join its thread."""
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


class SyncBridge:
    """Serves one listener's webhook requests to a synchronous framework.

    The event loop and its thread start with the first request (or
    :meth:`start`), which also opens the listener's inbox and starts its
    workers; :meth:`close` stops them, and is called when the interpreter exits.
    A request after :meth:`close` starts them again.
    """

    def __init__(self, listener: Listener) -> None:
        app = listener.asgi
        if not isinstance(app, WebhookApp):
            raise TypeError(f"listener.asgi is not the listener's own application: {app!r}")
        # The handler and the timeout, not the listener: bridge_for() keys its
        # bridges by the listener weakly.
        self._handler = app.handler
        self._shutdown_timeout = listener.settings.shutdown_timeout
        self._lock = threading.Lock()
        self._runner: _Runner | None = None

    @property
    def running(self) -> bool:
        """True between the start of the event loop and :meth:`close`."""
        return self._runner is not None

    def start(self) -> None:
        """Start the event loop, open the inbox and start its workers, if not done yet.

        Raises what opening the inbox raised (``ConfigurationError``).
        """
        with self._lock:
            if self._runner is None:
                self._start()

    def _start(self) -> _Runner:
        runner = _Runner()
        started = runner.submit(self._handler.delivery.startup(), clean=True)
        try:
            if started is None:  # pragma: no cover - the new loop stopped by itself
                raise RuntimeError("the bridge's event loop stopped as it started")
            started.result()
        except BaseException:
            runner.stop()
            raise
        self._runner = runner
        _close_at_exit(self)
        return runner

    def respond(
        self,
        environ: Mapping[str, Any],
        read: Callable[[int], bytes],
        location: Callable[[], tuple[str, str, str]],
    ) -> Answer:
        """The listener's answer to a POST (or a GET) to its webhook, in the
        request's thread.

        *environ* is the request's WSGI environment (method, headers, query
        string, raw path); *read* reads up to n bytes of its body; *location*
        gives the scheme, host and decoded path (script name included) as the
        framework sees them, behind its proxy settings.
        """
        handler = self._handler
        method = environ.get("REQUEST_METHOD")
        if method != "POST" and method != "GET":  # a HEAD a framework routed here
            return answers.METHOD_NOT_ALLOWED
        signature = _header(environ, "HTTP_X_TWILIO_SIGNATURE")
        content_type = _header(environ, "CONTENT_TYPE")
        length = declared_length(environ.get("CONTENT_LENGTH"))
        early = handler.precheck(
            content_type,
            signature,
            length,
            authorization=_header(environ, "HTTP_AUTHORIZATION"),
            method=method,
        )
        if early is not None:
            return early
        body = b"" if method == "GET" else read_bounded(read, handler.max_body_bytes)
        if body is None:
            return handler.too_large()
        scheme, host, path = location()
        query = environ.get("QUERY_STRING") or ""
        url = handler.url_for(scheme, host, request_path(environ, path), str(query))
        settings = _header(environ, "HTTP_X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS")
        kept = {
            name: value
            for name in KEPT_HEADERS
            if (value := _header(environ, _wsgi_name(name))) is not None
        }
        token = environ.get("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN")
        token = token if isinstance(token, str) else None
        here = _RequestThread()

        async def serve(runner: _Runner) -> Answer:
            callback_executor.set(here)
            task = asyncio.current_task()
            assert task is not None
            runner.requests.add(task)
            try:
                return await handler.handle(
                    url,
                    signature,
                    body,
                    token,
                    content_type=content_type,
                    settings=settings,
                    headers=kept,
                    path=path,
                    query=str(query),
                    method=method,
                )
            finally:
                runner.requests.discard(task)

        with self._lock:
            runner = self._runner
            if runner is None or runner.stopped:  # never started, or its loop died
                runner = self._start()
            if threading.current_thread() is runner.thread:
                raise RuntimeError("a webhook request cannot be made from the bridge's event loop")
            future = runner.submit(serve(runner))
        if future is None:
            return STOPPED
        try:
            here.run_until_future(future)
        except BaseException:
            # The thread left before the answer (a KeyboardInterrupt as it
            # waited): nothing would run the callbacks the request submits now,
            # so stop the request rather than leave it waiting for them.
            future.cancel()
            raise
        here.raise_escaped()
        try:
            return future.result()
        except CancelledError:  # cut short by close()
            return STOPPED

    def close(self) -> None:
        """Let running requests finish, stop the inbox's workers and the event loop.

        Requests and callbacks get the listener's ``shutdown_timeout`` each
        before they are cancelled.  Closing a closed bridge does nothing.
        """
        with self._lock:
            runner = self._runner
            if runner is None:
                return
            if threading.current_thread() is runner.thread:
                raise RuntimeError("close() cannot be called from the bridge's event loop")
            self._runner = None
            with _bridges_lock:
                _open.discard(self)
            try:
                finishing = runner.submit(self._finish(runner), clean=True)
                if finishing is not None:
                    finishing.result()
            finally:
                runner.stop()

    async def _finish(self, runner: _Runner) -> None:
        timeout = self._shutdown_timeout
        if runner.requests:
            _, late = await asyncio.wait(set(runner.requests), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        await self._handler.delivery.shutdown(timeout)


_bridges: weakref.WeakKeyDictionary[Listener, SyncBridge] = weakref.WeakKeyDictionary()
_bridges_lock = threading.Lock()


def bridge_for(listener: Listener) -> SyncBridge:
    """The listener's bridge, made on first use: one per listener, whatever the views."""
    with _bridges_lock:
        bridge = _bridges.get(listener)
        if bridge is None:
            bridge = _bridges[listener] = SyncBridge(listener)
        return bridge


#: The bridges started and not closed, which the interpreter's exit closes.
_open: set[SyncBridge] = set()
_exit_hooked = False


def _close_at_exit(bridge: SyncBridge) -> None:
    global _exit_hooked
    with _bridges_lock:
        _open.add(bridge)
        if _exit_hooked:
            return
        _exit_hooked = True
    # atexit handlers run after the interpreter has stopped every thread pool,
    # the event loop's default executor included, which closing the inbox and
    # the workers' sync callbacks need: close before that, the way
    # concurrent.futures stops its own pools.
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - CPython has it since 3.9
        atexit.register(_close_open_bridges)
        return
    with contextlib.suppress(RuntimeError):  # the interpreter is exiting already
        register(_close_open_bridges)


def _close_open_bridges() -> None:
    with _bridges_lock:
        bridges = list(_open)
    for bridge in bridges:
        try:
            bridge.close()
        except Exception:
            # An exception here would keep the interpreter from stopping its threads.
            logger.exception("could not close the listener's bridge at exit")
