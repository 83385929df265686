"""Configuration: environment variables, YAML files, profiles, precedence and validation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from plexichat.core.logging import (
    ConfigError,
    LoggingConfig,
    configure_logging,
    flush_logging,
    get_logger,
    get_logging_manager,
    shutdown_logging,
)
from plexichat.core.logging.config import (
    DEFAULT_THIRD_PARTY_LEVELS,
    PROFILE_NAMES,
    config_sources,
    env_name,
    get_logging_config,
    load_logging_config,
    set_logging_profile,
    validate_config_file,
)
from plexichat.core.logging.testing import read_log_records

SPEC_YAML = """\
# logging_config.yaml
directory: "logs"
level: "INFO"
console_enabled: true
console_colors: true
file_enabled: true
structured_enabled: true
performance_enabled: true
security_enabled: true
audit_enabled: true
alerts_enabled: true
compression_enabled: true
"""

SPEC_PROGRAMMATIC_EXAMPLE = """\
from plexichat.core.logging.config import get_logging_config, set_logging_profile

# Use predefined profiles
set_logging_profile("development")  # Debug-friendly settings
set_logging_profile("production")   # Production-optimized settings
set_logging_profile("testing")      # Minimal logging for tests

# Get current configuration
config = get_logging_config()
print(f"Log level: {config.level}")
print(f"Log directory: {config.directory}")
"""

# One valid, non-default environment value per config field, and what it becomes.
ENV_SAMPLES: dict[str, tuple[str, Any]] = {
    "profile": ("debug", "debug"),
    "level": ("error", "ERROR"),
    "directory": ("var/applogs", Path("var/applogs")),
    "console_enabled": ("false", False),
    "console_level": ("ERROR", "ERROR"),
    "console_colors": ("false", False),
    "console_stream": ("stdout", "stdout"),
    "console_show_context": ("true", True),
    "console_utc": ("1", True),
    "file_enabled": ("no", False),
    "file_level": ("warning", "WARNING"),
    "file_prefix": ("svc-api", "svc-api"),
    "structured_enabled": ("false", False),
    "non_blocking": ("false", False),
    "queue_size": ("64", 64),
    "flush_interval": ("0.25", 0.25),
    "rotation_size": ("10 MB", 10_000_000),
    "rotation_interval": ("1 hour", 3600.0),
    "compression_enabled": ("false", False),
    "compression": ("zstd", "zstd"),
    "retention_age": ("7 days", 7 * 86_400.0),
    "retention_size": ("1 GB", 1_000_000_000),
    "retention_rules": (
        "debug=3 days,AUDIT=7 years,category:Security=1 year",
        {"DEBUG": "3 days", "AUDIT": "7 years", "category:security": "1 year"},
    ),
    "third_party_levels": ("urllib3=ERROR", {**DEFAULT_THIRD_PARTY_LEVELS, "urllib3": "ERROR"}),
    "performance_enabled": ("true", True),
    "performance_interval": ("5", 5.0),
    "security_enabled": ("false", False),
    "audit_enabled": ("false", False),
    "alerts_enabled": ("true", True),
    "alert_email": ("ops@example.com", "ops@example.com"),
    "store_url": ("sqlite:///var/store.db", "sqlite:///var/store.db"),
    # metrics
    "metrics_max_series": ("500", 500),
    "metrics_log_timings": ("true", True),
    "metrics_log_sample_rate": ("0.25", 0.25),
    "metrics_history_interval": ("15", 15.0),
    # alerts and notifications
    "alert_smtp_host": ("smtp.example.com", "smtp.example.com"),
    "alert_smtp_port": ("2525", 2525),
    "alert_smtp_tls": ("ssl", "ssl"),
    "alert_smtp_username": ("alerts", "alerts"),
    "alert_smtp_password": ("s3cret-pw", SecretStr("s3cret-pw")),
    "alert_smtp_sender": ("noreply@example.com", "noreply@example.com"),
    "alert_webhook_url": (
        "https://hooks.example.com/T0/B0/tok",
        SecretStr("https://hooks.example.com/T0/B0/tok"),
    ),
    "alert_timeout": ("2.5", 2.5),
    # integrations
    "http_exclude_paths": ("/health,/static/*", ["/health", "/static/*"]),
    "api_tokens": (
        "tok-viewer-0123456789:viewer",
        SecretStr("tok-viewer-0123456789:viewer"),
    ),
    "api_cors_origins": (
        "https://a.example.com, http://localhost:3000/",
        ["https://a.example.com", "http://localhost:3000"],
    ),
    "api_rate_limit": ("120", 120),
    "slow_query_threshold": ("250 ms", 0.25),
    "integrity_enabled": ("false", False),
    "integrity_checkpoint_interval": ("5 min", 300.0),
    "integrity_key_directory": ("/secure/keys", Path("/secure/keys")),
    "integrity_witness": ("/mnt/witness", "/mnt/witness"),
    "redaction_enabled": ("false", False),
    "redact_keys": ("ssn,iban", ["ssn", "iban"]),
    "redact_patterns": ("jwt,email", ["jwt", "email"]),
    "encrypt_fields": ("context.ip_address,metadata.*", ["context.ip_address", "metadata.*"]),
    "blind_index_fields": ("context.user_id", ["context.user_id"]),
    "encryption_key_file": ("keys/field.key", Path("keys/field.key")),
    "threat_detection_enabled": ("false", False),
    "threat_rules": ("brute_force.threshold=10", {"brute_force": {"threshold": 10}}),
    "threat_max_tracked_keys": ("5000", 5000),
}

# The values each profile documents (src/plexichat/core/logging/_config/profiles.py).
PROFILE_VALUES: dict[str, dict[str, Any]] = {
    "development": {
        "level": "DEBUG",
        "console_enabled": True,
        "console_colors": True,
        "console_show_context": True,
        "file_enabled": True,
        "compression_enabled": False,
        "retention_age": 7 * 86_400.0,
        "performance_enabled": True,
        "alerts_enabled": False,
    },
    "testing": {
        "level": "WARNING",
        "console_enabled": True,
        "console_colors": False,
        "console_show_context": True,
        "file_enabled": False,
        "compression_enabled": False,
        "performance_enabled": False,
        "alerts_enabled": False,
    },
    "production": {
        "level": "INFO",
        "console_enabled": True,
        "console_colors": False,
        "console_show_context": False,
        "file_enabled": True,
        "non_blocking": True,
        "rotation_size": 100_000_000,
        "rotation_interval": 86_400.0,
        "compression_enabled": True,
        "retention_age": 30 * 86_400.0,
        "performance_enabled": True,
        "security_enabled": True,
        "audit_enabled": True,
        "alerts_enabled": True,
    },
    "debug": {
        "level": "TRACE",
        "console_enabled": True,
        "console_colors": True,
        "console_show_context": True,
        "file_enabled": True,
        "non_blocking": False,
        "compression_enabled": False,
        "performance_enabled": True,
    },
}

# (field, bad value in code, text of what is allowed)
BAD_VALUES: list[tuple[str, object, str]] = [
    ("level", "LOUD", "TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("queue_size", 0, "greater than or equal to 16"),
    ("rotation_size", "ten", '"100 MB"'),
    ("retention_age", "-1 day", '"1 day"'),
    ("alert_email", "nope", "admin@example.com"),
    ("console_stream", "tty", "'stderr' or 'stdout'"),
]

# (field, bad environment text, text of what is allowed)
BAD_ENV_VALUES: list[tuple[str, str, str]] = [
    *((field, str(value), allowed) for field, value, allowed in BAD_VALUES),
    ("third_party_levels", "urllib3", "logger=LEVEL"),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    """The spec's example configuration file, written verbatim."""
    return _write(tmp_path / "logging_config.yaml", SPEC_YAML)


