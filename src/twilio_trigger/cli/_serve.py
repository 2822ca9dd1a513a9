"""`run` (one process, or several under uvicorn's supervisor) and `worker`."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from .._config import TARGET_VARIABLE
from .._exceptions import ConfigurationError, TwilioTriggerError
from .._held_logs import HeldLogs, logs_failed, logs_started
from .._listener import Listener
from .._logging import set_up_logging, shown_url
from .._options import OPTIONS, click_options
from ._common import CONTEXT, cli_wording, warn
from ._load import load_listener

__all__ = ["run", "worker"]

_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)
_F = TypeVar("_F", bound=Callable[..., Any])


#: The options `run` and `worker` share: logs and metrics.  Every flag of these
#: commands comes from the options table (its type, parser, help and default).
_OPERATIONS = ("log_format", "log_level", "event_log_level", "metrics", "metrics_port")
_CONTROL = ("limits", "breaker_failures", "breaker_cooldown")


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


def _given(flags: Mapping[str, object]) -> dict[str, object]:
    return {option: value for option, value in flags.items() if value is not None}


def _warn(listener: Listener, message: str) -> None:
    """A ``Warning: ...`` line, or with ``--log-format json`` a record of the log,
    whose every line is a JSON object."""
    if listener.settings.log_format == "json":
        logging.getLogger("twilio_trigger").warning("%s", message)
    else:
        warn(message)


def _warn_overridden(target: str, flags: Mapping[str, object], listener: Listener) -> set[str]:
    """Warn of each flag the module's own argument overrides; return their options."""
    overridden = set()
    for option, value in _given(flags).items():
        actual = getattr(listener.settings, option)
        shown = OPTIONS[option].text
        if shown(actual) != shown(value):
            overridden.add(option)
            _warn(
                listener,
                f"{target} sets {option}={shown_url(shown(actual))} itself; "
                f"{OPTIONS[option].flag} {shown_url(shown(value))} has no effect",
            )
    return overridden


def _source(option: str, flags: Mapping[str, object], before: Mapping[str, str]) -> str:
    """Where the listener's value of *option* came from: its flag, its variable, or
    the user's module (TARGET)."""
    variable = OPTIONS[option].env
    if flags.get(option) is not None:
        return OPTIONS[option].flag
    if before.get(variable, "").strip():
        return variable
    return "TARGET"


def _is_sqlite(url: str | None) -> bool:
    return url is not None and url.strip().startswith("sqlite:")


def _fail_in_one_line(work: Callable[[], None], flags: Mapping[str, object]) -> None:
    """Run *work* (serving, dispatching); a start-up that fails is one ``Error:``
    line, without the log lines of the attempt, which only repeat it."""
    with HeldLogs() as held:
        try:
            work()
        except TwilioTriggerError as error:
            held.drop()
            raise click.ClickException(cli_wording(str(error), flags)) from None


@click.command(context_settings=CONTEXT)
@click.argument("target")
@click_options(
    "host", "port", "path", "public_url", "inbox", "concurrency", "store",
    "inspector", "inspector_port", "inspector_host", *_CONTROL, *_OPERATIONS,
)  # fmt: skip
@click.option("--processes", type=click.IntRange(1, 256), default=None,
              help="Listener processes sharing the port (a Redis store or inbox shares "
                   "their state; a SQLite inbox is one process's).  [default: 1]")  # fmt: skip
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
    before = dict(os.environ)
    _apply_flags(flags)
    listener = load_listener(target)
    _set_up_logging(listener, flags)
    overridden = _warn_overridden(target, flags, listener)
    settings = listener.settings
    given = set(_given(flags)) - overridden
    if not settings.inspector:
        for option in sorted(given & {"inspector_port", "inspector_host"}):
            _warn(listener, f"{OPTIONS[option].flag} has no effect without --inspector")
    if "concurrency" in given and settings.inbox is None:
        _warn(
            listener,
            "--concurrency has no effect without an inbox (--inbox URL or "
            "TWILIO_TRIGGER_INBOX): each callback runs in the request that brought its event",
        )
    if settings.inspector and settings.inbox is None:
        raise click.UsageError(
            "the inspector shows the inbox's events: pass --inbox URL or set "
            "TWILIO_TRIGGER_INBOX" + (" (or leave out --inspector)" if inspector else "")
        )
    if processes > 1 and settings.inspector:
        raise click.UsageError(
            "the inspector is served by one process: use it without --processes (with a "
            "Redis inbox, one more `twilio-trigger run --inspector` shows every process's "
            "events)"
        )
    if processes > 1 and _is_sqlite(settings.inbox):
        raise click.BadParameter(
            f"a SQLite inbox is one process's, and {_source('inbox', flags, before)} names "
            f"one: with several processes, use a redis:// or postgresql:// inbox",
            param_hint="--processes",
        )
    _fail_in_one_line(
        listener.run if processes == 1 else lambda: _run_processes(target, listener, processes),
        flags,
    )


