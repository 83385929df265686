"""Time slots of sketches: the rolling 1 m / 5 m / 1 h windows behind every series.

Values go into the current 10-second slot. Slots older than five minutes are merged into
one-minute slots, and those older than an hour are dropped from the windows (every closed slot
has already been merged into the lifetime ``closed`` sketch). So a series holds at most
30 + 55 slot sketches plus one lifetime sketch, whatever the traffic.
"""

from __future__ import annotations

import math

from .sketch import Sketch

__all__ = ["COARSE", "FINE", "HORIZON", "Slots"]

FINE = 10.0
"""Seconds per fine slot (the resolution of windows up to five minutes)."""
FINE_SPAN = 300.0
"""How long fine slots are kept before they are merged into one-minute slots."""
COARSE = 60.0
"""Seconds per coarse slot."""
HORIZON = 3600.0
"""The longest window served (one hour)."""


class Slots:
    """The slot sketches of one series (not thread-safe: the series' lock guards it).

    Args:
        now: the current time, in seconds since the epoch.
    """

    __slots__ = ("closed", "coarse", "cur", "fine", "slot_end")

    def __init__(self, now: float) -> None:
        start = math.floor(now / FINE) * FINE
        self.cur = Sketch()
        self.fine: dict[float, Sketch] = {start: self.cur}
        self.coarse: dict[float, Sketch] = {}
        self.closed = Sketch()
        self.slot_end = start + FINE

    def roll(self, now: float) -> Sketch:
        """Start the slot that holds ``now`` (``now >= slot_end``) and return its sketch."""
        self.closed.merge(self.cur)
        start = math.floor(now / FINE) * FINE
        self.cur = Sketch()
        self.fine[start] = self.cur
        self.slot_end = start + FINE
        for t in [t for t in self.fine if t <= start - FINE_SPAN]:
            minute = math.floor(t / COARSE) * COARSE
            old = self.fine.pop(t)
            if old.count:
                self.coarse.setdefault(minute, Sketch()).merge(old)
        for t in [t for t in self.coarse if t <= start - HORIZON]:
            del self.coarse[t]
        return self.cur

    def total(self) -> Sketch:
        """Every value ever recorded (a new sketch)."""
        out = self.closed.copy()
        out.merge(self.cur)
        return out

    def points(self, now: float, seconds: float) -> list[tuple[float, Sketch]]:
        """(slot start, sketch) of the slots that start within ``seconds`` before ``now``,
        oldest first, empty slots left out. Windows are slot-aligned: 10 s resolution up to
        five minutes back, 60 s beyond."""
        since = now - seconds
        out = [(t, s) for t, s in self.coarse.items() if t + COARSE > since and s.count]
        out += [(t, s) for t, s in self.fine.items() if t + FINE > since and s.count]
        out.sort(key=lambda p: p[0])
        return out

    def window(self, now: float, seconds: float) -> Sketch:
        """The values of the last ``seconds`` (slot-aligned), merged into one new sketch."""
        out = Sketch()
        for _, s in self.points(now, seconds):
            out.merge(s)
        return out
