"""What ``import twilio_trigger`` loads: no server, no command line, no optional extra."""

from __future__ import annotations

import ast
import subprocess
import sys

NOT_LOADED = [
    "uvicorn",
    "click",
    "prometheus_client",
    "twilio_trigger._inspector",
    "redis",
    "psycopg",
    "psycopg_pool",
]


def loaded_by(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}; import sys; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))


def test_importing_the_package_loads_no_server_cli_metrics_or_inspector() -> None:
    loaded = loaded_by("import twilio_trigger")
    assert "twilio_trigger" in loaded
    for name in NOT_LOADED:
        found = sorted(m for m in loaded if m == name or m.startswith(name + "."))
        assert not found, found
    assert "twilio_trigger._server" not in loaded
    assert "twilio_trigger._edge" not in loaded


def test_building_a_listener_and_its_app_loads_no_server() -> None:
    loaded = loaded_by(
        "import twilio_trigger as t; l = t.Listener(0, verify_signatures=False); "
        "l.asgi; repr(l); l.port; l.url; l.inspector_url"
    )
    for name in NOT_LOADED:
        assert name not in loaded, name
