"""The listener's options, each declared once: name, type, default, variable, parser, help.

Everything else is derived from this table: the defaults of ``Listener``'s
parameters and of ``Settings``' fields, the environment variables the settings
are read from (``_config``), the configuration tables of docs/configuration.md
(``scripts/options-table``) and, through :func:`click_options`, the command
line's flags.  It depends on nothing above the standard library but the
package's errors and log helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from . import _option_parsers as parse
from ._exceptions import ConfigurationError
from ._limits import Limit, limits_text, parse_limits
from ._option_parsers import Parser

__all__ = [
    "OPTIONS",
    "SECTIONS",
    "Option",
    "Options",
    "click_options",
    "markdown_table",
]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

Section = Literal["listener", "edge", "reliability", "operations"]

#: The tables of docs/configuration.md, in order: each lists the options of its section.
SECTIONS: tuple[Section, ...] = ("listener", "edge", "reliability", "operations")


# -- the table -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class Option(Generic[_T]):
    """One option: its attribute in :class:`Options` is its name."""

    value_type: type
    default: _T
    env: str
    parse: Parser[_T] = field(repr=False)
    help: str
    section: Section
    #: The default as the documentation shows it, when not the value itself.
    shown: str | None = None
    #: The name and the variable it had before a rename; they work, with a warning.
    renamed_from: tuple[str, str] | None = None
    name: str = ""  # set by the table

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", name)

    @property
    def flag(self) -> str:
        """Its command-line flag: ``--max-body-bytes``."""
        return "--" + self.name.replace("_", "-")

    def text(self, value: object) -> str:
        """*value* written as its environment variable takes it (``parse`` reads it back)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if self.name == "file_mode" and isinstance(value, int):
            return f"{value:03o}"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if self.name == "limits" and isinstance(value, tuple):
            return limits_text(value)
        if isinstance(value, tuple):
            # Pairs as their variable writes them: id=secret, user:password.
            joiner = ":" if self.name == "basic_auth" else "="
            return ",".join(joiner.join(v) if isinstance(v, tuple) else str(v) for v in value)
        return str(value)

    @property
    def shown_default(self) -> str:
        """The default as the documentation's tables show it."""
        if self.shown is not None:
            return self.shown
        if self.default is None or self.default == ():
            return "none"
        return f"`{self.text(self.default)}`"


_PORT = parse.integer(0, 65535)
_COUNT = parse.integer(1, 2**31)


