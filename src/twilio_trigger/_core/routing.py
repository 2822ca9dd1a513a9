"""Which kind of event a set of parameters is, and which callback it calls."""

from __future__ import annotations

from collections.abc import Sequence

from .events import TwilioEvent
from .kinds import Kind, by_parameters, kind_named, kind_of_event, recognise

__all__ = ["callback_for", "event_of_kind", "of_kind", "to_event", "unrecognised_event"]


def _first_values(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    first: dict[str, str] = {}
    for name, value in params:
        first.setdefault(name, value)
    return first


def to_event(
    params: Sequence[tuple[str, str]],
    first: dict[str, str] | None = None,
    prefer: Sequence[Kind] = (),
    where: tuple[str, str] | None = None,
) -> TwilioEvent | None:
    """The event the parameters describe, or ``None`` when no kind recognises them
    (:func:`unrecognised_event` makes one for a fallback service).

    The kinds are tried in the registry's order (``RecordingStatus`` makes a
    recording event, though it carries the call's ``CallSid``; otherwise
    ``CallStatus`` a call event; otherwise ``MessageStatus`` or ``SmsStatus`` a
    message event), the kinds of *prefer* (those attached at the request's
    path) before the others.  Empty values count as absent.  *first* may pass
    each name's first value when the caller has them already.
    """
    if first is None:
        first = _first_values(params)
    kind = recognise(first, prefer) if prefer else by_parameters(first)
    if kind is None:
        return None
    return kind.event_class._from_parsed(params, first, where)


def unrecognised_event(
    params: Sequence[tuple[str, str]],
    first: dict[str, str] | None = None,
    where: tuple[str, str] | None = None,
) -> TwilioEvent:
    """A plain :class:`TwilioEvent` (kind ``other``) over parameters no kind recognises."""
    if first is None:
        first = _first_values(params)
    return TwilioEvent._from_parsed(params, first, where)


def of_kind(
    kind: Kind, params: Sequence[tuple[str, str]], where: tuple[str, str] | None = None
) -> TwilioEvent:
    """The event of *kind* over *params*, whatever they would be recognised as."""
    return kind.event_class._from_parsed(params, _first_values(params), where)


def event_of_kind(kind: str, params: Sequence[tuple[str, str]]) -> TwilioEvent | None:
    """The event of the kind named *kind* (as an inbox entry keeps it) over *params*.

    ``None`` when no kind of that name is registered any more: an entry stored
    by another version.
    """
    try:
        row = kind_named(kind)
    except KeyError:
        return None
    return of_kind(row, params)


def callback_for(event: TwilioEvent) -> str | None:
    """The callback name for the event's status, or ``None`` for a status unknown to us."""
    return kind_of_event(event).callback_for(event.status)
