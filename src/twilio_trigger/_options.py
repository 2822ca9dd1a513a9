"""The listener's options, each declared once: name, type, default, variable, parser, help.

Everything else is derived from this table: the defaults of ``Listener``'s
parameters and of ``Settings``' fields, the environment variables the settings
are read from (``_config``), the configuration tables of docs/configuration.md
(``scripts/options-table``) and, through :func:`click_options`, the command
line's flags.  It depends on nothing above the standard library but the
package's errors and log helpers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from ._core.signature import normalize_public_url
from ._exceptions import ConfigurationError
from ._limits import Limit, limits_text, parse_limits
from ._logging import LOG_FORMATS, printable, shown_url

__all__ = [
    "OPTIONS",
    "SECTIONS",
    "Option",
    "Options",
    "click_options",
    "markdown_table",
    "sqlite_inbox_path",
]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

Parser = Callable[[object, str], _T]
Section = Literal["listener", "edge", "reliability", "operations"]

#: The tables of docs/configuration.md, in order: each lists the options of its section.
SECTIONS: tuple[Section, ...] = ("listener", "edge", "reliability", "operations")


# -- parsers: (value, where it came from) -> the value, or ConfigurationError ----------
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LEVELS = ("debug", "info", "warning", "error", "critical")


def _integer(low: int, high: int) -> Parser[int]:
    def parse(value: object, source: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigurationError(f"{source} must be a whole number, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(f"{source} must be a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigurationError(f"{source} must be between {low} and {high}, got {value!r}")
        return number

    return parse


def _host(value: object, source: str) -> str:
    text = str(value).strip()
    if not text:
        raise ConfigurationError(f"{source} must not be empty")
    return text


def _path(value: object, source: str) -> str:
    text = str(value).strip()
    if not text.startswith("/") or "?" in text or "#" in text:
        raise ConfigurationError(f"{source} must be a path such as /twilio, got {text!r}")
    return text


def _tokens(value: object, source: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ConfigurationError(f"{source} must be a string or a list of strings")
    items = list(items)
    if not all(isinstance(item, str) for item in items):
        raise ConfigurationError(f"{source} must be a string or a list of strings")
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def _shared_keys(value: object, source: str) -> tuple[tuple[str, str], ...]:
    """``{id: secret}``, ``[secret, ...]`` or ``"id=secret,id2=secret2"`` as (id, secret)
    pairs; the id is empty for bare secrets, which are all tried.  In a string the
    first ``=`` of an entry ends its id (secrets may end in ``=``); an entry
    without ``=`` is a bare secret."""
    items: list[tuple[str, str]] = []
    if isinstance(value, str):
        for text in value.split(","):
            key, separator, secret = text.strip().partition("=")
            named = separator and key and secret.strip("=")  # not a bare "abc==" secret
            items.append((key.strip(), secret) if named else ("", text))
    elif isinstance(value, Mapping):
        items = [(str(key).strip(), secret) for key, secret in value.items()]
    elif isinstance(value, Iterable):
        items = [("", secret) for secret in value]
    if not all(isinstance(secret, str) for _, secret in items) or not (
        items or isinstance(value, Iterable)
    ):
        raise ConfigurationError(
            f"{source} must be a mapping of key id to secret, a list of secrets, or 'id=secret,...'"
        )
    pairs = tuple((key, secret.strip()) for key, secret in items if secret.strip())
    if len({bool(key) for key, _ in pairs}) > 1:
        raise ConfigurationError(f"{source}: give every shared key its id (id=secret), or none")
    return pairs


def _basic_auth(value: object, source: str) -> tuple[tuple[str, str], ...]:
    """``("user", "secret")``, a list of such pairs, or ``"user:secret,user2:secret2"``
    as (user, password) pairs: several for rotation.  In a string the first ``:``
    of an entry ends its user name, as in ``https://user:secret@host/``."""
    if isinstance(value, str):
        entries = [text.strip() for text in value.split(",") if text.strip()]
        pairs = []
        for text in entries:
            user, separator, password = text.partition(":")
            if not separator:
                raise ConfigurationError(f"{source}: write each pair as user:password")
            pairs.append((user, password))
    elif (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(item, str) for item in value)
    ):
        pairs = [(value[0], value[1])]
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = list(value)  # once: it may be an iterator
        pairs = [tuple(item) for item in items if isinstance(item, (tuple, list))]
        if len(pairs) != len(items) or not all(
            len(pair) == 2 and all(isinstance(part, str) for part in pair) for pair in pairs
        ):
            raise ConfigurationError(
                f"{source} must be a (user, password) pair, a list of them, or 'user:password,...'"
            )
    else:
        raise ConfigurationError(
            f"{source} must be a (user, password) pair, a list of them, or 'user:password,...'"
        )
    for user, password in pairs:
        if not user or not password:
            raise ConfigurationError(f"{source}: a user name and a password, both non-empty")
        if ":" in user:
            raise ConfigurationError(f"{source}: a user name cannot hold ':'")
        if not (user + password).isprintable():
            raise ConfigurationError(f"{source}: user names and passwords are printable text")
    return tuple(dict.fromkeys((user, password) for user, password in pairs))


