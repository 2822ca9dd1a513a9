"""The documentation's own promises: a short README, a reference that covers the whole
public API, and no internal jargon.  (`scripts/docs` builds the site in strict mode;
tests/test_docs_samples.py runs its code.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import twilio_trigger

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_a_quickstart() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, len(lines)
    text = "\n".join(lines)
    for step in ("## Install", "twilio-trigger demo", "## Your first service",
                 "## Connecting a real Twilio number", "scripts/test", "scripts/demo"):  # fmt: skip
        assert step in text, step


def test_every_link_of_readme_into_docs_names_a_page() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link


def test_the_api_reference_covers_every_public_name() -> None:
    page = (ROOT / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    page = _hooks().api_blocks(page)
    shown = set(re.findall(r"^::: twilio_trigger\.(\w+)$", page, re.M))
    shown |= set(re.findall(r"`(\w+)` and `(\w+)` are other names", page)[0])
    assert set(twilio_trigger.__all__) <= shown, set(twilio_trigger.__all__) - shown


def test_the_home_page_is_readme_with_links_into_the_site() -> None:
    class Page:
        class file:  # noqa: N801 - the shape of mkdocs' Page.file
            src_uri = "index.md"

    home = _hooks().on_page_markdown("", Page(), None, None)
    assert home.startswith("# twilio-trigger")
    assert "](docs/" not in home
    assert "](connecting.md)" in home


def test_no_internal_words_reach_a_reader() -> None:
    for page in [README, *DOCS]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\bthe seed\b|\bseed's\b", text, re.I), page
    # The Ballerina package is background, said once in README (and where its names live on).
    assert README.read_text(encoding="utf-8").count("Ballerina") == 1


def test_the_command_reference_has_every_command_s_help() -> None:
    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    text = _hooks().cli_help(page)
    for words in ("twilio-trigger", "twilio-trigger run", "twilio-trigger inbox replay"):
        assert f"`{words}`\n\n```text\nUsage: {words} " in text, words
    assert text.count("-h, --help") >= 12  # every command's, with the group's settings
