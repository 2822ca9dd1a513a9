"""Decoding Twilio's application/x-www-form-urlencoded bodies."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_trigger._core.form import FormError, is_form_content_type, parse_form


def test_order_and_repeated_names_are_kept() -> None:
    body = b"To=%2B1555&Digits=5678&From=%2B1666&Digits=1234&Digits=1234"
    assert parse_form(body, 100) == [
        ("To", "+1555"),
        ("Digits", "5678"),
        ("From", "+1666"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]


def test_blank_values_are_kept() -> None:
    assert parse_form(b"Body=&ErrorCode=&MessageStatus=sent", 100) == [
        ("Body", ""),
        ("ErrorCode", ""),
        ("MessageStatus", "sent"),
    ]


def test_an_empty_body_has_no_parameters() -> None:
    assert parse_form(b"", 100) == []


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b"Body=hello+world", "hello world"),
        (b"Body=a%26b%3Dc", "a&b=c"),
        (b"Body=1%2B1", "1+1"),
        (b"Body=100%25", "100%"),
        (b"Body=caf%C3%A9", "café"),
        (b"Body=%F0%9F%98%80", "😀"),
        (b"Body=%e2%9c%93", "✓"),
        (b"Body=%20lead+and+trail%20", " lead and trail "),
        (b"Body=line%0Abreak", "line\nbreak"),
    ],
)
def test_values_are_decoded(body: bytes, value: str) -> None:
    assert parse_form(body, 100) == [("Body", value)]


def test_names_are_decoded_too() -> None:
    assert parse_form(b"Na%26me+x=1", 100) == [("Na&me x", "1")]


def test_raw_utf8_in_the_body_is_accepted() -> None:
    assert parse_form("Body=café 😀".encode(), 100) == [("Body", "café 😀")]


@pytest.mark.parametrize(
    "body",
    [
        b"Body=\xff",
        b"Body=caf\xe9",  # latin-1
        b"\xc3(=1",
    ],
)
def test_a_body_that_is_not_utf8_is_a_400(body: bytes) -> None:
    with pytest.raises(FormError) as caught:
        parse_form(body, 100)
    assert caught.value.status == 400
    assert "UTF-8" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        b"Body=%FF",
        b"Body=caf%E9",  # latin-1, percent-encoded
        b"Body=%C3",  # truncated sequence
        b"Body=%ED%A0%80",  # an encoded surrogate
        b"N%FFame=1",
    ],
)
def test_invalid_percent_encoded_utf8_is_a_400(body: bytes) -> None:
    with pytest.raises(FormError) as caught:
        parse_form(body, 100)
    assert caught.value.status == 400
    assert "UTF-8" in caught.value.message


def test_more_parameters_than_max_params_is_a_413() -> None:
    body = b"&".join(b"P%d=%d" % (n, n) for n in range(10))
    assert len(parse_form(body, 10)) == 10
    with pytest.raises(FormError) as caught:
        parse_form(body, 9)
    assert caught.value.status == 413
    assert "9" in caught.value.message


def test_form_error_is_a_value_error_carrying_its_status() -> None:
    error = FormError(413, "too big")
    assert isinstance(error, ValueError)
    assert (error.status, error.message, str(error)) == (413, "too big", "too big")


_text = st.text(st.characters(codec="utf-8"), max_size=10)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(_text, _text), max_size=10))
def test_parse_form_inverts_form_encoding(pairs: list[tuple[str, str]]) -> None:
    body = urlencode(pairs).encode("ascii")
    # An empty name with an empty value encodes to "=", which is kept as ("", "").
    assert parse_form(body, 100) == pairs


# -- Content-Type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        b"application/x-www-form-urlencoded",
        b"application/x-www-form-urlencoded; charset=UTF-8",
        b"application/x-www-form-urlencoded;charset=utf-8",
        b'application/x-www-form-urlencoded; charset="utf-8"',
        b"application/x-www-form-urlencoded; charset=utf8",
        b"Application/X-WWW-Form-URLEncoded; Charset=UTF-8",
        b"  application/x-www-form-urlencoded  ",
    ],
)
def test_form_content_types_are_accepted(value: bytes) -> None:
    assert is_form_content_type(value) is True


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"application/json",
        b"application/json; charset=utf-8",
        b"text/plain",
        b"multipart/form-data; boundary=x",
        b"application/x-www-form-urlencoded; charset=iso-8859-1",
        b"application/x-www-form-urlencoded; charset=latin1",
        b"application/x-www-form-urlencodedx",
    ],
)
def test_other_content_types_are_rejected(value: bytes | None) -> None:
    assert is_form_content_type(value) is False


def test_content_types_remembered_stay_few_and_short_and_answer_the_same() -> None:
    from twilio_trigger._core import form

    for number in range(1000):  # made-up types: at most 64 remembered
        made_up = b"application/x-www-form-urlencoded; x=%d" % number
        assert is_form_content_type(made_up) is True
        assert is_form_content_type(b"text/plain; x=%d" % number) is False
    long_one = b"application/x-www-form-urlencoded;" + b" " * 200
    assert is_form_content_type(long_one) is True
    assert len(form._SEEN_FORM_TYPES) <= 64
    assert all(len(value) <= 100 for value in form._SEEN_FORM_TYPES)
    for value, known in list(form._SEEN_FORM_TYPES.items()):  # asked again: the same
        assert is_form_content_type(value) is known is form._is_form_content_type(value)


# The fast path must give exactly what the standard library gives, odd bodies included.
_FORM_BYTES = st.lists(
    st.sampled_from(
        [b"a", b"B", b"=", b"&", b"+", b"%", b"%2", b"%26", b"%3D", b"%2B", b"%00", b"%F0%9F%98%80",
         b"%C3%A9", b"%zz", b"\0", b";", b" ", b"~"]
    ),
    max_size=40,
).map(b"".join)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(body=_FORM_BYTES)
def test_parse_form_agrees_with_parse_qsl(body: bytes) -> None:
    try:
        expected = parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        with pytest.raises(FormError) as caught:
            parse_form(body, 1000)
        assert caught.value.status == 400
        return
    assert parse_form(body, 1000) == expected
