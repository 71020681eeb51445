"""Pure heartbeat logic: liveness state, checks, dedupe/recovery and the CloudEvent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from govfleet.domain.heartbeat import (
    KIND_FAILED,
    KIND_GRANT_EXPIRING,
    KIND_LOW_BALANCE,
    HeartbeatFacts,
    HeartbeatThresholds,
    PreviousHeartbeat,
    build_cloudevent,
    evaluate,
    heartbeat_state,
    plan_notifications,
    previous_from_event,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=5)
G = timedelta(seconds=60)
TH = HeartbeatThresholds(low_balance_threshold_credits=1_000_000, grant_expiry_warning_hours=24)


def healthy(**over) -> HeartbeatFacts:
    base = dict(
        tenant_exists=True,
        tenant_flagged=True,
        balance=5_000_000,
        grant_exists=True,
        grant_expires_at=NOW + timedelta(days=30),
    )
    base.update(over)
    return HeartbeatFacts(**base)


@pytest.mark.parametrize(
    "age,expected",
    [
        (timedelta(0), "up"),
        (INTERVAL + G, "up"),
        (INTERVAL + G + timedelta(seconds=1), "late"),
        (2 * INTERVAL + G, "late"),
        (2 * INTERVAL + G + timedelta(seconds=1), "down"),
        (timedelta(days=3), "down"),
        (-timedelta(minutes=1), "up"),  # clock skew: a heartbeat "from the future"
    ],
)
def test_heartbeat_state_boundaries(age, expected):
    assert heartbeat_state(NOW - age, interval=INTERVAL, grace=G, now=NOW) == expected


def test_heartbeat_state_new_and_paused():
    assert heartbeat_state(None, interval=INTERVAL, grace=G, now=NOW) == "new"
    # A pause wins over everything, also over a fresh heartbeat.
    assert heartbeat_state(NOW, interval=INTERVAL, grace=G, now=NOW, paused=True) == "paused"
    assert heartbeat_state(None, interval=INTERVAL, grace=G, now=NOW, paused=True) == "paused"


def test_heartbeat_state_naive_times_are_utc_and_bad_interval_is_refused():
    naive_now = NOW.replace(tzinfo=None)
    assert heartbeat_state(NOW - timedelta(minutes=7), interval=INTERVAL, grace=G, now=naive_now) == "late"
    with pytest.raises(ValueError, match="interval must be positive"):
        heartbeat_state(NOW, interval=timedelta(0), grace=G, now=NOW)
    with pytest.raises(ValueError, match="grace must not be negative"):
        heartbeat_state(NOW, interval=INTERVAL, grace=-G, now=NOW)


def test_evaluate_ok():
    ev = evaluate(healthy(), TH, NOW)
    assert ev.status == "ok" and ev.alerts == []
    assert [c.name for c in ev.checks] == ["system_tenant", "balance", "grant_active", "grant_expiry"]
    assert all(c.ok for c in ev.checks)


def test_evaluate_low_balance_is_degraded():
    ev = evaluate(healthy(balance=999_999), TH, NOW)
    assert ev.status == "degraded" and ev.alerts == [KIND_LOW_BALANCE]
    assert "999999 is below the threshold 1000000" in ev.checks[1].detail
    # Exactly at the threshold is fine ("at least").
    assert evaluate(healthy(balance=1_000_000), TH, NOW).status == "ok"


def test_a_never_funded_tenant_is_not_low_balance():
    # A fresh database: 0 credits and no credit ever received. No alert, the heartbeat stays ok;
    # the balance check says what is missing.
    ev = evaluate(healthy(balance=0, funded=False), TH, NOW)
    assert ev.status == "ok" and ev.alerts == []
    balance = next(c for c in ev.checks if c.name == "balance")
    assert balance.ok is False and balance.detail.startswith("not funded yet: balance 0")
    # Funded once and fallen below the threshold: the alert, as always.
    assert evaluate(healthy(balance=0, funded=True), TH, NOW).alerts == [KIND_LOW_BALANCE]
    # Never funded yet above the threshold cannot happen; if it did, it is simply ok.
    assert evaluate(healthy(balance=2_000_000, funded=False), TH, NOW).checks[1].ok


def test_evaluate_expiring_grant():
    ev = evaluate(healthy(grant_expires_at=NOW + timedelta(hours=23)), TH, NOW)
    assert ev.status == "degraded" and ev.alerts == [KIND_GRANT_EXPIRING]
    assert evaluate(healthy(grant_expires_at=None), TH, NOW).status == "ok"


@pytest.mark.parametrize(
    "facts,detail",
    [
        (HeartbeatFacts(tenant_exists=False, grant_exists=True), "does not exist"),
        (healthy(tenant_flagged=False), "not flagged"),
        (healthy(grant_exists=False), "execution grant 'cogni_system_governance' does not exist"),
        (healthy(grant_revoked_at=NOW - timedelta(hours=1)), "was revoked"),
        (healthy(grant_expires_at=NOW - timedelta(seconds=1)), "expired at"),
    ],
)
def test_evaluate_failed(facts, detail):
    ev = evaluate(facts, TH, NOW)
    assert ev.status == "failed"
    assert ev.alerts[0] == KIND_FAILED
    assert any(detail in c.detail for c in ev.checks if not c.ok)


def test_dedupe_alerts_once_per_held_breach_and_renotifies():
    low = evaluate(healthy(balance=1), TH, NOW)
    first = plan_notifications(low, None, now=NOW, interval=INTERVAL, grace=G)
    assert first.notify == [KIND_LOW_BALANCE] and not first.recovery
    prev = PreviousHeartbeat(time=NOW, status="degraded", alerts=low.alerts, notified_at=first.notified_at)
    later = NOW + INTERVAL
    second = plan_notifications(low, prev, now=later, interval=INTERVAL, grace=G)
    assert second.notify == [] and second.notified_at[KIND_LOW_BALANCE] == NOW
    much_later = NOW + timedelta(hours=1)
    third = plan_notifications(low, prev, now=much_later, interval=INTERVAL, grace=G)
    assert third.notify == [KIND_LOW_BALANCE]
    # Escalation (a new kind) is sent at once.
    worse = evaluate(healthy(balance=1, grant_exists=False), TH, later)
    assert plan_notifications(worse, prev, now=later, interval=INTERVAL, grace=G).notify == [KIND_FAILED]


def test_recovery_after_failure_and_after_silence():
    ok = evaluate(healthy(), TH, NOW)
    after_failure = plan_notifications(
        ok, PreviousHeartbeat(time=NOW - INTERVAL, status="failed"), now=NOW, interval=INTERVAL, grace=G
    )
    assert after_failure.recovery and after_failure.recovered_from == "failed"
    after_silence = plan_notifications(
        ok, PreviousHeartbeat(time=NOW - timedelta(hours=1), status="ok"), now=NOW, interval=INTERVAL, grace=G
    )
    assert after_silence.recovery and after_silence.recovered_from == "down"
    steady = plan_notifications(
        ok, PreviousHeartbeat(time=NOW - INTERVAL, status="ok"), now=NOW, interval=INTERVAL, grace=G
    )
    assert not steady.recovery and steady.notify == []
    assert not plan_notifications(ok, None, now=NOW, interval=INTERVAL, grace=G).recovery


def test_cloudevent_shape_and_roundtrip_of_dedupe_state():
    ev = evaluate(healthy(balance=10), TH, NOW)
    plan = plan_notifications(ev, None, now=NOW, interval=INTERVAL, grace=G)
    ce = build_cloudevent(
        event_id="governance:heartbeat-2025-03-01T12:00:00Z",
        source="/cogni/demo/governance/heartbeat",
        time=NOW,
        evaluation=ev,
        thresholds=TH,
        notified_at=plan.notified_at,
    )
    assert ce["specversion"] == "1.0" and ce["type"] == "governance.heartbeat"
    assert ce["time"] == "2025-03-01T12:00:00Z"
    assert {"id", "source", "type", "time", "data"} <= set(ce)
    data = ce["data"]
    assert data["status"] == "degraded" and data["balance"] == "10"
    assert data["grant_expires_at"] == "2025-03-31T12:00:00Z"
    assert data["checks"]["balance"]["ok"] is False and data["checks"]["system_tenant"]["ok"] is True
    prev = previous_from_event(NOW, data["status"], data)
    assert prev.alerts == [KIND_LOW_BALANCE] and prev.notified_at[KIND_LOW_BALANCE] == NOW
    with pytest.raises(ValueError, match="event_id"):
        build_cloudevent(event_id="", source="s", time=NOW, evaluation=ev, thresholds=TH)
