"""The refused requests the listener keeps for the inspector: bounded, escaped, no secret."""

from __future__ import annotations

import json
import threading

import pytest

from twilio_trigger import ConfigurationError
from twilio_trigger._config import Settings
from twilio_trigger._observe import Refusal, Rejection
from twilio_trigger._options import OPTIONS
from twilio_trigger._refused import (
    MAX_HEADER_NAME,
    MAX_HEADER_NAMES,
    MAX_KEPT,
    MAX_PATH,
    MAX_REMOTE,
    MAX_URL,
    MAX_URLS,
    OTHER,
    REQUEST,
    RefusedRequests,
    Request,
    shown_url,
)

STAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def refusal(reason: str = Rejection.SIGNATURE_INVALID, **fields: object) -> Refusal:
    status = {Rejection.SIGNATURE_INVALID: 403, Rejection.CONTENT_TYPE: 415}.get(reason, 400)
    return Refusal(reason, status, "refused", **fields)  # type: ignore[arg-type]


def told(store: RefusedRequests, what: Refusal, request: Request | None = None) -> None:
    """Tell *store* of *what*, as the webhook's application does while serving *request*."""
    token = REQUEST.set(request)
    try:
        store.rejected(what)
    finally:
        REQUEST.reset(token)


def test_keeps_the_latest_newest_first_and_counts_every_one() -> None:
    store = RefusedRequests(3)
    for number in range(5):
        told(store, refusal(remote=f"10.0.0.{number}"))
    told(store, refusal(Rejection.CONTENT_TYPE, remote="10.0.0.9"))
    records = store.records()
    assert [r.remote for r in records] == ["10.0.0.9", "10.0.0.4", "10.0.0.3"]
    assert store.counts() == {Rejection.SIGNATURE_INVALID: 5, Rejection.CONTENT_TYPE: 1}
    document = store.to_json()
    assert document["kept"] == 3
    assert document["total"] == 6
    refused = document["refused"]
    assert isinstance(refused, list)
    assert [r["reason"] for r in refused] == [
        "content_type",
        "signature_invalid",
        "signature_invalid",
    ]
    assert refused[0]["status"] == 415
    assert json.loads(json.dumps(document)) == document  # plain JSON values only


def test_a_record_holds_the_request_line_and_header_names_never_values() -> None:
    store = RefusedRequests()
    headers = [
        (b"host", b"hooks.example.com"),
        (b"x-twilio-signature", b"c2lnbmF0dXJlLXNlY3JldA=="),
        (b"authorization", b"Basic dXNlcjpodW50ZXIy"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"x-twilio-signature", b"again"),  # a name twice: shown once
    ]
    told(
        store,
        refusal(remote="203.0.113.7", urls=("https://hooks.example.com/sms",)),
        Request("POST", "/sms", headers),
    )
    (kept,) = store.records()
    assert kept.method == "POST"
    assert kept.path == "/sms"
    assert kept.remote == "203.0.113.7"
    assert kept.status == 403
    assert kept.urls == ("https://hooks.example.com/sms",)
    assert kept.headers == ("host", "x-twilio-signature", "authorization", "content-type")
    assert kept.more_headers == 0
    assert kept.at[:2] == "20"
    assert kept.at.endswith("Z")
    text = json.dumps(store.to_json())
    for value in (b"c2lnbmF0dXJl", b"dXNlcjpodW50ZXIy", b"again", b"urlencoded"):
        assert value.decode() not in text


def test_refused_by_the_server_before_a_request_was_read() -> None:
    store = RefusedRequests()
    told(store, Refusal(Rejection.HEAD_TOO_LARGE, 431, "request head too large", "127.0.0.1"))
    (kept,) = store.records()
    assert (kept.reason, kept.status, kept.method, kept.path, kept.headers) == (
        "head_too_large", 431, None, None, (),
    )  # fmt: skip


def test_what_came_with_the_request_is_bounded_and_escaped() -> None:
    store = RefusedRequests()
    evil = "\n\x1b[31mforged\u2028line\x00"
    headers = [(f"x-h{n:03d}-{'n' * 100}".encode(), b"v") for n in range(60)]
    headers.append((b"x-\n\x1bbad", b"v"))
    urls = tuple(f"https://h{n}.example/{'p' * 1000}{evil}" for n in range(20))
    told(
        store,
        Refusal("made_up_reason", 400, evil * 100, evil * 100, urls),
        Request("POST" * 50 + evil, "/" + "a" * 5000 + evil, headers),
    )
    (kept,) = store.records()
    assert kept.reason == OTHER
    assert len(kept.headers) == MAX_HEADER_NAMES
    assert kept.more_headers == 61 - MAX_HEADER_NAMES
    assert all(len(name) <= MAX_HEADER_NAME for name in kept.headers)
    assert kept.headers[0].startswith("x-h000-")
    assert kept.headers[0].endswith("…")
    assert len(kept.urls) == MAX_URLS
    assert all(len(url) <= MAX_URL for url in kept.urls)
    assert kept.remote is not None
    assert len(kept.remote) <= MAX_REMOTE
    assert kept.path is not None
    assert len(kept.path) <= MAX_PATH
    assert kept.method is not None
    assert len(kept.method) <= 16
    assert len(kept.message) <= 200
    for text in (kept.remote, kept.path, kept.method, kept.message, *kept.urls, *kept.headers):
        assert text.isprintable(), text
        assert "\x1b" not in text
        assert "\n" not in text
        assert "\u2028" not in text


def test_url_forms_are_shown_without_credentials_or_query_values() -> None:
    shown = shown_url("https://user:hunter2@hooks.example.com:8443/sms?Body=hello&token=s3cret")
    assert shown == "https://hooks.example.com:8443/sms?Body=…&token=…"
    assert shown_url("http://127.0.0.1:8090/") == "http://127.0.0.1:8090/"
    assert shown_url("http://[::1/") == "(a URL that could not be read)"


def test_told_from_threads_at_once_nothing_is_lost() -> None:
    store = RefusedRequests(50)

    def tell() -> None:
        for _ in range(200):
            store.rejected(refusal(Rejection.CONTENT_TYPE))

    threads = [threading.Thread(target=tell) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.counts() == {Rejection.CONTENT_TYPE: 1600}
    assert len(store.records()) == 50


def test_how_many_are_kept_is_bounded() -> None:
    with pytest.raises(ValueError, match="between 1 and 10000"):
        RefusedRequests(0)
    with pytest.raises(ValueError, match="between 1 and 10000"):
        RefusedRequests(MAX_KEPT + 1)
    assert RefusedRequests(MAX_KEPT).kept == MAX_KEPT


def test_the_option_refused_kept() -> None:
    variable = "TWILIO_TRIGGER_REFUSED_KEPT"
    assert OPTIONS.refused_kept.env == variable
    assert Settings.resolve({}, {}).refused_kept == 100
    assert Settings.resolve({}, {variable: "0"}).refused_kept == 0
    assert Settings.resolve({"refused_kept": 10_000}, {}).refused_kept == MAX_KEPT
    for wrong in ("10001", "-1", "many"):
        with pytest.raises(ConfigurationError, match=variable):
            Settings.resolve({}, {variable: wrong})
