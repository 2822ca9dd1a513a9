"""Refused requests in the inspector, over real HTTP: ``GET /api/refused`` and the page.

A real listener on loopback with a SQLite inbox and its inspector; requests are
refused the way a misconfigured Twilio account or an attacker gets refused (a
wrong signature, no signature, a wrong content type, a head too large, wrong
Basic credentials), and the inspector must list them, with their reason and
what helps find the cause, and never a secret, a header's value or a body.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_post, sms_status_payload

from ._support import TOKEN, read_answer, running, wait_until

pytestmark = pytest.mark.usefixtures("no_listener_options")


INSPECTOR_TOKEN = "a-long-inspector-token-123"
WRONG_TOKEN = "not-the-auth-token-0123456789abcd"
#: What the refused request carries that must never be shown.
BODY_MARKER = "BODY-MARKER-7f3a9c"
HEADER_SECRET = "HEADER-SECRET-51be02"
QUERY_SECRET = "QUERY-SECRET-c0ffee"
PASSWORD = "url-password-4242"


class Messages(twilio.SmsStatusService):
    def on_delivered(self, event: twilio.SmsStatusChangeEvent) -> None:
        pass


@contextlib.contextmanager
def inspected(tmp_path: Path, **options: Any) -> Iterator[tuple[twilio.Listener, httpx.Client]]:
    options.setdefault("inbox", f"sqlite:///{tmp_path}/events.db")
    with running(Messages(), inspector=True, inspector_port=0, **options) as listener:
        assert listener.inspector_url is not None
        with httpx.Client(base_url=listener.inspector_url, timeout=10, trust_env=False) as http:
            yield listener, http


def refused(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/api/refused")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    document: dict[str, Any] = response.json()
    return document


def wait_total(http: httpx.Client, total: int) -> dict[str, Any]:
    """Wait until the inspector counts *total* refused requests; its document then."""
    seen: dict[str, Any] = {}

    def counted() -> bool:
        seen.update(refused(http))
        return bool(seen["total"] == total)

    wait_until(counted, f"{total} refused requests (last seen: {seen})")
    return seen


def wrong_signature(listener: twilio.Listener) -> httpx.Response:
    """A request signed with another token, carrying secrets in its headers and body."""
    params = sms_status_payload("delivered")
    params["Body"] = BODY_MARKER
    return signed_post(
        f"{listener.url}?k={QUERY_SECRET}",
        params,
        WRONG_TOKEN,
        headers={"Authorization": f"Bearer {HEADER_SECRET}", "X-Custom-Thing": HEADER_SECRET},
    )


def test_a_wrong_signature_is_listed_with_what_helps_and_no_secret(tmp_path: Path) -> None:
    public = f"https://hooks:{PASSWORD}@hooks.example.com/"
    with inspected(tmp_path, public_url=public) as (listener, http):
        assert refused(http) == {"kept": 100, "total": 0, "counts": {}, "refused": []}
        response = wrong_signature(listener)
        assert response.status_code == 403
        signature = response.request.headers["x-twilio-signature"]
        document = wait_total(http, 1)
        assert document["counts"] == {"signature_invalid": 1}
        (record,) = document["refused"]
        assert record["reason"] == "signature_invalid"
        assert record["status"] == 403
        assert record["remote"] == "127.0.0.1"
        assert record["method"] == "POST"
        assert record["path"] == "/"
        assert record["at"].endswith("Z")
        assert "T" in record["at"]
        # The URL forms tried: public_url's, without its password, the query's
        # names without their values.
        assert record["urls"], record
        assert all(url.startswith("https://hooks.example.com") for url in record["urls"])
        assert any(url.endswith("/?k=…") for url in record["urls"])
        names = record["headers"]
        for name in ("host", "x-twilio-signature", "authorization", "x-custom-thing"):
            assert name in names
        assert record["more_headers"] == 0
        # Nothing of what the request carried but names, nor the listener's secrets.
        shown = json.dumps(document) + http.get("/").text
        for secret in (
            BODY_MARKER, HEADER_SECRET, QUERY_SECRET, PASSWORD, signature, TOKEN, WRONG_TOKEN,
            "TwilioProxy", "us1",  # the values of the User-Agent and X-Home-Region headers
        ):  # fmt: skip
            assert secret not in shown, secret


def test_each_reason_is_counted_and_the_newest_comes_first(tmp_path: Path) -> None:
    with inspected(tmp_path, max_body_bytes=1024) as (listener, http):
        url = listener.url
        assert (
            httpx.post(url, content=b"a=1", headers={"Content-Type": "text/plain"}).status_code
            == 415
        )
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert httpx.post(url, content=b"a=1", headers=form).status_code == 403
        assert wrong_signature(listener).status_code == 403
        too_large = signed_post(url, {"Body": "x" * 2000}, TOKEN)
        assert too_large.status_code == 413
        # A head larger than the server takes: refused before the request is read.
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 40_000)
            sock.sendall(b"\r\n\r\n")
            status, _, _ = read_answer(sock)
        assert status == 431
        document = wait_total(http, 5)
        assert document["counts"] == {
            "content_type": 1, "signature_missing": 1, "signature_invalid": 1,
            "too_large": 1, "head_too_large": 1,
        }  # fmt: skip
        reasons = [record["reason"] for record in document["refused"]]
        assert reasons == [
            "head_too_large", "too_large", "signature_invalid", "signature_missing",
            "content_type",
        ]  # fmt: skip
        head = document["refused"][0]
        assert (head["status"], head["method"], head["path"], head["headers"]) == (
            431, None, None, [],
        )  # fmt: skip
        assert head["remote"] == "127.0.0.1"
        assert document["refused"][-1]["headers"][:1] == ["host"]


def test_wrong_basic_credentials_are_listed_without_them(tmp_path: Path) -> None:
    with inspected(tmp_path, basic_auth=("twilio", "right-password-1")) as (listener, http):
        url = listener.url.replace("http://", "http://twilio:wrong-password-2@")
        assert signed_post(url, sms_status_payload("delivered"), TOKEN).status_code == 401
        (record,) = wait_total(http, 1)["refused"]
        assert record["reason"] == "credentials_invalid"
        assert "authorization" in record["headers"]
        shown = json.dumps(refused(http))
        assert "wrong-password-2" not in shown
        assert "right-password-1" not in shown


def test_only_the_latest_are_kept_and_all_are_counted(tmp_path: Path) -> None:
    with inspected(tmp_path, refused_kept=2) as (listener, http):
        for _ in range(5):
            assert wrong_signature(listener).status_code == 403
        document = wait_total(http, 5)
        assert document["kept"] == 2
        assert document["counts"] == {"signature_invalid": 5}
        assert len(document["refused"]) == 2


def test_none_kept_when_turned_off(tmp_path: Path) -> None:
    with inspected(tmp_path, refused_kept=0) as (listener, http):
        assert wrong_signature(listener).status_code == 403
        # The answer above is given after the refusal was told: nothing to wait for.
        assert refused(http) == {"kept": 0, "total": 0, "counts": {}, "refused": []}
        assert 'id="refused-requests"' in http.get("/").text


def test_the_api_has_the_inspectors_guards(tmp_path: Path) -> None:
    with inspected(tmp_path) as (listener, http):
        port = int(str(listener.inspector_url).rsplit(":", 1)[1].strip("/"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /api/refused HTTP/1.1\r\nHost: attacker.example\r\n\r\n")
            status, _, _ = read_answer(sock)
        assert status == 421  # DNS rebinding: another name is refused
        assert http.post("/api/refused", content=b"{}").status_code == 404
        assert http.delete("/api/refused").status_code == 405
    with inspected(
        tmp_path,
        inspector_host="0.0.0.0",
        inspector_token=INSPECTOR_TOKEN,
    ) as (_, http):
        assert http.get("/api/refused").status_code == 401
        bearer = {"Authorization": f"Bearer {INSPECTOR_TOKEN}"}
        assert http.get("/api/refused", headers=bearer).json()["total"] == 0
