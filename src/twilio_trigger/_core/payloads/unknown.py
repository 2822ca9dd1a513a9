"""A webhook of a family twilio-trigger has no kind for, a Video room's status
callback, to show and to test what a ``FallbackService`` receives.  It belongs
to none of the other families, hence this small module.
"""

from __future__ import annotations

from ._common import ACCOUNT_SID, _apply, new_sid


def unknown_params(
    event: str = "room-created", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A webhook of a family twilio-trigger has no kind for: a Video room's status
    callback (*event* is its ``StatusCallbackEvent``), for a ``FallbackService``."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "RoomSid": sid or new_sid("RM"),
        "RoomName": "support-room-42",
        "RoomStatus": "completed" if event == "room-ended" else "in-progress",
        "RoomType": "group",
        "StatusCallbackEvent": event,
        "SequenceNumber": "0",
        "Timestamp": "2023-11-14T18:30:00.000Z",
    }
    return _apply(params, overrides)
