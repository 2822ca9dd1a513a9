"""The ``basic_auth`` option (``_options.py`` ``_basic_auth``), given to ``Listener`` or in
``TWILIO_TRIGGER_BASIC_AUTH``, and ``WebhookHandler.authorized``, which checks an
``Authorization`` header against it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any

import pytest

from twilio_trigger import ConfigurationError, Listener
from twilio_trigger._asgi import WebhookApp
from twilio_trigger._options import OPTIONS
from twilio_trigger._webhook import WebhookHandler

VARIABLE = "TWILIO_TRIGGER_BASIC_AUTH"


@pytest.fixture(autouse=True)
def _no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listeners read TWILIO_* variables: none leaks in from outside."""
    for name in list(os.environ):
        if name.startswith("TWILIO_"):
            monkeypatch.delenv(name)


def pairs_of(basic_auth: object) -> tuple[tuple[str, str], ...]:
    return Listener(0, auth_tokens=["t"], basic_auth=basic_auth).settings.basic_auth  # type: ignore[arg-type]


def handler_of(listener: Listener) -> WebhookHandler[Any]:
    app = listener.asgi
    assert isinstance(app, WebhookApp)
    return app.handler


def header(user: str, password: str, scheme: str = "Basic") -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"{scheme} {token}".encode("latin-1")


# -- the forms the option takes ----------------------------------------------------------------
def test_unset_means_no_credentials() -> None:
    listener = Listener(0, auth_tokens=["t"])
    assert listener.settings.basic_auth == ()
    assert not handler_of(listener).checks_credentials


def test_a_pair() -> None:
    assert pairs_of(("twilio", "s3cret")) == (("twilio", "s3cret"),)


@pytest.mark.parametrize(
    "value",
    [
        [("twilio", "s3cret"), ("rotated", "n3w")],
        (("twilio", "s3cret"), ("rotated", "n3w")),
        [["twilio", "s3cret"], ["rotated", "n3w"]],
        "twilio:s3cret,rotated:n3w",
        " twilio:s3cret , rotated:n3w ,",
    ],
    ids=["list", "tuple", "lists", "text", "text-spaced"],
)
def test_several_pairs(value: object) -> None:
    assert pairs_of(value) == (("twilio", "s3cret"), ("rotated", "n3w"))


def test_pairs_from_an_iterator() -> None:
    def generate() -> Iterator[tuple[str, str]]:
        yield ("twilio", "s3cret")
        yield ("rotated", "n3w")

    assert pairs_of(generate()) == (("twilio", "s3cret"), ("rotated", "n3w"))


def test_the_first_colon_ends_the_user_name() -> None:
    assert pairs_of("twilio:pa:ss:word") == (("twilio", "pa:ss:word"),)
    assert pairs_of("a:b:c,d:e") == (("a", "b:c"), ("d", "e"))
    assert pairs_of(("twilio", "pa:ss")) == (("twilio", "pa:ss"),)


def test_duplicates_are_removed_in_order() -> None:
    assert pairs_of("a:1,b:2,a:1,b:2") == (("a", "1"), ("b", "2"))
    assert pairs_of([("a", "1"), ("a", "1"), ("a", "2")]) == (("a", "1"), ("a", "2"))


def test_unicode_credentials_are_kept() -> None:
    assert pairs_of(("j\u00fcrgen", "p\u00e4ss\u00e9")) == (("j\u00fcrgen", "p\u00e4ss\u00e9"),)


def test_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "twilio:s3cret,rotated:n:3w")
    listener = Listener(0, auth_tokens=["t"])
    assert listener.settings.basic_auth == (("twilio", "s3cret"), ("rotated", "n:3w"))
    assert handler_of(listener).checks_credentials


def test_the_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "from:env")
    assert pairs_of(("from", "argument")) == (("from", "argument"),)


def test_a_blank_environment_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "   ")
    assert Listener(0, auth_tokens=["t"]).settings.basic_auth == ()


INVALID: list[tuple[str, object]] = [
    ("no colon", "twilio"),
    ("empty user", ":s3cret"),
    ("empty password", "twilio:"),
    ("one of two bad", "twilio:s3cret,rotated"),
    ("pair with empty user", ("", "s3cret")),
    ("pair with empty password", ("twilio", "")),
    ("colon in user", ("twi:lio", "s3cret")),
    ("one element", ("twilio",)),
    ("three elements", ("twilio", "s3cret", "extra")),
    ("list of strings", ["twilio:s3cret"]),
    ("list of triples", [("twilio", "s3cret", "x")]),
    ("list of a single", [("twilio",)]),
    ("non-string password", ("twilio", 1234)),
    ("non-string in list", [("twilio", b"s3cret")]),
    ("a mapping", {"twilio": "s3cret"}),
    ("a number", 1234),
    ("true", True),
    ("newline in password", ("twilio", "s3\ncret")),
    ("control in user", ("twi\x00lio", "s3cret")),
    ("tab in text", "twilio:s3\tcret"),
]


