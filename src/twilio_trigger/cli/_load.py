"""Importing the user's module and finding its listener, for `run` and `worker`."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import sysconfig
import traceback
from pathlib import Path
from types import ModuleType

import click

from .. import _listener
from .._core.wording import a_or_an
from .._exceptions import TwilioTriggerError
from .._listener import Listener
from .._logging import printable

__all__ = ["load_listener"]

#: Where code that is not the user's lives: this package, the standard library,
#: installed packages.  A traceback's other frames are the user's.
_NOT_USERS = tuple(
    dict.fromkeys(
        [str(Path(__file__).resolve().parents[1]) + os.sep]
        + [
            str(Path(path).resolve()) + os.sep
            for key in ("stdlib", "platstdlib", "purelib", "platlib")
            if (path := sysconfig.get_paths().get(key))
        ]
    )
)
_MESSAGE_LIMIT = 500


def _users(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return False
    return not str(Path(filename).resolve()).startswith(_NOT_USERS)


def _shown_path(filename: str) -> str:
    """*filename* relative to the working directory when it is under it."""
    path = Path(filename).resolve()
    try:
        return printable(str(path.relative_to(Path.cwd())))
    except ValueError:
        return printable(str(path))


def _failure(module_name: str, error: BaseException) -> str:
    """Why importing the user's module failed, with where in their code: one line,
    then their frames of the traceback when the error went through several."""
    if isinstance(error, SyntaxError):  # the user's file that does not compile
        reason = f"{type(error).__name__}: {error.msg}"
        frames = []
        where = (error.filename, error.lineno)
    else:
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        frames = [f for f in traceback.extract_tb(error.__traceback__) if _users(f.filename)]
        where = (frames[-1].filename, frames[-1].lineno) if frames else (None, None)
    reason = printable(reason[:_MESSAGE_LIMIT])
    line = f"cannot import {printable(module_name)}: {reason}"
    if where[0] is not None and where[1] is not None:
        line += f" ({_shown_path(where[0])}, line {where[1]})"
    if len(frames) > 1:
        line += "".join(
            f"\n  {_shown_path(f.filename)}, line {f.lineno}, in {printable(f.name)}"
            + (f": {printable(f.line.strip())}" if f.line else "")
            for f in frames
        )
    return line


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
        raise click.ClickException(_failure(module_name, error)) from None
    except click.ClickException:
        raise
    except TwilioTriggerError as error:  # a listener built with a bad option
        raise click.ClickException(_located(error)) from None
    except Exception as error:
        raise click.ClickException(_failure(module_name, error)) from None


def _located(error: TwilioTriggerError) -> str:
    """The error's message, and the line of the user's code that raised it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _users(f.filename)]
    if not frames:
        return str(error)
    return f"{error} ({_shown_path(frames[-1].filename)}, line {frames[-1].lineno})"


def load_listener(target: str, command: str = "run") -> Listener:
    """The listener named by ``MODULE:ATTR``, or the one module-level listener of ``MODULE``,
    for *command* (which starts it: the module must not, when imported)."""
    sys.path.insert(0, os.getcwd())
    module_name, _, attribute = target.partition(":")
    _listener.importing_for = command
    try:
        module = _import_target(module_name)
    finally:
        _listener.importing_for = None
    if attribute:
        found = getattr(module, attribute, None)
        if found is None:
            raise click.BadParameter(f"{module_name} has no {attribute!r}", param_hint="TARGET")
        if not isinstance(found, Listener):
            raise click.BadParameter(
                f"{target} is {a_or_an(type(found).__name__)}, not a twilio_trigger.Listener",
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
