"""TwiML: the answers the listener gives, and the replies callbacks return."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from html import escape

from .events import TwilioEvent
from .kinds import kind_of_event
from .wording import a_or_an

__all__ = ["EMPTY_RESPONSE", "TWIML_CONTENT_TYPE", "ReplyError", "expects_twiml", "reply_body"]

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
#: The empty TwiML document: "received, nothing to do".  Safe for status
#: callbacks and for inbound-message webhooks alike, where a text/plain body
#: would be sent back to the sender as a reply.
EMPTY_RESPONSE = _DECLARATION + b"<Response/>"
TWIML_CONTENT_TYPE = b"text/xml"


# Characters XML 1.0 cannot carry, even escaped, and lone surrogates: a reply
# holding them would be TwiML Twilio cannot read.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DECLARED = re.compile(r"\A<\?xml[^>]*\?>")


class ReplyError(TypeError):
    """A callback returned something that cannot be Twilio's answer."""


def expects_twiml(event: TwilioEvent) -> bool:
    """True when Twilio waits for TwiML telling it what to do, not a mere receipt.

    An inbound message (``received``) may be answered with messages; a voice
    request that is not a status callback (no ``CallbackSource``: an incoming
    call, an answered outbound call) must be answered with what the call does.
    """
    kind = kind_of_event(event)
    return kind.answer == "twiml" and kind.waits_for_reply(event)


def _twiml(text: str, what: str) -> bytes:
    # Sent as UTF-8 under our own declaration, whatever encoding the text declared.
    stripped = _DECLARED.sub("", text.strip().lstrip("\ufeff").strip()).strip()
    if _NOT_XML.search(stripped):
        raise ReplyError(f"{what} holds characters XML cannot carry (control characters)")
    try:
        # The callback's own output, not data from the network.
        root = ElementTree.fromstring(stripped)  # noqa: S314
    except ElementTree.ParseError as error:
        raise ReplyError(f"{what} is not TwiML: {error}") from None
    if root.tag != "Response":
        raise ReplyError(f"{what} is not TwiML: its root element is <{root.tag}>, not <Response>")
    return _DECLARATION + stripped.encode("utf-8")


def reply_body(event: TwilioEvent, reply: object) -> bytes:
    """The TwiML to answer *event* with, from what its callback returned.

    For an inbound message a ``str`` is the text of one reply message (escaped);
    for a call a ``str`` must be TwiML.  Any other object is sent as its
    ``str()``, which must be TwiML (twilio-python's ``MessagingResponse`` and
    ``VoiceResponse`` are).  :class:`ReplyError` says why a reply cannot be sent.
    """
    kind = type(reply).__name__
    if isinstance(reply, str):
        if kind_of_event(event).text_reply == "message":
            # A control character in a text message is replaced, not an error:
            # the text is often the sender's own words, echoed.
            # &, < and > escaped, as XML text needs (html's escape: xml.sax.saxutils
            # would load urllib.request with the package).
            message = escape(_NOT_XML.sub("\ufffd", reply), quote=False).encode("utf-8")
            return _DECLARATION + b"<Response><Message>" + message + b"</Message></Response>"
        return _twiml(reply, "the str returned")
    if isinstance(reply, bytes | bytearray | int | float | bool | list | tuple | dict | set):
        raise ReplyError(
            f"a callback returned {a_or_an(kind)}: return None, a str, or a TwiML object such as "
            f"twilio.twiml.messaging_response.MessagingResponse"
        )
    return _twiml(str(reply), f"the {kind} returned")
