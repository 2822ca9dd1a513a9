"""The registry of kinds is the one table everything reads.

For every registered kind: its own payloads are recognised as that kind and reach
the callback of their event; the test kit builds and sends them; ``twilio-trigger
send`` sends them; the metrics have series for the kind from the start; the
inspector's kind filter offers it.  A kind added to the registry is covered here
without a line of this file changing.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import twilio_trigger as twilio
from twilio_trigger._core.kinds import FALLBACK, KINDS, Kind, kind_named, kind_of_event
from twilio_trigger._core.routing import to_event, unrecognised_event
from twilio_trigger.cli import cli
from twilio_trigger.testing import TestClient

from ._support import TOKEN, running, wait_until

pytest.importorskip("prometheus_client")


class Heard:
    """What the services of every kind were called with: (kind, callback, sid)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, twilio.TwilioEvent]] = []
        self.lock = threading.Lock()

    def note(self, kind: str, callback: str, event: twilio.TwilioEvent) -> None:
        with self.lock:
            self.calls.append((kind, callback, event))

    def saw(self, kind: str, callback: str, sid: str | None) -> bool:
        """Whether *callback* got an event of *kind* carrying *sid* (any, for ``None``)."""
        with self.lock:
            return any(
                (k, c) == (kind, callback) and (sid is None or sid in dict(event.params).values())
                for k, c, event in self.calls
            )


def service_for(kind: Kind, heard: Heard) -> object:
    """An instance of a subclass of *kind*'s service base class with every callback
    of the base class (of all its kinds), each noting the kind of event it got."""

    def make(name: str) -> object:
        def callback(self: object, event: twilio.TwilioEvent) -> None:
            heard.note(event.kind, name, event)

        return callback

    base = kind.service_class
    methods = {name: make(name) for name in base.callback_names}
    cls = type(f"Every{base.__name__}", (base,), methods)
    return cls()


def every_service(heard: Heard) -> list[object]:
    """One service of each base class, each with every callback."""
    firsts = {kind.service_class: kind for kind in reversed(KINDS)}
    return [service_for(kind, heard) for kind in firsts.values()]


def every_event() -> Iterator[tuple[Kind, str | None]]:
    for kind in KINDS:
        # A kind whose events all go to one callback has no values to list:
        # its factory's usual payload stands for them.
        for event in kind.events or (None,):
            yield kind, event


EVERY_EVENT = [pytest.param(k, e, id=f"{k.name}-{e}") for k, e in every_event()]
RECOGNISED = [p for p in EVERY_EVENT if p.values[0] is not FALLBACK]


@pytest.fixture
def heard() -> Heard:
    return Heard()


# -- the rows themselves ------------------------------------------------------------
def payload_of(kind: Kind, event: str | None, **overrides: object) -> dict[str, str]:
    return kind.payload(**overrides) if event is None else kind.payload(event, **overrides)


def carried(kind: Kind, event: str | None, sid: str | None) -> str | None:
    """*sid* if the kind's payload for *event* carries it (a Conversations user event
    has no conversation's SID), else ``None``: any event will do."""
    return sid if sid is not None and sid in payload_of(kind, event, sid=sid).values() else None


@pytest.mark.parametrize(("kind", "event"), RECOGNISED)
def test_each_payload_is_recognised_as_its_own_kind_and_event(
    kind: Kind, event: str | None
) -> None:
    params = payload_of(kind, event)
    routed = to_event(list(params.items()))
    assert routed is not None
    assert routed.kind == kind.name
    assert type(routed) is kind.event_class
    assert kind_of_event(routed) is kind
    if event is not None:
        # As sent: some kinds' values come in upper case (a Debugger alert's ``ERROR``).
        assert routed.status is not None
        assert routed.status.strip().lower() == event.lower()
    assert kind.callback_for(routed.status) in kind.callbacks
    if routed.sid is not None or event != "onConversationAdd":  # no SID before it exists
        assert routed.sid is not None
        assert routed.sid[:2] in kind.sid_prefixes


def test_a_request_no_kind_recognises_is_of_the_fallback_kind() -> None:
    params = FALLBACK.payload()
    assert to_event(list(params.items())) is None
    event = unrecognised_event(list(params.items()))
    assert kind_of_event(event) is FALLBACK
    assert event.kind == "other"
    assert FALLBACK.callback_for(event.status) == "on_event"


