"""Every code sample of README.md and docs/ runs, so that none can drift from the code.

- A ``python`` block runs in a fresh interpreter, in a folder of its own, imported as a
  module: its imports, classes and services must load, and a listener it makes must
  accept its services.
- A ``python`` block that serves (``listener.run()``, or ``serve_forever()``) runs as a
  program instead, with ``TWILIO_TRIGGER_PORT`` set to a free port (or on the port
  ``<!-- sample: serve PORT -->`` names): it must answer ``GET /healthz`` there, and
  stop on SIGINT.
- A ``python`` block after ``<!-- sample: pytest -->`` is a test file: pytest runs it
  from the checkout's root, with no plugin, and every test in it must pass.
- A ``python`` block after ``<!-- sample: django -->`` is a Django URL configuration:
  a project is made around it and a signed webhook posted to its URL must reach the
  listener.
- A ``sh`` block's ``twilio-trigger`` commands must parse: the command exists, and so
  does each of its options, with a value of the right type.
- Other blocks (``text``, ``json``, ``yaml``) are sample output and are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from twilio_trigger.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TOKEN = "a-token-for-the-docs-samples"
SERVES = re.compile(r"^\s*(listener\.run\(\)|.*\.serve_forever\(\))", re.M)
FENCE = re.compile(
    r"(?:<!-- sample: (?P<mode>[^>]*?) -->\n+)?^```(?P<lang>\w*)\n(?P<code>.*?)^```$", re.M | re.S
)


@dataclass(frozen=True)
class Sample:
    page: Path
    line: int
    lang: str
    mode: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def serves(self) -> bool:
        return self.mode.startswith("serve") or bool(SERVES.search(self.code))


def _samples() -> list[Sample]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start("code"))
            found.append(Sample(page, line, match["lang"], match["mode"] or "", match["code"]))
    return found


SAMPLES = _samples()
PYTHON = [s for s in SAMPLES if s.lang == "python"]
SHELL = [s for s in SAMPLES if s.lang in {"sh", "bash", "console"}]


def _environment(tmp_path: Path, port: int = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_TRIGGER_")}
    env.update(
        TWILIO_AUTH_TOKEN=TOKEN,
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        # What a sample reads from its environment, pointing nowhere it could write.
        DATABASE_URL="postgresql://docs@127.0.0.1:9/docs",
        PYTHONDONTWRITEBYTECODE="1",
        TWILIO_TRIGGER_HOST="127.0.0.1",
        TWILIO_TRIGGER_PORT=str(port),
    )
    return env


def _run(
    args: list[str], tmp_path: Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd or tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_pages_have_samples_of_every_mode() -> None:
    modes = {s.mode.split()[0] if s.mode else "serve" if s.serves else "" for s in PYTHON}
    assert {"", "serve", "pytest", "django"} <= modes, modes
    assert len(PYTHON) >= 25, len(PYTHON)
    assert len(SHELL) >= 8, len(SHELL)


def test_readme_shows_the_example_it_names() -> None:
    readme = next(s for s in PYTHON if s.page.name == "README.md")
    example = (ROOT / "examples" / "delivery_tracker.py").read_text(encoding="utf-8")
    assert example.endswith(readme.code), "README's example differs from delivery_tracker.py"


@pytest.mark.parametrize(
    "sample", [s for s in PYTHON if not s.mode and not s.serves], ids=lambda s: s.name
)
def test_a_python_sample_loads(sample: Sample, tmp_path: Path) -> None:
    (tmp_path / "docs_sample.py").write_text(sample.code, encoding="utf-8")
    result = _run([sys.executable, "-c", "import docs_sample"], tmp_path)
    assert result.returncode == 0, f"{sample.name} failed:\n{result.stderr[-3000:]}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("sample", [s for s in PYTHON if s.serves], ids=lambda s: s.name)
def test_a_serving_sample_serves(sample: Sample, tmp_path: Path) -> None:
    named = sample.mode.split()[1:]
    port = int(named[0]) if named else _free_port()
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            pytest.fail(f"port {port} is taken: {sample.name} needs it")
    (tmp_path / "docs_sample.py").write_text(sample.code, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "docs_sample.py"],
        cwd=tmp_path,
        env=_environment(tmp_path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        answer = _first_answer(port, process)
        assert answer.startswith("HTTP/1."), answer
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    assert "Traceback" not in stderr or "KeyboardInterrupt" in stderr, stderr[-3000:]


def _first_answer(port: int, process: subprocess.Popen[str]) -> str:
    """The status line of an answer to ``GET /healthz`` on *port*, once it serves."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the sample ended ({process.returncode}): {process.stderr.read()[-3000:]}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                return conn.recv(200).decode("latin-1").split("\r\n", 1)[0]
        except OSError:
            time.sleep(0.05)  # polling for the port to open: waits for state, bounded above
    pytest.fail(f"nothing served on port {port} within 60 s")


