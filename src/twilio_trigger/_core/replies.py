"""What a callback's return value becomes: the answer Twilio waits for.

A request that waits for an answer (an inbound call, a ``<Gather>`` result, a
Conversations pre-event, a TaskRouter assignment) gets the one its callback
returns; every other request gets its kind's receipt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from . import answers
from .answers import Answer
from .events import TwilioEvent
from .kinds import KINDS, Kind, kind_of_event
from .twiml import ReplyError, reply_body
from .wording import a_or_an

__all__ = [
    "FIXED_ANSWERS",
    "Reject",
    "expects_reply",
    "receipt_for",
    "reply_answer",
    "silent_answer",
]

#: The longest reason a rejection sends back (Twilio shows it to the SDK's caller).
_MAX_REASON = 500


class Reject(Exception):  # noqa: N818 - a decision, not an error
    """Blocks the action of a Conversations pre-event, raised or returned by its callback.

    The request is answered *status* (a 4xx, 403 unless told) with *reason* as
    its text; Twilio then does not add, update or remove what the event was about.
    """

    def __init__(self, reason: str = "rejected", *, status: int = 403) -> None:
        if not 400 <= status <= 499:
            raise ValueError(f"a rejection is answered with a 4xx status, not {status}")
        super().__init__(reason)
        self.reason = reason
        self.status = status


def expects_reply(event: TwilioEvent) -> bool:
    """True when Twilio waits for an answer it acts on (TwiML it runs, JSON it reads)."""
    kind = kind_of_event(event)
    return kind.answer != "receipt" and kind.waits_for_reply(event)


# A 204 has no body, so no Content-Length either (RFC 9110, 8.6); the content type
# is what TaskRouter asks for.
_NO_CONTENT = Answer(204, b"", ((b"content-type", b"application/json"),))


def receipt_for(kind: Kind) -> Answer:
    """How an event of *kind* that waits for nothing is acknowledged."""
    return _NO_CONTENT if kind.receipt == "no-content" else answers.acknowledged


def silent_answer(event: TwilioEvent) -> Answer:
    """The answer when the callback returned ``None`` (or nothing ran)."""
    kind = kind_of_event(event)
    fixed = FIXED_ANSWERS.get(kind)  # the usual case, for every request: one look-up
    if fixed is not None:
        return fixed
    if kind.waits_for_reply(event):
        return answers.json_answer(kind.empty_reply)
    return receipt_for(kind)


#: The answer to an event whose callback returned nothing, for the kinds where it
#: does not depend on the event (all but those answered with JSON).
FIXED_ANSWERS = {kind: receipt_for(kind) for kind in KINDS if kind.answer != "json"}


def reply_answer(event: TwilioEvent, value: object) -> Answer:
    """The answer to *event*, which waits for one, from what its callback returned.

    :class:`ReplyError` says why *value* cannot be the answer.
    """
    kind = kind_of_event(event)
    if isinstance(value, Reject):
        if not kind.rejects:
            raise ReplyError(
                f"Reject blocks a Conversations pre-event; events of the kind {kind.name} "
                f"cannot be rejected"
            )
        # The reason often quotes the message: only printable text goes back, no
        # control or bidirectional characters, no lone surrogates.
        printable = "".join(c if c.isprintable() else " " for c in value.reason[: _MAX_REASON * 2])
        reason = " ".join(printable.split())[:_MAX_REASON] or "rejected"
        return answers.reject(value.status, reason)
    if kind.answer == "json":
        return answers.json_answer(_json_body(kind, event, value))
    return answers.twiml(reply_body(event, value))


def _json_body(kind: Kind, event: TwilioEvent, value: object) -> bytes:
    if not isinstance(value, Mapping):
        raise ReplyError(
            f"{a_or_an(kind.name)} callback returns None, a mapping sent as JSON, or Reject; "
            f"got {a_or_an(type(value).__name__)}"
        )
    allowed = kind.reply_keys(event)
    if allowed is not None:
        extra = sorted(str(key) for key in value if key not in allowed)
        if extra:
            can = ", ".join(sorted(allowed)) if allowed else "nothing"
            raise ReplyError(
                f"{event.status} cannot change {', '.join(extra)}: Twilio lets its answer "
                f"change {can}"
            )
    fields = dict(value)
    try:
        # Twilio keeps attributes as JSON text: a mapping is written as such.
        if isinstance(fields.get("attributes"), Mapping | list):
            attributes = fields["attributes"]
            fields["attributes"] = _json(
                dict(attributes) if isinstance(attributes, Mapping) else attributes
            )
        return _json(fields).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        raise ReplyError(f"the mapping returned is not JSON: {error}") from None


def _json(value: object) -> str:
    # Strict JSON: NaN and infinities are not JSON, whatever Python's json allows.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
