"""The public signature API: ``SignatureVerifier.check`` and ``SignatureError``.

Every good signature here is made by twilio-python's ``RequestValidator`` (the
independent oracle), never by the package's own ``compute_signature``; every
refusal is checked for its reason, the URL forms tried, and the absence of
secrets from what it says.

Also the verifier's basics over the reference's test vectors, and its agreement
with ``RequestValidator.validate``.
"""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

import twilio_trigger
from tests.core.test_signature import (
    _BASE64,
    EXAMPLE_PARAMS,
    EXAMPLE_URL,
    MYCOMPANY_PARAMS,
    MYCOMPANY_URL,
    MYCOMPANY_URL_443,
    REPEATED_PARAMS,
    Url,
    param_lists,
    tokens,
    urls,
)
from tests.core.test_signature import TOKEN as REFERENCE_TOKEN
from tests.core.test_signature_json import json_bodies
from tests.payloads import MultiParams
from twilio_trigger import compute_signature
from twilio_trigger._core.signature import json_url
from twilio_trigger._core.verifier import SignatureVerifier
from twilio_trigger._exceptions import SignatureError, TwilioTriggerError

TOKEN = "auth-token-number-one-abcdefghij"
OTHER_TOKEN = "auth-token-number-two-0123456789"
KEY_ID = "webhooks_sharedkey_0123456789abcdef"
SECRET = "shared-secret-0123456789abcdef"
KEY_ID_2 = "webhooks_sharedkey_fedcba9876543210"
SECRET_2 = "shared-secret-fedcba9876543210"
SECRETS = (TOKEN, OTHER_TOKEN, SECRET, SECRET_2)

URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
URL_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
PARAMS = {
    "To": "+18005551212",
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "Caller": "+14158675309",
}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
BODY = json.dumps([{"type": "com.twilio.messaging.message.delivered", "id": "1"}]).encode()
SHA256_SETTINGS = f"key={KEY_ID},algorithm=HMAC_SHA256"


def oracle(url: str, params: Any, secret: str = TOKEN, algorithm: str | None = None) -> str:
    """The signature twilio-python computes."""
    return str(RequestValidator(secret).compute_signature(url, params, algorithm))


