"""The HTTP answers of the listener, built once and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from .twiml import EMPTY_RESPONSE, TWIML_CONTENT_TYPE

__all__ = ["Answer", "acknowledged", "answer", "closing", "json_answer", "reject", "twiml"]

Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, body and the raw headers to send with it."""

    status: int
    body: bytes
    headers: Headers

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name == b"content-type":
                return value.decode("latin-1")
        return ""  # pragma: no cover - every answer here has one

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def answer(status: int, body: bytes, content_type: bytes, *extra: tuple[bytes, bytes]) -> Answer:
    """An answer with its content type and length, and any *extra* headers."""
    headers = (
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra,
    )
    return Answer(status, body, headers)


def reject(status: int, message: str, *extra: tuple[bytes, bytes]) -> Answer:
    """A short plain-text error answer; *message* must hold nothing internal."""
    return answer(status, message.encode("utf-8") + b"\n", b"text/plain; charset=utf-8", *extra)


_CLOSE = (b"connection", b"close")


def closing(answer: Answer) -> Answer:
    """*answer*, asking for the connection to be closed after it.

    For answers given before the body was read: reading the rest only to keep
    the connection would let a client make the server read as much as it sends.
    """
    if _CLOSE in answer.headers:
        return answer
    return Answer(answer.status, answer.body, (*answer.headers, _CLOSE))


def twiml(body: bytes) -> Answer:
    """200 with a TwiML document: a callback's reply."""
    return answer(200, body, TWIML_CONTENT_TYPE)


def json_answer(body: bytes) -> Answer:
    """200 with a JSON document (or nothing): a Conversations or TaskRouter callback's reply."""
    return answer(200, body, b"application/json")


#: 200 with empty TwiML: the answer to every event acknowledged.
acknowledged = twiml(EMPTY_RESPONSE)

NOT_FOUND = reject(404, "not found")
METHOD_NOT_ALLOWED = reject(
    405, "method not allowed: Twilio webhooks are POSTed (or GET)", (b"allow", b"POST, GET")
)
GET_ONLY = reject(405, "method not allowed: use GET", (b"allow", b"GET, HEAD"))
UNSUPPORTED_MEDIA_TYPE = reject(
    415,
    "unsupported content type: expected application/x-www-form-urlencoded (UTF-8), "
    "or application/json from Event Streams",
)
PAYLOAD_TOO_LARGE = reject(413, "request body too large")
SIGNATURE_MISSING = reject(403, "missing X-Twilio-Signature header")
SIGNATURE_INVALID = reject(403, "invalid X-Twilio-Signature")
MALFORMED_HOST = reject(400, "malformed Host header")
#: HTTP/1.1 requires a Host (RFC 9112, 3.2): the signed URL would be a guess.
MISSING_HOST = reject(400, "missing Host header")
#: A header that decides how a request is read or whose it is, sent twice: which
#: one counts would be the server's guess, and a proxy before it may guess otherwise.
REPEATED_HEADER = {
    name: reject(400, f"repeated {shown} header")
    for name, shown in (
        (b"content-type", "Content-Type"),
        (b"x-twilio-signature", "X-Twilio-Signature"),
        (b"authorization", "Authorization"),
        (b"x-twilio-webhooks-signature-settings", "X-Twilio-Webhooks-Signature-Settings"),
    )
}


BASIC_AUTH_REALM = "twilio-trigger"


def unauthorized(realm: str = BASIC_AUTH_REALM, message: str = "authentication required") -> Answer:
    """401 asking for HTTP Basic credentials (Twilio sends them only when asked)."""
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    challenge = f'Basic realm="{quoted}", charset="UTF-8"'.encode("latin-1", "replace")
    return reject(401, message, (b"www-authenticate", challenge))


NO_PARAMETERS = reject(
    400,
    "the request carries no parameters: a Twilio webhook sends them in its body (POST) "
    "or its query (GET)",
)
FOREIGN_PARAMETERS = reject(
    400,
    "a parameter without a name, or a GET's bodySHA256: never in a Twilio webhook",
)
CALLBACK_FAILED = reject(500, "the event's callback failed; see the listener's log")
CALLBACK_TIMED_OUT = reject(503, "the event's callback ran past its time limit")
COPY_IN_PROGRESS = reject(503, "another copy of this event is being handled")
COPY_WAITED = reject(503, "another copy of this event failed; try again")
INBOX_UNAVAILABLE = reject(503, "the event could not be stored; try again")
STORE_UNAVAILABLE = reject(503, "the listener's store is unreachable; try again")