class Options:
    """Every option of the listener, in the order of the documentation's tables."""

    # fmt: off

    # -- the listener
    port = Option(int, 8090, "TWILIO_TRIGGER_PORT", _PORT,
        "port to listen on; `0` picks a free one (`listener.port` tells which)", "listener")
    host = Option(str, "0.0.0.0", "TWILIO_TRIGGER_HOST", parse.host,  # noqa: S104 - Twilio must reach it; signatures guard it
        "interface to listen on", "listener")
    path = Option(str, "/", "TWILIO_TRIGGER_PATH", parse.path,
        "the webhook's path; other paths answer 404", "listener")
    auth_tokens: Option[tuple[str, ...]] = Option(tuple, (), "TWILIO_AUTH_TOKEN", parse.tokens,
        "token(s) the signatures are checked with; several (comma-separated in the "
        "environment) for rotation and subaccounts", "listener")
    shared_keys: Option[tuple[tuple[str, str], ...]] = Option(tuple, (),
        "TWILIO_TRIGGER_SHARED_KEYS", parse.shared_keys,
        "Webhook Rules' shared keys, `{id: secret}` (see \"Signatures\")", "listener")
    basic_auth: Option[tuple[tuple[str, str], ...]] = Option(tuple, (),
        "TWILIO_TRIGGER_BASIC_AUTH", parse.basic_auth,
        "HTTP Basic credentials Twilio must send, `(user, password)` or several for rotation "
        "(`user:password,...` in the environment): put them in the webhook's URL as "
        "`https://user:password@host/...`", "listener")
    public_url: Option[str | None] = Option(str, None, "TWILIO_TRIGGER_PUBLIC_URL",
        parse.optional(parse.public_url),
        "the URL Twilio calls, when it differs from what the listener sees (TLS proxy, "
        "tunnel, mount)", "listener")
    verify_signatures = Option(bool, True, "TWILIO_TRIGGER_VERIFY_SIGNATURES", parse.boolean,
        "`false` turns verification off: local experiments only", "listener")
    max_body_bytes = Option(int, 256 * 1024, "TWILIO_TRIGGER_MAX_BODY_BYTES", _COUNT,
        "larger bodies are refused with 413 before they are read", "listener")
    max_params = Option(int, 1000, "TWILIO_TRIGGER_MAX_PARAMS", _COUNT,
        "more parameters are refused with 413", "listener")
    # Twilio gives up on a request after 15 s anyway.
    shutdown_timeout = Option(float, 30.0, "TWILIO_TRIGGER_SHUTDOWN_TIMEOUT", parse.seconds,
        "seconds a graceful stop waits for running requests and callbacks before cancelling "
        "them (a warning says how many); then the inbox and stores get 10 s to close, so that "
        "a database that stops answering cannot hold the stop",
        "listener")
    file_mode = Option(int, 0o600, "TWILIO_TRIGGER_FILE_MODE", parse.file_mode,
        "permissions (octal) of the files the listener creates (the SQLite inbox and its "
        "journal); folders it creates get `700` (an execute bit wherever a read bit is set)",
        "listener")

    # -- the edge: what any client may cost the listener before it has proven anything
    max_head_bytes = Option(int, 32 * 1024, "TWILIO_TRIGGER_MAX_HEAD_BYTES",
        parse.integer(1024, 2**24),
        "request line and headers; longer: `431` and the connection closed (Twilio's heads "
        "are under 2 KiB)", "edge")
    max_headers = Option(int, 100, "TWILIO_TRIGGER_MAX_HEADERS", parse.integer(8, 10_000),
        "more headers: `431` and the connection closed", "edge")
    head_timeout = Option(float, 10.0, "TWILIO_TRIGGER_HEAD_TIMEOUT", parse.positive_seconds,
        "seconds from a request's first byte (or from connecting) to the end of its head; "
        "then `408` and closed (a connection that sent nothing is closed without an answer)",
        "edge")
    body_timeout = Option(float, 30.0, "TWILIO_TRIGGER_BODY_TIMEOUT", parse.positive_seconds,
        "seconds from the end of the head to the end of the body; then `408` and closed",
        "edge")
    keepalive_timeout = Option(float, 5.0, "TWILIO_TRIGGER_KEEPALIVE_TIMEOUT",
        parse.positive_seconds,
        "seconds an idle connection is kept open between requests", "edge")
    max_connections = Option(int, 1000, "TWILIO_TRIGGER_MAX_CONNECTIONS",
        parse.integer(1, 1_000_000),
        "connections open at once (per process); a new one beyond it gets `503` and is "
        "closed at once, those open keep being served", "edge")
    max_pipelined = Option(int, 16, "TWILIO_TRIGGER_MAX_PIPELINED", parse.integer(1, 1024),
        "requests a client may send ahead on one connection (pipelined), waiting behind the "
        "one being answered; one more: those are answered, then the connection closed "
        "(Twilio sends one at a time)", "edge")
    write_timeout = Option(float, 30.0, "TWILIO_TRIGGER_WRITE_TIMEOUT", parse.positive_seconds,
        "seconds a connection's answers may wait for the client to read them; then it is "
        "closed", "edge")

    # -- reliability: duplicates, order, time limits and the durable inbox
    deduplicate = Option(bool, True, "TWILIO_TRIGGER_DEDUPLICATE", parse.boolean,
        "acknowledge repeats of a handled delivery without dispatch", "reliability")
    dedup_ttl = Option(float, 86400.0, "TWILIO_TRIGGER_DEDUP_TTL", parse.positive_seconds,
        "seconds a handled delivery (and a SID's status) is remembered", "reliability")
    dedup_max_entries = Option(int, 100_000, "TWILIO_TRIGGER_DEDUP_MAX_ENTRIES", _COUNT,
        "at most this many deliveries and SIDs in memory; the oldest go first",
        "reliability")
    skip_stale = Option(bool, False, "TWILIO_TRIGGER_SKIP_STALE", parse.boolean,
        "acknowledge stale statuses without dispatching them (a conference's events are "
        "dispatched)", "reliability")
    # Below Twilio's 15 s, leaving room for the network.
    callback_timeout = Option(float, 10.0, "TWILIO_TRIGGER_CALLBACK_TIMEOUT",
        parse.positive_seconds,
        "seconds a callback may run before the answer is 503", "reliability")
    inbox: Option[str | None] = Option(
        str, None, "TWILIO_TRIGGER_INBOX", parse.optional(parse.inbox),
        "`sqlite:///relative.db`, `sqlite:////absolute/path.db` (one process; its folder "
        "must exist, or end the URL with `?create_folders=1`), `redis://host:6379/0` or "
        "`postgresql://user@host:5432/db` (shared): store, then dispatch", "reliability")
    concurrency = Option(int, 4, "TWILIO_TRIGGER_CONCURRENCY", parse.integer(1, 1024),
        "callbacks the inbox's workers run at once (a SQLite inbox's claim up to four "
        "times as many entries ahead); formerly `workers` "
        "(`TWILIO_TRIGGER_WORKERS`), deprecated", "reliability",
        renamed_from=("workers", "TWILIO_TRIGGER_WORKERS"))
    max_attempts = Option(int, 5, "TWILIO_TRIGGER_MAX_ATTEMPTS", parse.integer(1, 1000),
        "attempts before an event becomes a dead letter", "reliability")
    retry_backoff = Option(float, 1.0, "TWILIO_TRIGGER_RETRY_BACKOFF", parse.positive_seconds,
        "seconds before the second attempt; doubles each time, with jitter", "reliability")
    retry_backoff_max = Option(float, 300.0, "TWILIO_TRIGGER_RETRY_BACKOFF_MAX",
        parse.positive_seconds,
        "the longest wait between attempts", "reliability")
    limits: Option[tuple[tuple[str, Limit], ...]] = Option(tuple, (),
        "TWILIO_TRIGGER_LIMITS", parse_limits,
        "limits on each callback's dispatch from the inbox, shared by its processes, e.g. "
        "`on_delivered: rate=5, burst=10; on_failed: concurrency=2, breaker=5` (see "
        "`twilio-trigger inbox limit`, which keeps changes in the inbox)", "reliability")
    breaker_failures = Option(int, 0, "TWILIO_TRIGGER_BREAKER_FAILURES", parse.integer(0, 100_000),
        "failures in a row that open a callback's breaker: its events wait in the inbox "
        "`breaker_cooldown` seconds, then one is tried (`0`: no breaker)", "reliability")
    breaker_cooldown = Option(float, 30.0, "TWILIO_TRIGGER_BREAKER_COOLDOWN",
        parse.positive_seconds,
        "seconds an open breaker holds its callback's events before one is tried",
        "reliability")
    store = Option(str, "memory", "TWILIO_TRIGGER_STORE", parse.store,
        "where deliveries and statuses are remembered: `memory`, or `redis://host:6379/0` "
        "or `postgresql://user@host:5432/db` to share them between listeners", "reliability")
    redis_prefix = Option(str, "twilio-trigger:", "TWILIO_TRIGGER_REDIS_PREFIX", parse.prefix,
        "the prefix of every Redis key the listener writes", "reliability")
    claim_idle = Option(float, 60.0, "TWILIO_TRIGGER_CLAIM_IDLE", parse.positive_seconds,
        "with a Redis or PostgreSQL inbox: seconds after which a silent worker's events "
        "are taken over", "reliability")
    redis_durability = Option(str, "fsync", "TWILIO_TRIGGER_REDIS_DURABILITY", parse.durability,
        "with a Redis inbox, what a 200 means: `fsync` (on the Redis server's disk), "
        "`replicas:N` (confirmed by N replicas) or `memory` (in Redis's memory only)",
        "reliability")
    redis_wait_timeout = Option(float, 2.0, "TWILIO_TRIGGER_REDIS_WAIT_TIMEOUT",
        parse.positive_seconds,
        "with a Redis inbox: seconds Redis may take to confirm an event (`WAITAOF`, `WAIT`) "
        "before the answer is 503", "reliability")
    postgres_schema = Option(str, "twilio_trigger", "TWILIO_TRIGGER_POSTGRES_SCHEMA", parse.schema,
        "with a PostgreSQL inbox or store: the schema its tables live in", "reliability")
    postgres_migrate = Option(bool, True, "TWILIO_TRIGGER_POSTGRES_MIGRATE", parse.boolean,
        "with a PostgreSQL inbox or store: create and upgrade its tables at start (off: "
        "only check them; `twilio-trigger inbox migrate` applies upgrades)", "reliability")

    # -- operations: health, metrics, logs and the inspector
    health = Option(bool, True, "TWILIO_TRIGGER_HEALTH", parse.boolean,
        "serve `GET /healthz` and `GET /readyz` (see \"Health\")", "operations")
    healthz_path = Option(str, "/healthz", "TWILIO_TRIGGER_HEALTHZ_PATH", parse.path,
        "the path of the liveness check", "operations")
    readyz_path = Option(str, "/readyz", "TWILIO_TRIGGER_READYZ_PATH", parse.path,
        "the path of the readiness check", "operations")
    metrics = Option(bool, False, "TWILIO_TRIGGER_METRICS", parse.boolean,
        "Prometheus metrics (the `metrics` extra; see \"Metrics\")", "operations")
    metrics_path = Option(str, "/metrics", "TWILIO_TRIGGER_METRICS_PATH", parse.path,
        "the path of the metrics, served beside the webhook", "operations")
    metrics_port: Option[int | None] = Option(int, None, "TWILIO_TRIGGER_METRICS_PORT",
        parse.optional(_PORT),
        "serve the metrics on a port of their own instead (implies `metrics`)", "operations")
    metrics_host: Option[str | None] = Option(str, None, "TWILIO_TRIGGER_METRICS_HOST",
        parse.optional(parse.host),
        "the interface of the metrics' own port", "operations", shown="`host`'s")
    event_log_level = Option(str, "info", "TWILIO_TRIGGER_EVENT_LOG_LEVEL", parse.level,
        "the level of the line logged for each event", "operations")
    log_format = Option(str, "text", "TWILIO_TRIGGER_LOG_FORMAT", parse.log_format,
        "`text` or `json` (one object a line), for `run()` and the command line",
        "operations")
    log_level = Option(str, "info", "TWILIO_TRIGGER_LOG_LEVEL", parse.level,
        "the least level logged, for `run()` and the command line", "operations")
    inspector = Option(bool, False, "TWILIO_TRIGGER_INSPECTOR", parse.boolean,
        "serve the event inspector, a page over the inbox (see \"The event inspector\")",
        "operations")
    inspector_host = Option(str, "127.0.0.1", "TWILIO_TRIGGER_INSPECTOR_HOST", parse.host,
        "the inspector's interface; beyond loopback it needs `inspector_token`",
        "operations")
    inspector_port = Option(int, 8091, "TWILIO_TRIGGER_INSPECTOR_PORT", _PORT,
        "the inspector's port", "operations")
    inspector_token: Option[str | None] = Option(str, None, "TWILIO_TRIGGER_INSPECTOR_TOKEN",
        parse.optional(parse.secret),
        "the inspector's token (16 characters or more), given once in its URL",
        "operations")
    refused_kept = Option(int, 100, "TWILIO_TRIGGER_REFUSED_KEPT", parse.integer(0, 10_000),
        "refused requests the inspector shows, the latest kept in memory by each process "
        "(`0`: none)", "operations")
    # fmt: on

    def __iter__(self) -> Iterator[Option[Any]]:
        return iter(_ALL)

    def __len__(self) -> int:
        return len(_ALL)

    def __getitem__(self, name: str) -> Option[Any]:
        option = vars(Options).get(name)
        if not isinstance(option, Option):
            raise KeyError(name)
        return option


