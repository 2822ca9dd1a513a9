"""Decoding an ``application/x-www-form-urlencoded`` body, without any I/O."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_to_bytes

__all__ = ["FormError", "is_form_content_type", "parse_form", "utf8_or_no_charset"]

# Every byte but the two separators: what translate() deletes to leave a body's skeleton.
_NOT_SEPARATORS = bytes(b for b in range(256) if b not in b"=&")


class FormError(ValueError):
    """The body is not a form Twilio could have sent; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: Content types seen, and whether each is a form's: a listener sees very few
#: (Twilio sends one).  Bounded in count and length: made-up ones cannot grow it.
_SEEN_FORM_TYPES: dict[bytes, bool] = {}


def is_form_content_type(value: bytes | None) -> bool:
    """True for ``application/x-www-form-urlencoded``, with no charset or UTF-8."""
    if value is None:
        return False
    known = _SEEN_FORM_TYPES.get(value)
    if known is None:
        known = _is_form_content_type(value)
        if len(_SEEN_FORM_TYPES) < 64 and len(value) <= 100:
            _SEEN_FORM_TYPES[value] = known
    return known


def _is_form_content_type(value: bytes) -> bool:
    media_type, _, parameters = value.partition(b";")
    if media_type.strip().lower() != b"application/x-www-form-urlencoded":
        return False
    return utf8_or_no_charset(parameters)


def utf8_or_no_charset(parameters: bytes) -> bool:
    """Whether a content type's *parameters* (what follows its first ``;``) name no
    charset, or UTF-8: the only encoding the listener reads."""
    for parameter in parameters.split(b";"):
        name, _, charset = parameter.partition(b"=")
        if name.strip().lower() == b"charset":
            return charset.strip().strip(b'"').lower() in (b"utf-8", b"utf8")
    return True


def parse_form(body: bytes, max_params: int) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a form body, in order, repeated names kept.

    Percent-escapes are decoded as strict UTF-8 and ``+`` as a space, as Twilio
    encodes them; blank values are kept because Twilio signs them.  The result
    is what ``urllib.parse.parse_qsl(..., keep_blank_values=True)`` gives.
    """
    if not body.isascii():
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise FormError(400, "the body is not valid UTF-8") from None
        return _general(text, max_params)
    fields = body.count(b"&") + 1
    if fields > max_params:
        return _general(body.decode("ascii"), max_params)
    # The usual body: fields "name=value" joined by "&", each with exactly one
    # "=", none empty.  Split and decode it in a few passes of C code instead
    # of one Python call per field.
    skeleton = body.translate(None, _NOT_SEPARATORS)
    if skeleton == b"=&" * (fields - 1) + b"=":
        raw = body.replace(b"&", b"\0").replace(b"=", b"\0")
        if b"%" in raw or b"+" in raw:
            raw = unquote_to_bytes(raw.replace(b"+", b" "))
        try:
            items = raw.decode("utf-8").split("\0")
        except UnicodeDecodeError:
            raise FormError(400, "a percent-encoded value is not valid UTF-8") from None
        # Each separator became one NUL: any other NUL, in the body or decoded from
        # an escape, makes more items than that, and the long way decodes it.
        if len(items) == 2 * fields:
            pairs = iter(items)
            return list(zip(pairs, pairs))  # noqa: B905 - an even count, checked above
    return _general(body.decode("ascii"), max_params)


def _general(text: str, max_params: int) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=max_params)
    except UnicodeDecodeError:
        raise FormError(400, "a percent-encoded value is not valid UTF-8") from None
    except ValueError:
        raise FormError(413, f"too many parameters (at most {max_params})") from None
