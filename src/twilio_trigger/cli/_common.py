"""What several commands share: click's settings, Name=Value parameters, auth tokens,
warnings, and the library's messages in the command line's words."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import click

from .._options import OPTIONS, Option
from .._options import _metavar as metavar

__all__ = ["CONTEXT", "cli_wording", "parameters", "token_list", "warn"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def parameters(items: Iterable[str], body: str | None) -> list[tuple[str, str]]:
    """The pairs of a form *body*, then those of ``Name=Value`` *items*."""
    pairs = parse_qsl(body, keep_blank_values=True) if body else []
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{item!r} is not Name=Value", param_hint="PARAMS")
        pairs.append((name, value))
    return pairs


def token_list(values: Sequence[str]) -> list[str]:
    """The auth tokens given (each value may hold several, comma-separated)."""
    found = [t.strip() for value in values for t in value.split(",") if t.strip()]
    if not found:
        raise click.UsageError("no auth token: pass --auth-token or set TWILIO_AUTH_TOKEN")
    return found


def warn(message: str) -> None:
    """One ``Warning: ...`` line on stderr; the command goes on."""
    click.echo(f"Warning: {message}", err=True)


# An option given as Python passes it: ``inbox=...``, ``auth_tokens=[...]``,
# ``inspector=True``, ``redis_durability=fsync``, or ``store=`` before other words.
_ASSIGNED = re.compile(
    r"(?<![\w./?&-])(?:(?P<verb>pass|set) )?(?P<name>[a-z][a-z0-9_]*)="
    r"(?P<value>\[\.\.\.\]|\.\.\.|[\w:]+)?"
)
_PLACEHOLDERS = ("...", "[...]")


def cli_wording(message: str, flags: Collection[str] = ()) -> str:
    """*message*, written for Python callers, in the command line's words.

    ``inbox=...`` becomes ``--inbox URL`` when the command has that flag (its
    option name is in *flags*), else its variable (``set TWILIO_TRIGGER_INBOX``);
    ``verify_signatures=False`` becomes ``TWILIO_TRIGGER_VERIFY_SIGNATURES=false``;
    ``redis_durability (TWILIO_TRIGGER_REDIS_DURABILITY)`` the variable alone.
    Words that name no option are left as they are.
    """

    def assigned(match: re.Match[str]) -> str:
        name = match["name"]
        option = _option(name)
        if option is None:
            return match[0]
        verb, value = match["verb"], match["value"]
        flag = option.flag if name in flags else None
        if value is None or value in _PLACEHOLDERS:
            if flag is None:
                return f"set {option.env}" if verb else option.env
            if value is None or option.value_type is bool:
                return f"{verb} {flag}" if verb else flag
            return f"{verb or 'pass'} {flag} {metavar(option)}"
        if option.value_type is bool and flag is not None and value == "True":
            return f"{verb} {flag}" if verb else flag
        text = {"True": "true", "False": "false"}.get(value, value)
        if flag is not None and option.value_type is not bool:
            return f"{verb} {flag} {text}" if verb else f"{flag} {text}"
        return f"set {option.env}={text}" if verb else f"{option.env}={text}"

    def named(match: re.Match[str]) -> str:
        option = _option(match["name"])
        if option is None or option.env != match["env"]:
            return match[0]
        return f"{option.flag} or {option.env}" if option.name in flags else option.env

    message = _ASSIGNED.sub(assigned, message)
    message = re.sub(r"\b(?P<name>[a-z][a-z0-9_]*) \((?P<env>[A-Z][A-Z0-9_]*)\)", named, message)
    # "set X or set X", where the Python wording offered an argument besides the variable.
    return re.sub(r"\bset (\S+) or set \1(?![\w=])", r"set \1", message)


def _option(name: str) -> Option[Any] | None:
    try:
        return OPTIONS[name]
    except KeyError:
        return None
