"""``/healthz`` and ``/readyz``: is the process alive, and can it take events now?

Both answer anyone, without a signature, and never dispatch anything.  The
readiness answer names the parts it checked and whether each is reachable;
why one is not goes to the log, not to whoever asks.  A paused inbox is still
ready (it stores and acknowledges events): the answer adds
``"dispatch": "paused"``.
"""

from __future__ import annotations

import asyncio
import json

from ._asgi import Endpoint
from ._core.answers import Answer, answer
from ._delivery import Delivery
from ._lifecycle import READY_TIMEOUT

__all__ = ["health_endpoints"]

_JSON = b"application/json"
_NO_STORE = (b"cache-control", b"no-store")


def _json(status: int, document: object) -> Answer:
    body = json.dumps(document, separators=(",", ":")).encode("utf-8") + b"\n"
    return answer(status, body, _JSON, _NO_STORE)


_ALIVE = _json(200, {"status": "alive"})


async def _paused(delivery: Delivery) -> bool:
    """Whether the inbox says dispatch is paused (not when it cannot say in time:
    its failure is the inbox check's to tell)."""
    inbox = delivery.inbox
    if inbox is None:
        return False
    try:
        return await asyncio.wait_for(inbox.paused(), READY_TIMEOUT)
    except Exception:
        return False


def health_endpoints(delivery: Delivery, healthz: str, readyz: str) -> dict[str, Endpoint]:
    """The GET endpoints at *healthz* (alive) and *readyz* (ready to take events)."""

    async def alive() -> Answer:
        return _ALIVE

    async def ready() -> Answer:
        checks = await delivery.readiness()
        ok = all(checks.values())
        document: dict[str, object] = {
            "status": "ready" if ok else "unavailable",
            "checks": {name: "ok" if good else "failing" for name, good in checks.items()},
        }
        if ok and await _paused(delivery):
            # Still ready: events are stored and acknowledged, only not dispatched.
            document["dispatch"] = "paused"
        return _json(200 if ok else 503, document)

    return {healthz: alive, readyz: ready}
