"""Twilio's request signature (``signature.py``): the algorithm and the URL forms it
signs, checked against twilio-python's RequestValidator.

The verifier that uses them is in ``test_verifier.py``; JSON bodies and shared keys
in ``test_signature_json.py`` and ``test_signature_shared.py``.
"""

from __future__ import annotations

import string
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tests.payloads import MultiParams as MultiDict
from twilio_trigger import compute_signature
from twilio_trigger._core.signature import url_variants
from twilio_trigger._core.verifier import SignatureVerifier

TOKEN = "12345"
EXAMPLE_URL = "https://example.com/myapp.php?foo=1&bar=2"
MYCOMPANY_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
MYCOMPANY_URL_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2"

# Twilio's security page (reference §4, "SEC").
EXAMPLE_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675310"),
    ("Digits", "1234"),
    ("From", "+14158675310"),
    ("To", "+18005551212"),
]
# twilio-python's tests (reference §4, "PYT"): deliberately not in sorted order.
MYCOMPANY_PARAMS = [
    ("To", "+18005551212"),
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("Caller", "+14158675309"),
]
REPEATED_PARAMS = [
    ("Sid", "CA123"),
    ("SidAccount", "AC123"),
    ("Digits", "5678"),
    ("Digits", "1234"),
    ("Digits", "1234"),
]


# -- the reference's test vectors ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        pytest.param(EXAMPLE_URL, EXAMPLE_PARAMS, "L/OH5YylLD5NRKLltdqwSvS0BnU=", id="twilio-docs"),
        pytest.param(MYCOMPANY_URL, MYCOMPANY_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", id="pyt"),
        pytest.param(
            MYCOMPANY_URL_443, MYCOMPANY_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=", id="pyt-443"
        ),
        pytest.param(
            MYCOMPANY_URL, REPEATED_PARAMS, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", id="pyt-repeated"
        ),
    ],
)
def test_compute_signature_reproduces_the_reference_vectors(
    url: str, params: list[tuple[str, str]], expected: str
) -> None:
    assert compute_signature(url, params, TOKEN) == expected
    assert compute_signature(url, reversed(params), TOKEN) == expected
    assert compute_signature(url, iter(params), TOKEN) == expected  # any iterable
    assert RequestValidator(TOKEN).compute_signature(url, MultiDict(params)) == expected


# -- url_variants ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://example.com/hook?a=1",
            ("https://example.com/hook?a=1", "https://example.com:443/hook?a=1"),
        ),
        ("http://example.com/hook", ("http://example.com/hook", "http://example.com:80/hook")),
        (
            "https://example.com:443/hook",
            ("https://example.com/hook", "https://example.com:443/hook"),
        ),
        (
            "http://example.com:8080/hook",
            ("http://example.com/hook", "http://example.com:8080/hook"),
        ),
        (
            "https://example.com:8443/hook",
            ("https://example.com/hook", "https://example.com:8443/hook"),
        ),
        (
            "https://user:pass@example.com/hook",
            ("https://example.com/hook", "https://example.com:443/hook"),
        ),
        (
            "http://user:pass@example.com:8080/hook",
            ("http://example.com/hook", "http://example.com:8080/hook"),
        ),
        ("https://[::1]:8443/hook", ("https://[::1]/hook", "https://[::1]:8443/hook")),
        (
            "https://[2001:db8::1]/hook",
            ("https://[2001:db8::1]/hook", "https://[2001:db8::1]:443/hook"),
        ),
        ("http://user@[::1]/hook", ("http://[::1]/hook", "http://[::1]:80/hook")),
        (
            # A webhook configured as a bare host is signed without the slash
            # its requests carry: the root path is tried both ways.
            "https://example.com/",
            (
                "https://example.com/",
                "https://example.com:443/",
                "https://example.com",
                "https://example.com:443",
            ),
        ),
        (
            "http://example.com?a=1",
            (
                "http://example.com/?a=1",
                "http://example.com:80/?a=1",
                "http://example.com?a=1",
                "http://example.com:80?a=1",
            ),
        ),
    ],
)
def test_url_variants(url: str, expected: tuple[str, ...]) -> None:
    assert url_variants(url) == expected


