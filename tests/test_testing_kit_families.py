"""The test kit with the new webhook families: ``TestClient.send`` of every new kind (its
payload factory reaching its callback), ``path=`` and ``query=``, ``method="GET"`` and
``get()``, ``credentials=``, the URL signed for a service's path behind ``public_url``,
and the ``a``-prefixed methods in an async test.

Each request goes through a real listener's ASGI application, which verifies every
signature: an accepted request is a correctly signed one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio
from tests.payloads import sign as oracle
from twilio_trigger._core.services import callback_name, camel_callback_name
from twilio_trigger._core.vocabulary import CONFERENCE_EVENTS
from twilio_trigger.testing import (
    CONVERSATIONS_POST_EVENTS,
    CONVERSATIONS_PRE_EVENTS,
    TASKROUTER_EVENT_TYPES,
    TestClient,
    TestResponse,
    conference_params,
    gather_params,
)

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listeners read TWILIO_* variables: none leaks in from outside."""
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            monkeypatch.delenv(name)


class Seen:
    """Every callback run: ``(callback, event)``, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, twilio.TwilioEvent]] = []
        self.lock = threading.Lock()

    def add(self, callback: str, event: twilio.TwilioEvent) -> None:
        with self.lock:
            self.calls.append((callback, event))

    def names(self) -> list[str]:
        with self.lock:
            return [name for name, _ in self.calls]

    def last(self) -> tuple[str, twilio.TwilioEvent]:
        with self.lock:
            return self.calls[-1]


def _twiml(name: str) -> str:
    return f"<Response><Say>{name}</Say></Response>"


def _recorder(name: str, reply: Callable[[str], object] | None) -> Callable[..., object]:
    def callback(self: Recording, event: twilio.TwilioEvent) -> object:
        self.seen.add(name, event)
        return None if reply is None else reply(name)

    callback.__name__ = name
    return callback


class Recording:
    def __init__(self, seen: Seen) -> None:
        self.seen = seen


#: The voice callbacks whose answer is TwiML, and the notifications.
VERB_CALLBACKS = (
    "on_gather",
    "on_dial",
    "on_record",
    "on_enqueue",
    "on_queue_wait",
    "on_dequeue",
    "on_pay",
)
NOTIFICATION_CALLBACKS = (
    "on_gather_partial",
    "on_transcription",
    "on_pay_status",
    "on_machine_detection",
)


class Voice(Recording, twilio.CallStatusService):
    pass


for _name in VERB_CALLBACKS:
    setattr(Voice, _name, _recorder(_name, _twiml))
for _name in (*NOTIFICATION_CALLBACKS, "on_in_progress", "on_ringing", "on_completed"):
    setattr(Voice, _name, _recorder(_name, None))


class Conferences(Recording, twilio.ConferenceService):
    pass


for _name in twilio.ConferenceService.callback_names:
    setattr(Conferences, _name, _recorder(_name, None))


class Conversations(Recording, twilio.ConversationsService):
    pass


for _name in twilio.ConversationsService.callback_names:
    setattr(Conversations, _name, _recorder(_name, None))


class Workspace(Recording, twilio.TaskRouterService):
    pass


for _name in twilio.TaskRouterService.callback_names:
    setattr(Workspace, _name, _recorder(_name, None))
Workspace.on_assignment = _recorder("on_assignment", lambda _: {"instruction": "accept"})


class Alerts(Recording, twilio.DebuggerService):
    pass


for _name in ("on_error", "on_warning"):
    setattr(Alerts, _name, _recorder(_name, None))


class Fallback(Recording, twilio.FallbackService):
    pass


Fallback.on_event = _recorder("on_event", None)


class Menu(twilio.CallStatusService):
    """A service with only ``on_gather``, for a ``<Gather action>`` at a path of its own."""

    def __init__(self) -> None:
        self.seen: list[twilio.GatherEvent] = []

    async def on_gather(self, event: twilio.GatherEvent) -> str:
        self.seen.append(event)
        step = ",".join(event.query.get("step", ()))
        return f"<Response><Say>menu {step}</Say></Response>"


class Kit:
    def __init__(self, listener: twilio.Listener) -> None:
        self.listener = listener
        self.seen = Seen()
        self.menu = Menu()
        for service in (Voice, Conferences, Conversations, Workspace, Alerts, Fallback):
            listener.attach(service(self.seen))
        listener.attach(self.menu, path="/voice/menu")


@pytest.fixture
def kit() -> Kit:
    return Kit(twilio.Listener(auth_tokens=[TOKEN], path="/twilio"))


@pytest.fixture
def client(kit: Kit) -> Iterator[TestClient]:
    with TestClient(kit.listener) as client:
        yield client


def assert_twiml(response: TestResponse, body: str) -> None:
    assert response.status_code == 200, response.text
    assert response.content_type.startswith("text/xml")
    assert response.text == body


# -- every payload factory of the new kinds, through send() ------------------------------------
#: (kind, event given to send(), the callback it reaches, what the answer is)
SENT: list[tuple[str, str | None, str, str]] = [
    ("gather", "digits", "on_gather", "twiml"),
    ("gather", "speech", "on_gather", "twiml"),
    ("gather", None, "on_gather", "twiml"),
    ("gather", "empty", "on_in_progress", "empty"),  # only a path tells: the call's own
    ("gather_partial", None, "on_gather_partial", "empty"),
    ("transcription", "completed", "on_transcription", "empty"),
    ("transcription", "failed", "on_transcription", "empty"),
    ("record", "completed", "on_record", "twiml"),
    ("record", "hangup", "on_record", "twiml"),
    ("queue_wait", "3", "on_queue_wait", "twiml"),
    ("dequeue", None, "on_dequeue", "twiml"),
    ("assignment", None, "on_assignment", "instruction"),
    ("other", "room-created", "on_event", "empty"),
    ("other", "room-ended", "on_event", "empty"),
    ("debugger", "error", "on_error", "empty"),
    ("debugger", "warning", "on_warning", "empty"),
]
SENT += [
    ("dial", status, "on_dial", "twiml")
    for status in ("completed", "answered", "busy", "no-answer", "failed", "canceled")
]
SENT += [
    ("enqueue", result, "on_enqueue", "twiml")
    for result in ("bridged", "hangup", "leave", "queue-full", "system-error")
]
SENT += [
    ("pay", result, "on_pay", "twiml")
    for result in ("success", "too-many-failed-attempts", "caller-hung-up", "internal-error")
]
SENT += [
    ("pay_status", stage, "on_pay_status", "empty")
    for stage in ("payment-card-number", "expiration-date", "security-code", "postal-code")
]
SENT += [
    ("amd", answered_by, "on_machine_detection", "empty")
    for answered_by in ("human", "machine_start", "machine_end_beep", "fax", "unknown")
]
SENT += [("conference", event, callback_name(event), "empty") for event in CONFERENCE_EVENTS]
SENT += [
    ("conversations", event_type, camel_callback_name(event_type), "pre")
    for event_type in CONVERSATIONS_PRE_EVENTS
]
SENT += [
    ("conversations", event_type, camel_callback_name(event_type), "empty")
    for event_type in CONVERSATIONS_POST_EVENTS
]
SENT += [
    ("taskrouter", event_type, callback_name(event_type), "204")
    for event_type in TASKROUTER_EVENT_TYPES
]


def _sent_id(row: tuple[str, str | None, str, str]) -> str:
    return f"{row[0]}-{row[1]}"


@pytest.mark.parametrize("row", SENT, ids=_sent_id)
def test_each_payload_factory_reaches_its_callback(
    kit: Kit, client: TestClient, row: tuple[str, str | None, str, str]
) -> None:
    kind, event, callback, answer = row
    response = client.send(kind, event)
    assert response.errors == ()
    assert kit.seen.names() == [callback]
    name, seen = kit.seen.last()
    expected_kind = "call" if callback == "on_in_progress" else kind
    assert seen.kind == expected_kind
    assert seen.path == "/twilio"
    assert seen.query == {}
    if answer == "twiml":
        assert_twiml(response, '<?xml version="1.0" encoding="UTF-8"?>' + _twiml(name))
    elif answer == "empty":
        assert_twiml(response, EMPTY_TWIML)
    elif answer == "pre":
        assert isinstance(seen, twilio.ConversationsEvent)
        assert seen.is_pre_event
        assert (response.status_code, response.body) == (200, b"{}")
        assert response.content_type.startswith("application/json")
    elif answer == "instruction":
        assert response.status_code == 200
        assert response.content_type.startswith("application/json")
        assert json.loads(response.body) == {"instruction": "accept"}
    else:
        assert (response.status_code, response.body) == (204, b"")
        assert response.content_type.startswith("application/json")


def test_send_takes_sid_and_overrides(kit: Kit, client: TestClient) -> None:
    sid = "CF" + "7" * 32
    response = client.send("conference", "participant-mute", sid=sid, Muted="true", Hold=None)
    assert_twiml(response, EMPTY_TWIML)
    name, event = kit.seen.last()
    assert name == "on_participant_mute"
    assert isinstance(event, twilio.ConferenceEvent)
    assert (event.sid, event.muted, event.hold) == (sid, True, None)
    assert "Hold" not in event


def test_send_of_an_unknown_kind_is_a_value_error(client: TestClient) -> None:
    with pytest.raises(ValueError, match="no kind 'voicemail'"):
        client.send("voicemail")


# -- path= and query= --------------------------------------------------------------------------
def test_send_at_a_path_with_a_query(kit: Kit, client: TestClient) -> None:
    response = client.send("gather", "empty", path="/voice/menu", query="step=2&step=3&lang=")
    assert_twiml(
        response, '<?xml version="1.0" encoding="UTF-8"?><Response><Say>menu 2,3</Say></Response>'
    )
    (event,) = kit.menu.seen
    assert isinstance(event, twilio.GatherEvent)
    assert event.path == "/voice/menu"
    assert event.query == {"step": ("2", "3"), "lang": ("",)}
    assert event.digits is None
    assert kit.seen.names() == []  # not the listener-wide service's


def test_send_at_a_path_reaches_the_listener_wide_service_for_other_callbacks(
    kit: Kit, client: TestClient
) -> None:
    response = client.send("call", "ringing", path="/voice/menu", query="from=menu")
    assert_twiml(response, EMPTY_TWIML)
    name, event = kit.seen.last()
    assert name == "on_ringing"
    assert (event.path, dict(event.query)) == ("/voice/menu", {"from": ("menu",)})
    assert kit.menu.seen == []


def test_a_path_nobody_attached_at_is_not_found(client: TestClient) -> None:
    assert client.send("gather", "digits", path="/voice/elsewhere").status_code == 404


# -- GET ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "get", "Get"])
def test_send_with_get_puts_the_parameters_in_the_query(
    kit: Kit, client: TestClient, method: str
) -> None:
    response = client.send(
        "gather", "digits", sid="CA" + "8" * 32, path="/voice/menu", query="step=4", method=method
    )
    assert_twiml(
        response, '<?xml version="1.0" encoding="UTF-8"?><Response><Say>menu 4</Say></Response>'
    )
    (event,) = kit.menu.seen
    assert event.digits == "1"
    assert event.call_sid == "CA" + "8" * 32
    assert event.query["step"] == ("4",)
    assert event.query["Digits"] == ("1",)  # Twilio's parameters follow the URL's own


def test_get_sends_given_parameters(kit: Kit, client: TestClient) -> None:
    params = conference_params("participant-join")
    response = client.get(params, query="room=blue")
    assert_twiml(response, EMPTY_TWIML)
    name, event = kit.seen.last()
    assert name == "on_participant_join"
    assert event.sid == params["ConferenceSid"]
    assert event.query["room"] == ("blue",)
    assert event.path == "/twilio"


def test_get_keeps_repeated_names_and_can_go_to_a_path(kit: Kit, client: TestClient) -> None:
    pairs = [*gather_params("speech").items(), ("Extra", "a"), ("Extra", "b")]
    response = client.get(pairs, path="/voice/menu", query="step=1&step=2")
    assert response.status_code == 200
    (event,) = kit.menu.seen
    assert event.getall("Extra") == ("a", "b")
    assert event.query["step"] == ("1", "2")
    assert event.speech_result == "I'd like to check my order status."


def test_get_with_a_signature_of_the_oracle(kit: Kit, client: TestClient) -> None:
    params = {"CallSid": "CA" + "9" * 32, "Digits": "7", "CallStatus": "in-progress"}
    query = "step=9&" + "&".join(f"{k}={v}" for k, v in params.items())
    url = f"http://testserver/voice/menu?{query}"
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    response = client.get({}, query=query, signature=signature, path="/voice/menu")
    assert response.status_code == 200, response.text
    assert kit.menu.seen[0].digits == "7"
    refused = client.get({}, query=query, signature=signature + "x", path="/voice/menu")
    assert refused.status_code == 403


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "", "POSTS"])
def test_a_method_other_than_get_or_post_is_a_value_error(
    kit: Kit, client: TestClient, method: str
) -> None:
    with pytest.raises(ValueError, match="POST or GET"):
        client.send("gather", "digits", method=method)

    async def scenario() -> None:
        await client.asend("gather", "digits", method=method)

    with pytest.raises(ValueError, match="POST or GET"):
        asyncio.run(scenario())
    assert kit.seen.names() == []


# -- credentials= ------------------------------------------------------------------------------
@pytest.fixture
def guarded() -> twilio.Listener:
    listener = twilio.Listener(
        auth_tokens=[TOKEN], basic_auth=[("twilio", "s3:cret"), ("rotated", "p\u00e4ss")]
    )
    listener.attach(Conferences(Seen()))
    return listener


@pytest.mark.parametrize(("user", "password"), [("twilio", "s3:cret"), ("rotated", "p\u00e4ss")])
def test_credentials_are_sent_as_basic_authorization(
    guarded: twilio.Listener, user: str, password: str
) -> None:
    with TestClient(guarded, credentials=(user, password)) as client:
        assert client.send("conference", "conference-start").status_code == 200
        assert client.get(conference_params("conference-end")).status_code == 200
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        assert client._authorization == f"Basic {token}"


def test_without_credentials_the_listener_challenges(guarded: twilio.Listener) -> None:
    with TestClient(guarded) as client:
        response = client.send("conference", "conference-start")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="twilio-trigger"')
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize(
    "credentials", [("twilio", "wrong"), ("rotated", "s3:cret"), ("twilio", "s3")]
)
def test_wrong_credentials_are_refused(
    guarded: twilio.Listener, credentials: tuple[str, str]
) -> None:
    with TestClient(guarded, credentials=credentials) as client:
        assert client.send("conference", "conference-start").status_code == 401


def test_credentials_are_not_part_of_the_signed_url(guarded: twilio.Listener) -> None:
    params = conference_params("conference-start")
    signature = oracle("http://testserver/", params, TOKEN)
    with TestClient(guarded, credentials=("twilio", "s3:cret")) as client:
        assert client.post(params, signature=signature).status_code == 200
        assert client.post(params, signature="").status_code == 403


# -- the URL signed for a path, behind public_url ----------------------------------------------
def test_url_of_without_public_url() -> None:
    listener = twilio.Listener(auth_tokens=[TOKEN], path="/twilio")
    client = TestClient(listener, host="example.test:8443")
    assert client._url_of(None) == "http://example.test:8443/twilio"
    assert client._url_of("/twilio") == "http://example.test:8443/twilio"
    assert client._url_of("/voice/menu") == "http://example.test:8443/voice/menu"


@pytest.mark.parametrize(
    ("path", "public_url", "expected"),
    [
        (
            "/twilio",
            "https://hooks.example.com/app/twilio",
            "https://hooks.example.com/app/voice/menu",
        ),
        ("/twilio", "https://hooks.example.com/twilio", "https://hooks.example.com/voice/menu"),
        ("/", "https://hooks.example.com/", "https://hooks.example.com/voice/menu"),
        ("/", "https://hooks.example.com/app/", "https://hooks.example.com/app/voice/menu"),
        ("/twilio", "https://hooks.example.com/other", "https://hooks.example.com/voice/menu"),
        (
            "/twilio",
            "https://user:pw@hooks.example.com:8443/a/twilio",
            "https://hooks.example.com:8443/a/voice/menu",
        ),
    ],
)
def test_a_service_path_is_signed_over_public_url_with_the_path_replaced(
    path: str, public_url: str, expected: str
) -> None:
    listener = twilio.Listener(auth_tokens=[TOKEN], path=path, public_url=public_url)
    menu = Menu()
    listener.attach(menu, path="/voice/menu")
    with TestClient(listener) as client:
        assert client._url_of("/voice/menu") == expected
        assert client._url_of(None) == listener.settings.public_url
        # The listener agrees: the request, signed over that URL, is accepted ...
        response = client.send("gather", "digits", path="/voice/menu", query="step=5")
        assert response.status_code == 200, response.text
        assert [event.query["step"] for event in menu.seen] == [("5",)]
        # ... and so is one the oracle signs over the same URL.
        params = gather_params("digits")
        signature = oracle(f"{expected}?step=6", params, TOKEN)
        accepted = client.post(params, query="step=6", signature=signature, path="/voice/menu")
        assert accepted.status_code == 200, accepted.text
        # Signed over the listener's own public_url, it is not.
        wrong = oracle(f"{listener.settings.public_url}?step=7", params, TOKEN)
        refused = client.post(params, query="step=7", signature=wrong, path="/voice/menu")
        assert refused.status_code == 403


# -- asend and aget in an async test -----------------------------------------------------------
def test_asend_and_aget_run_on_the_tests_event_loop(kit: Kit) -> None:
    client = TestClient(kit.listener)
    threads_before = set(threading.enumerate())

    async def scenario() -> list[TestResponse]:
        return [
            await client.asend("gather", "empty", path="/voice/menu", query="step=1"),
            await client.asend("taskrouter", "task.created"),
            await client.asend("conversations", "onMessageAdd", method="GET"),
            await client.aget(conference_params("participant-leave"), query="x=1"),
            await client.aget(gather_params("digits"), path="/voice/menu", query="step=2"),
            await client.asend("assignment"),
        ]

    responses = asyncio.run(scenario())
    client.close()
    assert [response.status_code for response in responses] == [200, 204, 200, 200, 200, 200]
    assert responses[2].body == b"{}"
    assert json.loads(responses[5].body) == {"instruction": "accept"}
    assert [event.query["step"] for event in kit.menu.seen] == [("1",), ("2",)]
    assert kit.seen.names() == [
        "on_task_created",
        "on_message_add",
        "on_participant_leave",
        "on_assignment",
    ]
    assert set(threading.enumerate()) <= threads_before  # no background loop was needed


def test_conversations_pre_events_through_get_and_post_are_the_same(
    kit: Kit, client: TestClient
) -> None:
    build = partial(client.send, "conversations", "onMessageUpdate")
    assert build().body == b"{}"
    assert build(method="GET").body == b"{}"
    assert kit.seen.names() == ["on_message_update", "on_message_update"]
