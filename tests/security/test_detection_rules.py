"""Each detection rule, with a fake clock: what it must catch and what it must not."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from plexichat.core.logging.security_logger import (
    DEFAULT_THREAT_RULES,
    SecurityEvent,
    SecurityEventType,
    SecuritySeverity,
    ThreatAlert,
    ThreatDetector,
)

from .conftest import FakeClock

T = SecurityEventType
ALL_OFF = {name: {"enabled": False} for name in DEFAULT_THREAT_RULES}


def only(rule: str, clock: FakeClock, **params: Any) -> ThreatDetector:
    """A detector with one rule enabled (parameters overridden)."""
    return ThreatDetector({**ALL_OFF, rule: {"enabled": True, **params}}, clock=clock)


def failure(user: str | None = "bob", ip: str | None = "10.0.0.1", **kw: Any) -> SecurityEvent:
    return SecurityEvent(T.LOGIN_FAILURE, user_id=user, ip_address=ip, **kw)


def feed(detector: ThreatDetector, events: list[SecurityEvent]) -> list[ThreatAlert]:
    alerts: list[ThreatAlert] = []
    for event in events:
        alerts.extend(detector.observe(event))
    return alerts


# --- brute force ----------------------------------------------------------------------------


def test_brute_force_fires_on_n_failures_for_one_user(clock: FakeClock) -> None:
    """5 failures for one user within 5 minutes (from changing IPs): one HIGH alert."""
    detector = only("brute_force", clock)
    alerts: list[ThreatAlert] = []
    for i in range(5):
        clock.advance(30)
        alerts += detector.observe(failure(ip=f"10.0.0.{i}"))
    (alert,) = alerts
    assert (alert.rule, alert.key_type, alert.key, alert.count) == ("brute_force", "user", "bob", 5)
    event = alert.event
    assert event.event_type is T.BRUTE_FORCE_ATTEMPT
    assert event.severity is SecuritySeverity.HIGH
    assert event.source == "threat_detection"
    assert event.details["threshold"] == 5
    assert event.details["window_seconds"] == 300.0
    assert event.threat_indicators == ["5 failed logins for user bob within 300 s"]
    assert alert.derived


def test_brute_force_fires_on_failures_from_one_ip(clock: FakeClock) -> None:
    """20 failures from one IP for different users: an IP-keyed alert."""
    detector = only("brute_force", clock)
    alerts = feed(detector, [failure(user=f"u{i}") for i in range(20)])
    assert [(a.key_type, a.key) for a in alerts] == [("ip", "10.0.0.1")]
    assert "block_ip" in alerts[0].event.mitigation_actions


def test_brute_force_ignores_failures_spread_beyond_the_window(clock: FakeClock) -> None:
    """A user who mistypes once every two minutes is no attack."""
    detector = only("brute_force", clock)
    alerts: list[ThreatAlert] = []
    for _ in range(20):
        clock.advance(120)
        alerts += detector.observe(failure())
    assert alerts == []


def test_brute_force_ignores_successes_and_other_users(clock: FakeClock) -> None:
    """Successful logins and failures of different users below the IP threshold are fine."""
    detector = only("brute_force", clock)
    events = [SecurityEvent(T.LOGIN_SUCCESS, user_id="bob", ip_address="10.0.0.1")] * 30
    events += [failure(user=f"u{i}", ip=f"10.0.{i}.1") for i in range(4)] * 4
    assert feed(detector, events) == []


def test_brute_force_cooldown_and_rearm(clock: FakeClock) -> None:
    """After an alert, the same key is quiet for the cooldown; then it can fire again."""
    detector = only("brute_force", clock, cooldown="10 minutes", ip_threshold=1000)
    assert len(feed(detector, [failure()] * 5)) == 1
    clock.advance(60)
    assert feed(detector, [failure()] * 10) == []
    clock.advance(600)
    assert len(feed(detector, [failure()] * 5)) == 1


def test_brute_force_without_cooldown_fires_every_n(clock: FakeClock) -> None:
    """cooldown=0: one alert per threshold failures."""
    detector = only("brute_force", clock, cooldown=0, ip_threshold=1000)
    assert len(feed(detector, [failure()] * 15)) == 3


def test_ipv6_addresses_count_by_their_64_network(clock: FakeClock) -> None:
    """Rotating addresses inside one IPv6 /64 does not evade the per-IP count."""
    detector = only("brute_force", clock, ip_threshold=5)
    events = [failure(user=f"u{i}", ip=f"2001:db8:1:2::{i:x}") for i in range(5)]
    alerts = feed(detector, events)
    assert [(a.key_type, a.key) for a in alerts] == [("ip", "2001:db8:1:2::/64")]
    assert alerts[0].event.ip_address == "2001:db8:1:2::4"


# --- credential stuffing ----------------------------------------------------------------------


def test_credential_stuffing_one_ip_many_users(clock: FakeClock) -> None:
    """One IP failing logins for 10 distinct users within the window."""
    detector = only("credential_stuffing", clock)
    alerts = feed(detector, [failure(user=f"user{i}") for i in range(10)])
    (alert,) = alerts
    assert alert.event.event_type is T.CREDENTIAL_STUFFING
    assert (alert.key_type, alert.key, alert.count) == ("ip", "10.0.0.1", 10)
    assert alert.event.details["users"] == sorted(f"user{i}" for i in range(10))


def test_credential_stuffing_ignores_one_user_retrying(clock: FakeClock) -> None:
    """Many failures for the same few users from one IP are not stuffing."""
    detector = only("credential_stuffing", clock)
    assert feed(detector, [failure(user=f"user{i % 3}") for i in range(50)]) == []


def test_credential_stuffing_ignores_users_spread_over_time(clock: FakeClock) -> None:
    """A shared office IP where a user mistypes every few minutes raises nothing."""
    detector = only("credential_stuffing", clock)
    alerts: list[ThreatAlert] = []
    for i in range(40):
        clock.advance(60)
        alerts += detector.observe(failure(user=f"user{i}"))
    assert alerts == []


def test_credential_stuffing_ignores_successful_logins(clock: FakeClock) -> None:
    """Many users logging in successfully from one NAT address are no attack."""
    detector = only("credential_stuffing", clock)
    events = [
        SecurityEvent(T.LOGIN_SUCCESS, user_id=f"u{i}", ip_address="10.0.0.1") for i in range(50)
    ]
    assert feed(detector, events) == []


# --- account lockout -------------------------------------------------------------------------


def test_account_lockout_recommendation(clock: FakeClock) -> None:
    """10 failures for one user within 15 minutes: ACCOUNT_LOCKOUT recommending a lock."""
    detector = only("account_lockout", clock)
    alerts: list[ThreatAlert] = []
    for i in range(10):
        clock.advance(60)
        alerts += detector.observe(failure(ip=f"10.1.0.{i}"))
    (alert,) = alerts
    assert alert.event.event_type is T.ACCOUNT_LOCKOUT
    assert alert.event.details["recommendation"] == "lock_account"
    assert alert.event.mitigation_actions == ["lock_account"]
    assert (alert.key_type, alert.key) == ("user", "bob")


def test_account_lockout_not_for_slow_failures_or_without_user(clock: FakeClock) -> None:
    """9 failures, or failures spread over an hour, or failures without a user: no lockout."""
    detector = only("account_lockout", clock)
    assert feed(detector, [failure()] * 9) == []
    clock.advance(3600)
    for _ in range(10):
        clock.advance(200)
        assert detector.observe(failure()) == []
    assert feed(detector, [failure(user=None)] * 30) == []


# --- privilege escalation ----------------------------------------------------------------------


def test_privilege_escalation_repeated_denials(clock: FakeClock) -> None:
    """5 denials (any of the denial types) for one user within 10 minutes."""
    detector = only("privilege_escalation", clock)
    kinds = [T.PERMISSION_DENIED, T.UNAUTHORIZED_ACCESS, T.ACCESS_VIOLATION]
    events = [
        SecurityEvent(kinds[i % 3], user_id="mallory", resource=f"/admin/{i}") for i in range(5)
    ]
    (alert,) = feed(detector, events)
    assert alert.event.event_type is T.PRIVILEGE_ESCALATION
    assert (alert.key_type, alert.key, alert.count) == ("user", "mallory", 5)


def test_privilege_escalation_keys_anonymous_denials_by_ip(clock: FakeClock) -> None:
    """Without a user, denials count by IP."""
    detector = only("privilege_escalation", clock)
    events = [SecurityEvent(T.UNAUTHORIZED_ACCESS, ip_address="10.9.9.9")] * 5
    assert [(a.key_type, a.key) for a in feed(detector, events)] == [("ip", "10.9.9.9")]


def test_privilege_escalation_ignores_occasional_denials(clock: FakeClock) -> None:
    """A denial now and then, or denials spread over users, or other event types: nothing."""
    detector = only("privilege_escalation", clock)
    alerts: list[ThreatAlert] = []
    for _ in range(10):
        clock.advance(300)
        alerts += detector.observe(SecurityEvent(T.PERMISSION_DENIED, user_id="ann"))
    events = [SecurityEvent(T.PERMISSION_DENIED, user_id=f"u{i}") for i in range(20)]
    events += [SecurityEvent(T.DATA_ACCESS, user_id="ann")] * 20
    assert alerts + feed(detector, events) == []


# --- injection -----------------------------------------------------------------------------------


def test_injection_in_request_fields(clock: FakeClock) -> None:
    """SQL injection in the user name, XSS in details, traversal in the endpoint."""
    detector = only("injection", clock)
    alerts = detector.observe(
        SecurityEvent(
            T.LOGIN_FAILURE,
            user_id="admin' OR '1'='1",
            ip_address="10.0.0.1",
            endpoint="/files/..%2f..%2fetc/passwd",
            details={"comment": "<script>alert(1)</script>"},
        )
    )
    found = {a.event.event_type: a.event.details for a in alerts}
    assert set(found) == {T.SQL_INJECTION_ATTEMPT, T.XSS_ATTEMPT, T.PATH_TRAVERSAL_ATTEMPT}
    assert found[T.SQL_INJECTION_ATTEMPT]["field"] == "user_id"
    assert found[T.XSS_ATTEMPT]["field"] == "details.comment"
    assert found[T.PATH_TRAVERSAL_ATTEMPT]["field"] == "endpoint"
    assert all(a.key == "10.0.0.1" for a in alerts)
    assert all(a.event.endpoint == "/files/..%2f..%2fetc/passwd" for a in alerts)


def test_log_injection_in_single_line_fields(clock: FakeClock) -> None:
    """CR/LF or ANSI escapes in a user name forge log lines; free text may span lines."""
    detector = only("injection", clock)
    (alert,) = detector.observe(failure(user="bob\r\n[INFO] admin logged in"))
    assert alert.event.event_type is T.LOG_INJECTION_ATTEMPT
    assert alert.event.details["pattern"] == "crlf"
    (ansi,) = detector.observe(failure(user="x\x1b[2J", ip="10.0.0.2"))
    assert ansi.event.details["pattern"] == "ansi_escape"
    (encoded,) = detector.observe(failure(user="a", ip="10.0.0.3", endpoint="/x%0d%0aSet"))
    assert encoded.event.event_type is T.LOG_INJECTION_ATTEMPT
    note = SecurityEvent(T.DATA_ACCESS, user_id="ann", details={"note": "line one\nline two"})
    assert detector.observe(note) == []


def test_injection_false_positives(clock: FakeClock) -> None:
    """Ordinary names, paths, agents and prose raise nothing."""
    detector = only("injection", clock)
    events = [
        SecurityEvent(
            T.LOGIN_FAILURE,
            user_id=user,
            ip_address="2001:db8::1",
            endpoint="/api/v2/users/42/orders?sort=desc&page=2",
            user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
            details={"reason": "the union selected a new leader; update soon", "n": 3},
        )
        for user in ("O'Brien", "jean-luc.picard@example.com", "élodie", "select_admin")
    ]
    assert feed(detector, events) == []


def test_injection_cooldown_counts_what_it_held_back(clock: FakeClock) -> None:
    """One derived event per kind and client per cooldown; the next says how many were held."""
    detector = only("injection", clock)
    attack = failure(user="x' OR 1=1 --")
    assert len(feed(detector, [attack] * 10)) == 1
    other_ip = failure(user="x' OR 1=1 --", ip="10.0.0.2")
    assert len(detector.observe(other_ip)) == 1
    clock.advance(61)
    (alert,) = detector.observe(attack)
    assert alert.event.details["suppressed"] == 9


def test_injection_not_reported_twice_when_the_app_reported_it(clock: FakeClock) -> None:
    """An event that already is an SQL_INJECTION_ATTEMPT derives no second one."""
    detector = only("injection", clock)
    event = SecurityEvent(T.SQL_INJECTION_ATTEMPT, ip_address="10.0.0.1", endpoint="/q?id=1 or 1=1")
    assert detector.observe(event) == []


def test_injection_scan_is_bounded_by_max_length(clock: FakeClock) -> None:
    """Only the first max_length characters of a field are checked."""
    detector = only("injection", clock, max_length=64)
    padded = failure(user="a" * 100 + "' OR 1=1 --")
    assert detector.observe(padded) == []
    assert len(detector.observe(failure(user="' OR 1=1 --" + "a" * 100))) == 1


# --- rate anomaly ---------------------------------------------------------------------------


def _bucket(detector: ThreatDetector, clock: FakeClock, n: int, kind: T) -> list[ThreatAlert]:
    """n events of one kind inside the current 60 s bucket, then move to the next bucket."""
    alerts = feed(detector, [SecurityEvent(kind, user_id="svc")] * n)
    clock.advance(60)
    return alerts


def test_rate_anomaly_against_the_ewma_baseline(clock: FakeClock) -> None:
    """After warm-up at ~10/min, 40 in one minute (> 3x baseline, >= 20) raises one alert."""
    clock.now = 6000.0  # a bucket boundary
    detector = only("rate_anomaly", clock)
    for _ in range(6):
        assert _bucket(detector, clock, 10, T.DATA_ACCESS) == []
    alerts = _bucket(detector, clock, 40, T.DATA_ACCESS)
    (alert,) = alerts
    assert alert.event.event_type is T.SUSPICIOUS_ACTIVITY
    assert alert.event.severity is SecuritySeverity.MEDIUM
    details = alert.event.details
    assert details["observed_event_type"] == "data_access"
    assert details["count"] == 30  # fires as soon as the bucket reaches 3 x 10
    assert details["baseline"] == pytest.approx(10.0)
    assert (alert.key_type, alert.key) == ("event_type", "data_access")


def test_rate_anomaly_needs_warmup_and_min_count(clock: FakeClock) -> None:
    """No alert during warm-up, nor below min_count even at 10x a tiny baseline."""
    clock.now = 6000.0
    detector = only("rate_anomaly", clock)
    assert _bucket(detector, clock, 100, T.DATA_ACCESS) == []  # first bucket: warm-up
    detector = only("rate_anomaly", clock)
    for _ in range(6):
        _bucket(detector, clock, 1, T.LOGIN_SUCCESS)
    assert _bucket(detector, clock, 15, T.LOGIN_SUCCESS) == []


def test_rate_anomaly_steady_or_slowly_growing_traffic(clock: FakeClock) -> None:
    """Traffic that grows 20% a minute keeps up with its baseline: no alert."""
    clock.now = 6000.0
    detector = only("rate_anomaly", clock)
    alerts: list[ThreatAlert] = []
    rate = 30.0
    for _ in range(20):
        alerts += _bucket(detector, clock, int(rate), T.DATA_ACCESS)
        rate *= 1.2
    assert alerts == []


def test_rate_anomaly_baseline_decays_over_quiet_buckets(clock: FakeClock) -> None:
    """Empty minutes count as zero: after a long quiet spell a burst stands out again."""
    clock.now = 6000.0
    detector = only("rate_anomaly", clock, min_count=5)
    for _ in range(6):
        _bucket(detector, clock, 50, T.DATA_EXPORT)
    clock.advance(3600)
    alerts = _bucket(detector, clock, 30, T.DATA_EXPORT)
    assert [a.rule for a in alerts] == ["rate_anomaly"]


def test_rate_anomaly_is_per_event_type(clock: FakeClock) -> None:
    """A burst of one type is measured against that type's baseline only."""
    clock.now = 6000.0
    detector = only("rate_anomaly", clock)
    for _ in range(6):
        feed(detector, [SecurityEvent(T.LOGIN_SUCCESS)] * 100)
        _bucket(detector, clock, 10, T.DATA_ACCESS)
    alerts = feed(detector, [SecurityEvent(T.LOGIN_SUCCESS)] * 100)
    assert alerts == []


