"""The watchdog's rules, pure: a declared workflow not running and a missed heartbeat are each
announced once when they open and once when they resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from govfleet.domain.watchdog import (
    GUARDIAN_DOWN,
    HEARTBEAT_MISSED,
    WORKFLOW_DOWN,
    WORKFLOW_STUCK,
    HeartbeatWatch,
    Observation,
    WatchdogConfig,
    WatchdogCore,
    WatchdogState,
    WatchedWorkflow,
)

T0 = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)
G = "governance-guardian"


def core(**overrides) -> WatchdogCore:
    cfg = WatchdogConfig(
        check_seconds=15,
        workflows=[
            WatchedWorkflow(workflow_id=G, kind="guardian", notify_guardian=G),
            WatchedWorkflow(workflow_id="governance-status", kind="status", notify_guardian=G),
        ],
        heartbeat=HeartbeatWatch(interval_seconds=60, grace_seconds=10),
        **overrides,
    )
    return WatchdogCore(cfg, WatchdogState(chain="c1"))


def seen(guardian: str | None = "RUNNING", status: str | None = "RUNNING", heartbeat: datetime | None = T0):
    return Observation(
        statuses={G: guardian, "governance-status": status}, heartbeat_readable=True, last_heartbeat_ok_at=heartbeat
    )


def test_a_terminated_guardian_opens_once_after_two_looks_and_recovers_once():
    c = core()
    assert c.observe(seen(), T0).changes == []
    first = c.observe(seen(guardian="TERMINATED"), T0 + timedelta(seconds=15))
    assert first.changes == []  # one look is not enough (down_after_checks = 2)
    opened = c.observe(seen(guardian="TERMINATED"), T0 + timedelta(seconds=30))
    [change] = opened.changes
    assert (change.change, change.incident.kind, change.incident.subject) == ("opened", GUARDIAN_DOWN, G)
    assert "its last run terminated" in change.incident.details
    [note] = opened.notifications
    assert note.urgent and note.kind == GUARDIAN_DOWN and note.data["guardian_id"] == G
    assert note.idempotency_key == "governance-watchdog:c1:i1:opened"
    assert c.observe(seen(guardian="TERMINATED"), T0 + timedelta(seconds=45)).notifications == []  # once
    back = c.observe(seen(), T0 + timedelta(seconds=60))
    [resolved] = back.changes
    assert resolved.change == "resolved" and resolved.incident.resolved_at == T0 + timedelta(seconds=60)
    [recovery] = back.notifications
    assert recovery.kind == "recovery" and not recovery.urgent and recovery.data["outage_seconds"] == 30.0
    assert c.state.open == []


def test_a_guardian_whose_workflow_tasks_keep_failing_is_an_incident_within_two_looks():
    c = core()
    failing = "its workflow task failed 3 times since 2027-01-04T12:00:00Z and is retried"
    stuck = seen().model_copy(update={"failing_tasks": {G: failing}})
    assert c.observe(stuck, T0).changes == []  # one look is not enough
    opened = c.observe(stuck, T0 + timedelta(seconds=15))
    [change] = opened.changes
    assert (change.change, change.incident.kind, change.incident.subject) == ("opened", WORKFLOW_STUCK, G)
    assert "cannot make progress" in change.incident.details and failing in change.incident.details
    [note] = opened.notifications
    assert note.urgent and note.kind == WORKFLOW_STUCK and "stuck" in note.title
    assert c.observe(stuck, T0 + timedelta(seconds=30)).notifications == []  # announced once
    back = c.observe(seen(), T0 + timedelta(seconds=45))
    [resolved] = back.changes
    assert resolved.change == "resolved" and resolved.incident.resolution == "its workflow tasks succeed again"
    # Terminated while stuck: the stuck incident resolves, the down incident takes over.
    c.observe(stuck, T0 + timedelta(seconds=60))
    c.observe(stuck, T0 + timedelta(seconds=75))
    gone = c.observe(seen(guardian="TERMINATED"), T0 + timedelta(seconds=90))
    assert [(ch.change, ch.incident.kind) for ch in gone.changes] == [("resolved", WORKFLOW_STUCK)]


def test_a_never_started_status_workflow_is_a_workflow_down_incident():
    c = core(down_after_checks=1)
    [change] = c.observe(seen(status=None), T0).changes
    assert change.incident.kind == WORKFLOW_DOWN and "was never started" in change.incident.details


def test_what_could_not_be_read_changes_nothing():
    c = core(down_after_checks=1)
    obs = Observation(statuses={}, unreadable=[G, "governance-status"], heartbeat_readable=False)
    for n in range(10):
        assert c.observe(obs, T0 + timedelta(minutes=n)).changes == []


def test_heartbeat_missed_after_interval_plus_grace_then_cleared_by_the_next_success():
    c = core()
    c.observe(seen(heartbeat=T0), T0)
    assert c.observe(seen(heartbeat=T0), T0 + timedelta(seconds=70)).changes == []  # exactly interval + grace
    fx = c.observe(seen(heartbeat=T0), T0 + timedelta(seconds=71))
    [change] = fx.changes
    assert change.incident.kind == HEARTBEAT_MISSED and "no successful heartbeat since 2027-01-04T12:00:00Z" in (
        change.incident.details
    )
    assert [n.kind for n in fx.notifications] == [HEARTBEAT_MISSED]
    assert c.observe(seen(heartbeat=T0), T0 + timedelta(seconds=300)).changes == []  # raised once
    back = c.observe(seen(heartbeat=T0 + timedelta(seconds=301)), T0 + timedelta(seconds=305))
    assert [ch.change for ch in back.changes] == ["resolved"]
    assert [n.kind for n in back.notifications] == ["recovery"]


def test_a_heartbeat_that_never_succeeded_counts_from_when_watching_began():
    c = core()
    assert c.observe(seen(heartbeat=None), T0).changes == []
    [change] = c.observe(seen(heartbeat=None), T0 + timedelta(seconds=71)).changes
    assert "no successful heartbeat ever" in change.incident.details


def test_a_watchdog_started_long_after_the_last_heartbeat_raises_at_once():
    c = core()
    [change] = c.observe(seen(heartbeat=T0 - timedelta(minutes=5)), T0).changes
    assert change.incident.kind == HEARTBEAT_MISSED
