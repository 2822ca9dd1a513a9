"""The pure core does no I/O and depends on nothing above it.

``twilio_trigger/_core`` holds what a webhook *is*: parsing, signatures, events,
the registry of kinds, routing, order, replies, payloads.  It must run anywhere
(a serverless function, another framework) and be testable without a server, so
a module there may import neither the machinery of I/O nor the package's upper
floors.  This test reads each module's imports, without importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import twilio_trigger

CORE = Path(twilio_trigger.__file__).parent / "_core"
#: Standard modules that do I/O or run things concurrently.
FORBIDDEN = {
    "asyncio", "threading", "socket", "ssl", "selectors", "sqlite3", "subprocess",
    "multiprocessing", "concurrent", "http", "urllib.request", "logging", "signal", "os",
}  # fmt: skip
#: Of the package outside the core, only its exceptions (which import nothing).
ALLOWED_ABOVE = {"twilio_trigger._exceptions"}


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def package_of(path: Path) -> str:
    """The package *path* is in (``twilio_trigger._core.events`` for ``events/base.py``)."""
    return ".".join(("twilio_trigger", *path.parent.relative_to(CORE.parent).parts))


def module_of(path: Path) -> str:
    """*path*'s module, relative to the core: ``kinds``, ``events``, ``events.base``."""
    parts = path.relative_to(CORE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[str]:
    """Every module *path* imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = package_of(path)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                found.append(node.module)
                continue
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.module else base
            if node.module is None:  # from . import x
                found.extend(f"{base}.{alias.name}" for alias in node.names)
            else:
                found.append(module)
    return found


def test_the_core_has_modules() -> None:
    names = {module_of(path) for path in core_modules()}
    assert {"form", "signature", "events", "kinds", "routing", "order", "twiml"} <= names
    assert {"events.params", "events.base", "events.status", "events.verbs"} <= names
    assert {"kinds.kind", "kinds.status", "kinds.verbs", "kinds.taskrouter"} <= names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_a_core_module_does_no_io_and_imports_nothing_above_the_core(path: Path) -> None:
    where = path.relative_to(CORE)
    for name in imports_of(path):
        top = name.split(".")[0]
        assert name not in FORBIDDEN, f"{where} imports {name}"
        assert top not in FORBIDDEN, f"{where} imports {name}"
        if top == "twilio_trigger":
            inside = name == "twilio_trigger._core" or name.startswith("twilio_trigger._core.")
            assert inside or name in ALLOWED_ABOVE, f"{where} imports {name}, above the core"
        else:
            assert top not in {"uvicorn", "click", "redis", "prometheus_client", "httptools"}, (
                f"{where} imports {name}"
            )
