"""Prometheus metrics over real HTTP: what each outcome, rejection and answer counts.

Every test runs a real listener on a loopback port and reads ``/metrics`` back with
httpx, parsed by prometheus-client's own parser.  Counts are compared before and
after each group of requests: a group must move exactly the series it names, by
exactly the number sent, and no other.  The inbox test uses a real SQLite file in
``tmp_path``; the multi-process test runs ``twilio-trigger run --processes 2`` as a
real subprocess.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import twilio_trigger as twilio
from tests.payloads import (
    FORM,
    Params,
    call_status_payload,
    encode_form,
    sign,
    signed_post,
    sms_status_payload,
)
from tests.redis_support import prefix, redis_url
from twilio_trigger._core.kinds import KINDS

from ._processes import Process
from ._support import TOKEN, CallbackError, free_port, read_answer, running, wait_until

pytestmark = pytest.mark.usefixtures("no_listener_options")


__all__ = ["prefix", "redis_url"]  # the fixtures, imported for pytest to find

#: The callbacks' time limit: the sleeping callback outlives it twentyfold.
TIME_LIMIT = 0.2
MAX_BODY = 4096

EVENTS = "twilio_trigger_events_total"
RECEIVED = "twilio_trigger_events_received_total"
REJECTED = "twilio_trigger_requests_rejected_total"
RESPONSES = "twilio_trigger_responses_total"
DURATION = "twilio_trigger_callback_duration_seconds"
RETRIES = "twilio_trigger_inbox_retries_total"
DEAD_LETTERS = "twilio_trigger_inbox_dead_letters_total"
ENTRIES = "twilio_trigger_inbox_entries"

#: A sample: its name and its labels.
Key = tuple[str, frozenset[tuple[str, str]]]
Samples = dict[Key, float]


# -- reading the exposition ------------------------------------------------------------
def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def key(name: str, **labels: str) -> Key:
    return (name, frozenset(labels.items()))


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when the series does not exist (yet)."""
    return samples.get(key(name, **labels), 0.0)


def series(samples: Samples, name: str) -> dict[tuple[str, ...], float]:
    """The samples named *name*, by their labels' values (sorted by label name)."""
    found: dict[tuple[str, ...], float] = {}
    for (sample_name, labels), number in samples.items():
        if sample_name == name:
            found[tuple(v for _, v in sorted(labels))] = number
    return found


def moved(before: Samples, after: Samples, name: str) -> dict[tuple[str, ...], float]:
    """How much each series of *name* changed, only the ones that did."""
    old, new = series(before, name), series(after, name)
    changes = {labels: new.get(labels, 0.0) - old.get(labels, 0.0) for labels in old | new}
    return {labels: change for labels, change in changes.items() if change}


def scrape(http: httpx.Client, url: str) -> tuple[str, Samples]:
    answer = http.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain"), answer.headers
    return answer.text, parse(answer.text)


def metrics_url(listener: twilio.Listener) -> str:
    return f"http://127.0.0.1:{listener.port}/metrics"