@pytest.fixture
def third_party_loggers() -> Iterator[None]:
    """Put the stdlib levels of the third-party loggers back after the test."""
    names = {*DEFAULT_THIRD_PARTY_LEVELS, "myapp.noisy"}
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


# --- environment variables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("PLEXICHAT_LOG_LEVEL", "DEBUG", "level", "DEBUG"),
        ("PLEXICHAT_LOG_DIRECTORY", "var/applogs", "directory", Path("var/applogs")),
        ("PLEXICHAT_LOG_CONSOLE_ENABLED", "false", "console_enabled", False),
        ("PLEXICHAT_LOG_FILE_ENABLED", "false", "file_enabled", False),
        ("PLEXICHAT_LOG_PERFORMANCE_ENABLED", "true", "performance_enabled", True),
        ("PLEXICHAT_LOG_PERFORMANCE_INTERVAL", "45", "performance_interval", 45.0),
        ("PLEXICHAT_LOG_SECURITY_ENABLED", "false", "security_enabled", False),
        ("PLEXICHAT_LOG_AUDIT_ENABLED", "false", "audit_enabled", False),
        ("PLEXICHAT_LOG_ALERTS_ENABLED", "true", "alerts_enabled", True),
        ("PLEXICHAT_LOG_ALERT_EMAIL", "admin@example.com", "alert_email", "admin@example.com"),
    ],
)
def test_spec_environment_variable_is_honoured(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, field: str, expected: object
) -> None:
    """Each environment variable the spec lists sets its field when logging configures."""
    assert getattr(LoggingConfig(), field) != expected
    monkeypatch.setenv(variable, raw)
    get_logger("env.test")
    assert getattr(get_logging_config(), field) == expected
    assert config_sources()[field] == f"env {variable}"


