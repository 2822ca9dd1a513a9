"""Who may look: the inspector's token, and the session cookie that ``?token=`` leaves.

A token may come as ``?token=`` (once: the answer leaves a cookie and sends the
browser on without it), as ``Authorization: Bearer``, or as that cookie.  The
cookie holds an expiry and its HMAC under a key drawn per process: it holds no
trace of the token (it cannot be turned back into it) and dies with the process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator, Mapping

__all__ = ["COOKIE", "SESSION_SECONDS", "Sessions"]

COOKIE = "twilio_trigger_inspector"
#: How long the cookie that ``?token=`` leaves stays good: a working day, so that
#: a debugging session never asks for the token again, while a cookie copied off
#: a shared machine is useless by the next morning.  It never outlives the
#: process either: its key is drawn at start.
SESSION_SECONDS = 8 * 3600


class Sessions:
    """The token of an inspector, and the session cookies it issues and accepts."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8")
        # Drawn per process: a session cookie holds no trace of the token (it
        # cannot be turned back into it) and dies with the process.
        self._key = secrets.token_bytes(32)

    def authorized(self, headers: Mapping[bytes, bytes], query: Mapping[str, list[str]]) -> bool:
        """A token in the address must be right even with a good cookie: it becomes one."""
        given = query.get("token")
        if given is not None:
            return len(given) == 1 and hmac.compare_digest(given[0].encode("utf-8"), self._token)
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            return hmac.compare_digest(authorization[7:].strip(), self._token)
        return any(self._valid(value) for value in _cookies(headers))

    def set_cookie(self) -> bytes:
        """The ``Set-Cookie`` value of a new session."""
        return (
            f"{COOKIE}={self._session()}; Max-Age={SESSION_SECONDS}; HttpOnly; "
            f"SameSite=Strict; Path=/"
        ).encode("ascii")

    def _session(self) -> str:
        """A cookie value good until its expiry, which it carries signed."""
        expiry = int(time.time()) + SESSION_SECONDS
        return f"{expiry}.{self._signature(str(expiry).encode())}"

    def _signature(self, expiry: bytes) -> str:
        # The expiry as written in the cookie is what is signed: "0123" and "123"
        # are different cookies, so no spelling of a cookie but the one issued works.
        message = b"twilio-trigger inspector session until " + expiry
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _valid(self, value: bytes) -> bool:
        expiry, dot, signature = value.partition(b".")
        # bytes.isdigit() is ASCII digits only; twelve of them reach the year 33658.
        if not dot or not expiry.isdigit() or len(expiry) > 12 or len(signature) != 64:
            return False
        expected = self._signature(expiry).encode("ascii")
        return hmac.compare_digest(signature, expected) and time.time() < int(expiry)


def _cookies(headers: Mapping[bytes, bytes]) -> Iterator[bytes]:
    """The values of the inspector's cookie in a ``Cookie`` header (there may be several)."""
    for part in headers.get(b"cookie", b"").split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name == COOKIE.encode():
            yield value.strip()