# -- the service -----------------------------------------------------------------------
class Outcomes(twilio.SmsStatusService):
    """One callback per outcome: delivered and sent succeed, undelivered raises,
    sending outlives the time limit; queued has no callback at all."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def _record(self, name: str, event: twilio.SmsStatusChangeEvent) -> None:
        with self.lock:
            self.calls.append((name, event.message_sid))

    async def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self._record("on_delivered", event)

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        self._record("on_sent", event)

    async def on_undelivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        self._record("on_undelivered", event)
        raise CallbackError(f"carrier database lookup exploded for {event.message_sid}")

    async def on_sending(self, event: twilio.SmsStatusChangeEvent) -> None:
        self._record("on_sending", event)
        await asyncio.sleep(TIME_LIMIT * 20)


@pytest.fixture
def listener() -> Iterator[twilio.Listener]:
    with running(
        Outcomes(),
        metrics=True,
        skip_stale=True,
        callback_timeout=TIME_LIMIT,
        max_body_bytes=MAX_BODY,
    ) as listener:
        yield listener


def post(http: httpx.Client, url: str, params: Params, token: str | None = None) -> httpx.Response:
    """A signed delivery; the same *token* again makes it a retry of the same delivery."""
    return signed_post(
        url,
        params,
        TOKEN,
        client=http,
        headers={"I-Twilio-Idempotency-Token": token or str(uuid.uuid4())},
    )


# -- events by outcome, received by status, answers by code ------------------------------
def test_each_outcome_moves_exactly_its_own_counters(
    listener: twilio.Listener, http: httpx.Client
) -> None:
    url, where = listener.url, metrics_url(listener)
    sent: list[Params] = []

    def group(
        sends: list[tuple[Params, str | None]],
        codes: list[int],
        events: Mapping[tuple[str, str], int],
        received: Mapping[tuple[str, str], int],
    ) -> Samples:
        _, before = scrape(http, where)
        answers = [post(http, url, params, token).status_code for params, token in sends]
        sent.extend(params for params, _ in sends)
        assert answers == codes
        _, after = scrape(http, where)
        # labels sorted by name: (kind, outcome), (kind, status), (code,)
        assert moved(before, after, EVENTS) == dict(events)
        assert moved(before, after, RECEIVED) == dict(received)
        assert moved(before, after, RESPONSES) == {
            (str(code),): float(n) for code, n in Counter(codes).items()
        }
        assert moved(before, after, REJECTED) == {}
        return after

    delivered = [sms_status_payload("delivered") for _ in range(3)]
    group(
        [(p, None) for p in delivered],
        [200, 200, 200],
        {("sms", "handled"): 3},
        {("sms", "delivered"): 3},
    )
    group(
        [(sms_status_payload("undelivered"), None) for _ in range(2)],
        [500, 500],
        {("sms", "failed"): 2},
        {("sms", "undelivered"): 2},
    )
    group(
        [(sms_status_payload("sending"), None)],
        [503],
        {("sms", "timed_out"): 1},
        {("sms", "sending"): 1},
    )
    copy, token = sms_status_payload("delivered"), str(uuid.uuid4())
    group(
        [(copy, token), (copy, token)],
        [200, 200],
        {("sms", "handled"): 1, ("sms", "duplicate"): 1},
        {("sms", "delivered"): 2},
    )
    sid = str(uuid.uuid4().hex)
    late = sms_status_payload("sent", sid="SM" + sid)
    group(
        [(sms_status_payload("delivered", sid="SM" + sid), None), (late, None)],
        [200, 200],
        {("sms", "handled"): 1, ("sms", "stale"): 1},
        {("sms", "delivered"): 1, ("sms", "sent"): 1},
    )
    group(
        [(sms_status_payload("queued"), None) for _ in range(2)],
        [200, 200],
        {("sms", "no_callback"): 2},
        {("sms", "queued"): 2},
    )
    group(
        [(sms_status_payload("exploded-on-the-pad"), None)],
        [200],
        {("sms", "unknown_status"): 1},
        {("sms", "other"): 1},
    )
    last = group(
        [(call_status_payload("completed"), None)],
        [200],
        {("call", "no_service"): 1},
        {("call", "completed"): 1},
    )

    # Every event sent so far, in total, beside the series every kind has from the start.
    seeded = {(k.name, o): 0.0 for k in KINDS for o in ("duplicate", "failed", "handled")}
    assert series(last, EVENTS) == seeded | {
        ("call", "no_service"): 1.0,
        ("sms", "duplicate"): 1.0,
        ("sms", "failed"): 2.0,
        ("sms", "handled"): 5.0,
        ("sms", "no_callback"): 2.0,
        ("sms", "stale"): 1.0,
        ("sms", "timed_out"): 1.0,
        ("sms", "unknown_status"): 1.0,
    }
    # The callbacks' durations: one observation per callback run.
    counts = {
        name: value(last, f"{DURATION}_count", kind="sms", callback=name)
        for name in ("on_delivered", "on_undelivered", "on_sending", "on_sent")
    }
    assert counts == {"on_delivered": 5.0, "on_undelivered": 2.0, "on_sending": 1.0, "on_sent": 0}
    assert value(last, f"{DURATION}_sum", kind="sms", callback="on_sending") >= TIME_LIMIT * 0.9
    assert value(last, f"{DURATION}_bucket", kind="sms", callback="on_sending", le="0.1") == 0
    assert value(last, f"{DURATION}_bucket", kind="sms", callback="on_sending", le="+Inf") == 1
    assert value(last, f"{DURATION}_bucket", kind="sms", callback="on_delivered", le="+Inf") == 5
    assert value(last, "twilio_trigger_info", version=twilio.__version__) == 1.0
    assert len(sent) == 14


def test_each_rejection_counts_its_reason_and_its_answer(
    listener: twilio.Listener, http: httpx.Client
) -> None:
    url, where = listener.url, metrics_url(listener)
    _, start = scrape(http, where)
    # Every reason's series exists from the start, at 0, for rate() and alerts.
    assert series(start, REJECTED) == {
        (reason,): 0.0
        for reason in (
            "signature_missing",
            "signature_invalid",
            "content_type",
            "too_large",
            "bad_payload",
            "credentials_invalid",
            "malformed_request",
            "head_too_large",
            "timeout",
            "too_many_connections",
            "too_many_pipelined",
        )
    }
    good = sms_status_payload("delivered")
    body = encode_form(good)
    huge = sms_status_payload("delivered", Body="x" * (MAX_BODY + 10))
    cases: list[tuple[str, bytes, dict[str, str], int]] = [
        ("signature_missing", body, {"Content-Type": FORM}, 403),
        (
            "signature_invalid",
            body,
            {"Content-Type": FORM, "X-Twilio-Signature": sign(url, good, "not-the-token")},
            403,
        ),
        (
            "content_type",
            b"MessageStatus: delivered",
            {"Content-Type": "text/plain", "X-Twilio-Signature": sign(url, good, TOKEN)},
            415,
        ),
        (
            "too_large",
            encode_form(huge),
            {"Content-Type": FORM, "X-Twilio-Signature": sign(url, huge, TOKEN)},
            413,
        ),
        (
            "bad_payload",
            b"",
            {"Content-Type": FORM, "X-Twilio-Signature": sign(url, {}, TOKEN)},
            400,
        ),
        (
            "bad_payload",
            b"MessageSid=SM1&MessageStatus=deliv\xffered",
            {"Content-Type": FORM, "X-Twilio-Signature": sign(url, good, TOKEN)},
            400,
        ),
        (
            "malformed_request",
            body,
            {"Content-Type": FORM, "X-Twilio-Signature": sign(url, good, TOKEN), "Host": "[::1"},
            400,
        ),
    ]
    for reason, content, headers, code in cases:
        _, before = scrape(http, where)
        answer = http.post(url, content=content, headers=headers)
        assert answer.status_code == code, (reason, answer.text)
        _, after = scrape(http, where)
        assert moved(before, after, REJECTED) == {(reason,): 1.0}, reason
        assert moved(before, after, RESPONSES) == {(str(code),): 1.0}, reason
        assert moved(before, after, EVENTS) == {}, reason
        assert moved(before, after, RECEIVED) == {}, reason
    _, end = scrape(http, where)
    assert moved(start, end, REJECTED) == {
        ("signature_missing",): 1.0,
        ("signature_invalid",): 1.0,
        ("content_type",): 1.0,
        ("too_large",): 1.0,
        ("bad_payload",): 2.0,
        ("malformed_request",): 1.0,
    }
    assert moved(start, end, RESPONSES) == {
        ("403",): 2.0,
        ("415",): 1.0,
        ("413",): 1.0,
        ("400",): 3.0,
    }


# -- what the exposition must never hold -----------------------------------------------
_SID = re.compile(r"\b(SM|MM|CA|AC|MG|RE)[0-9a-f]{32}\b")
_PHONE = re.compile(r"\+\d{7,}")


def test_no_sid_or_phone_number_ever_appears_in_the_exposition(
    listener: twilio.Listener, http: httpx.Client
) -> None:
    url = listener.url
    sent = [
        sms_status_payload("delivered"),
        sms_status_payload("undelivered"),
        sms_status_payload("queued"),
        sms_status_payload("whatever-status-this-is"),
        sms_status_payload("received"),
        call_status_payload("completed"),
    ]
    for params in sent:
        post(http, url, params)
    text, samples = scrape(http, metrics_url(listener))
    assert value(samples, EVENTS, kind="sms", outcome="handled") == 1
    assert value(samples, EVENTS, kind="sms", outcome="no_callback") == 2  # queued, received
    assert value(samples, EVENTS, kind="sms", outcome="failed") == 1
    secrets = {v for params in sent for k, v in params.items() if k.endswith(("Sid", "From", "To"))}
    secrets |= {v for params in sent for k, v in params.items() if k in ("Caller", "Called")}
    leaked = sorted(s for s in secrets if s and s in text)
    assert not leaked, leaked
    assert not _SID.search(text), _SID.search(text)
    assert not _PHONE.search(text), _PHONE.search(text)
    assert TOKEN not in text
    assert "whatever-status-this-is" not in text  # an unknown status is "other"
    assert value(samples, RECEIVED, kind="sms", status="other") == 1


# -- where the metrics are served ------------------------------------------------------
def test_metrics_port_serves_them_apart_and_not_on_the_webhook_port(http: httpx.Client) -> None:
    with running(Outcomes(), metrics_port=0) as listener:
        port = listener.metrics_port
        assert port is not None
        assert port not in (0, listener.port)
        assert listener.metrics is not None
        assert http.get(metrics_url(listener)).status_code == 404
        assert post(http, listener.url, sms_status_payload("delivered")).status_code == 200
        _, samples = scrape(http, f"http://127.0.0.1:{port}/metrics")
        assert value(samples, EVENTS, kind="sms", outcome="handled") == 1
        assert value(samples, RESPONSES, code="200") == 1
    assert listener.metrics_port is None
    with pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{port}/metrics")


def test_the_metrics_port_is_bounded_as_the_webhook_port_is(http: httpx.Client) -> None:
    # It is reachable wherever the listener is: a client that opens connections
    # and sends half a head must not take a thread and a file each, for ever.
    # Beyond METRICS_CONNECTIONS it is answered 503 at once; those open are
    # served; no thread is made per connection; the webhook port is unaffected.
    from twilio_trigger._metrics_server import METRICS_CONNECTIONS

    with running(Outcomes(), metrics_port=0) as listener:
        port = listener.metrics_port
        assert port is not None
        threads = threading.active_count()
        held = []
        try:
            for _ in range(METRICS_CONNECTIONS):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # never ends its head
                held.append(sock)
            wait_until(lambda: threading.active_count() <= threads, "no thread per connection")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
                status, _, body = read_answer(extra)
            assert status == 503, body
            assert post(http, listener.url, sms_status_payload("delivered")).status_code == 200
            assert threading.active_count() <= threads
        finally:
            for sock in held:
                sock.close()

        # Once they are gone, the port serves again.
        def serves() -> bool:
            try:
                return http.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(serves, "the metrics port serving again")
        answer = http.post(f"http://127.0.0.1:{port}/metrics")
        assert answer.status_code == 405
        assert http.get(f"http://127.0.0.1:{port}/other").status_code == 404


def test_a_half_sent_scrape_does_not_hold_the_stop() -> None:
    listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], metrics_port=0)
    listener.attach(Outcomes())
    listener.start()
    try:
        port = listener.metrics_port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # its head never ends
            started = time.monotonic()
            listener.stop()
            took = time.monotonic() - started
    finally:
        listener.stop()
    # Not the 10 s the edge gives a head: a connection without a request is
    # closed at the stop.
    assert took < 5.0, took


def test_metrics_are_off_by_default(http: httpx.Client) -> None:
    with running(Outcomes()) as listener:
        assert listener.metrics is None
        assert listener.metrics_port is None
        answer = http.get(metrics_url(listener))
        assert answer.status_code == 404
        assert "twilio_trigger" not in answer.text
        assert http.get(f"http://127.0.0.1:{listener.port}/healthz").status_code == 200


def test_a_custom_metrics_path(http: httpx.Client) -> None:
    with running(Outcomes(), metrics=True, metrics_path="/internal/prom") as listener:
        assert http.get(metrics_url(listener)).status_code == 404
        _, samples = scrape(http, f"http://127.0.0.1:{listener.port}/internal/prom")
        assert value(samples, REJECTED, reason="too_large") == 0
        assert http.post(f"http://127.0.0.1:{listener.port}/internal/prom").status_code == 405


def test_a_busy_metrics_port_is_a_configuration_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        listener = twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], metrics_port=port)
        with pytest.raises(twilio.ConfigurationError, match=f"cannot serve metrics on .*:{port}"):
            listener.start()
        assert listener.metrics_port is None
        listener.stop()  # nothing to stop: harmless


class Stuck(twilio.SmsStatusService):
    """A plain ``def`` callback that blocks its thread until the gate opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def on_sent(self, event: twilio.SmsStatusChangeEvent) -> None:
        self.gate.wait(30)


