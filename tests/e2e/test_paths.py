"""Services attached at a path of their own: routing by the request's path.

Where parameters alone could be read as another kind, a webhook's URL can point
at a path where the service of the intended kind is attached; there, that kind
is tried first.  Each path is signed as its own URL, behind a proxy too.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import twilio_trigger as twilio
from tests.payloads import call_status_payload, signed_post
from twilio_trigger import ServiceError

from ._support import TOKEN, running, wait_until


class Heard:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def note(self, what: str) -> None:
        with self.lock:
            self.calls.append(what)

    def seen(self) -> list[str]:
        with self.lock:
            return list(self.calls)


class Calls(twilio.CallStatusService):
    def __init__(self, heard: Heard) -> None:
        self.heard = heard

    def on_completed(self, event: twilio.CallStatusEvent) -> None:
        self.heard.note(f"call {event.sid}")


class Recordings(twilio.RecordingStatusService):
    def __init__(self, heard: Heard) -> None:
        self.heard = heard

    def on_completed(self, event: twilio.RecordingStatusEvent) -> None:
        self.heard.note(f"recording {event.sid}")


def ambiguous() -> dict[str, str]:
    """A call's status callback that also carries a recording's status."""
    params = call_status_payload("completed")
    params["RecordingStatus"] = "completed"
    return params


def test_a_path_of_its_own_decides_between_kinds_the_parameters_leave_open() -> None:
    heard = Heard()
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    listener.attach(Recordings(heard))
    listener.attach(Calls(heard), path="/calls")
    with listener:
        base = listener.url.rstrip("/")
        at_root, at_calls = ambiguous(), ambiguous()
        assert signed_post(base + "/", at_root, TOKEN).status_code == 200
        assert signed_post(base + "/calls", at_calls, TOKEN).status_code == 200
    # At the listener's own path the registry's order decides: a recording.
    assert heard.seen() == [
        f"recording {at_root['RecordingSid']}",
        f"call {at_calls['CallSid']}",
    ]


def test_a_path_without_a_service_is_not_found_and_one_detached_is_gone() -> None:
    heard = Heard()
    calls = Calls(heard)
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    listener.attach(calls, path="/voice/status")
    with listener:
        base = listener.url.rstrip("/")
        params = call_status_payload("completed")
        assert signed_post(base + "/voice/other", params, TOKEN).status_code == 404
        assert signed_post(base + "/voice/status", params, TOKEN).status_code == 200
        listener.detach(calls)
        assert signed_post(base + "/voice/status", params, TOKEN).status_code == 404
    assert heard.seen() == [f"call {params['CallSid']}"]


def test_each_path_is_signed_as_its_own_url() -> None:
    heard = Heard()
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])
    listener.attach(Calls(heard), path="/calls")
    with listener:
        base = listener.url.rstrip("/")
        params = call_status_payload("completed")
        # Signed for the listener's own path, posted to the service's: refused.
        answer = signed_post(base + "/calls", params, TOKEN, sign_url=base + "/")
        assert answer.status_code == 403
    assert heard.seen() == []


@pytest.mark.parametrize(
    ("path", "public_url", "signed_for"),
    [
        ("/twilio", "https://hooks.example.com/api/twilio", "https://hooks.example.com/api/calls"),
        ("/", "https://hooks.example.com/", "https://hooks.example.com/calls"),
        ("/", "https://hooks.example.com/prefix", "https://hooks.example.com/prefix/calls"),
        ("/twilio", "https://hooks.example.com/elsewhere", "https://hooks.example.com/calls"),
    ],
)
def test_behind_a_proxy_the_services_path_replaces_the_listeners_in_public_url(
    path: str, public_url: str, signed_for: str
) -> None:
    heard = Heard()
    listener = twilio.Listener(
        0, host="127.0.0.1", auth_tokens=[TOKEN], path=path, public_url=public_url
    )
    listener.attach(Calls(heard), path="/calls")
    with listener:
        origin = listener.url.rstrip("/").removesuffix(path.rstrip("/"))
        params = call_status_payload("completed")
        answer = signed_post(origin + "/calls", params, TOKEN, sign_url=signed_for)
        assert answer.status_code == 200, answer.text
    assert heard.seen() == [f"call {params['CallSid']}"]


@pytest.mark.parametrize("path", ["calls", "/calls?x=1", "/a#b", "/healthz", "/metrics"])
def test_a_path_that_cannot_be_a_services_is_refused(path: str) -> None:
    listener = twilio.Listener(0, auth_tokens=[TOKEN], healthz_path="/healthz", metrics=True)
    with pytest.raises(ServiceError):
        listener.attach(Calls(Heard()), path=path)


def test_an_event_stored_at_a_path_is_dispatched_by_the_workers_as_its_kind(
    tmp_path: Path,
) -> None:
    heard = Heard()
    with running(
        Recordings(heard), inbox=f"sqlite:///{tmp_path}/events.db", concurrency=1
    ) as listener:
        listener.attach(Calls(heard), path="/calls")
        params = ambiguous()
        answer = signed_post(listener.url.rstrip("/") + "/calls", params, TOKEN)
        assert answer.status_code == 200
        wait_until(lambda: heard.seen() == [f"call {params['CallSid']}"], "the call dispatched")