@pytest.mark.parametrize("sample", [s for s in PYTHON if s.mode == "pytest"], ids=lambda s: s.name)
def test_a_test_sample_passes(sample: Sample, tmp_path: Path) -> None:
    (tmp_path / "test_docs_sample.py").write_text(sample.code, encoding="utf-8")
    result = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error",
         str(tmp_path / "test_docs_sample.py")],
        tmp_path,
        cwd=ROOT,  # as from a checkout: a test may open examples/...
    )  # fmt: skip
    assert result.returncode == 0, f"{sample.name}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
    assert re.search(r"\b[1-9]\d* passed\b", result.stdout), result.stdout


DJANGO_CHECK = """
from urllib.parse import urlencode

import django
from django.conf import settings

settings.configure(
    ROOT_URLCONF="myproject.urls", ALLOWED_HOSTS=["testserver"], SECRET_KEY="docs", DEBUG=False
)
django.setup()

from django.test import Client
from django.urls import resolve

import twilio_trigger.testing as kit
from myproject.twilio import listener, seen

route = resolve("/hooks/twilio/").route
url = "http://testserver/" + route
params = kit.sms_status_params("delivered")
answer = Client().post(
    "/" + route,
    urlencode(params),
    content_type="application/x-www-form-urlencoded",
    HTTP_X_TWILIO_SIGNATURE=kit.sign(url, params, "{token}"),
)
assert answer.status_code == 200, (answer.status_code, answer.content)
assert seen == [params["MessageSid"]], seen
"""

DJANGO_SERVICES = """
import twilio_trigger as twilio

listener = twilio.Listener(auth_tokens=["{token}"])
seen = []


@listener.service
class Tracker(twilio.SmsStatusService):
    def on_delivered(self, event):
        seen.append(event.message_sid)
"""


@pytest.mark.parametrize("sample", [s for s in PYTHON if s.mode == "django"], ids=lambda s: s.name)
def test_a_django_sample_routes_a_webhook(sample: Sample, tmp_path: Path) -> None:
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "__init__.py").write_text("", encoding="utf-8")
    (project / "twilio.py").write_text(DJANGO_SERVICES.format(token=TOKEN), encoding="utf-8")
    (project / "urls.py").write_text(sample.code, encoding="utf-8")
    (tmp_path / "check.py").write_text(DJANGO_CHECK.format(token=TOKEN), encoding="utf-8")
    result = _run([sys.executable, "check.py"], tmp_path)
    assert result.returncode == 0, f"{sample.name}:\n{result.stderr[-3000:]}"


def _commands(code: str) -> list[list[str]]:
    """The ``twilio-trigger`` command lines of a shell block, as argument lists."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"\w+=.*", words[0]):  # VAR=value before the command
            words.pop(0)
        if words and words[0] == "twilio-trigger":
            found.append(words[1:])
    return found


def _parse(args: list[str]) -> None:
    """Parse *args* as click would, down to the last subcommand, without running it."""
    group: click.Command = cli
    context = group.make_context("twilio-trigger", list(args))
    while isinstance(group, click.Group):
        rest = [*context._protected_args, *context.args]
        if not rest:
            return
        name, command, rest = group.resolve_command(context, rest)
        assert command is not None
        assert name is not None
        context = command.make_context(name, rest, parent=context)
        group = command


@pytest.mark.parametrize("sample", SHELL, ids=lambda s: s.name)
def test_a_shell_sample_s_commands_parse(sample: Sample, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    for args in _commands(sample.code):
        try:
            _parse(args)
        except click.ClickException as error:
            pytest.fail(
                f"{sample.name}: twilio-trigger {shlex.join(args)}: {error.format_message()}"
            )
