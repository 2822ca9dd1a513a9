"""The line a listener logs when it starts accepting requests: where it listens and
how it is set up, so that a wrong option shows in the first line of its log.

One record: its message for people (one line, whatever the log format), and
each setting as a field of its own for the JSON log format.  Passwords in the
inbox's and the store's URLs are hidden; tokens and keys are only counted.
"""

from __future__ import annotations

import logging

from ._config import Settings
from ._core.wording import counted
from ._logging import shown_url

__all__ = ["log_startup", "startup_record"]

logger = logging.getLogger("twilio_trigger")


def _backend(url: str, settings: Settings) -> tuple[str, dict[str, object]]:
    """*url* (an inbox's or a store's) as shown, with the key prefix or schema it uses."""
    shown = shown_url(url)
    scheme = url.partition("://")[0]
    if scheme in ("redis", "rediss", "unix"):
        prefix = settings.redis_prefix
        return f"{shown} (key prefix {prefix})", {"redis_prefix": prefix}
    if scheme in ("postgresql", "postgres"):
        schema = settings.postgres_schema
        return f"{shown} (schema {schema})", {"postgres_schema": schema}
    return shown, {}


def startup_record(
    settings: Settings, where: str, processes: int = 1
) -> tuple[int, str, dict[str, object]]:
    """The level, message and fields of the start-up line of a listener with
    *settings* listening at *where* (its URL, path included) in *processes*
    processes.  WARNING when signatures are not verified, else INFO."""
    s = settings
    fields: dict[str, object] = {
        "listen_url": where,
        "path": s.path,
        "public_url": s.public_url,
        "verification": "signatures" if s.verify_signatures else "off",
        "auth_token_count": len(s.auth_tokens),
        "shared_key_count": len(s.shared_keys),
        "basic_auth_users": len(s.basic_auth),
        "inbox": None if s.inbox is None else shown_url(s.inbox),
        "store": shown_url(s.store),
        "concurrency": None if s.inbox is None else s.concurrency,
        "processes": processes,
    }
    parts = [f"listening on {where}"]
    if s.verify_signatures:
        secrets = [counted(len(s.auth_tokens), "auth token")] if s.auth_tokens else []
        if s.shared_keys:
            secrets.append(counted(len(s.shared_keys), "shared key"))
        against = (
            f"public_url {s.public_url}"
            if s.public_url
            else "each request's own URL (no public_url)"
        )
        parts.append(
            f"signatures verified with {' and '.join(secrets) or 'nothing'}, against {against}"
        )
    else:
        parts.append(
            "signature verification OFF: anyone who can reach this port can forge Twilio events"
        )
    if s.basic_auth:
        parts.append(f"HTTP Basic auth required ({counted(len(s.basic_auth), 'user')})")
    if s.inbox is None:
        parts.append("no inbox: each callback runs before its request is answered")
    else:
        shown, more = _backend(s.inbox, s)
        fields.update(more)
        parts.append(f"inbox {shown}, {counted(s.concurrency, 'callback')} at once")
    shown, more = _backend(s.store, s)
    fields.update(more)
    parts.append(f"store {shown}")
    parts.append(counted(processes, "process", "processes"))
    level = logging.INFO if s.verify_signatures else logging.WARNING
    return level, "; ".join(parts), fields


def log_startup(settings: Settings, where: str, processes: int = 1) -> None:
    """Log the start-up line (see :func:`startup_record`)."""
    level, message, fields = startup_record(settings, where, processes)
    logger.log(level, "%s", message, extra=fields)