def _processes(processes: int | None, old: int | None) -> int:
    # --workers meant processes here, and callbacks at once everywhere else.
    if old is not None:
        if processes is not None:
            raise click.UsageError("give --processes alone: --workers is its deprecated name")
        warn(
            "--workers is deprecated: use --processes (the same value); "
            "callbacks at once are --concurrency"
        )
        return old
    return 1 if processes is None else processes


_TARGET = TARGET_VARIABLE
_MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


def _app_from_environment() -> Any:
    """The ASGI app of the listener named in the environment (each process's factory).

    The process's log is held until its start-up succeeds (the lifespan of
    ``ProcessConfig`` releases it); one that fails tells the supervisor why, which
    the command says in one line, and logs nothing.
    """
    listener = load_listener(os.environ[_TARGET])
    set_up_logging(listener.settings)
    HeldLogs().hold()
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
        from .._metrics_server import MetricsServer

        host = settings.metrics_host or settings.host
        metrics_server = MetricsServer(listener.metrics, host, settings.metrics_port)
    from .._app import url_host
    from .._startup import log_startup

    log_startup(
        settings, f"http://{url_host(settings.host)}:{settings.port}{settings.path}", processes
    )
    # uvicorn's supervisor, with the edge's configuration: pickled to each
    # process, it carries the limits (uvicorn.run would build a plain one).
    from uvicorn.supervisors import Multiprocess

    from .._server import ProcessConfig, bind, startup_failure

    reports = tempfile.mkdtemp(prefix="twilio-trigger-starts-")
    config = ProcessConfig(
        "twilio_trigger.cli._serve:_app_from_environment",
        reports=reports,
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
    watching = threading.Event()
    try:
        sock = bind(settings.host, settings.port)  # a ConfigurationError, not an exit
        logging.getLogger("uvicorn.error").info(
            "Uvicorn running on http://%s:%d (Press CTRL+C to quit)",
            settings.host,
            sock.getsockname()[1],
        )
        watcher = threading.Thread(
            target=_watch_starts, args=(reports, processes, watching), daemon=True
        )
        watcher.start()
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
            watching.set()
            watcher.join()
        failure = startup_failure(reports)
        if failure is not None:
            raise ConfigurationError(failure)
    finally:
        shutil.rmtree(reports, ignore_errors=True)
        if metrics_server is not None:
            metrics_server.close()


def _watch_starts(reports: str, processes: int, done: threading.Event) -> None:
    """Write the supervisor's held log once every process has started; drop it
    when one cannot start (the command says why, in one line)."""
    from .._server import processes_started, startup_failure

    while not done.wait(0.05):
        if startup_failure(reports) is not None:
            logs_failed()
            return
        if processes_started(reports) >= processes:
            logs_started()
            return


@click.command(context_settings=CONTEXT)
@click.argument("target")
@click_options(
    "inbox",
    "concurrency",
    *_CONTROL,
    *_OPERATIONS,
    helps={
        "inbox": "the shared inbox to dispatch from: `redis://host:6379/0` or "
        "`postgresql://user@host/db` (a SQLite inbox is one listener process's own)",
    },
)
def worker(target: str, inbox: str | None, concurrency: int | None, **operations: Any) -> None:
    """Dispatch events from a shared inbox, without serving HTTP.

    TARGET names the listener whose services handle the events, as for `run`.
    Listeners store events in the inbox; any number of workers, on any machine,
    take them from it.  The inbox is a redis:// or postgresql:// one: a SQLite
    inbox is one process's, whose listener dispatches its events itself.
    SIGINT or SIGTERM stop it once running callbacks finish.

    \b
    Example:
      TWILIO_TRIGGER_INBOX=redis://127.0.0.1:6379/0 twilio-trigger worker app:listener
      twilio-trigger worker app:listener --inbox postgresql://app@db:5432/app
    """
    flags = {"inbox": inbox, "concurrency": concurrency, **operations}
    before = dict(os.environ)
    _apply_flags(flags)
    listener = load_listener(target, "worker")
    _set_up_logging(listener, flags)
    overridden = _warn_overridden(target, flags, listener)
    settings = listener.settings
    if flags.get("metrics") and "metrics" not in overridden and settings.metrics_port is None:
        _warn(listener, "--metrics has no effect without --metrics-port: a worker serves no HTTP")
    if settings.inbox is None:
        raise click.UsageError(
            "a worker dispatches from a shared inbox: pass --inbox URL or set "
            "TWILIO_TRIGGER_INBOX (a redis:// or postgresql:// URL)"
        )
    if _is_sqlite(settings.inbox):
        raise click.BadParameter(
            "a SQLite inbox is one process's: the listener that stores its events "
            "dispatches them itself; a worker takes a shared inbox, redis:// or postgresql://",
            param_hint=_source("inbox", flags, before),
        )
    _fail_in_one_line(listener.work, flags)
