"""Importing the user's module and finding its listener, for `run` and `worker`."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import click

from .._exceptions import TwilioTriggerError
from .._listener import Listener

__all__ = ["load_listener"]


def _import_target(module_name: str) -> ModuleType:
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name).resolve()
            if not path.is_file():
                raise click.BadParameter(f"no file {module_name}", param_hint="TARGET")
            sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise click.BadParameter(f"cannot load {module_name}", param_hint="TARGET")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name or module_name.startswith(f"{error.name}."):
            raise click.BadParameter(
                f"no module named {module_name!r} (run from the folder that holds it)",
                param_hint="TARGET",
            ) from None
        raise click.ClickException(f"importing {module_name} failed: {error}") from None
    except (click.ClickException, TwilioTriggerError):
        raise
    except Exception as error:
        raise click.ClickException(
            f"importing {module_name} failed: {type(error).__name__}: {error}"
        ) from None


def load_listener(target: str) -> Listener:
    """The listener named by ``MODULE:ATTR``, or the one module-level listener of ``MODULE``."""
    sys.path.insert(0, os.getcwd())
    module_name, _, attribute = target.partition(":")
    try:
        module = _import_target(module_name)
    except TwilioTriggerError as error:
        raise click.ClickException(str(error)) from None
    if attribute:
        found = getattr(module, attribute, None)
        if found is None:
            raise click.BadParameter(f"{module_name} has no {attribute!r}", param_hint="TARGET")
        if not isinstance(found, Listener):
            raise click.BadParameter(
                f"{target} is a {type(found).__name__}, not a twilio_trigger.Listener",
                param_hint="TARGET",
            )
        return found
    listeners = {name: v for name, v in vars(module).items() if isinstance(v, Listener)}
    if len(listeners) == 1:
        return next(iter(listeners.values()))
    if not listeners:
        raise click.BadParameter(f"no Listener at the top of {module_name}", param_hint="TARGET")
    names = ", ".join(f"{module_name}:{name}" for name in sorted(listeners))
    raise click.BadParameter(f"several listeners, say which: {names}", param_hint="TARGET")
