"""``plexichat-logs export``: write a filtered slice of the store as JSON, NDJSON, CSV or text.

Oldest record first. Without ``-o`` the export goes to stdout. With ``-o FILE`` an existing
file is never overwritten without ``--force``, a failed export leaves no partial file, and
``--manifest`` adds ``FILE.manifest.json`` (count, time range, SHA-256, chain heads). A
progress bar is shown on stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .._core.errors import ConfigError
from ..store.base import LogQuery, LogStore
from ..store.export import FORMATS, MANIFEST_SUFFIX, ExportReport, export_records
from ..store.search import QuerySyntaxError
from ._filters import add_filter_args, query_from_args
from .store_cmd import STORE_ERRORS, _fail, open_located, store_error

__all__ = ["register", "run_export"]


def register(sub: Any) -> None:
    """Add the ``export`` command."""
    p = sub.add_parser("export", help="export matching records (json, ndjson, csv, txt)")
    p.add_argument("--format", required=True, choices=FORMATS, help="output format")
    add_filter_args(p)
    p.add_argument("--desc", action="store_true", help="newest first (default: oldest first)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    p.add_argument("--manifest", action="store_true", help="also write FILE.manifest.json")
    p.add_argument("--bom", action="store_true", help="start with a UTF-8 BOM (csv, txt)")
    p.add_argument("--dir", help="log directory whose store to use (default: configured)")
    p.add_argument("--store", metavar="URL", help="store URL (default: the configured store)")
    p.set_defaults(handler=run_export)


def _query(args: argparse.Namespace) -> LogQuery:
    """The LogQuery the filter flags describe (the same flags as ``query``)."""
    return query_from_args(args, order="desc" if args.desc else "asc")


def _usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the output options, None when they are fine."""
    if args.manifest and not args.output:
        return "--manifest needs -o FILE (a manifest describes a file, not stdout)"
    if args.bom and args.format not in ("csv", "txt"):
        return f"--bom is for csv and txt exports, not {args.format}: leave it out"
    if args.output and not args.force:
        paths = [args.output, args.output + MANIFEST_SUFFIX] if args.manifest else [args.output]
        for path in paths:
            if Path(path).exists():
                return f"{path!r} exists: pass --force to overwrite it"
    return None


@contextlib.contextmanager
def _progress(store: LogStore, query: LogQuery) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr when it is a terminal, else no callback."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("exporting", total=store.count(query))
        yield lambda done: bar.update(task, completed=done)


def _export(args: argparse.Namespace, store: LogStore, query: LogQuery) -> ExportReport:
    with _progress(store, query) as progress:
        if not args.output:
            return export_records(
                store, query, args.format, sys.stdout.buffer, bom=args.bom, progress=progress
            )
        path = Path(args.output)
        # opened outside the try: a file this run could not open is never deleted
        out: BinaryIO = open(path, "wb" if args.force else "xb")  # noqa: SIM115
        try:
            with out:
                return export_records(
                    store,
                    query,
                    args.format,
                    out,
                    manifest=args.manifest,
                    bom=args.bom,
                    progress=progress,
                )
        except BaseException:
            path.unlink(missing_ok=True)  # a failed export leaves no partial file
            raise


def run_export(args: argparse.Namespace) -> int:
    """Export; exit 2 on bad filters or options, 1 when the store cannot be read or the file
    cannot be written."""
    problem = _usage(args)
    if problem:
        return _fail("export", problem)
    try:
        query = _query(args)
        store = open_located(args, args.dir, "export")
    except (QuerySyntaxError, ConfigError, ValueError) as exc:
        return _fail("export", str(exc))
    if isinstance(store, int):
        return store
    try:
        report = _export(args, store, query)
    except (QuerySyntaxError, ValueError) as exc:
        return _fail("export", str(exc))
    except STORE_ERRORS as exc:
        return store_error("export", store.url, exc)
    except FileExistsError:
        return _fail("export", f"{args.output!r} exists: pass --force to overwrite it")
    except BrokenPipeError:
        raise  # `export ... | head`: handled by main
    except OSError as exc:
        print(f"plexichat-logs export: cannot write: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.output:
        done = f"exported {report.count} records to {args.output} ({report.bytes} bytes)"
        if report.manifest_path is not None:
            done += f"; manifest {report.manifest_path}"
        print(done, file=sys.stderr)
    return 0
