"""The threads plain ``def`` callbacks and alert hooks run in: they never hold the stop.

A sync callback cannot be cancelled: past its time limit its thread runs on.  In
the event loop's default thread pool such a thread, if it never returns, holds the
process for ever at its end (``asyncio.run`` waits for that pool's threads, and
Python for every pool's at exit): a graceful stop ends in an orchestrator's kill.
:class:`CallbackThreads` is a pool of daemon threads that nothing waits for: the
stop waits for callbacks within its own limits (``shutdown_timeout``), then the
process ends, leaving such a thread behind.  What it was dispatching from an inbox
is still there at the next start (its lease or its ``running`` state), as after a
crash.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["CallbackThreads", "callback_threads"]

_T = TypeVar("_T")

#: The thread pool's usual size, as the standard library's default executor's.
_MOST = min(32, (os.cpu_count() or 1) + 4)

_Work = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class CallbackThreads(Executor):
    """Up to *most* daemon threads, started as work comes and none is idle."""

    def __init__(self, most: int = _MOST, name: str = "twilio-trigger-callback") -> None:
        self._most = most
        self._name = name
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._idle = 0  # threads waiting for work, not yet promised any
        self._closed = False

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        future: Future[_T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot run a callback after the threads were shut down")
            self._queue.put((future, fn, args, kwargs))
            if self._idle > 0:
                self._idle -= 1  # that thread takes this work
            elif self._started < self._most:
                self._started += 1
                name = f"{self._name}-{self._started}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.put(None)  # the others stop too
                return
            future, fn, args, kwargs = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:  # the caller's to see, as a pool's
                    future.set_exception(error)
                else:
                    future.set_result(result)
            del future, fn, args, kwargs
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more work; the threads end once what was queued is done.  Never
        waits for them (*wait* is ignored): that is the point of these threads."""
        with self._lock:
            self._closed = True
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        self._queue.put(None)


_shared: CallbackThreads | None = None
_shared_lock = threading.Lock()


def callback_threads() -> CallbackThreads:
    """The process's threads for sync callbacks and alert hooks (made when first needed)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = CallbackThreads()
    return _shared
