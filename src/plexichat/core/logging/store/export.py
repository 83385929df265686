"""Export a slice of the store as JSON, NDJSON, CSV or console text, streamed.

Records come from :meth:`LogStore.iter_records` one batch at a time and leave as bytes in
chunks of 256 KiB, so an export of ten million records needs as much memory as one of ten.

Formats:

* ``ndjson``: the stored lines, unchanged, one per line (the audit format: byte for byte
  what the store holds).
* ``json``: one JSON array whose elements are the stored lines, written element by element.
* ``csv``: RFC 4180 (``\\r\\n``, ``"`` quoting), UTF-8, a BOM on request (for Excel), with
  the same columns for every export (:data:`CSV_COLUMNS`): one per scalar field of the
  schema; one compact-JSON column each for ``context``, ``metadata``,
  ``performance_data`` and ``exception`` (``pandas.json_normalize`` takes them apart);
  keys outside the schema as one JSON object in ``extra`` (``severity_number``, derived
  from ``level``, is left out). Not one column per context key: that key set is unknown
  until every record is read, unbounded, and different for every slice. Text cells
  starting with ``=``, ``+``, ``-``, ``@``, tab or CR get a leading ``'`` (shown, never
  evaluated by a spreadsheet); numbers stay numbers.
* ``txt``: the console format (no colors, context shown, times in UTC), control
  characters escaped.

Example:
    >>> import io
    >>> from plexichat.core.logging.store import LogQuery, open_store
    >>> store = open_store("sqlite://")
    >>> export_records(store, LogQuery(order="asc"), "csv", io.BytesIO()).count
    0
    >>> store.close()
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import orjson

from .._config.model import redact_url
from ..sinks.console import ConsoleRenderer
from .base import LogQuery, LogStore, StoredRecord, micros_to_iso, to_micros

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "MANIFEST_SUFFIX",
    "PROGRESS_EVERY",
    "ExportFormat",
    "ExportReport",
    "export_records",
]

ExportFormat = Literal["json", "ndjson", "csv", "txt"]
FORMATS: Final = ("json", "ndjson", "csv", "txt")
MANIFEST_SUFFIX: Final = ".manifest.json"
PROGRESS_EVERY: Final = 10_000
"""Records between two calls of the ``progress`` callback."""

_JSON_COLUMNS = ("context", "metadata", "performance_data", "exception")
CSV_COLUMNS: Final = (
    *("timestamp", "level", "category", "logger", "module", "function", "line", "message"),
    *_JSON_COLUMNS,
    *("stack", "trace_id", "span_id", "tag", "stream", "seq", "extra"),
)
"""The CSV header, in order; the same for every export."""

_FORMULA_START = frozenset("=+-@\t\r")
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS
_FLUSH_BYTES = 1 << 18  # written to ``out`` at a time
_FLUSH_CHARS = 1 << 16  # of CSV or text, encoded at a time
_MANIFEST_VERSION = 1
_COLUMNS = ("level", "category", "logger", "module", "message", "stream", "seq")


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What :func:`export_records` wrote.

    Attributes:
        format: the export format.
        count: records written.
        bytes: bytes written (BOM included).
        sha256: hex SHA-256 of exactly those bytes.
        first_timestamp: ISO-8601 UTC time of the first record written, None when empty.
        last_timestamp: the same for the last record written.
        chain_heads: per stream, ``{"first_seq", "last_seq", "count"}``: the lowest and
            highest seq exported and how many records (``last_seq - first_seq + 1 - count``
            records of that range are not in the export). The integrity issue will add the
            hash-chain heads of ``first_seq`` and ``last_seq`` to each entry.
        manifest_path: where the manifest was written, None without one.
    """

    format: str
    count: int
    bytes: int
    sha256: str
    first_timestamp: str | None
    last_timestamp: str | None
    chain_heads: dict[str, dict[str, int]] = field(default_factory=dict)
    manifest_path: Path | None = None


