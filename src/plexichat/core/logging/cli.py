"""``plexichat-logs``: the command-line interface.

Commands: ``tail`` (merge and follow a log directory), ``index`` / ``reindex`` / ``import`` /
``query`` (the log store), ``keys`` / ``verify`` (tamper evidence), ``config show`` /
``config validate``, ``serve`` / ``token`` (the log server) and ``demo``.
Exit codes: 0 success, 1 a check failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
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


if __name__ == "__main__":
    raise SystemExit(main())
