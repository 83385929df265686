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
import yaml
from pydantic import ValidationError

from .._core.errors import ConfigError, error_reporter
from .model import PROFILE_NAMES, LoggingConfig, redact_url
from .profiles import PROFILES

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

    def __init__(self, config: LoggingConfig, sources: dict[str, str], file: Path | None) -> None:
        self.config = config
        self.sources = sources
        self.file = file


def _suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_setting(key: object, where: str) -> ConfigError:
    return ConfigError(
        f"unknown setting {key!r}{where}{_suggest(str(key), FIELDS)}. "
        f"Allowed settings: {', '.join(FIELDS)}"
    )


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping of known keys.

    Raises:
        ConfigError: the file is missing, not YAML, not a mapping, or has unknown keys.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read logging config file {str(path)!r}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"logging config file {str(path)!r} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"logging config file {str(path)!r} is not valid YAML: {exc}") from None
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
) -> Resolved:
    """Layer every source and validate the result.

    Raises:
        ConfigError: naming the field, the bad value, its source and what is allowed.
    """
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    for key in overrides:
        if key not in FIELDS:
            raise _unknown_setting(key, "")
    _warn_unknown_env(env)
    path_text = file if file is not None else env.get("PLEXICHAT_LOG_CONFIG_FILE")
    path = Path(path_text) if path_text else None
    file_data = read_yaml(path) if path is not None else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = dict.fromkeys(FIELDS, "default")
    profile = (
        overrides.get("profile") or env.get("PLEXICHAT_LOG_PROFILE") or file_data.get("profile")
    )
    if profile is not None:
        if not isinstance(profile, str) or profile not in PROFILES:
            raise ConfigError(
                f"invalid logging configuration: profile={profile!r} "
                f"(from {_profile_source(overrides, env, path)}): unknown logging profile; "
                f"choose one of {', '.join(PROFILE_NAMES)}"
            )
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
            env_data[field] = _env_value(field, raw)
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
    try:
        config = LoggingConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, values, sources)) from None
    return Resolved(config, sources, path)


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
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "literal_error":
            msg = f"allowed are {msg.removeprefix('Input should be ')}"
        source = sources.get(field, "code")
        shown = "**********" if _is_secret(field) else repr(redact_url(value))
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
