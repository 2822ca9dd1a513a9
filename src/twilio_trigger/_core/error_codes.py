"""Twilio's error codes: the title of the common ones, and the page of every one.

A status callback names what went wrong with a number (``ErrorCode=30003``);
the inspector and the command line show that number with its title and a
link to Twilio's page about it.  The table below holds the codes a webhook
most often carries: messaging delivery errors, voice and ``<Dial>`` errors,
and the errors Twilio reports when it cannot reach a webhook.

Every title is Twilio's own wording, as its page for that code
(``https://www.twilio.com/docs/api/errors/<code>``) gave it when read on
2026-12-05; a code whose page was not read is not in the table.  Twilio edits
these titles now and then: the link, not the title, is the reference.  A code
the table does not hold still has its link (:func:`error_code_url`), only no
title.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ERROR_CODES", "ErrorCode", "error_code_info", "error_code_url"]

#: Where Twilio documents each code: the code is appended.
_PAGE = "https://www.twilio.com/docs/api/errors/"
#: Twilio's codes have at most six digits; more is not a code.
_MAX_DIGITS = 6


class ErrorCode(NamedTuple):
    """One Twilio error code: its number, its title, its product and its page."""

    code: int
    title: str
    product: str  # "messaging", "voice" or "webhooks"
    url: str


_TITLES: tuple[tuple[int, str, str], ...] = (
    # -- messaging: delivery, sending and channel errors ---------------------
    (14101, "messaging", 'Invalid "To" attribute'),
    (14106, "messaging", "Document retrieval limit reached"),
    (14111, "messaging", "Invalid To phone number for Trial mode"),
    (21604, "messaging", "'To' phone number is required to send a Message"),
    (21606, "messaging", "The 'From' phone number provided is not a valid message-capable "
     "Twilio phone number for this destination/account"),
    (21608, "messaging", "The 'to' phone number provided is not yet verified for this account."),
    (21611, "messaging", "This 'From' number has exceeded the maximum number of queued messages"),
    (21635, "messaging", "'To' number cannot be a landline"),
    (21730, "messaging", "System under maintenance. Please try again later."),
    (30001, "messaging", "Queue overflow"),
    (30002, "messaging", "Account suspended"),
    (30003, "messaging", "Unreachable destination handset"),
    (30006, "messaging", "Landline or unreachable carrier"),
    (30007, "messaging", "Message filtered"),  # read on Twilio's docs staging site
    (30036, "messaging", "Validity Period Expired"),
    (30038, "messaging", "OTP Message Body Filtered"),
    (30039, "messaging", "Filtered to Prevent Message Loops"),
    (30042, "messaging", "The Sender ID is blocked as generic or it contains special characters"),
    (30110, "messaging", "Domain is blocked"),
    (30500, "messaging", "Twilio Internal Error"),
    (30610, "messaging", "Message couldn't be delivered"),
    (30700, "messaging", "Advanced messaging features are not available in this region."),
    (63014, "messaging", "Channel message blocked by user action"),
    (63016, "messaging", "Outside messaging window. For WhatsApp, use a Message Template instead"),
    (63017, "messaging", "Rate limit exceeded"),
    (63023, "messaging", "Channel generic error"),
    (80901, "messaging", "Message Matched Stop Word"),
    # -- voice: calls, <Dial> and call progress ------------------------------
    (13223, "voice", "Dial: Invalid phone number format"),
    (13224, "voice", "Dial: Twilio does not support calling this number or the number is invalid"),
    (13226, "voice", "Dial: Invalid country code"),
    (15002, "voice", "Call Progress: Queue Timeout"),
    (15003, "voice", "Call Progress: Warning Response to Callback URL"),
    (21214, "voice", "'To' phone number cannot be reached"),
    (21216, "voice", "API: Call blocked by Twilio"),
    (21217, "voice", "Phone number does not appear to be valid"),
    (22005, "voice", "Call Queue Full"),
    (31203, "voice", "No valid account."),
    (31486, "voice", "Busy Here"),
    (31600, "voice", "Busy Everywhere"),
    (31604, "voice", "Does Not Exist Anywhere"),
    (34002, "voice", "Callee Busy"),
    # -- webhooks: Twilio could not get an answer from the application -------
    (11205, "webhooks", "HTTP connection failure"),
    (11210, "webhooks", "HTTP bad host name"),
    (11215, "webhooks", "HTTP too many redirects"),
    (11216, "webhooks", "HTTP invalid redirect"),
    (11217, "webhooks", "HTTP error response code"),
    (12300, "webhooks", "Invalid Content-Type"),
    (12400, "webhooks", "Internal Failure"),
)  # fmt: skip

#: The codes with a title, by number.
ERROR_CODES: dict[int, ErrorCode] = {
    code: ErrorCode(code, title, product, f"{_PAGE}{code}") for code, product, title in _TITLES
}


def _number(code: int | str | None) -> int | None:
    """*code* as a positive number of at most six digits, else ``None``.

    A string is what a request carried: only ASCII digits count, never the
    thousands of digits a hostile one could hold (nor ``int()`` of them)."""
    if isinstance(code, bool) or code is None:
        return None
    if isinstance(code, int):
        number = code
    else:
        text = code.strip()
        if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > _MAX_DIGITS:
            return None
        number = int(text)
    return number if 0 < number < 10**_MAX_DIGITS else None


def error_code_info(code: int | str | None) -> ErrorCode | None:
    """The title, product and page of Twilio's error *code*; ``None`` when the
    table does not hold it (or it is no code: ``0`` means no error)."""
    number = _number(code)
    return None if number is None else ERROR_CODES.get(number)


def error_code_url(code: int | str | None) -> str | None:
    """Twilio's page for *code*, whether the table holds it or not; ``None``
    when *code* is no error code (absent, ``0``, not a number)."""
    number = _number(code)
    return None if number is None else f"{_PAGE}{number}"
