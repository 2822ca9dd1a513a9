"""Every answer the listener gives (``answers.py``): status, content type, length, and
bodies that say what went wrong without showing anything internal."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from twilio_trigger._core import answers
from twilio_trigger._core.answers import Answer, acknowledged, answer, closing, reject, twiml
from twilio_trigger._core.twiml import EMPTY_RESPONSE

PLAIN = "text/plain; charset=utf-8"

#: Each fixed answer: its status and the words a client (or Twilio's debugger) sees.
FIXED = {
    "NOT_FOUND": (404, "not found"),
    "METHOD_NOT_ALLOWED": (405, "POST"),
    "GET_ONLY": (405, "use GET"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "application/x-www-form-urlencoded"),
    "PAYLOAD_TOO_LARGE": (413, "too large"),
    "SIGNATURE_MISSING": (403, "missing X-Twilio-Signature"),
    "SIGNATURE_INVALID": (403, "invalid X-Twilio-Signature"),
    "MALFORMED_HOST": (400, "Host"),
    "MISSING_HOST": (400, "missing Host"),
    "NO_PARAMETERS": (400, "carries no parameters"),
    "FOREIGN_PARAMETERS": (400, "never in a Twilio webhook"),
    "CALLBACK_FAILED": (500, "callback failed"),
    "CALLBACK_TIMED_OUT": (503, "time limit"),
    "COPY_IN_PROGRESS": (503, "another copy"),
    "COPY_WAITED": (503, "another copy of this event failed"),
    "INBOX_UNAVAILABLE": (503, "try again"),
    "STORE_UNAVAILABLE": (503, "try again"),
}


def header(made: Answer, name: bytes) -> list[bytes]:
    return [value for key, value in made.headers if key == name]


def test_every_fixed_answer_of_the_module_is_listed_here() -> None:
    found = {
        name
        for name, value in vars(answers).items()
        if isinstance(value, Answer) and name.isupper()
    }
    assert found == set(FIXED)


@pytest.mark.parametrize(("name", "expected"), FIXED.items(), ids=list(FIXED))
def test_each_refusal_has_its_status_a_plain_text_body_and_its_length(
    name: str, expected: tuple[int, str]
) -> None:
    made = getattr(answers, name)
    status, says = expected
    assert made.status == status
    assert made.content_type == PLAIN
    assert header(made, b"content-type") == [PLAIN.encode()]
    assert header(made, b"content-length") == [str(len(made.body)).encode()]
    assert says in made.text
    # One line of text: no traceback, no source path, no exception's repr.
    assert made.text.endswith("\n")
    assert made.text.count("\n") == 1
    for internal in ("Traceback", 'File "', ".py", "Error(", "twilio_trigger."):
        assert internal not in made.text, (name, internal)


def test_the_method_answers_say_which_methods_are_allowed() -> None:
    assert header(answers.METHOD_NOT_ALLOWED, b"allow") == [b"POST, GET"]
    assert header(answers.GET_ONLY, b"allow") == [b"GET, HEAD"]
    assert header(answers.NOT_FOUND, b"allow") == []


def test_the_challenge_asks_for_basic_credentials_with_a_quoted_realm() -> None:
    challenge = answers.unauthorized('a "b" \\ c')
    assert challenge.status == 401
    assert header(challenge, b"www-authenticate") == [
        b'Basic realm="a \\"b\\" \\\\ c", charset="UTF-8"'
    ]
    assert header(answers.unauthorized(), b"www-authenticate") == [
        b'Basic realm="twilio-trigger", charset="UTF-8"'
    ]


def test_a_json_answer_is_200_application_json() -> None:
    answer = answers.json_answer(b'{"a":1}')
    assert (answer.status, answer.content_type, answer.body) == (
        200,
        "application/json",
        b'{"a":1}',
    )


def test_acknowledged_is_200_with_empty_twiml() -> None:
    assert acknowledged.status == 200
    assert acknowledged.content_type == "text/xml"
    assert acknowledged.body == EMPTY_RESPONSE
    root = ElementTree.fromstring(acknowledged.body)  # noqa: S314 - the package's own constant
    assert (root.tag, list(root), (root.text or "").strip()) == ("Response", [], "")
    assert header(acknowledged, b"content-length") == [str(len(EMPTY_RESPONSE)).encode()]


def test_a_reply_is_200_with_its_twiml_as_it_is() -> None:
    body = b"<?xml version='1.0' encoding='UTF-8'?><Response><Message>Hi \xc3\xa9</Message>"
    body += b"</Response>"
    made = twiml(body)
    assert (made.status, made.body, made.content_type) == (200, body, "text/xml")
    assert header(made, b"content-length") == [str(len(body)).encode()]
    assert made.text.endswith("<Message>Hi é</Message></Response>")


def test_reject_ends_its_message_with_a_newline_and_counts_bytes_not_characters() -> None:
    made = reject(429, "slow down ✓", (b"retry-after", b"1"))
    assert made.status == 429
    assert made.body == "slow down ✓\n".encode()
    assert header(made, b"content-length") == [str(len("slow down ✓\n".encode())).encode()]
    assert header(made, b"retry-after") == [b"1"]


def test_answer_puts_content_type_and_length_before_the_extra_headers() -> None:
    made = answer(201, b"{}", b"application/json", (b"x-a", b"1"), (b"x-b", b"2"))
    assert made.headers == (
        (b"content-type", b"application/json"),
        (b"content-length", b"2"),
        (b"x-a", b"1"),
        (b"x-b", b"2"),
    )


def test_closing_asks_once_for_the_connection_to_be_closed() -> None:
    closed = closing(answers.PAYLOAD_TOO_LARGE)
    assert header(closed, b"connection") == [b"close"]
    assert (closed.status, closed.body) == (413, answers.PAYLOAD_TOO_LARGE.body)
    assert closed.headers[: len(answers.PAYLOAD_TOO_LARGE.headers)] == (
        answers.PAYLOAD_TOO_LARGE.headers
    )
    assert closing(closed) is closed
    assert header(answers.PAYLOAD_TOO_LARGE, b"connection") == []  # the shared one is untouched


def test_answers_are_immutable() -> None:
    with pytest.raises(AttributeError):
        answers.NOT_FOUND.status = 200  # type: ignore[misc]
