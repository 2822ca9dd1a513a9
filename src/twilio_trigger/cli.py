"""The ``twilio-trigger`` command line: run, demo, send, sign, verify."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click

from . import __version__
from ._config import ENVIRONMENT
from ._exceptions import TwilioTriggerError
from ._listener import Listener
from ._logging import configure_logging, shown_url
from ._observe import parse_level
from ._signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    SETTINGS_HEADER,
    SignatureVerifier,
    compute_json_signature,
    compute_signature,
    json_url,
    signature_settings,
    url_variants,
)
from .inbox import Inbox, State, open_inbox
from .inbox.sqlite import SQLiteInbox
from .testing import (
    call_status_params,
    cloudevent_for,
    inbound_call_params,
    recording_status_params,
    sms_status_params,
)

__all__ = ["cli", "main"]

_T = TypeVar("_T")
DEFAULT_URL = "http://127.0.0.1:8090/"
_FORM = "application/x-www-form-urlencoded"
_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=_CONTEXT)
@click.version_option(__version__, prog_name="twilio-trigger")
def cli() -> None:
    """Receive Twilio webhooks and dispatch them to your service classes.

    \b
    Examples:
      twilio-trigger demo                       # a listener and a scripted flow of events
      twilio-trigger run examples/delivery_tracker.py
      twilio-trigger send sms delivered --url http://127.0.0.1:8090/ --auth-token TOKEN
    """


# -- helpers -------------------------------------------------------------------
def _parameters(items: Iterable[str], body: str | None) -> list[tuple[str, str]]:
    pairs = parse_qsl(body, keep_blank_values=True) if body else []
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{item!r} is not Name=Value", param_hint="PARAMS")
        pairs.append((name, value))
    return pairs


def _tokens(values: Sequence[str]) -> list[str]:
    tokens = [t.strip() for value in values for t in value.split(",") if t.strip()]
    if not tokens:
        raise click.UsageError("no auth token: pass --auth-token or set TWILIO_AUTH_TOKEN")
    return tokens


def _mask(token: str) -> str:
    return f"…{token[-4:]}" if len(token) > 8 else "…"


class _Answer(NamedTuple):
    status: int
    reason: str
    content_type: str
    body: bytes
    milliseconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> _Answer:
    """POST *body* and return the answer, with the time it took."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=body, headers=dict(headers), method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.perf_counter()
    try:
        with opener.open(request, timeout=timeout) as answer:
            content = answer.read()
            status, reason, kind = answer.status, answer.reason, answer.headers["content-type"]
    except urllib.error.HTTPError as error:
        content = error.read()
        status, reason, kind = error.code, error.reason, error.headers["content-type"]
    except (urllib.error.URLError, OSError) as error:
        reason_text = getattr(error, "reason", error)
        raise click.ClickException(f"cannot reach {url}: {reason_text}") from None
    elapsed = (time.perf_counter() - started) * 1000
    return _Answer(status, str(reason), kind or "", content, elapsed)


def _signed_post(
    url: str, params: Sequence[tuple[str, str]], token: str, sign_url: str | None, timeout: float
) -> _Answer:
    headers = {
        "Content-Type": _FORM,
        "User-Agent": f"twilio-trigger/{__version__}",
        "X-Twilio-Signature": compute_signature(sign_url or url, params, token),
    }
    return _post(url, urlencode(params).encode("ascii"), headers, timeout)


# -- run -----------------------------------------------------------------------
def _import_target(module_name: str) -> ModuleType:
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name).resolve()
            if not path.is_file():
                raise click.BadParameter(f"no file {module_name}", param_hint="TARGET")
            sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise click.BadParameter(f"cannot load {module_name}", param_hint="TARGET")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name or module_name.startswith(f"{error.name}."):
            raise click.BadParameter(
                f"no module named {module_name!r} (run from the folder that holds it)",
                param_hint="TARGET",
            ) from None
        raise click.ClickException(f"importing {module_name} failed: {error}") from None
    except (click.ClickException, TwilioTriggerError):
        raise
    except Exception as error:
        raise click.ClickException(
            f"importing {module_name} failed: {type(error).__name__}: {error}"
        ) from None


