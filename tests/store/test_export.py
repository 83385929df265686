"""Export: every format round-trips, CSV is safe for spreadsheets, memory stays constant."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from plexichat.core.logging._cli import export_cmd
from plexichat.core.logging.cli import main
from plexichat.core.logging.sinks.console import ConsoleRenderer
from plexichat.core.logging.store import LogQuery, LogStore, QuerySyntaxError, open_store
from plexichat.core.logging.store.base import StoredRecord, record_from_event
from plexichat.core.logging.store.export import CSV_COLUMNS, export_records

ASC = LogQuery(order="asc")
HOSTILE = ["=SUM(A1)", "+1", "-2", "@x", "\t=x", "\r=x"]


def event(second: int, **fields: Any) -> dict[str, Any]:
    """A record in the PlexiChat schema, ``second`` seconds after 2026-01-01, seq ``second``."""
    seq = second
    return {
        "timestamp": f"2026-01-01T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:"
        f"{second % 60:02d}.000Z",
        "level": "INFO",
        "category": "system",
        "message": f"message {seq}",
        "module": "mod",
        "function": "fn",
        "line": 10 + seq,
        "logger": "app",
        "severity_number": 9,
        "stream": "s1",
        "seq": seq,
        **fields,
    }


def fill(store: LogStore, *events: dict[str, Any]) -> list[bytes]:
    """Append the events; returns the raw lines they were stored from, in order."""
    records = [record_from_event(e) for e in events]
    store.append(records)
    return [r.raw for r in records]


def export(store: LogStore, fmt: str, query: LogQuery = ASC, **kwargs: Any) -> bytes:
    """The bytes of an export to memory."""
    out = io.BytesIO()
    export_records(store, query, fmt, out, **kwargs)
    return out.getvalue()


def csv_rows(data: bytes) -> list[list[str]]:
    """The rows of a CSV export, read as a spreadsheet importer would."""
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.fixture
def sample(store: LogStore) -> list[bytes]:
    """Five records (non-ASCII text, context, two streams) in the store; their raw lines."""
    return fill(
        store,
        event(1, message="héllo wörld ✓", context={"user_id": "u1"}),
        event(2, level="ERROR", message="database timeout", context={"user_id": "u2"}),
        event(3, level="WARNING", metadata={"event_type": "login"}, stream="s2", seq=7),
        event(4, level="ERROR", message="cache timeout", performance_data={"ms": 12.5}),
        event(5, message="emoji 🎉", stream="s2", seq=8),
    )


# -- formats ------------------------------------------------------------------------------------


def test_ndjson_is_the_stored_lines_byte_for_byte(store: LogStore, sample: list[bytes]) -> None:
    """NDJSON writes each stored line unchanged, one per line, oldest first."""
    assert export(store, "ndjson").split(b"\n") == [*sample, b""]


def test_json_is_one_array_of_the_records(store: LogStore, sample: list[bytes]) -> None:
    """JSON is one array whose elements are the stored records."""
    assert json.loads(export(store, "json")) == [orjson.loads(raw) for raw in sample]


def test_csv_has_the_stable_header_and_the_values(store: LogStore, sample: list[bytes]) -> None:
    """CSV starts with the fixed header; scalars are cells, nested fields JSON cells."""
    header, *rows = csv_rows(export(store, "csv"))
    assert header == list(CSV_COLUMNS)
    assert len(rows) == len(sample)
    for row, raw in zip(rows, sample, strict=True):
        record, cells = orjson.loads(raw), dict(zip(header, row, strict=True))
        for key in ("timestamp", "level", "category", "logger", "module", "function", "message"):
            assert cells[key] == record[key]
        assert int(cells["line"]) == record["line"]
        assert int(cells["seq"]) == record["seq"]
        for key in ("context", "metadata", "performance_data"):
            assert (json.loads(cells[key]) if cells[key] else None) == record.get(key)
        assert cells["extra"] == ""


def test_csv_keys_outside_the_schema_go_to_extra(store: LogStore) -> None:
    """Top-level keys the schema does not know are kept, as one JSON object in ``extra``."""
    fill(store, event(1, host="web-1", retries=3))
    _, row = csv_rows(export(store, "csv"))
    assert json.loads(row[CSV_COLUMNS.index("extra")]) == {"host": "web-1", "retries": 3}


def test_txt_is_the_console_format(store: LogStore, sample: list[bytes]) -> None:
    """TXT is the console format without colors, context shown, times in UTC."""
    renderer = ConsoleRenderer(color=False, show_context=True, utc=True)
    expected = "".join(renderer.render(orjson.loads(raw)) + "\n" for raw in sample)
    assert export(store, "txt").decode() == expected


def test_txt_escapes_control_characters(store: LogStore) -> None:
    """A message cannot forge a line or send escape sequences: controls are escaped."""
    fill(store, event(1, message="ok\n[2026-01-01 00:00:00] [CRITICAL] forged\x1b[2J"))
    text = export(store, "txt").decode()
    assert text.count("\n") == 1
    assert "\x1b" not in text
    assert "ok\\n[2026-01-01 00:00:00] [CRITICAL] forged\\x1b[2J" in text


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "txt"])
def test_an_empty_export_is_valid(store: LogStore, fmt: str) -> None:
    """With no match, JSON is ``[]``, CSV only its header, NDJSON and TXT empty."""
    data = export(store, fmt)
    if fmt == "json":
        assert json.loads(data) == []
    elif fmt == "csv":
        assert csv_rows(data) == [list(CSV_COLUMNS)]
    else:
        assert data == b""


def test_a_stored_line_that_is_not_json_keeps_the_json_framing() -> None:
    """A record stored by other code whose line is not a JSON object is re-serialized."""
    store = open_store("sqlite://")
    try:
        good = record_from_event(event(1))
        store.append([good, replace(good, seq=2, raw=b'{"broken": \n')])
        items = json.loads(export(store, "json"))
        assert items[0] == orjson.loads(good.raw)
        assert items[1]["raw"] == '{"broken": \n'
        assert len(export(store, "ndjson").splitlines()) == 2
    finally:
        store.close()


def test_the_query_order_is_honoured(store: LogStore, sample: list[bytes]) -> None:
    """A newest-first query exports newest first."""
    data = export(store, "ndjson", LogQuery(order="desc"))
    assert data.splitlines() == sample[::-1]


# -- CSV safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_csv_formula_cells_are_escaped(store: LogStore, text: str) -> None:
    """A text cell starting with = + - @ tab or CR gets a leading quote: shown, not run."""
    fill(store, event(1, message=text, logger=text, stack=text))
    _, row = csv_rows(export(store, "csv"))
    for column in ("message", "logger", "stack"):
        assert row[CSV_COLUMNS.index(column)] == "'" + text


def test_csv_real_numbers_stay_numbers(store: LogStore) -> None:
    """A number in the record (a numeric level, a negative line) is written as a number."""
    fill(store, event(1, level=40, line=-5, tag=-1.5))
    _, row = csv_rows(export(store, "csv"))
    cells = dict(zip(CSV_COLUMNS, row, strict=True))
    assert (cells["level"], cells["line"], cells["tag"]) == ("40", "-5", "-1.5")


def test_csv_other_values_are_json(store: LogStore) -> None:
    """Booleans, nulls and nested values in any column are written as JSON text."""
    fill(store, event(1, function=None, tag=True, trace_id={"a": [1]}, context=[-1], metadata=-3))
    _, row = csv_rows(export(store, "csv"))
    cells = dict(zip(CSV_COLUMNS, row, strict=True))
    assert (cells["function"], cells["tag"], cells["trace_id"]) == ("", "true", '{"a":[1]}')
    assert (cells["context"], cells["metadata"]) == ("[-1]", "'-3")


def test_csv_quoting_round_trips_commas_quotes_and_newlines(store: LogStore) -> None:
    """Commas, quotes, CR/LF and NUL in a message read back exactly (RFC 4180 quoting)."""
    message = 'a, "b",\r\nc\nd;\x00 ""e""'
    fill(store, event(1, message=message))
    data = export(store, "csv")
    assert data.endswith(b"\r\n")
    _, row = csv_rows(data)
    assert row[CSV_COLUMNS.index("message")] == message


def test_csv_bom_for_spreadsheets(store: LogStore, sample: list[bytes]) -> None:
    """``bom=True`` starts the CSV with the UTF-8 BOM Excel needs to detect UTF-8."""
    data = export(store, "csv", bom=True)
    assert data.startswith(b"\xef\xbb\xbf")
    assert csv_rows(data)[1][CSV_COLUMNS.index("message")] == "héllo wörld ✓"


# -- filters, manifest, progress, errors --------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "seqs"),
    [
        (LogQuery(min_level="ERROR", order="asc"), [2, 4]),
        (LogQuery(search="timeout", order="asc"), [2, 4]),
        (LogQuery(where=(("context.user_id", "u2"),), order="asc"), [2]),
    ],
    ids=["level", "search", "where"],
)
def test_filters_apply(
    store: LogStore, sample: list[bytes], query: LogQuery, seqs: list[int]
) -> None:
    """Only the records the query matches are exported."""
    lines = export(store, "ndjson", query).splitlines()
    assert [orjson.loads(line)["seq"] for line in lines] == seqs


def test_manifest_matches_the_export(store: LogStore, sample: list[bytes], tmp_path: Path) -> None:
    """The manifest's SHA-256, size, count, time range and chain heads describe the file."""
    path = tmp_path / "slice.csv"
    query = LogQuery(min_level="INFO", order="asc")
    with open(path, "xb") as out:
        report = export_records(store, query, "csv", out, manifest=True)
    manifest = json.loads((tmp_path / "slice.csv.manifest.json").read_text())
    data = path.read_bytes()
    assert report.manifest_path == tmp_path / "slice.csv.manifest.json"
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == report.sha256
    assert manifest["bytes"] == len(data)
    assert (manifest["file"], manifest["format"], manifest["count"]) == ("slice.csv", "csv", 5)
    assert manifest["first_timestamp"] == "2026-01-01T00:00:01.000000Z"
    assert manifest["last_timestamp"] == "2026-01-01T00:00:05.000000Z"
    assert manifest["chain_heads"] == {
        "s1": {"first_seq": 1, "last_seq": 4, "count": 3},
        "s2": {"first_seq": 7, "last_seq": 8, "count": 2},
    }
    assert manifest["query"]["min_level"] == 20
    assert manifest["query"]["order"] == "asc"


