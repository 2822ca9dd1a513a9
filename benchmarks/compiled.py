"""What compiling the request path to C would buy: mypyc on a copy of the package.

Issue 19 asks for the listener at its defaults to answer 0.45 of the floor's
requests a second; in pure Python it answers about 0.3 (``PROFILE.md``).  This
measures the other road, a compiled build: it copies ``src/twilio_trigger`` to a
temporary folder, compiles the *modules* there with mypyc (part of mypy, a dev
dependency; needs a C compiler), then times the listener's own work in-process
(``profile_inprocess.py``), the copy and the tree as it is in turn, and prints
both and their ratio.  The package itself is never compiled: nothing here
changes what users install.

    .venv/bin/python benchmarks/compiled.py [--mode dedup|inline] [--rounds 3]
        [--modules _core/form,_asgi,...] [--keep DIR]

With ``--keep DIR`` the compiled copy is left in *DIR*, so that a load test can
run on it: ``PYTHONPATH=DIR/src .venv/bin/python benchmarks/steady.py --only
floor,defaults``.  The default modules are those of the request path that mypyc
compiles as they are written; the others of the path (``_dedup``, ``_pipeline``,
``_webhook``, ``_dispatch``, ``_invoke``, ``_edge``, ``_direct``) need small
changes first (PROFILE.md says which).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "src" / "twilio_trigger"

#: The modules of the request path that mypyc compiles without a change.
MODULES = (
    "_core/form",
    "_core/signature",
    "_core/verifier",
    "_core/order",
    "_core/routing",
    "stores/_packed",
    "stores/memory",
    "_identity",
    "_observe",
    "_asgi",
)

_MICROSECONDS = re.compile(r": ([0-9.]+) us per request")


def compile_copy(folder: Path, modules: list[str]) -> Path:
    """Copy the package into *folder*/src and compile *modules* there; the copy's src."""
    src = folder / "src"
    shutil.copytree(SOURCE, src / "twilio_trigger", ignore=shutil.ignore_patterns("__pycache__"))
    mypyc = Path(sys.executable).with_name("mypyc")
    if not mypyc.exists():
        sys.exit(f"compiled.py: {mypyc} not found: install the dev extra (mypy)")
    files = [f"twilio_trigger/{module}.py" for module in modules]
    for name in files:
        if not (src / name).is_file():
            sys.exit(f"compiled.py: no module {name}")
    done = subprocess.run(  # noqa: S603 - our own tool, our own files
        [str(mypyc), *files], cwd=src, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        sys.exit(f"compiled.py: mypyc failed:\n{(done.stdout + done.stderr)[-3000:]}")
    shutil.rmtree(src / "build", ignore_errors=True)
    return src


def timed(mode: str, requests: int, path: Path | None) -> float:
    """µs per request of ``profile_inprocess.py``, on the copy at *path* or the tree."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    command = [
        sys.executable, str(HERE / "profile_inprocess.py"),
        "--mode", mode, "--requests", str(requests),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - our own script
        command, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    found = _MICROSECONDS.search(done.stdout)
    if done.returncode != 0 or found is None:
        sys.exit(f"compiled.py: the timed run failed:\n{(done.stdout + done.stderr)[-2000:]}")
    return float(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["inline", "dedup"], default="dedup")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--modules", default=",".join(MODULES))
    parser.add_argument("--keep", type=Path, help="leave the compiled copy in this folder")
    args = parser.parse_args()
    modules = [name.strip() for name in args.modules.split(",") if name.strip()]
    if args.keep is not None:
        if args.keep.exists():
            parser.error(f"--keep {args.keep}: it exists already")
        args.keep.mkdir(parents=True)
        folder = args.keep
    else:
        folder = Path(tempfile.mkdtemp(prefix="twilio-trigger-compiled-"))
    try:
        print(f"compiling {len(modules)} modules with mypyc ...", flush=True)
        src = compile_copy(folder, modules)
        compiled: list[float] = []
        plain: list[float] = []
        for _ in range(args.rounds):  # in turn, so that both see the machine alike
            compiled.append(timed(args.mode, args.requests, src))
            plain.append(timed(args.mode, args.requests, None))
        best_compiled, best_plain = statistics.median(compiled), statistics.median(plain)
        print(f"{args.mode}, as it is: {', '.join(f'{v:.1f}' for v in plain)} µs per request")
        print(f"{args.mode}, compiled: {', '.join(f'{v:.1f}' for v in compiled)} µs per request")
        print(
            f"median {best_compiled:.1f} against {best_plain:.1f} µs: "
            f"{best_compiled / best_plain - 1:+.0%} with {len(modules)} modules compiled"
        )
        if args.keep is not None:
            print(f"the compiled copy: PYTHONPATH={src}")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
