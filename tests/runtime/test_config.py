"""Listener options: explicit argument, then environment, then default."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import twilio_trigger
from twilio_trigger import ConfigurationError, Listener
from twilio_trigger._config import ENVIRONMENT, Settings
from twilio_trigger._options import OPTIONS

# option: (explicit value, its parsed form, environment variable, its text, its parsed form,
#          the default)
PRECEDENCE: dict[str, tuple[object, object, str, str, object, object]] = {
    "port": (1234, 1234, "TWILIO_TRIGGER_PORT", "2345", 2345, 8090),
    "host": ("127.0.0.1", "127.0.0.1", "TWILIO_TRIGGER_HOST", "10.0.0.1", "10.0.0.1", "0.0.0.0"),
    "path": ("/explicit", "/explicit", "TWILIO_TRIGGER_PATH", "/from-env", "/from-env", "/"),
    "auth_tokens": (["x1", "x2"], ("x1", "x2"), "TWILIO_AUTH_TOKEN", "e1", ("e1",), ()),
    "public_url": (
        "https://a.example/hook",
        "https://a.example/hook",
        "TWILIO_TRIGGER_PUBLIC_URL",
        "https://b.example/env",
        "https://b.example/env",
        None,
    ),
    "verify_signatures": (True, True, "TWILIO_TRIGGER_VERIFY_SIGNATURES", "false", False, True),
    "max_body_bytes": (100, 100, "TWILIO_TRIGGER_MAX_BODY_BYTES", "200", 200, 256 * 1024),
    "max_params": (10, 10, "TWILIO_TRIGGER_MAX_PARAMS", "20", 20, 1000),
    "shutdown_timeout": (5, 5.0, "TWILIO_TRIGGER_SHUTDOWN_TIMEOUT", "2.5", 2.5, 30.0),
    "max_head_bytes": (8192, 8192, "TWILIO_TRIGGER_MAX_HEAD_BYTES", "4096", 4096, 32 * 1024),
    "max_headers": (50, 50, "TWILIO_TRIGGER_MAX_HEADERS", "60", 60, 100),
    "head_timeout": (5, 5.0, "TWILIO_TRIGGER_HEAD_TIMEOUT", "2.5", 2.5, 10.0),
    "body_timeout": (5, 5.0, "TWILIO_TRIGGER_BODY_TIMEOUT", "20", 20.0, 30.0),
    "keepalive_timeout": (1, 1.0, "TWILIO_TRIGGER_KEEPALIVE_TIMEOUT", "75", 75.0, 5.0),
    "max_connections": (10, 10, "TWILIO_TRIGGER_MAX_CONNECTIONS", "20", 20, 1000),
    "file_mode": (0o640, 0o640, "TWILIO_TRIGGER_FILE_MODE", "0660", 0o660, 0o600),
    "redis_durability": (
        "memory",
        "memory",
        "TWILIO_TRIGGER_REDIS_DURABILITY",
        "Replicas:2",
        "replicas:2",
        "fsync",
    ),
    "redis_wait_timeout": (1, 1.0, "TWILIO_TRIGGER_REDIS_WAIT_TIMEOUT", "0.5", 0.5, 2.0),
    "concurrency": (2, 2, "TWILIO_TRIGGER_CONCURRENCY", "8", 8, 4),
    "max_attempts": (2, 2, "TWILIO_TRIGGER_MAX_ATTEMPTS", "9", 9, 5),
    "redis_prefix": ("a:", "a:", "TWILIO_TRIGGER_REDIS_PREFIX", "b:", "b:", "twilio-trigger:"),
    "dedup_ttl": (60, 60.0, "TWILIO_TRIGGER_DEDUP_TTL", "120", 120.0, 86400.0),
    "inbox": (
        "sqlite:///a.db",
        "sqlite:///a.db",
        "TWILIO_TRIGGER_INBOX",
        " redis://cache:6379/0 ",
        "redis://cache:6379/0",
        None,
    ),
}


@pytest.mark.parametrize("option", sorted(PRECEDENCE))
def test_explicit_beats_environment_beats_default(option: str) -> None:
    explicit, parsed, variable, text, from_env, default = PRECEDENCE[option]
    environ = {variable: text}
    assert getattr(Settings.resolve({option: explicit}, environ), option) == parsed
    assert getattr(Settings.resolve({option: explicit}, {}), option) == parsed
    assert getattr(Settings.resolve({}, environ), option) == from_env
    assert getattr(Settings.resolve({option: None}, environ), option) == from_env
    assert getattr(Settings.resolve({}, {}), option) == default
    assert getattr(Settings.resolve({}, {variable: "   "}), option) == default


def test_an_explicit_false_or_zero_is_not_mistaken_for_absent() -> None:
    environ = {"TWILIO_TRIGGER_VERIFY_SIGNATURES": "true", "TWILIO_TRIGGER_PORT": "9999"}
    settings = Settings.resolve({"verify_signatures": False, "port": 0}, environ)
    assert settings.verify_signatures is False
    assert settings.port == 0


def test_resolve_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_TRIGGER_PORT", "4321")
    assert Settings.resolve({}).port == 4321


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("a, b,,a", ("a", "b")),
        ("solo", ("solo",)),
        (" spaced ", ("spaced",)),
        (",,", ()),
    ],
)
def test_auth_tokens_from_the_environment(text: str, tokens: tuple[str, ...]) -> None:
    assert Settings.resolve({}, {"TWILIO_AUTH_TOKEN": text}).auth_tokens == tokens


def test_auth_tokens_given_explicitly() -> None:
    assert Settings.resolve({"auth_tokens": "a,b"}, {}).auth_tokens == ("a", "b")
    assert Settings.resolve({"auth_tokens": ("b", "a", "b")}, {}).auth_tokens == ("b", "a")
    with pytest.raises(ConfigurationError, match="auth_tokens"):
        Settings.resolve({"auth_tokens": [1, 2]}, {})
    with pytest.raises(ConfigurationError, match="auth_tokens"):
        Settings.resolve({"auth_tokens": 12}, {})


@pytest.mark.parametrize(
    ("option", "variable", "bad"),
    [
        ("port", "TWILIO_TRIGGER_PORT", "x"),
        ("port", "TWILIO_TRIGGER_PORT", "70000"),
        ("port", "TWILIO_TRIGGER_PORT", "-1"),
        ("path", "TWILIO_TRIGGER_PATH", "nope"),
        ("path", "TWILIO_TRIGGER_PATH", "/a?b=1"),
        ("verify_signatures", "TWILIO_TRIGGER_VERIFY_SIGNATURES", "maybe"),
        ("max_body_bytes", "TWILIO_TRIGGER_MAX_BODY_BYTES", "0"),
        ("max_body_bytes", "TWILIO_TRIGGER_MAX_BODY_BYTES", "lots"),
        ("max_params", "TWILIO_TRIGGER_MAX_PARAMS", "0"),
        ("shutdown_timeout", "TWILIO_TRIGGER_SHUTDOWN_TIMEOUT", "soon"),
        ("shutdown_timeout", "TWILIO_TRIGGER_SHUTDOWN_TIMEOUT", "-1"),
        ("shutdown_timeout", "TWILIO_TRIGGER_SHUTDOWN_TIMEOUT", "nan"),
        ("public_url", "TWILIO_TRIGGER_PUBLIC_URL", "ftp://example.com/"),
    ],
)
def test_a_bad_environment_value_names_the_variable(option: str, variable: str, bad: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.resolve({}, {variable: bad})
    assert variable in str(caught.value)


@pytest.mark.parametrize(
    ("option", "bad"),
    [
        ("port", "x"),
        ("port", 70000),
        ("port", True),
        ("port", 80.0),
        ("host", "  "),
        ("path", "nope"),
        ("verify_signatures", "maybe"),
        ("max_body_bytes", 0),
        ("max_params", -5),
        ("shutdown_timeout", "never"),
        ("shutdown_timeout", True),
        ("public_url", "example.com/hook"),
    ],
)
def test_a_bad_explicit_value_names_the_option(option: str, bad: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.resolve({option: bad}, {})
    message = str(caught.value)
    assert re.search(rf"\b{option}\b", message)
    assert "TWILIO_" not in message  # the value did not come from the environment


def test_configuration_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="port"):
        Settings.resolve({"port": "x"}, {})


@pytest.mark.parametrize(("text", "flag"), [("1", True), ("yes", True), ("ON", True), ("0", False)])
def test_booleans_from_the_environment(text: str, flag: bool) -> None:
    settings = Settings.resolve({}, {"TWILIO_TRIGGER_VERIFY_SIGNATURES": text})
    assert settings.verify_signatures is flag


# -- public_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://example.com/hook", "https://example.com/hook"),
        ("https://example.com/hook#rc=2&rp=5xx", "https://example.com/hook"),
        ("https://user:pass@example.com/hook", "https://example.com/hook"),
        ("https://user:pass@example.com:8443/hook#frag", "https://example.com:8443/hook"),
        ("  http://example.com:8080/a/b  ", "http://example.com:8080/a/b"),
        ("https://[::1]:8443/hook", "https://[::1]:8443/hook"),
    ],
)
def test_public_url_is_reduced_to_what_twilio_signs(given: str, kept: str) -> None:
    assert Settings.resolve({"public_url": given}, {}).public_url == kept
    from_env = Settings.resolve({}, {"TWILIO_TRIGGER_PUBLIC_URL": given}).public_url
    assert from_env == kept


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("https://example.com/hook?a=1", "query"),
        ("ftp://example.com/hook", "http"),
        ("example.com/hook", "http"),
        ("https:///hook", "http"),
        ("https://example.com:99999/hook", "port"),
        ("https://example.com:abc/hook", "port"),
    ],
)
def test_bad_public_urls_are_refused(bad: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason) as caught:
        Settings.resolve({"public_url": bad}, {})
    assert "public_url" in str(caught.value)


# -- secrets ---------------------------------------------------------------------------

SECRET = "s3cr3t-auth-token-value"


def test_repr_never_shows_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = Settings.resolve({"auth_tokens": [SECRET, "other-" + SECRET]}, {})
    from_env = Settings.resolve({}, {"TWILIO_AUTH_TOKEN": SECRET})
    assert explicit.auth_tokens == (SECRET, "other-" + SECRET)
    assert from_env.auth_tokens == (SECRET,)
    for settings in (explicit, from_env):
        assert SECRET not in repr(settings)
        assert SECRET not in str(settings)
        assert "port=8090" in repr(settings)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", SECRET)
    listener = Listener(0)
    assert listener.settings.auth_tokens == (SECRET,)
    assert SECRET not in repr(listener)
    assert SECRET not in repr(listener.settings)


def test_settings_are_frozen() -> None:
    settings = Settings.resolve({}, {})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


# -- the listener ----------------------------------------------------------------------

ALL_VARIABLES = [
    "TWILIO_TRIGGER_PORT",
    "TWILIO_TRIGGER_HOST",
    "TWILIO_TRIGGER_PATH",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_TRIGGER_PUBLIC_URL",
    "TWILIO_TRIGGER_VERIFY_SIGNATURES",
    "TWILIO_TRIGGER_MAX_BODY_BYTES",
    "TWILIO_TRIGGER_MAX_PARAMS",
]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in ALL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_a_listener_without_a_token_refuses_to_build_its_app(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    listener = Listener(0)
    with pytest.raises(ConfigurationError, match="TWILIO_AUTH_TOKEN"):
        listener.asgi  # noqa: B018 - the property builds the app
    with pytest.raises(ConfigurationError, match="TWILIO_AUTH_TOKEN"):
        Listener(0, auth_tokens=[" ", ""]).asgi  # noqa: B018


def test_a_listener_without_verification_needs_no_token(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    assert callable(Listener(0, verify_signatures=False).asgi)
    clean_environment.setenv("TWILIO_TRIGGER_VERIFY_SIGNATURES", "false")
    assert callable(Listener(0).asgi)


def test_a_listener_takes_its_token_from_the_environment(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("TWILIO_AUTH_TOKEN", "from-env")
    listener = Listener(0)
    assert listener.settings.auth_tokens == ("from-env",)
    assert callable(listener.asgi)


def test_a_listener_reads_its_options_from_the_environment(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("TWILIO_TRIGGER_PATH", "/twilio")
    clean_environment.setenv("TWILIO_TRIGGER_PORT", "not a port")
    assert Listener(0, auth_tokens="t").settings.path == "/twilio"  # explicit port wins
    with pytest.raises(ConfigurationError, match="TWILIO_TRIGGER_PORT"):
        Listener(auth_tokens="t")


# -- shared keys -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        ({"wk1": "s1", "wk2": "s2="}, (("wk1", "s1"), ("wk2", "s2="))),
        (["s1", "s2=="], (("", "s1"), ("", "s2=="))),
        ("wk1=s1, wk2=abc==", (("wk1", "s1"), ("wk2", "abc=="))),
        ("abc==", (("", "abc=="),)),  # a bare base64 secret, not the id "abc"
        ("", ()),
    ],
)
def test_shared_keys_are_read_from_a_mapping_a_list_or_a_string(
    given: object, resolved: tuple[tuple[str, str], ...]
) -> None:
    assert Settings.resolve({"shared_keys": given}, {}).shared_keys == resolved


def test_shared_keys_come_from_the_environment_and_never_show_in_repr() -> None:
    settings = Settings.resolve({}, {"TWILIO_TRIGGER_SHARED_KEYS": "wk1=top-secret"})
    assert settings.shared_keys == (("wk1", "top-secret"),)
    assert "top-secret" not in repr(settings)


@pytest.mark.parametrize("given", ["wk1=s1,bare", 42, [1, 2]])
def test_bad_shared_keys_are_refused(given: object) -> None:
    with pytest.raises(ConfigurationError, match="shared_keys"):
        Settings.resolve({"shared_keys": given}, {})


@pytest.mark.parametrize(
    ("option", "bad"),
    [
        ("max_head_bytes", 100),
        ("max_headers", 0),
        ("head_timeout", 0),
        ("body_timeout", -1),
        ("keepalive_timeout", "soon"),
        ("max_connections", 0),
        ("file_mode", "999"),
        ("file_mode", "0400"),  # the owner could not write its own inbox
        ("file_mode", 0o1777),
        ("redis_durability", "disk"),
        ("redis_durability", "replicas:0"),
        ("redis_durability", "replicas:x"),
        ("redis_wait_timeout", 0),
    ],
)
def test_bad_edge_durability_and_file_options_are_refused(option: str, bad: object) -> None:
    with pytest.raises(ConfigurationError, match=option):
        Settings.resolve({option: bad}, {})


@pytest.mark.parametrize(
    ("option", "url"),
    [
        ("inbox", "redis//:hunter2-secret@cache.internal:6379/0"),
        ("inbox", "rediss:/ops:hunter2-secret@cache.internal/0"),
        ("inbox", "mysql://ops:hunter2-secret@db.internal/app"),
        ("inbox", "sqlite://ops:hunter2-secret@x"),
        ("store", "redis:/:hunter2-secret@cache.internal:6379/0"),
        ("store", "https://ops:hunter2-secret@cache.internal/"),
        ("store", "cache.internal?password=hunter2-secret"),
    ],
)
def test_a_mistyped_url_is_never_echoed_with_its_password(option: str, url: str) -> None:
    for given, environ in (({option: url}, {}), ({}, {f"TWILIO_TRIGGER_{option.upper()}": url})):
        with pytest.raises(ConfigurationError) as caught:
            Settings.resolve(given, environ)
        message = str(caught.value)
        assert "hunter2" not in message
        assert "***" in message, message
        assert "cache.internal" in message or "db.internal" in message or "x" in message


# -- the inbox URL: its form only ------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///events.db",
        "sqlite:////var/lib/app/events.db",
        "sqlite:////var/lib/app/events.db?create_folders=1",
        "redis://127.0.0.1:6379/0",
        "rediss://ops:secret@cache.internal:6380/1",
    ],
)
def test_an_inbox_url_of_a_known_form_is_taken_as_given(url: str) -> None:
    assert Settings.resolve({"inbox": url}, {}).inbox == url


def test_an_inbox_url_is_checked_without_opening_the_inbox(tmp_path: Path) -> None:
    # Its folder does not exist: opening the inbox says so, not resolving the options.
    url = f"sqlite:///{tmp_path}/not/yet/events.db"
    assert Settings.resolve({"inbox": url}, {}).inbox == url
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite:events.db", "redis://", "memory", "file:///x.db"]
)
def test_an_inbox_url_of_another_form_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="inbox must be a URL such as sqlite:///"):
        Settings.resolve({"inbox": url}, {})
    with pytest.raises(ConfigurationError, match="TWILIO_TRIGGER_INBOX must be a URL"):
        Settings.resolve({}, {"TWILIO_TRIGGER_INBOX": url})


def test_the_settings_depend_only_on_the_core() -> None:
    # _config and _options sit below the webhook, the inbox and the server.
    import ast

    package = Path(twilio_trigger.__file__).parent
    for name in ("_config.py", "_options.py", "_option_parsers.py", "_limits.py"):
        tree = ast.parse((package / name).read_text(encoding="utf-8"))
        imported = {
            node.module or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level
            for alias in node.names
        }
        above = {m for m in imported if not m.startswith("_core")}
        below = {"_exceptions", "_limits", "_logging", "_options", "_option_parsers"}
        assert above <= below, (name, imported)


# -- Settings: the new options ----------------------------------------------------------
NEW_OPTIONS = (
    "health", "healthz_path", "readyz_path", "metrics", "metrics_path", "metrics_port",
    "metrics_host", "event_log_level", "log_format", "log_level",
)  # fmt: skip


def test_new_options_defaults() -> None:
    settings = Settings.resolve({}, {})
    assert {name: getattr(settings, name) for name in NEW_OPTIONS} == {
        "health": True,
        "healthz_path": "/healthz",
        "readyz_path": "/readyz",
        "metrics": False,
        "metrics_path": "/metrics",
        "metrics_port": None,
        "metrics_host": None,
        "event_log_level": "info",
        "log_format": "text",
        "log_level": "info",
    }


@pytest.mark.parametrize(
    ("option", "text", "parsed"),
    [
        ("health", "off", False),
        ("healthz_path", "/live", "/live"),
        ("readyz_path", "/ready", "/ready"),
        ("metrics", "yes", True),
        ("metrics_path", "/prom", "/prom"),
        ("metrics_port", "9100", 9100),
        ("metrics_host", "10.0.0.5", "10.0.0.5"),
        ("event_log_level", "DEBUG", "debug"),
        ("log_format", " JSON ", "json"),
        ("log_level", "Warning", "warning"),
    ],
)
def test_each_new_option_from_its_environment_variable(
    option: str, text: str, parsed: object
) -> None:
    variable = ENVIRONMENT[option]
    assert variable.startswith("TWILIO_TRIGGER_")
    assert getattr(Settings.resolve({}, {variable: text}), option) == parsed
    assert getattr(Settings.resolve({option: text}, {}), option) == parsed


@pytest.mark.parametrize(
    ("option", "bad", "says"),
    [
        ("event_log_level", "loud", "debug, info, warning, error or critical"),
        ("log_level", "verbose", "debug, info, warning, error or critical"),
        ("log_level", "  ", None),
        ("log_format", "xml", "text or json"),
        ("log_format", "logfmt", "text or json"),
        ("metrics_port", 70000, "between 0 and 65535"),
        ("metrics_port", -1, "between 0 and 65535"),
        ("metrics_port", "ninety", "whole number"),
        ("metrics_port", True, "whole number"),
        ("metrics", "maybe", "true or false"),
        ("health", "perhaps", "true or false"),
        ("healthz_path", "healthz", "path"),
        ("readyz_path", "/ready?full=1", "path"),
        ("metrics_path", "metrics", "path"),
        ("metrics_host", "  ", "empty"),
    ],
)
def test_bad_values_of_new_options_are_refused(option: str, bad: object, says: str | None) -> None:
    with pytest.raises(ConfigurationError, match=option) as caught:
        Settings.resolve({option: bad}, {})
    if says is not None:
        assert says in str(caught.value)
    if isinstance(bad, str) and bad.strip():
        variable = ENVIRONMENT[option]
        with pytest.raises(ConfigurationError, match=variable):
            Settings.resolve({}, {variable: bad})


@pytest.mark.parametrize("option", ["event_log_level", "log_level", "log_format"])
def test_an_empty_variable_counts_as_absent(option: str) -> None:
    assert getattr(Settings.resolve({}, {ENVIRONMENT[option]: "  "}), option) in ("info", "text")


@pytest.mark.parametrize("option", ["event_log_level", "log_level", "log_format"])
def test_the_listener_refuses_bad_log_options(option: str) -> None:
    with pytest.raises(ConfigurationError, match=option):
        Listener(0, auth_tokens=["t"], **{option: "nonsense"})  # type: ignore[arg-type]


@pytest.mark.parametrize("port", [0, 9100, "9100"])
def test_a_metrics_port_asks_for_metrics(port: object) -> None:
    settings = Settings.resolve({"metrics_port": port}, {})
    assert settings.metrics is True
    assert settings.metrics_port == int(str(port))
    from_env = Settings.resolve({}, {"TWILIO_TRIGGER_METRICS_PORT": str(port)})
    assert (from_env.metrics, from_env.metrics_port) == (True, int(str(port)))


def test_metrics_said_off_stays_off_even_with_a_port() -> None:
    assert Settings.resolve({"metrics": False, "metrics_port": 9100}, {}).metrics is False
    environ = {"TWILIO_TRIGGER_METRICS": "false", "TWILIO_TRIGGER_METRICS_PORT": "9100"}
    assert Settings.resolve({}, environ).metrics is False


def test_the_metrics_path_only_conflicts_where_it_is_served() -> None:
    with pytest.raises(ConfigurationError, match="metrics_path and path"):
        Settings.resolve({"metrics": True, "metrics_path": "/"}, {})
    # On a port of their own, or off, the path is free.
    assert Settings.resolve({"metrics_port": 9100, "metrics_path": "/"}, {}).metrics_path == "/"
    assert Settings.resolve({"metrics_path": "/"}, {}).metrics is False


def test_the_health_paths_only_conflict_when_served() -> None:
    with pytest.raises(ConfigurationError, match="healthz_path and path"):
        Settings.resolve({"path": "/healthz"}, {})
    with pytest.raises(ConfigurationError, match="readyz_path and healthz_path"):
        Settings.resolve({"readyz_path": "/healthz"}, {})
    assert Settings.resolve({"path": "/healthz", "health": False}, {}).path == "/healthz"


def test_a_variable_nearly_an_options_is_warned_of_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Else ignored without a word: the listener serves on 8090, not on 8097.
    caplog.set_level(logging.WARNING, logger="twilio_trigger")
    env = {
        "TWILIO_TRIGGER_PROTT": "8097",
        "TWILIO_AUTH_TOKENS": "a-token",
        "TWILIO_TRIGGER_REQUIRE_REDIS": "1",  # the test suite's own: nothing like an option
        "TWILIO_TRIGGER_TARGET": "app",  # what `run --processes N` hands its processes
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    }
    for _ in range(2):
        settings = Settings.resolve({}, env)
    assert settings.port == OPTIONS.port.default
    told = [r.getMessage() for r in caplog.records]
    assert told == [
        "TWILIO_TRIGGER_PROTT is not a variable twilio-trigger reads (it is ignored): "
        "did you mean TWILIO_TRIGGER_PORT?",
        "TWILIO_AUTH_TOKENS is not a variable twilio-trigger reads (it is ignored): "
        "did you mean TWILIO_AUTH_TOKEN?",
    ]
