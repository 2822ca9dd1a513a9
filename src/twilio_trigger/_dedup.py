"""Each delivery runs once: the duplicate-detection protocol with a :class:`DeliveryStore`.

A delivery is claimed by its key (:func:`~._identity.delivery_key`) before it
runs.  A copy that comes while it runs waits for its outcome; one that comes
after it succeeded is a duplicate, answered with the reply the first copy got;
one that failed is forgotten, so that Twilio's retry runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from ._core import answers
from ._core.answers import Answer
from ._core.events import TwilioEvent
from ._core.replies import expects_reply, silent_answer
from ._invoke import Outcome, Result
from ._observe import Observer
from .stores import Claim, DeliveryStore

__all__ = ["DUPLICATE", "TWILIO_WAITS", "Once"]

#: The result of a delivery already handled (or stored) before.
DUPLICATE = Result(Outcome.DUPLICATE)
#: Seconds Twilio waits for an answer; a little less, for the network.
TWILIO_WAITS = 14.5


class Runner(Protocol):
    """Runs one event (:meth:`._pipeline.Pipeline.run`)."""

    def __call__(self, event: TwilioEvent, *, replying: bool = ...) -> Awaitable[Result]: ...


class Once:
    """Claims, runs and settles each delivery, so that its copies do not run again.

    *run* dispatches an event, *finish* tells its result and makes it the
    answer; a copy of a delivery being handled waits at most *wait* seconds
    (as long as a callback may take) for its outcome.
    """

    __slots__ = ("_endings", "_finish", "_late", "_observer", "_run", "_wait")

    def __init__(
        self,
        run: Runner,
        finish: Callable[[TwilioEvent, Result], Answer],
        observer: Observer,
        wait: float,
    ) -> None:
        self._run = run
        self._finish = finish
        self._observer = observer
        self._wait = wait
        self._late: set[asyncio.Future[BaseException | None]] = set()
        self._endings: set[asyncio.Future[None]] = set()

    async def accept(
        self, store: DeliveryStore, key: str, event: TwilioEvent, replies: bool
    ) -> Answer:
        """The answer to the delivery *key* of *event*, run unless a copy ran or runs."""
        claim = await store.claim(key)
        if claim is not Claim.ACQUIRED:
            started = asyncio.get_running_loop().time()
            claim = await self._wait_for_copy(store, key, claim)
            if claim is Claim.DONE:
                self._observer.finished(event, DUPLICATE)
                # A copy of a request answered with a reply (Twilio retrying an
                # incoming call after a timeout) gets the same reply again.
                reply = await store.reply_of(key) if replies and expects_reply(event) else None
                return answers.twiml(reply) if reply else silent_answer(event)
            if claim is Claim.BUSY:
                return answers.COPY_IN_PROGRESS
            waited = asyncio.get_running_loop().time() - started
            if waited + self._wait > TWILIO_WAITS:
                # The copy it waited for failed, late: running it now could take
                # its whole time limit more, and Twilio would have stopped
                # waiting.  Its next retry runs at once.
                await store.release(key)
                return answers.COPY_WAITED
        try:
            result = await self._run(event, replying=replies)
        except BaseException:
            await store.release(key)
            raise
        if result.still_running is not None:
            self._settle_late(store, key, result.still_running)
        elif result.outcome.ok:
            reply = result.value.body if isinstance(result.value, Answer) else None
            await store.complete(key, reply)
        else:
            await store.release(key)
        return self._finish(event, result)

    async def _wait_for_copy(self, store: DeliveryStore, key: str, claim: Claim) -> Claim:
        # Another copy of this delivery is being handled: wait for its outcome
        # (at most as long as a callback may take), then claim again.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while claim is Claim.BUSY:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return Claim.BUSY
            await store.wait(key, remaining)
            claim = await store.claim(key)
        return claim

    def _settle_late(
        self, store: DeliveryStore, key: str, finished: asyncio.Future[BaseException | None]
    ) -> None:
        # The sync callback runs on in its thread: the delivery stays claimed
        # until it ends, so that Twilio's retry cannot run beside it.
        self._late.add(finished)
        store.hold(key, finished)

        def settle(done: asyncio.Future[BaseException | None]) -> None:
            self._late.discard(done)
            ending = store.release(key) if done.result() else store.complete(key)
            task = asyncio.ensure_future(ending)
            self._endings.add(task)
            task.add_done_callback(self._endings.discard)

        finished.add_done_callback(settle)
