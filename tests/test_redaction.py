"""Redaction: secret keys and value patterns are masked before records are written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexichat.core.logging import configure_logging, flush_logging, get_logger
from plexichat.core.logging._config.model import LoggingConfig
from plexichat.core.logging._core.errors import ConfigError, error_reporter
from plexichat.core.logging._core.event import to_json
from plexichat.core.logging.security.redaction import (
    DEFAULT_PATTERNS,
    REDACTED,
    Redactor,
    _Walker,
    is_secret_key,
    mask_secrets,
    normalize_key,
)
from plexichat.core.logging.security.redaction_patterns import (
    PATTERN_NAMES,
    ValueScanner,
    luhn_valid,
)
from plexichat.core.logging.testing import capture_logs, read_log_records

from .helpers import only_plexi_handler

SECRET = "hunter2-SECRET-VALUE"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"


def _records(directory: Path) -> list[dict[str, Any]]:
    flush_logging()
    return [r for r in read_log_records(directory) if "message" in r]


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "PASSWD", "api-key", "API_KEY", "apiKey", "X-Api-Key",
     "Authorization", "set-cookie", "Set_Cookie", "accessToken", "refresh_token",
     "client_secret", "private-key", "db_password", "github_token", "Cookie"],
)  # fmt: skip
def test_default_secret_keys_match_in_any_spelling(key: str) -> None:
    """Case, '-'/'_', camelCase and a *_<secret> suffix all count as the secret key."""
    assert is_secret_key(key)
    assert mask_secrets({key: SECRET}) == {key: REDACTED}


@pytest.mark.parametrize(
    "key", ["user_id", "tokens_used", "token_count", "max_tokens", "passenger", "keyboard", 5]
)
def test_ordinary_keys_are_kept(key: object) -> None:
    """Keys that merely contain a secret word (or are not text) are not masked."""
    assert not is_secret_key(key)
    assert mask_secrets({key: "visible"}) == {key: "visible"}


def test_normalize_key_unifies_spellings() -> None:
    """camelCase, dashes, dots and spaces normalize to one snake_case form."""
    assert normalize_key("X-Api-Key") == "x_api_key"
    assert normalize_key("accessToken") == "access_token"
    assert normalize_key(" client.secret ") == "client_secret"


def test_mask_secrets_walks_nested_containers_and_copies() -> None:
    """Dicts inside lists inside tuples are masked; the input is left untouched."""
    value: dict[str, Any] = {
        "a": [{"token": SECRET}, ({"Secret": SECRET}, 1)],
        "b": {"n": {"passwd": 1}},
    }
    masked = mask_secrets(value)
    assert masked == {
        "a": [{"token": REDACTED}, ({"Secret": REDACTED}, 1)],
        "b": {"n": {"passwd": REDACTED}},
    }
    assert value["a"][0] == {"token": SECRET}
    assert masked["b"] is not value["b"]


def test_mask_secrets_survives_cycles_and_hostile_mappings() -> None:
    """A cycle becomes "<cycle>" and a mapping whose items() raises a placeholder."""

    class Hostile(dict[str, Any]):
        def items(self) -> Any:
            raise RuntimeError("no")

    loop: dict[str, Any] = {"password": SECRET}
    loop["self"] = loop
    masked = mask_secrets({"loop": loop, "h": Hostile(password=SECRET)})
    assert masked["loop"]["self"] == "<cycle>"
    assert masked["h"] == "<unredactable Hostile: RuntimeError>"
    assert SECRET not in repr(masked)


def test_mask_secrets_limits_depth() -> None:
    """Nesting deeper than 64 levels ends in "<max depth>" instead of a RecursionError."""
    deep: Any = {"password": SECRET}
    for _ in range(200):
        deep = {"x": deep}
    assert "<max depth>" in repr(mask_secrets(deep))
    assert SECRET not in repr(mask_secrets(deep))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abcdefghijkl123", "Authorization: [REDACTED:key_value]"),
        ("curl -H 'X: Bearer abcdefghijkl123'", "curl -H 'X: Bearer [REDACTED:bearer]'"),
        ("jwt eyJhbGciOi.eyJzdWIi.sig-x done", "jwt [REDACTED:jwt] done"),
        ("db postgres://app:pw123@db:5432/x", "db postgres://app:[REDACTED:url_credentials]@db:5432/x"),
        ("login password=hunter2 user=ann", "login password=[REDACTED:key_value] user=ann"),
        ('{"api_key": "zzz", "n": 1}', '{"api_key": "[REDACTED:key_value]", "n": 1}'),
        ("paid with 4111 1111 1111 1111 today", "paid with [REDACTED:credit_card] today"),
        (PEM, "[REDACTED:private_key]"),
    ],
)  # fmt: skip
def test_default_value_patterns_mask_secrets_in_text(text: str, expected: str) -> None:
    """Each default value pattern replaces the secret part of a string."""
    assert ValueScanner(DEFAULT_PATTERNS).scan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123456 shipped",  # 16 digits, fails the Luhn check
        "took 1234 ms at 2024-01-15T10:30:45.123Z",
        "max_tokens=5 tokens: 4",
        "mail ann@example.com",  # e-mail is off by default
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        # a Luhn-valid digit run inside a hex id (uuid4().hex) is part of a word, not a card
        "request_id=ab4111111111111111cd",
        "req 0f4111111111111111",
    ],
)
def test_default_value_patterns_leave_ordinary_text(text: str) -> None:
    """Order ids, times, token counts, e-mail (off by default) and UUIDs stay readable."""
    scanner = ValueScanner(DEFAULT_PATTERNS)
    assert scanner.scan(text) == text
    assert scanner.scan(text) == text  # second time from the set of known-clean strings


def test_email_pattern_when_enabled() -> None:
    """The opt-in e-mail pattern masks addresses."""
    assert ValueScanner(["email"]).scan("to ann@example.com now") == "to [REDACTED:email] now"


def test_luhn_check() -> None:
    """The Luhn checksum accepts valid card numbers and rejects a changed digit."""
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_key_value_pattern_covers_configured_keys() -> None:
    """A configured extra key is masked in key=value text too."""
    assert ValueScanner(["key_value"], extra_keys=["ssn"]).scan("ssn: 078-05-1120") == (
        "ssn: [REDACTED:key_value]"
    )


def test_unknown_pattern_name_is_rejected() -> None:
    """An unknown pattern names itself and the allowed ones."""
    with pytest.raises(ValueError, match=r"unknown redaction pattern 'cc'.*credit_card"):
        ValueScanner(["cc"])


def test_redactor_is_copy_on_write() -> None:
    """The event's dicts are replaced, never changed; clean values keep their identity."""
    nested = {"password": SECRET}
    clean = ["a", "b"]
    event: dict[str, Any] = {"message": "m", "context": {"db": nested, "items": clean}}
    out = Redactor()(event)
    assert out["context"] == {"db": {"password": REDACTED}, "items": ["a", "b"]}
    assert nested == {"password": SECRET}
    assert out["context"]["items"] is clean


