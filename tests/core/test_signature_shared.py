"""SharedKey signatures (Webhook Rules), checked against twilio-python's RequestValidator.

A request with ``X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256``
is signed with that SharedKey's secret and HMAC-SHA256, over the same string as
an auth-token signature; without the header it is the legacy HMAC-SHA1 one.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator, get_signature_algorithm

from tests.core.test_signature import Url, param_lists, tokens, urls
from tests.payloads import MultiParams as MultiDict
from twilio_trigger._core.signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    SignatureSettings,
    compute_signature,
    parse_signature_settings,
    signature_settings,
)
from twilio_trigger._core.verifier import SignatureVerifier

TOKEN = "12345"
SECRET = "shared-secret-0123456789abcdef"
KEY_ID = "webhooks_sharedkey_0123456789abcdef"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
URL_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
PARAMS = [
    ("To", "+18005551212"),
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("Caller", "+14158675309"),
]
HEADER = f"key={KEY_ID},algorithm=HMAC_SHA256".encode()


def _oracle(secret: str, url: str, params: list[tuple[str, str]], algorithm: str) -> bytes:
    signature = RequestValidator(secret).compute_signature(url, MultiDict(params), algorithm)
    return str(signature).encode()


# -- examples ----------------------------------------------------------------------------


def test_compute_signature_with_hmac_sha256_is_twilio_pythons() -> None:
    expected = _oracle(SECRET, URL, PARAMS, HMAC_SHA256).decode()
    assert compute_signature(URL, PARAMS, SECRET, HMAC_SHA256) == expected
    assert compute_signature(URL, PARAMS, SECRET, "hmac_sha256") == expected
    assert compute_signature(URL, PARAMS, SECRET, HMAC_SHA1) == compute_signature(
        URL, PARAMS, SECRET
    )
    assert len(expected) == 44  # 32 bytes in base64, against SHA1's 28 characters


def test_compute_signature_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="HMAC_SHA512"):
        compute_signature(URL, PARAMS, SECRET, "HMAC_SHA512")


def test_signature_settings_is_the_header_twilio_sends() -> None:
    assert signature_settings(KEY_ID) == HEADER.decode()
    assert signature_settings("k", HMAC_SHA1) == "key=k,algorithm=HMAC_SHA1"
    assert parse_signature_settings(signature_settings(KEY_ID)) == (KEY_ID, HMAC_SHA256)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER, SignatureSettings(KEY_ID, HMAC_SHA256)),
        (HEADER.decode(), SignatureSettings(KEY_ID, HMAC_SHA256)),
        (b" key = K1 , algorithm = hmac_sha256 ", SignatureSettings("K1", HMAC_SHA256)),
        (b"algorithm=HMAC_SHA256,key=K1", SignatureSettings("K1", HMAC_SHA256)),
        (b"algorithm=HMAC_SHA256", SignatureSettings(None, HMAC_SHA256)),
        (b"key=K1,algorithm=HMAC_SHA1", SignatureSettings("K1", HMAC_SHA1)),
        (b"key=K1,algorithm=HMAC_SHA512", SignatureSettings("K1", "HMAC_SHA512")),
        # The first non-empty value of each counts, as twilio-python reads it.
        (b"algorithm=,algorithm=HMAC_SHA256,algorithm=x", SignatureSettings(None, HMAC_SHA256)),
        (b"key=,key=K2,key=K3,algorithm=HMAC_SHA256", SignatureSettings("K2", HMAC_SHA256)),
        (b"key=a=b,algorithm=HMAC_SHA256", SignatureSettings("a=b", HMAC_SHA256)),
        # No algorithm: the legacy auth-token signature.
        (None, None),
        (b"", None),
        (b"key=K1", None),
        (b"key=K1,algorithm=", None),
        (b"Algorithm=HMAC_SHA256", None),  # names are matched exactly
        (b",,,", None),
        (b"\xff\xfe", None),
    ],
)
def test_parse_signature_settings(
    header: bytes | str | None, expected: SignatureSettings | None
) -> None:
    assert parse_signature_settings(header) == expected


def test_a_shared_key_signature_verifies_with_either_port_form() -> None:
    verifier = SignatureVerifier(shared_keys={KEY_ID: SECRET})
    for signed in (URL, URL_443):
        signature = _oracle(SECRET, signed, PARAMS, HMAC_SHA256)
        for received in (URL, URL_443):
            assert verifier.verify(received, PARAMS, signature, settings=HEADER)
            assert verifier.matching(received, PARAMS, signature, settings=HEADER) == (0, signed)
            assert RequestValidator(SECRET).validate(
                received, MultiDict(PARAMS), signature.decode(), HMAC_SHA256
            )


def test_refusals() -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    good = _oracle(SECRET, URL, PARAMS, HMAC_SHA256)
    assert verifier.verify(URL, PARAMS, good, settings=HEADER)
    # Another secret, or another key id.
    assert not verifier.verify(
        URL, PARAMS, _oracle("other", URL, PARAMS, HMAC_SHA256), None, HEADER
    )
    assert not verifier.verify(URL, PARAMS, good, settings=signature_settings("webhooks_other"))
    # SHA1 with the shared secret under an SHA256 header, and the reverse.
    sha1_signature = _oracle(SECRET, URL, PARAMS, HMAC_SHA1)
    assert not verifier.verify(URL, PARAMS, sha1_signature, settings=HEADER)
    assert not verifier.verify(URL, PARAMS, good, settings=signature_settings(KEY_ID, HMAC_SHA1))
    # The header is what says how to check: without it, the auth token.
    assert not verifier.verify(URL, PARAMS, good)
    assert not verifier.verify(URL, PARAMS, sha1_signature)
    # An algorithm not supported, and a header that is not UTF-8.
    assert not verifier.verify(URL, PARAMS, good, settings=signature_settings(KEY_ID, "HMAC_MD5"))
    assert not verifier.verify(URL, PARAMS, good, settings=b"key=\xff,algorithm=HMAC_SHA256")
    # A changed request.
    assert not verifier.verify(URL, [*PARAMS, ("Extra", "")], good, settings=HEADER)
    assert not verifier.verify(URL.replace("https", "http"), PARAMS, good, settings=HEADER)


@pytest.mark.parametrize("algorithm", ["HMAC_MD5", "HMAC_SHA512", "SHA256", "x"])
def test_an_unknown_algorithm_refuses_every_signature(algorithm: str) -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    header = signature_settings(KEY_ID, algorithm).encode()
    for secret in (TOKEN, SECRET):
        for known in (HMAC_SHA1, HMAC_SHA256):
            signature = _oracle(secret, URL, PARAMS, known)
            assert not verifier.verify(URL, PARAMS, signature, settings=header)
            assert verifier.matching(URL, PARAMS, signature, settings=header) is None
            assert not RequestValidator(secret).validate(
                URL, MultiDict(PARAMS), signature.decode(), algorithm
            )


def test_an_auth_token_signature_is_not_accepted_under_a_shared_key_header() -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    legacy = _oracle(TOKEN, URL, PARAMS, HMAC_SHA1)
    assert verifier.verify(URL, PARAMS, legacy)
    assert not verifier.verify(URL, PARAMS, legacy, settings=signature_settings(KEY_ID, HMAC_SHA1))
    assert not verifier.verify(URL, PARAMS, _oracle(TOKEN, URL, PARAMS, HMAC_SHA256), None, HEADER)


def test_an_explicit_hmac_sha1_uses_the_shared_secret() -> None:
    verifier = SignatureVerifier([TOKEN], {KEY_ID: SECRET})
    header = signature_settings(KEY_ID, "hmac_sha1").encode()
    assert verifier.verify(URL, PARAMS, _oracle(SECRET, URL, PARAMS, HMAC_SHA1), None, header)


@pytest.mark.parametrize("header", [None, b"", b"key=" + KEY_ID.encode(), b"algorithm="])
def test_without_an_algorithm_the_auth_tokens_are_used(header: bytes | None) -> None:
    verifier = SignatureVerifier(["old", TOKEN], {KEY_ID: SECRET})
    legacy = _oracle(TOKEN, URL, PARAMS, HMAC_SHA1)
    assert verifier.matching(URL, PARAMS, legacy, settings=header) == (1, URL)
    shared = _oracle(SECRET, URL, PARAMS, HMAC_SHA1)
    assert not verifier.verify(URL, PARAMS, shared, settings=header)
    # With shared keys alone there is nothing to check a legacy signature with.
    only_shared = SignatureVerifier(shared_keys={KEY_ID: SECRET})
    assert not only_shared.verify(URL, PARAMS, legacy, settings=header)
    assert not only_shared.verify(URL, PARAMS, shared, settings=header)


def test_a_shared_key_header_without_shared_keys_is_refused() -> None:
    verifier = SignatureVerifier([TOKEN])
    assert not verifier.verify(URL, PARAMS, _oracle(TOKEN, URL, PARAMS, HMAC_SHA256), None, HEADER)
    assert not verifier.verify(URL, PARAMS, _oracle(TOKEN, URL, PARAMS, HMAC_SHA1), None, HEADER)


def test_matching_gives_the_shared_key_index_in_configured_order() -> None:
    keys = {"K0": "s0", "K1": "s1", "K2": "s2"}
    verifier = SignatureVerifier(["t0"], keys)
    for index, (key_id, secret) in enumerate(keys.items()):
        signature = _oracle(secret, URL, PARAMS, HMAC_SHA256)
        header = signature_settings(key_id).encode()
        assert verifier.matching(URL, PARAMS, signature, settings=header) == (index, URL)
        # The id picks the secret: another configured id does not match it.
        other = signature_settings(f"K{(index + 1) % 3}").encode()
        assert verifier.matching(URL, PARAMS, signature, settings=other) is None
        # A header without a key id: every secret is tried.
        assert verifier.matching(URL, PARAMS, signature, None, b"algorithm=HMAC_SHA256") == (
            index,
            URL,
        )


def test_bare_secrets_are_each_tried_whatever_the_key_id() -> None:
    verifier = SignatureVerifier(shared_keys=["s0", "s1"])
    assert verifier.shared_key_ids is None
    for index, secret in enumerate(["s0", "s1"]):
        signature = _oracle(secret, URL_443, PARAMS, HMAC_SHA256)
        for header in (HEADER, b"key=anything,algorithm=HMAC_SHA256", b"algorithm=HMAC_SHA256"):
            assert verifier.matching(URL, PARAMS, signature, settings=header) == (index, URL_443)
    assert not verifier.verify(URL, PARAMS, _oracle("s2", URL, PARAMS, HMAC_SHA256), None, HEADER)


def test_what_is_configured() -> None:
    verifier = SignatureVerifier(["a", "b"], {"K1": "x", "K2": "y"})
    assert (verifier.token_count, verifier.shared_key_count) == (2, 2)
    assert verifier.shared_key_ids == ("K1", "K2")
    legacy = SignatureVerifier([TOKEN])
    assert (legacy.token_count, legacy.shared_key_count, legacy.shared_key_ids) == (1, 0, None)
    assert SignatureVerifier(shared_keys=iter(["x"])).shared_key_count == 1


def test_the_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="at least one auth token or shared key"):
        SignatureVerifier()
    with pytest.raises(ValueError, match="at least one"):
        SignatureVerifier([], {})
    with pytest.raises(ValueError, match="empty"):
        SignatureVerifier(shared_keys={KEY_ID: ""})
    with pytest.raises(TypeError, match="not a str"):
        SignatureVerifier(shared_keys=SECRET)


def test_the_settings_cache_does_not_break_verification_past_its_size() -> None:
    keys = {f"K{n}": f"s{n}" for n in range(200)}
    verifier = SignatureVerifier(shared_keys=keys)
    for _ in range(2):
        for index, (key_id, secret) in enumerate(keys.items()):
            signature = _oracle(secret, URL, PARAMS, HMAC_SHA256)
            header = signature_settings(key_id).encode()
            assert verifier.matching(URL, PARAMS, signature, settings=header) == (index, URL)
            assert not verifier.verify(URL, PARAMS, signature, settings=HEADER)


# -- property tests against the oracle ----------------------------------------------------

_key_ids = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=40)
_spaces = st.sampled_from(["", " ", "  ", "\t"])
_algorithm_names = st.sampled_from([HMAC_SHA1, HMAC_SHA256, "hmac_sha256", "Hmac_Sha1", "SHA256"])


@st.composite
def headers(draw: st.DrawFn) -> str:
    """A settings header as Twilio might send it, with spaces and fields in any order."""
    fields = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("key"), _key_ids),
                st.tuples(st.just("algorithm"), _algorithm_names | st.just("")),
                st.tuples(st.sampled_from(["Algorithm", "other", ""]), _key_ids),
            ),
            max_size=4,
        )
    )
    parts = [
        draw(_spaces) + name + draw(_spaces) + "=" + draw(_spaces) + value + draw(_spaces)
        for name, value in fields
    ]
    return ",".join(parts)


@settings(max_examples=300, deadline=None)
@given(header=headers() | st.text(max_size=40))
def test_parse_signature_settings_reads_the_algorithm_as_twilio_python(header: str) -> None:
    parsed = parse_signature_settings(header)
    assert parsed == parse_signature_settings(header.encode())
    # An algorithm appended is the one twilio-python reads only when none came before.
    appended = get_signature_algorithm(header + ",algorithm=APPENDED")
    if parsed is None:
        assert get_signature_algorithm(header) == HMAC_SHA1
        assert appended == "APPENDED"
    else:
        assert parsed.algorithm == get_signature_algorithm(header).upper() == appended.upper()


@settings(max_examples=150, deadline=None)
@given(
    url=urls(),
    pairs=param_lists(),
    secret=tokens,
    other=tokens,
    key_id=_key_ids,
    algorithm=_algorithm_names,
)
def test_verify_with_a_shared_key_agrees_with_twilio_python(
    url: Url,
    pairs: list[tuple[str, str]],
    secret: str,
    other: str,
    key_id: str,
    algorithm: str,
) -> None:
    assume(other != secret)
    header = signature_settings(key_id, algorithm)
    oracle_algorithm = get_signature_algorithm(header)
    supported = oracle_algorithm.upper() in (HMAC_SHA1, HMAC_SHA256)
    verifier = SignatureVerifier([other], {key_id: secret})
    multidict = MultiDict(pairs)
    oracle = RequestValidator(secret)
    signed_with = HMAC_SHA256 if oracle_algorithm.upper() == "SHA256" else oracle_algorithm
    good = {
        form: _oracle(secret, getattr(url, form), pairs, signed_with)
        for form in ("full", "with_port", "without_port")
    }
    for form, signature in good.items():
        ours = verifier.verify(url.full, pairs, signature, settings=header.encode())
        assert ours is supported, form
        assert ours == oracle.validate(url.full, multidict, signature.decode(), oracle_algorithm)
        # Without the header it is no auth-token signature; with another id it is refused.
        assert not verifier.verify(url.full, pairs, signature)
        wrong_id = signature_settings(key_id + "x", algorithm).encode()
        assert not verifier.verify(url.full, pairs, signature, settings=wrong_id)
    if not supported:
        return
    intruder = _oracle(other, url.full, pairs, oracle_algorithm)
    assert not verifier.verify(url.full, pairs, intruder, settings=header.encode())
    assert not oracle.validate(url.full, multidict, intruder.decode(), oracle_algorithm)
    swapped = HMAC_SHA1 if oracle_algorithm.upper() == HMAC_SHA256 else HMAC_SHA256
    crossed = _oracle(secret, url.full, pairs, swapped)
    assert not verifier.verify(url.full, pairs, crossed, settings=header.encode())
    # The auth token still signs requests that carry no settings header.
    legacy = _oracle(other, url.full, pairs, HMAC_SHA1)
    match = verifier.matching(url.full, pairs, legacy)
    assert match is not None
    assert match[0] == 0
    if url.port in (None, 443 if url.scheme == "https" else 80):
        for received in (url.with_port, url.without_port):
            for signature in good.values():
                assert verifier.verify(received, pairs, signature, settings=header.encode())
