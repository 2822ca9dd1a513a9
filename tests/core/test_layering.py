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
    return sorted(CORE.glob("*.py"))


def imports_of(path: Path) -> list[str]:
    """Every module *path* imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = "twilio_trigger._core"
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
    names = {path.stem for path in core_modules()}
    assert {"form", "signature", "events", "kinds", "routing", "order", "twiml"} <= names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_a_core_module_does_no_io_and_imports_nothing_above_the_core(path: Path) -> None:
    for name in imports_of(path):
        top = name.split(".")[0]
        assert name not in FORBIDDEN, f"{path.name} imports {name}"
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if top == "twilio_trigger":
            inside = name == "twilio_trigger._core" or name.startswith("twilio_trigger._core.")
            assert inside or name in ALLOWED_ABOVE, f"{path.name} imports {name}, above the core"
        else:
            assert top not in {"uvicorn", "click", "redis", "prometheus_client", "httptools"}, (
                f"{path.name} imports {name}"
            )
