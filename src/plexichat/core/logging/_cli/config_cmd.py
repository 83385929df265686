"""``plexichat-logs config show|validate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from .._config.model import redact_url
from .._config.sources import env_name, resolve
from .._config.units import format_duration, format_size
from .._core.errors import ConfigError
from ..config import validate_config_file

_SIZES = {"rotation_size", "retention_size"}
_DURATIONS = {"rotation_interval", "retention_age"}


def register(sub: Any) -> None:
    """Add the ``config`` command group."""
    p = sub.add_parser("config", help="show or validate the logging configuration")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    csub.required = True
    show = csub.add_parser(
        "show", help="print the effective configuration and where each value came from"
    )
    show.add_argument("--file", help="YAML file to layer (default: PLEXICHAT_LOG_CONFIG_FILE)")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(handler=run_show)
    val = csub.add_parser("validate", help="check a YAML configuration file")
    val.add_argument("file", help="the YAML file")
    val.set_defaults(handler=run_validate)


def _display(key: str, value: Any) -> str:
    if key in _SIZES:
        return format_size(value)
    if key in _DURATIONS:
        return format_duration(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "{}"
    if value is None:
        return "-"
    return str(value)


def run_show(args: argparse.Namespace) -> int:
    """Print every setting, its value, its source and its environment variable."""
    try:
        resolved = resolve({}, file=args.file)
    except ConfigError as exc:
        print(f"plexichat-logs config show: {exc}", file=sys.stderr)
        return 1
    data = resolved.config.model_dump(mode="json")
    data["store_url"] = redact_url(data["store_url"])
    if args.json:
        doc = {k: {"value": v, "source": resolved.sources[k]} for k, v in data.items()}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="PlexiChat logging configuration", title_justify="left")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("source")
    table.add_column("environment variable")
    for key, value in data.items():
        table.add_row(key, _display(key, value), resolved.sources[key], env_name(key))
    Console(width=max(120, Console().width)).print(table)
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Exit 0 when the file is valid, 1 with the reason when it is not."""
    path = Path(args.file)
    try:
        config = validate_config_file(path)
    except ConfigError as exc:
        print(f"{path}: invalid: {exc}", file=sys.stderr)
        return 1
    given = len(config.model_fields_set)
    print(f"{path}: valid ({given} settings)")
    return 0