class _Output:
    """Batches, counts and hashes everything written to the caller's binary stream."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._parts: list[bytes] = []
        self._pending = 0
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write_bytes(self, data: bytes) -> None:
        self._parts.append(data)
        self._pending += len(data)
        if self._pending >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._parts:
            return
        data = b"".join(self._parts)
        self._parts, self._pending = [], 0
        self._out.write(data)
        self.sha256.update(data)
        self.size += len(data)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _event(rec: StoredRecord) -> dict[str, Any]:
    """The record as a dict; a stored line that is not a JSON object keeps its columns."""
    event = _parse(rec.raw)
    if event is None:
        event = {"timestamp": micros_to_iso(rec.ts), **{k: getattr(rec, k) for k in _COLUMNS}}
        event["raw"] = rec.raw.decode("utf-8", "backslashreplace")
    return event


def _line(rec: StoredRecord) -> bytes:
    """The stored line unchanged when it is one JSON object on one line, else the record
    re-serialized (a store written by other code never breaks the JSON framing)."""
    raw = rec.raw
    if b"\n" not in raw and _parse(raw) is not None:
        return raw
    return orjson.dumps(_event(rec))


def _cell(value: object) -> object:
    """A scalar column's cell for anything but text and ints (handled inline)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    return _json_cell(value)


def _json_cell(value: object) -> str:
    """A JSON column's cell: compact JSON (``{``, ``[``, ``"`` or a literal first, never a
    formula character, except the ``-`` of a negative number: escaped); an empty object
    is an empty cell."""
    if value is None or value == {}:
        return ""
    text = orjson.dumps(value, option=_NON_STR_KEYS).decode()
    return "'" + text if text[:1] in _FORMULA_START else text


_SCALAR_AT = {key: i for i, key in enumerate(CSV_COLUMNS) if key not in _JSON_COLUMNS}
_JSON_AT = {key: i for i, key in enumerate(CSV_COLUMNS) if key in _JSON_COLUMNS}
del _SCALAR_AT["extra"]
_EMPTY_ROW: list[object] = [""] * len(CSV_COLUMNS)


def _csv_row(event: dict[str, Any]) -> list[object]:
    """The CSV row of a record (hot path: one pass over the record's keys)."""
    row = _EMPTY_ROW.copy()
    extra: dict[str, Any] | None = None
    for key, value in event.items():
        at = _SCALAR_AT.get(key)
        if at is not None:
            if value.__class__ is str:
                row[at] = "'" + value if value[:1] in _FORMULA_START else value
            elif value.__class__ is int:
                row[at] = value
            else:
                row[at] = _cell(value)
        elif (at := _JSON_AT.get(key)) is not None:
            if value.__class__ is dict:  # JSON that starts with "{": no escape needed
                row[at] = orjson.dumps(value, option=_NON_STR_KEYS).decode() if value else ""
            else:
                row[at] = _json_cell(value)
        elif key != "severity_number":
            if extra is None:
                extra = {}
            extra[key] = value
    if extra:
        row[-1] = _json_cell(extra)
    return row


def _query_dict(query: LogQuery) -> dict[str, Any]:
    """The query as JSON-ready data (times normalized to UTC, page size left out)."""
    out: dict[str, Any] = {}
    for f in fields(query):
        if f.name in ("search_tree", "limit"):
            continue
        value = getattr(query, f.name)
        if f.name in ("start", "end") and value is not None:
            value = micros_to_iso(to_micros(value))
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[f.name] = value
    return out


def _write_manifest(path: Path, content: dict[str, Any]) -> None:
    """Write the manifest through a temporary file, so it is complete or absent."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def export_records(
    store: LogStore,
    query: LogQuery,
    fmt: ExportFormat | str,
    out: BinaryIO,
    *,
    manifest: bool = False,
    bom: bool = False,
    progress: Callable[[int], object] | None = None,
    progress_every: int = PROGRESS_EVERY,
) -> ExportReport:
    """Write every record matching ``query`` to ``out`` in ``fmt``, streamed.

    Memory stays constant whatever the number of records: records are read with
    :meth:`LogStore.iter_records` (``limit`` ignored, ``order`` and ``cursor`` honoured)
    and written in chunks of 256 KiB. ``out`` is flushed at the end, not closed.

    Args:
        store: the store to read.
        query: which records, in which order (``LogQuery(order="asc")`` for oldest first).
        fmt: ``"json"``, ``"ndjson"``, ``"csv"`` or ``"txt"`` (see the module docs).
        out: a binary stream, e.g. ``open(path, "xb")`` or ``sys.stdout.buffer``.
        manifest: also write ``<out.name>.manifest.json``: format, query, count, first and
            last timestamp, byte size, SHA-256 of the export and the chain heads per stream.
        bom: start a ``csv`` or ``txt`` export with a UTF-8 BOM (for Excel).
        progress: called with the number of records written every ``progress_every``
            records, and once at the end.
        progress_every: records between two ``progress`` calls.

    Returns:
        The count, size, SHA-256, time range and chain heads of what was written.

    Raises:
        ValueError: an unknown format, ``bom`` with JSON, or ``manifest`` with an ``out``
            that has no file name; nothing is written.
        QuerySyntaxError: the query cannot run on this store; nothing is written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if bom and fmt not in ("csv", "txt"):
        raise ValueError(f"a BOM is for csv and txt exports, not {fmt!r}: leave bom off")
    path = _manifest_path(out) if manifest else None
    if progress_every < 1:
        raise ValueError(f"invalid progress_every {progress_every!r}: use an int >= 1")
    records = store.iter_records(query)  # raises QuerySyntaxError before any byte
    sink = _Output(out)
    if bom:
        sink.write_bytes("\ufeff".encode())
    report = _write(fmt, records, sink, progress, progress_every)
    out.flush()
    if path is None:
        return report
    _write_manifest(
        path,
        {
            "manifest_version": _MANIFEST_VERSION,
            "file": path.name.removesuffix(MANIFEST_SUFFIX),
            "format": fmt,
            "bom": bom,
            "store": redact_url(store.url),
            "query": _query_dict(query),
            "count": report.count,
            "first_timestamp": report.first_timestamp,
            "last_timestamp": report.last_timestamp,
            "bytes": report.bytes,
            "sha256": report.sha256,
            "chain_heads": report.chain_heads,
            "created": micros_to_iso(to_micros(datetime.now(UTC))),
        },
    )
    return replace(report, manifest_path=path)


