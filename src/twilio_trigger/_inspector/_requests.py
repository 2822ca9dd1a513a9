"""What a request to the inspector holds, read as hostile: its host, path, body and ids.

Nothing here trusts its input: the body is bounded in size and in time, the
replay request is parsed so that no JSON can cost more than its size, and
numbers are never converted from thousands of digits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .._asgi import send_answer
from .._core.answers import Answer, answer
from .._core.signature import host_without_port
from .._webhook import declared_length
from ._headers import NO_STORE, SECURITY, TEXT, Receive, Send, reply
from ._rows import MAX_ROWS
from ._search import FIELDS
from ._search import is_sid as _is_sid

__all__ = [
    "BODY_SECONDS",
    "LOOPBACK",
    "MAX_QUERY",
    "ReplayRequest",
    "UnusableError",
    "dispatch_request",
    "has_body",
    "host_name",
    "is_id",
    "landing",
    "read_body",
    "replay_ids",
    "replay_request",
]

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: What a replay request may hold: as many ids as the page can list.
_MAX_IDS = MAX_ROWS
#: The largest id both inboxes can hold (SQLite's INTEGER is 64-bit, signed).
_MAX_ID = 2**63 - 1
_ID_RANGE = f"ids are whole numbers from 1 to {_MAX_ID}"
_MAX_BODY = 64 * 1024
#: Time allowed for a replay request's body, from the end of its head.
BODY_SECONDS = 10.0
#: The deepest a replay request nests: an object holding a list or an object.
_MAX_DEPTH = 2
#: The fields of a replay request.
_FIELDS = frozenset({"ids", "search", "dry_run"})
#: The filters and the token fit in far less; beyond this the query is not parsed.
MAX_QUERY = 8 * 1024

_TOO_LARGE = answer(
    413, b"request body too large: at most 64 KiB\n", TEXT.encode(), *SECURITY, NO_STORE
)
_TOO_SLOW = answer(408, b"request body not received in time\n", TEXT.encode(), *SECURITY, NO_STORE)


def is_id(text: str) -> bool:
    """Whether *text* is an entry's id as a path holds it."""
    # ASCII digits only ("²" is a digit to str.isdigit), and no more than fit in 63 bits.
    return text.isascii() and text.isdigit() and len(text) <= 18


def landing(path: str) -> str:
    """Where ``?token=`` sends the browser on: a page of the inspector's, else ``/``.

    The path arrives percent-decoded: ``/%5Cevil.example`` is ``/\\evil.example``,
    which a browser reads as ``//evil.example``, another site.  Rather than
    guess what each browser makes of slashes, backslashes, tabs and schemes, only
    the pages this server serves are kept, and their paths are plain ASCII.
    """
    if path in ("/", "/api/events") or (path.startswith("/events/") and is_id(path[8:])):
        return path
    if path.startswith("/sids/") and _is_sid(path[6:]):
        return path
    return "/"


def host_name(header: bytes) -> str:
    """The host of a ``Host`` header, without its port: ``[::1]:8091`` → ``[::1]``;
    ``""`` for a header that is not ``host[:port]`` (``127.0.0.1:80@evil.example``)."""
    text = header.decode("latin-1").strip().lower()
    host = host_without_port(text)
    port = text[len(host) :]
    if port and not (port[0] == ":" and port[1:].isascii() and port[1:].isdigit()):
        return ""
    return host


def has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request with these headers comes with a body."""
    for name, value in headers:
        if name.lower() == b"transfer-encoding":
            return True
        if name.lower() == b"content-length" and value.strip().lstrip(b"0"):
            return True
    return False


async def read_body(headers: Mapping[bytes, bytes], receive: Receive) -> bytes | Answer | None:
    """The body, or the answer that refuses it; ``None`` when the client left."""
    # Refused before a byte of it is read.
    if declared_length(headers.get(b"content-length")) > _MAX_BODY:
        return _TOO_LARGE
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                body += message.get("body", b"")
                if len(body) > _MAX_BODY:
                    return _TOO_LARGE
                if not message.get("more_body"):
                    return bytes(body)
    except TimeoutError:
        return _TOO_SLOW


class UnusableError(ValueError):
    """A replay request that cannot be used; its message says why, without quoting it."""


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """What a replay request asks for: the entries *ids* name, those the filters of
    *search* find (as a query names them), or every dead letter (neither given);
    with *dry_run*, only how many a search would replay."""

    ids: list[int] | None = None
    search: dict[str, list[str]] | None = None
    dry_run: bool = False


def _depth(body: bytes) -> int:
    """How deep the objects and lists of *body* nest, brackets within strings aside."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x7D, 0x5D):  # } ]
            depth -= 1
    return deepest


