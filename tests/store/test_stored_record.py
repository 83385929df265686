"""The stored form of a record: a line is parsed once on the indexer's path."""

from __future__ import annotations

import orjson

from plexichat.core.logging.store.base import record_from_event, record_from_line


def test_a_line_is_parsed_once_and_the_parse_travels_with_the_record() -> None:
    """record_from_line keeps its parse (backends reuse it); equality ignores it."""
    line = orjson.dumps(
        {"timestamp": "2026-01-01T00:00:00.000Z", "level": "INFO", "message": "hi",
         "context": {"user_id": "u1"}, "stream": "s", "seq": 3}
    )  # fmt: skip
    rec = record_from_line(line + b"\n")
    assert rec is not None
    assert rec.doc is not None
    assert rec.doc["context"] == {"user_id": "u1"}
    assert rec.record is rec.doc
    assert rec.parsed() is rec.doc
    again = record_from_event(orjson.loads(line), raw=line)
    assert again.doc is None
    assert again == rec  # the parse is not part of the stored value
    assert again.parsed() == rec.doc
