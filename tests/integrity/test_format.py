"""The wire format's primitives: tags, line splitting, key evolution."""

from __future__ import annotations

import hmac

from hypothesis import given
from hypothesis import strategies as st

from plexichat.core.logging.integrity._format import (
    TAG_LEN,
    Tagger,
    evolve,
    split_line,
    tag_of,
)


@given(key=st.binary(min_size=0, max_size=200), head=st.binary(min_size=0, max_size=100))
def test_the_fast_tagger_computes_standard_hmac(key: bytes, head: bytes) -> None:
    """Tagger (precomputed pads) gives exactly HMAC-SHA-256 truncated to 128 bits."""
    assert Tagger(key)(head) == tag_of(key, head)
    assert tag_of(key, head) == hmac.digest(key, head, "sha256")[:16].hex().encode()


def test_split_line_takes_the_tag_off_and_rejects_lines_without_one() -> None:
    """A sealed line splits into body and tag; anything else is None."""
    body = b'{"message":"x","seq":1'
    line = body + b',"tag":"' + b"a" * 32 + b'"}\n'
    assert len(line) - 1 - len(body) == TAG_LEN
    assert split_line(line) == (body, b"a" * 32)
    assert split_line(b'{"message":"x"}\n') is None
    assert split_line(b"") is None


def test_evolved_keys_differ_per_epoch_and_do_not_repeat() -> None:
    """Each epoch's key is new; evolving is deterministic for the auditor."""
    keys = [bytes(32)]
    for epoch in range(50):
        keys.append(evolve(keys[-1], epoch))
    assert len(set(keys)) == len(keys)
    assert evolve(bytes(32), 0) == keys[1]
