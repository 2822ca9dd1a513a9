"""The webhooks of Twilio Conversations: ``ConversationsEvent``.

A conversation, message, participant or user was added, updated or removed (a
post-event), or is about to be (a pre-event, whose answer Twilio waits for).  Its
JSON parameters (``Attributes``, ``Media``) are parsed on access.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .base import TwilioEvent
from .params import _bool, _int, _iso_time, _mapping, _parse_json, _text

#: The pre-event hooks: Twilio waits for the answer before the action happens.
_PRE_EVENT_SUFFIXES = ("Add", "Update", "Remove")


class ConversationsEvent(TwilioEvent):
    """A Conversations webhook: a conversation, message, participant or user was
    added, updated or removed (post-event), or is about to be (pre-event).

    ``status`` is ``EventType`` (``onMessageAdded``, ``onMessageAdd``, ...).  A
    pre-event waits for its callback's answer: ``None`` lets the action happen,
    a mapping of the fields Twilio lets you change changes it, and raising or
    returning :class:`~twilio_trigger.Reject` blocks it.
    """

    __slots__ = ()

    event_type = _text("EventType")
    source = _text("Source")
    """``SDK`` or ``API``."""
    client_identity = _text("ClientIdentity")
    conversation_sid = _text("ConversationSid")
    chat_service_sid = _text("ChatServiceSid")
    messaging_service_sid = _text("MessagingServiceSid")
    message_sid = _text("MessageSid")
    index = _int("Index")
    """The message's place in its conversation."""
    body = _text("Body")
    author = _text("Author")
    participant_sid = _text("ParticipantSid")
    friendly_name = _text("FriendlyName")
    unique_name = _text("UniqueName")
    state = _text("State")
    identity = _text("Identity")
    role_sid = _text("RoleSid")
    user_sid = _text("UserSid")
    date_created = _iso_time("DateCreated")
    date_updated = _iso_time("DateUpdated")
    date_removed = _iso_time("DateRemoved")
    last_read_message_index = _int("LastReadMessageIndex")
    state_from = _text("StateFrom")
    state_to = _text("StateTo")
    state_updated = _iso_time("StateUpdated")
    reason = _text("Reason")
    """Why the state changed: ``API``, ``TIMER`` or ``EVENT``."""
    delivery_receipt_sid = _text("DeliveryReceiptSid")
    channel_message_sid = _text("ChannelMessageSid")
    delivery_status = _text("Status")
    """``onDeliveryUpdated``: ``sent``, ``delivered``, ``read``, ``failed``, ``undelivered``."""
    message_body = _text("MessageBody")
    is_online = _bool("isOnline")
    is_notifiable = _bool("isNotifiable")

    @property
    def sid(self) -> str | None:
        """The SID of what the event is about: its message, participant, user or
        conversation; before it exists (``onMessageAdd``, ``onParticipantAdd``), the
        conversation's; for ``onConversationAdd``, the ``ChatServiceSid``."""
        if self._first.get("EventType") == "onMessageAdd":
            # No MessageSid yet, and its ParticipantSid is the author's.
            return self._first.get("ConversationSid") or None
        return self._sid

    @property
    def is_pre_event(self) -> bool:
        """True for a pre-event (``onMessageAdd``): Twilio waits to hear whether it may go on."""
        return (self.status or "").endswith(_PRE_EVENT_SUFFIXES)

    @property
    def attributes(self) -> Mapping[str, object] | None:
        """``Attributes`` parsed from JSON; ``None`` when absent or not a JSON object."""
        return _mapping(_parse_json(self._first.get("Attributes")))

    @property
    def media(self) -> tuple[Mapping[str, object], ...]:
        """``Media`` parsed from JSON: one mapping per item (``Sid``, ``ContentType``, ...)."""
        value = _parse_json(self._first.get("Media"))
        if not isinstance(value, list):
            return ()
        return tuple(MappingProxyType(item) for item in value if isinstance(item, dict))

    @property
    def messaging_binding(self) -> Mapping[str, str]:
        """The ``MessagingBinding.*`` parameters, by the name after the dot (``Address``)."""
        prefix = "MessagingBinding."
        return MappingProxyType(
            {
                name[len(prefix) :]: value
                for name, value in self._first.items()
                if name.startswith(prefix)
            }
        )
