"""`send`, `sign` and `verify`: signed requests, their small HTTP client, URL diagnosis."""

from __future__ import annotations

import base64
import difflib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import Message
from typing import NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import click

from .. import __version__
from .._core.kinds import KINDS, Kind, PayloadFactory
from .._core.payloads import cloudevent_for
from .._core.signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    SETTINGS_HEADER,
    compute_json_signature,
    compute_signature,
    json_url,
    signature_settings,
)
from .._core.verifier import SignatureVerifier
from .._core.wording import counted
from .._logging import printable
from ._common import CONTEXT, parameters, token_list, warn

__all__ = ["send", "sign", "signed_post", "verify"]

DEFAULT_URL = "http://127.0.0.1:8090/"
_FORM = "application/x-www-form-urlencoded"


# -- the HTTP client -------------------------------------------------------------
class _Answer(NamedTuple):
    status: int
    reason: str
    content_type: str
    body: bytes
    milliseconds: float
    location: str = ""  # a redirect's Location header, as received

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to show, not to follow: it is what Twilio would get."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _post(
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout: float,
    method: str = "POST",
) -> _Answer:
    """POST *body* (or GET *url*) and return the answer, with the time it took."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=body, headers=dict(headers), method=method
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    started = time.perf_counter()
    received: Message[str, str]
    try:
        with opener.open(request, timeout=timeout) as answer:
            content = answer.read()
            status, reason, received = answer.status, answer.reason, answer.headers
    except urllib.error.HTTPError as error:
        content = error.read()
        status, reason, received = error.code, error.reason, error.headers
    except (urllib.error.URLError, OSError) as error:
        reason_text = getattr(error, "reason", error)
        raise click.ClickException(f"cannot reach {url}: {reason_text}") from None
    elapsed = (time.perf_counter() - started) * 1000
    kind, location = received["content-type"] or "", received["location"] or ""
    return _Answer(status, str(reason), kind, content, elapsed, location)


_SHOWN_LOCATION = 300  # characters of a Location header shown


def _explain_redirect(url: str, location: str) -> None:
    """Say where a redirect points, that it was not followed, and the likely cause."""
    if not location:
        click.echo("a redirect without a Location; send does not follow redirects")
        return
    shown = printable(location[:_SHOWN_LOCATION]) + (
        "..." if len(location) > _SHOWN_LOCATION else ""
    )
    click.echo(f"Location: {shown}")
    click.echo("send does not follow redirects: the URL given to Twilio must answer itself.")
    asked, told = urlsplit(url), urlsplit(urljoin(url, location))
    if (
        asked.path != told.path
        and asked.path.rstrip("/") == told.path.rstrip("/")
        and (asked._replace(path="") == told._replace(path=""))
    ):
        ending = "with" if told.path.endswith("/") else "without"
        click.echo(
            f"Hint: the Location differs from the URL only by its trailing slash, which "
            f"the application adds or removes (Django's APPEND_SLASH does): the URL given to "
            f"Twilio, --url here and the listener's public_url must end {ending} it, as the "
            f"route does."
        )
    elif asked.scheme != told.scheme and asked._replace(scheme="") == told._replace(scheme=""):
        click.echo(
            f"Hint: the server sends {asked.scheme} to {told.scheme}: give Twilio the "
            f"{told.scheme}:// URL, and set the listener's public_url to it."
        )
    else:
        click.echo(
            "Hint: give Twilio the URL that answers, not one that redirects, and set the "
            "listener's public_url to the URL Twilio posts to (signatures are computed over it)."
        )


def signed_post(
    url: str, params: Sequence[tuple[str, str]], token: str, sign_url: str | None, timeout: float
) -> _Answer:
    headers = {
        "Content-Type": _FORM,
        "User-Agent": f"twilio-trigger/{__version__}",
        "X-Twilio-Signature": compute_signature(sign_url or url, params, token),
    }
    return _post(url, urlencode(params).encode("ascii"), headers, timeout)


# -- send ----------------------------------------------------------------------
def _sendable() -> dict[str, tuple[Kind, PayloadFactory]]:
    # Each kind by its name, and its other payloads as "variant-kind" (inbound-call).
    table: dict[str, tuple[Kind, PayloadFactory]] = {}
    for kind in KINDS:
        table[kind.name] = (kind, kind.payload)
        for variant, factory in kind.variants.items():
            table[f"{variant}-{kind.name}"] = (kind, factory)
    return table


_KINDS = _sendable()


def _events_of_kinds() -> str:
    # The registry's events, under the help: what STATUS may be for each KIND.
    lines = ["\b", "Events of each kind (STATUS):"]
    for kind in KINDS:
        if kind.events:
            lines.append(f"  {kind.name}: {' '.join(kind.events)}")
        else:
            lines.append(f"  {kind.name}: (one callback, {kind.callbacks[0]})")
    return "\n".join(lines)


def _at_path(url: str, path: str | None) -> str:
    # The URL with its path (and query) replaced by *path*: a service's own path.
    if path is None:
        return url
    if not path.startswith("/"):
        raise click.BadParameter("a path starts with /", param_hint="--path")
    route, _, query = path.partition("?")
    return urlunsplit(urlsplit(url)._replace(path=route, query=query, fragment=""))


@click.command(context_settings=CONTEXT, epilog=_events_of_kinds())
@click.argument("kind", type=click.Choice(list(_KINDS)))
@click.argument("status", required=False)
@click.option("--url", default=DEFAULT_URL, show_default=True, help="The listener's URL.")
@click.option("--path", metavar="/PATH[?QUERY]",
              help="Send to this path of the listener (a service attached at its own path), "
                   "with this query (your own parameters on an action URL).")  # fmt: skip
@click.option(
    "--get",
    "use_get",
    is_flag=True,
    help="Send it as a GET webhook: the parameters in the query, signed over the URL.",
)
@click.option(
    "--basic-auth",
    metavar="USER:PASSWORD",
    help="Send these HTTP Basic credentials (a listener's basic_auth).",
)
@click.option("--auth-token", "auth_tokens", multiple=True, envvar="TWILIO_AUTH_TOKEN",
              help="Token to sign with.  [default: $TWILIO_AUTH_TOKEN]")  # fmt: skip
@click.option("--shared-key", metavar="ID=SECRET",
              help="Sign with this shared key (HMAC-SHA256), as a Webhook Rule does.")  # fmt: skip
@click.option("--event-streams", is_flag=True,
              help="Send it as an Event Streams sink receives it: a CloudEvent in a JSON "
                   "array, signed with bodySHA256 (the kinds Event Streams carries: "
                   + ", ".join(k.name for k in KINDS if k.cloudevent_types) + ").")  # fmt: skip
@click.option("--sid", help="The message, call or recording SID.  [default: a new one]")
@click.option("--set", "settings", multiple=True, metavar="Name=Value",
              help="Set (or with Name= blank) a parameter; repeatable.")  # fmt: skip
@click.option("--unset", multiple=True, metavar="Name", help="Leave a parameter out; repeatable.")
@click.option("--sign-url", help="Sign over this URL instead of --url (a listener's public_url).")
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Seconds to wait.")
def send(
    kind: str,
    status: str | None,
    url: str,
    path: str | None,
    use_get: bool,
    basic_auth: str | None,
    auth_tokens: tuple[str, ...],
    shared_key: str | None,
    event_streams: bool,
    sid: str | None,
    settings: tuple[str, ...],
    unset: tuple[str, ...],
    sign_url: str | None,
    timeout: float,
) -> None:
    """Send one signed, realistic event to a listener and print its answer.

    KIND is a kind of webhook (inbound-call is the voice webhook of an incoming
    call, which asks for TwiML).  STATUS is the value that picks the callback,
    as Twilio spells it: a status such as delivered, failed, received (an
    inbound message), ringing or in-progress, a conference's participant-join,
    a Conversations onMessageAdd, a TaskRouter task.created; each kind's are
    listed below (the kind's usual one when left out).  For a kind with one
    callback it picks a variant of the payload where there are some (gather:
    digits, speech, empty).  The answer's body shows a callback's reply.
    Exits 1 unless the answer is 2xx.

    \b
    Example:
      twilio-trigger send sms failed --set ErrorCode=30007 --auth-token TOKEN
      twilio-trigger send sms received --set Body=HELP      # see the reply
      twilio-trigger send inbound-call ringing              # see the call's TwiML
      twilio-trigger send gather --set Digits=2 --path /voice/menu
      twilio-trigger send conversations onMessageAdd --set Body=hello
      twilio-trigger send call completed --event-streams
      twilio-trigger send recording completed --shared-key webhooks_sharedkey_1=SECRET
    """
    if shared_key is not None:
        source = click.get_current_context().get_parameter_source("auth_tokens")
        if auth_tokens and source is click.core.ParameterSource.COMMANDLINE:
            warn("--auth-token has no effect with --shared-key, which signs instead")
        key_id, equals, secret = shared_key.partition("=")
        if not equals or not key_id.strip() or not secret:
            raise click.BadParameter("expected ID=SECRET", param_hint="--shared-key")
        secret_or_token, algorithm = secret, HMAC_SHA256
        headers = {SETTINGS_HEADER: signature_settings(key_id.strip(), HMAC_SHA256)}
    else:
        secret_or_token, algorithm, headers = token_list(auth_tokens)[0], HMAC_SHA1, {}
    row, factory = _KINDS[kind]
    overrides: dict[str, object] = dict(parameters(settings, None))
    overrides.update(dict.fromkeys(unset))
    known = {event.lower() for event in row.events}
    if status is not None and row.route_by and status.strip().lower() not in known:
        # A status of the kind's, misspelt, would be sent (and answered 200) as an
        # unknown one; one far from any is sent as it is, on purpose.
        close = difflib.get_close_matches(status.strip(), row.events, n=1, cutoff=0.75)
        if close:
            raise click.BadParameter(
                f"{status!r} is not a status of {kind}: did you mean {close[0]!r}?  (To send "
                f"it anyway: --set {row.route_by[0]}={status})",
                param_hint="STATUS",
            )
    try:
        params = (
            factory(sid=sid, **overrides)
            if status is None
            else factory(status, sid=sid, **overrides)
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="STATUS") from None
    headers["User-Agent"] = f"twilio-trigger/{__version__}"
    if basic_auth is not None:
        user, colon, password = basic_auth.partition(":")
        if not colon or not user or not password:
            raise click.BadParameter("expected USER:PASSWORD", param_hint="--basic-auth")
        token = base64.b64encode(basic_auth.encode("utf-8")).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    url = _at_path(url, path)
    sign_url = _at_path(sign_url, path) if sign_url is not None else None
    method = "GET" if use_get else "POST"
    if event_streams and (use_get or path is not None):
        raise click.BadParameter(
            "Event Streams posts to the sink's URL", param_hint="--event-streams"
        )
    if event_streams:
        # Event Streams carries a kind's own status events, not its variants (the
        # voice webhook of an inbound call asks for TwiML: no sink receives it).
        if not row.cloudevent_types or kind != row.name:
            carried = " and ".join(k.name for k in KINDS if k.cloudevent_types)
            raise click.BadParameter(
                f"Event Streams carries {carried} events only", param_hint="KIND"
            )
        try:
            events = [cloudevent_for(params)]
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="STATUS") from None
        body = json.dumps(events).encode("utf-8")
        signed = json_url(sign_url or url, body)
        target = json_url(url, body)
        headers["Content-Type"] = "application/json"
        headers["X-Twilio-Signature"] = compute_json_signature(signed, secret_or_token, algorithm)
        answer = _post(target, body, headers, timeout)
    elif use_get:
        # Twilio appends its parameters to the URL's own query, and signs the whole URL.
        query = urlencode(list(params.items()))
        url = f"{url}&{query}" if urlsplit(url).query else f"{url}?{query}"
        signed = sign_url or url
        if sign_url is not None:
            signed = f"{sign_url}&{query}" if urlsplit(sign_url).query else f"{sign_url}?{query}"
        headers["X-Twilio-Signature"] = compute_signature(signed, [], secret_or_token, algorithm)
        answer = _post(url, None, headers, timeout, method="GET")
    else:
        pairs = list(params.items())
        headers["Content-Type"] = _FORM
        headers["X-Twilio-Signature"] = compute_signature(
            sign_url or url, pairs, secret_or_token, algorithm
        )
        answer = _post(url, urlencode(pairs).encode("ascii"), headers, timeout)
    # What was sent: the payload's own value of the kind's status parameter.
    shown = status or next((params[name] for name in row.route_by if params.get(name)), "")
    # The SID the listener takes, read as its event reads it.
    sent_sid = row.event_class({name: str(value) for name, value in params.items()}).sid or ""
    click.echo(f"{method} {url}  {kind} {shown}".rstrip() + f"  {sent_sid}")
    click.echo(
        f"{answer.status} {answer.reason}  {answer.content_type}  {answer.milliseconds:.1f} ms"
    )
    if 300 <= answer.status < 400:
        _explain_redirect(url, answer.location)
    elif answer.body:
        click.echo(answer.text.rstrip("\n"))
    if not 200 <= answer.status < 300:
        sys.exit(1)


# -- sign and verify -------------------------------------------------------------
@click.command(context_settings=CONTEXT)
@click.option("--url", required=True, help="The full URL Twilio requests, query string included.")
@click.option("--auth-token", "auth_tokens", multiple=True, envvar="TWILIO_AUTH_TOKEN",
              help="Token to sign with.  [default: $TWILIO_AUTH_TOKEN]")  # fmt: skip
@click.option("--body", help="The form body, instead of (or before) Name=Value arguments.")
@click.argument("params", nargs=-1, metavar="[Name=Value]...")
def sign(url: str, auth_tokens: tuple[str, ...], body: str | None, params: tuple[str, ...]) -> None:
    """Print the X-Twilio-Signature Twilio would send for a form POST.

    \b
    Example:
      twilio-trigger sign --url https://hooks.example.com/sms --auth-token TOKEN \\
          MessageSid=SM0123 MessageStatus=delivered
    """
    token = token_list(auth_tokens)[0]
    click.echo(compute_signature(url, parameters(params, body), token))


def _mask(token: str) -> str:
    return f"…{token[-4:]}" if len(token) > 8 else "…"


def _alternatives(url: str) -> list[tuple[str, str]]:
    """URLs a proxy or a configuration slip commonly puts in place of the real one."""
    parts = urlsplit(url)
    other_scheme = {"http": "https", "https": "http"}.get(parts.scheme, parts.scheme)
    path = parts.path
    toggled = path[:-1] if path.endswith("/") and len(path) > 1 else path + "/"
    candidates = [
        (urlunsplit(parts._replace(scheme=other_scheme)), f"the scheme is {other_scheme}"),
        (urlunsplit(parts._replace(path=toggled)), "the trailing slash differs"),
    ]
    if parts.query:
        candidates.append((urlunsplit(parts._replace(query="")), "without the query string"))
    return candidates


@click.command(context_settings=CONTEXT)
@click.option("--url", required=True, help="The URL the request was checked against.")
@click.option("--signature", required=True, help="The X-Twilio-Signature header received.")
@click.option("--auth-token", "auth_tokens", multiple=True, envvar="TWILIO_AUTH_TOKEN",
              help="Token(s) to try; repeatable.  [default: $TWILIO_AUTH_TOKEN]")  # fmt: skip
@click.option("--body", help="The form body received, instead of Name=Value arguments.")
@click.argument("params", nargs=-1, metavar="[Name=Value]...")
def verify(
    url: str,
    signature: str,
    auth_tokens: tuple[str, ...],
    body: str | None,
    params: tuple[str, ...],
) -> None:
    """Check a captured request's signature; say what matched, or why nothing did.

    Exits 0 when the signature is valid, 1 when it is not.

    \b
    Example:
      twilio-trigger verify --url https://hooks.example.com/sms \\
          --signature 'L/OH5YylLD5NRKLltdqwSvS0BnU=' --body 'MessageSid=SM0123&...'
    """
    tokens = token_list(auth_tokens)
    pairs = parameters(params, body)
    verifier = SignatureVerifier(tokens)
    encoded = signature.strip().encode("utf-8")
    match = verifier.matching(url, pairs, encoded)
    if match is not None:
        index, form = match
        click.echo(
            f"valid: signed with token #{index + 1} ({_mask(tokens[index])}) "
            f"over {form} ({counted(len(pairs), 'parameter')})"
        )
        return
    # The public verifier's account of the failure, as the listener's refusal log gives it.
    error = verifier.explain_form(url, pairs, encoded)
    why = str(error) if error is not None else "the signature matches nothing"
    click.echo(f"invalid ({counted(len(pairs), 'parameter')}): {why}")
    for candidate, why in _alternatives(url):
        found = verifier.matching(candidate, pairs, encoded)
        if found is not None:
            click.echo(
                f"it matches {found[1]} ({why}): that is the URL Twilio called; "
                f"set public_url (TWILIO_TRIGGER_PUBLIC_URL) to it"
            )
            sys.exit(1)
    click.echo(
        "no nearby URL matches either; check that the token is the primary auth token of "
        "the account or subaccount that owns the number, that every parameter received is "
        "passed exactly as received, and that the host and path are the ones configured in Twilio"
    )
    sys.exit(1)
