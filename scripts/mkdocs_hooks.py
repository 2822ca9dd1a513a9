"""MkDocs hooks for the documentation site (mkdocs.yml names this file).

- The site's home page is README.md itself, so that the quickstart has one source:
  ``docs/index.md`` is a placeholder whose text this hook replaces with README's, its
  links into ``docs/`` made relative to the site.
- ``<!-- api: MODULE -->`` in a page becomes one mkdocstrings block (``::: NAME``) per
  name of that module's ``__all__``, as exported by ``twilio_trigger``: a new event or
  service class is in the reference without a change to the page.
- ``<!-- cli-help -->`` becomes a section per command of ``twilio-trigger`` with its
  ``--help`` text, as click writes it (a new command or option appears by itself).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
_INTO_DOCS = re.compile(r"\]\(docs/")
_API = re.compile(r"^<!-- api: ([\w.]+) -->$", re.M)


def api_blocks(markdown: str) -> str:
    """*markdown* with each ``<!-- api: MODULE -->`` replaced by its names' blocks."""

    def blocks(match: re.Match[str]) -> str:
        names = importlib.import_module(match.group(1)).__all__
        return "\n\n".join(f"::: twilio_trigger.{name}" for name in names)

    return _API.sub(blocks, markdown)


def _commands(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    """*command* and every subcommand under it, each with its words."""
    found = [(path, command)]
    for name in sorted(getattr(command, "commands", {})):
        found += _commands(command.commands[name], [*path, name])
    return found


def cli_help(markdown: str) -> str:
    """*markdown* with ``<!-- cli-help -->`` replaced by every command's help."""
    if "<!-- cli-help -->" not in markdown:
        return markdown
    from twilio_trigger.cli import cli

    sections = []
    for words, command in _commands(cli, ["twilio-trigger"]):
        # click's contexts down to this command, with each command's own settings
        # (-h, the width), as when it runs.
        context: click.Context | None = None
        node: Any = cli
        for depth, word in enumerate(words):
            if depth:
                node = node.commands[word]
            context = node.context_class(
                node, info_name=word, parent=context, **node.context_settings
            )
        assert context is not None
        text = command.get_help(context)
        level = "#" * min(len(words) + 1, 4)
        sections.append(f"{level} `{' '.join(words)}`\n\n```text\n{text}\n```\n")
    return markdown.replace("<!-- cli-help -->", "\n".join(sections))


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """README's text for the home page; every other page as it is."""
    if page.file.src_uri != "index.md":
        return cli_help(api_blocks(markdown))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return _INTO_DOCS.sub("](", readme)
