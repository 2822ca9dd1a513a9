"""What every family of payloads shares: the account and the two phone numbers of
the story the payloads tell, fresh SIDs, the overrides of a factory's keyword
arguments, the callers' geography and the check of an event's name.  They live
apart so that each family's module takes them from one place and none of those
modules has to import another only for a helper.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

ACCOUNT_SID = "AC3f1c2e4d5b6a79880f1e2d3c4b5a6978"
TWILIO_NUMBER = "+14155550143"
CUSTOMER_NUMBER = "+15558675310"


def new_sid(prefix: str) -> str:
    """A fresh SID: the two-letter *prefix* (``SM``, ``CA``, ...) and 32 hex digits."""
    if len(prefix) != 2 or not prefix.isalpha():
        raise ValueError(f"a SID prefix is two letters, such as SM or CA, got {prefix!r}")
    return prefix.upper() + uuid.uuid4().hex


def _apply(params: dict[str, str], overrides: Mapping[str, object]) -> dict[str, str]:
    for name, value in overrides.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return params


def _geography(origin: str, destination: str) -> dict[str, str]:
    return {
        "FromCity": origin,
        "FromState": "CA" if origin == "SAN FRANCISCO" else "NY",
        "FromZip": "94105" if origin == "SAN FRANCISCO" else "11201",
        "FromCountry": "US",
        "ToCity": destination,
        "ToState": "CA" if destination == "SAN FRANCISCO" else "NY",
        "ToZip": "94105" if destination == "SAN FRANCISCO" else "11201",
        "ToCountry": "US",
    }


def _require(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; expected one of: {', '.join(valid)}")