def test_a_scrape_is_answered_while_sync_callbacks_hold_every_thread(http: httpx.Client) -> None:
    # Sync callbacks past their time limit run on in their threads; a scrape of the
    # metrics, when one wants them most, must not wait for those threads.
    stuck = Stuck()
    with running(stuck, metrics=True, callback_timeout=TIME_LIMIT) as listener:
        try:
            events = [sms_status_payload("sent") for _ in range(32)]  # >= any default pool

            def send(params: Params) -> int:
                with httpx.Client(timeout=15.0, trust_env=False) as client:
                    return signed_post(listener.url, params, TOKEN, client=client).status_code

            with ThreadPoolExecutor(len(events)) as pool:
                codes = list(pool.map(send, events))
            assert set(codes) == {503}  # each ran past its time limit
            started = time.monotonic()
            try:
                answer = http.get(metrics_url(listener), timeout=3.0)
            except httpx.TimeoutException:
                raise AssertionError(
                    f"GET /metrics got no answer in {time.monotonic() - started:.1f} s while "
                    f"sync callbacks held the threads"
                ) from None
            assert answer.status_code == 200
            assert value(parse(answer.text), EVENTS, kind="sms", outcome="timed_out") == 32
        finally:
            stuck.gate.set()


# -- the inbox: retries, dead letters, backlog ------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_inbox_retries_dead_letters_and_backlog(
    tmp_path: Path, http: httpx.Client, request: pytest.FixtureRequest, backend: str
) -> None:
    if backend == "sqlite":
        (tmp_path / "inbox").mkdir()
        where: dict[str, str] = {"inbox": f"sqlite:///{tmp_path / 'inbox' / 'events.db'}"}
    else:
        where = {
            "inbox": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("prefix"),
            "redis_durability": "memory",  # the shared Redis keeps nothing on disk
        }
    with running(
        Outcomes(),
        metrics=True,
        **where,
        retry_backoff=0.01,
        retry_backoff_max=0.02,
        max_attempts=2,
    ) as listener:
        url = metrics_url(listener)
        _, start = scrape(http, url)
        assert value(start, ENTRIES, state="dead") == 0
        assert key(ENTRIES, state="pending") in start
        failing = [sms_status_payload("undelivered") for _ in range(3)]
        fine = sms_status_payload("delivered")
        for params in [*failing, fine]:
            assert post(http, listener.url, params).status_code == 200

        def samples() -> Samples:
            return scrape(http, url)[1]

        wait_until(
            lambda: value(samples(), DEAD_LETTERS, kind="sms") >= len(failing),
            "three dead letters",
        )
        wait_until(lambda: value(samples(), EVENTS, kind="sms", outcome="handled") >= 1, "handled")
        end = samples()
        assert value(end, RETRIES, kind="sms") == len(failing)  # attempt 1 of 2 of each
        assert value(end, DEAD_LETTERS, kind="sms") == len(failing)  # attempt 2 of 2
        assert value(end, EVENTS, kind="sms", outcome="failed") == 2 * len(failing)
        assert value(end, EVENTS, kind="sms", outcome="handled") == 1
        assert value(end, RECEIVED, kind="sms", status="undelivered") == len(failing)
        assert value(end, ENTRIES, state="dead") == len(failing)
        assert value(end, ENTRIES, state="pending") == 0
        assert value(end, ENTRIES, state="running") == 0
        assert value(end, f"{DURATION}_count", kind="sms", callback="on_undelivered") == 6
        assert value(end, RESPONSES, code="200") == 4  # stored, whatever happens next

        # A copy of a stored delivery is a duplicate, and answered 200.
        token = str(uuid.uuid4())
        copy = sms_status_payload("delivered")
        assert post(http, listener.url, copy, token).status_code == 200
        assert post(http, listener.url, copy, token).status_code == 200
        wait_until(lambda: value(samples(), EVENTS, kind="sms", outcome="handled") == 2, "copy")
        assert value(samples(), EVENTS, kind="sms", outcome="duplicate") == 1


