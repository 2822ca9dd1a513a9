"""Messages: the status callback of an outgoing message, the webhook of an inbound
one, and the typed event of the first.  Programmable Messaging's payloads are
one family with their own parameters (``MessageStatus``, ``SmsStatus``, the
legacy SID aliases, media), so they have their module; the Event Streams
CloudEvents of messages are built from them (:mod:`.event_streams`).
"""

from __future__ import annotations

from ..events import SmsStatusChangeEvent
from ._common import ACCOUNT_SID, CUSTOMER_NUMBER, TWILIO_NUMBER, _apply, _geography, new_sid

# Error codes Twilio documents for failed and undelivered messages.
_MESSAGE_ERRORS = {"failed": "30008", "undelivered": "30003"}


def sms_status_params(
    status: str = "delivered", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A message status callback as Twilio sends it for *status* (about 20 parameters).

    ``received`` and ``receiving`` give an inbound message webhook instead
    (:func:`inbound_sms_params`).  ``failed`` and ``undelivered`` carry an
    ``ErrorCode``; ``delivered`` and ``undelivered`` a ``RawDlrDoneDate``; ``read``
    is a WhatsApp read receipt.
    """
    if status in ("received", "receiving"):
        return inbound_sms_params(status, sid=sid, **overrides)
    sid = sid or new_sid("SM")
    params = {
        "ApiVersion": "2010-04-01",
        "AccountSid": ACCOUNT_SID,
        "MessagingServiceSid": new_sid("MG"),
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": TWILIO_NUMBER,
        "To": CUSTOMER_NUMBER,
        "Body": "Your Acme verification code is 482910. It expires in 10 minutes.",
        "NumSegments": "1",
        "NumMedia": "0",
        **_geography("SAN FRANCISCO", "BROOKLYN"),
    }
    if status in _MESSAGE_ERRORS:
        params["ErrorCode"] = _MESSAGE_ERRORS[status]
    if status in ("delivered", "undelivered"):
        params["RawDlrDoneDate"] = "2311141830"
    if status == "read":
        params.update(
            From=f"whatsapp:{TWILIO_NUMBER}",
            To=f"whatsapp:{CUSTOMER_NUMBER}",
            ChannelPrefix="whatsapp",
            ChannelInstallSid=new_sid("XE"),
            ChannelToAddress=CUSTOMER_NUMBER,
            EventType="READ",
        )
    return _apply(params, overrides)


def inbound_sms_params(
    status: str = "received", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """An inbound message webhook: ``SmsStatus`` only, the legacy SID aliases, one image."""
    sid = sid or new_sid("MM")
    params = {
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
        "To": TWILIO_NUMBER,
        "MessagingServiceSid": new_sid("MG"),
        "ToZip": "94105",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": CUSTOMER_NUMBER,
        "MediaContentType0": "image/jpeg",
        "MediaUrl0": (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}"
            f"/Media/{new_sid('ME')}"
        ),
        "ApiVersion": "2010-04-01",
    }
    return _apply(params, overrides)


def sms_event(
    status: str = "delivered", *, sid: str | None = None, **overrides: object
) -> SmsStatusChangeEvent:
    """A :class:`SmsStatusChangeEvent` with realistic parameters, to call a callback directly."""
    return SmsStatusChangeEvent(sms_status_params(status, sid=sid, **overrides))
