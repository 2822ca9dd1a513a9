"""Webhooks Twilio really sent, as public code captured them, recognised and read.

Every payload below is a parameter set that Twilio posted to somebody's
application and that was kept in public code (a test fixture, a logged request
body, a comment), not one of the package's own factories.  Each comment names
where it was found; parameter names and the shape of values are as captured
(URL-encoded captures decoded; an account SID redacted in the capture is replaced
by a fresh one of the same prefix).

Each is posted, signed by twilio-python's ``RequestValidator``, to a real
listener with one service of every class defining every callback, and must reach
the callback of its family with its typed fields read; the same parameters go
through ``to_event`` at unit level.

Families with no real capture found (so no payload here): ``<Record>`` action,
conference status callback, ``onMessageAdd`` pre-event with ``MessagingBinding.*``,
TaskRouter event and assignment callbacks, Debugger webhook, async AMD callback,
``<Pay>`` action and status callback, ``<Enqueue>`` action and ``waitUrl``,
``<Gather>`` partial results, Video room status callback.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post
from twilio_trigger._core.routing import to_event

from ._support import TOKEN, CallLog, assert_empty_twiml, every_callback, running

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

# -- the captures ------------------------------------------------------------------------
# <Gather action>, keys ended by timeout or numDigits (FinishedOnKey empty): the raw
# request body a Django view logged, kept in a comment of its handler.  Public GitHub
# file, search-index id 39345426317 (the index does not name its repository).
GATHER_DIGITS_DJANGO = {
    "AccountSid": "AC5764b7b81fa5154a587348b83e51abfb",
    "ApiVersion": "2010-04-01",
    "CallSid": "CA0b66c59730db4ae389b57aa6dd047990",
    "CallStatus": "in-progress",
    "Called": "+17659994360",
    "CalledCity": "",
    "CalledCountry": "US",
    "CalledState": "IN",
    "CalledZip": "",
    "Caller": "+916386845062",
    "CallerCity": "",
    "CallerCountry": "IN",
    "CallerState": "",
    "CallerZip": "",
    "Digits": "300",
    "Direction": "inbound",
    "FinishedOnKey": "",
    "From": "+916386845062",
    "FromCity": "",
    "FromCountry": "IN",
    "FromState": "",
    "FromZip": "",
    "To": "+17659994360",
    "ToCity": "",
    "ToCountry": "US",
    "ToState": "IN",
    "ToZip": "",
    "msg": "Gather End",
}

# <Gather action> on a forwarded call, captured as the query of a GET in a Heroku
# router log line kept in a comment (``/twilio/complete?...``, host pin-proto).
# Public GitHub file, search-index id 31286128767 (repository not named by the index).
GATHER_DIGITS_FORWARDED = {
    "AccountSid": "AC783d892f16b3ceed0145d98370e10131",
    "ApiVersion": "2010-04-01",
    "CallSid": "CA65a1e6aef21760e34e75e4fe73c07716",
    "CallStatus": "in-progress",
    "Called": "+12248033558",
    "CalledCity": "",
    "CalledCountry": "US",
    "CalledState": "IL",
    "CalledVia": "+49494949494912248033558",
    "CalledZip": "",
    "Caller": "+49221669549907",
    "CallerCity": "",
    "CallerCountry": "DE",
    "CallerState": "Köln",
    "CallerZip": "",
    "Digits": "123456",
    "Direction": "inbound",
    "FinishedOnKey": "",
    "ForwardedFrom": "+49494949494912248033558",
    "From": "+49221669549907",
    "FromCity": "",
    "FromCountry": "DE",
    "FromState": "Köln",
    "FromZip": "",
    "To": "+12248033558",
    "ToCity": "",
    "ToCountry": "US",
    "ToState": "IL",
    "ToZip": "",
    "msg": "Gather End",
}

# <Gather action> of an outbound API call, kept in a Go comment beside a GatherEvent
# struct.  Public GitHub file, search-index id 14196125040 (repository not named).
GATHER_DIGITS_OUTBOUND = {
    "msg": "Gather End",
    "Called": "+17752204114",
    "Digits": "1",
    "ToState": "NV",
    "CallerCountry": "US",
    "Direction": "outbound-api",
    "CallerState": "WI",
    "ToZip": "89701",
    "CallSid": "CA98dfba576b41a4650469b78592e24e86",
    "To": "+17752204114",
    "CallerZip": "",
    "ToCountry": "US",
    "FinishedOnKey": "",
    "ApiVersion": "2010-04-01",
    "CalledZip": "89701",
    "CalledCity": "CARSON CITY",
    "CallStatus": "in-progress",
    "From": "+14146221701",
    "AccountSid": "AC791ebe2a4510eb2254d59a9645afe474",
    "CalledCountry": "US",
    "CallerCity": "",
    "Caller": "+14146221701",
    "FromCountry": "US",
    "ToCity": "CARSON CITY",
    "FromCity": "",
    "CalledState": "NV",
    "FromZip": "",
    "FromState": "WI",
}

# <Gather input="speech"> action: the "handle" of a message store export of a bot
# platform (Kore.ai Twilio Voice channel) kept as JSON test data.  The platform
# rewrote From (to the call SID, lower-cased "ca" as it stored it) and added
# fromPhoneNumber and requestId; every other name is Twilio's.  Public GitHub file,
# search-index id 31502555114 (repository not named by the index).
GATHER_SPEECH_KORE = {
    "AccountSid": "ACcea0991dae7309b636cbbc26e1eeff27",
    "ApiVersion": "2010-04-01",
    "ApplicationSid": "APc8f4846a12fdb7071d03db4f6baf9502",
    "CallSid": "ca66967043fd3fc1df4630bda8f5615d38",
    "CallStatus": "in-progress",
    "Called": "+12058963971",
    "CalledCity": "CAMP HILL",
    "CalledCountry": "US",
    "CalledState": "AL",
    "CalledZip": "36850",
    "Caller": "+266696687",
    "CallerCity": "",
    "CallerCountry": "LS",
    "CallerState": "",
    "CallerZip": "",
    "Confidence": "0.97525406",
    "Direction": "inbound",
    "From": "ca66967043fd3fc1df4630bda8f5615d38",
    "FromCity": "",
    "FromCountry": "LS",
    "FromState": "",
    "FromZip": "",
    "Language": "en-US",
    "SpeechResult": "Okay.",
    "To": "+12058963971",
    "ToCity": "CAMP HILL",
    "ToCountry": "US",
    "ToState": "AL",
    "ToZip": "36850",
    "fromPhoneNumber": "266696687",
    "requestId": "tcbr-ca66967043fd3fc1df4630bda8f5615d38",
}

# <Dial record="..." action>: "post data from twillio when calling call_end", a raw
# body kept in a Node script.  No DialBridged (an older capture).  Public GitHub file,
# search-index id 15707297252 (repository not named by the index).
DIAL_RECORDED = {
    "AccountSid": "AC7f2cf53571e10de5a168ab7da888a9c6",
    "ToZip": "98006",
    "FromState": "WA",
    "Called": "+14254096518",
    "FromCountry": "US",
    "CallerCountry": "US",
    "CalledZip": "98006",
    "Direction": "inbound",
    "FromCity": "KIRKLAND",
    "CalledCountry": "US",
    "CallerState": "WA",
    "DialCallDuration": "3",
    "CallSid": "CA260fc9e5613cd829452059786fda9765",
    "CalledState": "WA",
    "From": "+14258828080",
    "CallerZip": "98008",
    "FromZip": "98008",
    "CallStatus": "in-progress",
    "DialCallSid": "CAa7b77857b8cf69961b57c9eee7fb84bf",
    "ToCity": "SEATTLE",
    "ToState": "WA",
    "RecordingUrl": (
        "http://api.twilio.com/2010-04-01/Accounts/AC7f2cf53571e10de5a168ab7da888a9c6"
        "/Recordings/REc57186919305408fdf094ae6f3be53b3"
    ),
    "To": "+14254096518",
    "ToCountry": "US",
    "DialCallStatus": "completed",
    "RecordingDuration": "3",
    "CallerCity": "KIRKLAND",
    "ApiVersion": "2010-04-01",
    "Caller": "+14258828080",
    "CalledCity": "SEATTLE",
    "RecordingSid": "REc57186919305408fdf094ae6f3be53b3",
}

_MINDBRIDGE_RECORDING = (
    "https://api.twilio.com/2010-04-01/Accounts/ACcc830b11ab88f5dd8ccc1430511c2357"
    "/Recordings/RE64545a8c9fbe9d6d191c2423c2c993ce"
)

# <Record transcribeCallback> of an outbound API call (CallStatus=completed: the call
# had ended), with the ``url`` of the callback itself as a parameter.  MindBridge-Health/
# footing, src/test/kotlin/com/mindbridgehealth/footing/api/controller/
# StoryControllerTests.kt (callbackDeserialization_transcriptionComplete_Success).
TRANSCRIPTION_MINDBRIDGE = {
    "ApiVersion": "2010-04-01",
    "TranscriptionType": "fast",
    "TranscriptionUrl": _MINDBRIDGE_RECORDING
    + "/Transcriptions/TR5b7449e016d0716e82afae470221c007",
    "TranscriptionSid": "TR5b7449e016d0716e82afae470221c007",
    "Called": "+19788356697",
    "RecordingSid": "RE64545a8c9fbe9d6d191c2423c2c993ce",
    "CallStatus": "completed",
    "RecordingUrl": _MINDBRIDGE_RECORDING,
    "From": "+18443555050",
    "Direction": "outbound-api",
    "url": "https://webhook.site/ac9cab2b-ff6e-4e88-bf12-eb2bf33cb772/l01xt1w8u21s",
    "AccountSid": "ACcc830b11ab88f5dd8ccc1430511c2357",
    "TranscriptionText": (
        "One of my fondest memories was going and getting ice cream as a little child with "
        "my parents and sick and brothers. My favorite ice cream was from a place called "
        "cabins. I would order orange pineapple ice cream, with pineapple topping, with "
        "cream, and a churning. It was really enjoyable."
    ),
    "Caller": "+18443555050",
    "TranscriptionStatus": "completed",
    "CallSid": "CAb0b939e902e7a396204cd7ba8c85acbb",
    "To": "+19788356697",
}

# A voicemail's transcribeCallback on a forwarded inbound call: the parameters listed
# (URL-encoded) in the docblock of a Laravel job ProcessTwilioVoicemail::handle.
# Public GitHub file, search-index id 47261005871 (repository not named by the index).
_VOICEMAIL_RECORDING = (
    "https://api.twilio.com/2010-04-01/Accounts/AC3f1496421dea2c8446672cdf90ff4c7a"
    "/Recordings/RE2b568e31f38645c9c5c3ed190a0da06a"
)
TRANSCRIPTION_VOICEMAIL = {
    "ApiVersion": "2010-04-01",
    "TranscriptionType": "fast",
    "TranscriptionUrl": _VOICEMAIL_RECORDING + "/Transcriptions/TRd16d9b52364b51a7e7b3cb7458017463",
    "TranscriptionSid": "TRd16d9b52364b51a7e7b3cb7458017463",
    "Called": "+15024105645",
    "RecordingSid": "RE2b568e31f38645c9c5c3ed190a0da06a",
    "CallStatus": "completed",
    "RecordingUrl": _VOICEMAIL_RECORDING,
    "From": "+14708231590",
    "Direction": "inbound",
    "url": "http://bwebb.ngrok.io/webhooks/twilio/voicemail/store/RGe8jL",
    "AccountSid": "AC3f1496421dea2c8446672cdf90ff4c7a",
    "TranscriptionText": "123123 test.",
    "Caller": "+14708231590",
    "TranscriptionStatus": "completed",
    "CallSid": "CAbea03a48a7be37048368488684116087",
    "To": "+15024105645",
    "ForwardedFrom": "+15024105645",
}

# A recording status callback of <Record recordingStatusCallback> (RecordingSource=
# RecordVerb; none from <Dial record> or a conference was found).  MindBridge-Health/
# footing, StoryControllerTests.kt (callbackDeserialization_RecordingComplete_Success).
RECORDING_RECORD_VERB = {
    "RecordingSource": "RecordVerb",
    "RecordingSid": "RE64545a8c9fbe9d6d191c2423c2c993ce",
    "RecordingUrl": _MINDBRIDGE_RECORDING,
    "RecordingStatus": "completed",
    "RecordingChannels": "1",
    "ErrorCode": "0",
    "CallSid": "CAb0b939e902e7a396204cd7ba8c85acbb",
    "RecordingStartTime": "Mon, 03 Jul 2023 21:45:28 +0000",
    "AccountSid": "ACcc830b11ab88f5dd8ccc1430511c2357",
    "RecordingDuration": "21",
}

# Conversations onMessageAdded from the SDK: "theData" of a request logged by a Heroku
# app (user-agent TwilioProxy/1.1, 2021-08-10), kept in a log file of the project; the
# capture redacted the AccountSid ("ACa...3"), replaced here by a fresh AC SID.
# Public GitHub file, search-index id 39800902782 (repository not named by the index);
# the same shape is kept twice more in that project (ids 40005213601, 38428181074).
CONVERSATIONS_MESSAGE_ADDED = {
    "EventType": "onMessageAdded",
    "Attributes": "{}",
    "DateCreated": "2021-08-10T18:00:58.111Z",
    "Index": "35",
    "MessageSid": "IM8d613ccb9016450fa29faecfaa7bb6f4",
    "AccountSid": "AC5d3c1b0a9e8f7d6c5b4a39281706f5e4",
    "Source": "SDK",
    "ClientIdentity": "dave",
    "RetryCount": "0",
    "Author": "dave",
    "ParticipantSid": "MBc58b06998c564765bbff41cfd3a03219",
    "Body": "two",
    "ConversationSid": "CH6c25138e952448e3b27ef8164097a1c7",
}

#: (name, parameters, the kind Twilio's family is).
CAPTURES: list[tuple[str, dict[str, str], str]] = [
    ("gather-digits-django", GATHER_DIGITS_DJANGO, "gather"),
    ("gather-digits-forwarded", GATHER_DIGITS_FORWARDED, "gather"),
    ("gather-digits-outbound", GATHER_DIGITS_OUTBOUND, "gather"),
    ("gather-speech-kore", GATHER_SPEECH_KORE, "gather"),
    ("dial-recorded", DIAL_RECORDED, "dial"),
    ("transcription-mindbridge", TRANSCRIPTION_MINDBRIDGE, "transcription"),
    ("transcription-voicemail", TRANSCRIPTION_VOICEMAIL, "transcription"),
    ("recording-record-verb", RECORDING_RECORD_VERB, "recording"),
    ("conversations-message-added", CONVERSATIONS_MESSAGE_ADDED, "conversations"),
]


# -- unit level: recognition -------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "kind"), [pytest.param(p, k, id=name) for name, p, k in CAPTURES]
)
def test_to_event_recognises_each_capture_as_its_family(params: dict[str, str], kind: str) -> None:
    event = to_event(list(params.items()))
    assert event is not None
    assert event.kind == kind
    assert dict(event.raw) == {name: (value,) for name, value in params.items()}


# -- the services ------------------------------------------------------------------------
def say(text: str) -> str:
    return f"<Response><Say>{text}</Say></Response>"


@every_callback
class Voice(CallLog[twilio.CallStatusEvent], twilio.CallStatusService):
    """Every CallStatusService callback; each answers ``say(<its name>)``."""

    def default_reply(self, name: str) -> object:
        return say(name)


@every_callback
class Messages(CallLog[twilio.SmsStatusChangeEvent], twilio.SmsStatusService):
    pass


@every_callback
class Recordings(CallLog[twilio.RecordingStatusEvent], twilio.RecordingStatusService):
    pass


@every_callback
class Conferences(CallLog[twilio.ConferenceEvent], twilio.ConferenceService):
    pass


@every_callback
class Conversations(CallLog[twilio.ConversationsEvent], twilio.ConversationsService):
    pass


@every_callback
class Debugger(CallLog[twilio.DebuggerEvent], twilio.DebuggerService):
    pass


@every_callback
class TaskRouter(CallLog[twilio.TaskRouterEvent], twilio.TaskRouterService):
    pass


@every_callback
class Fallback(CallLog[twilio.TwilioEvent], twilio.FallbackService):
    pass


class Services:
    """One service of every class, each defining every callback."""

    def __init__(self) -> None:
        self.voice = Voice()
        self.messages = Messages()
        self.recordings = Recordings()
        self.conferences = Conferences()
        self.conversations = Conversations()
        self.debugger = Debugger()
        self.taskrouter = TaskRouter()
        self.fallback = Fallback()

    def all(self) -> list[CallLog[twilio.TwilioEvent]]:
        return [
            self.voice, self.messages, self.recordings, self.conferences,  # type: ignore[list-item]
            self.conversations, self.debugger, self.taskrouter, self.fallback,  # type: ignore[list-item]
        ]  # fmt: skip

    def reset(self) -> None:
        for service in self.all():
            service.reset()

    def ran(self) -> list[str]:
        """Every callback that ran, as ``<service class>.<callback>``."""
        return [f"{type(s).__name__}.{name}" for s in self.all() for name in s.names()]


@pytest.fixture(scope="module")
def services() -> Services:
    return Services()


@pytest.fixture(scope="module")
def listener(services: Services) -> Iterator[twilio.Listener]:
    with running(*services.all()) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _fresh(services: Services) -> Iterator[None]:
    services.reset()
    yield
    services.reset()


def post(listener: twilio.Listener, params: dict[str, str]) -> httpx.Response:
    return signed_post(listener.url, params, TOKEN)


def assert_twiml(response: httpx.Response, body: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].partition(";")[0].strip() == "text/xml"
    assert response.text == XML_DECLARATION + body


# -- over HTTP: <Gather> -----------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        pytest.param(GATHER_DIGITS_DJANGO, id="django"),
        pytest.param(GATHER_DIGITS_FORWARDED, id="forwarded"),
        pytest.param(GATHER_DIGITS_OUTBOUND, id="outbound"),
    ],
)
def test_captured_gather_digits_reach_on_gather(
    listener: twilio.Listener, services: Services, params: dict[str, str]
) -> None:
    response = post(listener, params)
    assert_twiml(response, say("on_gather"))
    assert services.ran() == ["Voice.on_gather"]
    _, event = services.voice.only()
    assert isinstance(event, twilio.GatherEvent)
    assert event.kind == "gather"
    assert event.digits == params["Digits"]
    assert event.finished_on_key == ""  # sent empty: read as sent
    assert event.speech_result is None
    assert event.confidence is None
    assert event.call_sid == params["CallSid"]
    assert event.call_status == "in-progress"
    assert event.direction == params["Direction"]
    assert event.from_ == params["From"]
    assert event.to == params["To"]
    assert event.callback_source is None
    assert event["msg"] == "Gather End"
    assert event.forwarded_from == params.get("ForwardedFrom")
    assert event.caller_state == params["CallerState"]


def test_captured_gather_speech_reaches_on_gather_with_its_confidence(
    listener: twilio.Listener, services: Services
) -> None:
    response = post(listener, GATHER_SPEECH_KORE)
    assert_twiml(response, say("on_gather"))
    assert services.ran() == ["Voice.on_gather"]
    _, event = services.voice.only()
    assert isinstance(event, twilio.GatherEvent)
    assert event.speech_result == "Okay."
    assert event.confidence == pytest.approx(0.97525406)
    assert event.digits is None
    assert event.finished_on_key is None  # not sent with speech
    assert event["Language"] == "en-US"
    assert event.call_sid == "ca66967043fd3fc1df4630bda8f5615d38"
    assert event.called_city == "CAMP HILL"


# -- <Dial> ------------------------------------------------------------------------------
def test_captured_recorded_dial_reaches_on_dial(
    listener: twilio.Listener, services: Services
) -> None:
    response = post(listener, DIAL_RECORDED)
    assert_twiml(response, say("on_dial"))
    assert services.ran() == ["Voice.on_dial"]
    _, event = services.voice.only()
    assert isinstance(event, twilio.DialEvent)
    assert event.kind == "dial"
    assert event.status == "completed"
    assert event.dial_call_status == "completed"
    assert event.dial_call_sid == "CAa7b77857b8cf69961b57c9eee7fb84bf"
    assert event.dial_call_duration == 3
    assert event.dial_bridged is None  # not sent in this capture
    assert event.recording_url == DIAL_RECORDED["RecordingUrl"]
    assert event.recording_sid == "REc57186919305408fdf094ae6f3be53b3"
    assert event.recording_duration == 3
    assert event.call_sid == "CA260fc9e5613cd829452059786fda9765"
    assert event.call_status == "in-progress"
    assert event.caller_city == "KIRKLAND"


# -- transcriptions ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        pytest.param(TRANSCRIPTION_MINDBRIDGE, id="outbound-api"),
        pytest.param(TRANSCRIPTION_VOICEMAIL, id="voicemail"),
    ],
)
def test_captured_transcription_reaches_on_transcription(
    listener: twilio.Listener, services: Services, params: dict[str, str]
) -> None:
    response = post(listener, params)
    assert_empty_twiml(response)
    assert response.text.startswith(XML_DECLARATION), response.text
    # CallStatus=completed comes with it: it must not reach on_completed.
    assert services.ran() == ["Voice.on_transcription"]
    _, event = services.voice.only()
    assert isinstance(event, twilio.TranscriptionEvent)
    assert event.kind == "transcription"
    assert event.status == "completed"
    assert event.sid == params["TranscriptionSid"]
    assert event.transcription_sid == params["TranscriptionSid"]
    assert event.transcription_text == params["TranscriptionText"]
    assert event.transcription_status == "completed"
    assert event.transcription_url == params["TranscriptionUrl"]
    assert event.recording_sid == params["RecordingSid"]
    assert event.recording_url == params["RecordingUrl"]
    assert event.call_sid == params["CallSid"]
    assert event.call_status == "completed"
    assert event.direction == params["Direction"]
    assert event["TranscriptionType"] == "fast"
    assert event["url"] == params["url"]


# -- recording status --------------------------------------------------------------------
def test_captured_recording_status_reaches_on_completed_of_recordings(
    listener: twilio.Listener, services: Services
) -> None:
    response = post(listener, RECORDING_RECORD_VERB)
    assert_empty_twiml(response)
    assert services.ran() == ["Recordings.on_completed"]
    _, event = services.recordings.only()
    assert isinstance(event, twilio.RecordingStatusEvent)
    assert event.kind == "recording"
    assert event.recording_status == "completed"
    assert event.recording_sid == "RE64545a8c9fbe9d6d191c2423c2c993ce"
    assert event.recording_url == _MINDBRIDGE_RECORDING
    assert event.recording_duration == 21
    assert event.recording_channels == 1
    assert event.recording_source == "RecordVerb"
    assert event.recording_start_time == datetime(2023, 7, 3, 21, 45, 28, tzinfo=UTC)
    assert event.call_sid == "CAb0b939e902e7a396204cd7ba8c85acbb"
    assert event.conference_sid is None
    assert event["ErrorCode"] == "0"


# -- Conversations -----------------------------------------------------------------------
def test_captured_message_added_reaches_on_message_added(
    listener: twilio.Listener, services: Services
) -> None:
    response = post(listener, CONVERSATIONS_MESSAGE_ADDED)
    assert_empty_twiml(response)
    assert services.ran() == ["Conversations.on_message_added"]
    _, event = services.conversations.only()
    assert isinstance(event, twilio.ConversationsEvent)
    assert event.kind == "conversations"
    assert event.event_type == "onMessageAdded"
    assert event.is_pre_event is False
    assert event.conversation_sid == "CH6c25138e952448e3b27ef8164097a1c7"
    assert event.message_sid == "IM8d613ccb9016450fa29faecfaa7bb6f4"
    assert event.participant_sid == "MBc58b06998c564765bbff41cfd3a03219"
    assert event.body == "two"
    assert event.author == "dave"
    assert event.index == 35
    assert event.source == "SDK"
    assert event.client_identity == "dave"
    assert event.attributes == {}
    assert event.media == ()
    assert dict(event.messaging_binding) == {}
    assert event.date_created == datetime(2021, 8, 10, 18, 0, 58, 111000, tzinfo=UTC)
    assert event["RetryCount"] == "0"
