"""Detection state stays bounded whatever an attacker sends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from plexichat.core.logging.security.detection_state import (
    BoundedMap,
    CountWindow,
    DistinctWindow,
    ip_key,
    text_key,
)
from plexichat.core.logging.security_logger import SecurityEvent, SecurityEventType, ThreatDetector

from .conftest import FakeClock


def test_bounded_map_evicts_the_least_recently_used() -> None:
    """Past the cap the oldest-touched key goes, and the eviction is counted."""
    seen = BoundedMap[list[int]](3)
    for key in "abc":
        seen.get(key, list).append(1)
    seen.get("a", list)  # touch: b is now the oldest
    seen.get("d", list)
    assert len(seen) == 3
    assert seen.evictions == 1
    assert "b" not in seen
    assert "a" in seen
    seen.pop("a")
    seen.clear()
    assert len(seen) == 0
    assert seen.evictions == 1


def test_count_window_holds_at_most_threshold_times() -> None:
    """A key's window never holds more than its threshold of timestamps."""
    window = CountWindow(5)
    for t in range(1000):
        window.hit(float(t * 100), window=10.0, cooldown=0.0)
    assert len(window.times) <= 5


def test_distinct_window_stays_bounded_in_cooldown() -> None:
    """During a cooldown new distinct values do not pile up."""
    window = DistinctWindow(10)
    assert len(window.hit("u0", 0.0, 300.0, 300.0)) == 0
    fired = [window.hit(f"u{i}", 1.0, 300.0, 300.0) for i in range(1, 5000)]
    assert sum(1 for f in fired if f) == 1
    assert len(window.seen) < 10


def test_keys_are_bounded() -> None:
    """Huge user names become short keys; IPv6 counts by /64; IPv4-mapped as IPv4."""
    long_name = "x" * 1_000_000
    key = text_key(long_name)
    assert key is not None
    assert len(key) < 150
    assert text_key("y" * 1_000_000) != key
    assert text_key("") is None
    assert text_key(None) is None
    assert text_key(42) == "42"
    assert ip_key("2001:db8:aa:bb:1:2:3:4") == "2001:db8:aa:bb::/64"
    assert ip_key("[2001:db8::1%eth0]") == "2001:db8::/64"
    assert ip_key("::ffff:10.1.2.3") == "10.1.2.3"
    assert ip_key("10.1.2.3") == "10.1.2.3"
    assert ip_key("not:an:address") == "not:an:address"
    assert ip_key(None) is None


# Run without coverage tracing in a child process: a million events take seconds there.
MILLION = """
import json, sys
from plexichat.core.logging.security_logger import SecurityEvent, ThreatDetector

class Clock:
    now = 1000.0
    def __call__(self):
        return self.now

clock = Clock()
cap = int(sys.argv[1])
detector = ThreatDetector(max_keys=cap, clock=clock)
event = SecurityEvent("login_failure", user_id="admin")
observe = detector.observe
peak = 0
for i in range(1_000_000):
    event.ip_address = f"{10 + (i >> 24)}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    event.user_id = f"user{i % 50_000}"
    clock.now += 0.001
    observe(event)
    if i % 50_000 == 0:
        peak = max(peak, detector.tracked_keys)
stats = detector.stats()
stats["peak"] = max(peak, stats["tracked_keys"])
stats["largest_map"] = max(len(m) for rule in detector._rules for m in rule.maps())
stats["maps"] = sum(len(rule.maps()) for rule in detector._rules)
alerts = []
for _ in range(20):
    event.ip_address, event.user_id = "192.0.2.1", "victim"
    alerts += [a.rule for a in observe(event)]
stats["fresh_attacker"] = sorted(set(alerts))
print(json.dumps(stats))
"""


@pytest.mark.slow
def test_a_million_distinct_ips_stay_under_the_cap() -> None:
    """1,000,000 failed logins from distinct IPs (a spraying botnet): every map stays under
    its cap, every eviction is counted, and a fresh attacker is still caught."""
    cap = 5_000
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    env.pop("COVERAGE_PROCESS_START", None)
    done = subprocess.run(
        [sys.executable, "-c", MILLION, str(cap)],
        env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["largest_map"] <= cap
    assert stats["peak"] <= cap * stats["maps"]
    assert stats["evictions"]["brute_force"] >= 2 * (1_000_000 - cap)
    assert stats["evictions"]["credential_stuffing"] == 1_000_000 - cap
    assert stats["keys"]["rate_anomaly"] == 1
    assert {"brute_force", "account_lockout"} <= set(stats["fresh_attacker"])


def test_injection_cooldowns_stay_under_the_cap(clock: FakeClock) -> None:
    """Injection payloads from many IPs: the cooldown map is capped too."""
    detector = ThreatDetector(max_keys=200, clock=clock)
    event = SecurityEvent(SecurityEventType.DATA_ACCESS, endpoint="/q?id=1 or 1=1")
    for i in range(3_000):
        event.ip_address = f"172.16.{i >> 8 & 255}.{i & 255}"
        detector.observe(event)
    stats = detector.stats()
    assert stats["keys"]["injection"] == 200
    assert stats["evictions"]["injection"] == 2_800
    assert stats["alerts"]["injection"] == 3_000
