"""Realistic Twilio webhook payloads, and a signed POST the way Twilio makes it.

Parameter names and value formats follow ``/work/shared/reference/twilio-webhooks.md``
(messaging status callbacks §1, inbound messages §2, voice status callbacks §3).
SIDs are fresh for every payload, as Twilio's are, so that tests never post the
same (SID, status) twice by accident.

Signatures come from twilio-python's ``RequestValidator``: the independent oracle,
never the package's own ``compute_signature``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

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
Params = Mapping[str, str] | Sequence[tuple[str, str]]

ACCOUNT_SID = "AC" + "3f1c2e4d5b6a79880f1e2d3c4b5a6978"
SENDER = "+14155550143"  # a Twilio number in San Francisco
RECIPIENT = "+15558675310"

_ERRORS = {"failed": ("30008", "Unknown error"), "undelivered": ("30003", "Unreachable")}


def new_sid(prefix: str) -> str:
    """A fresh SID: two letters and 32 lowercase hex digits, like ``SM0f3c...``."""
    return prefix + uuid.uuid4().hex


def _geography(prefix_from: str, prefix_to: str) -> dict[str, str]:
    return {
        f"{prefix_from}City": "SAN FRANCISCO",
        f"{prefix_from}State": "CA",
        f"{prefix_from}Zip": "94105",
        f"{prefix_from}Country": "US",
        f"{prefix_to}City": "BROOKLYN",
        f"{prefix_to}State": "NY",
        f"{prefix_to}Zip": "11201",
        f"{prefix_to}Country": "US",
    }


def sms_status_payload(status: str, **overrides: str) -> dict[str, str]:
    """An outbound message status callback for *status* (about 20 parameters).

    ``received`` and ``receiving`` give the inbound-message webhook instead (see
    :func:`inbound_message_payload`).  *overrides* replace or add parameters; an
    override whose value is ``""`` is kept (Twilio signs blank values too).
    """
    if status in ("received", "receiving"):
        return inbound_message_payload(status, **overrides)
    sid = new_sid("SM")
    params: dict[str, str] = {
        "ApiVersion": "2010-04-01",
        "AccountSid": ACCOUNT_SID,
        "MessagingServiceSid": new_sid("MG"),
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": SENDER,
        "To": RECIPIENT,
        "Body": "Your Acme verification code is 482910. It expires in 10 minutes.",
        "NumSegments": "1",
        "NumMedia": "0",
        **_geography("From", "To"),
    }
    if status in _ERRORS:
        params["ErrorCode"], params["ErrorMessage"] = _ERRORS[status]
    if status in ("delivered", "undelivered"):
        params["RawDlrDoneDate"] = "2311141830"  # YYMMDDhhmm, carrier's own time zone
    if status == "read":  # read receipts exist on WhatsApp and RCS only
        params.update(
            From=f"whatsapp:{SENDER}",
            To=f"whatsapp:{RECIPIENT}",
            ChannelPrefix="whatsapp",
            ChannelInstallSid=new_sid("XE"),
            ChannelToAddress=RECIPIENT,
            EventType="READ",
        )
    params.update(overrides)
    return params


def inbound_message_payload(status: str = "received", **overrides: str) -> dict[str, str]:
    """An inbound MMS webhook: ``SmsStatus`` only, one image, the legacy SID aliases."""
    sid = new_sid("MM")
    params: dict[str, str] = {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "1",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "11201",
        "SmsSid": sid,
        "FromState": "NY",
        "SmsStatus": status,
        "FromCity": "BROOKLYN",
        "Body": "Here's the photo of the damaged parcel \U0001f4e6",
        "FromCountry": "US",
        "To": SENDER,
        "MessagingServiceSid": new_sid("MG"),
        "ToZip": "94105",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": RECIPIENT,
        "MediaContentType0": "image/jpeg",
        "MediaUrl0": (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}"
            f"/Media/{new_sid('ME')}"
        ),
        "ApiVersion": "2010-04-01",
    }
    params.update(overrides)
    return params


_SEQUENCE = {
    "queued": "0", "initiated": "0", "ringing": "1", "in-progress": "2", "completed": "3",
    "busy": "2", "failed": "1", "no-answer": "2", "canceled": "2",
}  # fmt: skip
_SIP_CODE = {
    "completed": "200",
    "busy": "486",
    "failed": "404",
    "no-answer": "487",
    "canceled": "487",
}


def call_status_payload(status: str, **overrides: str) -> dict[str, str]:
    """A voice status callback for *status* (about 30 to 40 parameters).

    The leg is the child (``outbound-dial``) leg of a forwarded inbound call, so
    that every documented parameter has a plausible value.
    """
    params: dict[str, str] = {
        "Called": RECIPIENT,
        "ToState": "NY",
        "CallerCountry": "US",
        "Direction": "outbound-dial",
        "Timestamp": "Tue, 14 Nov 2023 18:30:00 +0000",
        "CallbackSource": "call-progress-events",
        "CallerState": "CA",
        "ToZip": "11201",
        "SequenceNumber": _SEQUENCE.get(status, "0"),
        "CallSid": new_sid("CA"),
        "To": RECIPIENT,
        "CallerZip": "94105",
        "ToCountry": "US",
        "CalledZip": "11201",
        "ApiVersion": "2010-04-01",
        "CalledCity": "BROOKLYN",
        "CallStatus": status,
        "From": SENDER,
        "AccountSid": ACCOUNT_SID,
        "CalledCountry": "US",
        "CallerCity": "SAN FRANCISCO",
        "ToCity": "BROOKLYN",
        "FromCountry": "US",
        "Caller": SENDER,
        "FromCity": "SAN FRANCISCO",
        "CalledState": "NY",
        "FromZip": "94105",
        "FromState": "CA",
        "ParentCallSid": new_sid("CA"),
        "ForwardedFrom": "+16505550199",
        "CallerName": "ACME LOGISTICS",
        "CallToken": (
            '{"parentCallInfoToken":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln","identityHeaderTokens":[]}'
        ),
        "StirVerstat": "TN-Validation-Passed-A",
        "StirPassportToken": (
            "eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0In0"
            ".eyJhdHRlc3QiOiJBIiwiZGVzdCI6eyJ0biI6WyIxNTU1ODY3NTMxMCJdfX0.c2lnbmF0dXJl"
        ),
    }
    if status in ("ringing", "in-progress"):
        params["StirStatus"] = "A"
    if status in _SIP_CODE:
        params["CallDuration"] = "47" if status == "completed" else "0"
        params["SipResponseCode"] = _SIP_CODE[status]
    if status == "completed":
        params.update(
            Duration="1",
            RecordingUrl=(
                f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
                f"/Recordings/RE7b0f9c1d2e3f405162738495a6b7c8d9"
            ),
            RecordingSid="RE7b0f9c1d2e3f405162738495a6b7c8d9",
            RecordingDuration="45",
        )
    if status in ("in-progress", "completed"):
        params["AnsweredBy"] = "human"
        params["MachineDetectionDuration"] = "2140"
    params.update(overrides)
    return params


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
