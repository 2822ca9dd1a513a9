"""TwiML bodies the listener answers with."""

from __future__ import annotations

__all__ = ["EMPTY_RESPONSE", "TWIML_CONTENT_TYPE"]

#: The empty TwiML document: "received, nothing to do".  Safe for status
#: callbacks and for inbound-message webhooks alike, where a text/plain body
#: would be sent back to the sender as a reply.
EMPTY_RESPONSE = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWIML_CONTENT_TYPE = b"text/xml"
