"""What several commands share: click's settings, Name=Value parameters, auth tokens."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl

import click

__all__ = ["CONTEXT", "parameters", "token_list"]

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