def test_a_signature_over_an_ipv6_url_verifies_with_and_without_the_port() -> None:
    params = [("CallStatus", "ringing")]
    verifier = SignatureVerifier(["tok"])
    with_port = compute_signature("https://[::1]:8443/hook", params, "tok").encode()
    without = compute_signature("https://[::1]/hook", params, "tok").encode()
    assert verifier.verify("https://[::1]:8443/hook", params, without)
    assert verifier.verify(
        "https://[::1]/hook",
        params,
        compute_signature("https://[::1]:443/hook", params, "tok").encode(),
    )
    assert verifier.verify("https://[::1]:8443/hook", params, with_port)
    assert not verifier.verify("https://[::2]:8443/hook", params, with_port)


def test_user_information_is_not_signed() -> None:
    params = [("MessageStatus", "sent")]
    signature = compute_signature("https://example.com/hook", params, "tok").encode()
    verifier = SignatureVerifier(["tok"])
    assert verifier.verify("https://user:pass@example.com/hook", params, signature)


# -- property tests against the oracle --------------------------------------------------

_PATH_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,=:@/"
# ";" is left out of paths: urllib's urlparse (which RequestValidator uses) moves
# ";params" out of the path and drops an empty one, so the oracle would not sign
# the URL as given.
_QUERY_CHARS = _PATH_CHARS + ";?"
_HEX = "0123456789ABCDEFabcdef"
_BASE64 = string.ascii_letters + string.digits + "+/="

_percent_escapes = st.one_of(
    st.tuples(st.sampled_from(_HEX), st.sampled_from(_HEX)).map(lambda t: "%" + t[0] + t[1]),
    st.sampled_from(["%20", "%2F", "%3F", "%23", "%E2%9C%93", "%F0%9F%98%80", "%25"]),
)


def _url_text(chars: str, *, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.lists(
        st.one_of(st.sampled_from(chars), _percent_escapes), min_size=min_size, max_size=20
    ).map("".join)


class Url(NamedTuple):
    scheme: str
    host: str
    port: int | None
    rest: str  # path and query

    def _with(self, port: int | None) -> str:
        netloc = self.host if port is None else f"{self.host}:{port}"
        return f"{self.scheme}://{netloc}{self.rest}"

    @property
    def full(self) -> str:
        return self._with(self.port)

    @property
    def with_port(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self._with(default if self.port is None else self.port)

    @property
    def without_port(self) -> str:
        return self._with(None)


@st.composite
def urls(draw: st.DrawFn) -> Url:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(
        st.from_regex(
            r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?(\.[a-z]{2,4}){0,2}", fullmatch=True
        )
    )
    port = draw(st.none() | st.sampled_from([80, 443, 8080, 8443]) | st.integers(1, 65535))
    path = draw(st.one_of(st.just(""), _url_text(_PATH_CHARS).map(lambda p: "/" + p)))
    query = draw(st.one_of(st.just(""), _url_text(_QUERY_CHARS, min_size=1).map("?".__add__)))
    return Url(scheme, host, port, path + query)


_any_text = st.text(st.characters(codec="utf-8"), max_size=12)
_emoji_or_text = st.one_of(_any_text, st.sampled_from(["", "😀", "é", "ü ü", "+", "&=%"]))
tokens = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40)


@st.composite
def param_lists(draw: st.DrawFn) -> list[tuple[str, str]]:
    # A small pool of names makes repeated names common.
    names = draw(st.lists(_emoji_or_text, min_size=1, max_size=5))
    return draw(st.lists(st.tuples(st.sampled_from(names), _emoji_or_text), max_size=12))


@settings(max_examples=300, deadline=None)
@given(url=urls())
def test_url_variants_are_the_url_without_and_with_its_port(url: Url) -> None:
    variants = url_variants(url.full)
    assert variants[:2] == (url.without_port, url.with_port) or (
        url.rest[:1] in ("", "?") and {url.without_port, url.with_port} <= set(variants)
    )


@settings(max_examples=300, deadline=None)
@given(url=urls(), pairs=param_lists(), token=tokens)
def test_compute_signature_agrees_with_twilio_python(
    url: Url, pairs: list[tuple[str, str]], token: str
) -> None:
    expected = RequestValidator(token).compute_signature(url.full, MultiDict(pairs))
    assert compute_signature(url.full, pairs, token) == expected
