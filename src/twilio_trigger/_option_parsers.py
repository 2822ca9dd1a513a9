"""How each of the listener's options is read: a parser per kind of value, given
the value and where it came from (an argument, a variable, a flag), returning the
value or raising :class:`ConfigurationError` with both.  The table of options
that uses them is :mod:`._options`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from ._core.signature import normalize_public_url
from ._exceptions import ConfigurationError
from ._logging import LOG_FORMATS, printable, shown_url

_T = TypeVar("_T")

Parser = Callable[[object, str], _T]

# -- parsers: (value, where it came from) -> the value, or ConfigurationError ----------
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LEVELS = ("debug", "info", "warning", "error", "critical")


def integer(low: int, high: int) -> Parser[int]:
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


def host(value: object, source: str) -> str:
    text = str(value).strip()
    if not text:
        raise ConfigurationError(f"{source} must not be empty")
    return text


def path(value: object, source: str) -> str:
    text = str(value).strip()
    if not text.startswith("/") or "?" in text or "#" in text:
        raise ConfigurationError(f"{source} must be a path such as /twilio, got {text!r}")
    return text


def tokens(value: object, source: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ConfigurationError(f"{source} must be a string or a list of strings")
    items = list(items)
    if not all(isinstance(item, str) for item in items):
        raise ConfigurationError(f"{source} must be a string or a list of strings")
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def shared_keys(value: object, source: str) -> tuple[tuple[str, str], ...]:
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


def basic_auth(value: object, source: str) -> tuple[tuple[str, str], ...]:
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


def public_url(value: object, source: str) -> str:
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


def inbox(value: object, source: str) -> str:
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


def store(value: object, source: str) -> str:
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


def schema(value: object, source: str) -> str:
    text = str(value).strip()
    if not valid_schema(text):
        raise ConfigurationError(
            f"{source} must be a schema name of lower-case letters, digits and underscores "
            f"(not starting with a digit, at most 63), got {text[:80]!r}"
        )
    return text


def file_mode(value: object, source: str) -> int:
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


def durability(value: object, source: str) -> str:
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


def prefix(value: object, source: str) -> str:
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise ConfigurationError(f"{source} must be a non-empty key prefix without spaces")
    return text


def seconds(value: object, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(f"{source} must be a number of seconds, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{source} must be a number of seconds, got {value!r}") from None
    if not 0 <= number < float("inf"):
        raise ConfigurationError(f"{source} must be a positive number of seconds, got {value!r}")
    return number


def positive_seconds(value: object, source: str) -> float:
    number = seconds(value, source)
    if number <= 0:
        raise ConfigurationError(f"{source} must be more than 0 seconds, got {value!r}")
    return number


def level(value: object, source: str) -> str:
    text = str(value).strip().lower()
    if text not in _LEVELS:
        raise ConfigurationError(
            f"{source} must be debug, info, warning, error or critical, got {value!r}"
        )
    return text


def log_format(value: object, source: str) -> str:
    text = str(value).strip().lower()
    if text not in LOG_FORMATS:
        raise ConfigurationError(f"{source} must be text or json, got {value!r}")
    return text


def secret(value: object, source: str) -> str:
    text = str(value).strip()
    if len(text) < 16:
        raise ConfigurationError(f"{source} must be at least 16 characters long")
    return text


def boolean(value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ConfigurationError(f"{source} must be true or false, got {value!r}")
    return text in _TRUE


def optional(parse: Parser[_T]) -> Parser[_T | None]:
    return parse
