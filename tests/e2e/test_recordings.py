"""Recording status callbacks over real HTTP: routed by ``RecordingStatus``, typed.

The payloads are written out here from Twilio's documentation of the
``recordingStatusCallback`` request (not taken from the package's test kit), and
signed by twilio-python's ``RequestValidator``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post

from ._support import (
    TOKEN,
    CallRecorder,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    records,
    running,
)

ACCOUNT = "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978"
STARTED = "Tue, 14 Nov 2023 18:29:13 +0000"
STARTED_AT = datetime(2023, 11, 14, 18, 29, 13, tzinfo=UTC)


def recording_payload(status: str, **overrides: str) -> dict[str, str]:
    """A recording status callback as Twilio sends it (fresh RecordingSid and CallSid)."""
    recording = "RE" + uuid.uuid4().hex
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": "CA" + uuid.uuid4().hex,
        "RecordingSid": recording,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{recording}",
        "RecordingStatus": status,
        "RecordingDuration": {"in-progress": "-1", "completed": "45", "absent": "0"}[status],
        "RecordingChannels": "2",
        "RecordingStartTime": STARTED,
        "RecordingSource": "DialVerb",
        "RecordingTrack": "both",
        "ErrorCode": "0",
    }
    params.update(overrides)
    return params


@dataclass(frozen=True)
class Seen:
    callback: str
    event: twilio.RecordingStatusEvent
    thread: int


class RecordingTracker(twilio.RecordingStatusService):
    """Every recording callback, async and plain; ``fail`` names one that raises."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.fail: str | None = None
        self.lock = threading.Lock()

    def _record(self, callback: str, event: twilio.RecordingStatusEvent) -> None:
        with self.lock:
            self.seen.append(Seen(callback, event, threading.get_ident()))
        if self.fail == callback:
            raise RuntimeError(f"could not fetch {event.recording_url}")

    async def on_in_progress(self, event: twilio.RecordingStatusEvent) -> None:
        self._record("on_in_progress", event)

    def on_completed(self, event: twilio.RecordingStatusEvent) -> None:
        self._record("on_completed", event)

    async def on_absent(self, event: twilio.RecordingStatusEvent) -> None:
        self._record("on_absent", event)

    def only(self) -> Seen:
        with self.lock:
            assert len(self.seen) == 1, [s.callback for s in self.seen]
            return self.seen[0]


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def tracker() -> RecordingTracker:
    return RecordingTracker()


@pytest.fixture(scope="module")
def listener(recorder: Recorder, tracker: RecordingTracker) -> Iterator[twilio.Listener]:
    with running(tracker, CallRecorder(recorder), SmsRecorder(recorder)) as listener:
        yield listener


@pytest.fixture(scope="module")
def client(listener: twilio.Listener) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh(recorder: Recorder, tracker: RecordingTracker) -> None:
    recorder.reset()
    with tracker.lock:
        tracker.seen.clear()
        tracker.fail = None


def post(
    client: httpx.Client,
    listener: twilio.Listener,
    params: dict[str, str],
    token: str | None = None,
) -> httpx.Response:
    headers = {"I-Twilio-Idempotency-Token": token} if token else None
    return signed_post(listener.url, params, TOKEN, client=client, headers=headers)


@pytest.mark.parametrize(
    ("status", "callback", "duration"),
    [
        ("in-progress", "on_in_progress", -1),
        ("completed", "on_completed", 45),
        ("absent", "on_absent", 0),
    ],
)
def test_each_recording_status_reaches_its_callback_with_a_typed_event(
    client: httpx.Client,
    listener: twilio.Listener,
    recorder: Recorder,
    tracker: RecordingTracker,
    status: str,
    callback: str,
    duration: int,
) -> None:
    params = recording_payload(status)
    assert_empty_twiml(post(client, listener, params))
    seen = tracker.only()
    assert seen.callback == callback
    event = seen.event
    assert type(event) is twilio.RecordingStatusEvent
    assert event.kind == "recording"
    assert event.sid == params["RecordingSid"]
    assert event.status == status
    assert event.recording_status == status
    assert event.recording_sid == params["RecordingSid"]
    assert event.recording_url == params["RecordingUrl"]
    assert event.call_sid == params["CallSid"]
    assert type(event.recording_duration) is int
    assert event.recording_duration == duration
    assert type(event.recording_channels) is int
    assert event.recording_channels == 2
    start = event.recording_start_time
    assert isinstance(start, datetime)
    assert start.tzinfo is not None
    assert start.utcoffset() is not None
    assert start == STARTED_AT
    assert type(event.error_code) is int
    assert event.error_code == 0
    assert event.recording_source == "DialVerb"
    assert event.recording_track == "both"
    assert event.account_sid == ACCOUNT
    assert event.params == tuple(params.items())
    # Never taken for a call event, although it carries the call's CallSid.
    assert recorder.calls == []


