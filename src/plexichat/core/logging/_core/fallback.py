"""The implicit configuration's fallback: when the configured settings cannot apply, keep
every valid one and use the defaults only for the rest, failing closed for secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._config.model import LoggingConfig
from .._config.sources import Resolved, resolve
from .errors import ConfigError, error_reporter

if TYPE_CHECKING:
    from .manager import LoggingManager

__all__ = ["configure_leniently"]

_ENCRYPTION = ("encrypt_fields", "blind_index_fields", "encryption_key_file")
_FAIL_CLOSED = frozenset({*_ENCRYPTION, "redact_keys", "redact_patterns", "file"})
"""Settings whose loss would write secrets in clear: when one cannot apply, the implicit
configuration withholds context and metadata."""


def configure_leniently(manager: LoggingManager, exc: Exception) -> None:
    """Apply every valid setting, the defaults for the invalid ones (fail closed: when a
    redaction or encryption setting cannot apply, context and metadata are withheld)."""
    from ..security.encryption_pipeline import wants_encryption, withhold
    from .manager import check_directory

    fallback: list[str] = []
    closed = wants_encryption(manager._overrides)
    try:
        resolved = resolve(manager._overrides, file=manager._file, lenient=True)
        fallback.extend(resolved.dropped)
        try:
            check_directory(resolved)
        except ConfigError:
            resolved.config.directory = LoggingConfig.model_fields["directory"].default
            resolved.sources["directory"] = "default"
            fallback.append("directory")
        try:
            manager._apply(resolved)
        except Exception:  # noqa: BLE001 - e.g. encryption asked for without a key
            cleared = {k: LoggingConfig.model_fields[k].get_default() for k in _ENCRYPTION}
            config = resolved.config.model_copy(update=cleared)
            resolved = Resolved(config, resolved.sources, resolved.file, resolved.dropped)
            fallback.extend(_ENCRYPTION)
            closed = True
            manager._apply(resolved)
    except Exception:  # noqa: BLE001 - the last resort: the defaults
        manager._apply(resolve({}, env={}))
        fallback = ["every setting"]
        closed = closed or wants_encryption(manager._overrides)
    closed = closed or any(name in _FAIL_CLOSED for name in fallback)
    names = ", ".join(dict.fromkeys(fallback)) or "the invalid settings"
    error_reporter.report(
        "config",
        f"{exc}; using the defaults for {names} instead (every other setting applies)"
        + ("; context and metadata are withheld" if closed else ""),
    )
    if closed:  # fail closed: never in clear
        manager.handler.set_processors((*manager.handler.processors, withhold))
