"""An event loop closed without the listener's shutdown still ends: its workers stop.

``asyncio.run`` cancels every task left when its coroutine returns, and waits for
them.  The inbox's worker loop must end then, even where a library it awaits
swallows the cancellation (redis-py 8's commands do), or the program hangs at exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_support import prefix, redis_url

__all__ = ["prefix", "redis_url"]  # the fixtures, imported for pytest to find

SCRIPT = """
import asyncio, sys
import twilio_trigger as twilio
from twilio_trigger.testing import sign, sms_status_params
from urllib.parse import urlencode

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
URL = "http://127.0.0.1:8090/"


class Quiet(twilio.SmsStatusService):
    async def on_delivered(self, event):
        pass


async def main(options):
    listener = twilio.Listener(auth_tokens=[TOKEN], host="127.0.0.1", **options)
    listener.attach(Quiet())
    app = listener.asgi
    for _ in range(50):
        params = sms_status_params("delivered")
        body = urlencode(params).encode()
        scope = {
            "type": "http", "method": "POST", "scheme": "http", "path": "/",
            "raw_path": b"/", "root_path": "", "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8090"),
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"x-twilio-signature", sign(URL, params, TOKEN).encode()),
            ],
        }
        statuses = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
        assert statuses == [200], statuses
    # Returns with the workers running: asyncio.run must still end.


options = eval(sys.argv[1])
asyncio.run(main(options))
print("ended")
"""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_loop_closed_without_shutdown_ends_its_workers(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        options = {"inbox": f"sqlite:///{tmp_path / 'events.db'}"}
    else:
        options = {
            "inbox": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("prefix"),
            "redis_durability": "memory",
        }
    script = tmp_path / "closing.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    try:
        done = subprocess.run(
            [sys.executable, str(script), repr(options)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"asyncio.run did not end: {expired.stderr!r}") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ended"
