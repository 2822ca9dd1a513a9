"""JSON-body signatures (Event Streams webhook sinks), checked against twilio-python.

Twilio adds ``bodySHA256`` (lowercase hex SHA-256 of the raw body) to the URL
and signs that URL alone, with no parameters appended.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tests.core.test_signature import Url, tokens, urls
from twilio_trigger._core.signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    body_sha256,
    compute_json_signature,
    compute_signature,
    json_url,
    signature_settings,
)
from twilio_trigger._core.verifier import SignatureVerifier

# twilio-python's test of JSON bodies (reference §4, "PYT").
TOKEN = "12345"
BODY = b'{"property": "value", "boolean": true}'
BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
BASE_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
HASHED_URL = f"{BASE_URL}&bodySHA256={BODY_HASH}"
HASHED_URL_443 = HASHED_URL.replace("mycompany.com", "mycompany.com:443")
SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4="
KEY_ID = "webhooks_sharedkey_0123456789abcdef"
SECRET = "shared-secret-0123456789abcdef"


# -- the reference vector ----------------------------------------------------------------


def test_the_helpers_reproduce_the_reference_vector() -> None:
    assert body_sha256(BODY) == BODY_HASH
    assert json_url(BASE_URL, BODY) == HASHED_URL
    assert compute_json_signature(HASHED_URL, TOKEN) == SIGNATURE
    assert compute_json_signature(HASHED_URL, TOKEN) == compute_signature(HASHED_URL, [], TOKEN)
    oracle = RequestValidator(TOKEN)
    assert oracle.compute_hash(BODY.decode()) == BODY_HASH
    assert oracle.compute_signature(HASHED_URL, {}) == SIGNATURE
    assert oracle.validate(HASHED_URL, BODY.decode(), SIGNATURE)


@pytest.mark.parametrize("url", [HASHED_URL, HASHED_URL_443])
def test_verify_json_accepts_the_reference_vector_with_or_without_the_port(url: str) -> None:
    verifier = SignatureVerifier([TOKEN])
    assert verifier.verify_json(url, BODY, SIGNATURE.encode())
    assert verifier.matching_json(url, BODY, SIGNATURE.encode()) == (0, HASHED_URL)
    assert RequestValidator(TOKEN).validate(url, BODY.decode(), SIGNATURE)


def test_verify_json_refuses_a_changed_request() -> None:
    verifier = SignatureVerifier([TOKEN])
    signature = SIGNATURE.encode()
    # Another body, the same body reformatted, another token.
    assert not verifier.verify_json(HASHED_URL, BODY + b" ", signature)
    assert not verifier.verify_json(HASHED_URL, b'{"property":"value","boolean":true}', signature)
    assert not SignatureVerifier(["54321"]).verify_json(HASHED_URL, BODY, signature)
    # The hash missing, empty, upper case (the oracle compares exactly), of another body.
    assert not verifier.verify_json(
        BASE_URL, BODY, compute_json_signature(BASE_URL, TOKEN).encode()
    )
    for url in (
        f"{BASE_URL}&bodySHA256=",
        f"{BASE_URL}&bodySHA256={BODY_HASH.upper()}",
        json_url(BASE_URL, b"{}"),
    ):
        assert not verifier.verify_json(url, BODY, compute_json_signature(url, TOKEN).encode())
    upper = f"{BASE_URL}&bodySHA256={BODY_HASH.upper()}"
    oracle_signature = RequestValidator(TOKEN).compute_signature(upper, {})
    assert not RequestValidator(TOKEN).validate(upper, BODY.decode(), oracle_signature)
    # The parameters of a form are not part of a JSON signature.
    form_signature = compute_signature(HASHED_URL, [("property", "value")], TOKEN).encode()
    assert not verifier.verify_json(HASHED_URL, BODY, form_signature)
    # Another scheme, host or path.
    assert not verifier.verify_json(HASHED_URL.replace("https", "http"), BODY, signature)
    assert not verifier.verify_json(HASHED_URL.replace("myapp", "other"), BODY, signature)


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        (f"{HASHED_URL}&bodySHA256={'0' * 64}", True),
        (f"{BASE_URL}&bodySHA256={'0' * 64}&bodySHA256={BODY_HASH}", False),
        (f"{BASE_URL}&bodySHA256=&bodySHA256={BODY_HASH}", True),  # a blank value is skipped
        (f"{BASE_URL}&bodySHA256={BODY_HASH[:10]}%{BODY_HASH[10:12]}{BODY_HASH[12:]}", False),
        (f"{BASE_URL}&bodySHA256={BODY_HASH[:10]}%3{BODY_HASH[10]}{BODY_HASH[11:]}", True),
    ],
)
def test_the_first_body_hash_counts_percent_decoded_as_twilio_python_reads_it(
    url: str, valid: bool
) -> None:
    signature = compute_json_signature(url, TOKEN)
    assert RequestValidator(TOKEN).validate(url, BODY.decode(), signature) is valid
    assert SignatureVerifier([TOKEN]).verify_json(url, BODY, signature.encode()) is valid


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h.example/p", f"https://h.example/p?bodySHA256={BODY_HASH}"),
        ("https://h.example/p?", f"https://h.example/p?bodySHA256={BODY_HASH}"),
        ("https://h.example/p?a=1", f"https://h.example/p?a=1&bodySHA256={BODY_HASH}"),
        ("https://h.example/p?a=1&", f"https://h.example/p?a=1&bodySHA256={BODY_HASH}"),
        ("https://h.example/p#f", f"https://h.example/p?bodySHA256={BODY_HASH}#f"),
        # The query is what follows the first "?": here it is "?", a name.
        ("https://h.example/p??", f"https://h.example/p??&bodySHA256={BODY_HASH}"),
    ],
)
def test_json_url(url: str, expected: str) -> None:
    assert json_url(url, BODY) == expected


def test_a_shared_key_json_signature() -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    header = signature_settings(KEY_ID).encode()
    signature = RequestValidator(SECRET).compute_signature(HASHED_URL_443, {}, HMAC_SHA256)
    assert compute_json_signature(HASHED_URL_443, SECRET, HMAC_SHA256) == signature
    assert RequestValidator(SECRET).validate(HASHED_URL, BODY.decode(), signature, HMAC_SHA256)
    encoded = signature.encode()
    assert verifier.matching_json(HASHED_URL, BODY, encoded, header) == (0, HASHED_URL_443)
    assert not verifier.verify_json(HASHED_URL, BODY, encoded)  # no header: the auth token
    assert not verifier.verify_json(HASHED_URL, BODY, encoded, signature_settings("other"))
    assert not verifier.verify_json(HASHED_URL, BODY + b"\n", encoded, header)
    sha1_signature = compute_json_signature(HASHED_URL, SECRET, HMAC_SHA1).encode()
    assert not verifier.verify_json(HASHED_URL, BODY, sha1_signature, header)
    assert not verifier.verify_json(HASHED_URL, BODY, encoded, signature_settings(KEY_ID, "X"))
    # The auth token still signs JSON requests that carry no settings header.
    assert verifier.verify_json(HASHED_URL, BODY, SIGNATURE.encode())
    assert not verifier.verify_json(HASHED_URL, BODY, SIGNATURE.encode(), header)
    assert not SignatureVerifier(shared_keys=[SECRET]).verify_json(
        HASHED_URL, BODY, SIGNATURE.encode()
    )


def test_json_urls_do_not_fill_the_form_url_cache() -> None:
    verifier = SignatureVerifier([TOKEN])
    for n in range(20):
        body = json.dumps({"n": n}).encode()
        url = json_url(BASE_URL, body)
        assert verifier.verify_json(url, body, compute_json_signature(url, TOKEN).encode())
    assert not verifier._url_cache


# -- property tests against the oracle --------------------------------------------------

_json_text = st.text(st.characters(codec="utf-8"), max_size=10)
_json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _json_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_json_text, children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """A JSON document as Twilio's Event Streams might send it: UTF-8, maybe not ASCII."""
    value = draw(_json_values)
    ascii_only = draw(st.booleans())
    indent = draw(st.sampled_from([None, 2]))
    return json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(url=urls(), body=json_bodies(), other_body=json_bodies(), token=tokens, other=tokens)
