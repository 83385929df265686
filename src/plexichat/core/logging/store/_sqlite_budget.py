"""Bounding an SQLite statement: by a deadline, or by the work it may do.

One :class:`Budget` is the progress handler of one connection (SQLite calls it every
:data:`STEPS` virtual machine steps); returning true interrupts the running statement.
"""

from __future__ import annotations

import math
import sqlite3
import time
from typing import Any, Final

__all__ = ["STEPS", "Budget"]

STEPS: Final = 500
"""Virtual machine steps between two calls of the handler."""


class Budget:
    """The progress handler of one connection.

    ``deadline`` (a :func:`time.monotonic` time) interrupts any statement running past it;
    :meth:`run` bounds one statement by its work instead.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.deadline = math.inf
        self._calls_left = -1  # -1: no work bound
        self._exhausted = False
        conn.set_progress_handler(self._check, STEPS)

    def _check(self) -> bool:
        if self._calls_left >= 0:
            if self._calls_left == 0:
                self._exhausted = True
                return True
            self._calls_left -= 1
        return self.deadline != math.inf and time.monotonic() > self.deadline

    def run(
        self, conn: sqlite3.Connection, sql: str, params: list[object], steps: int
    ) -> list[Any] | None:
        """The rows of ``sql``, or None when it needed more than about ``steps`` steps.

        Raises:
            sqlite3.OperationalError: the deadline passed, or any other failure.
        """
        self._calls_left, self._exhausted = max(1, steps // STEPS), False
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            if self._exhausted:
                return None
            raise
        finally:
            self._calls_left, self._exhausted = -1, False
