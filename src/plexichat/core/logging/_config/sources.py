"""Layering of configuration sources with provenance.

defaults < profile < YAML file < environment ``PLEXICHAT_LOG_*`` < arguments in code.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from .._core.errors import ConfigError, error_reporter
from .model import PROFILE_NAMES, LoggingConfig, redact_url
from .profiles import PROFILES
from .text import bounded_repr, shorten
from .yaml_file import load_yaml

__all__ = ["ENV_PREFIX", "EXTRA_ENV", "Resolved", "env_name", "read_yaml", "resolve"]

ENV_PREFIX = "PLEXICHAT_LOG_"
EXTRA_ENV: set[str] = {
    "PLEXICHAT_LOG_CONFIG_FILE",
    "PLEXICHAT_LOG_ENCRYPTION_KEY",
    "PLEXICHAT_LOG_PROFILE",
}
"""Environment variables of this prefix that are not config fields (other components add theirs)."""

FIELDS = tuple(LoggingConfig.model_fields)


def env_name(field: str) -> str:
    """The environment variable of a config field: ``level`` -> ``PLEXICHAT_LOG_LEVEL``."""
    return ENV_PREFIX + field.upper()


class Resolved:
    """A validated configuration and, per field, where its value came from."""

    def __init__(
        self,
        config: LoggingConfig,
        sources: dict[str, str],
        file: Path | None,
        dropped: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.sources = sources
        self.file = file
        self.dropped: dict[str, str] = dict(dropped or {})
        """Settings a lenient resolution left at their default, with the reason (the field
        name, or ``"file"`` for an unreadable config file)."""


def _suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_setting(key: object, where: str) -> ConfigError:
    return ConfigError(
        f"unknown setting {bounded_repr(key)}{where}{_suggest(str(key)[:100], FIELDS)}. "
        f"Allowed settings: {', '.join(FIELDS)}"
    )


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping of known keys.

    Raises:
        ConfigError: the file is missing, too large, not YAML, not a mapping, or has unknown
            keys.
    """
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"logging config file {str(path)!r} must hold a mapping of settings "
            f"(like 'level: INFO'), not {type(data).__name__}"
        )
    for key in data:
        if key not in FIELDS:
            raise _unknown_setting(key, f" in {str(path)!r}")
    return data


_PAIR_FORMS = {
    "third_party_levels": (
        "logger=LEVEL",
        "use 'logger=LEVEL,logger=LEVEL' (example: urllib3=WARNING,httpx=ERROR)",
    ),
    "retention_rules": (
        "KEY=DURATION",
        "use 'KEY=DURATION,KEY=DURATION' with KEY a level or category:NAME "
        "(example: DEBUG=3 days,AUDIT=7 years,category:security=1 year)",
    ),
}


def _env_value(field: str, raw: str) -> Any:
    if field in _PAIR_FORMS:
        form, allowed = _PAIR_FORMS[field]
        text = raw.strip()
        bad = f"invalid logging configuration: {field}={raw!r} (from env {env_name(field)}): "
        if text.startswith("{"):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ConfigError(f"{bad}not a JSON object; {allowed} or a JSON object") from None
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"{bad}{part!r} is not '{form}'; {allowed}")
            if name.strip() in pairs:
                raise ConfigError(f"{bad}{name.strip()!r} is given twice; give each key once")
            pairs[name.strip()] = value.strip()
        return pairs
    if raw.strip().lower() in ("none", "null") and field in _NULLABLE:
        return None
    return raw


_NULLABLE = {
    name
    for name, info in LoggingConfig.model_fields.items()
    if not info.is_required() and info.default is None
} | {"rotation_size", "rotation_interval", "retention_age", "retention_size"}


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    known = {env_name(f) for f in FIELDS} | EXTRA_ENV
    for key in env:
        if key.startswith(ENV_PREFIX) and key not in known:
            error_reporter.report(
                f"env-{key}",
                f"ignoring unknown environment variable {key}{_suggest(key, sorted(known))}",
            )


