"""Loading a YAML configuration file safely: bounded size, bounded alias expansion, and the
C safe loader when PyYAML has one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .._core.errors import ConfigError

__all__ = ["MAX_FILE_BYTES", "MAX_VALUES", "load_yaml"]

MAX_FILE_BYTES = 1024 * 1024
"""The largest configuration file read (1 MiB): a real one is a few kilobytes."""

MAX_VALUES = 100_000
"""The most values (mappings, lists and scalars, counted each time an alias repeats them)
a configuration file may expand to: a few aliases are fine, an "alias bomb" is refused."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> object:
    """Read and parse ``path`` (None for an empty file).

    Raises:
        ConfigError: unreadable, not UTF-8, larger than :data:`MAX_FILE_BYTES`, not YAML,
            or expanding (through aliases) to more than :data:`MAX_VALUES` values.
    """
    name = repr(str(path))
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read logging config file {name}: {exc.strerror or exc}"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(
            f"logging config file {name} is larger than {MAX_FILE_BYTES // 1024} KiB; "
            "a logging configuration is a few settings: check the file name"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"logging config file {name} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        data: object = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"logging config file {name} is not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"logging config file {name} is nested too deeply") from None
    if _too_large(data):
        raise ConfigError(
            f"logging config file {name} expands to more than {MAX_VALUES} values "
            "(YAML aliases repeating large values?); write the settings out plainly"
        )
    return data


def _too_large(data: object) -> bool:
    """Whether ``data`` holds more than :data:`MAX_VALUES` values, counting every repetition
    of an aliased value (stops counting as soon as it knows)."""
    budget = MAX_VALUES
    pending = [data]
    while pending:
        item = pending.pop()
        budget -= 1
        if budget < 0:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set):
            pending.extend(item)
    return False
