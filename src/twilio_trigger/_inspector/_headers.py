"""The headers every answer of the inspector carries, and the answers it gives.

Every answer, refusals included, carries the same security headers: a strict
Content-Security-Policy (no inline script or style, nothing from elsewhere, no
framing), ``nosniff``, no referrer.  Pages and API answers are never stored; the
static files are cached for good, their paths changing with their content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._asgi import send_answer
from .._core.answers import answer

__all__ = [
    "ALLOW",
    "CLOSE",
    "HTML",
    "IMMUTABLE",
    "JSON",
    "NO_STORE",
    "SECURITY",
    "TEXT",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "reply",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"
ALLOW = b"GET, HEAD, POST"
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "
    b"require-trusted-types-for 'script'; trusted-types 'none'"
)
SECURITY = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", _CSP),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
NO_STORE = (b"cache-control", b"no-store")
#: The assets' paths carry a digest of their content: a new version is a new path.
IMMUTABLE = (b"cache-control", b"private, max-age=31536000, immutable")
CLOSE = (b"connection", b"close")


async def reply(
    send: Send, status: int, body: bytes, content_type: str, *extra: tuple[bytes, bytes]
) -> None:
    """Answer with *body*, the security headers, ``no-store`` and the *extra* headers."""
    await send_answer(
        send, answer(status, body, content_type.encode("latin-1"), *SECURITY, NO_STORE, *extra)
    )
