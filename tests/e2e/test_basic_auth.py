"""HTTP Basic authentication in front of the signature check, over real HTTP.

Twilio sends a webhook whose URL holds ``user:password@`` without credentials
first; only a 401 with ``WWW-Authenticate: Basic realm=...`` makes it repeat the
request with them.  The credentials are not part of the signed URL: with the
right ones, the request still needs Twilio's signature.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

import twilio_trigger as twilio

from ..payloads import FORM, encode_form, sign, signed_post, sms_status_payload
from ._support import (
    OTHER_TOKEN,
    TOKEN,
    Recorder,
    SmsRecorder,
    assert_empty_twiml,
    closed_by_server,
    read_answer,
    records,
    running,
)

USER = "twilio"
PASSWORD = "s3cret-pass"
WRONG = "not-the-pass"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def listener(recorder: Recorder) -> Iterator[twilio.Listener]:
    with running(SmsRecorder(recorder), basic_auth=(USER, PASSWORD), metrics=True) as served:
        yield served


def post(
    listener: twilio.Listener,
    params: dict[str, str],
    authorization: str | bytes | None,
    *,
    signature: str | None = "oracle",
) -> httpx.Response:
    """A status callback POSTed with *authorization* (as is) and Twilio's signature
    (``"oracle"``: the right one; ``None``: none; anything else: as given)."""
    headers: dict[str, str | bytes] = {
        "Content-Type": FORM,
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    if signature == "oracle":
        headers["X-Twilio-Signature"] = sign(listener.url, params, TOKEN)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    if authorization is not None:
        headers["Authorization"] = authorization
    raw = {
        name.encode("ascii"): value if isinstance(value, bytes) else value.encode("latin-1")
        for name, value in headers.items()
    }
    return httpx.post(listener.url, content=encode_form(params), headers=raw, timeout=10.0)


def assert_challenge(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Basic realm=")
    assert response.headers["connection"] == "close"


def sids(recorder: Recorder) -> list[str | None]:
    with recorder.lock:
        return [call.event.sid for call in recorder.calls]


def rejected_count(listener: twilio.Listener, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{listener.port}/metrics", timeout=10.0).text
    found = re.search(
        rf'^twilio_trigger_requests_rejected_total\{{reason="{reason}"\}} (\S+)$', text, re.M
    )
    assert found is not None, text
    return float(found.group(1))


# -- the challenge ---------------------------------------------------------------------
def test_a_request_without_credentials_is_challenged_and_not_dispatched(
    listener: twilio.Listener, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "twilio_trigger")
    response = post(listener, sms_status_payload("delivered"), None)
    assert_challenge(response)
    assert response.headers["www-authenticate"] == 'Basic realm="twilio-trigger", charset="UTF-8"'
    assert recorder.calls == []
    # Twilio's first request of every exchange comes without credentials: not a refusal.
    assert records(caplog, logging.WARNING) == []
    assert rejected_count(listener, "credentials_invalid") == 0


def test_the_challenge_comes_before_the_body_is_read(recorder: Recorder) -> None:
    params = sms_status_payload("delivered")
    body = encode_form(params)
    with running(SmsRecorder(recorder), basic_auth=(USER, PASSWORD), body_timeout=120.0) as slow:
        head = (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{slow.port}\r\n"
            f"Content-Type: {FORM}\r\nContent-Length: {len(body) + 50_000}\r\n"
            f"X-Twilio-Signature: {sign(slow.url, params, TOKEN)}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n\r\n"
        ).encode("ascii")
        with socket.create_connection(("127.0.0.1", slow.port), timeout=20.0) as sock:
            # Far less than the Content-Length promises: a server that read the
            # body first would wait for the rest (two minutes) before answering.
            sock.sendall(head + body)
            status, headers, _ = read_answer(sock)
            assert status == 401
            assert headers["www-authenticate"].startswith("Basic realm=")
            assert headers["connection"] == "close"
            assert closed_by_server(sock) == b""
    assert recorder.calls == []


def test_wrong_credentials_are_refused_and_logged_without_the_password(
    listener: twilio.Listener, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = post(listener, sms_status_payload("delivered"), basic(USER, WRONG))
    assert_challenge(response)
    assert recorder.calls == []
    (warning,) = records(caplog, logging.WARNING)
    assert getattr(warning, "reason", None) == "credentials_invalid"
    assert "401" in warning.getMessage()
    for secret in (WRONG, PASSWORD, b64(USER, WRONG), b64(USER, PASSWORD)):
        assert secret not in caplog.text
        for record in caplog.records:
            assert secret not in repr(record.__dict__)
    assert rejected_count(listener, "credentials_invalid") == 1


def test_the_log_line_of_wrong_credentials_says_so(
    listener: twilio.Listener, caplog: pytest.LogCaptureFixture
) -> None:
    # The text log shows the message alone: it must tell wrong credentials from a
    # missing signature or any other refusal, as the reason field does.
    caplog.set_level(logging.DEBUG)
    assert_challenge(post(listener, sms_status_payload("delivered"), basic(USER, WRONG)))
    (warning,) = records(caplog, logging.WARNING)
    assert "credentials" in warning.getMessage().lower()
    assert WRONG not in warning.getMessage()


def test_wrong_credentials_over_a_raw_socket_close_the_connection_unread(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    body = encode_form(params)
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {len(body) + 50_000}\r\n"
        f"Authorization: {basic(USER, WRONG)}\r\n"
        f"X-Twilio-Signature: {sign(listener.url, params, TOKEN)}\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection(("127.0.0.1", listener.port), timeout=20.0) as sock:
        sock.sendall(head + body)
        status, headers, _ = read_answer(sock)
        assert status == 401
        assert headers["connection"] == "close"
        assert closed_by_server(sock) == b""
    assert recorder.calls == []


# -- right credentials: the signature decides ------------------------------------------
def test_right_credentials_and_a_valid_signature_are_dispatched(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    assert_empty_twiml(post(listener, params, basic(USER, PASSWORD)))
    # httpx's own Basic auth, as any client would send it.
    other = sms_status_payload("sent")
    response = signed_post(listener.url, other, TOKEN, auth=(USER, PASSWORD))
    assert_empty_twiml(response)
    assert sids(recorder) == [params["MessageSid"], other["MessageSid"]]
    with recorder.lock:
        assert [call.callback for call in recorder.calls] == ["on_delivered", "on_sent"]


def test_right_credentials_without_a_signature_are_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    response = post(
        listener, sms_status_payload("delivered"), basic(USER, PASSWORD), signature=None
    )
    assert response.status_code == 403
    assert recorder.calls == []


def test_right_credentials_with_a_bad_signature_are_refused(
    listener: twilio.Listener, recorder: Recorder
) -> None:
    params = sms_status_payload("delivered")
    forged = sign(listener.url, params, OTHER_TOKEN)
    response = post(listener, params, basic(USER, PASSWORD), signature=forged)
    assert response.status_code == 403
    # Credentials are not part of the signed URL: a signature over a URL with them fails.
    origin = listener.url.removeprefix("http://")
    with_userinfo = sign(f"http://{USER}:{PASSWORD}@{origin}", params, TOKEN)
    response = post(listener, params, basic(USER, PASSWORD), signature=with_userinfo)
    assert response.status_code == 403
    assert recorder.calls == []


# -- several pairs, the environment ----------------------------------------------------
def test_several_pairs_for_rotation(recorder: Recorder) -> None:
    pairs = [("twilio", "old-secret"), ("twilio", "new-secret")]
    with running(SmsRecorder(recorder), basic_auth=pairs) as served:
        first, second = sms_status_payload("delivered"), sms_status_payload("delivered")
        assert_empty_twiml(post(served, first, basic("twilio", "old-secret")))
        assert_empty_twiml(post(served, second, basic("twilio", "new-secret")))
        assert_challenge(post(served, sms_status_payload(), basic("twilio", "other-secret")))
        assert_challenge(post(served, sms_status_payload(), basic("other", "new-secret")))
    assert sids(recorder) == [first["MessageSid"], second["MessageSid"]]


def test_the_environment_variable_gives_the_pairs(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_TRIGGER_BASIC_AUTH", "a:b,c:d")
    with running(SmsRecorder(recorder)) as served:
        first, second = sms_status_payload("delivered"), sms_status_payload("delivered")
        assert_empty_twiml(post(served, first, basic("a", "b")))
        assert_empty_twiml(post(served, second, basic("c", "d")))
        assert_challenge(post(served, sms_status_payload(), basic("a", "d")))
        assert_challenge(post(served, sms_status_payload(), None))
    assert sids(recorder) == [first["MessageSid"], second["MessageSid"]]


def test_a_password_may_hold_a_colon_in_the_environment(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first ":" of an entry ends the user name, as in https://user:pass@host/.
    monkeypatch.setenv("TWILIO_TRIGGER_BASIC_AUTH", "twilio:pa:ss")
    with running(SmsRecorder(recorder)) as served:
        params = sms_status_payload("delivered")
        assert_empty_twiml(post(served, params, basic("twilio", "pa:ss")))
        assert_challenge(post(served, sms_status_payload(), basic("twilio", "pa")))
    assert sids(recorder) == [params["MessageSid"]]


# -- the header's form -----------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_the_scheme_name_is_case_insensitive(
    listener: twilio.Listener, recorder: Recorder, scheme: str
) -> None:
    params = sms_status_payload("delivered")
    assert_empty_twiml(post(listener, params, f"{scheme} {b64(USER, PASSWORD)}"))
    assert sids(recorder) == [params["MessageSid"]]


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!",
        "Basic",
        "Bearer x",
        f"Bearer {b64(USER, PASSWORD)}",
        f"Digest {b64(USER, PASSWORD)}",
        b64(USER, PASSWORD),  # no scheme
        "Basic " + base64.b64encode(USER.encode()).decode(),  # no colon
        "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),  # not UTF-8
        f"Basic {b64(USER, PASSWORD)}junk",
        f"Basic {b64(USER, PASSWORD + 'x')}",
        f"Basic {b64(USER.upper(), PASSWORD)}",
        "Basic " + "QUFB" * 1500,  # a very long header
        b"Basic \xff\xfe\xfd",
    ],
)
def test_a_malformed_authorization_is_challenged_never_an_error(
    listener: twilio.Listener, recorder: Recorder, authorization: str | bytes
) -> None:
    response = post(listener, sms_status_payload("delivered"), authorization)
    assert_challenge(response)
    assert recorder.calls == []


def test_credentials_work_for_a_get_webhook(listener: twilio.Listener, recorder: Recorder) -> None:
    params = sms_status_payload("delivered")
    url = listener.url + "?" + urlencode(list(params.items()), safe="'")
    signature = str(RequestValidator(TOKEN).compute_signature(url, {}))
    headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}
    challenged = httpx.get(url, headers=headers, timeout=10.0)
    assert_challenge(challenged)
    wrong = httpx.get(url, headers={**headers, "Authorization": basic(USER, WRONG)}, timeout=10.0)
    assert_challenge(wrong)
    assert recorder.calls == []
    response = httpx.get(
        url, headers={**headers, "Authorization": basic(USER, PASSWORD)}, timeout=10.0
    )
    assert_empty_twiml(response)
    assert sids(recorder) == [params["MessageSid"]]
    unsigned = httpx.get(url, headers={"Authorization": basic(USER, PASSWORD)}, timeout=10.0)
    assert unsigned.status_code == 403


# -- configuration ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "basic_auth",
    [
        ("twilio", ""),
        ("", "s3cret"),
        ("us:er", "s3cret"),
        [("twilio", "s3cret"), ("other", "")],
        [("twilio",)],
    ],
)
def test_invalid_pairs_are_a_configuration_error(basic_auth: object) -> None:
    with pytest.raises(twilio.ConfigurationError):
        twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], basic_auth=basic_auth)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["user", "a:b,user", "a:", ":b"])
def test_an_invalid_environment_variable_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TWILIO_TRIGGER_BASIC_AUTH", value)
    with pytest.raises(twilio.ConfigurationError):
        twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN])


def test_the_configuration_error_does_not_show_the_password() -> None:
    with pytest.raises(twilio.ConfigurationError) as raised:
        twilio.Listener(0, auth_tokens=[TOKEN], basic_auth=("us:er", "top-secret-value"))
    assert "top-secret-value" not in str(raised.value)