def test_a_manifest_needs_a_named_file(store: LogStore) -> None:
    """``manifest=True`` on a stream without a file name is refused before writing."""
    out = io.BytesIO()
    with pytest.raises(ValueError, match="manifest needs an output file"):
        export_records(store, ASC, "json", out, manifest=True)
    assert out.getvalue() == b""


def test_a_bad_search_raises_before_writing(store: LogStore, sample: list[bytes]) -> None:
    """A query the store cannot run raises QuerySyntaxError and writes nothing."""
    out = io.BytesIO()
    with pytest.raises(QuerySyntaxError, match="no words"):
        export_records(store, LogQuery(search="!!!"), "csv", out)
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    ("fmt", "bom", "says"), [("xml", False, "unknown export format"), ("json", True, "BOM")]
)
def test_bad_options_are_refused(store: LogStore, fmt: str, bom: bool, says: str) -> None:
    """An unknown format, or a BOM on JSON (RFC 8259 forbids it), is a ValueError."""
    with pytest.raises(ValueError, match=says):
        export(store, fmt, bom=bom)


def test_progress_is_reported_every_n_records(store: LogStore, sample: list[bytes]) -> None:
    """``progress`` gets the running count every ``progress_every`` records and at the end."""
    calls: list[int] = []
    export(store, "txt", progress=calls.append, progress_every=2)
    assert calls == [2, 4, 5]


