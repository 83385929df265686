"""A relative-error quantile sketch (DDSketch-style logarithmic buckets).

Every positive value ``v`` lands in bucket ``ceil(log(v) / log(gamma))`` with
``gamma = (1 + a) / (1 - a)``; a bucket's representative value is within ``a`` (relative) of
every value in it, so any quantile is answered within relative error ``a`` (1% by default).
Negative values use a mirrored store, values whose magnitude is below ``MIN_VALUE`` count as
zero. Memory is bounded: past ``max_buckets`` per store the lowest buckets are merged (the
high quantiles, the ones latency work cares about, stay exact to ``a``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

__all__ = ["MIN_VALUE", "Sketch"]

_log = math.log
_ceil = math.ceil

MIN_VALUE = 1e-300
"""Magnitudes below this count as zero. Far below any real measurement: tiny values get their
own buckets (the bucket cap merges the smallest ones only when a series spans more than
about 17 orders of magnitude)."""


class Sketch:
    """Count, sum, min, max and quantiles (relative error ``accuracy``) of a stream of values.

    Not thread-safe: the registry holds a lock around every update and read.

    Args:
        accuracy: relative accuracy of quantiles, 0 < accuracy < 1 (default 1%).
        max_buckets: buckets kept per sign before the lowest are merged.

    Example:
        >>> s = Sketch()
        >>> for v in (1.0, 2.0, 3.0, 4.0):
        ...     s.add(v)
        >>> round(s.quantile(0.5), 1), s.count
        (2.0, 4)
    """

    __slots__ = (
        "_gamma",
        "_inv_log_gamma",
        "accuracy",
        "count",
        "max",
        "max_buckets",
        "min",
        "neg",
        "pos",
        "sum",
        "zero",
    )

    def __init__(self, accuracy: float = 0.01, max_buckets: int = 2048) -> None:
        if not 0.0 < accuracy < 1.0:
            raise ValueError(f"accuracy={accuracy!r}: must be between 0 and 1 (e.g. 0.01)")
        self.accuracy = accuracy
        self._gamma = (1.0 + accuracy) / (1.0 - accuracy)
        self._inv_log_gamma = 1.0 / math.log(self._gamma)
        self.max_buckets = max_buckets
        self.pos: dict[int, int] = {}
        self.neg: dict[int, int] = {}
        self.zero = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Add one finite value (the caller has checked it is finite)."""
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value > MIN_VALUE:
            store = self.pos
            key = _ceil(_log(value) * self._inv_log_gamma)
        elif value < -MIN_VALUE:
            store = self.neg
            key = _ceil(_log(-value) * self._inv_log_gamma)
        else:
            self.zero += 1
            return
        store[key] = store.get(key, 0) + 1
        if len(store) > self.max_buckets:
            self._collapse(store)

    def _collapse(self, store: dict[int, int]) -> None:
        keys = sorted(store)
        # merge the smallest magnitudes (the values closest to zero, the least interesting end
        # for both signs), down to 7/8 of the cap so a sort is needed only every cap/8 new keys
        extra = len(keys) - (self.max_buckets - self.max_buckets // 8)
        target = keys[extra]
        moved = sum(store.pop(k) for k in keys[:extra])
        store[target] += moved

    def merge(self, other: Sketch) -> None:
        """Add every value of ``other`` (same accuracy) into this sketch."""
        if other.count == 0:
            return
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.zero += other.zero
        for mine, theirs in ((self.pos, other.pos), (self.neg, other.neg)):
            for k, c in theirs.items():
                mine[k] = mine.get(k, 0) + c
            if len(mine) > self.max_buckets:
                self._collapse(mine)

    def minus(self, earlier: Sketch) -> Sketch:
        """The values added since ``earlier`` (an older copy of this sketch), as a new sketch.

        Count, sum and buckets are exact differences; min and max are the representative
        values of the lowest and highest non-empty difference buckets (within ``accuracy``).
        """
        out = Sketch(self.accuracy, self.max_buckets)
        out.count = self.count - earlier.count
        if out.count <= 0:
            out.count = 0
            return out
        out.sum = self.sum - earlier.sum
        out.zero = max(self.zero - earlier.zero, 0)
        for mine, theirs, dest in (
            (self.pos, earlier.pos, out.pos),
            (self.neg, earlier.neg, out.neg),
        ):
            for k, c in mine.items():
                left = c - theirs.get(k, 0)
                if left > 0:
                    dest[k] = left
        values = [v for v, _ in out._ordered()]
        if values:
            out.min = min(max(values[0], self.min), self.max)
            out.max = min(max(values[-1], self.min), self.max)
            if out._holds(self.min):  # the extreme itself was added since: exact
                out.min = self.min
            if out._holds(self.max):
                out.max = self.max
        return out

    def _holds(self, value: float) -> bool:
        """Whether the bucket ``value`` falls in is non-empty."""
        if value > MIN_VALUE:
            return _ceil(_log(value) * self._inv_log_gamma) in self.pos
        if value < -MIN_VALUE:
            return _ceil(_log(-value) * self._inv_log_gamma) in self.neg
        return self.zero > 0

    def copy(self) -> Sketch:
        """An independent copy."""
        out = Sketch(self.accuracy, self.max_buckets)
        out.merge(self)
        return out

    def _value(self, key: int) -> float:
        return 2.0 * self._gamma**key / (self._gamma + 1.0)

    def _ordered(self) -> Iterator[tuple[float, int]]:
        """(representative value, count) from the lowest value to the highest."""
        for k in sorted(self.neg, reverse=True):
            yield -self._value(k), self.neg[k]
        if self.zero:
            yield 0.0, self.zero
        for k in sorted(self.pos):
            yield self._value(k), self.pos[k]

    def quantile(self, q: float) -> float:
        """The value at quantile ``q`` (0..1) within ``accuracy``; NaN when empty.

        The quantile is the smallest recorded value with at least ``q`` of all values at or
        below it (the nearest-rank definition, numpy's ``method="inverted_cdf"``).

        Raises:
            ValueError: ``q`` is outside 0..1.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile q={q!r}: must be between 0 and 1 (0.99 for p99)")
        if self.count == 0:
            return math.nan
        return self.quantiles((q,))[0]

    def quantiles(self, qs: tuple[float, ...]) -> list[float]:
        """Several quantiles in one pass over the buckets (``qs`` ascending)."""
        if self.count == 0:
            return [math.nan for _ in qs]
        ranks = [max(math.ceil(q * self.count) - 1, 0) for q in qs]
        out: list[float] = []
        seen = 0
        i = 0
        for value, c in self._ordered():
            seen += c
            while i < len(ranks) and seen > ranks[i]:
                out.append(min(max(value, self.min), self.max))
                i += 1
            if i == len(ranks):
                break
        while len(out) < len(qs):  # pragma: no cover - ranks never exceed count - 1
            out.append(self.max)
        return out

    @property
    def buckets(self) -> int:
        """How many buckets are held (a measure of memory use)."""
        return len(self.pos) + len(self.neg) + (1 if self.zero else 0)
