"""The Console Debugger: the alert Twilio posts when a webhook of the account
failed, its details a JSON ``Payload``.  The debugger's webhook is a family of
one kind, with nothing in common with the others but the account, so it has a
module of its own.
"""

from __future__ import annotations

import json

from ._common import ACCOUNT_SID, _apply, new_sid


def debugger_params(
    level: str = "error", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A Console Debugger alert as Twilio posts it: a webhook of the account failed (11200).

    *level* is sent in upper case (``ERROR``, ``WARNING``), as Twilio's example
    shows; ``Payload`` is JSON text.
    """
    call = new_sid("CA")
    hook = "https://hooks.example.com/voice"
    payload = {
        "resource_sid": call,
        "service_sid": None,
        "error_code": "11200",
        "more_info": {
            "msg": f"An attempt to retrieve content from {hook} returned the HTTP status code 502",
            "Msg": "Bad Gateway",
            "sourceComponent": "12000",
            "ErrorCode": "11200",
            "httpResponse": "502",
            "url": hook,
            "LogLevel": level.upper(),
        },
        "webhook": {
            "type": "application/json",
            "request": {
                "method": "POST",
                "url": hook,
                "headers": {"X-Twilio-Signature": "bm90IGEgcmVhbCBzaWduYXR1cmU="},
                "parameters": {"CallSid": call, "AccountSid": ACCOUNT_SID},
            },
            "response": {"status_code": 502, "headers": {}, "body": "Bad Gateway"},
        },
    }
    params = {
        "Sid": sid or new_sid("NO"),
        "AccountSid": ACCOUNT_SID,
        "ParentAccountSid": "",
        "Timestamp": "2023-11-14T18:30:00Z",
        "Level": level.upper(),
        "PayloadType": "application/json",
        "Payload": json.dumps(payload, separators=(",", ":")),
    }
    return _apply(params, overrides)
