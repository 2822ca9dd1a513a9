"""Conversations: the webhooks of a Conversations service, each pre-action event
(``onMessageAdd``...) and post-action event (``onMessageAdded``...) with the
parameters that come with it.  A conversation, its messages, participants and
users each carry their own fields, built by the helpers here; the family is
large enough to have its module.
"""

from __future__ import annotations

import json

from ..vocabulary import CONVERSATIONS_POST_EVENTS, CONVERSATIONS_PRE_EVENTS
from ._common import ACCOUNT_SID, CUSTOMER_NUMBER, TWILIO_NUMBER, _apply, _require, new_sid

_ISO_TIME = "2023-11-14T18:30:00Z"
_DATE_UPDATED = "2023-11-14T18:31:05Z"
_DATE_REMOVED = "2023-11-14T18:32:40Z"


def _conversation_media() -> str:
    media = [
        {
            "Sid": new_sid("ME"),
            "Filename": "damaged-parcel.jpg",
            "ContentType": "image/jpeg",
            "Size": 184320,
        }
    ]
    return json.dumps(media, separators=(",", ":"))


def _conversation_fields(event_type: str, sid: str) -> dict[str, str]:
    fields = {
        "FriendlyName": "Order A-1042 support",
        "UniqueName": "order-a-1042",
        "Attributes": '{"order":"A-1042"}',
        "ChatServiceSid": new_sid("IS"),
        "MessagingServiceSid": new_sid("MG"),
    }
    binding = {
        "MessagingBinding.ProxyAddress": TWILIO_NUMBER,
        "MessagingBinding.Address": CUSTOMER_NUMBER,
        "MessagingBinding.ProjectedAddress": TWILIO_NUMBER,
        "MessagingBinding.AuthorAddress": CUSTOMER_NUMBER,
    }
    if event_type == "onConversationAdd":
        return {
            **fields,
            **binding,
            "MessageBody": "Hi, my parcel for order A-1042 arrived damaged.",
            "Media": _conversation_media(),
            "State": "active",
        }
    dated = {"ConversationSid": sid, "DateCreated": _ISO_TIME}
    if event_type == "onConversationAdded":
        return {**dated, "DateUpdated": _ISO_TIME, **fields, **binding, "State": "active"}
    params = {**dated, "DateUpdated": _DATE_UPDATED, **fields, "State": "active"}
    if event_type == "onConversationRemoved":
        params["DateRemoved"] = _DATE_REMOVED
    return params


def _message_fields(event_type: str, sid: str) -> dict[str, str]:
    content = {
        "Body": "Sorry about that! A replacement ships today.",
        "Author": "agent-alice",
        "ParticipantSid": new_sid("MB"),
        "Attributes": '{"order":"A-1042"}',
        "Media": _conversation_media(),
    }
    if event_type == "onMessageAdd":
        return {"ConversationSid": sid, **content}
    message = {"ConversationSid": sid, "MessageSid": new_sid("IM")}
    if event_type == "onMessageAdded":
        return {
            **message,
            "MessagingServiceSid": new_sid("MG"),
            "Index": "3",
            "DateCreated": _ISO_TIME,
            **content,
        }
    params = {**message, "Index": "3", "DateCreated": _ISO_TIME, "DateUpdated": _DATE_UPDATED}
    params.update(content)
    if event_type == "onMessageRemoved":
        params["DateRemoved"] = _DATE_REMOVED
    return params


def _participant_fields(event_type: str, sid: str) -> dict[str, str]:
    # An SMS participant: no Identity, no ProjectedAddress (Twilio leaves them null).
    params = {
        "ConversationSid": sid,
        "RoleSid": new_sid("RL"),
        "Attributes": '{"customer_id":"C-5310"}',
        "MessagingBinding.ProxyAddress": TWILIO_NUMBER,
        "MessagingBinding.Address": CUSTOMER_NUMBER,
        "MessagingBinding.Type": "SMS",
    }
    if event_type == "onParticipantAdd":
        return params
    params.update(ParticipantSid=new_sid("MB"), DateCreated=_ISO_TIME)
    if event_type != "onParticipantAdded":
        params["DateUpdated"] = _DATE_UPDATED
    if event_type == "onParticipantRemoved":
        params["DateRemoved"] = _DATE_REMOVED
    elif event_type == "onParticipantUpdated":
        params["LastReadMessageIndex"] = "3"
    return params


def _user_fields(event_type: str) -> dict[str, str]:
    params = {"ChatServiceSid": new_sid("IS"), "UserSid": new_sid("US")}
    if event_type in ("onUserAdded", "onUserUpdated"):
        params["DateCreated"] = _ISO_TIME
    if event_type in ("onUserUpdate", "onUserUpdated"):
        params["DateUpdated"] = _DATE_UPDATED
    params.update(
        Identity="agent-alice",
        RoleSid=new_sid("RL"),
        Attributes='{"team":"billing"}',
        FriendlyName="Alice Ng",
    )
    if event_type == "onUserUpdated":
        params.update(isOnline="true", isNotifiable="true")
    return params


def conversations_params(
    event_type: str = "onMessageAdded", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A Conversations webhook: a pre-action event (present tense, ``onMessageAdd``...,
    which can still be refused) or a post-action one (``onMessageAdded``...).
    *event_type* is the ``EventType``, one of :data:`CONVERSATIONS_PRE_EVENTS` and
    :data:`CONVERSATIONS_POST_EVENTS`, and picks the parameters that come with it;
    ``MessagingBinding.*`` names keep their dot, ``Attributes`` and ``Media`` are JSON
    text.  *sid* is the ``ConversationSid`` (unused by ``onConversationAdd`` and the
    user events, which have none).
    """
    _require(
        "Conversations event type", event_type, CONVERSATIONS_PRE_EVENTS + CONVERSATIONS_POST_EVENTS
    )
    sid = sid or new_sid("CH")
    params = {
        "AccountSid": ACCOUNT_SID,
        "EventType": event_type,
        "Source": "SDK",
        "ClientIdentity": "agent-alice",
    }
    if event_type == "onConversationStateUpdated":
        params.update(
            ChatServiceSid=new_sid("IS"),
            StateUpdated=_DATE_UPDATED,
            StateFrom="active",
            StateTo="inactive",
            ConversationSid=sid,
            Reason="TIMER",
            MessagingServiceSid=new_sid("MG"),
        )
    elif event_type == "onDeliveryUpdated":
        params.update(
            ConversationSid=sid,
            ChatServiceSid=new_sid("IS"),
            MessageSid=new_sid("IM"),
            DeliveryReceiptSid=new_sid("DY"),
            ChannelMessageSid=new_sid("SM"),
            ParticipantSid=new_sid("MB"),
            Status="delivered",
            ErrorCode="0",
            DateCreated=_ISO_TIME,
            DateUpdated=_DATE_UPDATED,
        )
    elif event_type.startswith("onConversation"):
        params.update(_conversation_fields(event_type, sid))
    elif event_type.startswith("onMessage"):
        params.update(_message_fields(event_type, sid))
    elif event_type.startswith("onParticipant"):
        params.update(_participant_fields(event_type, sid))
    else:
        params.update(_user_fields(event_type))
    return _apply(params, overrides)