# -- constant memory ----------------------------------------------------------------------------

BIG = 200_000


_BIG_LINE = (
    b'{"timestamp":"2026-01-01T00:00:00.000Z","level":"INFO","category":"system",'
    b'"message":"user %d did something, with a \'quote\' and \\"more\\"","module":"mod",'
    b'"function":"fn","line":%d,"context":{"user_id":"u%d","request_id":"r%d"},'
    b'"logger":"app","severity_number":9,"stream":"s1","seq":%d}'
)


def _big_records(n: int) -> Iterator[list[StoredRecord]]:
    """``n`` realistic records in batches of 10,000, built from a template (fast)."""
    base = 1_767_225_600_000_000  # 2026-01-01
    for start in range(0, n, 10_000):
        batch = []
        for i in range(start, min(start + 10_000, n)):
            raw = _BIG_LINE % (i, i % 500, i % 100, i, i)
            batch.append(StoredRecord(base + i, 20, "INFO", "system", "app", "", "", "s1", i, raw))
        yield batch


def _peak_of_export(store: LogStore, fmt: str, path: Path) -> tuple[int, int, int]:
    """(peak traced bytes, bytes written, records) of one export to a file."""
    tracemalloc.start()
    try:
        with open(path, "wb") as out:
            report = export_records(store, ASC, fmt, out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, report.bytes, report.count


def test_memory_stays_constant(tmp_path: Path) -> None:
    """Exporting 200,000 records as CSV peaks at a small fraction of the export's size."""
    store = open_store(f"sqlite:///{tmp_path / 'big.db'}")
    try:
        for batch in _big_records(BIG):
            store.append(batch)
        peak, size, count = _peak_of_export(store, "csv", tmp_path / "big.csv")
    finally:
        store.close()
    assert count == BIG
    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte export"


def test_memory_stays_constant_on_each_backend(store: LogStore, tmp_path: Path) -> None:
    """Each backend streams: 100,000 records export as NDJSON in a fraction of their size."""
    for batch in _big_records(100_000):
        store.append(batch)
    peak, size, count = _peak_of_export(store, "ndjson", tmp_path / "big.ndjson")
    assert count == 100_000
    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte export"


# -- CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a CLI whose log directory holds an imported file of three records."""
    app = tmp_path / "app.jsonl"
    app.write_bytes(
        b'{"timestamp": "2024-01-15T10:30:45.000Z", "level": "INFO", "message": "fine"}\n'
        b'{"timestamp": "2024-01-15T10:30:46.000Z", "level": "ERROR", "message": "=1+1, \\"x\\""}\n'
        b'{"timestamp": "2024-01-15T10:30:47.000Z", "level": "ERROR", "message": "db timeout"}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    env["PLEXICHAT_LOG_DIRECTORY"] = str(tmp_path / "logs")
    done = _cli(env, "import", str(app))
    assert done.returncode == 0, done.stderr
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "plexichat.core.logging.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, check=False)


def test_cli_exports_to_stdout_with_filters(cli_env: dict[str, str]) -> None:
    """`plexichat-logs export --format csv --level ERROR` prints the matching rows."""
    done = _cli(cli_env, "export", "--format", "csv", "--level", "ERROR", "--since", "3650 days")
    assert done.returncode == 0, done.stderr
    messages = [row[CSV_COLUMNS.index("message")] for row in csv_rows(done.stdout)[1:]]
    assert messages == ['\'=1+1, "x"', "db timeout"]


def test_cli_writes_a_file_and_its_manifest(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`-o FILE --manifest` writes the export and a manifest whose SHA-256 matches it."""
    out = tmp_path / "errors.json"
    done = _cli(cli_env, "export", "--format", "json", "--search", "timeout", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert [r["message"] for r in json.loads(out.read_bytes())] == ["db timeout"]
    out.unlink()
    done = _cli(cli_env, "export", "--format", "ndjson", "-o", str(out), "--manifest")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["count"] == 3


def test_cli_refuses_to_overwrite_without_force(cli_env: dict[str, str], tmp_path: Path) -> None:
    """An existing -o file is kept (exit 2) unless --force is given."""
    out = tmp_path / "x.txt"
    out.write_text("keep me")
    done = _cli(cli_env, "export", "--format", "txt", "-o", str(out))
    assert done.returncode == 2
    assert b"--force" in done.stderr
    assert out.read_text() == "keep me"
    done = _cli(cli_env, "export", "--format", "txt", "-o", str(out), "--force")
    assert done.returncode == 0, done.stderr
    assert out.read_text().count("\n") == 3


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--search", "database AND"], "search"),
        (["--where", "user_id=u1"], "context.NAME"),
        (["--level", "LOUD"], "LOUD"),
        (["--since", "soon"], "--since 'soon'"),
        (["--start", "yesterday"], "ISO-8601"),
        (["--manifest"], "-o FILE"),
        (["--bom"], "--bom"),
    ],
)
def test_cli_bad_filters_exit_2(
    args: list[str],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """A bad filter or option exits 2 with a message naming it, and writes nothing."""
    monkeypatch.setenv("PLEXICHAT_LOG_DIRECTORY", str(tmp_path / "logs"))
    assert main(["export", "--format", "json", *args]) == 2
    captured = capsysbinary.readouterr()
    assert captured.out == b""
    assert says.encode() in captured.err


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In this process, a configured log directory whose store holds two imported records."""
    monkeypatch.setenv("PLEXICHAT_LOG_DIRECTORY", str(tmp_path / "logs"))
    app = tmp_path / "app.jsonl"
    app.write_bytes(
        b'{"timestamp": "2024-01-15T10:30:45.000Z", "level": "INFO", "message": "a"}\n'
        b'{"timestamp": "2024-01-15T10:30:46.000Z", "level": "INFO", "message": "b"}\n'
    )
    assert main(["import", str(app)]) == 0
    return tmp_path


def test_cli_shows_progress_on_a_terminal(
    imported: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal stderr, the export shows a progress bar."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["export", "--format", "txt", "-o", str(imported / "out.txt")]) == 0
    assert "exporting" in terminal.getvalue()
    assert (imported / "out.txt").read_text().count("\n") == 2


def test_cli_failed_export_leaves_no_partial_file(
    imported: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When writing fails midway, the partial file is removed and the exit code is 1."""

    def fail_midway(store: LogStore, query: LogQuery, fmt: str, out: Any, **_: Any) -> None:
        out.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_cmd, "export_records", fail_midway)
    assert main(["export", "--format", "csv", "-o", str(imported / "out.csv")]) == 1
    assert "No space left" in capsys.readouterr().err
    assert not (imported / "out.csv").exists()
