"""Bounded detection state: size-capped LRU maps, sliding windows and the keys they use.

An attacker controls how many distinct IPs and user names the detector sees, so every map
is capped: past ``cap`` keys the least recently seen key is evicted (and counted), and
every per-key window holds at most its rule's threshold of entries. Keys are bounded too:
a long user name is cut and suffixed with a digest, an IPv6 address counts by its /64
network (one host usually owns a whole /64, so rotating addresses inside it evades nothing).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BoundedMap", "CountWindow", "DistinctWindow", "ip_key", "text_key"]

V = TypeVar("V")

_MAX_KEY = 128


def text_key(value: object) -> str | None:
    """A bounded key for a user name (or any text); None for empty values."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    if not text:
        return None
    if len(text) <= _MAX_KEY:
        return str.__str__(text)
    digest = hashlib.blake2b(text.encode("utf-8", "backslashreplace"), digest_size=8).hexdigest()
    return f"{text[:96]}...#{digest}"


def ip_key(value: object) -> str | None:
    """The key of a client address: IPv4 as is, IPv6 by its /64 network, else bounded text."""
    if not isinstance(value, str) or not value:
        return text_key(value)
    if value.count(":") < 2:  # IPv4 (or a host name): no parsing on the common path
        return text_key(value)
    try:
        address = ipaddress.IPv6Address(value.strip("[]").partition("%")[0])
    except ValueError:
        return text_key(value)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))


class BoundedMap(Generic[V]):
    """A map of at most ``cap`` keys; the least recently used key is evicted (counted).

    Not thread-safe by itself: the detector holds its lock around every use.
    """

    __slots__ = ("_data", "cap", "evictions")

    def __init__(self, cap: int) -> None:
        self._data: OrderedDict[str, V] = OrderedDict()
        self.cap = cap
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def get(self, key: str, factory: Callable[[], V]) -> V:
        """The value of ``key`` (now the most recently used), created when missing."""
        data = self._data
        value = data.get(key)
        if value is None:
            value = data[key] = factory()
            if len(data) > self.cap:
                data.popitem(last=False)
                self.evictions += 1
        else:
            data.move_to_end(key)
        return value

    def pop(self, key: str) -> None:
        """Forget ``key``."""
        self._data.pop(key, None)

    def clear(self) -> None:
        """Forget every key (the eviction count stays)."""
        self._data.clear()


class CountWindow:
    """The times of the last ``threshold`` matching events of one key, and its last alert."""

    __slots__ = ("fired", "times")

    def __init__(self, threshold: int) -> None:
        self.times: deque[float] = deque(maxlen=threshold)
        self.fired: float | None = None

    def hit(self, now: float, window: float, cooldown: float) -> int:
        """Count one event at ``now``; return the count when it completes ``threshold``
        events within ``window`` (and the last alert is ``cooldown`` ago), else 0.

        After an alert the window starts empty: the next alert needs ``threshold`` new events.
        """
        times = self.times
        times.append(now)
        if len(times) < (times.maxlen or 0) or now - times[0] > window:
            return 0
        if self.fired is not None and now - self.fired < cooldown:
            return 0
        count = len(times)
        self.fired = now
        times.clear()
        return count


class DistinctWindow:
    """The distinct values (e.g. user names) one key (e.g. an IP) used within the window."""

    __slots__ = ("fired", "seen", "threshold")

    def __init__(self, threshold: int) -> None:
        self.seen: dict[str, float] = {}
        self.threshold = threshold
        self.fired: float | None = None

    def hit(self, value: str, now: float, window: float, cooldown: float) -> list[str]:
        """Record ``value`` at ``now``; return the distinct values when they reach
        ``threshold`` within ``window`` (and the last alert is ``cooldown`` ago), else []."""
        seen = self.seen
        seen.pop(value, None)  # re-inserted last: the dict stays ordered by time
        seen[value] = now
        oldest = next(iter(seen.values()))
        if now - oldest > window:
            for name in [n for n, t in seen.items() if now - t > window]:
                del seen[name]
        if len(seen) < self.threshold:
            return []
        if self.fired is not None and now - self.fired < cooldown:
            while len(seen) >= self.threshold:  # stay bounded while cooling down
                del seen[next(iter(seen))]
            return []
        values = list(seen)
        self.fired = now
        seen.clear()
        return values
