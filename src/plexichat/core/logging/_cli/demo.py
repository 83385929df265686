"""``plexichat-logs demo``: log through every level and category to console and files."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .._core.context import bind_context, clear_context, log_context
from .._core.levels import LogCategory, LogLevel
from ..sinks.segments import list_segments


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser(
        "demo", help="log through every level and category into the console and files"
    )
    p.add_argument(
        "--dir", default=None, help="log directory (default: PLEXICHAT_LOG_DIRECTORY or ./logs)"
    )
    p.set_defaults(handler=run)


async def _handle_request(logger: logging.Logger, request_id: str) -> None:
    with log_context(request_id=request_id):
        await asyncio.sleep(0)
        logger.info("Request processed", extra={"category": LogCategory.API})


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the files are."""
    from .. import configure_logging, flush_logging, get_logger, get_logging_stats

    directory = Path(args.dir or os.environ.get("PLEXICHAT_LOG_DIRECTORY") or "logs")
    config = configure_logging(directory=directory, level="TRACE", console_show_context=True)
    logger = get_logger("plexichat.demo")
    logger.info("Demo started", extra={"category": LogCategory.SYSTEM})
    for level in LogLevel:
        logger.log(level, "A %s record", level.name, extra={"category": LogCategory.MONITORING})
    for category in LogCategory:
        logger.info(
            "Something about %s", category.value, category=category, demo_step=category.name
        )
    logger.info(
        "User login",
        extra={
            "category": LogCategory.SECURITY,
            "context": {"user_id": "user123", "ip_address": "192.168.1.100"},
            "metadata": {"login_method": "password", "success": True},
        },
    )
    logger.info(
        "Query finished",
        category=LogCategory.DATABASE,
        performance_data={"response_time": 0.045, "rows": 12},
    )
    bind_context(session="s-42")
    asyncio.run(_handle_request(logger, "req_123456"))
    clear_context()
    logging.getLogger("thirdparty.client").warning("A third-party library's warning")
    try:
        int("forty-two")
    except ValueError:
        logger.exception("Handled an error", category=LogCategory.SYSTEM)
    logger.security("Suspicious login pattern", user_id="user123", attempts=5)
    logger.audit("Configuration changed", actor="admin", setting="level")
    flush_logging()
    stats = get_logging_stats()
    print(file=sys.stderr)
    print(f"Log directory: {config.directory.resolve()}")
    for stream, segments in sorted(list_segments(config.directory).items()):
        for seg in segments:
            print(f"  {seg.path}  (stream {stream})")
    total = sum(stats["records"].values())
    print(f"{total} records written, {stats['dropped_total']} dropped.")
    print(f"Follow them with: plexichat-logs tail {config.directory}")
    return 0