@pytest.mark.parametrize("field", list(LoggingConfig.model_fields))
def test_every_field_has_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    """PLEXICHAT_LOG_<FIELD> sets each config field (a new field without one fails here)."""
    assert field in ENV_SAMPLES, f"add a sample environment value for {field!r}"
    raw, expected = ENV_SAMPLES[field]
    variable = env_name(field)
    assert variable == f"PLEXICHAT_LOG_{field.upper()}"
    assert getattr(LoggingConfig(), field) != expected
    monkeypatch.setenv(variable, raw)
    assert getattr(get_logging_config(), field) == expected
    assert config_sources()[field] == f"env {variable}"


def test_config_file_variable_names_a_yaml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PLEXICHAT_LOG_CONFIG_FILE layers the YAML file it names."""
    path = _write(tmp_path / "cfg.yaml", "level: ERROR\nfile_prefix: fromfile\n")
    monkeypatch.setenv("PLEXICHAT_LOG_CONFIG_FILE", str(path))
    get_logger("env.file")
    config = get_logging_config()
    assert (config.level, config.file_prefix) == ("ERROR", "fromfile")
    assert config_sources()["level"] == f"file {path}"


def test_profile_variable_selects_a_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """PLEXICHAT_LOG_PROFILE applies that profile's values."""
    monkeypatch.setenv("PLEXICHAT_LOG_PROFILE", "testing")
    get_logger("env.profile")
    config = get_logging_config()
    assert (config.profile, config.level, config.file_enabled) == ("testing", "WARNING", False)
    assert config_sources()["level"] == "profile testing"
    assert config_sources()["profile"] == "env PLEXICHAT_LOG_PROFILE"


