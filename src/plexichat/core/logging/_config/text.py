"""Bounded text for configuration error messages: a hostile value never makes one huge."""

from __future__ import annotations

import reprlib

__all__ = ["MAX_MESSAGE", "bounded_repr", "shorten"]

MAX_MESSAGE = 1000
"""The most characters one problem's explanation keeps."""

_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 10
_repr.maxlevel = 3


def bounded_repr(value: object) -> str:
    """``repr(value)`` cut to a few hundred characters (nested values abridged with ``...``)."""
    try:
        text = _repr.repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not break error reporting
        return f"<{type(value).__name__}>"
    return shorten(text, 400)


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
