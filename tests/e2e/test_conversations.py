"""Conversations webhooks over real HTTP: every ``EventType`` reaches its callback, and
a pre-event's callback decides Twilio's answer.

Payloads follow the fact sheet's Conversations tables (§3: the test kit's
``conversations_params``), signed by twilio-python's ``RequestValidator``.  One
service defines every ``ConversationsService`` callback and records each call,
so each test also checks that no other callback ran.  Checked: each of the 13
post-events reaches its callback and is answered with empty TwiML whatever the
callback returns; a pre-event (``onMessageAdd``) allowed (``{}``), modified (JSON
of the fields, attributes as JSON text), rejected by raising or returning
``Reject`` (4xx with the reason), failed by a field Twilio does not let the
answer change or by an exception (500, logged); the typed fields (attributes,
media, messaging binding, delivery status, dates); and the Event Streams
CloudEvent ``com.twilio.conversations.message.added``, signed by hand as Twilio
signs a JSON body (``bodySHA256`` in the URL).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_cloudevents, signed_post
from twilio_trigger import testing

from ._support import TOKEN, CallLog, assert_empty_twiml, every_callback, records, running

PRE_EVENTS = (
    "onConversationAdd", "onConversationUpdate", "onConversationRemove",
    "onMessageAdd", "onMessageUpdate", "onMessageRemove",
    "onParticipantAdd", "onParticipantUpdate", "onParticipantRemove",
    "onUserUpdate",
)  # fmt: skip
POST_EVENTS = (
    "onConversationAdded", "onConversationUpdated", "onConversationRemoved",
    "onConversationStateUpdated",
    "onMessageAdded", "onMessageUpdated", "onMessageRemoved",
    "onParticipantAdded", "onParticipantUpdated", "onParticipantRemoved",
    "onUserAdded", "onUserUpdated",
    "onDeliveryUpdated",
)  # fmt: skip
DATE_CREATED = datetime(2023, 11, 14, 18, 30, tzinfo=UTC)
DATE_UPDATED = datetime(2023, 11, 14, 18, 31, 5, tzinfo=UTC)


def callback_of(event_type: str) -> str:
    """``onMessageAdded`` → ``on_message_added``."""
    return "on" + re.sub("([A-Z])", lambda m: "_" + m.group(1).lower(), event_type[2:])


# -- the recording service -------------------------------------------------------------
@every_callback
class Conversations(CallLog[twilio.ConversationsEvent], twilio.ConversationsService):
    """Every ``ConversationsService`` callback, each recording its call and returning
    what :attr:`replies` says for it (``None`` unless told; an exception is raised)."""


def test_the_recording_service_defines_every_conversations_callback() -> None:
    expected = {callback_of(e) for e in PRE_EVENTS + POST_EVENTS}
    assert set(twilio.ConversationsService.callback_names) == expected
    assert expected <= set(vars(Conversations))


# -- fixtures and helpers --------------------------------------------------------------
@pytest.fixture(scope="module")
def conversations() -> Conversations:
    return Conversations()


@pytest.fixture(scope="module")
def listener(conversations: Conversations) -> Iterator[twilio.Listener]:
    with running(conversations) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _fresh(conversations: Conversations) -> Iterator[None]:
    conversations.reset()
    yield
    conversations.reset()


def post(listener: twilio.Listener, params: dict[str, str]) -> httpx.Response:
    return signed_post(listener.url, params, TOKEN)


def assert_json(response: httpx.Response, status: int = 200) -> object:
    """*response* has *status* and ``application/json``; its body parsed."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].partition(";")[0].strip() == "application/json"
    return json.loads(response.content)


def post_cloudevents(url: str, events: list[dict[str, object]]) -> httpx.Response:
    return signed_cloudevents(url, events, TOKEN)


