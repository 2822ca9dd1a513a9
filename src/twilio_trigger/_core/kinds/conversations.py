"""The row of Conversations' webhooks: ``CONVERSATIONS``.

With what is particular to it: an ``EventType`` such as ``onMessageAdded`` (not
TaskRouter's ``task.created``), pre-events that wait for a JSON answer (and the keys
that answer may change) while post-events get a receipt and run once per delivery.
The event class is in ``events/conversations.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import payloads
from ..events import ConversationsEvent, TwilioEvent
from ..services import ConversationsService, camel_callback_name
from ..vocabulary import CONVERSATIONS_POST_EVENTS, CONVERSATIONS_PRE_EVENTS
from .kind import _JSON_TIME_LIMIT, Kind


def _conversations_event(first: Mapping[str, str]) -> bool:
    # onMessageAdded, onConversationStateUpdated, ...: not TaskRouter's
    # task.created, nor a message status callback's READ.
    value = first.get("EventType", "")
    return value[:2] == "on" and value[2:3].isupper()


def _pre_event(event: TwilioEvent) -> bool:
    return isinstance(event, ConversationsEvent) and event.is_pre_event


def _deduplicated(event: TwilioEvent) -> bool:
    # Post-events, but a user's update: a user who goes online again sends what
    # the first time sent (DateUpdated is the user's, not the reachability's), and
    # nothing in it tells that from a retry.  Run twice rather than never.
    return not _pre_event(event) and event.status != "onUserUpdated"


_MESSAGE_REPLY = frozenset({"body", "author", "attributes"})
_CONVERSATION_REPLY = frozenset({"friendly_name"})
_NOTHING = frozenset[str]()


def _conversations_reply_keys(event: TwilioEvent) -> frozenset[str] | None:
    # What Twilio lets a pre-event's answer change.
    status = event.status or ""
    if status in ("onMessageAdd", "onMessageUpdate"):
        return _MESSAGE_REPLY
    if status in ("onConversationAdd", "onConversationUpdate"):
        return _CONVERSATION_REPLY
    return _NOTHING


CONVERSATIONS = Kind(
    name="conversations",
    event_class=ConversationsEvent,
    service_class=ConversationsService,
    signals=(("EventType",),),
    test=_conversations_event,
    route_by=("EventType",),
    sid_params=("MessageSid", "ParticipantSid", "UserSid", "ConversationSid", "ChatServiceSid"),
    events=CONVERSATIONS_PRE_EVENTS + CONVERSATIONS_POST_EVENTS,
    name_callback=camel_callback_name,
    sid_prefixes=("CH", "IM", "MB", "US", "IS"),
    payload=payloads.conversations_params,
    answer="json",
    waits_for_reply=_pre_event,
    reply_inline=True,
    empty_reply=b"{}",
    rejects=True,
    reply_keys=_conversations_reply_keys,
    time_limit=_JSON_TIME_LIMIT,
    deduplicates=_deduplicated,
    # Post-events only: Event Streams never asks before an action.
    cloudevent_types=("com.twilio.conversations.",),
    # Any field may be all that tells two updates apart (a conversation renamed
    # then closed within DateUpdated's second, a participant's role changed
    # twice): every signed parameter is the key, but the count of the retry.
    key_ignores=frozenset({"RetryCount"}),
)
