"""``plexichat-logs tail DIR``: every stream merged by time, in console format, following."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..sinks.console import ConsoleRenderer, use_color
from ..sinks.reader import Line, StreamFollower


def register(sub: Any) -> None:
    """Add the ``tail`` command."""
    p = sub.add_parser(
        "tail",
        help="show and follow a log directory (all processes' streams merged by time)",
        description="Show the last lines of a log directory, every stream merged by time, "
        "then follow new lines (Ctrl-C stops).",
    )
    p.add_argument(
        "directory",
        nargs="?",
        default=None,
        help="log directory (default: PLEXICHAT_LOG_DIRECTORY or ./logs)",
    )
    p.add_argument("-n", "--lines", type=int, default=10, help="lines to show first (default 10)")
    p.add_argument("--json", action="store_true", help="print the JSON lines as they are")
    p.add_argument("--no-follow", action="store_true", help="print and exit; do not follow")
    p.add_argument("--context", action="store_true", help="show context fields after messages")
    p.add_argument("--utc", action="store_true", help="show times in UTC")
    p.add_argument(
        "--interval", type=float, default=0.25, help="seconds between checks (default 0.25)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the tail of the directory and follow it."""
    directory = Path(args.directory or os.environ.get("PLEXICHAT_LOG_DIRECTORY") or "logs")
    if not directory.is_dir():
        print(
            f"plexichat-logs tail: {str(directory)!r} is not a directory; "
            "give the log directory (the 'directory' setting, default ./logs)",
            file=sys.stderr,
        )
        return 2
    if args.lines < 0 or args.interval <= 0:
        print("plexichat-logs tail: --lines must be >= 0 and --interval > 0", file=sys.stderr)
        return 2
    renderer = ConsoleRenderer(color=use_color(sys.stdout), show_context=args.context, utc=args.utc)
    out = sys.stdout

    def emit(line: Line) -> None:
        if args.json or line.record is None:
            out.write(line.raw.decode("utf-8", "replace"))
        else:
            out.write(renderer.render(line.record) + "\n")
        out.flush()

    follower = StreamFollower(directory)
    for line in follower.backlog(args.lines):
        emit(line)
    if args.no_follow:
        return 0
    follower.follow(emit, interval=args.interval)
    return 0  # pragma: no cover - follow() returns only on stop()
