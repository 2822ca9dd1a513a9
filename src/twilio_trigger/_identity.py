"""What identifies one delivery (its key), and what is kept beside it (bounded headers).

Pure functions of a verified event and its request, free of any store: the
webhook handler bounds the headers it passes on, the duplicate-detection
protocol (:mod:`._dedup`) and the inbox key events by :func:`delivery_key`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from ._core.events import TwilioEvent
from ._core.kinds import kind_of_event
from ._core.signature import signed_payload
from ._logging import printable

__all__ = ["MAX_KEPT_HEADER", "PATH_HEADER", "delivery_key", "kept_header", "place"]

#: A key made of fields that each match this is kept readable (it shows in the
#: inspector and ``inbox show``); anything else is hashed, so that a key is always
#: bounded and a field holding the separator cannot pass for two fields.
_MAX_PLAIN_IDENTITY = 256
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _digest(text: str) -> str:
    # surrogatepass: a form value may decode to a lone surrogate; it must hash, not raise.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def delivery_key(event: TwilioEvent, event_id: str | None = None) -> str:
    """What identifies one delivery, made only of what its signature covers.

    *event_id* is a CloudEvent's ``id`` (signed through the body's SHA-256): an
    Event Streams delivery is that.  A webhook is its kind, SID, status and
    its kind's key parameters (``ErrorCode``, ``SequenceNumber``: see the
    registry of kinds), which Twilio's retries repeat, wherever they are sent; one
    without a SID is the whole of what its signature covers, parameters and the
    path and query it came to, so that two distinct events never share a key.
    (A request that says what a live call does next has no key: it is never
    taken for a copy, see ``Kind.deduplicates``.)  Never the
    ``I-Twilio-Idempotency-Token`` header: no signature covers it, and a made-up
    one would run a signed request again.  Every key is bounded (at most ~330
    characters): a longer identity is hashed.
    """
    if event_id is not None:
        if _PLAIN_ID.fullmatch(event_id):
            return "ce:" + event_id
        return "ce:#" + _digest(event_id)
    sid = event.sid
    if not sid:
        # In Twilio's signed order (names sorted, repeated values deduplicated):
        # reordering or repeating a parameter keeps the signature, and the key.
        # The same parameters sent to another URL (signed too) are another event.
        signed = signed_payload(event.params)
        where = event._where
        if where is not None:
            signed = json.dumps([where[0], where[1], signed])
        return f"p:{event.kind}:#{_digest(signed)}"
    kind = kind_of_event(event)
    key_params = kind.key_params
    fields = [event.kind, sid, event.status or ""]
    ignored = kind.key_ignores
    if ignored is not None:
        # Every signed parameter but those (in Twilio's signed order): its digest.
        signed = signed_payload([pair for pair in event.params if pair[0] not in ignored])
        fields.append("#" + _digest(signed))
        key_params = ()
    get = event.get
    for name in key_params:
        fields.append(get(name) or "")
    identity = ":".join(fields)
    # Twilio's are short, printable, and without the separator (checked in C: this
    # runs for every event): anything else is hashed, so no field can pass for two.
    if (
        len(identity) <= _MAX_PLAIN_IDENTITY
        and identity.count(":") == len(fields) - 1
        and identity.isprintable()
    ):
        return "e:" + identity
    hashed = [event.kind, sid, event.status, *(event.get(n) for n in key_params)]
    if ignored is not None:
        hashed.append(fields[3])  # the digest of the parameters
    return f"e:{event.kind}:#{_digest(json.dumps(hashed))}"


#: Kept beside a stored event: the path (and query) its request came to, for the
#: workers to hand it to that path's service.  Not a header any request can set:
#: the headers kept are a fixed list (``_webhook.KEPT_HEADERS``).
PATH_HEADER = "twilio-trigger-path"


def place(event: TwilioEvent, headers: Sequence[tuple[str, str]]) -> None:
    """Put back where a stored event's request came, from the headers kept beside it."""
    for name, value in headers:
        if name == PATH_HEADER:
            path, _, query = value.partition("?")
            event._at(path, query)
            return


#: Characters of a request header kept beside an event (Twilio's are far shorter).
MAX_KEPT_HEADER = 256
_KEPT_HEAD = 64  # of a longer value, the characters kept before its digest


def kept_header(value: str) -> str:
    """*value* as the inbox keeps it: bounded, and safe to print.

    A value that is too long, or shows too long once its control characters are
    escaped, keeps its start, its length and a digest, so that two long values
    (two made-up idempotency tokens) can still be told apart.
    """
    if len(value) <= MAX_KEPT_HEADER and value.isprintable():
        return value  # Twilio's: short and plain, decided in C (once per kept header)
    shown = printable(value[: MAX_KEPT_HEADER + 1])
    if len(value) <= MAX_KEPT_HEADER and len(shown) <= MAX_KEPT_HEADER:
        return shown
    head = printable(value[:_KEPT_HEAD])
    return f"{head}... ({len(value)} characters, sha256 {_digest(value)[:16]})"