# --- critical events ---------------------------------------------------------------------------


def test_critical_events_reach_the_hooks(clock: FakeClock) -> None:
    """CRITICAL and EMERGENCY events are handed on as they are (nothing derived)."""
    detector = only("critical_event", clock)
    event = SecurityEvent(T.KEY_COMPROMISE, user_id="svc-signing")
    (alert,) = detector.observe(event)
    assert alert.event is event
    assert alert.derived is False
    assert (alert.key_type, alert.key) == ("user", "svc-signing")
    assert detector.observe(SecurityEvent(T.MALWARE_DETECTION, ip_address="10.0.0.5"))[0].key == (
        "10.0.0.5"
    )
    (anonymous,) = detector.observe(SecurityEvent(T.AUDIT_LOG_TAMPERING))
    assert (anonymous.key_type, anonymous.key) == ("event_type", "audit_log_tampering")


def test_less_severe_events_do_not_reach_the_hooks(clock: FakeClock) -> None:
    """HIGH and below, or a severity that names nothing, are not critical."""
    detector = only("critical_event", clock)
    events = [SecurityEvent(T.LOGIN_FAILURE, s) for s in ("low", "medium", "high", "bogus")]
    assert feed(detector, events) == []
    detector = only("critical_event", clock, min_severity="high")
    assert len(detector.observe(SecurityEvent(T.LOGIN_FAILURE, "high"))) == 1


