"""`sign`, `verify` and the argument errors of `send`, checked in-process.

Signatures are judged by twilio-python's ``RequestValidator``, an independent oracle.
What `send` posts, and what it prints of the answer, is tested against real
listeners in tests/test_cli.py and tests/test_cli_kinds.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from twilio_trigger import SignatureVerifier

from .conftest import invoke

TOKEN = "5f1d0c9b8a7e6d5c4b3a29180f7e6d5c"
OTHER_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
URL = "https://hooks.example.com/sms?tenant=7"
PARAMS = {
    "AccountSid": "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978",
    "MessageSid": "SM" + "0123456789abcdef" * 2,
    "MessageStatus": "delivered",
    "To": "+15558675310",
    "Body": "Ünïcode & spaces = fine",
}


def oracle(url: str, params: Mapping[str, str], token: str) -> str:
    return str(RequestValidator(token).compute_signature(url, dict(params)))


def as_arguments(params: Mapping[str, str]) -> list[str]:
    return [f"{name}={value}" for name, value in params.items()]


# -- sign ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "params"),
    [
        (URL, PARAMS),
        ("https://hooks.example.com/", {}),
        ("http://127.0.0.1:8090/calls", {"CallSid": "CA" + "9" * 32, "Digits": "1#", "E": ""}),
    ],
)
def test_sign_prints_the_signature_twilio_sends(url: str, params: dict[str, str]) -> None:
    result = invoke("sign", "--url", url, "--auth-token", TOKEN, *as_arguments(params))
    assert result.exit_code == 0, result.output
    assert result.output == oracle(url, params, TOKEN) + "\n"


def test_sign_reads_a_form_body() -> None:
    result = invoke("sign", "--url", URL, "--auth-token", TOKEN, "--body", urlencode(PARAMS))
    assert result.exit_code == 0, result.output
    assert result.output == oracle(URL, PARAMS, TOKEN) + "\n"


def test_sign_takes_the_token_from_the_environment() -> None:
    result = invoke("sign", "--url", URL, *as_arguments(PARAMS), env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert result.output == oracle(URL, PARAMS, TOKEN) + "\n"


def test_sign_uses_the_first_of_several_tokens() -> None:
    result = invoke("sign", "--url", URL, "--auth-token", f"{TOKEN},{OTHER_TOKEN}", "A=1")
    assert result.output == oracle(URL, {"A": "1"}, TOKEN) + "\n"


def test_sign_without_a_token_is_a_usage_error() -> None:
    result = invoke("sign", "--url", URL, "A=1")
    assert result.exit_code == 2
    assert "no auth token" in result.output


def test_sign_rejects_a_parameter_without_equals() -> None:
    result = invoke("sign", "--url", URL, "--auth-token", TOKEN, "Body")
    assert result.exit_code == 2
    assert "'Body' is not Name=Value" in result.output


# -- verify ----------------------------------------------------------------------------
def test_verify_accepts_twilios_signature_and_names_the_token() -> None:
    signature = oracle(URL, PARAMS, OTHER_TOKEN)
    result = invoke(
        "verify", "--url", URL, "--signature", signature,
        "--auth-token", TOKEN, "--auth-token", OTHER_TOKEN, *as_arguments(PARAMS),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"valid: signed with token #2 (…{OTHER_TOKEN[-4:]}) over ")
    assert result.output.endswith(f"({len(PARAMS)} parameters)\n")
    assert OTHER_TOKEN not in result.output


def test_verify_reads_a_form_body() -> None:
    signature = oracle(URL, PARAMS, TOKEN)
    result = invoke(
        "verify", "--url", URL, "--signature", signature, "--auth-token", TOKEN,
        "--body", urlencode(PARAMS),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("valid: signed with token #1")


def test_verify_rejects_a_signature_of_other_parameters() -> None:
    signature = oracle(URL, {**PARAMS, "MessageStatus": "failed"}, TOKEN)
    result = invoke(
        "verify", "--url", URL, "--signature", signature, "--auth-token", TOKEN,
        *as_arguments(PARAMS),
    )  # fmt: skip
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    # The public SignatureVerifier's reason, as the listener's log gives it.
    error = SignatureVerifier([TOKEN]).explain_form(URL, list(PARAMS.items()), signature)
    assert error is not None
    assert first == f"invalid ({len(PARAMS)} parameters): {error}"
    assert URL in first
    assert "no nearby URL matches either" in result.output


@pytest.mark.parametrize(
    ("signed_url", "why"),
    [
        ("http://hooks.example.com/sms?tenant=7", "the scheme is http"),
        ("https://hooks.example.com/sms/?tenant=7", "the trailing slash differs"),
        ("https://hooks.example.com/sms", "without the query string"),
    ],
)
def test_verify_names_the_url_twilio_called(signed_url: str, why: str) -> None:
    signature = oracle(signed_url, PARAMS, TOKEN)
    result = invoke(
        "verify", "--url", URL, "--signature", signature, "--auth-token", TOKEN,
        *as_arguments(PARAMS),
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"it matches {signed_url} ({why})" in result.output
    assert "set public_url (TWILIO_TRIGGER_PUBLIC_URL)" in result.output


def test_verify_needs_a_signature() -> None:
    result = invoke("verify", "--url", URL, "--auth-token", TOKEN)
    assert result.exit_code == 2
    assert "Missing option '--signature'" in result.output


# -- send: what is refused before anything is sent ---------------------------------------
@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback URL whose port is bound by nobody listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


def test_send_rejects_an_unknown_kind() -> None:
    result = invoke("send", "fax", "delivered", "--auth-token", TOKEN)
    assert result.exit_code == 2
    assert "'fax' is not one of" in result.output
    for kind in ("sms", "call", "inbound-call", "recording"):
        assert kind in result.output


def test_send_refuses_a_variant_its_kind_does_not_have(refusing_url: str) -> None:
    result = invoke("send", "gather", "humming", "--auth-token", TOKEN, "--url", refusing_url)
    assert result.exit_code == 2
    assert "Invalid value for STATUS" in result.output
    assert "digits" in result.output


@pytest.mark.parametrize("value", ["alice", ":secret", "alice:"])
def test_send_rejects_malformed_basic_credentials(refusing_url: str, value: str) -> None:
    result = invoke(
        "send", "sms", "sent", "--auth-token", TOKEN, "--url", refusing_url, "--basic-auth", value
    )
    assert result.exit_code == 2
    assert "expected USER:PASSWORD" in result.output


def test_send_refuses_a_path_without_its_slash(refusing_url: str) -> None:
    result = invoke("send", "gather", "--auth-token", TOKEN, "--url", refusing_url, "--path", "x")
    assert result.exit_code == 2
    assert "a path starts with /" in result.output


def test_send_help_lists_the_events_of_every_kind() -> None:
    result = invoke("send", "--help")
    assert result.exit_code == 0
    assert "conference: conference-start conference-end participant-join" in result.output
    assert "gather: (one callback, on_gather)" in result.output
    assert "taskrouter: activity.created" in result.output


def test_send_without_a_token_is_a_usage_error(refusing_url: str) -> None:
    result = invoke("send", "sms", "delivered", "--url", refusing_url)
    assert result.exit_code == 2
    assert "no auth token: pass --auth-token or set TWILIO_AUTH_TOKEN" in result.output


@pytest.mark.parametrize("value", ["no-equals", "=secret", "id=", " =secret"])
def test_send_rejects_a_malformed_shared_key(refusing_url: str, value: str) -> None:
    result = invoke("send", "sms", "delivered", "--url", refusing_url, "--shared-key", value)
    assert result.exit_code == 2
    assert "expected ID=SECRET" in result.output


def test_send_rejects_a_set_without_equals(refusing_url: str) -> None:
    result = invoke(
        "send", "sms", "received", "--url", refusing_url, "--auth-token", TOKEN, "--set", "Body"
    )
    assert result.exit_code == 2
    assert "'Body' is not Name=Value" in result.output


@pytest.mark.parametrize(
    ("kind", "status"), [("recording", "completed"), ("inbound-call", "ringing")]
)
def test_send_event_streams_refuses_what_it_does_not_carry(
    refusing_url: str, kind: str, status: str
) -> None:
    result = invoke(
        "send", kind, status, "--event-streams", "--url", refusing_url, "--auth-token", TOKEN
    )
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if "Event Streams carries" in line]
    assert line.endswith(" events only")
    assert "sms" in line
    assert "call" in line
    assert kind not in line.split()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:8090", "http:///path"])
def test_send_rejects_a_url_that_is_not_http(url: str) -> None:
    result = invoke("send", "sms", "delivered", "--url", url, "--auth-token", TOKEN)
    assert result.exit_code == 2
    assert "is not an http(s) URL" in result.output


def test_send_says_when_it_cannot_reach_the_url(refusing_url: str) -> None:
    result = invoke("send", "sms", "delivered", "--url", refusing_url, "--auth-token", TOKEN)
    assert result.exit_code == 1
    assert f"Error: cannot reach {refusing_url}: " in result.output


def test_send_refuses_a_misspelt_status_and_says_which_was_meant(refusing_url: str) -> None:
    result = invoke("send", "sms", "deliverd", "--auth-token", TOKEN, "--url", refusing_url)
    assert result.exit_code == 2
    assert "'deliverd' is not a status of sms: did you mean 'delivered'?" in result.output
    assert "--set MessageStatus=deliverd" in result.output


@pytest.mark.parametrize("status", ["Delivered", "teleported"])
def test_send_sends_a_case_variant_or_a_status_far_from_any(refusing_url: str, status: str) -> None:
    # Both on purpose: the listener's reading of a status in another case, and of
    # a status Twilio may add.  (Nobody listens at the URL: exit 1, not a usage error.)
    result = invoke("send", "sms", status, "--auth-token", TOKEN, "--url", refusing_url)
    assert result.exit_code == 1, result.output
    assert "Invalid value for STATUS" not in result.output