def test_redactor_masks_message_and_exception_text() -> None:
    """Value patterns apply to the message, the exception message and the stack."""
    event: dict[str, Any] = {
        "message": "token=abc123",
        "exception": {"type": "E", "message": "password=x", "traceback": ["password=y"]},
        "stack": "Bearer abcdefghijklmnop",
    }
    out = Redactor()(event)
    assert "abc123" not in out["message"]
    assert out["exception"]["message"] == "password=[REDACTED:key_value]"
    assert out["exception"]["traceback"] == ["password=[REDACTED:key_value]"]
    assert out["stack"] == "Bearer [REDACTED:bearer]"


def test_redactor_withholds_fields_when_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """An internal failure withholds context/metadata rather than writing them unmasked."""
    redactor = Redactor()

    def boom(*_: object) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(_Walker, "_mapping", boom)
    out = redactor({"message": "m", "context": {"password": SECRET}})
    assert out["context"] == {"redaction_failed": True}
    assert error_reporter.counts["redact"] == 1


JSON_LEAVES = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
    st.binary(max_size=8),
)
KEYS = st.one_of(
    st.sampled_from(["password", "Token", "api-key", "user", "x", "ClientSecret", "cookie"]),
    st.text(max_size=10),
    st.integers(),
)
NESTED = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.frozensets(st.text(max_size=5), max_size=3),
        st.dictionaries(KEYS, inner, max_size=4),
    ),
    max_leaves=25,
)


def _plant(value: Any, draw_secret: str) -> Any:
    """Put the secret under a secret key inside every dict."""
    if isinstance(value, dict):
        out = {k: _plant(v, draw_secret) for k, v in value.items()}
        out["password"] = draw_secret
        return out
    if isinstance(value, list):
        return [_plant(v, draw_secret) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(value=NESTED, meta=NESTED)
def test_property_hostile_values_never_leak_a_secret(value: Any, meta: Any) -> None:
    """Any nesting: never raises, never leaks a value under a secret key, valid JSON."""
    event: dict[str, Any] = {
        "message": "m",
        "context": _plant({"v": value}, SECRET),
        "metadata": _plant({"m": meta}, SECRET),
    }
    out = Redactor()(event)
    data = to_json(out)
    assert SECRET.encode() not in data
    assert isinstance(orjson.loads(data), dict)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=NESTED)
def test_property_logged_records_never_leak_a_secret(log_dir: Path, value: Any) -> None:
    """Through the real pipeline: one valid JSON line per call, no secret in the files."""
    configure_logging(  # plain segments only: compression would race with the reading below
        directory=log_dir, console_enabled=False, non_blocking=False, compression_enabled=False
    )
    logger = get_logger("prop")
    logger.info("v", extra={"context": _plant({"v": value}, SECRET), "api_key": SECRET})
    flush_logging()
    data = b"".join(p.read_bytes() for p in log_dir.rglob("*.jsonl"))
    assert SECRET.encode() not in data
    for line in data.splitlines():
        orjson.loads(line)


