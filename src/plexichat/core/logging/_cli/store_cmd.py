"""``plexichat-logs index | reindex | import | query``: the log store from the command line.

Every command defaults to the configured log directory (``PLEXICHAT_LOG_DIRECTORY``, else
./logs) and its store (``PLEXICHAT_LOG_STORE_URL``, else SQLite inside the log directory).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

from .._config.model import embedded_store_url, redact_url
from .._config.sources import resolve
from .._config.units import parse_duration
from .._core.errors import ConfigError, PlexiLoggingError
from ..sinks.console import ConsoleRenderer, use_color
from ..store.base import LogStore, open_store
from ..store.importer import ImportReport, import_file
from ..store.indexer import Indexer, IndexReport
from ..store.search import QuerySyntaxError
from ..store.stats import window_stats
from ._filters import add_filter_args, check_reach, query_from_args


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="URL", help="store URL (default: the configured store)")


def register(sub: Any) -> None:
    """Add the store commands."""
    p = sub.add_parser("index", help="index a log directory into the store")
    p.add_argument("directory", nargs="?", help="log directory (default: configured)")
    p.add_argument("--follow", action="store_true", help="keep indexing new records")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    _add_common(p)
    p.set_defaults(handler=run_index)

    p = sub.add_parser("reindex", help="rebuild the store from the log files")
    p.add_argument("directory", nargs="?", help="log directory (default: configured)")
    _add_common(p)
    p.set_defaults(handler=run_reindex)

    p = sub.add_parser(
        "import", help="import JSON-lines logs (PlexiChat, structlog, loguru, python-json-logger)"
    )
    p.add_argument("files", nargs="+", help="JSON-lines files (.gz and .zst too)")
    _add_common(p)
    p.set_defaults(handler=run_import)

    p = sub.add_parser("stats", help="statistics of the store and of a recent window")
    p.add_argument("--window", default="1 day", help="how far back (default 1 day)")
    p.add_argument("--bucket", default="hour", choices=("minute", "hour", "day"))
    p.add_argument("--top", type=int, default=10, help="message patterns to list")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--dir", help="log directory whose store to use (default: configured)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="also verify the directory's segment files (the integrity status; keys as for "
        "`verify`: PLEXICHAT_LOG_AUDITOR_KEY, else keys/auditor.key)",
    )
    _add_common(p)
    p.set_defaults(handler=run_stats)

    p = sub.add_parser("query", help="search the store")
    add_filter_args(p)
    p.add_argument("--limit", type=int, default=100, help="records per page (1..1000)")
    p.add_argument("--cursor", help="next_cursor printed by the previous page")
    p.add_argument("--asc", action="store_true", help="oldest first (default: newest first)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--dir", help="log directory whose store to use (default: configured)")
    _add_common(p)
    p.set_defaults(handler=run_query)


def _fail(command: str, message: str) -> int:
    print(f"plexichat-logs {command}: {message}", file=sys.stderr)
    return 2


STORE_ERRORS: tuple[type[Exception], ...] = (PlexiLoggingError, sqlite3.DatabaseError)
"""What using an opened store raises when it cannot be used (a damaged SQLite file raises
sqlite3.DatabaseError from the middle of a query)."""
OPEN_ERRORS: tuple[type[Exception], ...] = (*STORE_ERRORS, OSError)
"""What opening a store raises when it cannot be opened (OSError: its directory)."""


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of blanks as single spaces."""
    return " ".join(text.split())


def describe_store_error(url: str, exc: BaseException) -> str:
    """One line saying why the store at ``url`` cannot be used and what to do about it.

    Args:
        url: the store URL the command used (its password is never shown).
        exc: what opening or using the store raised (a PlexiLoggingError or an OSError).
    """
    shown = redact_url(url)
    cause = exc if isinstance(exc, OSError | sqlite3.Error) else exc.__cause__
    path = (
        Path(url.removeprefix("sqlite:///")).expanduser() if url.startswith("sqlite:///") else None
    )
    if isinstance(cause, OSError):
        return (
            f"cannot open the log store {shown}: {cause.strerror or cause}: give a store URL "
            "in a directory you can write to, e.g. --store sqlite:///path/to/store.db"
        )
    if path is not None and path.is_dir():
        return (
            f"the log store {shown} is a directory, not a store file: give the path of a "
            f"file, e.g. --store sqlite:///{path / 'plexichat-store.db'}"
        )
    if isinstance(cause, sqlite3.DatabaseError) and not isinstance(cause, sqlite3.OperationalError):
        return (
            f"the log store {shown} is damaged or not a log store ({cause}): move the file "
            "away (or delete it) and run `plexichat-logs reindex` to rebuild it from the log "
            "files"
        )
    if isinstance(cause, sqlite3.Error):
        return (
            f"cannot use the log store {shown} ({cause}): check that the file can be read "
            "and written, or move it away (or delete it) and run `plexichat-logs reindex` to "
            "rebuild it from the log files"
        )
    message = one_line(str(exc).replace(url, shown))
    return message if shown in message else f"log store {shown}: {message}"