@pytest.mark.parametrize("value", [value for _, value in INVALID], ids=[n for n, _ in INVALID])
def test_an_invalid_value_is_a_configuration_error_naming_the_option(value: object) -> None:
    with pytest.raises(ConfigurationError, match="basic_auth") as raised:
        Listener(0, auth_tokens=["t"], basic_auth=value)  # type: ignore[arg-type]
    assert "s3cret" not in str(raised.value)
    assert "s3\ncret" not in str(raised.value)


@pytest.mark.parametrize(
    "text",
    ["twilio", ":s3cret", "twilio:", "twilio:s3cret,rotated", "twilio:s3\x07cret"],
)
def test_an_invalid_environment_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv(VARIABLE, text)
    with pytest.raises(ConfigurationError, match=VARIABLE) as raised:
        Listener(0, auth_tokens=["t"])
    assert "s3cret" not in str(raised.value)


def test_the_option_parser_directly() -> None:
    parse = OPTIONS.basic_auth.parse
    assert parse("u:p", "basic_auth") == (("u", "p"),)
    assert parse(("u", "p"), "basic_auth") == (("u", "p"),)
    with pytest.raises(ConfigurationError, match="--basic-auth"):
        parse("u", "--basic-auth")


def test_the_password_never_shows_in_the_settings_or_the_listener() -> None:
    listener = Listener(
        0, auth_tokens=["t"], basic_auth=[("twilio", "hunter2-s3cret"), ("b", "pa55")]
    )
    for shown in (repr(listener.settings), str(listener.settings), repr(listener)):
        assert "hunter2-s3cret" not in shown
        assert "pa55" not in shown
    assert listener.settings.basic_auth == (("twilio", "hunter2-s3cret"), ("b", "pa55"))


# -- WebhookHandler.authorized -----------------------------------------------------------------
PAIRS = [("twilio", "s3cret"), ("rotated", "n:3w p\u00e4ss")]


@pytest.fixture
def handler() -> WebhookHandler[Any]:
    return handler_of(Listener(0, auth_tokens=["t"], basic_auth=PAIRS))


@pytest.mark.parametrize(("user", "password"), PAIRS)
def test_each_configured_pair_is_authorized(
    handler: WebhookHandler[Any], user: str, password: str
) -> None:
    assert handler.checks_credentials
    assert handler.authorized(header(user, password))


@pytest.mark.parametrize(
    "authorization",
    [
        header("twilio", "basic-lower", "basic"),  # wrong password, whatever the case
        header("twilio", "wrong"),
        header("rotated", "s3cret"),  # a user with another's password
        header("twilio", "s3cret "),
        header("Twilio", "s3cret"),
        header("twilio", "n:3w p\u00e4ss"),
        header("", ""),
        b"Basic",
        b"Basic ",
        b"",
        b"   ",
        b"Bearer " + base64.b64encode(b"twilio:s3cret"),
        b"Digest " + base64.b64encode(b"twilio:s3cret"),
        b"Basic " + b"twilio:s3cret",  # not encoded
        b"Basic !!!not*base64###",
        b"Basic " + base64.b64encode(b"twilio:s3cret")[:-2],
        b"Basic " + base64.b64encode(b"twilio:s3cret") + b"=",
        b"Basic " + base64.b64encode(b"twilio:s3cret") + b" extra",
        b"Basic\t" + base64.b64encode(b"twilio:s3cret"),
        b"Basic " + base64.b64encode("twilio:s3cret".encode("utf-16")),
        b"Basic \xff\xfe\x00\x80\xe9",
        b"\xc3\xa9 " + base64.b64encode(b"twilio:s3cret"),
        b"Basic " + base64.b64encode("rotated:n:3w p\u00e4ss".encode("latin-1")),
        b"Basic " + b"A" * 10_000,
    ],
)
def test_wrong_or_malformed_credentials_are_refused(
    handler: WebhookHandler[Any], authorization: bytes
) -> None:
    assert handler.authorized(authorization) is False


def test_missing_credentials_are_refused(handler: WebhookHandler[Any]) -> None:
    assert handler.authorized(None) is False


@pytest.mark.parametrize(
    "authorization",
    [
        b"basic " + base64.b64encode(b"twilio:s3cret"),
        b"BASIC " + base64.b64encode(b"twilio:s3cret"),
        b"bAsIc " + base64.b64encode(b"twilio:s3cret"),
        b"Basic   " + base64.b64encode(b"twilio:s3cret"),
        b"  Basic " + base64.b64encode(b"twilio:s3cret") + b"  ",
    ],
    ids=["lower", "upper", "mixed", "spaces-inside", "spaces-around"],
)
def test_the_scheme_in_any_case_and_extra_spaces_are_accepted(
    handler: WebhookHandler[Any], authorization: bytes
) -> None:
    assert handler.authorized(authorization) is True


def test_a_listener_without_basic_auth_authorizes_nothing() -> None:
    handler = handler_of(Listener(0, auth_tokens=["t"]))
    assert not handler.checks_credentials
    assert handler.authorized(header("twilio", "s3cret")) is False
    assert handler.authorized(None) is False


def test_credentials_from_the_environment_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "twilio:s3:cret")
    handler = handler_of(Listener(0, auth_tokens=["t"]))
    assert handler.authorized(header("twilio", "s3:cret"))
    assert not handler.authorized(header("twilio", "s3"))