def form_headers(signature: str, settings_header: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
    if settings_header is not None:
        headers["X-Twilio-Webhooks-Signature-Settings"] = settings_header
    return headers


def json_headers(signature: str, settings_header: str | None = None) -> dict[str, str]:
    return {**form_headers(signature, settings_header), "Content-Type": JSON}


def refusal(
    verifier: SignatureVerifier, url: str, params: Any, headers: Mapping[str, str]
) -> SignatureError:
    """The error check() raises, which explain() must return too."""
    with pytest.raises(SignatureError) as caught:
        verifier.check(url, params, headers)
    error = caught.value
    explained = verifier.explain(url, params, headers)
    assert explained is not None
    assert (explained.reason, str(explained)) == (error.reason, str(error))
    told = f"{error} {error!r} {vars(error)}"
    for secret in SECRETS:
        assert secret not in told
    return error


class Headers(Mapping[str, str]):
    """A case-insensitive mapping of headers, as most frameworks have."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = {name.lower(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


# -- the public names --------------------------------------------------------------------


def test_the_api_is_exported_from_the_package() -> None:
    assert twilio_trigger.SignatureVerifier is SignatureVerifier
    assert twilio_trigger.SignatureError is SignatureError
    assert {"SignatureError", "SignatureVerifier"} <= set(twilio_trigger.__all__)
    assert issubclass(SignatureError, TwilioTriggerError)


def test_a_signature_error_survives_pickling() -> None:
    error = SignatureError(
        "no", reason=SignatureError.UNKNOWN_KEY, urls=("https://a/",), key_id="k", tokens_tried=2
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (str(copy), vars(copy)) == (str(error), vars(error))


# -- authentic requests: the oracle's signatures pass ------------------------------------


@pytest.mark.parametrize("signed_over", [URL, URL_443], ids=["without-port", "with-port"])
@pytest.mark.parametrize("received_at", [URL, URL_443], ids=["at-url", "at-url-443"])
def test_a_form_signed_with_or_without_the_port_passes(signed_over: str, received_at: str) -> None:
    signature = oracle(signed_over, PARAMS)
    verifier = SignatureVerifier([OTHER_TOKEN, TOKEN])
    headers = form_headers(signature)
    pairs = list(PARAMS.items())
    body = urlencode(pairs)
    for params in (PARAMS, pairs, body, body.encode(), bytearray(body.encode())):
        verifier.check(received_at, params, headers)
        assert verifier.explain(received_at, params, headers) is None


def test_repeated_names_as_pairs_lists_or_a_multidict() -> None:
    pairs = [("Sid", "CA123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]
    headers = form_headers(oracle(URL, MultiParams(pairs)))
    verifier = SignatureVerifier([TOKEN])
    verifier.check(URL, pairs, headers)
    verifier.check(URL, urlencode(pairs), headers)
    verifier.check(URL, {"Sid": "CA123", "Digits": ["5678", "1234", "1234"]}, headers)

    class MultiDict(dict[str, str]):  # werkzeug's shape: one value by [], all by getlist()
        def getlist(self, name: str) -> list[str]:
            return [value for key, value in pairs if key == name]

    verifier.check(URL, MultiDict(pairs), headers)
    with pytest.raises(SignatureError):
        verifier.check(URL, dict(pairs), headers)  # a value lost


@pytest.mark.parametrize("name", ["X-Twilio-Signature", "x-twilio-signature", "X-TWILIO-SIGNATURE"])
def test_header_names_are_matched_in_any_case(name: str) -> None:
    verifier = SignatureVerifier([TOKEN])
    headers = {"content-type": FORM, name: oracle(URL, PARAMS)}
    verifier.check(URL, PARAMS, headers)
    verifier.check(URL, PARAMS, Headers(headers))
    shared = SignatureVerifier(shared_keys={KEY_ID: SECRET})
    signature = oracle(URL, PARAMS, SECRET, "HMAC_SHA256")
    shared.check(
        URL,
        PARAMS,
        {name: signature, "x-twilio-webhooks-SIGNATURE-settings": SHA256_SETTINGS},
    )


@pytest.mark.parametrize("signed_over", [URL, URL_443], ids=["without-port", "with-port"])
@pytest.mark.parametrize("content_type", [JSON, "application/json; charset=utf-8"])
def test_a_json_body_passes_with_or_without_the_port(signed_over: str, content_type: str) -> None:
    hashed = json_url(signed_over, BODY)
    signature = oracle(hashed, {})
    assert RequestValidator(TOKEN).validate(hashed, BODY.decode(), signature)
    verifier = SignatureVerifier([TOKEN])
    headers = {**json_headers(signature), "Content-Type": content_type}
    for received_at in (json_url(URL, BODY), json_url(URL_443, BODY)):
        verifier.check(received_at, BODY, headers)
        verifier.check(received_at, BODY.decode(), headers)
        assert verifier.explain(received_at, BODY, headers) is None


@pytest.mark.parametrize("url", [URL, URL_443])
def test_shared_keys_pass_for_forms_and_json(url: str) -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID_2: SECRET_2, KEY_ID: SECRET})
    signature = oracle(url, PARAMS, SECRET, "HMAC_SHA256")
    verifier.check(URL, PARAMS, form_headers(signature, SHA256_SETTINGS))
    hashed = json_url(url, BODY)
    signature = oracle(hashed, {}, SECRET, "HMAC_SHA256")
    assert RequestValidator(SECRET).validate(hashed, BODY.decode(), signature, "HMAC_SHA256")
    verifier.check(json_url(URL, BODY), BODY, json_headers(signature, SHA256_SETTINGS))
    bare = SignatureVerifier(shared_keys=[SECRET_2, SECRET])
    bare.check(json_url(URL, BODY), BODY, json_headers(signature, SHA256_SETTINGS))


def test_public_url_replaces_the_url_the_server_sees() -> None:
    public = "https://mycompany.com/myapp.php"
    verifier = SignatureVerifier([TOKEN], public_url=public + "#rc=2")
    assert verifier.public_url == public
    headers = form_headers(oracle(URL, PARAMS))
    for seen in ("http://10.0.0.7:8000/prod/sms?foo=1&bar=2", "/sms?foo=1&bar=2", "?foo=1&bar=2"):
        verifier.check(seen, PARAMS, headers)
    error = refusal(verifier, "http://10.0.0.7:8000/sms?foo=1", PARAMS, headers)
    assert error.url == public + "?foo=1"
    assert error.urls[0] == public + "?foo=1"
    # Without a query string, the public URL alone.
    plain = form_headers(oracle(public, PARAMS))
    verifier.check("http://10.0.0.7:8000/sms", PARAMS, plain)
    verifier.check("?", PARAMS, plain)


def test_the_docstrings_lambda_handler() -> None:
    public = "https://hooks.example.com/sms"
    verifier = SignatureVerifier(auth_tokens=[TOKEN], public_url=public)

    def handler(event: dict[str, Any]) -> int:
        body = event.get("body") or ""
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body
        try:
            verifier.check("?" + event.get("rawQueryString", ""), raw, event["headers"])
        except SignatureError:
            return 403
        return 200

    form = urlencode(PARAMS)
    signature = oracle(public + "?a=1", PARAMS)
    headers = {"content-type": FORM, "x-twilio-signature": signature}
    event = {"rawQueryString": "a=1", "headers": headers, "body": form}
    assert handler(event) == 200
    encoded = base64.b64encode(form.encode()).decode()
    assert handler({**event, "body": encoded, "isBase64Encoded": True}) == 200
    assert handler({**event, "rawQueryString": "a=2"}) == 403


# -- every reason for a refusal ----------------------------------------------------------


@pytest.mark.parametrize("headers", [{"Content-Type": FORM}, form_headers("")])
def test_missing_signature(headers: dict[str, str]) -> None:
    error = refusal(SignatureVerifier([TOKEN]), URL, PARAMS, headers)
    assert error.reason == SignatureError.MISSING_SIGNATURE
    assert "X-Twilio-Signature" in str(error)
    assert (error.urls, error.tokens_tried) == ((), 0)
    json_error = refusal(SignatureVerifier([TOKEN]), URL, BODY, {"content-type": JSON})
    assert json_error.reason == SignatureError.MISSING_SIGNATURE


def test_a_signature_that_matches_nothing_names_the_url_forms_and_the_count_of_tokens() -> None:
    signature = oracle(URL, PARAMS, "not-a-configured-token")
    verifier = SignatureVerifier([TOKEN, OTHER_TOKEN])
    error = refusal(verifier, URL, PARAMS, form_headers(signature))
    assert error.reason == SignatureError.MISMATCH
    assert error.url == URL
    assert error.urls == (URL, URL_443)  # the URL as received first
    assert refusal(verifier, URL_443, PARAMS, form_headers(signature)).urls == (URL_443, URL)
    assert (error.algorithm, error.tokens_tried, error.shared_keys_tried) == ("HMAC_SHA1", 2, 0)
    assert (error.key_id, error.key_ids_tried) == (None, ())
    assert URL in str(error)
    assert URL_443 in str(error)
    assert "2 auth tokens" in str(error)
    assert "public_url" in str(error)
    # A changed parameter, a changed URL: the same reason.
    changed = {**PARAMS, "Digits": "4321"}
    good = form_headers(oracle(URL, PARAMS))
    assert refusal(verifier, URL, changed, good).reason == SignatureError.MISMATCH
    elsewhere = "http://mycompany.com/myapp.php?foo=1&bar=2"
    error = refusal(verifier, elsewhere, PARAMS, good)
    assert error.urls == (elsewhere, "http://mycompany.com:80/myapp.php?foo=1&bar=2")


def test_a_shared_key_signature_that_matches_nothing_names_the_key_ids_tried() -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET, KEY_ID_2: SECRET_2})
    forged = oracle(URL, PARAMS, "guess", "HMAC_SHA256")
    error = refusal(verifier, URL, PARAMS, form_headers(forged, SHA256_SETTINGS))
    assert error.reason == SignatureError.MISMATCH
    assert (error.algorithm, error.key_id) == ("HMAC_SHA256", KEY_ID)
    assert error.key_ids_tried == (KEY_ID,)
    assert (error.shared_keys_tried, error.tokens_tried) == (1, 0)
    assert KEY_ID in str(error)
    assert KEY_ID_2 not in str(error)
    # No key named: every key of the algorithm is tried.
    error = refusal(verifier, URL, PARAMS, form_headers(forged, "algorithm=HMAC_SHA256"))
    assert error.key_ids_tried == (KEY_ID, KEY_ID_2)
    assert error.shared_keys_tried == 2
    # Bare secrets have no ids: only their count is told.
    bare = SignatureVerifier(shared_keys=[SECRET, SECRET_2])
    error = refusal(bare, URL, PARAMS, form_headers(forged, SHA256_SETTINGS))
    assert (error.shared_keys_tried, error.key_ids_tried) == (2, ())
    # An auth-token signature under a shared-key header is not accepted.
    token_signed = oracle(URL, PARAMS)
    error = refusal(verifier, URL, PARAMS, form_headers(token_signed, SHA256_SETTINGS))
    assert error.reason == SignatureError.MISMATCH


@pytest.mark.parametrize("header", ["garbage", "key=" + KEY_ID, "algorithm=", "algorithm"])
def test_a_malformed_settings_header(header: str) -> None:
    signature = oracle(URL, PARAMS, SECRET, "HMAC_SHA256")
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    error = refusal(verifier, URL, PARAMS, form_headers(signature, header))
    assert error.reason == SignatureError.MALFORMED_SETTINGS
    assert repr(header) in str(error)
    assert (error.algorithm, error.tokens_tried, error.urls) == ("HMAC_SHA1", 1, (URL, URL_443))
    # Without an algorithm the request is an auth-token one, as twilio-python reads
    # it: a good auth-token signature passes.
    verifier.check(URL, PARAMS, form_headers(oracle(URL, PARAMS), header))
    # Without auth tokens, nothing can check it.
    only_shared = SignatureVerifier(shared_keys={KEY_ID: SECRET})
    error = refusal(only_shared, URL, PARAMS, form_headers(signature, header))
    assert error.reason == SignatureError.MALFORMED_SETTINGS
    assert (error.tokens_tried, error.urls) == (0, ())


@pytest.mark.parametrize("algorithm", ["HMAC_SHA512", "MD5", "hmac-sha256"])
def test_an_unsupported_algorithm(algorithm: str) -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    header = f"key={KEY_ID},algorithm={algorithm}"
    error = refusal(verifier, URL, PARAMS, form_headers(oracle(URL, PARAMS), header))
    assert error.reason == SignatureError.UNSUPPORTED_ALGORITHM
    assert error.algorithm == algorithm.upper()
    assert (error.shared_keys_tried, error.urls) == (0, ())


def test_an_unknown_shared_key() -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    signature = oracle(URL, PARAMS, SECRET_2, "HMAC_SHA256")
    header = f"key={KEY_ID_2},algorithm=HMAC_SHA256"
    error = refusal(verifier, URL, PARAMS, form_headers(signature, header))
    assert error.reason == SignatureError.UNKNOWN_KEY
    assert (error.key_id, error.key_ids_tried, error.shared_keys_tried) == (KEY_ID_2, (), 0)
    assert KEY_ID_2 in str(error)
    assert KEY_ID in str(error)


def test_a_shared_key_signature_without_shared_keys() -> None:
    signature = oracle(URL, PARAMS, SECRET, "HMAC_SHA256")
    error = refusal(
        SignatureVerifier([TOKEN]), URL, PARAMS, form_headers(signature, SHA256_SETTINGS)
    )
    assert error.reason == SignatureError.NO_SHARED_KEYS
    assert (error.key_id, error.algorithm, error.tokens_tried) == (KEY_ID, "HMAC_SHA256", 0)


def test_an_auth_token_signature_without_auth_tokens() -> None:
    verifier = SignatureVerifier(shared_keys={KEY_ID: SECRET})
    error = refusal(verifier, URL, PARAMS, form_headers(oracle(URL, PARAMS)))
    assert error.reason == SignatureError.NO_AUTH_TOKENS
    assert "X-Twilio-Webhooks-Signature-Settings" in str(error)


@pytest.mark.parametrize(
    "body",
    [b"To=%FF", b"To=\xff\xfe", "&".join(["a=1"] * 10_001)],
    ids=["escape-not-utf8", "bytes-not-utf8", "too-many-parameters"],
)
def test_a_form_body_that_cannot_be_read(body: bytes | str) -> None:
    error = refusal(SignatureVerifier([TOKEN]), URL, body, form_headers("c2lnbmF0dXJl"))
    assert error.reason == SignatureError.BAD_BODY
    assert error.url == URL


def test_a_json_url_without_a_body_hash() -> None:
    signature = oracle(URL, {})  # the URL alone, which carries no bodySHA256
    error = refusal(SignatureVerifier([TOKEN]), URL, BODY, json_headers(signature))
    assert error.reason == SignatureError.MISSING_BODY_HASH
    assert (error.url_body_sha256, error.urls, error.tokens_tried) == (None, (), 0)
    assert error.body_sha256 is not None
    assert "bodySHA256" in str(error)


def test_a_tampered_json_body_is_told_apart_from_a_bad_signature() -> None:
    hashed = json_url(URL, BODY)
    signature = oracle(hashed, {})
    verifier = SignatureVerifier([TOKEN])
    tampered = BODY.replace(b"delivered", b"failed")
    assert not RequestValidator(TOKEN).validate(hashed, tampered.decode(), signature)
    error = refusal(verifier, hashed, tampered, json_headers(signature))
    assert error.reason == SignatureError.BODY_HASH_MISMATCH
    assert error.url_body_sha256 == json_url("", BODY).partition("=")[2]
    assert error.body_sha256 == json_url("", tampered).partition("=")[2]
    assert error.body_sha256 in str(error)
    assert error.urls == (hashed, json_url(URL_443, BODY))
    assert "the signature of the URL itself is valid" in str(error)
    # Re-encoded JSON (same data, other bytes) is a changed body too.
    reencoded = json.dumps(json.loads(BODY), indent=2).encode()
    assert refusal(verifier, hashed, reencoded, json_headers(signature)).reason == (
        SignatureError.BODY_HASH_MISMATCH
    )
    # A forged signature over a URL with another body's hash: both are wrong.
    error = refusal(verifier, hashed, tampered, json_headers("Zm9yZ2Vk"))
    assert error.reason == SignatureError.BODY_HASH_MISMATCH
    assert "does not match the URL either" in str(error)


def test_a_json_body_with_a_bad_signature() -> None:
    hashed = json_url(URL, BODY)
    forged = oracle(hashed, {}, "not-a-configured-token")
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    error = refusal(verifier, hashed, BODY, json_headers(forged))
    assert error.reason == SignatureError.MISMATCH
    assert error.urls == (hashed, json_url(URL_443, BODY))
    assert error.body_sha256 == error.url_body_sha256
    assert error.tokens_tried == 1
    forged = oracle(hashed, {}, "guess", "HMAC_SHA256")
    error = refusal(verifier, hashed, BODY, json_headers(forged, SHA256_SETTINGS))
    assert (error.reason, error.key_ids_tried) == (SignatureError.MISMATCH, (KEY_ID,))


# -- misuse ------------------------------------------------------------------------------


def test_a_json_request_needs_its_raw_body() -> None:
    hashed = json_url(URL, BODY)
    verifier = SignatureVerifier([TOKEN])
    for parsed in (json.loads(BODY)[0], list(json.loads(BODY)[0].items())):
        with pytest.raises(TypeError, match="raw body"):
            verifier.check(hashed, parsed, json_headers(oracle(hashed, {})))


def test_the_constructor_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="auth_tokens"):
        SignatureVerifier(TOKEN)
    with pytest.raises(ValueError, match="public_url"):
        SignatureVerifier([TOKEN], public_url="mycompany.com/sms")
    with pytest.raises(ValueError, match="query"):
        SignatureVerifier([TOKEN], public_url="https://mycompany.com/sms?a=1")


# -- explain_form / explain_json: the listener's failure path ----------------------------


def test_explain_form_and_json_take_the_fast_paths_arguments() -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    pairs = list(PARAMS.items())
    good = oracle(URL, PARAMS)
    assert verifier.verify(URL, pairs, good.encode())
    assert verifier.explain_form(URL, pairs, good.encode()) is None
    assert verifier.explain_form(URL, pairs, good) is None
    assert verifier.explain_form(URL, pairs, None) is not None
    error = verifier.explain_form(URL, pairs, b"Zm9yZ2Vk", SHA256_SETTINGS.encode())
    assert error is not None
    assert (error.reason, error.key_ids_tried) == (SignatureError.MISMATCH, (KEY_ID,))
    hashed = json_url(URL, BODY)
    signature = oracle(hashed, {}).encode()
    assert verifier.explain_json(hashed, BODY, signature) is None
    error = verifier.explain_json(hashed, BODY + b" ", signature)
    assert error is not None
    assert error.reason == SignatureError.BODY_HASH_MISMATCH


@settings(max_examples=150, deadline=None)
@given(url=urls(), pairs=param_lists(), token=tokens, other=tokens, port=st.booleans())
def test_check_agrees_with_twilio_python_for_forms(
    url: Url, pairs: list[tuple[str, str]], token: str, other: str, port: bool
) -> None:
    assume(other != token)
    multidict = MultiParams(pairs)
    verifier = SignatureVerifier([token])
    signed_over = url.with_port if port else url.without_port
    good = oracle(signed_over, multidict, token)
    bad = oracle(url.full, multidict, other)
    for signature, authentic in ((good, True), (bad, False)):
        assert RequestValidator(token).validate(url.full, multidict, signature) is authentic
        error = verifier.explain(url.full, pairs, form_headers(signature))
        assert (error is None) is authentic
        assert verifier.verify(url.full, pairs, signature.encode()) is authentic
        if error is not None:
            assert error.reason == SignatureError.MISMATCH
            assert error.urls[0] == url.full
            assert {url.with_port, url.without_port} <= set(error.urls)


@settings(max_examples=100, deadline=None)
@given(url=urls(), body=json_bodies(), other_body=json_bodies(), secret=tokens)
def test_check_agrees_with_twilio_python_for_shared_key_json(
    url: Url, body: bytes, other_body: bytes, secret: str
) -> None:
    assume(body != other_body and "bodySHA256" not in url.rest)
    hashed = json_url(url.full, body)
    signature = oracle(hashed, {}, secret, "HMAC_SHA256")
    verifier = SignatureVerifier(shared_keys={KEY_ID: secret})
    headers = json_headers(signature, SHA256_SETTINGS)
    validator = RequestValidator(secret)
    for candidate, authentic in ((body, True), (other_body, False)):
        text = candidate.decode()
        assert validator.validate(hashed, text, signature, "HMAC_SHA256") is authentic
        error = verifier.explain(hashed, candidate, headers)
        assert (error is None) is authentic
        if error is not None:
            assert error.reason == SignatureError.BODY_HASH_MISMATCH
            assert "the signature of the URL itself is valid" in str(error)


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (EXAMPLE_URL, EXAMPLE_PARAMS, "L/OH5YylLD5NRKLltdqwSvS0BnU="),
        (MYCOMPANY_URL, MYCOMPANY_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (MYCOMPANY_URL_443, MYCOMPANY_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        # Signed with the port, checked against the URL without it, and vice versa.
        (MYCOMPANY_URL, MYCOMPANY_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        (MYCOMPANY_URL_443, MYCOMPANY_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (MYCOMPANY_URL, REPEATED_PARAMS, "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
    ],
)
def test_verify_accepts_the_reference_vectors(
    url: str, params: list[tuple[str, str]], signature: str
) -> None:
    verifier = SignatureVerifier([REFERENCE_TOKEN])
    assert verifier.verify(url, params, signature.encode())
    assert RequestValidator(REFERENCE_TOKEN).validate(url, MultiParams(params), signature)


def test_verify_rejects_the_reference_vectors_under_a_changed_request() -> None:
    verifier = SignatureVerifier([REFERENCE_TOKEN])
    signature = b"RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert verifier.verify(MYCOMPANY_URL, MYCOMPANY_PARAMS, signature)
    assert not SignatureVerifier(["54321"]).verify(MYCOMPANY_URL, MYCOMPANY_PARAMS, signature)
    assert not verifier.verify(EXAMPLE_URL, MYCOMPANY_PARAMS, signature)
    assert not verifier.verify(MYCOMPANY_URL, [*MYCOMPANY_PARAMS, ("Extra", "")], signature)
    assert not verifier.verify(MYCOMPANY_URL, MYCOMPANY_PARAMS[1:], signature)
    assert not verifier.verify(MYCOMPANY_URL.replace("https", "http"), MYCOMPANY_PARAMS, signature)
    # Signed for a non-default port: the URL without a port (or with 443) is not it.
    on_8443 = compute_signature(
        MYCOMPANY_URL.replace("mycompany.com", "mycompany.com:8443"),
        MYCOMPANY_PARAMS,
        REFERENCE_TOKEN,
    ).encode()
    assert not verifier.verify(MYCOMPANY_URL, MYCOMPANY_PARAMS, on_8443)
    assert not verifier.verify(MYCOMPANY_URL_443, MYCOMPANY_PARAMS, on_8443)
    repeated = b"IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert verifier.verify(MYCOMPANY_URL, REPEATED_PARAMS, repeated)
    # A distinct value more changes the signature; a duplicate of one already sent does not.
    assert not verifier.verify(MYCOMPANY_URL, [*REPEATED_PARAMS, ("Digits", "9")], repeated)
    assert verifier.verify(MYCOMPANY_URL, [*REPEATED_PARAMS, ("Digits", "5678")], repeated)


# -- SignatureVerifier basics ----------------------------------------------------------


def test_a_verifier_needs_a_token() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SignatureVerifier([])


def test_matching_names_the_token_and_the_url_form() -> None:
    verifier = SignatureVerifier(["old", REFERENCE_TOKEN, "new"])
    assert verifier.matching(MYCOMPANY_URL, MYCOMPANY_PARAMS, b"kvajT1Ptam85bY51eRf/AJRuM3w=") == (
        1,
        MYCOMPANY_URL_443,
    )
    assert verifier.matching(
        MYCOMPANY_URL_443, MYCOMPANY_PARAMS, b"RSOYDt4T1cUTdK1PDd93/VVr8B8="
    ) == (
        1,
        MYCOMPANY_URL,
    )
    assert (
        verifier.matching(MYCOMPANY_URL, MYCOMPANY_PARAMS, b"L/OH5YylLD5NRKLltdqwSvS0BnU=") is None
    )


def test_the_url_cache_does_not_break_verification_past_its_size() -> None:
    verifier = SignatureVerifier(["tok"])
    params = [("MessageStatus", "sent")]
    urls = [f"https://example.com/hook/{n}" for n in range(1200)]
    for url in urls:
        assert verifier.verify(url, params, compute_signature(url, params, "tok").encode())
    first = urls[0]
    assert verifier.verify(first, params, compute_signature(first, params, "tok").encode())
    assert not verifier.verify(first, params, compute_signature(urls[1], params, "tok").encode())


def test_long_urls_and_settings_headers_are_checked_but_never_held() -> None:
    # The caches fill before the signature is checked: anyone could fill them
    # with URLs and settings headers as long as a head allows.
    from twilio_trigger._core.verifier import _CACHED_LENGTH

    verifier = SignatureVerifier(["tok"])
    params = [("MessageStatus", "sent")]
    long_url = "https://example.com/hook?q=" + "a" * _CACHED_LENGTH
    signature = compute_signature(long_url, params, "tok").encode()
    for _ in range(2):
        assert verifier.verify(long_url, params, signature)
        assert not verifier.verify(long_url, params, b"not it")
    assert long_url not in verifier._url_cache
    long_settings = b"algorithm=HMAC-SHA1;x=" + b"b" * _CACHED_LENGTH
    assert not verifier.verify(long_url, params, signature, None, long_settings)
    assert long_settings not in verifier._settings_cache
    short_url = "https://example.com/hook"
    assert verifier.verify(short_url, params, compute_signature(short_url, params, "tok").encode())
    assert short_url in verifier._url_cache


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"=",
        b"\xff\xfe\x00\x80",
        "é✓😀".encode(),
        b"A" * 100_000,
        b"RSOYDt4T1cUTdK1PDd93/VVr8B8= ",
        b" RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        b"RSOYDt4T1cUTdK1PDd93/VVr8B8",
        b"rsoydt4t1cutdk1pdd93/vvr8b8=",
        b"RSOYDt4T1cUTdK1PDd93/VVr8B8=RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    ],
)
def test_verify_returns_false_for_garbage_signatures(garbage: bytes) -> None:
    result = SignatureVerifier([REFERENCE_TOKEN]).verify(MYCOMPANY_URL, MYCOMPANY_PARAMS, garbage)
    assert result is False


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_verify_never_raises_for_arbitrary_bytes(garbage: bytes) -> None:
    assume(garbage != b"RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert (
        SignatureVerifier([REFERENCE_TOKEN]).verify(MYCOMPANY_URL, MYCOMPANY_PARAMS, garbage)
        is False
    )


@settings(max_examples=200, deadline=None)
@given(
    url=urls(),
    pairs=param_lists(),
    token=tokens,
    other=tokens,
    wrong=st.text(_BASE64, max_size=40),
)
def test_verify_agrees_with_twilio_python_validate(
    url: Url, pairs: list[tuple[str, str]], token: str, other: str, wrong: str
) -> None:
    assume(other != token)
    oracle = RequestValidator(token)
    multidict = MultiParams(pairs)
    verifier = SignatureVerifier([token])
    good = {
        "as requested": oracle.compute_signature(url.full, multidict),
        "with port": oracle.compute_signature(url.with_port, multidict),
        "without port": oracle.compute_signature(url.without_port, multidict),
    }
    bad = {
        "wrong": wrong,
        "other token": RequestValidator(other).compute_signature(url.full, multidict),
    }
    for label, signature in {**good, **bad}.items():
        ours = verifier.verify(url.full, pairs, signature.encode())
        assert ours == oracle.validate(url.full, multidict, signature), label
        assert ours is (label in good), label
    # With no port or the default one, the URL as received may carry the port or
    # not, whichever form Twilio signed.
    if url.port in (None, 443 if url.scheme == "https" else 80):
        for form in (url.with_port, url.without_port):
            assert verifier.verify(form, pairs, good["as requested"].encode())


@settings(max_examples=200, deadline=None)
@given(
    url=urls(),
    pairs=param_lists(),
    token_list=st.lists(tokens, min_size=2, max_size=5, unique=True),
    outsider=tokens,
)
def test_verify_accepts_a_signature_from_any_of_several_tokens(
    url: Url, pairs: list[tuple[str, str]], token_list: list[str], outsider: str
) -> None:
    assume(outsider not in token_list)
    verifier = SignatureVerifier(token_list)
    for index, token in enumerate(token_list):
        signature = compute_signature(url.without_port, pairs, token).encode()
        assert verifier.verify(url.full, pairs, signature)
        assert verifier.matching(url.full, pairs, signature) == (index, url.without_port)
        signature = compute_signature(url.with_port, pairs, token).encode()
        assert verifier.matching(url.full, pairs, signature) == (index, url.with_port)
    stranger = compute_signature(url.full, pairs, outsider).encode()
    assert not verifier.verify(url.full, pairs, stranger)
    assert verifier.matching(url.full, pairs, stranger) is None
