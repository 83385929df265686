"""The record processors built from the configuration: redaction, then field encryption.

The handler applies them to every event (fast path and stdlib path alike) before it is
serialized, so the console, the files and everything downstream see the processed event.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._core.errors import ConfigError

if TYPE_CHECKING:
    from .._config.model import LoggingConfig

__all__ = [
    "WITHHELD",
    "Processor",
    "build_processors",
    "resolve_encryption_key",
    "wants_encryption",
    "withhold",
]

Processor = Callable[[dict[str, Any]], dict[str, Any]]
"""A pipeline step: takes the event, returns it (changed in place or a new dict)."""

WITHHELD = "[WITHHELD: field encryption is not available]"
"""What replaces context, metadata and performance data when encryption was asked for but
the configuration could not be applied (the fallback never writes those fields in clear)."""


def resolve_encryption_key(cfg: LoggingConfig, environ: Mapping[str, str] | None = None) -> Any:
    """The active encryption key: ``PLEXICHAT_LOG_ENCRYPTION_KEY`` if set, else the first
    key of ``encryption_key_file``.

    Raises:
        ConfigError: no key is configured, or the key file or variable is unusable.
    """
    from .encryption import KEY_ENV, key_from_env, load_key_file

    key = key_from_env(environ)
    if key is None and cfg.encryption_key_file is not None:
        key = load_key_file(cfg.encryption_key_file).active
    if key is None:
        fields = [*cfg.encrypt_fields, *cfg.blind_index_fields]
        raise ConfigError(
            f"invalid logging configuration: encrypt_fields={fields!r} needs a key, and "
            f"none is set; create one with 'plexichat-logs encryption-key new FILE' and set "
            f"encryption_key_file=FILE (env PLEXICHAT_LOG_ENCRYPTION_KEY_FILE) or put the "
            f"base64 key in {KEY_ENV}; or clear encrypt_fields and blind_index_fields"
        )
    return key


def build_processors(
    cfg: LoggingConfig, environ: Mapping[str, str] | None = None
) -> tuple[Processor, ...]:
    """The processors a configuration asks for, in order: redaction, then encryption.

    Raises:
        ConfigError: encryption is asked for but no usable key is configured.
    """
    processors: list[Processor] = []
    if cfg.redaction_enabled:
        from .redaction import Redactor

        processors.append(Redactor(keys=cfg.redact_keys, patterns=cfg.redact_patterns))
    if cfg.encrypt_fields or cfg.blind_index_fields:
        from .encryption_records import FieldEncryptor

        key = resolve_encryption_key(cfg, environ)
        processors.append(FieldEncryptor(key, cfg.encrypt_fields, cfg.blind_index_fields))
    return tuple(processors)


def wants_encryption(
    overrides: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> bool:
    """Whether code or the environment asked for field encryption (used when the
    configuration failed and the defaults are applied instead)."""
    env = os.environ if environ is None else environ
    if any(overrides.get(k) for k in ("encrypt_fields", "blind_index_fields")):
        return True
    return any(
        env.get(name, "").strip().lower() not in ("", "none", "null", "[]")
        for name in ("PLEXICHAT_LOG_ENCRYPT_FIELDS", "PLEXICHAT_LOG_BLIND_INDEX_FIELDS")
    )


def withhold(event: dict[str, Any]) -> dict[str, Any]:
    """The fail-closed processor: replaces context, metadata and performance data."""
    for name in ("context", "metadata", "performance_data"):
        if name in event:
            event[name] = WITHHELD
    return event