# -- several processes: the sum of all --------------------------------------------------
SERVICE = """
import os

import twilio_trigger as twilio

listener = twilio.Listener()
HANDLED = os.environ["HANDLED_DIR"]


@listener.service
class Tracker(twilio.SmsStatusService):
    async def on_delivered(self, event):
        with open(os.path.join(HANDLED, f"{os.getpid()}-{event.message_sid}"), "w"):
            pass
"""


def test_run_with_two_processes_adds_up_their_metrics(tmp_path: Path) -> None:
    (tmp_path / "metered.py").write_text(SERVICE)
    handled, temporary = tmp_path / "handled", tmp_path / "tmp"
    handled.mkdir()
    temporary.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO_", "PROMETHEUS_")) and k != "TMPDIR"
    }
    env.update(TWILIO_AUTH_TOKEN=TOKEN, HANDLED_DIR=str(handled), TMPDIR=str(temporary))
    port = free_port()
    process = Process(
        tmp_path, env, "run-workers",
        "run", "metered.py", "--processes", "2", "--metrics",
        "--port", str(port), "--host", "127.0.0.1",
    )  # fmt: skip
    try:
        process.wait_listening(port)
        process.wait_for(
            lambda: process.log.count("Application startup complete.") == 2, "both processes"
        )
        url = f"http://127.0.0.1:{port}/"

        def send(params: Params) -> int:
            # A connection of its own each: the kernel spreads them over the processes.
            with httpx.Client(timeout=15.0, trust_env=False) as client:
                return signed_post(url, params, TOKEN, client=client).status_code

        # About 20 events, more only if one process happened to take them all.
        sent = 0
        pids: set[str] = set()
        while sent < 20 or (len(pids) < 2 and sent < 60):
            batch = [sms_status_payload("delivered") for _ in range(10)]
            with ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(send, batch))
            assert codes == [200] * len(batch), process.tail()
            sent += len(batch)
            pids = {path.name.partition("-")[0] for path in handled.iterdir()}
        assert len(list(handled.iterdir())) == sent
        assert len(pids) == 2, f"one process handled all {sent} events: {pids}"
        for _ in range(8):
            with httpx.Client(timeout=15.0, trust_env=False) as client:
                _, samples = scrape(client, f"{url}metrics")
            assert value(samples, EVENTS, kind="sms", outcome="handled") == sent, pids
            assert value(samples, RECEIVED, kind="sms", status="delivered") == sent
            assert value(samples, RESPONSES, code="200") == sent
            assert value(samples, f"{DURATION}_count", kind="sms", callback="on_delivered") == sent
        # prometheus-client's folder of counts, made by the command, then removed by it
        made = list(temporary.glob("twilio-trigger-metrics-*"))
        assert len(made) == 1, made
        assert process.terminate() == 0, process.tail()
        assert "Traceback" not in process.log, process.tail(80)
        assert not made[0].exists(), "the metrics folder was left behind"
    finally:
        process.kill()
