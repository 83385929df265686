"""Files opened to hold a ``flock``, which a forked child must not keep.

A lock belongs to the open file, which a child shares through its inherited descriptor: a
child that kept it would hold the lock (a segment's claim, the key directory's lock) for
as long as it lives, blocking every process that needs it, itself included. Descriptors
opened here are closed in every forked child; ``O_CLOEXEC`` keeps them from executed
programs. The open and the bookkeeping happen under a lock a fork waits for, so no child is
born between the two; a fork never waits for a lock held by another process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["close_lock_file", "open_lock_file"]

_OPEN: set[int] = set()
_GUARD = threading.Lock()


def open_lock_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` of a file this process will ``flock``, closed in forked children.

    Raises:
        OSError: the file cannot be opened.
    """
    with _GUARD:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)
        _OPEN.add(fd)
    return fd


def close_lock_file(fd: int) -> None:
    """Close a descriptor :func:`open_lock_file` returned (its lock ends with it)."""
    with _GUARD:
        _OPEN.discard(fd)
        os.close(fd)


def _before_fork() -> None:
    _GUARD.acquire()


def _after_fork_in_parent() -> None:
    _GUARD.release()


def _after_fork_in_child() -> None:
    global _GUARD
    for fd in _OPEN:
        try:
            os.close(fd)
        except OSError:
            pass
    _OPEN.clear()
    _GUARD = threading.Lock()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
