"""A Redis whose packets are dropped: one operation at a time waits for it.

A host that drops packets (a firewall, a dead link) makes a client wait for its own
time limits, seconds, where a server that is down refuses at once.  While such an
outage lasts, the listener sends one operation at a time to Redis; the others wait
for it half a second at most, then are answered 503, rather than each holding a
connection and a request for the client's time limit.  When Redis answers again,
the first request served ends the outage.  Over real HTTP, a real Redis behind a
loopback proxy (``_blackhole.Proxy``) that refuses, then swallows, then forwards.
"""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from tests.payloads import signed_post, sms_status_payload
from tests.redis_support import MEMORY, REDIS_HOST, REDIS_PORT, prefix, redis_url

from ._blackhole import proxy_to
from ._support import LOGGER, TOKEN, Recorder, SmsRecorder, eventually, running, wait_until
from .test_bad_day_logs import ANSWERS, dispatched, post_all

__all__ = ["prefix", "redis_url"]  # the fixtures, imported for pytest to find

#: Requests that come while another operation is trying Redis.
WAITING = 12


def test_while_redis_swallows_everything_one_operation_at_a_time_tries_it(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    recorder = Recorder()
    with proxy_to(REDIS_HOST, REDIS_PORT) as proxy:
        options: dict[str, object] = {
            "inbox": f"redis://127.0.0.1:{proxy.port}/0",
            "redis_prefix": prefix,
            "redis_durability": MEMORY,
            # The client's time limit on a reply grows with this one: a minute, far
            # longer than the test, so that the one trying waits until let go.
            "redis_wait_timeout": 30.0,
        }
        with (
            running(SmsRecorder(recorder), **options) as listener,
            httpx.Client(timeout=120.0, trust_env=False) as http,
        ):
            first = sms_status_payload("delivered")
            assert signed_post(listener.url, first, TOKEN, client=http).status_code == 200
            wait_until(lambda: dispatched(recorder) == [first["MessageSid"]], "the first dispatch")

            # Down: refused at once, and the outage begins.
            proxy.set("refuse")
            down = signed_post(listener.url, sms_status_payload("delivered"), TOKEN, client=http)
            assert (down.status_code, down.text.strip()) == (503, ANSWERS["inbox"])

            # Swallowed: whoever comes first (a request, or a worker's poll) tries Redis
            # and waits; everything else is answered 503 without going to Redis.
            proxy.set("swallow")
            wait_until(lambda: proxy.opened["swallow"] >= 1, "an operation trying Redis")
            answers = post_all(
                listener.url, [sms_status_payload("delivered") for _ in range(WAITING)]
            )
            assert answers == [(503, ANSWERS["inbox"])] * WAITING, sorted(set(answers))
            assert proxy.opened["swallow"] == 1  # the one trying; none of the others

            # Let through again (the swallowed connection ends): served once more.
            proxy.set("forward")
            later: list[str] = []

            def served() -> bool:
                params = sms_status_payload("delivered")
                answer = signed_post(listener.url, params, TOKEN, client=http)
                assert answer.status_code in (200, 503), answer.text
                if answer.status_code == 200:
                    later.append(params["MessageSid"])
                return bool(later)

            assert eventually(served, 10.0, 0.05), "no 200 within 10 s of Redis's return"
            # What was answered 200 runs.  (A request answered 503 as Redis went away
            # may have been stored all the same, its reply lost with the connection:
            # it runs too, at least once, as Twilio's retry of it would.)
            wait_until(
                lambda: {first["MessageSid"], *later} <= set(dispatched(recorder)),
                "the dispatch",
            )

    # Told once each way, however many operations waited in vain meanwhile.
    told = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len([m for m in told if "cannot be reached (" in m]) == 1, told
    assert len([m for m in told if "can be reached again" in m]) == 1, told


def test_the_proxy_passes_bytes_both_ways_and_counts_connections() -> None:
    # The test's own tool, checked on its own: an echo server behind it.
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        connection, _ = server.accept()
        with connection:
            while data := connection.recv(1024):
                connection.sendall(data)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    with proxy_to("127.0.0.1", port) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(b"ping")
            assert client.recv(1024) == b"ping"
        proxy.set("refuse")
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            assert client.recv(1024) == b""  # closed at once
        assert proxy.opened == {"forward": 1, "refuse": 1}
    thread.join(timeout=10)
    server.close()