@pytest.mark.parametrize("path", ["fast", "stdlib"])
def test_both_paths_redact_before_writing(log_dir: Path, path: str) -> None:
    """Fast path and stdlib path write the same masked record."""
    configure_logging(directory=log_dir, console_enabled=False)
    logger = get_logger("paths")
    if path == "fast":
        with only_plexi_handler():
            logger.info("login password=%s", SECRET, extra={"context": {"token": SECRET}})
    else:
        logger.info("login password=%s", SECRET, extra={"context": {"token": SECRET}})
    (record,) = _records(log_dir)
    assert record["message"] == "login password=[REDACTED:key_value]"
    assert record["context"] == {"token": REDACTED}
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in log_dir.rglob("*.jsonl"))


def test_extra_keys_reserved_keys_and_metadata_are_redacted(log_dir: Path) -> None:
    """Unknown extra= keys (context), metadata and performance_data are all masked."""
    configure_logging(directory=log_dir, console_enabled=False)
    get_logger("x").info(
        "m",
        extra={
            "cookie": SECRET,
            "metadata": {"Authorization": SECRET},
            "performance_data": {"secret": 1.5, "ms": 2},
        },
    )
    (record,) = _records(log_dir)
    assert record["context"] == {"cookie": REDACTED}
    assert record["metadata"] == {"Authorization": REDACTED}
    assert record["performance_data"] == {"secret": REDACTED, "ms": 2}


def test_console_output_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """The console gets the masked event too."""
    configure_logging(
        file_enabled=False, console_stream="stdout", console_show_context=True, console_colors=False
    )
    with only_plexi_handler():
        get_logger("c").info("hi", extra={"context": {"password": SECRET}})
    out = capsys.readouterr().out
    assert "password=[REDACTED]" in out
    assert SECRET not in out


def test_redaction_can_be_turned_off_and_extended() -> None:
    """redaction_enabled=false writes values as given; redact_keys adds keys."""
    configure_logging(file_enabled=False, console_enabled=False, redact_keys=["ssn"])
    with capture_logs() as records:
        get_logger("k").info("m", extra={"context": {"SSN": "078-05-1120", "user": "u"}})
    assert records[-1]["context"] == {"SSN": REDACTED, "user": "u"}
    configure_logging(redaction_enabled=False)
    with capture_logs() as records:
        get_logger("k").info("m", extra={"context": {"password": SECRET}})
    assert records[-1]["context"] == {"password": SECRET}


def test_redact_patterns_setting_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PLEXICHAT_LOG_REDACT_PATTERNS takes a comma list; "default"/"all"/"none" expand."""
    monkeypatch.setenv("PLEXICHAT_LOG_REDACT_PATTERNS", "default,email")
    monkeypatch.setenv("PLEXICHAT_LOG_REDACT_KEYS", "ssn, iban")
    configure_logging(file_enabled=False, console_enabled=False)
    with capture_logs() as records:
        get_logger("e").info("mail ann@example.com", extra={"context": {"iban": "DE00"}})
    assert records[-1]["message"] == "mail [REDACTED:email]"
    assert records[-1]["context"] == {"iban": REDACTED}
    assert LoggingConfig.model_validate({"redact_patterns": "all"}).redact_patterns == list(
        PATTERN_NAMES
    )
    assert LoggingConfig.model_validate({"redact_patterns": "none"}).redact_patterns == []


def test_redact_patterns_default_matches_the_config_default() -> None:
    """The config default of redact_patterns is the module's DEFAULT_PATTERNS."""
    assert LoggingConfig().redact_patterns == list(DEFAULT_PATTERNS)


@pytest.mark.parametrize(
    ("settings_", "match"),
    [
        ({"redact_patterns": ["cc"]}, r"unknown redaction pattern 'cc'"),
        ({"redact_patterns": "[oops"}, r"invalid redact_patterns '\[oops': not a JSON array"),
        ({"redact_keys": ["--"]}, r"invalid redact_keys entry '--'"),
        ({"redact_keys": [3]}, r"invalid redact_keys entry 3"),
        ({"redact_keys": 3}, r"invalid redact_keys 3: expected a list"),
    ],
)
def test_redaction_settings_are_validated(settings_: dict[str, Any], match: str) -> None:
    """Bad settings fail with the value and what is allowed."""
    with pytest.raises(ConfigError, match=match):
        configure_logging(file_enabled=False, **settings_)


def test_default_redaction_keeps_clean_events_unchanged() -> None:
    """An event without secrets comes back with the very same objects (no copies)."""
    context = {"request_id": "req_1", "n": 3}
    event: dict[str, Any] = {"message": "ok", "context": context}
    assert Redactor()(event)["context"] is context


def test_sql_placeholders_after_a_secret_word_are_kept() -> None:
    """A statement shape such as ``WHERE secret = ?`` keeps its placeholder (nothing to hide);
    a real value after the same word is still masked."""
    from plexichat.core.logging.security.redaction import Redactor

    shape = Redactor()({"message": "SELECT id FROM t WHERE secret = ? AND password=?"})
    assert shape["message"] == "SELECT id FROM t WHERE secret = ? AND password=?"
    real = Redactor()({"message": "login with password=hunter2 failed"})
    assert "hunter2" not in real["message"]