def store_error(command: str, url: str, exc: BaseException) -> int:
    """Print :func:`describe_store_error` on stderr; returns exit status 1."""
    print(f"plexichat-logs {command}: {describe_store_error(url, exc)}", file=sys.stderr)
    return 1


def open_or_status(url: str, command: str) -> LogStore | int:
    """The store at ``url``, or the exit status after saying why it cannot be opened
    (2: a bad URL, 1: a store that cannot be opened or used)."""
    try:
        return open_store(url)
    except (ConfigError, QuerySyntaxError) as exc:
        return _fail(command, str(exc))
    except OPEN_ERRORS as exc:
        return store_error(command, url, exc)


def open_located(args: argparse.Namespace, directory: str | None, command: str) -> LogStore | int:
    """:func:`open_or_status` of the store :func:`_locate` finds.

    Raises:
        ConfigError: the configuration is invalid.
    """
    return open_or_status(_locate(args, directory)[1], command)


def _locate(args: argparse.Namespace, directory: str | None) -> tuple[Path, str]:
    """The log directory and the store URL a command works on (nothing opened yet)."""
    config = resolve({}).config
    if directory is None:
        return config.directory, args.store or config.effective_store_url
    log_dir = Path(directory)
    return log_dir, args.store or embedded_store_url(log_dir)


def _indexer(args: argparse.Namespace, command: str) -> Indexer | int:
    """The indexer of the command's directory and store, or the exit status once the reason
    it has none is printed (2: a usage error, 1: a store that cannot be opened).

    The directory is checked before the store is opened: opening an embedded store creates
    its directory, which would make a mistyped directory look valid.
    """
    try:
        log_dir, url = _locate(args, args.directory)
    except ConfigError as exc:
        return _fail(command, str(exc))
    if not log_dir.is_dir():
        return _fail(command, f"{str(log_dir)!r} is not a directory")
    store = open_or_status(url, command)
    return store if isinstance(store, int) else Indexer(log_dir, store)


def _print_report(report: IndexReport, store: LogStore) -> None:
    skipped = report.malformed + report.oversized
    print(
        f"indexed {report.records} records from {report.segments} segments into "
        f"{redact_url(store.url)}"
        + (f"; skipped {skipped} lines that are not records" if skipped else "")
        + (f"; {report.duplicates} already stored" if report.duplicates else "")
    )
    for error in report.errors:
        print(f"warning: {error}", file=sys.stderr)


def run_index(args: argparse.Namespace) -> int:
    """Index once, or keep following with --follow."""
    indexer = _indexer(args, "index")
    if isinstance(indexer, int):
        return indexer
    store = indexer.store
    try:
        if args.follow:
            indexer.follow(
                interval=args.interval,
                on_pass=lambda r: _print_report(r, store) if r.records else None,
            )
        else:
            _print_report(indexer.run_once(), store)
    except STORE_ERRORS as exc:
        return store_error("index", store.url, exc)
    finally:
        store.close()
    return 0


def run_reindex(args: argparse.Namespace) -> int:
    """Clear the store and index every file again."""
    indexer = _indexer(args, "reindex")
    if isinstance(indexer, int):
        return indexer
    try:
        _print_report(indexer.reindex(), indexer.store)
    except STORE_ERRORS as exc:
        return store_error("reindex", indexer.store.url, exc)
    finally:
        indexer.store.close()
    return 0


def _import_summary(name: str, report: ImportReport, store: LogStore) -> str:
    """``app.jsonl: imported 600 records into URL (1000 already stored, 0 malformed ...)``."""
    counts = [f"{report.duplicates} already stored", f"{report.malformed} malformed lines skipped"]
    if report.oversized:
        counts.append(f"{report.oversized} oversized lines skipped")
    if report.control_lines:
        counts.append(f"{report.control_lines} integrity control lines skipped")
    return (
        f"{name}: imported {report.records} records into {redact_url(store.url)} "
        f"({', '.join(counts)})"
    )


