"""``LoggingConfig``: every setting, typed and validated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .._core.levels import LEVEL_CHOICES, level_name, parse_level
from .checks import DEFAULT_DIRECTORY, blank_path, check_retention_rules, required_duration
from .units import parse_duration, parse_size

__all__ = [
    "DEFAULT_THIRD_PARTY_LEVELS",
    "PROFILE_NAMES",
    "LoggingConfig",
    "check_retention_rules",
    "embedded_store_url",
    "redact_url",
]

PROFILE_NAMES = ("development", "testing", "production", "debug")

DEFAULT_THIRD_PARTY_LEVELS: dict[str, str] = {
    "asyncio": "WARNING",
    "boto3": "WARNING",
    "botocore": "WARNING",
    "charset_normalizer": "WARNING",
    "filelock": "WARNING",
    "hpack": "WARNING",
    "httpcore": "WARNING",
    "httpx": "WARNING",
    "matplotlib": "WARNING",
    "multipart": "WARNING",
    "PIL": "WARNING",
    "s3transfer": "WARNING",
    "sqlalchemy.engine": "WARNING",
    "sqlalchemy.pool": "WARNING",
    "urllib3": "WARNING",
    "uvicorn.access": "WARNING",
    # INFO: at DEBUG uvicorn logs every WebSocket frame, so a log server that serves its own
    # directory would stream records about streaming records, without end
    "uvicorn.error": "INFO",
    "watchfiles": "WARNING",
    "websockets": "WARNING",
}
"""Noisy libraries and the level below which their records are silenced."""

_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_THRESHOLD_CHOICES = ", ".join(LEVEL_CHOICES[:6])


def _level_text(levelno: int) -> str:
    """The name of a level number if it reads back as that number, else the number as text."""
    name = level_name(levelno)
    try:
        return name if parse_level(name) == levelno else str(levelno)
    except ValueError:  # an unnamed level ("Level 25") or a name that does not read back
        return str(levelno)


_PW_PARAM = re.compile(r"(password\s*=\s*)('[^']*'|[^\s&]*)", re.IGNORECASE)


@overload
def redact_url(value: str) -> str: ...
@overload
def redact_url(value: object) -> object: ...
def redact_url(value: object) -> object:
    """A URL with its password (in the authority or a ``password=`` parameter) as ``***``;
    values that are not strings come back unchanged."""
    if not isinstance(value, str):
        return value
    url = value
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            userinfo, _, hostinfo = parts.netloc.rpartition("@")
            netloc = f"{userinfo.partition(':')[0]}:***@{hostinfo}"
            url = urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url.partition("://")[0] + "://***"
    return _PW_PARAM.sub(r"\1***", url)


def embedded_store_url(directory: Path) -> str:
    """The URL of the embedded SQLite store that lives inside a log directory."""
    return f"sqlite:///{directory.absolute() / 'plexichat-store.db'}"


def _threshold(value: Any) -> str:
    try:
        levelno = parse_level(value)
    except ValueError:
        raise ValueError(
            f"invalid log level {value!r}: allowed are {_THRESHOLD_CHOICES} "
            "or a level number from 0 to 50"
        ) from None
    if levelno > 50:
        raise ValueError(
            f"invalid threshold {value!r}: SECURITY and AUDIT records are never filtered out, "
            f"so a threshold must be one of {_THRESHOLD_CHOICES}"
        )
    return _level_text(levelno)


class LoggingConfig(BaseModel):
    """The complete logging configuration.

    Values come, in increasing precedence, from the defaults, a profile, a YAML file, the
    ``PLEXICHAT_LOG_*`` environment variables and arguments in code. Sizes accept
    ``"100 MB"``, durations ``"1 day"``; ``"off"`` turns either off.

    Example:
        >>> LoggingConfig(level="DEBUG", rotation_size="10 MB").rotation_size
        10000000
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    profile: Literal["development", "testing", "production", "debug"] | None = Field(
        default=None, description="The preset the configuration started from."
    )
    level: str = Field(
        default="INFO", description="Minimum level: TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL."
    )
    directory: Path = Field(
        default=DEFAULT_DIRECTORY, description="Directory of the segment files."
    )
    console_enabled: bool = Field(default=True, description="Write records to the console.")
    console_level: str | None = Field(
        default=None, description="Console minimum level (default: level)."
    )
    console_colors: bool = Field(
        default=True, description="Color the console on a TTY (NO_COLOR/FORCE_COLOR win)."
    )
    console_stream: Literal["stderr", "stdout"] = Field(
        default="stderr", description="Console stream."
    )
    console_show_context: bool = Field(
        default=False, description="Show context fields after the message."
    )
    console_utc: bool = Field(
        default=False, description="Console times in UTC instead of local time."
    )
    file_enabled: bool = Field(default=True, description="Write JSON-lines segment files.")
    file_level: str | None = Field(default=None, description="File minimum level (default: level).")
    file_prefix: str = Field(default="plexichat", description="First part of segment file names.")
    structured_enabled: bool = Field(
        default=True,
        description="Segment files hold JSON lines (false: console-format text lines).",
    )
    non_blocking: bool = Field(default=True, description="Write files from a background thread.")
    queue_size: int = Field(
        default=10_000,
        ge=16,
        le=10_000_000,
        description=(
            "Records the queue holds; when it is full, records below SECURITY are dropped,"
            " counted and reported once on stderr."
        ),
    )
    flush_interval: float = Field(
        default=0.1,
        gt=0,
        le=60,
        description="Longest time a queued record waits before it is written.",
    )
    rotation_size: int | None = Field(
        default=100_000_000, description='Rotate at this size ("100 MB").'
    )
    rotation_interval: float | None = Field(
        default=86_400.0, description='Rotate after this long ("1 day").'
    )
    compression_enabled: bool = Field(default=True, description="Compress rotated segments.")
    compression: Literal["gzip", "zstd"] = Field(
        default="gzip", description="Compression of rotated segments."
    )
    retention_age: float | None = Field(
        default=30 * 86_400.0, description='Delete segments older than this ("30 days").'
    )
    retention_size: int | None = Field(
        default=None, description='Keep the directory under this size ("10 GB").'
    )
    retention_rules: dict[str, str] = Field(
        default_factory=dict,
        description="Retention per level or category:NAME, longest match wins "
        '({"DEBUG": "3 days", "AUDIT": "7 years"}).',
    )
    third_party_levels: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_THIRD_PARTY_LEVELS),
        description="Minimum level per third-party logger name.",
    )
    performance_enabled: bool = Field(default=False, description="Collect performance metrics.")
    performance_interval: float = Field(
        default=30.0, gt=0, le=86_400, description="Seconds between system samples."
    )
    security_enabled: bool = Field(default=True, description="Security event logging.")
    audit_enabled: bool = Field(default=True, description="Audit trail logging.")
    alerts_enabled: bool = Field(default=False, description="Performance and security alerts.")
    alert_email: str | None = Field(default=None, description="Address alerts are e-mailed to.")
    store_url: str | None = Field(
        default=None,
        description="Log store: sqlite:///path or postgresql://...; default: SQLite in the"
        " log directory.",
    )
    # --- integrity (tamper evidence) ---
    integrity_enabled: bool = Field(
        default=True,
        description="Hash-chain, tag and seal every record of the segment files.",
    )
    integrity_checkpoint_interval: float = Field(
        default=60.0,
        description='Time between signed checkpoints ("1 minute"); also on rotate, close'
        " and after this long idle.",
    )
    integrity_key_directory: Path | None = Field(
        default=None,
        description="Where the host key state and the auditor key are created"
        " (default: keys/ inside the log directory).",
    )
    integrity_witness: str | None = Field(
        default=None,
        description="A second directory or an http(s):// URL that receives every signed"
        " checkpoint, so deleting the whole log directory is detectable.",
    )
    # --- metrics ---
    metrics_max_series: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Distinct tag sets kept per metric name; further ones are counted in the"
        " series tagged overflow=true.",
    )
    metrics_log_timings: bool = Field(
        default=False,
        description="Also write a PERFORMANCE record for each timer (sampled; off in production).",
    )
    metrics_log_sample_rate: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Fraction of timings written when metrics_log_timings is on (0..1).",
    )
    metrics_history_interval: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Seconds between the PERFORMANCE records that summarize each series"
        " (the metric history kept in the log files and store).",
    )
    # --- alerts and notifications ---
    alert_smtp_host: str | None = Field(
        default=None,
        description="SMTP server that sends alert e-mails to alert_email (alerts_enabled).",
    )
    alert_smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65_535,
        description="SMTP port (default: 587 with starttls, 465 with ssl, 25 with none).",
    )
    alert_smtp_tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="SMTP encryption: starttls, ssl (SMTPS) or none."
    )
    alert_smtp_username: str | None = Field(
        default=None, description="SMTP login name (none: no login)."
    )
    alert_smtp_password: SecretStr | None = Field(
        default=None,
        description="SMTP password; set it in the environment or the YAML file, never shown.",
    )
    alert_smtp_sender: str | None = Field(
        default=None, description="From address of alert e-mails (default: plexichat@HOST)."
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None,
        description="http(s) URL that receives alerts as a JSON POST (Slack-compatible);"
        " a secret (such URLs embed tokens), never shown.",
    )
    alert_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds one e-mail or webhook attempt may take."
    )

    @field_validator("alert_smtp_sender", mode="before")
    @classmethod
    def _sender(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _EMAIL.match(value.strip()):
            raise ValueError(
                f"invalid sender address {value!r}: expected one address like alerts@example.com"
            )
        return value.strip()

    # --- integrations ---
    http_exclude_paths: list[str] = Field(
        default_factory=lambda: ["/health"],
        description="Paths the FastAPI/Flask middleware passes through without an access"
        ' record or metrics; a trailing "*" matches a prefix ("/health,/static/*").',
    )
    slow_query_threshold: float | None = Field(
        default=0.5,
        description='SQL statements slower than this ("500 ms") get a WARNING record with'
        ' their shape (never their parameters); 0 logs every statement, "off" none.',
    )

    # --- log server (plexichat-logs serve, log_api) ---
    api_tokens: SecretStr | None = Field(
        default=None,
        description='Bootstrap API tokens for containers: "TOKEN:ROLE,..." with ROLE viewer,'
        " security or admin (tokens of at least 16 characters; kept only hashed in memory).",
    )
    api_cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed to call the API from a browser ("https://a.example,...");'
        " empty: CORS off.",
    )
    api_rate_limit: int = Field(
        default=600,
        ge=0,
        description="Requests per minute allowed to each API token (429 beyond); 0: no limit.",
    )

    @field_validator("http_exclude_paths", mode="before")
    @classmethod
    def _http_exclude_paths(cls, value: Any) -> list[str]:
        from ..integrations._checks import check_exclude_paths

        return check_exclude_paths(value)

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _api_cors_origins(cls, value: Any) -> list[str]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError(f"invalid CORS origins {value!r}: give a list of origins")
        out = []
        for item in items:
            origin = str(item).strip().rstrip("/")
            if origin and origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(
                    f"invalid CORS origin {item!r}: use scheme://host[:port] such as"
                    " https://logs.example.com, or *"
                )
            if origin:
                out.append(origin)
        return out

    @field_validator("slow_query_threshold", mode="before")
    @classmethod
    def _slow_query_threshold(cls, value: Any) -> float | None:
        from ..integrations._checks import check_slow_query_threshold

        return check_slow_query_threshold(value)

    # --- redaction and field encryption ---
    redaction_enabled: bool = Field(
        default=True,
        description="Mask secrets before records are written: values under secret keys"
        " (password, token, api_key, authorization, cookie, ...) and redact_patterns.",
    )
    redact_keys: list[str] = Field(
        default_factory=list,
        description="Extra secret key names, added to the built-in list (case and -/_"
        ' insensitive; "db_password" matches "password").',
    )
    redact_patterns: list[str] = Field(
        default_factory=lambda: [
            "private_key",
            "jwt",
            "url_credentials",
            "key_value",
            "bearer",
            "credit_card",
        ],
        description="Secrets masked inside strings: private_key, jwt, url_credentials,"
        ' key_value, bearer, credit_card (Luhn-checked), email; "none", "default", "all".',
    )
    encrypt_fields: list[str] = Field(
        default_factory=list,
        description="Fields encrypted (AES-256-GCM) before records are written:"
        " context.ip_address, metadata.*, context (whole object), ...",
    )
    blind_index_fields: list[str] = Field(
        default_factory=list,
        description="Fields encrypted on their own that also get a keyed hash for"
        " exact-match lookups (query --where FIELD.bidx=HEX).",
    )
    encryption_key_file: Path | None = Field(
        default=None,
        description="File (mode 0600) holding the base64 field encryption key; or set"
        " PLEXICHAT_LOG_ENCRYPTION_KEY.",
    )

    @field_validator("redact_keys", mode="before")
    @classmethod
    def _redact_keys(cls, value: Any) -> list[str]:
        from ..security.encryption_fields import check_redact_keys

        return check_redact_keys(value)

    @field_validator("redact_patterns", mode="before")
    @classmethod
    def _redact_patterns(cls, value: Any) -> list[str]:
        from ..security.encryption_fields import check_redact_patterns

        return check_redact_patterns(value)

    @field_validator("encrypt_fields", mode="before")
    @classmethod
    def _encrypt_fields(cls, value: Any) -> list[str]:
        from ..security.encryption_fields import check_encrypt_fields

        return check_encrypt_fields(value)

    @field_validator("blind_index_fields", mode="before")
    @classmethod
    def _blind_index_fields(cls, value: Any, info: Any) -> list[str]:
        from ..security.encryption_fields import check_blind_index_fields

        return check_blind_index_fields(value, info.data.get("encrypt_fields"))

    # --- threat detection ---
    threat_detection_enabled: bool = Field(
        default=True,
        description="Run the threat detection rules on security events (derived SECURITY"
        " events and alert hooks).",
    )
    threat_rules: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Overrides of the detection rules' defaults, e.g."
        ' {"brute_force": {"threshold": 10}}; env: brute_force.threshold=10,... or JSON.',
    )
    threat_max_tracked_keys: int = Field(
        default=100_000,
        ge=100,
        le=100_000_000,
        description="Most keys (IPs, users) each detection rule map holds; least recently"
        " seen evicted.",
    )

    @field_validator("threat_rules", mode="before")
    @classmethod
    def _threat_rules(cls, value: Any) -> dict[str, dict[str, Any]]:
        from ..security.detection_config import check_threat_rules

        return check_threat_rules(value)

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> str:
        return _threshold(value)

    @field_validator("console_level", "file_level", mode="before")
    @classmethod
    def _optional_level(cls, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        return _threshold(value)

    @field_validator("rotation_size", "retention_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int | None:
        return parse_size(value)

    @field_validator("rotation_interval", "retention_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return parse_duration(value)

    @field_validator("directory", "integrity_key_directory", "encryption_key_file", mode="before")
    @classmethod
    def _path(cls, value: Any, info: Any) -> Any:
        return blank_path(value, info.field_name)

    @field_validator(
        "flush_interval",
        "performance_interval",
        "alert_timeout",
        "metrics_history_interval",
        mode="before",
    )
    @classmethod
    def _interval(cls, value: Any) -> float:
        return required_duration(value)

    @field_validator("integrity_checkpoint_interval", mode="before")
    @classmethod
    def _checkpoint_interval(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds is None or not 0.05 <= seconds <= 86_400:
            raise ValueError(
                f"invalid checkpoint interval {value!r}: use a duration between 50 ms and"
                ' 1 day, e.g. "1 minute" (checkpoints cannot be turned off; set'
                " integrity_enabled=false to turn integrity off)"
            )
        return seconds

    @field_validator("integrity_witness", mode="before")
    @classmethod
    def _witness(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError(
                f"invalid integrity witness {value!r}: name a directory or an http(s):// URL"
            )
        return value

    @field_validator("file_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(f"invalid file prefix {value!r}: use 1-64 letters, digits, '_' or '-'")
        return value

    @field_validator("store_url", mode="before")
    @classmethod
    def _store_url(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not value.startswith(
            ("sqlite:///", "postgresql://", "postgres://")
        ):
            raise ValueError(
                f"invalid store URL {redact_url(value)!r}: use sqlite:///path/to/store.db or "
                "postgresql://user@host:5432/dbname"
            )
        return value

    @property
    def effective_store_url(self) -> str:
        """``store_url``, or the embedded SQLite store inside the log directory."""
        return self.store_url or embedded_store_url(self.directory)

    @field_validator("alert_email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _EMAIL.match(value.strip()):
            raise ValueError(
                f"invalid e-mail address {value!r}: expected one address like admin@example.com"
            )
        return value.strip()

    @field_validator("retention_rules", mode="before")
    @classmethod
    def _retention_rules(cls, value: Any) -> dict[str, str]:
        return check_retention_rules(value)

    @field_validator("third_party_levels", mode="before")
    @classmethod
    def _third_party(cls, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValueError(
                f"invalid third_party_levels {value!r}: expected a mapping of logger name to level"
            )
        out: dict[str, str] = {}
        for name, lvl in value.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"invalid logger name {name!r} in third_party_levels")
            try:
                levelno = parse_level(lvl)
            except ValueError:
                raise ValueError(
                    f"invalid level {lvl!r} for logger {name!r}: allowed are "
                    f"{', '.join(LEVEL_CHOICES)}, NOTSET or a level number"
                ) from None
            out[name] = _level_text(levelno)
        return out

    @property
    def levelno(self) -> int:
        """The minimum level as a number."""
        return parse_level(self.level)

    def sink_level(self, which: Literal["console", "file"]) -> int:
        """The effective minimum level of the console or file sink."""
        own = self.console_level if which == "console" else self.file_level
        return parse_level(own) if own is not None else self.levelno
