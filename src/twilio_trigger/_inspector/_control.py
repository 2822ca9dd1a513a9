"""The inspector's dispatch control: each callback's limits and breaker, shown and changed.

``GET /api/limits`` answers whether dispatch is paused and a row per callback
held back (:func:`~twilio_trigger._control.dispatch_view`: the ``limits``
option's, the inbox's, what is in force, the breaker).  ``POST /api/limits``
(header ``X-Inspector: limits``) keeps a limit in the inbox, merged over the one
kept before as ``twilio-trigger inbox limit`` does (``{"callback":
"on_delivered", "limit": "rate=5, burst=10"}``), or forgets it (``{"callback":
"on_delivered", "clear": true}``); ``POST /api/breakers`` (header ``X-Inspector:
breaker``) closes an open breaker (``{"close": "on_delivered"}``) and makes the
events it held due now.  Both answer the view after the change, tell this
process's workers to read it at once, and log one INFO line.

The bodies are parsed as strictly as the replay's: one flat object, no field
twice, no numbers, text bounded; anything else is a 400 that says why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import NamedTuple

from .._control import LIMIT, close_breaker, dispatch_view
from .._delivery import Delivery
from .._limits import Limit
from .._logging import printable
from ..inbox import PAUSED, Inbox
from ..inbox._search import callback_names
from ._headers import JSON, TEXT, Receive, Send, reply
from ._requests import UnusableError, flat_object, guarded_body

__all__ = [
    "LimitRequest",
    "breaker_request",
    "limit_request",
    "post_breakers",
    "post_limits",
    "view",
]

logger = logging.getLogger("twilio_trigger")

#: The longest limit text taken: every field with a long value fits in far less.
MAX_LIMIT_TEXT = 200
#: The longest callback name looked up (the longest real one is far shorter).
_MAX_CALLBACK = 64
#: The longest reason a bad limit text is refused with (it may quote the text).
_MAX_REASON = 120
_NOT_A_CALLBACK = "is not a callback an event goes to (such as on_delivered, on_failed, on_event)"
_LIMIT_EXAMPLE = '{"callback": "on_delivered", "limit": "rate=5, burst=10"}'
_CLEAR_EXAMPLE = '{"callback": "on_delivered", "clear": true}'
_BREAKER_EXAMPLE = '{"close": "on_delivered"}'


class LimitRequest(NamedTuple):
    """What ``POST /api/limits`` asks: keep *limit* for *callback*, over the one
    kept before, or forget the kept one (*limit* ``None``)."""

    callback: str
    limit: Limit | None


def _object(body: bytes) -> dict[str, object]:
    """*body* as one flat JSON object of text and ``true``; :class:`UnusableError` else."""
    return flat_object(
        body,
        "one object whose values are text",
        'no numbers: the values are text, such as "rate=5"',
    )


def _callback(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise UnusableError(f'"{field}" must be a callback\'s name, such as "on_delivered"')
    if len(value) > _MAX_CALLBACK or value not in callback_names():
        raise UnusableError(f'"{field}" {_NOT_A_CALLBACK}')
    return value


def limit_request(body: bytes) -> LimitRequest:
    """What a limits request asks for: ``{"callback": ..., "limit": "rate=5"}`` or
    ``{"callback": ..., "clear": true}``."""
    request = _object(body)
    if set(request) - {"callback", "limit", "clear"}:
        raise UnusableError('no field but "callback", and "limit" or "clear"')
    if "callback" not in request:
        raise UnusableError('a "callback", such as "on_delivered"')
    if "limit" in request and "clear" in request:
        raise UnusableError('"limit" or "clear", not both')
    callback = _callback(request["callback"], "callback")
    if "clear" in request:
        if request["clear"] is not True:
            raise UnusableError('"clear" must be true')
        return LimitRequest(callback, None)
    if "limit" not in request:
        raise UnusableError('a "limit", such as "rate=5, burst=10", or "clear": true')
    text = request["limit"]
    if not isinstance(text, str):
        raise UnusableError('"limit" must be text, such as "rate=5, burst=10"')
    if len(text) > MAX_LIMIT_TEXT:
        raise UnusableError(f'"limit" is at most {MAX_LIMIT_TEXT} characters')
    try:
        return LimitRequest(callback, Limit.parse(text))
    except ValueError as error:  # says what is wrong, and quotes little of it
        reason = str(error)
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 3] + "..."
        raise UnusableError(reason) from None


def breaker_request(body: bytes) -> str:
    """The callback whose breaker a breakers request closes: ``{"close": ...}``."""
    request = _object(body)
    if set(request) != {"close"}:
        raise UnusableError('one field, "close"')
    return _callback(request["close"], "close")


async def view(delivery: Delivery) -> dict[str, object]:
    """What ``GET /api/limits`` answers: the pause, and a row per callback held back."""
    inbox = _inbox(delivery)
    settings = await inbox.settings()
    policy = delivery.control
    rows = dispatch_view(settings, policy.limits, breaker=policy.breaker, cooldown=policy.cooldown)
    return {"paused": settings.get(PAUSED) == "1", "callbacks": rows}


def _inbox(delivery: Delivery) -> Inbox:
    inbox = delivery.inbox
    if inbox is None:  # the inspector is never made without one
        raise RuntimeError("the inspector shows an inbox: the listener has none")
    return inbox


async def _refuse(send: Send, examples: str, error: UnusableError) -> None:
    await reply(send, 400, f"expected {examples}: {error}\n".encode(), TEXT)


async def post_limits(
    delivery: Delivery, headers: Mapping[bytes, bytes], receive: Receive, send: Send
) -> None:
    """``POST /api/limits``: keep or forget a callback's limit, as the command line does."""
    body = await guarded_body(headers, receive, send, b"limits", "limits are set")
    if body is None:
        return
    try:
        request = limit_request(body)
    except UnusableError as error:
        await _refuse(send, f"{_LIMIT_EXAMPLE} or {_CLEAR_EXAMPLE}", error)
        return
    inbox = _inbox(delivery)
    name = LIMIT + request.callback
    if request.limit is None:
        await inbox.set_setting(name, "")
        logger.info(
            "the inspector cleared the limits of %s kept in the inbox",
            printable(request.callback),
        )
    else:
        before = Limit()
        kept = await inbox.setting(name)
        if kept:
            try:
                before = Limit.from_json(kept)
            except ValueError:
                before = Limit()  # unreadable: replaced
        now = request.limit.over(before)
        await inbox.set_setting(name, now.json())
        logger.info(
            "the inspector set the limits of %s: %s", printable(request.callback), now.text()
        )
    delivery.recheck()
    await reply(send, 200, json.dumps(await view(delivery)).encode(), JSON)


async def post_breakers(
    delivery: Delivery, headers: Mapping[bytes, bytes], receive: Receive, send: Send
) -> None:
    """``POST /api/breakers``: close a callback's breaker; the events it held are due now."""
    body = await guarded_body(headers, receive, send, b"breaker", "breakers are closed")
    if body is None:
        return
    try:
        callback = breaker_request(body)
    except UnusableError as error:
        await _refuse(send, _BREAKER_EXAMPLE, error)
        return
    was_open = await close_breaker(_inbox(delivery), callback)
    logger.info(
        "the inspector closed the breaker of %s%s",
        printable(callback),
        "" if was_open else " (it was not open)",
    )
    delivery.recheck()
    document = {**(await view(delivery)), "was_open": was_open}
    await reply(send, 200, json.dumps(document).encode(), JSON)