def run_import(args: argparse.Namespace) -> int:
    """Import files; exit 1 when a file could not be read (or the store not used)."""
    try:
        store = open_located(args, None, "import")
    except ConfigError as exc:
        return _fail("import", str(exc))
    if isinstance(store, int):
        return store
    url = store.url
    status = 0
    try:
        for name in args.files:
            try:
                report = import_file(name, store)
            except OSError as exc:
                print(f"{name}: cannot read: {exc.strerror or exc}", file=sys.stderr)
                status = 1
                continue
            print(_import_summary(name, report, store))
            for warning in report.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            if report.error is not None:
                print(f"error: {report.error}", file=sys.stderr)
                status = 1
    except STORE_ERRORS as exc:
        return store_error("import", url, exc)
    finally:
        store.close()
    return status


def run_query(args: argparse.Namespace) -> int:
    """Print one page of matching records (console format, or JSON lines)."""
    try:
        query = query_from_args(
            args, order="asc" if args.asc else "desc", limit=args.limit, cursor=args.cursor
        )
        store = open_located(args, args.dir, "query")
    except (QuerySyntaxError, ConfigError, ValueError) as exc:
        return _fail("query", str(exc))
    if isinstance(store, int):
        return store
    url = store.url
    try:
        page = store.query(query)
    except QuerySyntaxError as exc:
        return _fail("query", str(exc))
    except STORE_ERRORS as exc:
        return store_error("query", url, exc)
    finally:
        store.close()
    renderer = ConsoleRenderer(color=use_color(sys.stdout), show_context=True)
    out = sys.stdout
    for entry in page.entries:
        if args.json:
            import orjson

            out.write(orjson.dumps(entry).decode() + "\n")
        else:
            out.write(renderer.render(entry) + "\n")
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}", file=sys.stderr)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print all-time counts and storage plus the window's buckets, error rate and patterns."""
    try:
        window = parse_duration(args.window)
        if window is None:
            raise ValueError(f"--window {args.window!r}: give a duration such as 1h")
        check_reach("--window", args.window, window)
        log_dir, url = _locate(args, args.dir)
    except (QuerySyntaxError, ConfigError, ValueError) as exc:
        return _fail("stats", str(exc))
    store = open_or_status(url, "stats")
    if isinstance(store, int):
        return store
    try:
        overall = store.stats()
        recent = window_stats(store, window=window, bucket=args.bucket, top=args.top)
    except QuerySyntaxError as exc:
        return _fail("stats", str(exc))
    except STORE_ERRORS as exc:
        return store_error("stats", url, exc)
    finally:
        store.close()
    doc: dict[str, Any] = {
        "store": redact_url(store.url),
        "all_time": overall,
        "window": recent.as_dict(),
    }
    if args.verify:
        doc["integrity"] = _integrity_status(log_dir)
    if args.json:
        import orjson

        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(
        f"store {doc['store']}: {overall.get('records', 0)} records, "
        f"{overall.get('storage_bytes', 0)} bytes, {overall.get('first')} .. {overall.get('last')}"
    )
    print(
        f"last {args.window}: {recent.records} records, error rate {recent.error_rate:.2%}, "
        f"ingestion lag {recent.ingestion_lag_seconds}s"
    )
    for level, count in recent.levels.items():
        print(f"  {level:<8} {count}")
    for row in recent.top_patterns:
        print(f"  {row['count']:>7}  [{row['level']}] {row['pattern']}")
    if args.verify:
        status = doc["integrity"]
        if status.get("status") == "unknown":
            print(f"integrity: unknown ({status['reason']})")
        else:
            kinds = ", ".join(f["kind"] for f in status["findings"])
            print(
                f"integrity: {'intact' if status['ok'] else 'FAILED: ' + kinds} "
                f"({status['files']} files, {status['records']} records; {status['key']})"
            )
    return 0


def _integrity_status(log_dir: Path) -> dict[str, Any]:
    """The verification report of the log directory, or why there is none."""
    from ..integrity import verify_directory

    try:
        return verify_directory(log_dir).to_dict()
    except (ValueError, OSError) as exc:
        return {"status": "unknown", "reason": str(exc)}
