"""Listener settings: explicit argument, then environment, then default.

The command line sits between the two: it writes its flags into the
environment of the process before the user's module builds its listener.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ._exceptions import ConfigurationError
from ._logging import LOG_FORMATS, shown_url
from ._observe import parse_level
from ._webhook import normalize_public_url
from .inbox import open_inbox

__all__ = ["ENVIRONMENT", "Settings"]

DEFAULT_PORT = 8090
DEFAULT_HOST = "0.0.0.0"  # noqa: S104 - Twilio must reach it; signatures guard it
DEFAULT_PATH = "/"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_PARAMS = 1000
DEFAULT_SHUTDOWN_TIMEOUT = 30.0  # Twilio gives up on a request after 15 s anyway
DEFAULT_CALLBACK_TIMEOUT = 10.0  # below Twilio's 15 s, leaving room for the network
DEFAULT_DEDUP_TTL = 86400.0
DEFAULT_DEDUP_MAX_ENTRIES = 100_000
# The edge: what any client may cost the listener before it has proven anything.
DEFAULT_MAX_HEAD_BYTES = 32 * 1024  # request line and headers; Twilio's are under 2 KiB
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEAD_TIMEOUT = 10.0  # from the first byte of a request to the end of its head
DEFAULT_BODY_TIMEOUT = 30.0  # from the end of the head to the end of the body
DEFAULT_KEEPALIVE_TIMEOUT = 5.0  # an idle connection between requests
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_FILE_MODE = 0o600
DEFAULT_REDIS_WAIT_TIMEOUT = 2.0

#: The environment variable behind each option.
ENVIRONMENT = {
    "port": "TWILIO_TRIGGER_PORT",
    "host": "TWILIO_TRIGGER_HOST",
    "path": "TWILIO_TRIGGER_PATH",
    "auth_tokens": "TWILIO_AUTH_TOKEN",
    "shared_keys": "TWILIO_TRIGGER_SHARED_KEYS",
    "public_url": "TWILIO_TRIGGER_PUBLIC_URL",
    "verify_signatures": "TWILIO_TRIGGER_VERIFY_SIGNATURES",
    "max_body_bytes": "TWILIO_TRIGGER_MAX_BODY_BYTES",
    "max_params": "TWILIO_TRIGGER_MAX_PARAMS",
    "max_head_bytes": "TWILIO_TRIGGER_MAX_HEAD_BYTES",
    "max_headers": "TWILIO_TRIGGER_MAX_HEADERS",
    "head_timeout": "TWILIO_TRIGGER_HEAD_TIMEOUT",
    "body_timeout": "TWILIO_TRIGGER_BODY_TIMEOUT",
    "keepalive_timeout": "TWILIO_TRIGGER_KEEPALIVE_TIMEOUT",
    "max_connections": "TWILIO_TRIGGER_MAX_CONNECTIONS",
    "shutdown_timeout": "TWILIO_TRIGGER_SHUTDOWN_TIMEOUT",
    "deduplicate": "TWILIO_TRIGGER_DEDUPLICATE",
    "dedup_ttl": "TWILIO_TRIGGER_DEDUP_TTL",
    "dedup_max_entries": "TWILIO_TRIGGER_DEDUP_MAX_ENTRIES",
    "skip_stale": "TWILIO_TRIGGER_SKIP_STALE",
    "callback_timeout": "TWILIO_TRIGGER_CALLBACK_TIMEOUT",
    "inbox": "TWILIO_TRIGGER_INBOX",
    "file_mode": "TWILIO_TRIGGER_FILE_MODE",
    "workers": "TWILIO_TRIGGER_WORKERS",
    "max_attempts": "TWILIO_TRIGGER_MAX_ATTEMPTS",
    "retry_backoff": "TWILIO_TRIGGER_RETRY_BACKOFF",
    "retry_backoff_max": "TWILIO_TRIGGER_RETRY_BACKOFF_MAX",
    "store": "TWILIO_TRIGGER_STORE",
    "redis_prefix": "TWILIO_TRIGGER_REDIS_PREFIX",
    "claim_idle": "TWILIO_TRIGGER_CLAIM_IDLE",
    "redis_durability": "TWILIO_TRIGGER_REDIS_DURABILITY",
    "redis_wait_timeout": "TWILIO_TRIGGER_REDIS_WAIT_TIMEOUT",
    "health": "TWILIO_TRIGGER_HEALTH",
    "healthz_path": "TWILIO_TRIGGER_HEALTHZ_PATH",
    "readyz_path": "TWILIO_TRIGGER_READYZ_PATH",
    "metrics": "TWILIO_TRIGGER_METRICS",
    "metrics_path": "TWILIO_TRIGGER_METRICS_PATH",
    "metrics_port": "TWILIO_TRIGGER_METRICS_PORT",
    "metrics_host": "TWILIO_TRIGGER_METRICS_HOST",
    "event_log_level": "TWILIO_TRIGGER_EVENT_LOG_LEVEL",
    "log_format": "TWILIO_TRIGGER_LOG_FORMAT",
    "log_level": "TWILIO_TRIGGER_LOG_LEVEL",
    "inspector": "TWILIO_TRIGGER_INSPECTOR",
    "inspector_host": "TWILIO_TRIGGER_INSPECTOR_HOST",
    "inspector_port": "TWILIO_TRIGGER_INSPECTOR_PORT",
    "inspector_token": "TWILIO_TRIGGER_INSPECTOR_TOKEN",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _integer(low: int, high: int) -> Callable[[object, str], int]:
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


def _public_url(value: object, source: str) -> str:
    try:
        return normalize_public_url(str(value))
    except ValueError as error:
        raise ConfigurationError(f"{source}: {error}") from None


def _inbox(value: object, source: str) -> str:
    text = str(value).strip()
    try:
        open_inbox(text)
    except ValueError:
        raise ConfigurationError(
            f"{source} must be a URL such as sqlite:///events.db (relative), "
            f"sqlite:////var/lib/app/events.db (absolute) or redis://127.0.0.1:6379/0, "
            f"got {shown_url(text)!r}"
        ) from None
    return text


def _store(value: object, source: str) -> str:
    text = str(value).strip()
    if text != "memory" and not text.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"{source} must be memory or a Redis URL such as redis://127.0.0.1:6379/0, "
            f"got {shown_url(text)!r}"
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


def _positive_seconds(value: object, source: str) -> float:
    number = _seconds(value, source)
    if number <= 0:
        raise ConfigurationError(f"{source} must be more than 0 seconds, got {value!r}")
    return number


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


def _level(value: object, source: str) -> str:
    text = str(value).strip().lower()
    try:
        parse_level(text)
    except ValueError:
        raise ConfigurationError(
            f"{source} must be debug, info, warning, error or critical, got {value!r}"
        ) from None
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


_PARSERS: dict[str, Callable[[object, str], object]] = {
    "port": _integer(0, 65535),
    "host": _host,
    "path": _path,
    "auth_tokens": _tokens,
    "shared_keys": _shared_keys,
    "public_url": _public_url,
    "verify_signatures": _boolean,
    "max_body_bytes": _integer(1, 2**31),
    "max_params": _integer(1, 2**31),
    "max_head_bytes": _integer(1024, 2**24),
    "max_headers": _integer(8, 10_000),
    "head_timeout": _positive_seconds,
    "body_timeout": _positive_seconds,
    "keepalive_timeout": _positive_seconds,
    "max_connections": _integer(1, 1_000_000),
    "shutdown_timeout": _seconds,
    "deduplicate": _boolean,
    "dedup_ttl": _positive_seconds,
    "dedup_max_entries": _integer(1, 2**31),
    "skip_stale": _boolean,
    "callback_timeout": _positive_seconds,
    "inbox": _inbox,
    "file_mode": _file_mode,
    "workers": _integer(1, 1024),
    "max_attempts": _integer(1, 1000),
    "retry_backoff": _positive_seconds,
    "retry_backoff_max": _positive_seconds,
    "store": _store,
    "redis_prefix": _prefix,
    "claim_idle": _positive_seconds,
    "redis_durability": _durability,
    "redis_wait_timeout": _positive_seconds,
    "health": _boolean,
    "healthz_path": _path,
    "readyz_path": _path,
    "metrics": _boolean,
    "metrics_path": _path,
    "metrics_port": _integer(0, 65535),
    "metrics_host": _host,
    "event_log_level": _level,
    "log_format": _log_format,
    "log_level": _level,
    "inspector": _boolean,
    "inspector_host": _host,
    "inspector_port": _integer(0, 65535),
    "inspector_token": _secret,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved, validated listener options."""

    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    path: str = DEFAULT_PATH
    auth_tokens: tuple[str, ...] = field(default=(), repr=False)
    shared_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    public_url: str | None = None
    verify_signatures: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_params: int = DEFAULT_MAX_PARAMS
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    deduplicate: bool = True
    dedup_ttl: float = DEFAULT_DEDUP_TTL
    dedup_max_entries: int = DEFAULT_DEDUP_MAX_ENTRIES
    skip_stale: bool = False
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT
    inbox: str | None = None
    file_mode: int = DEFAULT_FILE_MODE
    workers: int = 4
    max_attempts: int = 5
    retry_backoff: float = 1.0
    retry_backoff_max: float = 300.0
    store: str = "memory"
    redis_prefix: str = "twilio-trigger:"
    claim_idle: float = 60.0
    redis_durability: str = "fsync"
    redis_wait_timeout: float = DEFAULT_REDIS_WAIT_TIMEOUT
    health: bool = True
    healthz_path: str = "/healthz"
    readyz_path: str = "/readyz"
    metrics: bool = False
    metrics_path: str = "/metrics"
    metrics_port: int | None = None
    metrics_host: str | None = None
    event_log_level: str = "info"
    log_format: str = "text"
    log_level: str = "info"
    inspector: bool = False
    inspector_host: str = "127.0.0.1"
    inspector_port: int = 8091
    inspector_token: str | None = field(default=None, repr=False)

    @classmethod
    def resolve(
        cls, options: Mapping[str, object], environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from explicit *options* (``None`` = not given), else *environ*."""
        env = os.environ if environ is None else environ
        resolved: dict[str, object] = {}
        for option, parse in _PARSERS.items():
            value = options.get(option)
            if value is not None:
                resolved[option] = parse(value, option)
                continue
            text = env.get(ENVIRONMENT[option], "")
            if text.strip():
                resolved[option] = parse(text, ENVIRONMENT[option])
        if resolved.get("metrics_port") is not None and "metrics" not in resolved:
            resolved["metrics"] = True  # a port for metrics asks for metrics
        settings = cls(**resolved)  # type: ignore[arg-type]
        settings._check_paths()
        return settings

    def _check_paths(self) -> None:
        served = {self.path: "path"}
        extra = []
        if self.health:
            extra += [(self.healthz_path, "healthz_path"), (self.readyz_path, "readyz_path")]
        if self.metrics and self.metrics_port is None:
            extra.append((self.metrics_path, "metrics_path"))
        for route, option in extra:
            if route in served:
                raise ConfigurationError(
                    f"{option} and {served[route]} are both {route!r}: give them different paths"
                )
            served[route] = option