def _public_url(value: object, source: str) -> str:
    """The URL checked and reduced to what Twilio signs (see ``normalize_public_url``)."""
    try:
        return normalize_public_url(str(value))
    except ValueError as error:
        raise ConfigurationError(f"{source}: {error}") from None


def sqlite_inbox_path(url: str) -> tuple[str, bool] | None:
    """The file a ``sqlite:///`` inbox URL names, and whether its missing folders
    are to be created (``?create_folders=1``); ``None`` when *url* is not of that
    form.  :class:`ValueError` for a query that says anything else."""
    scheme, separator, rest = url.partition("://")
    path, question, query = rest.partition("?")
    if scheme != "sqlite" or not separator or not path.startswith("/") or len(path) < 2:
        return None
    create = False
    for pair in query.split("&") if question else ():
        name, _, text = pair.partition("=")
        if name != "create_folders" or text.lower() not in _TRUE | _FALSE:
            raise ValueError(
                f"a sqlite:/// inbox URL takes only ?create_folders=1 (or 0), "
                f"got ?{printable(query[:80])}"
            )
        create = text.lower() in _TRUE
    return path[1:], create


def _inbox(value: object, source: str) -> str:
    """The form of an inbox URL (the inbox, opened later, checks the rest)."""
    text = str(value).strip()
    scheme, separator, rest = text.partition("://")
    try:
        sqlite = sqlite_inbox_path(text) is not None
    except ValueError as error:
        raise ConfigurationError(f"{source}: {error}") from None
    redis = scheme in ("redis", "rediss") and bool(rest)
    postgres = scheme in ("postgresql", "postgres")
    if not separator or not (sqlite or redis or postgres):
        raise ConfigurationError(
            f"{source} must be a URL such as sqlite:///events.db (relative), "
            f"sqlite:////var/lib/app/events.db (absolute), redis://127.0.0.1:6379/0 or "
            f"postgresql://user@127.0.0.1:5432/db, got {shown_url(text)!r}"
        )
    return text


def _store(value: object, source: str) -> str:
    text = str(value).strip()
    shared = ("redis://", "rediss://", "unix://", "postgresql://", "postgres://")
    if text != "memory" and not text.startswith(shared):
        raise ConfigurationError(
            f"{source} must be memory, a Redis URL such as redis://127.0.0.1:6379/0 or a "
            f"PostgreSQL URL such as postgresql://user@127.0.0.1:5432/db, "
            f"got {shown_url(text)!r}"
        )
    return text


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def valid_schema(name: str) -> bool:
    """Whether *name* is a schema name this package accepts: lower-case letters,
    digits and underscores, not starting with a digit, at most 63 characters."""
    return _SCHEMA_NAME.fullmatch(name) is not None


def _schema(value: object, source: str) -> str:
    text = str(value).strip()
    if not valid_schema(text):
        raise ConfigurationError(
            f"{source} must be a schema name of lower-case letters, digits and underscores "
            f"(not starting with a digit, at most 63), got {text[:80]!r}"
        )
    return text