def replay_request(body: bytes) -> ReplayRequest:
    """What a replay request asks for: ``{"ids": [...]}``, ``{"search": {...}}``
    (with ``"dry_run": true`` for the count alone) or ``{}``."""
    if not body.strip():
        return ReplayRequest()  # as {}: what `curl -X POST` sends
    # A usable request is an object holding a list or an object: deeper can only
    # be nesting, which json would follow down to a RecursionError.
    if _depth(body) > _MAX_DEPTH:
        raise UnusableError("at most one object and one list")
    request = _json_object(body, _whole_number, _no_fraction)
    if set(request) - _FIELDS:
        raise UnusableError('no field but "ids", or "search" and "dry_run"')
    if "ids" in request and set(request) != {"ids"}:
        raise UnusableError('"ids" or "search", not both')
    if "search" not in request:
        if "dry_run" in request:
            raise UnusableError('"dry_run" goes with a "search"')
        return ReplayRequest(ids=None if "ids" not in request else _ids(request["ids"]))
    dry_run = request.get("dry_run", False)
    if type(dry_run) is not bool:
        raise UnusableError('"dry_run" must be true or false')
    return ReplayRequest(search=_filters(request["search"]), dry_run=dry_run)


def flat_object(body: bytes, shape: str, number: str) -> dict[str, object]:
    """*body* as one JSON object holding neither objects nor lists nor numbers
    (:class:`UnusableError` else, saying *shape* or *number*): what the
    inspector's changes send."""
    if _depth(body) > 1:  # an object holding an object or a list is not one
        raise UnusableError(shape)

    def no_number(text: str) -> object:  # never int() of thousands of digits
        raise UnusableError(number)

    return _json_object(body, no_number, no_number)


def _json_object(
    body: bytes, whole: Callable[[str], object], fraction: Callable[[str], object]
) -> dict[str, object]:
    """*body* as a JSON object, its numbers read by *whole* and *fraction*, no
    field twice, no NaN; :class:`UnusableError` else."""
    try:
        request = json.loads(
            body,
            parse_int=whole,
            parse_float=fraction,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except UnusableError:
        raise
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise UnusableError("not JSON") from None
    if not isinstance(request, dict):
        raise UnusableError("not a JSON object")
    return request


async def guarded_body(
    headers: Mapping[bytes, bytes], receive: Receive, send: Send, header: bytes, what: str
) -> bytes | None:
    """The body of a change the page asks for (with ``X-Inspector: <header>``),
    or ``None`` once it is refused (*what*: "replays come") or the client left."""
    # A header a cross-site form cannot send (a script would need CORS, which
    # this server never grants): changes come from the inspector's page only.
    if headers.get(b"x-inspector") != header:
        await reply(send, 403, f"{what} from the inspector's page\n".encode(), TEXT)
        return None
    body = await read_body(headers, receive)
    if isinstance(body, Answer):
        await send_answer(send, body)
        return None
    return body


def dispatch_request(body: bytes) -> bool:
    """Whether a dispatch request pauses (``{"paused": true}``) or resumes
    (``{"paused": false}``) dispatch; nothing else is one."""
    request = flat_object(body, "one object with one field", '"paused" must be true or false')
    if set(request) != {"paused"}:
        raise UnusableError('one field, "paused"')
    paused = request["paused"]
    if type(paused) is not bool:
        raise UnusableError('"paused" must be true or false')
    return paused


def replay_ids(body: bytes) -> list[int] | None:
    """The ids a replay request names, or ``None`` for every dead letter (``{}``)."""
    request = replay_request(body)
    if request.search is not None:
        raise UnusableError('no field but "ids"')
    return request.ids


def _ids(ids: object) -> list[int]:
    if not isinstance(ids, list):
        raise UnusableError('"ids" must be a list')
    if len(ids) > _MAX_IDS:
        raise UnusableError(f"at most {_MAX_IDS} ids")
    # type() rather than isinstance(): True is an int to Python, not an id.
    if not all(type(i) is int and 1 <= i <= _MAX_ID for i in ids):
        raise UnusableError(_ID_RANGE)
    return list(dict.fromkeys(ids))


def _filters(search: object) -> dict[str, list[str]]:
    """The filters of a replay's ``"search"``, as a query holds them; what each
    one may be is the search's to check (:func:`._search.search_of`)."""
    if not isinstance(search, dict):
        raise UnusableError('"search" must be an object of filters')
    if set(search) - set(FIELDS):
        raise UnusableError(f'the filters of "search" are {", ".join(FIELDS)}')
    if not all(isinstance(value, str) for value in search.values()):
        raise UnusableError('each filter of "search" is text, such as "30003"')
    return {name: [value] for name, value in search.items()}


def _whole_number(text: str) -> int:
    if len(text) > len(str(_MAX_ID)):  # never int() of thousands of digits
        raise UnusableError(_ID_RANGE)
    return int(text)


def _no_fraction(text: str) -> float:
    raise UnusableError(_ID_RANGE)


def _no_constant(text: str) -> object:
    raise UnusableError("not JSON (NaN and Infinity are not)")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise UnusableError("a field given twice")
    return found