def test_the_registry_is_consistent() -> None:
    names = [kind.name for kind in KINDS]
    assert len(set(names)) == len(names)
    for kind in KINDS:
        assert kind_named(kind.name) is kind
        assert len(set(kind.callbacks)) == len(kind.callbacks)
        assert all(re.fullmatch(r"on_[a-z0-9_]+", name) for name in kind.callbacks)
        assert kind.name in kind.service_class.kinds
        assert set(kind.callbacks) <= set(kind.service_class.callback_names)
        assert kind.event_class.kind == kind.name
        if kind.ranks:
            assert set(kind.ranks) == set(kind.events), kind.name
        for group in kind.signals:
            assert set(group) <= {*kind.route_by, *kind.sid_params, *group}


def test_a_status_differing_only_in_case_or_spaces_finds_its_callback() -> None:
    sms = kind_named("sms")
    assert sms.callback_for(" Delivered") == "on_delivered"
    assert sms.callback_for("on_delivered") is None
    assert sms.callback_for("teleported") is None


def test_each_service_base_class_has_one_main_kind_and_no_callback_twice() -> None:
    for base in {kind.service_class for kind in KINDS}:
        assert kind_named(base.kind).service_class is base
        assert base.kinds[0] == base.kind
        assert len(set(base.callback_names)) == len(base.callback_names)


# -- the test kit ---------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "event"), EVERY_EVENT)
def test_the_test_kit_sends_every_event_of_every_kind(
    kind: Kind, event: str | None, heard: Heard
) -> None:
    listener = twilio.Listener(auth_tokens=[TOKEN])
    listener.attach(service_for(kind, heard))
    sid = kind.sid_prefixes[0] + "0" * 31 + "7" if kind.sid_prefixes else None
    with TestClient(listener) as client:
        answer = client.send(kind.name, event, sid=sid)
    assert answer.status_code in (200, 204), answer.text
    assert heard.saw(kind.name, kind.callback_for(event) or "", carried(kind, event, sid))


def test_the_test_kit_names_the_kinds_when_asked_for_another() -> None:
    client = TestClient(twilio.Listener(auth_tokens=[TOKEN]))
    with client, pytest.raises(ValueError, match="the kinds are") as caught:
        client.send("fax", "received")
    for kind in KINDS:
        assert kind.name in str(caught.value)


# -- the command line -----------------------------------------------------------------
def test_twilio_trigger_send_sends_every_kind(heard: Heard) -> None:
    runner = CliRunner()
    with running(*every_service(heard)) as listener:
        for kind in KINDS:
            event = kind.events[-1] if kind.events else None
            sid = kind.sid_prefixes[0] + "0" * 31 + "9" if kind.sid_prefixes else None
            args = ["send", kind.name, *([event] if event else [])]
            args += ["--url", listener.url, "--auth-token", TOKEN]
            args += ["--sid", sid] if sid else []
            result = runner.invoke(cli, args)
            assert result.exit_code == 0, result.output
            sent = functools.partial(
                heard.saw, kind.name, kind.callback_for(event) or "", carried(kind, event, sid)
            )
            wait_until(sent, f"{kind.name} {event} sent")


def test_send_offers_every_kind_in_its_help() -> None:
    result = CliRunner().invoke(cli, ["send", "--help"])
    assert result.exit_code == 0
    for kind in KINDS:
        assert kind.name in result.output


# -- metrics and the inspector --------------------------------------------------------
def test_every_kind_has_metric_series_from_the_start(heard: Heard) -> None:
    with running(metrics=True) as listener:
        text = httpx.get(listener.url.rstrip("/") + "/metrics", timeout=10).text
    for kind in KINDS:
        assert f'kind="{kind.name}"' in text, kind.name


def test_the_inspector_filter_offers_every_kind(tmp_path: Path) -> None:
    options = {"inbox": f"sqlite:///{tmp_path}/events.db", "inspector": True, "inspector_port": 0}
    with running(**options) as listener:
        assert listener.inspector_url is not None
        page = httpx.get(listener.inspector_url, timeout=10).text
    select = re.search(r'<select name="kind">(.*?)</select>', page, re.S)
    assert select is not None
    offered = re.findall(r'<option value="([^"]*)"[^>]*>', select.group(1))
    assert offered == ["", *(kind.name for kind in KINDS)]  # "" is every kind
