"""`run` (one process, or several under uvicorn's supervisor) and `worker`."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from .._exceptions import TwilioTriggerError
from .._listener import Listener
from .._logging import set_up_logging, shown_url
from .._options import OPTIONS, click_options
from ._common import CONTEXT
from ._load import load_listener

__all__ = ["run", "worker"]

_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)
_F = TypeVar("_F", bound=Callable[..., Any])


#: The options `run` and `worker` share: logs and metrics.  Every flag of these
#: commands comes from the options table (its type, parser, help and default).
_OPERATIONS = ("log_format", "log_level", "event_log_level", "metrics", "metrics_port")


def _apply_flags(flags: Mapping[str, object]) -> None:
    """The flags given, written into the environment the listener reads its options from."""
    for option, value in flags.items():
        if value is not None:
            os.environ[OPTIONS[option].env] = OPTIONS[option].text(value)


def _set_up_logging(listener: Listener, flags: Mapping[str, object]) -> None:
    # The process is ours, but a module that set up logging itself keeps its
    # set-up unless a flag asks otherwise.
    asked = any(flags.get(name) is not None for name in ("log_format", "log_level"))
    set_up_logging(listener.settings, replace=asked)


@click.command(context_settings=CONTEXT)
@click.argument("target")
@click_options(
    "host", "port", "path", "public_url", "inbox", "concurrency", "store",
    "inspector", "inspector_port", "inspector_host", *_OPERATIONS,
)  # fmt: skip
@click.option("--processes", type=click.IntRange(1, 256), default=None,
              help="Listener processes sharing the port (a Redis store or inbox shares "
                   "their state).  [default: 1]")  # fmt: skip
@click.option("--workers", "old_processes", type=click.IntRange(1, 256), hidden=True,
              help="Deprecated name of --processes.")  # fmt: skip
def run(
    target: str,
    host: str | None,
    port: int | None,
    path: str | None,
    public_url: str | None,
    inbox: str | None,
    concurrency: int | None,
    store: str | None,
    processes: int | None,
    old_processes: int | None,
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
      twilio-trigger run app:listener --inbox redis://127.0.0.1:6379/0 --processes 4
      twilio-trigger run app:listener --log-format json --metrics
      twilio-trigger run app:listener --inbox sqlite:///events.db --inspector
    """
    processes = _processes(processes, old_processes)
    flags = {
        "host": host,
        "port": port,
        "path": path,
        "public_url": public_url,
        "inbox": inbox,
        "concurrency": concurrency,
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
        shown = OPTIONS[option].text
        if value is not None and shown(actual) != shown(value):
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
            "the inspector is served by one process: use it without --processes (with a "
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


def _processes(processes: int | None, old: int | None) -> int:
    # --workers meant processes here, and callbacks at once everywhere else.
    if old is not None:
        if processes is not None:
            raise click.UsageError("give --processes alone: --workers is its deprecated name")
        click.echo(
            "twilio-trigger: --workers is deprecated: use --processes (the same value); "
            "callbacks at once are --concurrency",
            err=True,
        )
        return old
    return 1 if processes is None else processes


_TARGET = "TWILIO_TRIGGER_TARGET"
_MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


def _app_from_environment() -> Any:
    """The ASGI app of the listener named in the environment (each process's factory)."""
    listener = load_listener(os.environ[_TARGET])
    set_up_logging(listener.settings)
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
        from ..metrics import MetricsServer

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

    from .._edge import EdgeConfig

    config = EdgeConfig(
        "twilio_trigger.cli._serve:_app_from_environment",
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


@click.command(context_settings=CONTEXT)
@click.argument("target")
@click_options("inbox", "concurrency", *_OPERATIONS)
def worker(target: str, inbox: str | None, concurrency: int | None, **operations: Any) -> None:
    """Dispatch events from a shared inbox, without serving HTTP.

    TARGET names the listener whose services handle the events, as for `run`.
    Listeners store events in the inbox; any number of workers, on any machine,
    take them from it.  SIGINT or SIGTERM stop it once running callbacks finish.

    \b
    Example:
      TWILIO_TRIGGER_INBOX=redis://127.0.0.1:6379/0 twilio-trigger worker app:listener
      twilio-trigger worker app:listener --inbox postgresql://app@db:5432/app
    """
    flags = {"inbox": inbox, "concurrency": concurrency, **operations}
    _apply_flags(flags)
    listener = load_listener(target)
    _set_up_logging(listener, flags)
    try:
        listener.work()
    except TwilioTriggerError as error:
        raise click.ClickException(str(error)) from None