# --- the detector ---------------------------------------------------------------------------


def test_defaults_catch_a_combined_attack(clock: FakeClock) -> None:
    """With every default rule on, a spraying run from one IP trips stuffing and brute force."""
    detector = ThreatDetector(clock=clock)
    alerts = feed(detector, [failure(user=f"user{i}") for i in range(25)])
    assert [a.rule for a in alerts] == ["credential_stuffing", "brute_force"]
    assert detector.stats()["alerts"] == {"credential_stuffing": 1, "brute_force": 1}


def test_detector_never_raises(clock: FakeClock, capfd: pytest.CaptureFixture[str]) -> None:
    """A broken event object is reported, not raised."""

    class Broken:
        @property
        def event_type(self) -> str:
            raise RuntimeError("broken")

    detector = ThreatDetector(clock=clock)
    assert detector.observe(Broken()) == []  # type: ignore[arg-type]
    assert "threat detection failed" in capfd.readouterr().err


def test_reset_forgets_state(clock: FakeClock) -> None:
    """reset() clears windows and counts, keeps the settings."""
    detector = only("brute_force", clock, threshold=3)
    feed(detector, [failure()] * 2)
    assert detector.tracked_keys == 2
    detector.reset()
    assert detector.tracked_keys == 0
    assert feed(detector, [failure()] * 2) == []
    assert detector.settings["brute_force"]["threshold"] == 3


def test_concurrent_observers(clock: FakeClock) -> None:
    """Threads observing at once: every failure counted once, one alert per 5 (no cooldown)."""
    detector = only("brute_force", clock, cooldown=0, ip_threshold=100_000)
    alerts: list[ThreatAlert] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(500):
            found = detector.observe(failure())
            with lock:
                alerts.extend(found)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(alerts) == 8 * 500 // 5
