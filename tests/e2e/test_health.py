"""``/healthz`` and ``/readyz`` over real HTTP, and readiness through real outages.

Every test runs a real listener on a loopback port.  The SQLite inbox's folder is made
unwritable for real (``chattr +i`` as root, else ``chmod 0o555``); the Redis outages
stop a private ``redis-server`` (the ``own_redis`` fixture) and start it again on the
same port.  The readiness answer must say which part fails, and nothing more: why it
fails goes to the log, once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import encode_form, sign, signed_post, sms_status_payload
from tests.redis_support import RedisServer, own_redis

from ._support import LOGGER, TOKEN, CallRecorder, Recorder, SmsRecorder, running

pytestmark = pytest.mark.usefixtures("no_listener_options")


__all__ = ["own_redis"]  # the fixture, imported for pytest to find

ALIVE = {"status": "alive"}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def base(listener: twilio.Listener) -> str:
    return f"http://127.0.0.1:{listener.port}"


def document(answer: httpx.Response) -> object:
    assert answer.headers["content-type"] == "application/json", answer.headers
    assert answer.headers["cache-control"] == "no-store"
    return json.loads(answer.text)


def probe(http: httpx.Client, listener: twilio.Listener) -> tuple[int, object, str]:
    answer = http.get(f"{base(listener)}/readyz")
    return answer.status_code, document(answer), answer.text


def wait_for_status(
    http: httpx.Client, listener: twilio.Listener, status: int, timeout: float = 10.0
) -> tuple[object, str]:
    """Probe ``/readyz`` until it answers *status*; its document and text then."""
    deadline = time.monotonic() + timeout
    seen: list[int] = []
    while True:
        code, found, text = probe(http, listener)
        if code == status:
            return found, text
        seen.append(code)
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz never answered {status} in {timeout} s: {seen}")
        time.sleep(0.05)


def readiness_warnings(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER
        and record.levelno == logging.WARNING
        and record.getMessage().startswith(start)
    ]


# -- alive and ready ---------------------------------------------------------------------
def test_healthz_and_readyz_answer_get_and_head(http: httpx.Client, recorder: Recorder) -> None:
    with running(SmsRecorder(recorder), CallRecorder(recorder)) as listener:
        alive = http.get(f"{base(listener)}/healthz")
        assert alive.status_code == 200
        assert document(alive) == ALIVE
        ready = http.get(f"{base(listener)}/readyz")
        assert ready.status_code == 200
        assert document(ready) == {"status": "ready", "checks": {"store": "ok"}}
        for path in ("/healthz", "/readyz"):
            head = http.head(f"{base(listener)}{path}")
            assert head.status_code == 200, path
            assert head.content == b"", path
            assert head.headers["content-type"] == "application/json", path
            query = http.get(f"{base(listener)}{path}?verbose=1")
            assert query.status_code == 200, path
    assert recorder.calls == []


def test_readyz_checks_the_inbox_too(http: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    inbox = f"sqlite:///{tmp_path / 'inbox' / 'events.db'}"
    with running(SmsRecorder(Recorder()), inbox=inbox) as listener:
        code, found, _ = probe(http, listener)
        assert code == 200
        assert found == {"status": "ready", "checks": {"inbox": "ok", "store": "ok"}}
    # The probe leaves no file of its own behind in the inbox's folder.
    leftovers = [p.name for p in (tmp_path / "inbox").iterdir() if "ready" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_and_never_dispatch(
    http: httpx.Client, recorder: Recorder, method: str
) -> None:
    with running(SmsRecorder(recorder), CallRecorder(recorder)) as listener:
        for path in ("/healthz", "/readyz"):
            url = f"{base(listener)}{path}"
            # A validly signed event, for this very URL: still not a webhook.
            params = sms_status_payload("delivered")
            answer = http.request(
                method,
                url,
                content=encode_form(params),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": sign(url, params, TOKEN),
                },
            )
            assert answer.status_code == 405, (method, path)
            assert answer.headers["allow"] == "GET, HEAD"
        # The webhook itself still works, and only it dispatches.
        assert signed_post(listener.url, sms_status_payload("sent"), TOKEN).status_code == 200
    assert [call.callback for call in recorder.calls] == ["on_sent"]


def test_probes_never_dispatch(http: httpx.Client, recorder: Recorder) -> None:
    with running(SmsRecorder(recorder), CallRecorder(recorder)) as listener:
        for _ in range(5):
            for path in ("/healthz", "/readyz"):
                assert http.get(f"{base(listener)}{path}").status_code == 200
                assert http.head(f"{base(listener)}{path}").status_code == 200
    assert recorder.calls == []


def test_health_off_means_404_on_both(http: httpx.Client, recorder: Recorder) -> None:
    with running(SmsRecorder(recorder), health=False) as listener:
        for path in ("/healthz", "/readyz"):
            assert http.get(f"{base(listener)}{path}").status_code == 404, path
            assert http.head(f"{base(listener)}{path}").status_code == 404, path
        assert signed_post(listener.url, sms_status_payload("sent"), TOKEN).status_code == 200
    assert len(recorder.calls) == 1


def test_health_off_from_the_environment(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_TRIGGER_HEALTH", "false")
    with running(SmsRecorder(Recorder())) as listener:
        assert http.get(f"{base(listener)}/healthz").status_code == 404
        assert http.get(f"{base(listener)}/readyz").status_code == 404


def test_custom_paths(http: httpx.Client, recorder: Recorder) -> None:
    with running(
        SmsRecorder(recorder), path="/twilio", healthz_path="/live", readyz_path="/ops/ready"
    ) as listener:
        assert document(http.get(f"{base(listener)}/live")) == ALIVE
        ready = http.get(f"{base(listener)}/ops/ready")
        assert ready.status_code == 200
        assert document(ready) == {"status": "ready", "checks": {"store": "ok"}}
        for old in ("/healthz", "/readyz"):
            assert http.get(f"{base(listener)}{old}").status_code == 404, old
        assert signed_post(listener.url, sms_status_payload("sent"), TOKEN).status_code == 200
    assert len(recorder.calls) == 1


def test_custom_paths_from_the_environment(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_TRIGGER_HEALTHZ_PATH", "/k8s/live")
    monkeypatch.setenv("TWILIO_TRIGGER_READYZ_PATH", "/k8s/ready")
    with running(SmsRecorder(Recorder())) as listener:
        assert document(http.get(f"{base(listener)}/k8s/live")) == ALIVE
        assert http.get(f"{base(listener)}/k8s/ready").status_code == 200
        assert http.get(f"{base(listener)}/healthz").status_code == 404


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"path": "/healthz"}, "healthz_path"),
        ({"path": "/readyz"}, "readyz_path"),
        ({"path": "/twilio", "healthz_path": "/twilio"}, "healthz_path"),
        ({"path": "/twilio", "readyz_path": "/twilio"}, "readyz_path"),
        ({"healthz_path": "/probe", "readyz_path": "/probe"}, "readyz_path"),
        ({"metrics": True, "metrics_path": "/healthz"}, "metrics_path"),
        ({"metrics": True, "path": "/metrics"}, "metrics_path"),
    ],
)
def test_a_path_served_twice_is_a_configuration_error(
    options: dict[str, object], named: str
) -> None:
    with pytest.raises(twilio.ConfigurationError, match=named):
        twilio.Listener(0, host="127.0.0.1", auth_tokens=[TOKEN], **options)  # type: ignore[arg-type]


def test_the_webhook_may_take_the_health_paths_when_health_is_off(
    http: httpx.Client, recorder: Recorder
) -> None:
    with running(SmsRecorder(recorder), path="/healthz", health=False) as listener:
        assert signed_post(listener.url, sms_status_payload("sent"), TOKEN).status_code == 200
        assert http.get(listener.url).status_code == 403  # the webhook's GET, unsigned
        assert http.put(listener.url).status_code == 405
    assert len(recorder.calls) == 1


# -- an inbox folder that stops being writable -------------------------------------------
def _writable(folder: Path) -> bool:
    try:
        handle, name = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[str]:
    """*folder* unwritable while the block runs: ``chattr +i`` (as root), else ``chmod``."""
    chattr = shutil.which("chattr")
    how = None
    if chattr is not None:
        done = subprocess.run(
            [chattr, "+i", str(folder)], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            how = "chattr +i"
    if how is None and os.geteuid() != 0:
        folder.chmod(0o555)
        how = "chmod 0o555"
    try:
        if how is None or _writable(folder):
            pytest.skip(
                f"cannot make {folder} unwritable: chattr "
                f"{'is missing' if chattr is None else 'is not permitted'} and, as root, "
                f"chmod does not stop this process from writing"
            )
        yield how
    finally:
        if how == "chattr +i":
            assert chattr is not None
            subprocess.run([chattr, "-i", str(folder)], check=True)
        elif how == "chmod 0o555":
            folder.chmod(0o755)


def test_readyz_fails_while_the_inbox_folder_is_unwritable(
    http: httpx.Client, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox-folder"
    folder.mkdir()
    database = folder / "events.db"
    with running(SmsRecorder(Recorder()), inbox=f"sqlite:///{database}") as listener:
        code, _, _ = probe(http, listener)
        assert code == 200
        with unwritable(folder):
            failing = []
            for _ in range(4):
                code, found, text = probe(http, listener)
                failing.append(code)
                assert found == {
                    "status": "unavailable",
                    "checks": {"inbox": "failing", "store": "ok"},
                }, text
                for secret in (str(folder), "events.db", "sqlite", "Error", "ermission", "rrno"):
                    assert secret not in text, (secret, text)
            assert failing == [503] * 4
            # The liveness probe does not care.
            assert document(http.get(f"{base(listener)}/healthz")) == ALIVE
        found, text = wait_for_status(http, listener, 200)
        assert found == {"status": "ready", "checks": {"inbox": "ok", "store": "ok"}}, text
        # The inbox still works.
        assert signed_post(listener.url, sms_status_payload("sent"), TOKEN).status_code == 200


def test_an_unwritable_inbox_folder_is_logged_once_until_it_recovers(
    http: httpx.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "inbox-folder"
    folder.mkdir()
    with running(SmsRecorder(Recorder()), inbox=f"sqlite:///{folder / 'events.db'}") as listener:
        assert probe(http, listener)[0] == 200
        caplog.clear()
        with unwritable(folder):
            assert [probe(http, listener)[0] for _ in range(4)] == [503] * 4
        wait_for_status(http, listener, 200)
    down = readiness_warnings(caplog, "not ready: the inbox")
    assert len(down) == 1, f"one warning expected over 4 failing probes, got {len(down)}: {down}"
    assert "PermissionError" in down[0], down
    back = readiness_warnings(caplog, "ready again: the inbox")
    assert len(back) == 1, back


# -- Redis that goes away and comes back ------------------------------------------------
@pytest.mark.parametrize("part", ["store", "inbox"])
def test_readyz_fails_while_redis_is_down_and_recovers(
    http: httpx.Client, own_redis: RedisServer, caplog: pytest.LogCaptureFixture, part: str
) -> None:
    prefix = f"tt-test-{uuid.uuid4().hex[:12]}:"
    options: dict[str, object] = {part: own_redis.url, "redis_prefix": prefix}
    if part == "inbox":
        options["redis_durability"] = "memory"  # this Redis keeps nothing on disk
    ok = {"store": {"store": "ok"}, "inbox": {"inbox": "ok", "store": "ok"}}[part]
    with running(SmsRecorder(Recorder()), **options) as listener:
        found, _ = wait_for_status(http, listener, 200)
        assert found == {"status": "ready", "checks": ok}
        caplog.clear()
        own_redis.stop()
        failing = dict(ok, **{part: "failing"})
        found, text = wait_for_status(http, listener, 503)
        probes = 1
        for _ in range(4):
            code, found, text = probe(http, listener)
            probes += 1
            assert code == 503, text
            assert found == {"status": "unavailable", "checks": failing}, text
            for secret in (own_redis.url, str(own_redis.port), "127.0.0.1", "Error", "refused"):
                assert secret not in text, (secret, text)
        down = readiness_warnings(caplog, f"not ready: the {part}")
        assert down, "no warning says why the listener is not ready"
        assert all("ConnectionError" in message or "Timeout" in message for message in down)
        assert len(down) < probes, f"a warning per probe: {down}"

        own_redis.start()
        found, text = wait_for_status(http, listener, 200)
        assert found == {"status": "ready", "checks": ok}, text
        assert len(readiness_warnings(caplog, f"ready again: the {part}")) == 1
        assert signed_post(listener.url, sms_status_payload("sent"), TOKEN).status_code == 200
