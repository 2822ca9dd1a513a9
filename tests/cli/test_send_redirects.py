"""`send` never follows a redirect: it shows the status and the Location, says why
a webhook's URL must answer itself, and exits 1.

The server is a real one on a loopback port, answering each path with a
redirect and recording every request it gets: one request per `send` proves
that nothing was followed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import invoke

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"


@dataclass
class Redirecting:
    """A server answering each path in *answers* with (status, Location)."""

    base: str
    answers: dict[str, tuple[int, str]]
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)


@pytest.fixture
def server() -> Iterator[Redirecting]:
    state = Redirecting("", {})

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.answer()

        def do_GET(self) -> None:
            self.answer()

        def answer(self) -> None:
            state.requests.append((self.command, self.path))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, location = state.answers.get(self.path, (404, ""))
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/html")
            body = b"<p>moved</p>"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test reads `requests`

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def send(url: str) -> tuple[int, list[str]]:
    result = invoke("send", "sms", "delivered", "--url", url, "--auth-token", TOKEN)
    return result.exit_code, result.output.splitlines()


def test_a_301_that_adds_a_trailing_slash_is_shown_not_followed(server: Redirecting) -> None:
    server.answers["/sms"] = (301, "/sms/")
    server.answers["/sms/"] = (200, "")
    status, lines = send(f"{server.base}/sms")
    assert status == 1
    assert server.requests == [("POST", "/sms")]  # not followed (as a POST or a GET)
    assert lines[1].startswith("301 Moved Permanently  text/html  ")
    assert lines[2] == "Location: /sms/"
    assert lines[3] == (
        "send does not follow redirects: the URL given to Twilio must answer itself."
    )
    hint = lines[4]
    assert hint.startswith("Hint: the Location differs from the URL only by its trailing slash")
    assert "Django's APPEND_SLASH" in hint
    assert "must end with it" in hint
    assert "<p>moved</p>" not in lines  # the redirect's page says nothing more


def test_a_redirect_that_drops_the_trailing_slash_says_so(server: Redirecting) -> None:
    server.answers["/calls/"] = (308, f"{server.base}/calls")
    status, lines = send(f"{server.base}/calls/")
    assert status == 1
    assert server.requests == [("POST", "/calls/")]
    assert lines[1].startswith("308 Permanent Redirect")
    assert lines[2] == f"Location: {server.base}/calls"
    assert "must end without it" in lines[4]


def test_a_307_elsewhere_is_explained_with_public_url(server: Redirecting) -> None:
    server.answers["/hooks"] = (307, "https://hooks.example.com/twilio")
    status, lines = send(f"{server.base}/hooks")
    assert status == 1
    assert server.requests == [("POST", "/hooks")]
    assert lines[1].startswith("307 Temporary Redirect")
    assert lines[2] == "Location: https://hooks.example.com/twilio"
    assert lines[4].startswith("Hint: give Twilio the URL that answers, not one that redirects")
    assert "public_url" in lines[4]
    assert "trailing slash" not in lines[4]


def test_a_redirect_to_https_names_the_scheme(server: Redirecting) -> None:
    host = server.base.removeprefix("http://")
    server.answers["/sms"] = (302, f"https://{host}/sms")
    status, lines = send(f"{server.base}/sms")
    assert status == 1
    assert server.requests == [("POST", "/sms")]
    assert lines[4] == (
        "Hint: the server sends http to https: give Twilio the https:// URL, and set the "
        "listener's public_url to it."
    )


def test_a_hostile_location_is_shown_escaped_and_bounded(server: Redirecting) -> None:
    server.answers["/sms"] = (301, "/x\x1b[2J" + "a" * 5000)
    status, lines = send(f"{server.base}/sms")
    assert status == 1
    location = lines[2]
    assert "\x1b" not in location
    assert location.startswith("Location: /x\\x1b[2J")
    assert location.endswith("...")
    assert len(location) < 400
