"""Realistic Twilio webhook payloads, and a signed POST the way Twilio makes it.

Parameter names and value formats follow ``/work/shared/reference/twilio-webhooks.md``
(messaging status callbacks §1, inbound messages §2, voice status callbacks §3).
SIDs are fresh for every payload, as Twilio's are, so that tests never post the
same (SID, status) twice by accident.

Signatures come from twilio-python's ``RequestValidator``: the independent oracle,
never the package's own ``compute_signature``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from twilio_trigger import testing

__all__ = [
    "CALL_STATUSES",
    "FORM",
    "SMS_STATUSES",
    "MultiParams",
    "Params",
    "call_status_payload",
    "encode_form",
    "inbound_message_payload",
    "new_sid",
    "pairs_of",
    "sign",
    "signed_cloudevents",
    "signed_json",
    "signed_post",
    "sms_status_payload",
]

#: What Twilio sends as Content-Type (often with ``; charset=UTF-8``).
FORM = "application/x-www-form-urlencoded"

#: Every MessageStatus Twilio documents or sends, in the package's callback order.
SMS_STATUSES = (
    "accepted", "queued", "sending", "sent", "failed", "delivered", "undelivered",
    "receiving", "received", "scheduled", "canceled", "read", "partially_delivered",
)  # fmt: skip
#: Every CallStatus a voice status callback carries.
CALL_STATUSES = (
    "queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
    "no-answer", "canceled",
)  # fmt: skip

#: A form as a mapping (one value per name) or as pairs (names may repeat).
Params = Mapping[str, str] | Iterable[tuple[str, str]]

# The realistic payloads are the public test kit's: tests/core/test_payloads.py
# pins their shape, and every e2e test exercises them.
new_sid = testing.new_sid
sms_status_payload = testing.sms_status_params
inbound_message_payload = testing.inbound_sms_params
call_status_payload = testing.call_status_params


class MultiParams:
    """Form parameters with repeatable names, in the shape RequestValidator reads.

    ``RequestValidator.compute_signature`` iterates the names and asks
    ``getall(name)`` for the values of each (the Flask/multidict protocol).
    """

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = list(pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def __len__(self) -> int:
        return len(self._pairs)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]

    def getlist(self, name: str) -> list[str]:
        return self.getall(name)


def pairs_of(params: Params) -> list[tuple[str, str]]:
    """*params* as ``(name, value)`` pairs, in order."""
    if isinstance(params, Mapping):
        return list(params.items())
    return list(params)


def encode_form(params: Params) -> bytes:
    """The form body Twilio would send: UTF-8, percent-encoded, spaces as ``+``."""
    return urlencode(pairs_of(params)).encode("ascii")


def sign(url: str, params: Params, token: str) -> str:
    """``X-Twilio-Signature`` for a form POST of *params* to *url*, by twilio-python."""
    return str(RequestValidator(token).compute_signature(url, MultiParams(pairs_of(params))))


def signed_post(
    url: str,
    params: Params,
    token: str,
    *,
    sign_url: str | None = None,
    headers: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    timeout: float = 10.0,
    **kwargs: Any,
) -> httpx.Response:
    """POST *params* as a form to *url*, signed with *token* the way Twilio signs.

    *sign_url* is the URL to sign over when it differs from *url* (a listener
    behind a proxy); *headers* add to or replace Twilio's.  Other keyword
    arguments go to ``httpx``.
    """
    all_headers = {
        "Content-Type": FORM,
        "User-Agent": "TwilioProxy/1.1",
        "Accept": "*/*",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "X-Home-Region": "us1",
        "X-Twilio-Signature": sign(sign_url or url, params, token),
    }
    all_headers.update(headers or {})
    body = encode_form(params)
    if client is not None:
        return client.post(url, content=body, headers=all_headers, **kwargs)
    return httpx.post(url, content=body, headers=all_headers, timeout=timeout, **kwargs)


def signed_cloudevents(
    url: str, events: Sequence[object], token: str, *, timeout: float = 10.0
) -> httpx.Response:
    """POST *events* as an Event Streams sink receives them, signed as Twilio signs
    a JSON body: over the URL with the body's ``bodySHA256`` appended, and no
    parameters (checked with ``RequestValidator.validate`` before it is sent)."""
    return signed_json(url, list(events), token, timeout=timeout)


def signed_json(url: str, document: object, token: str, *, timeout: float = 10.0) -> httpx.Response:
    """POST *document* as JSON, signed as Twilio signs a JSON body (see
    :func:`signed_cloudevents`)."""
    body = json.dumps(document).encode("utf-8")
    target = f"{url}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    validator = RequestValidator(token)
    signature = str(validator.compute_signature(target, {}))
    assert validator.validate(target, body.decode("utf-8"), signature)
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "User-Agent": "Twilio-Event-Streams/1.0",
    }
    return httpx.post(target, content=body, headers=headers, timeout=timeout)
