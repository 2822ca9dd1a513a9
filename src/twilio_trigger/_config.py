"""Listener settings: explicit argument, then environment, then default.

The options themselves (their defaults, variables and parsers) are declared
once, in ``_options``; this module resolves them.  The command line sits
between argument and environment: it writes its flags into the environment
of the process before the user's module builds its listener.
"""

from __future__ import annotations

import difflib
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._exceptions import ConfigurationError
from ._limits import Limit
from ._logging import printable
from ._options import OPTIONS, Option

__all__ = ["ENVIRONMENT", "RENAMED", "Settings"]

#: The environment variable behind each option.
ENVIRONMENT: dict[str, str] = {option.name: option.env for option in OPTIONS}

#: Deprecated option name: the option it was renamed to.
RENAMED: dict[str, Option[object]] = {
    option.renamed_from[0]: option for option in OPTIONS if option.renamed_from
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved, validated listener options (one field per option of ``_options``)."""

    port: int = OPTIONS.port.default
    host: str = OPTIONS.host.default
    path: str = OPTIONS.path.default
    auth_tokens: tuple[str, ...] = field(default=OPTIONS.auth_tokens.default, repr=False)
    shared_keys: tuple[tuple[str, str], ...] = field(
        default=OPTIONS.shared_keys.default, repr=False
    )
    basic_auth: tuple[tuple[str, str], ...] = field(default=OPTIONS.basic_auth.default, repr=False)
    public_url: str | None = OPTIONS.public_url.default
    verify_signatures: bool = OPTIONS.verify_signatures.default
    max_body_bytes: int = OPTIONS.max_body_bytes.default
    max_params: int = OPTIONS.max_params.default
    shutdown_timeout: float = OPTIONS.shutdown_timeout.default
    file_mode: int = OPTIONS.file_mode.default
    max_head_bytes: int = OPTIONS.max_head_bytes.default
    max_headers: int = OPTIONS.max_headers.default
    head_timeout: float = OPTIONS.head_timeout.default
    body_timeout: float = OPTIONS.body_timeout.default
    keepalive_timeout: float = OPTIONS.keepalive_timeout.default
    max_connections: int = OPTIONS.max_connections.default
    max_pipelined: int = OPTIONS.max_pipelined.default
    write_timeout: float = OPTIONS.write_timeout.default
    deduplicate: bool = OPTIONS.deduplicate.default
    dedup_ttl: float = OPTIONS.dedup_ttl.default
    dedup_max_entries: int = OPTIONS.dedup_max_entries.default
    skip_stale: bool = OPTIONS.skip_stale.default
    callback_timeout: float = OPTIONS.callback_timeout.default
    inbox: str | None = OPTIONS.inbox.default
    concurrency: int = OPTIONS.concurrency.default
    max_attempts: int = OPTIONS.max_attempts.default
    retry_backoff: float = OPTIONS.retry_backoff.default
    retry_backoff_max: float = OPTIONS.retry_backoff_max.default
    limits: tuple[tuple[str, Limit], ...] = OPTIONS.limits.default
    breaker_failures: int = OPTIONS.breaker_failures.default
    breaker_cooldown: float = OPTIONS.breaker_cooldown.default
    store: str = OPTIONS.store.default
    redis_prefix: str = OPTIONS.redis_prefix.default
    claim_idle: float = OPTIONS.claim_idle.default
    redis_durability: str = OPTIONS.redis_durability.default
    redis_wait_timeout: float = OPTIONS.redis_wait_timeout.default
    postgres_schema: str = OPTIONS.postgres_schema.default
    postgres_migrate: bool = OPTIONS.postgres_migrate.default
    health: bool = OPTIONS.health.default
    healthz_path: str = OPTIONS.healthz_path.default
    readyz_path: str = OPTIONS.readyz_path.default
    metrics: bool = OPTIONS.metrics.default
    metrics_path: str = OPTIONS.metrics_path.default
    metrics_port: int | None = OPTIONS.metrics_port.default
    metrics_host: str | None = OPTIONS.metrics_host.default
    event_log_level: str = OPTIONS.event_log_level.default
    log_format: str = OPTIONS.log_format.default
    log_level: str = OPTIONS.log_level.default
    inspector: bool = OPTIONS.inspector.default
    inspector_host: str = OPTIONS.inspector_host.default
    inspector_port: int = OPTIONS.inspector_port.default
    inspector_token: str | None = field(default=OPTIONS.inspector_token.default, repr=False)
    refused_kept: int = OPTIONS.refused_kept.default

    @classmethod
    def resolve(
        cls,
        options: Mapping[str, object],
        environ: Mapping[str, str] | None = None,
        *,
        stacklevel: int = 2,
    ) -> Settings:
        """Settings from explicit *options* (``None`` = not given), else *environ*.

        A renamed option's former name still works, with a ``DeprecationWarning``
        (raised *stacklevel* frames up, as by ``warnings.warn``); its former
        variable too, with a warning in the log, once per process.
        """
        env = os.environ if environ is None else environ
        _tell_misspelt(env)
        options = _renamed(options, env, stacklevel)
        resolved: dict[str, object] = {}
        for option in OPTIONS:
            value = options.get(option.name)
            if value is not None:
                resolved[option.name] = option.parse(value, option.name)
                continue
            for variable in _variables(option):
                text = env.get(variable, "")
                if text.strip():
                    resolved[option.name] = option.parse(text, variable)
                    break
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


#: The variables already said to be misspelt or deprecated, each said once per process.
_told: set[str] = set()
#: Variables of the package's own that are no option's: what `run --processes N`
#: hands its processes (the module to serve).
TARGET_VARIABLE = "TWILIO_TRIGGER_TARGET"
INTERNAL_VARIABLES = frozenset({TARGET_VARIABLE})


def _tell_misspelt(env: Mapping[str, str]) -> None:
    """Warn of a variable that is nearly one of the options' (``TWILIO_TRIGGER_PROT``,
    ``TWILIO_AUTH_TOKENS``): it would be ignored without a word."""
    known = {name for option in OPTIONS for name in _variables(option)}
    for name in env:
        if not name.startswith("TWILIO_") or name in known or name in _told:
            continue
        if name in INTERNAL_VARIABLES:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
        if close:
            _told.add(name)
            logging.getLogger("twilio_trigger").warning(
                "%s is not a variable twilio-trigger reads (it is ignored): did you mean %s?",
                printable(name),
                close[0],
            )


def _variables(option: Option[object]) -> tuple[str, ...]:
    """The variables an option is read from, the current one first."""
    if option.renamed_from is None:
        return (option.env,)
    return (option.env, option.renamed_from[1])


def _renamed(
    options: Mapping[str, object], env: Mapping[str, str], stacklevel: int
) -> Mapping[str, object]:
    """*options* with former names under their new ones, each use of one warned of."""
    renamed = dict(options)
    for old, option in RENAMED.items():
        value = renamed.pop(old, None)
        if value is not None:
            if renamed.get(option.name) is not None:
                raise ConfigurationError(f"{old} is {option.name}'s former name: pass only one")
            warnings.warn(
                f"{old} is deprecated: use {option.name} (the same value)",
                DeprecationWarning,
                stacklevel=stacklevel + 1,
            )
            renamed[option.name] = value
        assert option.renamed_from is not None
        variable = option.renamed_from[1]
        unread = renamed.get(option.name) is not None or env.get(option.env, "").strip()
        if env.get(variable, "").strip() and not unread and variable not in _told:
            # An operator's setting: said in the log, which `twilio-trigger run`
            # shows (a DeprecationWarning is hidden outside __main__ by default).
            _told.add(variable)
            logging.getLogger("twilio_trigger").warning(
                "%s is deprecated: set %s instead (the same value)", variable, option.env
            )
    return renamed
