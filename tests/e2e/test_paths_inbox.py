"""Services at paths of their own, with a durable inbox: a stored event is handed,
by the workers, to the service of the path its request came to."""

from __future__ import annotations

import threading
from pathlib import Path

import twilio_trigger as twilio
from tests.payloads import signed_post
from twilio_trigger._asgi import WebhookApp
from twilio_trigger._core.kinds import kind_named
from twilio_trigger._delivery import Delivery
from twilio_trigger.testing import conference_params

from ._support import TOKEN, running, wait_until


class Rooms(twilio.ConferenceService):
    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[twilio.ConferenceEvent] = []
        self.lock = threading.Lock()

    def on_participant_join(self, event: twilio.ConferenceEvent) -> None:
        with self.lock:
            self.seen.append(event)


def test_a_stored_event_reaches_the_service_of_its_path(tmp_path: Path) -> None:
    support, sales = Rooms("support"), Rooms("sales")
    with running(support, inbox=f"sqlite:///{tmp_path}/events.db") as listener:
        listener.attach(sales, path="/conferences/sales")
        root = listener.url
        at_path = root.rstrip("/") + "/conferences/sales?team=emea"
        first, second = conference_params(), conference_params()
        assert signed_post(root, first, TOKEN).status_code == 200
        assert signed_post(at_path, second, TOKEN).status_code == 200
        wait_until(lambda: len(support.seen) == 1 and len(sales.seen) == 1, "both dispatched")
    assert support.seen[0].conference_sid == first["ConferenceSid"]
    assert support.seen[0].path == "/"
    (event,) = sales.seen
    assert event.conference_sid == second["ConferenceSid"]
    # Where the request came is kept with the stored event.
    assert event.path == "/conferences/sales"
    assert event.query == {"team": ("emea",)}


def test_a_conversations_pre_event_is_answered_within_its_own_time_limit() -> None:
    # Twilio waits 5 s for a pre-event: the kind's limit is a little less, below
    # the listener's, so that the answer comes before Twilio gives up.
    def pipeline(callback_timeout: float) -> Delivery:
        app = twilio.Listener(0, auth_tokens=[TOKEN], callback_timeout=callback_timeout).asgi
        assert isinstance(app, WebhookApp)
        return app.delivery

    usual = pipeline(12)
    assert usual._deadlines_for(kind_named("conversations"))._limit == 4.5
    assert usual._deadlines_for(kind_named("assignment"))._limit == 4.5
    assert usual._deadlines_for(kind_named("sms"))._limit == 12
    assert pipeline(2)._deadlines_for(kind_named("conversations"))._limit == 2
