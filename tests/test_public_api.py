"""The public names of the package, and what importing it pulls in."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import twilio_trigger
from twilio_trigger import ConfigurationError, ServiceError, TwilioTriggerError

PACKAGE_DIR = Path(twilio_trigger.__file__).parent


def isort_style_key(name: str) -> tuple[int, str]:
    """The order of ruff's RUF022: CONSTANTS, then Classes, then everything else."""
    if len(name) > 1 and name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    names = list(twilio_trigger.__all__)
    assert names == sorted(names, key=isort_style_key)
    assert len(set(names)) == len(names)


def test_every_name_in_all_exists() -> None:
    for name in twilio_trigger.__all__:
        assert hasattr(twilio_trigger, name), name


def test_every_public_class_and_function_is_in_all() -> None:
    exported = set(twilio_trigger.__all__)
    for name, value in vars(twilio_trigger).items():
        if name.startswith("_"):
            continue
        is_code = inspect.isclass(value) or inspect.isfunction(value)
        if is_code and value.__module__.startswith("twilio_trigger"):
            assert name in exported, name


def test_every_public_attribute_is_in_all() -> None:
    exported = set(twilio_trigger.__all__)
    public = {
        name
        for name, value in vars(twilio_trigger).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= exported, public - exported


def test_the_names_of_the_design_are_exported() -> None:
    for name in [
        "Listener",
        "SmsStatusService",
        "CallStatusService",
        "SmsStatusChangeEvent",
        "CallStatusEvent",
        "SmsStatusChangeEventWrapper",
        "CallStatusEventWrapper",
        "compute_signature",
    ]:
        assert name in twilio_trigger.__all__, name


def test_version_matches_the_distribution() -> None:
    assert twilio_trigger.__version__ == importlib.metadata.version("twilio-trigger")


@pytest.mark.parametrize("error", [ConfigurationError, ServiceError])
def test_errors_share_one_base(error: type[Exception]) -> None:
    assert issubclass(error, TwilioTriggerError)
    assert issubclass(TwilioTriggerError, Exception)
    with pytest.raises(TwilioTriggerError):
        raise error("boom")


def test_the_standard_bases_of_the_errors() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ServiceError, TypeError)
    assert not issubclass(ConfigurationError, ServiceError)
    assert not issubclass(ServiceError, ConfigurationError)


# -- what the core imports -------------------------------------------------------------

FORBIDDEN = ["starlette", "fastapi", "flask", "django", "werkzeug", "aiohttp", "twilio"]


def test_importing_the_package_loads_no_web_framework_and_not_twilio() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import twilio_trigger, sys; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded = set(ast.literal_eval(result.stdout.strip()))
    assert "twilio_trigger" in loaded
    assert "twilio_trigger._signature" in loaded
    for root in FORBIDDEN:
        found = sorted(m for m in loaded if m == root or m.startswith(root + "."))
        assert not found, found


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_serving_modules_import_uvicorn() -> None:
    # The listener serves one process on uvicorn, through the edge's protocol;
    # the command line's `run --workers N` hands N processes to uvicorn's
    # supervisor.  Nothing else knows the server.
    importers = {
        str(path.relative_to(PACKAGE_DIR))
        for path in PACKAGE_DIR.rglob("*.py")
        if "uvicorn" in _imported_roots(path)
    }
    assert importers == {"_listener.py", "_edge.py", "cli.py"}


def test_the_core_modules_import_only_the_standard_library() -> None:
    serving = ("__init__.py", "_listener.py", "_edge.py")
    core = [p for p in PACKAGE_DIR.glob("_*.py") if p.name not in serving]
    names = {p.name for p in core}
    assert {"_signature.py", "_form.py", "_events.py", "_services.py", "_routing.py"} <= names
    for path in core:
        outside = _imported_roots(path) - set(sys.stdlib_module_names) - {"__future__"}
        assert not outside, (path.name, outside)
