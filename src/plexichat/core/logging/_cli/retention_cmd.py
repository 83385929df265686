"""``plexichat-logs retention apply [--dry-run]``: apply the retention policy now.

The policy comes from the configuration (``retention_age``, ``retention_size``,
``retention_rules``); it is applied to the segment files of the log directory and to the
store (see :mod:`plexichat.core.logging.store.retention` for the rules). Exit codes: 0 done,
1 the store could not be reached or changed, 2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._config.model import embedded_store_url, redact_url
from .._config.sources import resolve
from .._config.units import format_size
from .._core.errors import ConfigError, PlexiLoggingError
from ..store.base import LogStore, open_store
from ..store.retention import FilesReport, RetentionRules, describe_age, files_retention
from .store_cmd import OPEN_ERRORS, STORE_ERRORS, describe_store_error, one_line


def register(sub: Any) -> None:
    """Add the ``retention`` command group."""
    p = sub.add_parser("retention", help="apply the retention policy to files and store")
    rsub = p.add_subparsers(dest="retention_command", metavar="SUBCOMMAND")
    rsub.required = True
    apply = rsub.add_parser(
        "apply", help="delete what the policy no longer keeps (per rule: files and store)"
    )
    apply.add_argument("--dry-run", action="store_true", help="only print what would go")
    apply.add_argument("--dir", help="log directory (default: configured)")
    apply.add_argument("--store", metavar="URL", help="store URL (default: the configured one)")
    apply.set_defaults(handler=run_apply)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _fail(message: str, status: int = 2) -> int:
    print(f"plexichat-logs retention apply: {message}", file=sys.stderr)
    return status


def _sqlite_missing(url: str) -> Path | None:
    """The path of an SQLite store URL whose file does not exist (nothing to do there)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///":
        return None
    path = Path(url.removeprefix("sqlite:///")).expanduser()
    return None if path.exists() else path


def _print_files(directory: Path, report: FilesReport, rules: RetentionRules, verb: str) -> None:
    policy = f"age {describe_age(rules.max_age)}, size {format_size(rules.max_total_bytes)}"
    print(
        f"files {directory}: {verb} {_count(len(report.deleted), 'segment')} "
        f"({format_size(report.freed_bytes)}) "
        f"by default ({policy})"
    )
    for path in report.deleted:
        print(f"  {verb}: {path.name}")
    labels = {rule.key: rule.label for rule in rules.rules}
    for path, key in report.kept.items():
        print(f"  kept: {path.name}: holds records of {labels.get(key, key)}")


def run_apply(args: argparse.Namespace) -> int:
    """Apply retention to the log directory's segments and to the store."""
    try:
        config = resolve({}).config
        rules = RetentionRules.from_config(config)
    except ConfigError as exc:
        return _fail(str(exc))
    directory = Path(args.dir) if args.dir else config.directory
    if args.dir and not directory.is_dir():
        return _fail(f"--dir {args.dir!r} is not a directory")
    url = args.store or (embedded_store_url(directory) if args.dir else config.effective_store_url)
    store: LogStore | None = None
    if _sqlite_missing(url) is None or args.store:
        try:  # before touching any file: a bad store URL changes nothing
            store = open_store(url)
        except ConfigError as exc:
            return _fail(str(exc))
        except OPEN_ERRORS as exc:
            return _fail(describe_store_error(url, exc), 1)
    verb = "would delete" if args.dry_run else "deleted"
    if args.dry_run:
        print("dry run: nothing is deleted")
    try:
        if directory.is_dir():
            report = files_retention(
                directory, rules, dry_run=args.dry_run, key_dir=config.integrity_key_directory
            )
            _print_files(directory, report, rules, verb)
        else:
            print(f"files {directory}: no log directory, nothing to do")
        if store is None:
            print(f"store {redact_url(url)}: no store yet, nothing to do")
            return 0
        try:
            counts = store.apply_retention(rules, dry_run=args.dry_run)
        except STORE_ERRORS as exc:
            return _fail(describe_store_error(url, exc), 1)
    except PlexiLoggingError as exc:
        return _fail(one_line(str(exc)), 1)
    finally:
        if store is not None:
            store.close()
    labels = {rule.key: rule.label for rule in (*rules.rules, rules.default)}
    labels["size"] = f"size ({format_size(rules.max_total_bytes)}, never SECURITY/AUDIT)"
    print(f"store {redact_url(store.url)}: {verb} {_count(sum(counts.values()), 'record')}")
    for key, count in counts.items():
        print(f"  {labels[key]}: {verb} {_count(count, 'record')}")
    return 0
