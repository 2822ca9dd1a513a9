"""Decoding an ``application/x-www-form-urlencoded`` body, without any I/O."""

from __future__ import annotations

from urllib.parse import parse_qsl

__all__ = ["FormError", "is_form_content_type", "parse_form"]


class FormError(ValueError):
    """The body is not a form Twilio could have sent; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_form_content_type(value: bytes | None) -> bool:
    """True for ``application/x-www-form-urlencoded``, with no charset or UTF-8."""
    if value is None:
        return False
    media_type, _, parameters = value.partition(b";")
    if media_type.strip().lower() != b"application/x-www-form-urlencoded":
        return False
    for parameter in parameters.split(b";"):
        name, _, charset = parameter.partition(b"=")
        if name.strip().lower() == b"charset":
            return charset.strip().strip(b'"').lower() in (b"utf-8", b"utf8")
    return True


def parse_form(body: bytes, max_params: int) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a form body, in order, repeated names kept.

    Percent-escapes are decoded as strict UTF-8 and ``+`` as a space, as Twilio
    encodes them; blank values are kept because Twilio signs them.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormError(400, "the body is not valid UTF-8") from None
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=max_params)
    except UnicodeDecodeError:
        raise FormError(400, "a percent-encoded value is not valid UTF-8") from None
    except ValueError:
        raise FormError(413, f"too many parameters (at most {max_params})") from None