def test_recording_with_a_call_status_too_is_still_a_recording(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder, tracker: RecordingTracker
) -> None:
    params = recording_payload("completed", CallStatus="completed")
    assert_empty_twiml(post(client, listener, params))
    assert tracker.only().callback == "on_completed"
    assert recorder.calls == []


def test_a_call_status_callback_with_recording_fields_stays_a_call(
    client: httpx.Client, listener: twilio.Listener, recorder: Recorder, tracker: RecordingTracker
) -> None:
    # A call's completed callback carries RecordingSid/RecordingUrl but no
    # RecordingStatus: it is the call's event.
    params = recording_payload("completed")
    del params["RecordingStatus"]
    params.update(CallStatus="completed", CallbackSource="call-progress-events", CallDuration="47")
    assert_empty_twiml(post(client, listener, params))
    invocation = recorder.only()
    assert (invocation.kind, invocation.callback) == ("call", "on_completed")
    assert isinstance(invocation.event, twilio.CallStatusEvent)
    assert invocation.event.recording_sid == params["RecordingSid"]
    assert tracker.seen == []


def test_failed_recording_callback_answers_500_and_logs_it(
    client: httpx.Client,
    listener: twilio.Listener,
    tracker: RecordingTracker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker.fail = "on_completed"
    response = post(client, listener, recording_payload("completed"))
    assert response.status_code == 500
    assert "fetch" not in response.text
    [error] = records(caplog, logging.ERROR)
    assert "RecordingTracker.on_completed" in error.getMessage()
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], RuntimeError)


def test_a_retried_recording_callback_runs_once(
    client: httpx.Client, listener: twilio.Listener, tracker: RecordingTracker
) -> None:
    params = recording_payload("completed")
    token = str(uuid.uuid4())
    for _ in range(3):
        assert_empty_twiml(post(client, listener, params, token))
    assert tracker.only().callback == "on_completed"


def test_a_recording_in_progress_after_completed_is_marked_stale(
    client: httpx.Client, listener: twilio.Listener, tracker: RecordingTracker
) -> None:
    done = recording_payload("completed")
    late = recording_payload("in-progress", RecordingSid=done["RecordingSid"])
    assert_empty_twiml(post(client, listener, done))
    assert_empty_twiml(post(client, listener, late))
    with tracker.lock:
        first, second = tracker.seen
    assert (first.callback, first.event.stale) == ("on_completed", False)
    assert (second.callback, second.event.stale) == ("on_in_progress", True)
    assert second.event.previous_status == "completed"


def test_recording_status_is_matched_case_and_space_insensitively(
    client: httpx.Client, listener: twilio.Listener, tracker: RecordingTracker
) -> None:
    params = recording_payload("completed", RecordingStatus=" Completed")
    assert_empty_twiml(post(client, listener, params))
    assert tracker.only().callback == "on_completed"


def test_unknown_recording_status_is_acknowledged_once_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = RecordingTracker()
    with running(tracker) as listener:
        for _ in range(2):
            params = recording_payload("completed", RecordingStatus="paused")
            assert_empty_twiml(signed_post(listener.url, params, TOKEN))
    assert tracker.seen == []
    warned = [r for r in records(caplog, logging.WARNING) if "paused" in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in warned]


def test_without_a_recording_service_the_event_is_acknowledged_with_a_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    with running(CallRecorder(recorder)) as listener:
        assert_empty_twiml(signed_post(listener.url, recording_payload("completed"), TOKEN))
    assert recorder.calls == []
    [hint] = records(caplog, logging.WARNING)
    assert "RecordingStatusService" in hint.getMessage()
    assert "on_completed" in hint.getMessage()
    assert "RecordingStatusEvent" in hint.getMessage()


def test_a_service_with_only_some_recording_callbacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class OnlyCompleted(twilio.RecordingStatusService):
        def __init__(self) -> None:
            self.sids: list[str | None] = []

        def on_completed(self, event: twilio.RecordingStatusEvent) -> None:
            self.sids.append(event.recording_sid)

    service = OnlyCompleted()
    with running(service) as listener:
        absent = recording_payload("absent")
        completed = recording_payload("completed")
        assert_empty_twiml(signed_post(listener.url, absent, TOKEN))
        assert_empty_twiml(signed_post(listener.url, completed, TOKEN))
    assert service.sids == [completed["RecordingSid"]]
    [hint] = records(caplog, logging.WARNING)
    assert "on_absent" in hint.getMessage()
