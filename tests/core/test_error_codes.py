"""The table of Twilio's error codes: what each holds, and how a code is looked up."""

from __future__ import annotations

import re

import pytest

from twilio_trigger._core.error_codes import (
    ERROR_CODES,
    ErrorCode,
    error_code_info,
    error_code_url,
)

PAGE = re.compile(r"^https://www\.twilio\.com/docs/api/errors/(\d{5,6})$")


def test_the_table_holds_at_least_forty_codes_of_messaging_and_voice() -> None:
    products = [info.product for info in ERROR_CODES.values()]
    assert len(ERROR_CODES) >= 40
    assert products.count("messaging") >= 15
    assert products.count("voice") >= 8
    assert set(products) <= {"messaging", "voice", "webhooks"}


def test_every_code_is_unique_titled_and_linked_to_its_own_page() -> None:
    codes = [info.code for info in ERROR_CODES.values()]
    assert len(codes) == len(set(codes))
    for key, info in ERROR_CODES.items():
        assert isinstance(info, ErrorCode)
        assert key == info.code
        assert info.title, info
        assert info.title.strip() == info.title, info
        assert len(info.title) <= 120, info
        found = PAGE.match(info.url)
        assert found is not None, info.url
        assert int(found.group(1)) == info.code


@pytest.mark.parametrize(
    ("code", "title"),
    [
        (30003, "Unreachable destination handset"),
        (30006, "Landline or unreachable carrier"),
        (11205, "HTTP connection failure"),
        (31486, "Busy Here"),
    ],
)
def test_a_known_code_has_twilio_s_title(code: int, title: str) -> None:
    info = error_code_info(code)
    assert info is not None
    assert info.title == title
    assert info.url == f"https://www.twilio.com/docs/api/errors/{code}"
    # As a request carries it: text, perhaps with spaces or leading zeros.
    assert error_code_info(str(code)) == info
    assert error_code_info(f" {code}\n") == info
    assert error_code_info(f"0{code}") == info


def test_an_unknown_code_has_a_link_and_no_title() -> None:
    assert 99999 not in ERROR_CODES
    assert error_code_info(99999) is None
    assert error_code_url(99999) == "https://www.twilio.com/docs/api/errors/99999"
    assert error_code_url("572005") == "https://www.twilio.com/docs/api/errors/572005"


@pytest.mark.parametrize(
    "value",
    [None, 0, "0", "", "  ", -30003, "-30003", "+30003", "30003abc", "3e4", "30003.0",
     "\uff13\uff10\uff10\uff10\uff13", "1" * 7, 10**6, "9" * 5000, True, False, "<script>"],
)  # fmt: skip
def test_what_is_no_code_has_neither_title_nor_link(value: int | str | None) -> None:
    assert error_code_info(value) is None
    assert error_code_url(value) is None
