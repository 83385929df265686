"""Configuration: ``LoggingConfig``, profiles, YAML files and ``PLEXICHAT_LOG_*`` variables.

Precedence: defaults < profile < YAML file < environment < arguments in code.

Example:
    >>> from plexichat.core.logging.config import get_logging_config, set_logging_profile
    >>> set_logging_profile("development")  # doctest: +SKIP
    >>> get_logging_config().level  # doctest: +SKIP
    'DEBUG'
"""

from __future__ import annotations

import os
from pathlib import Path

from ._config.model import DEFAULT_THIRD_PARTY_LEVELS, PROFILE_NAMES, LoggingConfig
from ._config.profiles import PROFILES
from ._config.sources import ENV_PREFIX, env_name, read_yaml, resolve
from ._core.errors import ConfigError
from ._core.manager import get_logging_manager

__all__ = [
    "DEFAULT_THIRD_PARTY_LEVELS",
    "ENV_PREFIX",
    "PROFILES",
    "PROFILE_NAMES",
    "ConfigError",
    "LoggingConfig",
    "config_sources",
    "env_name",
    "get_logging_config",
    "load_logging_config",
    "set_logging_profile",
    "validate_config_file",
]


def get_logging_config() -> LoggingConfig:
    """Return a copy of the active configuration (what would apply, if not configured yet).

    Changing the copy changes nothing; pass changes to ``configure_logging`` instead.
    """
    return get_logging_manager().config.model_copy(deep=True)


def config_sources() -> dict[str, str]:
    """Return, per setting, where its active value came from."""
    return get_logging_manager().sources


def set_logging_profile(name: str) -> LoggingConfig:
    """Switch to a profile (development, testing, production, debug) and apply it.

    Values from a YAML file, the environment or code still take precedence over the profile.

    Raises:
        ConfigError: ``name`` is not a profile.
    """
    if not isinstance(name, str) or name not in PROFILES:
        raise ConfigError(
            f"unknown logging profile {name!r}: choose one of {', '.join(PROFILE_NAMES)}"
        )
    return get_logging_manager().configure(profile=name)


def load_logging_config(path: str | os.PathLike[str], *, apply: bool = True) -> LoggingConfig:
    """Read a YAML file with the spec's keys, validate it and (by default) apply it.

    Environment variables and code arguments still take precedence over the file.

    Raises:
        ConfigError: the file is missing, malformed, or has an unknown key or bad value.
    """
    if not apply:
        return resolve({}, file=path, env={}).config
    return get_logging_manager().configure(file=os.fspath(path))


def validate_config_file(path: str | os.PathLike[str]) -> LoggingConfig:
    """Validate a YAML file on its own (no environment, no code), returning its config.

    Raises:
        ConfigError: naming the bad key or value and what is allowed.
    """
    read_yaml(Path(path))
    return resolve({}, file=path, env={}).config