def resolve(
    overrides: Mapping[str, Any] | None = None,
    *,
    file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    lenient: bool = False,
) -> Resolved:
    """Layer every source and validate the result.

    Args:
        overrides: settings given in code (the highest precedence).
        file: the YAML file layer (else ``PLEXICHAT_LOG_CONFIG_FILE``).
        env: the environment (default: ``os.environ``).
        lenient: instead of raising, drop each invalid setting (its default applies) and
            list it in :attr:`Resolved.dropped`; every valid setting is kept. Used by the
            implicit configuration, so that one typo never discards, say, the redaction
            settings.

    Raises:
        ConfigError: naming the field, the bad value, its source and what is allowed
            (never when ``lenient``).
    """
    env = os.environ if env is None else env
    dropped: dict[str, str] = {}

    def problem(field: str, exc: ConfigError) -> None:
        if not lenient:
            raise exc
        dropped.setdefault(field, str(exc))

    overrides = dict(overrides or {})
    for key in list(overrides):
        if key not in FIELDS:
            problem(str(key), _unknown_setting(key, ""))
            del overrides[key]
    _warn_unknown_env(env)
    path_text = file if file is not None else env.get("PLEXICHAT_LOG_CONFIG_FILE")
    path = Path(path_text) if path_text else None
    file_data: dict[str, Any] = {}
    if path is not None:
        try:
            file_data = read_yaml(path)
        except ConfigError as exc:
            problem("file", exc)

    values: dict[str, Any] = {}
    sources: dict[str, str] = dict.fromkeys(FIELDS, "default")
    profile = (
        overrides.get("profile") or env.get("PLEXICHAT_LOG_PROFILE") or file_data.get("profile")
    )
    if profile is not None and (not isinstance(profile, str) or profile not in PROFILES):
        problem(
            "profile",
            ConfigError(
                f"invalid logging configuration: profile={bounded_repr(profile)} "
                f"(from {_profile_source(overrides, env, path)}): unknown logging profile; "
                f"choose one of {', '.join(PROFILE_NAMES)}"
            ),
        )
        profile = None
    if profile is not None:
        for key, value in PROFILES[profile].items():
            values[key] = value
            sources[key] = f"profile {profile}"
        values["profile"] = profile
        sources["profile"] = _profile_source(overrides, env, path)
    layers: list[tuple[str, dict[str, Any]]] = [(f"file {path}", file_data)]
    env_data: dict[str, Any] = {}
    env_sources: dict[str, str] = {}
    for field in FIELDS:
        raw = env.get(env_name(field))
        if raw is not None:
            try:
                env_data[field] = _env_value(field, raw)
            except ConfigError as exc:
                problem(field, exc)
                continue
            env_sources[field] = f"env {env_name(field)}"
    for label, data in layers:
        for key, value in data.items():
            if key == "profile":
                continue
            values[key] = _merge(key, values.get(key), value)
            sources[key] = label
    for key, value in env_data.items():
        if key == "profile":
            continue
        values[key] = _merge(key, values.get(key), value)
        sources[key] = env_sources[key]
    for key, value in overrides.items():
        if key == "profile":
            continue
        values[key] = _merge(key, values.get(key), value)
        sources[key] = "code"
    while True:
        try:
            config = LoggingConfig.model_validate(values)
        except ValidationError as exc:
            if not lenient:
                raise ConfigError(_explain(exc, values, sources)) from None
            bad = {str((err.get("loc") or ("?",))[0]) for err in exc.errors()}
            message = _explain(exc, values, sources)
            if not bad & values.keys():  # pragma: no cover - a default itself is invalid
                raise ConfigError(message) from None
            for field in bad & values.keys():
                dropped.setdefault(field, message)
                values.pop(field)
                sources[field] = "default"
            continue
        return Resolved(config, sources, path, dropped)


def _profile_source(overrides: Mapping[str, Any], env: Mapping[str, str], path: Path | None) -> str:
    if overrides.get("profile"):
        return "code"
    if env.get("PLEXICHAT_LOG_PROFILE"):
        return "env PLEXICHAT_LOG_PROFILE"
    return f"file {path}"


def _merge(key: str, below: Any, value: Any) -> Any:
    """``third_party_levels`` merges over what lower layers set; every other key replaces."""
    if key == "third_party_levels" and isinstance(value, dict):
        from .model import DEFAULT_THIRD_PARTY_LEVELS

        base = dict(below) if isinstance(below, dict) else dict(DEFAULT_THIRD_PARTY_LEVELS)
        base.update(value)
        return base
    return value


def _explain(exc: ValidationError, values: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    lines = []
    for err in exc.errors():
        loc = err.get("loc") or ("?",)
        field = str(loc[0])
        value = values.get(field, err.get("input"))
        msg = str(err.get("msg", "invalid"))
        msg = shorten(msg.removeprefix("Value error, "))
        if err.get("type") == "literal_error":
            msg = f"allowed are {msg.removeprefix('Input should be ')}"
        source = sources.get(field, "code")
        shown = "**********" if _is_secret(field) else bounded_repr(redact_url(value))
        lines.append(f"{field}={shown} (from {source}): {msg}")
    return "invalid logging configuration: " + "; ".join(lines)


def _is_secret(field: str) -> bool:
    """Whether a field holds a secret (a SecretStr setting): its value is never echoed."""
    from pydantic import SecretStr

    from .model import LoggingConfig

    info = LoggingConfig.model_fields.get(field)
    if info is None:
        return False
    return SecretStr in getattr(info.annotation, "__args__", (info.annotation,))