def _file_mode(value: object, source: str) -> int:
    """Permission bits as an int (``0o640``) or octal text (``"640"``, ``"0o640"``)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigurationError(f"{source} must be octal permission bits such as 600")
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        if not text or any(c not in "01234567" for c in text):
            raise ConfigurationError(
                f"{source} must be octal permission bits such as 600, got {value!r}"
            )
        value = int(text, 8)
    if not 0 <= value <= 0o777:
        raise ConfigurationError(f"{source} must be between 000 and 777 (octal), got {value:o}")
    if not value & 0o600 == 0o600:
        raise ConfigurationError(
            f"{source} must let the owner read and write (6 in the first digit), got {value:03o}"
        )
    return value


def _durability(value: object, source: str) -> str:
    text = str(value).strip().lower()
    if text in ("fsync", "memory"):
        return text
    kind, _, count = text.partition(":")
    if kind == "replicas" and count.isdigit() and 1 <= int(count) <= 100:
        return f"replicas:{int(count)}"
    raise ConfigurationError(
        f"{source} must be fsync (each event on the Redis server's disk), replicas:N "
        f"(each event confirmed by N replicas) or memory (no guarantee), got {value!r}"
    )


def _prefix(value: object, source: str) -> str:
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise ConfigurationError(f"{source} must be a non-empty key prefix without spaces")
    return text


def _seconds(value: object, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(f"{source} must be a number of seconds, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{source} must be a number of seconds, got {value!r}") from None
    if not 0 <= number < float("inf"):
        raise ConfigurationError(f"{source} must be a positive number of seconds, got {value!r}")
    return number


def _positive_seconds(value: object, source: str) -> float:
    number = _seconds(value, source)
    if number <= 0:
        raise ConfigurationError(f"{source} must be more than 0 seconds, got {value!r}")
    return number


def _level(value: object, source: str) -> str:
    text = str(value).strip().lower()
    if text not in _LEVELS:
        raise ConfigurationError(
            f"{source} must be debug, info, warning, error or critical, got {value!r}"
        )
    return text


def _log_format(value: object, source: str) -> str:
    text = str(value).strip().lower()
    if text not in LOG_FORMATS:
        raise ConfigurationError(f"{source} must be text or json, got {value!r}")
    return text


def _secret(value: object, source: str) -> str:
    text = str(value).strip()
    if len(text) < 16:
        raise ConfigurationError(f"{source} must be at least 16 characters long")
    return text


def _boolean(value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ConfigurationError(f"{source} must be true or false, got {value!r}")
    return text in _TRUE


def _optional(parse: Parser[_T]) -> Parser[_T | None]:
    return parse


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


_PORT = _integer(0, 65535)
_COUNT = _integer(1, 2**31)


class Options:
    """Every option of the listener, in the order of the documentation's tables."""

    # fmt: off

    # -- the listener
    port = Option(int, 8090, "TWILIO_TRIGGER_PORT", _PORT,
        "port to listen on; `0` picks a free one (`listener.port` tells which)", "listener")
    host = Option(str, "0.0.0.0", "TWILIO_TRIGGER_HOST", _host,  # noqa: S104 - Twilio must reach it; signatures guard it
        "interface to listen on", "listener")
    path = Option(str, "/", "TWILIO_TRIGGER_PATH", _path,
        "the webhook's path; other paths answer 404", "listener")
    auth_tokens: Option[tuple[str, ...]] = Option(tuple, (), "TWILIO_AUTH_TOKEN", _tokens,
        "token(s) the signatures are checked with; several (comma-separated in the "
        "environment) for rotation and subaccounts", "listener")
    shared_keys: Option[tuple[tuple[str, str], ...]] = Option(tuple, (),
        "TWILIO_TRIGGER_SHARED_KEYS", _shared_keys,
        "Webhook Rules' shared keys, `{id: secret}` (see \"Signatures\")", "listener")
    basic_auth: Option[tuple[tuple[str, str], ...]] = Option(tuple, (),
        "TWILIO_TRIGGER_BASIC_AUTH", _basic_auth,
        "HTTP Basic credentials Twilio must send, `(user, password)` or several for rotation "
        "(`user:password,...` in the environment): put them in the webhook's URL as "
        "`https://user:password@host/...`", "listener")
    public_url: Option[str | None] = Option(str, None, "TWILIO_TRIGGER_PUBLIC_URL",
        _optional(_public_url),
        "the URL Twilio calls, when it differs from what the listener sees (TLS proxy, "
        "tunnel, mount)", "listener")
    verify_signatures = Option(bool, True, "TWILIO_TRIGGER_VERIFY_SIGNATURES", _boolean,
        "`false` turns verification off: local experiments only", "listener")
    max_body_bytes = Option(int, 256 * 1024, "TWILIO_TRIGGER_MAX_BODY_BYTES", _COUNT,
        "larger bodies are refused with 413 before they are read", "listener")
    max_params = Option(int, 1000, "TWILIO_TRIGGER_MAX_PARAMS", _COUNT,
        "more parameters are refused with 413", "listener")
    # Twilio gives up on a request after 15 s anyway.
    shutdown_timeout = Option(float, 30.0, "TWILIO_TRIGGER_SHUTDOWN_TIMEOUT", _seconds,
        "seconds a graceful stop waits for running requests and callbacks before cancelling "
        "them (a warning says how many); then the inbox and stores get 10 s to close, so that "
        "a database that stops answering cannot hold the stop",
        "listener")
    file_mode = Option(int, 0o600, "TWILIO_TRIGGER_FILE_MODE", _file_mode,
        "permissions (octal) of the files the listener creates (the SQLite inbox and its "
        "journal); folders it creates get `700` (an execute bit wherever a read bit is set)",
        "listener")

    # -- the edge: what any client may cost the listener before it has proven anything
    max_head_bytes = Option(int, 32 * 1024, "TWILIO_TRIGGER_MAX_HEAD_BYTES",
        _integer(1024, 2**24),
        "request line and headers; longer: `431` and the connection closed (Twilio's heads "
        "are under 2 KiB)", "edge")
    max_headers = Option(int, 100, "TWILIO_TRIGGER_MAX_HEADERS", _integer(8, 10_000),
        "more headers: `431` and the connection closed", "edge")
    head_timeout = Option(float, 10.0, "TWILIO_TRIGGER_HEAD_TIMEOUT", _positive_seconds,
        "seconds from a request's first byte (or from connecting) to the end of its head; "
        "then `408` and closed (a connection that sent nothing is closed without an answer)",
        "edge")
    body_timeout = Option(float, 30.0, "TWILIO_TRIGGER_BODY_TIMEOUT", _positive_seconds,
        "seconds from the end of the head to the end of the body; then `408` and closed",
        "edge")
    keepalive_timeout = Option(float, 5.0, "TWILIO_TRIGGER_KEEPALIVE_TIMEOUT",
        _positive_seconds,
        "seconds an idle connection is kept open between requests", "edge")
    max_connections = Option(int, 1000, "TWILIO_TRIGGER_MAX_CONNECTIONS",
        _integer(1, 1_000_000),
        "connections open at once (per process); a new one beyond it gets `503` and is "
        "closed at once, those open keep being served", "edge")

    # -- reliability: duplicates, order, time limits and the durable inbox
    deduplicate = Option(bool, True, "TWILIO_TRIGGER_DEDUPLICATE", _boolean,
        "acknowledge repeats of a handled delivery without dispatch", "reliability")
    dedup_ttl = Option(float, 86400.0, "TWILIO_TRIGGER_DEDUP_TTL", _positive_seconds,
        "seconds a handled delivery (and a SID's status) is remembered", "reliability")
    dedup_max_entries = Option(int, 100_000, "TWILIO_TRIGGER_DEDUP_MAX_ENTRIES", _COUNT,
        "at most this many deliveries and SIDs in memory; the oldest go first",
        "reliability")
    skip_stale = Option(bool, False, "TWILIO_TRIGGER_SKIP_STALE", _boolean,
        "acknowledge stale events without dispatching them", "reliability")
    # Below Twilio's 15 s, leaving room for the network.
    callback_timeout = Option(float, 10.0, "TWILIO_TRIGGER_CALLBACK_TIMEOUT",
        _positive_seconds,
        "seconds a callback may run before the answer is 503", "reliability")
    inbox: Option[str | None] = Option(str, None, "TWILIO_TRIGGER_INBOX", _optional(_inbox),
        "`sqlite:///relative.db`, `sqlite:////absolute/path.db` (one process; its folder "
        "must exist, or end the URL with `?create_folders=1`), `redis://host:6379/0` or "
        "`postgresql://user@host:5432/db` (shared): store, then dispatch", "reliability")
    concurrency = Option(int, 4, "TWILIO_TRIGGER_CONCURRENCY", _integer(1, 1024),
        "callbacks the inbox's workers run at once (a SQLite inbox's claim up to four "
        "times as many entries ahead); formerly `workers` "
        "(`TWILIO_TRIGGER_WORKERS`), deprecated", "reliability",
        renamed_from=("workers", "TWILIO_TRIGGER_WORKERS"))
    max_attempts = Option(int, 5, "TWILIO_TRIGGER_MAX_ATTEMPTS", _integer(1, 1000),
        "attempts before an event becomes a dead letter", "reliability")
    retry_backoff = Option(float, 1.0, "TWILIO_TRIGGER_RETRY_BACKOFF", _positive_seconds,
        "seconds before the second attempt; doubles each time, with jitter", "reliability")
    retry_backoff_max = Option(float, 300.0, "TWILIO_TRIGGER_RETRY_BACKOFF_MAX",
        _positive_seconds,
        "the longest wait between attempts", "reliability")
    limits: Option[tuple[tuple[str, Limit], ...]] = Option(tuple, (),
        "TWILIO_TRIGGER_LIMITS", parse_limits,
        "limits on each callback's dispatch from the inbox, shared by its processes, e.g. "
        "`on_delivered: rate=5, burst=10; on_failed: concurrency=2, breaker=5` (see "
        "`twilio-trigger inbox limit`, which keeps changes in the inbox)", "reliability")
    breaker_failures = Option(int, 0, "TWILIO_TRIGGER_BREAKER_FAILURES", _integer(0, 100_000),
        "failures in a row that open a callback's breaker: its events wait in the inbox "
        "`breaker_cooldown` seconds, then one is tried (`0`: no breaker)", "reliability")
    breaker_cooldown = Option(float, 30.0, "TWILIO_TRIGGER_BREAKER_COOLDOWN",
        _positive_seconds,
        "seconds an open breaker holds its callback's events before one is tried",
        "reliability")
    store = Option(str, "memory", "TWILIO_TRIGGER_STORE", _store,
        "where deliveries and statuses are remembered: `memory`, or `redis://host:6379/0` "
        "or `postgresql://user@host:5432/db` to share them between listeners", "reliability")
    redis_prefix = Option(str, "twilio-trigger:", "TWILIO_TRIGGER_REDIS_PREFIX", _prefix,
        "the prefix of every Redis key the listener writes", "reliability")
    claim_idle = Option(float, 60.0, "TWILIO_TRIGGER_CLAIM_IDLE", _positive_seconds,
        "with a Redis or PostgreSQL inbox: seconds after which a silent worker's events "
        "are taken over", "reliability")
    redis_durability = Option(str, "fsync", "TWILIO_TRIGGER_REDIS_DURABILITY", _durability,
        "with a Redis inbox, what a 200 means: `fsync` (on the Redis server's disk), "
        "`replicas:N` (confirmed by N replicas) or `memory` (in Redis's memory only)",
        "reliability")
    redis_wait_timeout = Option(float, 2.0, "TWILIO_TRIGGER_REDIS_WAIT_TIMEOUT",
        _positive_seconds,
        "with a Redis inbox: seconds Redis may take to confirm an event (`WAITAOF`, `WAIT`) "
        "before the answer is 503", "reliability")
    postgres_schema = Option(str, "twilio_trigger", "TWILIO_TRIGGER_POSTGRES_SCHEMA", _schema,
        "with a PostgreSQL inbox or store: the schema its tables live in", "reliability")
    postgres_migrate = Option(bool, True, "TWILIO_TRIGGER_POSTGRES_MIGRATE", _boolean,
        "with a PostgreSQL inbox or store: create and upgrade its tables at start (off: "
        "only check them; `twilio-trigger inbox migrate` applies upgrades)", "reliability")

    # -- operations: health, metrics, logs and the inspector
    health = Option(bool, True, "TWILIO_TRIGGER_HEALTH", _boolean,
        "serve `GET /healthz` and `GET /readyz` (see \"Health\")", "operations")
    healthz_path = Option(str, "/healthz", "TWILIO_TRIGGER_HEALTHZ_PATH", _path,
        "the path of the liveness check", "operations")
    readyz_path = Option(str, "/readyz", "TWILIO_TRIGGER_READYZ_PATH", _path,
        "the path of the readiness check", "operations")
    metrics = Option(bool, False, "TWILIO_TRIGGER_METRICS", _boolean,
        "Prometheus metrics (the `metrics` extra; see \"Metrics\")", "operations")
    metrics_path = Option(str, "/metrics", "TWILIO_TRIGGER_METRICS_PATH", _path,
        "the path of the metrics, served beside the webhook", "operations")
    metrics_port: Option[int | None] = Option(int, None, "TWILIO_TRIGGER_METRICS_PORT",
        _optional(_PORT),
        "serve the metrics on a port of their own instead (implies `metrics`)", "operations")
    metrics_host: Option[str | None] = Option(str, None, "TWILIO_TRIGGER_METRICS_HOST",
        _optional(_host),
        "the interface of the metrics' own port", "operations", shown="`host`'s")
    event_log_level = Option(str, "info", "TWILIO_TRIGGER_EVENT_LOG_LEVEL", _level,
        "the level of the line logged for each event", "operations")
    log_format = Option(str, "text", "TWILIO_TRIGGER_LOG_FORMAT", _log_format,
        "`text` or `json` (one object a line), for `run()` and the command line",
        "operations")
    log_level = Option(str, "info", "TWILIO_TRIGGER_LOG_LEVEL", _level,
        "the least level logged, for `run()` and the command line", "operations")
    inspector = Option(bool, False, "TWILIO_TRIGGER_INSPECTOR", _boolean,
        "serve the event inspector, a page over the inbox (see \"The event inspector\")",
        "operations")
    inspector_host = Option(str, "127.0.0.1", "TWILIO_TRIGGER_INSPECTOR_HOST", _host,
        "the inspector's interface; beyond loopback it needs `inspector_token`",
        "operations")
    inspector_port = Option(int, 8091, "TWILIO_TRIGGER_INSPECTOR_PORT", _PORT,
        "the inspector's port", "operations")
    inspector_token: Option[str | None] = Option(str, None, "TWILIO_TRIGGER_INSPECTOR_TOKEN",
        _optional(_secret),
        "the inspector's token (16 characters or more), given once in its URL",
        "operations")
    refused_kept = Option(int, 100, "TWILIO_TRIGGER_REFUSED_KEPT", _integer(0, 10_000),
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


def click_options(*names: str) -> Callable[[_F], _F]:
    """A decorator adding the ``--flag`` of each named option to a click command.

    Each flag defaults to ``None`` (not given: the environment, then the
    default, decide), shows the table's default in its help, and checks its
    value with the option's parser; the command receives the parsed value under
    the option's name, and ``OPTIONS[name].text(value)`` writes it back as the
    option's variable takes it.  Boolean options are flags without a value.
    """
    decorators = [_click_option(OPTIONS[name]) for name in names]

    def decorate(command: _F) -> _F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def _click_option(option: Option[Any]) -> Callable[[_F], _F]:
    import click

    help_text = f"{_plain(option.help)}  [default: {_plain(option.shown_default)}]"
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