def test_unknown_environment_variable_warns_once_with_suggestion(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A misspelt PLEXICHAT_LOG_* variable gives one stderr warning naming the right one."""
    monkeypatch.setenv("PLEXICHAT_LOG_LEVL", "DEBUG")
    get_logger("env.unknown")
    get_logging_config()
    config_sources()
    configure_logging(console_enabled=False)
    err = capfd.readouterr().err
    assert err.count("PLEXICHAT_LOG_LEVL") == 1
    assert "did you mean 'PLEXICHAT_LOG_LEVEL'" in err
    assert get_logging_config().level == "INFO"


def test_known_extra_variables_do_not_warn(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], yaml_file: Path
) -> None:
    """PLEXICHAT_LOG_CONFIG_FILE and PLEXICHAT_LOG_PROFILE are not reported as unknown."""
    monkeypatch.setenv("PLEXICHAT_LOG_CONFIG_FILE", str(yaml_file))
    monkeypatch.setenv("PLEXICHAT_LOG_PROFILE", "production")
    configure_logging(console_enabled=False)
    assert "unknown environment variable" not in capfd.readouterr().err


# --- precedence and provenance ------------------------------------------------------------


def test_defaults_when_nothing_is_set() -> None:
    """Without profile, file, environment or code every value is the default."""
    assert get_logging_config() == LoggingConfig()
    assert set(config_sources().values()) == {"default"}


def test_profile_overrides_defaults() -> None:
    """A profile's values replace the defaults."""
    set_logging_profile("development")
    assert get_logging_config().level == "DEBUG"
    assert config_sources()["level"] == "profile development"


def test_file_overrides_profile(tmp_path: Path) -> None:
    """A YAML value beats the profile; the profile's other values stay."""
    path = _write(tmp_path / "cfg.yaml", "level: WARNING\n")
    set_logging_profile("development")
    load_logging_config(path)
    config = get_logging_config()
    assert (config.level, config.console_show_context) == ("WARNING", True)
    assert config_sources()["level"] == f"file {path}"


def test_profile_named_in_file_applies(tmp_path: Path) -> None:
    """A `profile:` key in the YAML file selects the profile beneath the file's own values."""
    path = _write(tmp_path / "cfg.yaml", "profile: development\nlevel: ERROR\n")
    config = load_logging_config(path)
    assert (config.profile, config.level, config.compression_enabled) == (
        "development",
        "ERROR",
        False,
    )
    assert config_sources()["profile"] == f"file {path}"


def test_env_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment variable beats the YAML file."""
    path = _write(tmp_path / "cfg.yaml", "level: WARNING\n")
    monkeypatch.setenv("PLEXICHAT_LOG_LEVEL", "ERROR")
    assert load_logging_config(path).level == "ERROR"
    assert config_sources()["level"] == "env PLEXICHAT_LOG_LEVEL"


def test_code_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An argument in code beats the environment."""
    monkeypatch.setenv("PLEXICHAT_LOG_LEVEL", "ERROR")
    assert configure_logging(level="CRITICAL").level == "CRITICAL"
    assert config_sources()["level"] == "code"


def test_config_sources_reports_every_layer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """config_sources names default, profile, file, env and code for the values they set."""
    path = _write(tmp_path / "cfg.yaml", "directory: filelogs\nconsole_enabled: false\n")
    monkeypatch.setenv("PLEXICHAT_LOG_PROFILE", "development")
    monkeypatch.setenv("PLEXICHAT_LOG_CONFIG_FILE", str(path))
    monkeypatch.setenv("PLEXICHAT_LOG_LEVEL", "WARNING")
    configure_logging(file_prefix="svc")
    sources = config_sources()
    assert sources["queue_size"] == "default"
    assert sources["console_show_context"] == "profile development"
    assert sources["directory"] == f"file {path}"
    assert sources["level"] == "env PLEXICHAT_LOG_LEVEL"
    assert sources["file_prefix"] == "code"
    assert set(sources) == set(LoggingConfig.model_fields)


def test_file_stays_layered_across_reconfiguration(tmp_path: Path) -> None:
    """After load_logging_config, a later configure_logging keeps the file's values."""
    path = _write(tmp_path / "cfg.yaml", "directory: filelogs\n")
    load_logging_config(path)
    config = configure_logging(level="ERROR")
    assert (config.directory, config.level) == (Path("filelogs"), "ERROR")


# --- YAML files ---------------------------------------------------------------------------


def test_spec_yaml_example_loads_and_applies(yaml_file: Path) -> None:
    """The spec's YAML example loads, becomes the active config and logging writes there."""
    config = load_logging_config(yaml_file)
    assert get_logging_config() == config
    assert config.directory == Path("logs")
    assert config.level == "INFO"
    switches = [
        "console_enabled",
        "console_colors",
        "file_enabled",
        "structured_enabled",
        "performance_enabled",
        "security_enabled",
        "audit_enabled",
        "alerts_enabled",
        "compression_enabled",
    ]
    assert {name: getattr(config, name) for name in switches} == dict.fromkeys(switches, True)
    assert config_sources()["performance_enabled"] == f"file {yaml_file}"
    get_logger("yaml.example").warning("from the spec file")
    flush_logging()
    assert [r["message"] for r in read_log_records("logs")] == ["from the spec file"]


def test_load_without_apply_leaves_logging_unconfigured(yaml_file: Path) -> None:
    """load_logging_config(apply=False) returns the file's config without applying it."""
    config = load_logging_config(yaml_file, apply=False)
    assert config.alerts_enabled is True
    assert get_logging_manager().configured is False
    assert get_logging_config().alerts_enabled is False


def test_validate_config_file_returns_the_file_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """validate_config_file checks the file alone: no environment, nothing applied."""
    path = _write(tmp_path / "cfg.yaml", "level: ERROR\nrotation_size: 5 MB\n")
    monkeypatch.setenv("PLEXICHAT_LOG_LEVEL", "DEBUG")
    config = validate_config_file(path)
    assert (config.level, config.rotation_size) == ("ERROR", 5_000_000)
    assert get_logging_manager().configured is False


def test_validate_config_file_rejects_a_bad_value(tmp_path: Path) -> None:
    """validate_config_file raises ConfigError naming the field, value and file."""
    path = _write(tmp_path / "cfg.yaml", "queue_size: 3\n")
    with pytest.raises(ConfigError, match=r"queue_size=3 \(from file .*cfg\.yaml\)"):
        validate_config_file(path)


def test_unknown_yaml_key_suggests_the_right_one(tmp_path: Path) -> None:
    """An unknown key is rejected, named with its file and a "did you mean" suggestion."""
    path = _write(tmp_path / "cfg.yaml", "levle: INFO\n")
    with pytest.raises(ConfigError) as info:
        load_logging_config(path)
    message = str(info.value)
    assert "'levle'" in message
    assert "did you mean 'level'" in message
    assert str(path) in message
    assert get_logging_manager().configured is False


def test_unknown_yaml_key_without_close_match_lists_settings(tmp_path: Path) -> None:
    """A key like nothing known still lists the allowed settings."""
    path = _write(tmp_path / "cfg.yaml", "zzz: 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'zzz' in .*\. Allowed settings: "):
        validate_config_file(path)


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    """A YAML list instead of a mapping gives a ConfigError naming the file."""
    path = _write(tmp_path / "cfg.yaml", "- level\n- INFO\n")
    with pytest.raises(ConfigError, match="must hold a mapping") as info:
        load_logging_config(path)
    assert str(path) in str(info.value)


def test_malformed_yaml_is_rejected(tmp_path: Path) -> None:
    """Malformed YAML gives a ConfigError naming the file."""
    path = _write(tmp_path / "cfg.yaml", "level: [INFO\n")
    with pytest.raises(ConfigError, match="is not valid YAML") as info:
        load_logging_config(path)
    assert str(path) in str(info.value)


def test_missing_config_file_is_rejected(tmp_path: Path) -> None:
    """A file that does not exist gives a ConfigError naming it."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="cannot read logging config file") as info:
        load_logging_config(path)
    assert str(path) in str(info.value)


def test_non_utf8_config_file_is_rejected(tmp_path: Path) -> None:
    """A file that is not UTF-8 text gives a ConfigError naming it (not UnicodeDecodeError)."""
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"level: \xff\xfe\n")
    with pytest.raises(ConfigError, match="is not UTF-8") as info:
        validate_config_file(path)
    assert str(path) in str(info.value)


def test_empty_config_file_gives_defaults(tmp_path: Path) -> None:
    """An empty YAML file sets nothing."""
    path = _write(tmp_path / "cfg.yaml", "# nothing yet\n")
    assert validate_config_file(path) == LoggingConfig()


def test_yaml_unquoted_off_disables_a_limit(tmp_path: Path) -> None:
    """`rotation_size: off` turns the limit off even though YAML reads it as false."""
    path = _write(tmp_path / "cfg.yaml", "rotation_size: off\nretention_age: off\n")
    config = validate_config_file(path)
    assert (config.rotation_size, config.retention_age) == (None, None)


def test_yaml_infinite_size_is_a_config_error(tmp_path: Path) -> None:
    """`rotation_size: .inf` is a ConfigError, not an OverflowError."""
    path = _write(tmp_path / "cfg.yaml", "rotation_size: .inf\n")
    with pytest.raises(ConfigError, match="rotation_size=inf"):
        validate_config_file(path)


# --- bad values ---------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "allowed"), BAD_VALUES)
def test_bad_value_in_code_is_explained(field: str, value: object, allowed: str) -> None:
    """A bad argument names the field, the value, the source "code" and what is allowed."""
    overrides: dict[str, Any] = {field: value}
    with pytest.raises(ConfigError) as info:
        configure_logging(**overrides)
    message = str(info.value)
    assert f"{field}={value!r}" in message
    assert "(from code)" in message
    assert allowed in message


@pytest.mark.parametrize(("field", "raw", "allowed"), BAD_ENV_VALUES)
def test_bad_environment_value_is_explained(
    monkeypatch: pytest.MonkeyPatch, field: str, raw: str, allowed: str
) -> None:
    """A bad environment value names the field, the value, the variable and what is allowed."""
    monkeypatch.setenv(env_name(field), raw)
    with pytest.raises(ConfigError) as info:
        configure_logging()
    message = str(info.value)
    assert f"{field}={raw!r}" in message
    assert f"(from env {env_name(field)})" in message
    assert allowed in message


def test_bad_value_in_file_names_the_file(tmp_path: Path) -> None:
    """A bad YAML value names the file it came from."""
    path = _write(tmp_path / "cfg.yaml", "level: LOUD\n")
    with pytest.raises(ConfigError, match=rf"level='LOUD' \(from file {path}\)"):
        load_logging_config(path)


def test_level_error_lists_only_usable_thresholds() -> None:
    """The allowed levels in the error exclude SECURITY and AUDIT, which are not thresholds."""
    with pytest.raises(ConfigError) as info:
        configure_logging(level="LOUD")
    assert "SECURITY" not in str(info.value)


def test_security_is_not_a_threshold() -> None:
    """level="SECURITY" is rejected: SECURITY and AUDIT records are never filtered."""
    with pytest.raises(ConfigError, match="never filtered out"):
        configure_logging(level="SECURITY")


def test_unknown_setting_in_code_suggests_the_right_one() -> None:
    """A misspelt keyword argument is rejected with a "did you mean"."""
    with pytest.raises(ConfigError, match=r"unknown setting 'levl' \(did you mean 'level'\?\)"):
        configure_logging(levl="DEBUG")


def test_unknown_third_party_level_names_the_logger() -> None:
    """A bad third-party level names the logger and the bad level."""
    with pytest.raises(ConfigError, match=r"invalid level 'LOUD' for logger 'urllib3'"):
        configure_logging(third_party_levels={"urllib3": "LOUD"})


def test_numeric_level_round_trips() -> None:
    """A level number without a name (25) is kept as a number that reads back."""
    config = configure_logging(level=25)
    assert (config.level, config.levelno) == ("25", 25)


def test_failed_configure_keeps_previous_configuration(log_dir: Path) -> None:
    """After a rejected configure_logging the previous config stays active and still writes."""
    before = configure_logging(directory=log_dir, console_enabled=False, level="WARNING")
    with pytest.raises(ConfigError):
        configure_logging(level="LOUD")
    assert get_logging_config() == before
    get_logger("still.works").warning("after the failure")
    flush_logging()
    assert [r["message"] for r in read_log_records(log_dir)] == ["after the failure"]


def test_failed_configure_is_not_remembered() -> None:
    """A rejected override does not poison the next configure_logging call."""
    with pytest.raises(ConfigError):
        configure_logging(queue_size=0)
    assert configure_logging(console_enabled=False).queue_size == 10_000


def test_implicit_configuration_survives_bad_env(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """get_logger with a bad environment value reports on stderr and uses the defaults."""
    monkeypatch.setenv("PLEXICHAT_LOG_LEVEL", "LOUD")
    logger = get_logger("implicit")
    err = capfd.readouterr().err
    assert "level='LOUD' (from env PLEXICHAT_LOG_LEVEL)" in err
    assert "using the defaults" in err
    assert get_logging_manager().configured
    assert get_logging_config() == LoggingConfig()
    assert logger.isEnabledFor(logging.INFO)


def test_implicit_configuration_survives_bad_file(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """get_logger with a malformed PLEXICHAT_LOG_CONFIG_FILE reports it and uses defaults."""
    path = _write(tmp_path / "cfg.yaml", "level: [\n")
    monkeypatch.setenv("PLEXICHAT_LOG_CONFIG_FILE", str(path))
    get_logger("implicit.file")
    assert str(path) in capfd.readouterr().err
    assert get_logging_config() == LoggingConfig()


# --- profiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_sets_documented_values(name: str) -> None:
    """set_logging_profile applies every value the profile documents."""
    returned = set_logging_profile(name)
    config = get_logging_config()
    assert returned == config
    assert config.profile == name
    for field, expected in PROFILE_VALUES[name].items():
        assert getattr(config, field) == expected, field
        assert config_sources()[field] == f"profile {name}"


def test_profile_names_are_the_documented_four() -> None:
    """The profiles are development, testing, production and debug."""
    assert set(PROFILE_NAMES) == set(PROFILE_VALUES)


def test_unknown_profile_lists_the_choices() -> None:
    """set_logging_profile with an unknown name lists every profile."""
    with pytest.raises(ConfigError) as info:
        set_logging_profile("prod")
    message = str(info.value)
    assert "'prod'" in message
    for name in PROFILE_NAMES:
        assert name in message
    assert get_logging_manager().configured is False


def test_unknown_profile_in_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown PLEXICHAT_LOG_PROFILE names the variable and lists the profiles."""
    monkeypatch.setenv("PLEXICHAT_LOG_PROFILE", "staging")
    with pytest.raises(ConfigError, match=r"'staging' \(from env PLEXICHAT_LOG_PROFILE\)") as info:
        configure_logging()
    assert "development, testing, production, debug" in str(info.value)


def test_non_string_profile_in_file_is_a_config_error(tmp_path: Path) -> None:
    """A YAML profile that is not a name is a ConfigError naming the file, not a TypeError."""
    path = _write(tmp_path / "cfg.yaml", "profile: [production]\n")
    with pytest.raises(ConfigError, match=rf"profile=\['production'\] \(from file {path}\)"):
        validate_config_file(path)


def test_profile_values_yield_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment values beat a profile chosen in code."""
    monkeypatch.setenv("PLEXICHAT_LOG_LEVEL", "ERROR")
    assert set_logging_profile("debug").level == "ERROR"


def test_spec_programmatic_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The spec's programmatic example runs verbatim and prints the testing profile's values."""
    exec(compile(SPEC_PROGRAMMATIC_EXAMPLE, "spec-example", "exec"), {})
    assert capsys.readouterr().out == "Log level: WARNING\nLog directory: logs\n"


# --- third-party loggers ------------------------------------------------------------------


@pytest.mark.usefixtures("third_party_loggers")
def test_third_party_defaults_applied_to_stdlib_loggers() -> None:
    """Configuring sets every noisy library's stdlib logger to its default level."""
    get_logger("app")
    assert logging.getLogger("urllib3").level == logging.WARNING
    for name, level in DEFAULT_THIRD_PARTY_LEVELS.items():
        assert logging.getLevelName(logging.getLogger(name).level) == level, name


@pytest.mark.usefixtures("third_party_loggers")
def test_third_party_env_pairs_merge_over_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """PLEXICHAT_LOG_THIRD_PARTY_LEVELS="urllib3=ERROR,httpx=DEBUG" changes only those two."""
    monkeypatch.setenv("PLEXICHAT_LOG_THIRD_PARTY_LEVELS", "urllib3=ERROR,httpx=DEBUG")
    get_logger("app")
    assert logging.getLogger("urllib3").level == logging.ERROR
    assert logging.getLogger("httpx").level == logging.DEBUG
    assert logging.getLogger("httpcore").level == logging.WARNING
    levels = get_logging_config().third_party_levels
    assert levels == {**DEFAULT_THIRD_PARTY_LEVELS, "urllib3": "ERROR", "httpx": "DEBUG"}


@pytest.mark.usefixtures("third_party_loggers")
def test_third_party_env_json_merges_over_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON object in PLEXICHAT_LOG_THIRD_PARTY_LEVELS merges over the defaults too."""
    monkeypatch.setenv(
        "PLEXICHAT_LOG_THIRD_PARTY_LEVELS", '{"urllib3": "error", "myapp.noisy": "CRITICAL"}'
    )
    get_logger("app")
    assert logging.getLogger("urllib3").level == logging.ERROR
    assert logging.getLogger("myapp.noisy").level == logging.CRITICAL
    assert logging.getLogger("httpx").level == logging.WARNING


def test_third_party_env_bad_json_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Broken JSON in PLEXICHAT_LOG_THIRD_PARTY_LEVELS names the variable and the forms."""
    monkeypatch.setenv("PLEXICHAT_LOG_THIRD_PARTY_LEVELS", '{"urllib3": ')
    with pytest.raises(ConfigError, match=r"from env PLEXICHAT_LOG_THIRD_PARTY_LEVELS.*JSON"):
        configure_logging()


@pytest.mark.usefixtures("third_party_loggers")
def test_third_party_code_merges_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """third_party_levels in code merges over the environment's and the defaults."""
    monkeypatch.setenv("PLEXICHAT_LOG_THIRD_PARTY_LEVELS", "urllib3=ERROR")
    configure_logging(third_party_levels={"httpx": "DEBUG"})
    assert logging.getLogger("urllib3").level == logging.ERROR
    assert logging.getLogger("httpx").level == logging.DEBUG
    assert logging.getLogger("asyncio").level == logging.WARNING


@pytest.mark.usefixtures("third_party_loggers")
def test_third_party_numeric_level_is_applied() -> None:
    """A level number without a name (25) is applied to the stdlib logger as 25."""
    configure_logging(third_party_levels={"myapp.noisy": 25})
    assert logging.getLogger("myapp.noisy").level == 25


@pytest.mark.usefixtures("third_party_loggers")
def test_shutdown_restores_third_party_levels() -> None:
    """shutdown_logging puts back the levels the third-party loggers had before."""
    logging.getLogger("urllib3").setLevel(logging.INFO)
    logging.getLogger("myapp.noisy").setLevel(logging.DEBUG)
    configure_logging(third_party_levels={"myapp.noisy": "ERROR"})
    assert logging.getLogger("urllib3").level == logging.WARNING
    shutdown_logging()
    assert logging.getLogger("urllib3").level == logging.INFO
    assert logging.getLogger("myapp.noisy").level == logging.DEBUG


# --- configure_logging --------------------------------------------------------------------


def test_configure_overrides_accumulate() -> None:
    """Each configure_logging call adds to the arguments of the previous calls."""
    configure_logging(level="ERROR")
    config = configure_logging(console_enabled=False)
    assert (config.level, config.console_enabled) == ("ERROR", False)
    assert config_sources()["level"] == "code"


def test_configure_with_config_overrides_only_given_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """configure_logging(LoggingConfig(level=...)) leaves fields it was not given alone."""
    monkeypatch.setenv("PLEXICHAT_LOG_CONSOLE_ENABLED", "false")
    configure_logging(file_prefix="svc")
    config = configure_logging(LoggingConfig(level="DEBUG"))
    assert config.level == "DEBUG"
    assert config.console_enabled is False
    assert config.file_prefix == "svc"
    assert config_sources()["console_enabled"] == "env PLEXICHAT_LOG_CONSOLE_ENABLED"


def test_shutdown_forgets_code_overrides() -> None:
    """After shutdown_logging the next configuration starts from defaults again."""
    configure_logging(level="ERROR")
    shutdown_logging()
    assert get_logging_config().level == "INFO"
    assert config_sources()["level"] == "default"


def test_get_logging_config_before_configuring_does_not_configure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """get_logging_config previews the environment without configuring logging."""
    monkeypatch.setenv("PLEXICHAT_LOG_LEVEL", "ERROR")
    assert get_logging_config().level == "ERROR"
    assert get_logging_manager().configured is False


# --- individual settings ------------------------------------------------------------------


def test_sink_levels_default_to_the_level() -> None:
    """console_level and file_level fall back to level unless set."""
    config = LoggingConfig(level="WARNING", file_level="DEBUG")
    assert config.sink_level("console") == logging.WARNING
    assert config.sink_level("file") == logging.DEBUG


def test_env_none_clears_a_sink_level(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PLEXICHAT_LOG_CONSOLE_LEVEL=none clears a console level the YAML file set."""
    path = _write(tmp_path / "cfg.yaml", "console_level: ERROR\n")
    monkeypatch.setenv("PLEXICHAT_LOG_CONSOLE_LEVEL", "none")
    assert load_logging_config(path).console_level is None


def test_env_none_clears_an_optional_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PLEXICHAT_LOG_ALERT_EMAIL=none clears an address the YAML file set."""
    path = _write(tmp_path / "cfg.yaml", "alert_email: ops@example.com\n")
    monkeypatch.setenv("PLEXICHAT_LOG_ALERT_EMAIL", "none")
    assert load_logging_config(path).alert_email is None


def test_empty_alert_email_means_none() -> None:
    """An empty alert_email means no address."""
    assert LoggingConfig(alert_email="").alert_email is None


def test_bad_file_prefix_is_rejected() -> None:
    """A file prefix that is not a plain name (a path) is rejected with what is allowed."""
    with pytest.raises(ConfigError, match=r"file_prefix='\.\./x' \(from code\).*letters, digits"):
        configure_logging(file_prefix="../x")


def test_third_party_levels_must_be_a_mapping(tmp_path: Path) -> None:
    """third_party_levels in YAML must be a mapping, not a list."""
    path = _write(tmp_path / "cfg.yaml", "third_party_levels: [urllib3]\n")
    with pytest.raises(ConfigError, match="expected a mapping of logger name to level"):
        validate_config_file(path)


def test_third_party_logger_name_must_not_be_empty() -> None:
    """An empty logger name in third_party_levels is rejected."""
    with pytest.raises(ConfigError, match="invalid logger name ''"):
        configure_logging(third_party_levels={"": "ERROR"})


def test_get_logging_config_returns_a_copy() -> None:
    """Changing the returned config does not make it disagree with what is applied."""
    configure_logging(console_enabled=False)
    get_logging_config().level = "DEBUG"
    assert get_logging_config().level == "INFO"
    assert not get_logger("copy").isEnabledFor(logging.DEBUG)


def test_an_invalid_secret_setting_is_never_echoed() -> None:
    """A secret field that fails validation is named, its value masked in the error."""
    with pytest.raises(ConfigError) as caught:
        configure_logging(alert_smtp_password=["s3cr3t-value"], console_enabled=False)
    assert "alert_smtp_password=**********" in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)
