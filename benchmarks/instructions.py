"""Instructions per request of the listener's own work, counted by valgrind's callgrind.

Seconds measured in-process move by a microsecond or so from run to run on a shared
machine, more than many changes to the request path save; instructions counted by
callgrind are the same from run to run for the same code and input.  This drives
``listener.asgi`` as ``profile_inprocess.py`` does (signed status callbacks, each a new
SID), under ``valgrind --tool=callgrind`` twice, with *small* then *large* requests
after the same warm-up, and prints the difference divided by the difference in
requests: the instructions one request costs, start-up and warm-up left out.

    .venv/bin/python benchmarks/instructions.py [--mode inline|dedup] [--small 1000 --large 3000]

Takes about a minute (valgrind runs the interpreter some fifty times slower); needs
``valgrind`` (Debian's package).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def counted(mode: str, count: int, large: int) -> int:
    """The instructions of a whole run that sends *count* requests."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("instructions.py: valgrind is not installed (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory() as folder:
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={folder}/out",
            sys.executable, __file__, "--drive", str(count), "--mode", mode,
            "--large", str(large),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"instructions.py: the run under valgrind failed:\n{done.stderr[-2000:]}")
    return int(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["inline", "dedup"], default="dedup")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=3000)
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)  # the run under valgrind
    args = parser.parse_args()
    if args.drive is not None:
        # Both runs make as many requests (the larger count), so that only the
        # requests sent differ between them.
        drive(args.mode, args.drive, args.large)
        return
    if args.large <= args.small:
        parser.error("--large must be more than --small")
    small = counted(args.mode, args.small, args.large)
    large = counted(args.mode, args.large, args.large)
    per_request = (large - small) / (args.large - args.small)
    print(f"{args.mode}: {per_request:,.0f} instructions per request (callgrind)")


def drive(mode: str, count: int, made: int) -> None:
    """Build a listener, warm it up, make *made* requests and send *count* of them
    (the run under valgrind)."""
    import uvloop

    sys.path.insert(0, str(HERE))
    import profile_inprocess as harness

    import twilio_trigger as twilio

    listener = twilio.Listener(
        auth_tokens=[harness.TOKEN], deduplicate=mode != "inline", host="127.0.0.1"
    )
    listener.attach(harness.Delivered())
    app = listener.asgi
    warm, bodies = harness.requests(1000), harness.requests(made)
    uvloop.run(harness.drive(app, warm, 1000))
    uvloop.run(harness.drive(app, bodies, count))


if __name__ == "__main__":
    main()
