"""(a) The floor: a bare ASGI app that reads the whole body and answers 200.

Run by ``benchmarks/run.py`` as
``uvicorn floor:app --host 127.0.0.1 --port P --no-access-log --loop uvloop --http httptools``.
Everything any webhook receiver on uvicorn must do, and nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/xml"), (b"content-length", b"11")],
}
_BODY = {"type": "http.response.body", "body": b"<Response/>"}


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # the whole body, as a real receiver must
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send(_START)
    await send(_BODY)