# -- post-events ----------------------------------------------------------------------------
@pytest.mark.parametrize("event_type", POST_EVENTS)
def test_each_post_event_reaches_its_callback_and_is_acknowledged(
    listener: twilio.Listener, conversations: Conversations, event_type: str
) -> None:
    name = callback_of(event_type)
    conversations.replies[name] = {"body": "a post-event's answer changes nothing"}
    params = testing.conversations_params(event_type)
    assert_empty_twiml(post(listener, params))
    called, event = conversations.only()
    assert called == name
    assert isinstance(event, twilio.ConversationsEvent)
    assert event.kind == "conversations"
    assert event.status == event_type
    assert event.event_type == event_type
    assert event.is_pre_event is False
    assert event.source == "SDK"
    assert event.client_identity == "agent-alice"
    assert event.account_sid == testing.ACCOUNT_SID
    assert event.conversation_sid == params.get("ConversationSid")


def test_a_post_event_delivered_twice_runs_once(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    params = testing.conversations_params("onMessageAdded")
    assert_empty_twiml(post(listener, params))
    assert_empty_twiml(post(listener, params))  # Twilio's retry
    assert conversations.names() == ["on_message_added"]


def test_a_user_who_goes_online_again_is_told_again(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    # The same parameters as the first time (its DateUpdated is the user's): nothing
    # tells it from a retry, so a user's update is never taken for a copy.
    user = testing.conversations_params("onUserUpdated", isOnline="true")
    for online in ("true", "false", "true"):
        assert_empty_twiml(post(listener, {**user, "isOnline": online}))
    assert conversations.names() == ["on_user_updated"] * 3
    assert [event.is_online for event in conversations.events()] == [True, False, True]


def test_a_message_added_has_its_fields_typed(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    params = testing.conversations_params("onMessageAdded", Attributes='{"order":"A-1042","n":2}')
    assert_empty_twiml(post(listener, params))
    _, event = conversations.only()
    assert event.sid == params["MessageSid"]
    assert event.message_sid == params["MessageSid"]
    assert event.conversation_sid == params["ConversationSid"]
    assert event.participant_sid == params["ParticipantSid"]
    assert event.messaging_service_sid == params["MessagingServiceSid"]
    assert event.body == "Sorry about that! A replacement ships today."
    assert event.author == "agent-alice"
    assert event.index == 3
    assert event.date_created == DATE_CREATED
    assert event.attributes == {"order": "A-1042", "n": 2}
    assert len(event.media) == 1
    assert event.media[0]["ContentType"] == "image/jpeg"
    assert event.media[0]["Filename"] == "damaged-parcel.jpg"
    assert event.media[0]["Size"] == 184320


def test_a_participant_added_has_its_messaging_binding(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    params = testing.conversations_params("onParticipantAdded")
    assert_empty_twiml(post(listener, params))
    name, event = conversations.only()
    assert name == "on_participant_added"
    assert dict(event.messaging_binding) == {
        "ProxyAddress": testing.TWILIO_NUMBER,
        "Address": testing.CUSTOMER_NUMBER,
        "Type": "SMS",
    }
    assert event.attributes == {"customer_id": "C-5310"}
    assert event.identity is None  # an SMS participant
    assert event.participant_sid == params["ParticipantSid"]


def test_a_message_updated_has_its_dates_and_a_user_updated_its_flags(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    assert_empty_twiml(post(listener, testing.conversations_params("onMessageUpdated")))
    assert_empty_twiml(post(listener, testing.conversations_params("onUserUpdated")))
    assert_empty_twiml(post(listener, testing.conversations_params("onConversationStateUpdated")))
    assert conversations.names() == [
        "on_message_updated",
        "on_user_updated",
        "on_conversation_state_updated",
    ]
    message, user, state = (event for _, event in conversations.calls)
    assert message.date_updated == DATE_UPDATED
    assert message.date_created == DATE_CREATED
    assert user.is_online is True
    assert user.is_notifiable is True
    assert user.user_sid is not None
    assert user.user_sid.startswith("US")
    assert user.attributes == {"team": "billing"}
    assert state.state_from == "active"
    assert state.state_to == "inactive"
    assert state.reason == "TIMER"
    assert state.state_updated == DATE_UPDATED


@pytest.mark.parametrize("status", ["delivered", "read", "failed"])
def test_on_delivery_updated_has_the_delivery_status(
    listener: twilio.Listener, conversations: Conversations, status: str
) -> None:
    params = testing.conversations_params("onDeliveryUpdated", Status=status)
    assert_empty_twiml(post(listener, params))
    name, event = conversations.only()
    assert name == "on_delivery_updated"
    assert event.delivery_status == status
    assert event.delivery_receipt_sid == params["DeliveryReceiptSid"]
    assert event.channel_message_sid == params["ChannelMessageSid"]
    assert event.message_sid == params["MessageSid"]
    assert event.error_code == 0


# -- pre-events ---------------------------------------------------------------------------
@pytest.mark.parametrize("event_type", PRE_EVENTS)
def test_each_pre_event_reaches_its_callback_and_none_allows_it(
    listener: twilio.Listener, conversations: Conversations, event_type: str
) -> None:
    response = post(listener, testing.conversations_params(event_type))
    assert assert_json(response) == {}
    called, event = conversations.only()
    assert called == callback_of(event_type)
    assert event.is_pre_event is True
    assert event.event_type == event_type


def test_a_pre_event_allowed_is_answered_an_empty_json_object(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    params = testing.conversations_params("onMessageAdd")
    assert "MessageSid" not in params  # not added yet
    response = post(listener, params)
    assert assert_json(response) == {}
    assert response.content == b"{}"
    name, event = conversations.only()
    assert name == "on_message_add"
    assert event.body == "Sorry about that! A replacement ships today."
    assert event.attributes == {"order": "A-1042"}
    assert event.media[0]["ContentType"] == "image/jpeg"
    assert event.index is None


def test_a_pre_event_modified_is_answered_the_fields_as_json(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    conversations.replies["on_message_add"] = {
        "body": "Sorry about that! A replacement ships today. [edited]",
        "attributes": {"k": "v"},
    }
    response = post(listener, testing.conversations_params("onMessageAdd"))
    answer = assert_json(response)
    assert isinstance(answer, dict)
    assert answer["body"] == "Sorry about that! A replacement ships today. [edited]"
    assert isinstance(answer["attributes"], str)  # Twilio keeps attributes as JSON text
    assert json.loads(answer["attributes"]) == {"k": "v"}
    assert set(answer) == {"body", "attributes"}
    assert conversations.names() == ["on_message_add"]


def test_a_conversation_add_may_change_its_friendly_name(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    conversations.replies["on_conversation_add"] = {"friendly_name": "Order A-1042 (priority)"}
    params = testing.conversations_params("onConversationAdd")
    response = post(listener, params)
    assert assert_json(response) == {"friendly_name": "Order A-1042 (priority)"}
    _, event = conversations.only()
    assert event.message_body == "Hi, my parcel for order A-1042 arrived damaged."
    assert event.messaging_binding["AuthorAddress"] == testing.CUSTOMER_NUMBER
    assert event.friendly_name == "Order A-1042 support"
    assert event.state == "active"


def test_a_pre_event_rejected_by_raising_reject_is_403_with_the_reason(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    conversations.replies["on_message_add"] = twilio.Reject("profanity is not allowed here")
    response = post(listener, testing.conversations_params("onMessageAdd"))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert "profanity is not allowed here" in response.text
    assert conversations.names() == ["on_message_add"]


def test_a_pre_event_rejected_by_returning_reject_has_its_status(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    reject = twilio.Reject("participants are capped at 50", status=422)

    def returning(self: Conversations, event: twilio.ConversationsEvent) -> object:
        self.called("on_participant_add", event)
        return reject

    class Capped(Conversations):
        on_participant_add = returning

    capped = Capped()
    with running(capped) as capped_listener:
        response = post(capped_listener, testing.conversations_params("onParticipantAdd"))
    assert response.status_code == 422
    assert "participants are capped at 50" in response.text
    assert capped.names() == ["on_participant_add"]


def test_a_field_twilio_does_not_let_the_answer_change_fails_the_callback(
    listener: twilio.Listener, conversations: Conversations, caplog: pytest.LogCaptureFixture
) -> None:
    conversations.replies["on_message_add"] = {"body": "edited", "index": 7}
    with caplog.at_level(logging.INFO, logger="twilio_trigger"):
        response = post(listener, testing.conversations_params("onMessageAdd"))
    assert response.status_code == 500  # Twilio takes it as a rejection
    assert conversations.names() == ["on_message_add"]
    errors = records(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].exc_info is not None
    assert "index" in str(errors[0].exc_info[1])


def test_a_pre_event_callback_that_raises_blocks_the_action_with_500(
    listener: twilio.Listener, conversations: Conversations, caplog: pytest.LogCaptureFixture
) -> None:
    conversations.replies["on_message_add"] = RuntimeError("the moderation service is down")
    with caplog.at_level(logging.INFO, logger="twilio_trigger"):
        response = post(listener, testing.conversations_params("onMessageAdd"))
    assert response.status_code == 500
    assert "moderation service is down" not in response.text  # internals stay in the log
    assert conversations.names() == ["on_message_add"]
    errors = records(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]


def test_a_pre_event_sent_twice_is_asked_twice(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    params = testing.conversations_params("onMessageAdd")
    assert assert_json(post(listener, params)) == {}
    assert assert_json(post(listener, params)) == {}
    assert conversations.names() == ["on_message_add", "on_message_add"]


# -- Event Streams ----------------------------------------------------------------------------
def test_the_message_added_cloudevent_reaches_on_message_added(
    listener: twilio.Listener, conversations: Conversations
) -> None:
    conversation, message = testing.new_sid("CH"), testing.new_sid("IM")
    data: dict[str, object] = {
        "AccountSid": testing.ACCOUNT_SID,
        "ChatServiceSid": testing.new_sid("IS"),
        "ConversationSid": conversation,
        "MessageSid": message,
        "ParticipantSid": testing.new_sid("MB"),
        "Author": testing.CUSTOMER_NUMBER,
        "MessageBody": "Is my replacement parcel on its way?",
        "MessageSubject": None,
        "ContentSid": None,
        "Index": 4,
        "Attributes": '{"order":"A-1042"}',
        "Source": "SMS",
        "DateCreated": "2023-11-14T18:30:00Z",
        "MessagingBinding": {
            "Address": testing.CUSTOMER_NUMBER,
            "ProxyAddress": testing.TWILIO_NUMBER,
        },
    }
    cloudevent = testing.cloudevent("com.twilio.conversations.message.added", data)
    response = post_cloudevents(listener.url, [cloudevent])
    assert_empty_twiml(response)
    name, event = conversations.only()
    assert name == "on_message_added"
    assert isinstance(event, twilio.ConversationsEvent)
    assert event.event_type == "onMessageAdded"
    assert event.body == "Is my replacement parcel on its way?"
    assert event.conversation_sid == conversation
    assert event.message_sid == message
    assert event.sid == message
    assert event.author == testing.CUSTOMER_NUMBER
    assert event.index == 4
    assert event.attributes == {"order": "A-1042"}
    assert event.date_created == DATE_CREATED
    assert dict(event.messaging_binding) == {
        "Address": testing.CUSTOMER_NUMBER,
        "ProxyAddress": testing.TWILIO_NUMBER,
    }
    # The same CloudEvent again (a retried batch): not run twice.
    assert_empty_twiml(post_cloudevents(listener.url, [cloudevent]))
    assert conversations.names() == ["on_message_added"]


@pytest.mark.parametrize("spelling", ["isOnline", "IsOnline"])
def test_the_user_updated_cloudevent_says_whether_the_user_is_online(
    listener: twilio.Listener, conversations: Conversations, spelling: str
) -> None:
    # The webhook's names are lower-case `is...`; Event Streams' data, PascalCase
    # elsewhere, is not confirmed for these two: either spelling reads the same.
    notifiable = spelling.replace("Online", "Notifiable")
    data: dict[str, object] = {
        "AccountSid": testing.ACCOUNT_SID,
        "ChatServiceSid": testing.new_sid("IS"),
        "UserSid": testing.new_sid("US"),
        "Identity": "alice",
        "DateUpdated": "2023-11-14T18:30:00Z",
        spelling: True,
        notifiable: False,
    }
    cloudevent = testing.cloudevent("com.twilio.conversations.user.updated", data)
    assert_empty_twiml(post_cloudevents(listener.url, [cloudevent]))
    # The same CloudEvent again (a retried batch): its id names one event.
    assert_empty_twiml(post_cloudevents(listener.url, [cloudevent]))
    name, event = conversations.only()
    assert name == "on_user_updated"
    assert isinstance(event, twilio.ConversationsEvent)
    assert (event.is_online, event.is_notifiable) == (True, False)