_ALL: tuple[Option[Any], ...] = tuple(v for v in vars(Options).values() if isinstance(v, Option))

#: The table: ``OPTIONS.port.default``, ``OPTIONS["port"]``, ``for option in OPTIONS``.
OPTIONS = Options()


def markdown_table(section: Section) -> str:
    """The documentation's table of the options of *section*."""
    lines = ["| option | environment | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        if option.section == section:
            lines.append(
                f"| `{option.name}` | `{option.env}` | {option.shown_default} | {option.help} |"
            )
    return "\n".join(lines)


def click_options(*names: str, helps: Mapping[str, str] | None = None) -> Callable[[_F], _F]:
    """A decorator adding the ``--flag`` of each named option to a click command.

    Each flag defaults to ``None`` (not given: the environment, then the
    default, decide), shows the table's default in its help, and checks its
    value with the option's parser; the command receives the parsed value under
    the option's name, and ``OPTIONS[name].text(value)`` writes it back as the
    option's variable takes it.  Boolean options are flags without a value.
    *helps* replaces the help of some, for a command that takes less of them.
    """
    helps = helps or {}
    decorators = [_click_option(OPTIONS[name], helps.get(name)) for name in names]

    def decorate(command: _F) -> _F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def _click_option(option: Option[Any], own_help: str | None = None) -> Callable[[_F], _F]:
    import click

    help_text = f"{_plain(own_help or option.help)}  [default: {_plain(option.shown_default)}]"
    if option.value_type is bool:
        flag: Callable[[_F], _F] = click.option(
            option.flag, option.name, is_flag=True, default=None, help=help_text
        )
        return flag

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
        if value is None:
            return None
        try:
            return option.parse(value, option.flag)
        except ConfigurationError as error:
            raise click.BadParameter(str(error), ctx, param) from None

    valued: Callable[[_F], _F] = click.option(
        option.flag,
        option.name,
        default=None,
        callback=check,
        help=help_text,
        metavar=_metavar(option),
    )
    return valued


def _metavar(option: Option[Any]) -> str:
    if option.name in ("inbox", "store", "public_url"):
        return "URL"
    if option.value_type is int:
        return "N"
    if option.value_type is float:
        return "SECONDS"
    return "TEXT"


def _plain(text: str) -> str:
    return text.replace("`", "")
