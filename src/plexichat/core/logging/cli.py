"""``plexichat-logs``: the command-line interface.

Commands: ``tail`` (merge and follow a log directory), ``index`` / ``reindex`` / ``import`` /
``query`` (the log store), ``keys`` / ``verify`` (tamper evidence), ``config show`` /
``config validate``, ``serve`` / ``token`` (the log server) and ``demo``.
Exit codes: 0 success, 1 a check failed (or a store or file could not be used), 2 usage
error. No command ends with a traceback for a project error: it is printed as one line.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence

from ._cli import (
    config_cmd,
    decrypt_cmd,
    demo,
    export_cmd,
    integrity_cmd,
    retention_cmd,
    serve_cmd,
    store_cmd,
    tail,
)
from ._core.errors import ConfigError, PlexiLoggingError
from .store.search import QuerySyntaxError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="plexichat-logs",
        description="PlexiChat Logging: tail log directories, inspect configuration, run a demo.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (
        tail,
        store_cmd,
        export_cmd,
        retention_cmd,
        integrity_cmd,
        serve_cmd,
        decrypt_cmd,
        config_cmd,
        demo,
    ):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `plexichat-logs tail ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0
    except (PlexiLoggingError, sqlite3.DatabaseError) as exc:  # last resort: see _report
        return _report(args, exc)


def _report(args: argparse.Namespace, exc: Exception) -> int:
    """Print a project (or store) error no command handled as one line, never a traceback;
    returns 2 for a usage error, else 1."""
    usage = isinstance(exc, ConfigError | QuerySyntaxError)
    store = getattr(args, "store", None)
    if usage or not isinstance(store, str):
        message = store_cmd.one_line(str(exc))
    else:
        message = store_cmd.describe_store_error(store, exc)
    print(f"plexichat-logs {args.command}: {message}", file=sys.stderr)
    return 2 if usage else 1


if __name__ == "__main__":
    raise SystemExit(main())
