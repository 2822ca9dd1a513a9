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
    # Its own names, then each kind's event and service classes, from their modules.
    from twilio_trigger._core import events, services

    kinds = [*events.__all__, *services.__all__]
    names = list(twilio_trigger.__all__)
    own = names[: len(names) - len(kinds)]
    assert names[len(own) :] == kinds
    for part in (own, events.__all__, services.__all__):
        assert list(part) == sorted(part, key=isort_style_key)
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
    assert "twilio_trigger._core.signature" in loaded
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
    # The listener serves one process on uvicorn, through the edge's protocol
    # (its requests for the webhook through `_direct`'s, which the edge bounds);
    # the command line's `run --processes N` hands N processes to uvicorn's
    # supervisor.  Nothing else knows the server.
    importers = {
        str(path.relative_to(PACKAGE_DIR))
        for path in PACKAGE_DIR.rglob("*.py")
        if "uvicorn" in _imported_roots(path)
    }
    serving = {"_server.py", "_edge.py", "_direct.py", "_metrics_server.py"}
    assert serving <= importers
    # The command line: a module, or a package of them.
    assert all(name in serving or name.split("/")[0] in ("cli", "cli.py") for name in importers)


def test_the_private_modules_import_only_the_standard_library() -> None:
    serving = ("__init__.py", "_server.py", "_edge.py", "_direct.py", "_metrics_server.py")
    core = [p for p in PACKAGE_DIR.glob("_*.py") if p.name not in serving]
    core += sorted((PACKAGE_DIR / "_core").rglob("*.py"))
    names = {str(p.relative_to(PACKAGE_DIR)) for p in core}
    assert {"_core/signature.py", "_core/form.py", "_core/services.py", "_core/routing.py"} <= names
    assert {"_core/events/__init__.py", "_core/events/base.py"} <= names
    assert {"_core/kinds/__init__.py", "_core/kinds/kind.py"} <= names
    for path in core:
        outside = _imported_roots(path) - set(sys.stdlib_module_names) - {"__future__"}
        outside -= LAZY.get(str(path.relative_to(PACKAGE_DIR)), set())
        assert not outside, (str(path.relative_to(PACKAGE_DIR)), outside)


#: Imported inside a function that needs it, never when the module is imported.
LAZY = {
    "_options.py": {"click"},  # click_options(), for the command line
    "_postgres.py": {"psycopg", "psycopg_pool"},  # a PostgreSQL inbox or store, once opened
    "_postgres_schema.py": {"psycopg"},  # its types, for the type checker only
}


def test_the_lazy_imports_of_the_core_are_inside_functions() -> None:
    for name, roots in LAZY.items():
        tree = ast.parse((PACKAGE_DIR / name).read_text(encoding="utf-8"))
        top: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top.add(node.module.split(".")[0])
        assert not top & roots, (name, top & roots)


def test_the_core_and_the_facade_do_not_import_the_server_at_import_time() -> None:
    # _listener and _app import the server (and the inspector) where they use it.
    for name in ("_listener.py", "_app.py", "_config.py", "_options.py"):
        tree = ast.parse((PACKAGE_DIR / name).read_text(encoding="utf-8"))
        top: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                top.add(node.module)
        assert not top & {"_server", "_edge", "_direct", "_inspector", "metrics", "uvicorn"}, (
            name,
            top,
        )


# -- reprs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Listener",
        "SmsStatusService",
        "CallStatusService",
        "RecordingStatusService",
        "SmsStatusChangeEvent",
        "CallStatusEvent",
        "RecordingStatusEvent",
        "TwilioEvent",
        "ConfigurationError",
        "ServiceError",
        "TwilioTriggerError",
        "JsonFormatter",
        "TextFormatter",
    ],
)
def test_public_classes_show_as_members_of_the_package(name: str) -> None:
    cls = getattr(twilio_trigger, name)
    assert cls.__module__ == "twilio_trigger"
    assert repr(cls) == f"<class 'twilio_trigger.{name}'>"


def test_every_exported_class_shows_as_a_member_of_the_package() -> None:
    for name in twilio_trigger.__all__:
        value = getattr(twilio_trigger, name)
        if inspect.isclass(value) and value.__module__.startswith("twilio_trigger"):
            assert value.__module__ == "twilio_trigger", name
    assert repr(twilio_trigger.SmsStatusChangeEventWrapper) == (
        "<class 'twilio_trigger.SmsStatusChangeEvent'>"
    )