def _manifest_path(out: BinaryIO) -> Path:
    """``<out.name>.manifest.json``.

    Raises:
        ValueError: ``out`` is not a file opened by path (a pipe, stdout, a buffer).
    """
    name = getattr(out, "name", None)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not isinstance(name, str) or name.startswith("<"):
        raise ValueError(
            f"a manifest needs an output file with a name, not {out!r}: open the export "
            "file by path, e.g. open('export.csv', 'xb')"
        )
    return Path(name + MANIFEST_SUFFIX)


def _write(
    fmt: str,
    records: Iterator[StoredRecord],
    sink: _Output,
    progress: Callable[[int], object] | None,
    every: int,
) -> ExportReport:
    """The loop shared by every format: write, count, track time range and chain heads.

    JSON and NDJSON go to ``sink`` as bytes; CSV and text are written to a text buffer
    first, encoded to UTF-8 each time it holds 64 Ki characters.
    """
    heads: dict[str, list[int]] = {}
    count = first_ts = last_ts = 0
    write_bytes = sink.write_bytes
    text = io.StringIO()
    writerow = csv.writer(text, lineterminator="\r\n").writerow
    render = ConsoleRenderer(color=False, show_context=True, utc=True).render
    if fmt == "csv":
        writerow(CSV_COLUMNS)
    elif fmt == "json":
        write_bytes(b"[")
    for rec in records:
        if fmt == "ndjson":
            write_bytes(_line(rec) + b"\n")
        elif fmt == "json":
            write_bytes((b",\n" if count else b"\n") + _line(rec))
        else:
            if fmt == "csv":
                writerow(_csv_row(_event(rec)))
            else:
                text.write(render(_event(rec)) + "\n")
            if text.tell() >= _FLUSH_CHARS:
                _drain(text, sink)
        if not count:
            first_ts = rec.ts
        last_ts = rec.ts
        count += 1
        seq = rec.seq
        head = heads.get(rec.stream)
        if head is None:
            heads[rec.stream] = [seq, seq, 1]
        else:
            if seq < head[0]:
                head[0] = seq
            elif seq > head[1]:
                head[1] = seq
            head[2] += 1
        if progress is not None and count % every == 0:
            progress(count)
    _drain(text, sink)
    if fmt == "json":
        write_bytes(b"\n]\n")
    sink.flush()
    if progress is not None:
        progress(count)
    return ExportReport(
        format=fmt,
        count=count,
        bytes=sink.size,
        sha256=sink.sha256.hexdigest(),
        first_timestamp=micros_to_iso(first_ts) if count else None,
        last_timestamp=micros_to_iso(last_ts) if count else None,
        chain_heads={
            stream: {"first_seq": h[0], "last_seq": h[1], "count": h[2]}
            for stream, h in sorted(heads.items())
        },
    )


def _drain(text: io.StringIO, sink: _Output) -> None:
    """Move the text buffer's content to ``sink`` as UTF-8."""
    if text.tell():
        sink.write_bytes(text.getvalue().encode("utf-8", "backslashreplace"))
        text.seek(0)
        text.truncate()