def test_verify_json_agrees_with_twilio_python_validate(
    url: Url, body: bytes, other_body: bytes, token: str, other: str
) -> None:
    assume(other != token and other_body != body)
    assume("bodySHA256" not in url.rest)
    oracle = RequestValidator(token)
    text = body.decode("utf-8")
    hashed = json_url(url.full, body)
    hashed_variants = {
        "as requested": hashed,
        "with port": json_url(url.with_port, body),
        "without port": json_url(url.without_port, body),
    }
    verifier = SignatureVerifier([other, token])
    good = {label: oracle.compute_signature(u, {}) for label, u in hashed_variants.items()}
    assert good["as requested"] == compute_json_signature(hashed, token)
    bad = {
        "other token": RequestValidator(other + "x").compute_signature(hashed, {}),
        "no hash signed": oracle.compute_signature(url.full, {}),
    }
    for label, signature in {**good, **bad}.items():
        ours = verifier.verify_json(hashed, body, signature.encode())
        assert ours == oracle.validate(hashed, text, signature), label
        assert ours is (label in good), label
    signature = good["as requested"]
    # The body changed, or the hash of another body in the URL.
    assert not verifier.verify_json(hashed, body + b" ", signature.encode())
    assert not oracle.validate(hashed, text + " ", signature)
    elsewhere = json_url(url.full, other_body)
    forged = oracle.compute_signature(elsewhere, {})
    assert not verifier.verify_json(elsewhere, body, forged.encode())
    assert not oracle.validate(elsewhere, text, forged)
    # No hash in the URL at all.
    assert not verifier.verify_json(url.full, body, bad["no hash signed"].encode())
    if url.port in (None, 443 if url.scheme == "https" else 80):
        for form in ("with port", "without port"):
            assert verifier.verify_json(hashed_variants[form], body, signature.encode())


@settings(max_examples=100, deadline=None)
@given(url=urls(), body=json_bodies(), secret=tokens, token=tokens)
def test_shared_key_json_signatures_agree_with_twilio_python(
    url: Url, body: bytes, secret: str, token: str
) -> None:
    assume(secret != token)
    assume("bodySHA256" not in url.rest)
    hashed = json_url(url.full, body)
    oracle = RequestValidator(secret)
    signature = oracle.compute_signature(hashed, {}, HMAC_SHA256)
    assert compute_json_signature(hashed, secret, HMAC_SHA256) == signature
    assert oracle.validate(hashed, body.decode("utf-8"), signature, HMAC_SHA256)
    verifier = SignatureVerifier([token], {KEY_ID: secret})
    header = signature_settings(KEY_ID).encode()
    assert verifier.verify_json(hashed, body, signature.encode(), header)
    assert not verifier.verify_json(hashed, body, signature.encode())
    assert not verifier.verify_json(hashed, body + b"x", signature.encode(), header)
    intruder = RequestValidator(token).compute_signature(hashed, {}, HMAC_SHA256)
    assert not verifier.verify_json(hashed, body, intruder.encode(), header)