def load_listener(target: str) -> Listener:
    """The listener named by ``MODULE:ATTR``, or the one module-level listener of ``MODULE``."""
    sys.path.insert(0, os.getcwd())
    module_name, _, attribute = target.partition(":")
    try:
        module = _import_target(module_name)
    except TwilioTriggerError as error:
        raise click.ClickException(str(error)) from None
    if attribute:
        found = getattr(module, attribute, None)
        if found is None:
            raise click.BadParameter(f"{module_name} has no {attribute!r}", param_hint="TARGET")
        if not isinstance(found, Listener):
            raise click.BadParameter(
                f"{target} is a {type(found).__name__}, not a twilio_trigger.Listener",
                param_hint="TARGET",
            )
        return found
    listeners = {name: v for name, v in vars(module).items() if isinstance(v, Listener)}
    if len(listeners) == 1:
        return next(iter(listeners.values()))
    if not listeners:
        raise click.BadParameter(f"no Listener at the top of {module_name}", param_hint="TARGET")
    names = ", ".join(f"{module_name}:{name}" for name in sorted(listeners))
    raise click.BadParameter(f"several listeners, say which: {names}", param_hint="TARGET")


_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)
_F = TypeVar("_F", bound=Callable[..., Any])


def _operations(command: _F) -> _F:
    """The options `run` and `worker` share: logs and metrics."""
    options = [
        click.option("--log-format", type=click.Choice(["text", "json"]),
                     help="Log lines as text or as JSON objects.  [default: text]"),
        click.option("--log-level", type=_LEVELS, help="Least level logged.  [default: info]"),
        click.option("--event-log-level", type=_LEVELS,
                     help="Level of the line logged for each event.  [default: info]"),
        click.option("--metrics", is_flag=True, default=None,
                     help="Serve Prometheus metrics at /metrics (the `metrics` extra)."),
        click.option("--metrics-port", type=click.IntRange(0, 65535),
                     help="Serve the metrics on this port instead."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


_OPERATIONS = ("log_format", "log_level", "event_log_level", "metrics", "metrics_port")


def _apply_flags(flags: Mapping[str, object]) -> None:
    """The flags given, written into the environment the listener reads its options from."""
    for option, value in flags.items():
        if value is not None:
            os.environ[ENVIRONMENT[option]] = str(value)


def _set_up_logging(listener: Listener, flags: Mapping[str, object]) -> None:
    # The process is ours, but a module that set up logging itself keeps its
    # set-up unless a flag asks otherwise.
    asked = any(flags.get(name) is not None for name in ("log_format", "log_level"))
    if asked or not logging.getLogger().handlers:
        s = listener.settings
        configure_logging(s.log_format, parse_level(s.log_level))


@cli.command(context_settings=_CONTEXT)
@click.argument("target")
@click.option("--host", help="Interface to listen on.  [default: 0.0.0.0]")
@click.option("--port", type=click.IntRange(0, 65535), help="Port.  [default: 8090]")
@click.option("--path", help="Webhook path.  [default: /]")
@click.option("--public-url", help="The URL Twilio calls, when behind a proxy or tunnel.")
@click.option("--inbox", metavar="URL", help="Durable inbox: sqlite:///events.db, redis://...")
@click.option(
    "--concurrency", type=click.IntRange(1, 1024), help="Callbacks the inbox runs at once."
)
@click.option("--store", metavar="URL", help="Duplicate and status store: memory or redis://...")
@click.option("--workers", "processes", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Listener processes sharing the port (a Redis store or inbox shares "
                   "their state).")  # fmt: skip
@click.option("--inspector", is_flag=True, default=None,
              help="Serve the event inspector (needs --inbox) on 127.0.0.1:8091.")  # fmt: skip
@click.option("--inspector-port", type=click.IntRange(0, 65535), help="The inspector's port.")
@click.option("--inspector-host",
              help="The inspector's interface; beyond loopback it needs "
                   "TWILIO_TRIGGER_INSPECTOR_TOKEN.  [default: 127.0.0.1]")  # fmt: skip
@_operations
def run(
    target: str,
    host: str | None,
    port: int | None,
    path: str | None,
    public_url: str | None,
    inbox: str | None,
    concurrency: int | None,
    store: str | None,
    processes: int,
    inspector: bool | None,
    inspector_port: int | None,
    inspector_host: str | None,
    **operations: Any,
) -> None:
    """Serve the listener defined in a module of yours.

    TARGET is MODULE:ATTR, a MODULE with one module-level Listener, or a .py file.
    Flags apply where the module does not pass the option itself; the auth token
    comes from TWILIO_AUTH_TOKEN.

    \b
    Example:
      TWILIO_AUTH_TOKEN=... twilio-trigger run examples.delivery_tracker --port 8090
      twilio-trigger run app:listener --inbox redis://127.0.0.1:6379/0 --workers 4
      twilio-trigger run app:listener --log-format json --metrics
      twilio-trigger run app:listener --inbox sqlite:///events.db --inspector
    """
    flags = {
        "host": host,
        "port": port,
        "path": path,
        "public_url": public_url,
        "inbox": inbox,
        "workers": concurrency,
        "store": store,
        "inspector": inspector,
        "inspector_port": inspector_port,
        "inspector_host": inspector_host,
        **operations,
    }
    _apply_flags(flags)
    listener = load_listener(target)
    _set_up_logging(listener, flags)
    for option, value in flags.items():
        actual = getattr(listener.settings, option)
        if value is not None and str(actual) != str(value):
            logging.getLogger("twilio_trigger").warning(
                "%s sets %s=%s itself; --%s %s has no effect",
                target,
                option,
                shown_url(str(actual)),
                option.replace("_", "-"),
                shown_url(str(value)),
            )
    if processes > 1 and listener.settings.inspector:
        raise click.UsageError(
            "the inspector is served by one process: use it without --workers (with a "
            "Redis inbox, one more `twilio-trigger run --inspector` shows every process's "
            "events)"
        )
    try:
        if processes == 1:
            listener.run()
        else:
            _run_processes(target, listener, processes)
    except TwilioTriggerError as error:
        raise click.ClickException(str(error)) from None


_TARGET = "TWILIO_TRIGGER_TARGET"
_MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


def _app_from_environment() -> Any:
    """The ASGI app of the listener named in the environment (each process's factory)."""
    listener = load_listener(os.environ[_TARGET])
    if not logging.getLogger().handlers:
        s = listener.settings
        configure_logging(s.log_format, parse_level(s.log_level))
    return listener.asgi


def _run_processes(target: str, listener: Listener, processes: int) -> None:
    # uvicorn's supervisor binds once and starts *processes* children, each of
    # which imports the user's module and serves its listener's ASGI app; the
    # flags reach them through the environment, as they reached this process.
    made = None
    if listener.settings.metrics and not os.environ.get(_MULTIPROCESS):
        # prometheus-client adds up the counts of every process through files
        # here; each process reads this when it imports prometheus-client.
        made = os.environ[_MULTIPROCESS] = tempfile.mkdtemp(prefix="twilio-trigger-metrics-")
    try:
        _supervise(target, listener, processes)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _supervise(target: str, listener: Listener, processes: int) -> None:
    listener.asgi  # noqa: B018 - fail here, once, if the listener cannot start
    settings = listener.settings
    os.environ[_TARGET] = target
    metrics_server = None
    if listener.metrics is not None and settings.metrics_port is not None:
        # The supervisor serves the sum of its processes' metrics on the port.
        from .metrics import MetricsServer

        host = settings.metrics_host or settings.host
        metrics_server = MetricsServer(listener.metrics, host, settings.metrics_port)
    logging.getLogger("twilio_trigger").info(
        "listening on http://%s:%d%s with %d processes",
        settings.host,
        settings.port,
        settings.path,
        processes,
    )
    # uvicorn's supervisor, with the edge's configuration: pickled to each
    # process, it carries the limits (uvicorn.run would build a plain one).
    from uvicorn.supervisors import Multiprocess

    from ._edge import EdgeConfig

    config = EdgeConfig(
        "twilio_trigger.cli:_app_from_environment",
        limits=listener.edge_limits(),
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=processes,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=round(settings.shutdown_timeout),
    )
    try:
        sock = config.bind_socket()
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
    finally:
        if metrics_server is not None:
            metrics_server.close()


@cli.command(context_settings=_CONTEXT)
@click.argument("target")
@click.option("--inbox", metavar="URL", help="The shared inbox, e.g. redis://127.0.0.1:6379/0.")
@click.option("--concurrency", type=click.IntRange(1, 1024), help="Callbacks run at once.")
@_operations
def worker(target: str, inbox: str | None, concurrency: int | None, **operations: Any) -> None:
    """Dispatch events from a shared inbox, without serving HTTP.

    TARGET names the listener whose services handle the events, as for `run`.
    Listeners store events in the inbox; any number of workers, on any machine,
    take them from it.  SIGINT or SIGTERM stop it once running callbacks finish.

    \b
    Example:
      TWILIO_TRIGGER_INBOX=redis://127.0.0.1:6379/0 twilio-trigger worker app:listener
    """
    flags = {"inbox": inbox, "workers": concurrency, **operations}
    _apply_flags(flags)
    listener = load_listener(target)
    _set_up_logging(listener, flags)
    try:
        listener.work()
    except TwilioTriggerError as error:
        raise click.ClickException(str(error)) from None


# -- demo ----------------------------------------------------------------------
class _Notes(logging.Handler):
    """Keeps the library's log lines, to print each under the event that caused it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._lines: list[str] = []
        self._lock = threading.Lock()

    live = False  # once set, lines are printed as they come

    def emit(self, record: logging.LogRecord) -> None:
        if self.live:
            click.echo(f"  {record.getMessage()}")
            return
        with self._lock:
            self._lines.append(record.getMessage())

    def take(self) -> list[str]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (handlers restored after)."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command(context_settings=_CONTEXT)
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True,
              help="Port to listen on (0 picks a free one).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--once", is_flag=True, help="Exit after the script: 0 if every event was dispatched."
)
def demo(port: int, host: str, once: bool) -> None:
    """Start a listener with example services and send it a scripted flow of signed events.

    An SMS delivery tracker and a call tracker keep each SID's status history and
    log its transitions.  After the script the listener keeps running, so that you
    can send it more with `twilio-trigger send`, until Ctrl-C.

    \b
    Example:
      twilio-trigger demo            # then, in another terminal, the send command it prints
      twilio-trigger demo --once     # CI smoke test: exit status says if all went well
    """
    from ._demo import CallTracker, DeliveryTracker, script

    notes = _Notes()
    package_logger = logging.getLogger("twilio_trigger")
    package_logger.addHandler(notes)
    package_logger.setLevel(logging.INFO)
    package_logger.propagate = False
    token = secrets.token_hex(16)
    # Each event's own log line would repeat what the demo prints for it.
    listener = Listener(port, host=host, auth_tokens=[token], event_log_level="debug")
    messages, calls = DeliveryTracker(), CallTracker()
    listener.attach(messages)
    listener.attach(calls)
    try:
        listener.start()
    except TwilioTriggerError as error:
        raise click.ClickException(str(error)) from None
    try:
        url = listener.url
        click.echo("twilio-trigger demo")
        click.echo(f"  listening on   {url}")
        click.echo(f"  auth token     {token}   (generated for this run)")
        steps = script()
        click.echo(f"\nSending {len(steps)} signed events, as Twilio would:")
        notes.take()
        failures = 0
        for step in steps:
            seen = len(messages.calls), len(calls.calls)
            params = list(step.params.items())
            answer = _signed_post(url, params, token, None, 15.0)
            made = messages.calls[seen[0] :] + calls.calls[seen[1] :]
            reached = made[0][0] if len(made) == 1 else f"{len(made)} callbacks"
            ok = answer.status == 200 and reached == step.callback
            failures += not ok
            sid = step.params.get("CallSid") or step.params.get("MessageSid", "?")
            shown = answer.text.partition("?>")[2] or answer.text  # without <?xml ...?>
            click.echo(
                f"  {'ok ' if ok else 'BAD'} {step.kind:<4} {sid}  {step.status:<11} "
                f"→ {reached:<31} {answer.status} {shown.strip()}  {answer.milliseconds:.1f} ms"
            )
            for note in notes.take():
                click.echo(f"        {note}")
        if failures:
            click.echo(f"\n{failures} of {len(steps)} events did not reach their callback.")
        else:
            click.echo(f"\nAll {len(steps)} events were dispatched to the expected callback.")
        if once:
            sys.exit(1 if failures else 0)
        with _stop_signals() as stop:
            click.echo("\nStill listening.  Send more events from another terminal, e.g.:")
            click.echo(f"  twilio-trigger send sms delivered --url {url} --auth-token {token}")
            click.echo("Press Ctrl-C to stop.\n")
            notes.live = True
            while not stop.wait(0.5):
                pass
    finally:
        listener.stop()


# -- send ----------------------------------------------------------------------
_KINDS = {
    "sms": (sms_status_params, "MessageSid"),
    "call": (call_status_params, "CallSid"),
    "inbound-call": (inbound_call_params, "CallSid"),
    "recording": (recording_status_params, "RecordingSid"),
}


@cli.command(context_settings=_CONTEXT)
@click.argument("kind", type=click.Choice(list(_KINDS)))
@click.argument("status")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="The listener's URL.")
@click.option("--auth-token", "auth_tokens", multiple=True, envvar="TWILIO_AUTH_TOKEN",
              help="Token to sign with.  [default: $TWILIO_AUTH_TOKEN]")  # fmt: skip
@click.option("--shared-key", metavar="ID=SECRET",
              help="Sign with this shared key (HMAC-SHA256), as a Webhook Rule does.")  # fmt: skip
@click.option("--event-streams", is_flag=True,
              help="Send it as an Event Streams sink receives it: a CloudEvent in a JSON "
                   "array, signed with bodySHA256 (sms and call).")  # fmt: skip
@click.option("--sid", help="The message, call or recording SID.  [default: a new one]")
@click.option("--set", "settings", multiple=True, metavar="Name=Value",
              help="Set (or with Name= blank) a parameter; repeatable.")  # fmt: skip
@click.option("--unset", multiple=True, metavar="Name", help="Leave a parameter out; repeatable.")
@click.option("--sign-url", help="Sign over this URL instead of --url (a listener's public_url).")
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Seconds to wait.")
def send(
    kind: str,
    status: str,
    url: str,
    auth_tokens: tuple[str, ...],
    shared_key: str | None,
    event_streams: bool,
    sid: str | None,
    settings: tuple[str, ...],
    unset: tuple[str, ...],
    sign_url: str | None,
    timeout: float,
) -> None:
    """Post one signed, realistic event to a listener and print its answer.

    KIND is sms, call, inbound-call (the voice webhook of an incoming call,
    which asks for TwiML) or recording.  STATUS is a Twilio status such as
    delivered, failed, received (an inbound message), ringing, in-progress or,
    for a recording, completed.  The answer's body shows a callback's reply.
    Exits 1 unless the answer is 2xx.

    \b
    Example:
      twilio-trigger send sms failed --set ErrorCode=30007 --auth-token TOKEN
      twilio-trigger send sms received --set Body=HELP      # see the reply
      twilio-trigger send inbound-call ringing              # see the call's TwiML
      twilio-trigger send call completed --event-streams
      twilio-trigger send recording completed --shared-key webhooks_sharedkey_1=SECRET
    """
    if shared_key is not None:
        key_id, equals, secret = shared_key.partition("=")
        if not equals or not key_id.strip() or not secret:
            raise click.BadParameter("expected ID=SECRET", param_hint="--shared-key")
        secret_or_token, algorithm = secret, HMAC_SHA256
        headers = {SETTINGS_HEADER: signature_settings(key_id.strip(), HMAC_SHA256)}
    else:
        secret_or_token, algorithm, headers = _tokens(auth_tokens)[0], HMAC_SHA1, {}
    factory, sid_name = _KINDS[kind]
    overrides: dict[str, object] = dict(_parameters(settings, None))
    overrides.update(dict.fromkeys(unset))
    params = factory(status, sid=sid, **overrides)
    headers["User-Agent"] = f"twilio-trigger/{__version__}"
    if event_streams:
        if kind not in ("sms", "call"):
            raise click.BadParameter(
                "Event Streams carries message and call events only", param_hint="KIND"
            )
        events = [cloudevent_for(params)]
        body = json.dumps(events).encode("utf-8")
        signed = json_url(sign_url or url, body)
        target = json_url(url, body)
        headers["Content-Type"] = "application/json"
        headers["X-Twilio-Signature"] = compute_json_signature(signed, secret_or_token, algorithm)
        answer = _post(target, body, headers, timeout)
    else:
        pairs = list(params.items())
        headers["Content-Type"] = _FORM
        headers["X-Twilio-Signature"] = compute_signature(
            sign_url or url, pairs, secret_or_token, algorithm
        )
        answer = _post(url, urlencode(pairs).encode("ascii"), headers, timeout)
    click.echo(f"POST {url}  {kind} {status}  {params.get(sid_name, '')}")
    click.echo(
        f"{answer.status} {answer.reason}  {answer.content_type}  {answer.milliseconds:.1f} ms"
    )
    if answer.body:
        click.echo(answer.text.rstrip("\n"))
    if not 200 <= answer.status < 300:
        sys.exit(1)


# -- sign and verify -------------------------------------------------------------
@cli.command(context_settings=_CONTEXT)
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
    token = _tokens(auth_tokens)[0]
    click.echo(compute_signature(url, _parameters(params, body), token))


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


@cli.command(context_settings=_CONTEXT)
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
    tokens = _tokens(auth_tokens)
    pairs = _parameters(params, body)
    verifier = SignatureVerifier(tokens)
    encoded = signature.strip().encode("utf-8")
    match = verifier.matching(url, pairs, encoded)
    if match is not None:
        index, form = match
        click.echo(
            f"valid: signed with token #{index + 1} ({_mask(tokens[index])}) "
            f"over {form} ({len(pairs)} parameters)"
        )
        return
    forms = url_variants(url)
    click.echo(
        f"invalid: no token of {len(tokens)} signed these {len(pairs)} parameters "
        f"for any form of the URL tried: {', '.join(forms)}"
    )
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


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: click's commands, with every error on one line.

    Exit status: 0 success, 1 failure (an answer that is not 2xx, an invalid
    signature, a listener that cannot start), 2 a usage error.
    """
    try:
        result = cli.main(args=argv, prog_name="twilio-trigger", standalone_mode=False)
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else "twilio-trigger"
        message = " ".join(error.format_message().split())  # click's lists span lines
        click.echo(f"Error: {message} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"Error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


# -- inbox ---------------------------------------------------------------------
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(text: str) -> float:
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a duration such as 45s, 30m, 12h or 7d", param_hint="--older-than"
        ) from None
    if value < 0:
        raise click.BadParameter("a duration is not negative", param_hint="--older-than")
    return value


def _open_inbox(url: str | None) -> Inbox:
    if not url:
        raise click.UsageError("no inbox: pass --inbox sqlite:///path/events.db or set "
                               "TWILIO_TRIGGER_INBOX")  # fmt: skip
    prefix = os.environ.get(ENVIRONMENT["redis_prefix"]) or "twilio-trigger:"
    try:
        return open_inbox(url, prefix=prefix)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--inbox") from None


def _on_inbox(url: str | None, work: Callable[[Inbox], Awaitable[_T]]) -> _T:
    inbox = _open_inbox(url)
    if isinstance(inbox, SQLiteInbox) and not inbox.path.exists():
        raise click.ClickException(f"no inbox at {inbox.path}")

    async def session() -> _T:
        try:
            return await work(inbox)
        finally:
            await inbox.close()

    try:
        return asyncio.run(session())
    except (sqlite3.Error, OSError) as error:
        raise click.ClickException(f"cannot read the inbox {inbox.location}: {error}") from None
    except ImportError as error:
        raise click.ClickException(str(error)) from None
    except Exception as error:
        if type(error).__module__.startswith("redis."):
            raise click.ClickException(f"cannot read the inbox {inbox.location}: {error}") from None
        raise


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _first_line(error: str | None) -> str:
    if not error:
        return ""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:60] if lines else ""


_inbox_option = click.option(
    "--inbox", "url", envvar="TWILIO_TRIGGER_INBOX", metavar="URL",
    help="The inbox, e.g. sqlite:///events.db or redis://127.0.0.1:6379/0 (key prefix from "
    "$TWILIO_TRIGGER_REDIS_PREFIX).  [default: $TWILIO_TRIGGER_INBOX]",
)  # fmt: skip


@cli.group(context_settings=_CONTEXT)
def inbox() -> None:
    """Look into the durable inbox: counts, entries, dead letters; replay and purge.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db stats
      twilio-trigger inbox --inbox sqlite:///events.db list --dead
      twilio-trigger inbox --inbox sqlite:///events.db replay --dead
    """


@inbox.command(context_settings=_CONTEXT)
@_inbox_option
def stats(url: str | None) -> None:
    """How many events are pending, running, done and dead.

    \b
    Example:
      TWILIO_TRIGGER_INBOX=sqlite:///events.db twilio-trigger inbox stats
    """
    counts = _on_inbox(url, lambda box: box.stats())
    click.echo(f"inbox {_open_inbox(url).location}")
    for state, number in counts.items():
        click.echo(f"  {state.value:<8} {number:>8}")


@inbox.command(name="list", context_settings=_CONTEXT)
@_inbox_option
@click.option("--dead", is_flag=True, help="Only dead letters.")
@click.option("--state", type=click.Choice([s.value for s in State]), help="Only this state.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def list_entries(url: str | None, dead: bool, state: str | None, limit: int) -> None:
    """The most recent events, newest first.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db list --dead --limit 20
    """
    chosen = State.DEAD if dead else (State(state) if state else None)
    entries = _on_inbox(url, lambda box: box.entries(chosen, limit))
    if not entries:
        click.echo("no events" + (f" in state {chosen.value}" if chosen else ""))
        return
    click.echo(
        f"{'ID':>6}  {'RECEIVED':<19}  {'KIND':<4}  {'STATUS':<11}  {'SID':<34}  "
        f"{'STATE':<7}  {'TRIES':>5}  LAST ERROR"
    )
    for e in entries:
        click.echo(
            f"{e.id:>6}  {_when(e.received_at):<19}  {e.kind:<4}  {e.status or '-':<11}  "
            f"{e.sid or '-':<34}  {e.state.value:<7}  {e.attempts:>5}  {_first_line(e.last_error)}"
        )


@inbox.command(context_settings=_CONTEXT)
@_inbox_option
@click.argument("entry_id", type=int, metavar="ID")
def show(url: str | None, entry_id: int) -> None:
    """One event: its state, attempts, every parameter and its last error.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db show 42
    """
    entry = _on_inbox(url, lambda box: box.get(entry_id))
    if entry is None:
        raise click.ClickException(f"no event {entry_id} in the inbox")
    click.echo(f"event {entry.id}: {entry.kind} {entry.sid} ({entry.status})")
    click.echo(f"  state          {entry.state.value}")
    click.echo(f"  attempts       {entry.attempts}")
    click.echo(f"  received       {_when(entry.received_at)}")
    if entry.state is State.PENDING:
        click.echo(f"  next attempt   {_when(entry.next_attempt_at)}")
    click.echo(f"  finished       {_when(entry.finished_at)}")
    click.echo(f"  delivery key   {entry.key}")
    click.echo("  parameters")
    width = max((len(name) for name, _ in entry.params), default=0)
    for name, value in entry.params:
        click.echo(f"    {name:<{width}}  {value}")
    if entry.last_error:
        click.echo("  last error")
        for line in entry.last_error.splitlines():
            click.echo(f"    {line}")


@inbox.command(context_settings=_CONTEXT)
@_inbox_option
@click.option("--dead", is_flag=True, help="Every dead letter.")
@click.argument("entry_ids", type=int, nargs=-1, metavar="[ID]...")
def replay(url: str | None, dead: bool, entry_ids: tuple[int, ...]) -> None:
    """Make events pending again, with fresh attempts, for the listener to dispatch.

    A running listener takes them within a second; otherwise the next one started.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db replay 42 43
      twilio-trigger inbox --inbox sqlite:///events.db replay --dead
    """
    if dead == bool(entry_ids):
        raise click.UsageError("give event IDs or --dead (not both)")
    count = _on_inbox(url, lambda box: box.replay(None if dead else list(entry_ids)))
    if entry_ids and count < len(entry_ids):
        click.echo(
            f"{len(entry_ids) - count} of the events given are missing or running now",
            err=True,
        )
    click.echo(f"{count} event{'' if count == 1 else 's'} pending again")
    if entry_ids and count == 0:
        sys.exit(1)


@inbox.command(context_settings=_CONTEXT)
@_inbox_option
@click.option("--dead", "state", flag_value=State.DEAD.value, help="Purge dead letters.")
@click.option("--done", "state", flag_value=State.DONE.value, help="Purge handled events.")
@click.option("--older-than", "older_than", required=True, metavar="AGE",
              help="Only those finished longer ago than AGE: 45s, 30m, 12h, 7d.")  # fmt: skip
def purge(url: str | None, state: str | None, older_than: str) -> None:
    """Delete dead letters (or handled events) that finished long enough ago.

    \b
    Example:
      twilio-trigger inbox --inbox sqlite:///events.db purge --dead --older-than 7d
    """
    if state is None:
        raise click.UsageError("say what to purge: --dead or --done")
    age = _duration(older_than)
    count = _on_inbox(url, lambda box: box.purge(State(state), age))
    click.echo(f"{count} {state} event{'' if count == 1 else 's'} purged")
