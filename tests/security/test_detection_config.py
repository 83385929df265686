"""The threat_rules setting: defaults, forms, and errors that name the bad rule or parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import ConfigError, configure_logging
from plexichat.core.logging.config import LoggingConfig, get_logging_config, load_logging_config
from plexichat.core.logging.security.detection_config import check_threat_rules, merged_rules
from plexichat.core.logging.security_logger import DEFAULT_THREAT_RULES, ThreatDetector


def test_defaults() -> None:
    """Detection is on; no overrides; 100,000 keys per map."""
    config = LoggingConfig()
    assert config.threat_detection_enabled is True
    assert config.threat_rules == {}
    assert config.threat_max_tracked_keys == 100_000


def test_documented_defaults() -> None:
    """The defaults docs/security.md lists."""
    rules = merged_rules(None)
    assert rules["brute_force"] == {
        "enabled": True, "threshold": 5, "ip_threshold": 20, "window": 300.0,
        "cooldown": 300.0, "severity": "HIGH",
    }  # fmt: skip
    assert rules["credential_stuffing"]["threshold"] == 10
    assert rules["account_lockout"]["window"] == 900.0
    assert rules["privilege_escalation"]["window"] == 600.0
    assert rules["injection"]["cooldown"] == 60.0
    assert rules["rate_anomaly"]["factor"] == 3.0
    assert rules["critical_event"]["min_severity"] == "CRITICAL"
    assert DEFAULT_THREAT_RULES["brute_force"]["cooldown"] is None  # = the window


def test_overrides_are_normalized() -> None:
    """Durations, numbers, booleans and severities given as text are read."""
    assert check_threat_rules(
        {
            "brute_force": {"window": "10 minutes", "threshold": "8", "severity": "critical"},
            "injection": False,
            "rate_anomaly": {"enabled": "no", "alpha": "0.5", "factor": 4},
            "credential_stuffing": {"cooldown": "off"},
        }
    ) == {
        "brute_force": {"window": 600.0, "threshold": 8, "severity": "CRITICAL"},
        "injection": {"enabled": False},
        "rate_anomaly": {"enabled": False, "alpha": 0.5, "factor": 4.0},
        "credential_stuffing": {"cooldown": 0.0},
    }


def test_cooldown_follows_the_window_unless_given() -> None:
    """cooldown None means the rule's window; 0 means none."""
    rules = merged_rules(
        {"brute_force": {"window": 60, "cooldown": None}, "account_lockout": {"cooldown": 0}}
    )
    assert rules["brute_force"]["cooldown"] == 60.0
    assert rules["account_lockout"]["cooldown"] == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("brute_force.threshold=10, injection.enabled=false", {
            "brute_force": {"threshold": 10}, "injection": {"enabled": False}}),
        ('{"rate_anomaly": {"factor": 5}}', {"rate_anomaly": {"factor": 5.0}}),
        ("", {}),
    ],
)  # fmt: skip
def test_text_forms(text: str, expected: dict[str, Any]) -> None:
    """The environment forms: rule.param=value pairs or a JSON object."""
    assert check_threat_rules(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"brute_forse": {}}, "unknown threat rule 'brute_forse' (did you mean 'brute_force'?)"),
        ({"brute_force": {"treshold": 3}}, "threat rule 'brute_force': unknown parameter"
         " 'treshold' (did you mean 'threshold'?)"),
        ({"brute_force": {"threshold": 1}}, "threat rule 'brute_force': invalid threshold 1:"
         " expected a whole number from 2 to 100000"),
        ({"brute_force": {"threshold": True}}, "invalid threshold True"),
        ({"brute_force": {"window": "forever"}}, "invalid window 'forever': expected a duration"),
        ({"brute_force": {"window": "90 days"}}, "up to 30 days"),
        ({"rate_anomaly": {"alpha": 0}}, "invalid alpha 0: expected a number > 0 and <= 1"),
        ({"rate_anomaly": {"factor": "x"}}, "invalid factor 'x'"),
        ({"injection": {"severity": "severe"}}, "expected LOW, MEDIUM, HIGH, CRITICAL or"),
        ({"injection": {"enabled": "maybe"}}, "invalid enabled 'maybe': expected true or false"),
        ({"injection": [1]}, "threat rule 'injection': expected a mapping of parameters"),
        (["brute_force"], "expected a mapping of rule name to parameters"),
        ("brute_force=10", "invalid threat_rules part 'brute_force=10': use rule.param=value"),
        ("{not json", "not a JSON object"),
    ],
)  # fmt: skip
def test_errors_name_the_rule_and_parameter(value: object, message: str) -> None:
    """Each bad value is refused with the rule, the parameter, the value and what is allowed."""
    with pytest.raises(ValueError) as info:
        check_threat_rules(value)
    assert message in str(info.value)


def test_configure_logging_reports_the_setting() -> None:
    """Through configure_logging the error names the setting, its source and the rule."""
    with pytest.raises(ConfigError, match=r"threat_rules=.*\(from code\): threat rule 'injection'"):
        configure_logging(threat_rules={"injection": {"max_length": 1}})


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """PLEXICHAT_LOG_THREAT_RULES and friends are read."""
    monkeypatch.setenv("PLEXICHAT_LOG_THREAT_RULES", '{"account_lockout": {"threshold": 3}}')
    monkeypatch.setenv("PLEXICHAT_LOG_THREAT_DETECTION_ENABLED", "false")
    monkeypatch.setenv("PLEXICHAT_LOG_THREAT_MAX_TRACKED_KEYS", "2000")
    config = get_logging_config()
    assert config.threat_rules == {"account_lockout": {"threshold": 3}}
    assert config.threat_detection_enabled is False
    assert config.threat_max_tracked_keys == 2000


def test_yaml_file(tmp_path: Path) -> None:
    """A YAML file holds rule overrides as a nested mapping."""
    path = tmp_path / "logging.yaml"
    path.write_text("threat_rules:\n  brute_force:\n    threshold: 3\n    window: 1 minute\n")
    assert load_logging_config(path).threat_rules == {
        "brute_force": {"threshold": 3, "window": 60.0}
    }


def test_max_tracked_keys_range() -> None:
    """The key cap is at least 100."""
    with pytest.raises(ConfigError, match="threat_max_tracked_keys"):
        configure_logging(threat_max_tracked_keys=10)


def test_detector_validates_its_arguments() -> None:
    """ThreatDetector refuses bad rules and caps with a clear message."""
    with pytest.raises(ValueError, match="unknown threat rule 'nope'"):
        ThreatDetector({"nope": {}})
    with pytest.raises(ValueError, match="invalid max_keys 0"):
        ThreatDetector(max_keys=0)
    detector = ThreatDetector()
    with pytest.raises(ValueError, match="invalid max_keys True"):
        detector.configure(max_keys=True)
    assert detector.max_keys == 100_000


@pytest.mark.parametrize("value", ["OFF", "never", 0, 0.0, False, "0"])
def test_cooldown_off_forms(value: object) -> None:
    """Every way of saying "no cooldown" gives 0."""
    assert check_threat_rules({"injection": {"cooldown": value}}) == {
        "injection": {"cooldown": 0.0}
    }
