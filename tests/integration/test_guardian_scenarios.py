"""The documented guardian scenarios (docs/guardian.md) end to end under Temporal's time-skipping server: the guardian
workflow with its real activities, a real PostgreSQL, and the tracker simulator (tracker
and breaker targets) on loopback. Each scenario scripts the readings one per check and
asserts the alerts, the audit events and the breaker calls exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from govfleet.contracts.guardian import PAUSE_SIGNAL, READING_SIGNAL, RESUME_SIGNAL
from govfleet.simulator import SCENARIOS, TrackerSimulator, reading_body, start_simulator
from tests.integration.guardian_support import (
    ADMIN_0,
    ADMIN_1,
    OUTSIDER,
    NotificationRecorder,
    alerts,
    check_count,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    notable_events,
    pauses,
    settle,
    sign,
    start_guardian,
)
from workflows.guardian import GuardianWorkflow


@pytest.fixture
async def sim():
    running = await start_simulator(TrackerSimulator(per_request=True))
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def recorder() -> NotificationRecorder:
    return NotificationRecorder()


@pytest.fixture
async def guardian(time_skipping_env, task_queue, config, database_url, sim, recorder):
    """Start a guardian on a fresh id against `sim`: `await guardian(values)`."""
    env = time_skipping_env
    started = []

    async with guardian_worker(env.client, task_queue, config, database_url, recorder):

        async def start(values, **overrides):
            sim.sim.set_values(values, per_request=True)
            gid = new_guardian_id()
            cfg = make_config(config, sim, gid, upsert_search_attributes=False, **overrides)
            handle = await start_guardian(env.client, task_queue, cfg)
            started.append(handle)
            return handle

        yield start
        for handle in started:
            await settle(handle)
            await handle.terminate("test over")


async def test_gradual_decline_70_51_49(time_skipping_env, guardian, sim, recorder, database_url):
    values = SCENARIOS["gradual-decline"]  # 70, 69, ..., 55, 54.5, ..., 52, 51.5, 51.5, 51, 51, 50.5, ..., 49, 48.5
    handle = await guardian(values)
    gid = handle.id
    # 16 checks at 30 s (70..55), 6 at 5 s (54.5..52), then 1 s: all values served well within 600 s.
    await time_skipping_env.sleep(16 * 30 + 6 * 5 + 30)
    await eventually(lambda: len(sim.sim.pauses()) == 2)
    await eventually(lambda: len(pauses(database_url, gid)) == 2)
    status = await handle.query(GuardianWorkflow.status)
    assert (status.governance_level, status.system_status, status.paused, status.alerts_active) == (
        "emergency",
        "fully_paused",
        True,
        4,
    )
    assert status.check_interval_seconds == 1 and status.current_holder_control == 48.5

    assert [
        (a["alert_type"], float(a["holder_control"]), a["action_taken"], a["resolved"])
        for a in alerts(database_url, gid)
    ] == [
        ("caution", 54.5, "increased_monitoring", False),
        ("warning", 51.5, "urgent_notification_prepare_pause", False),
        ("critical", 50.5, "paused_redemptions", False),
        ("emergency", 48.5, "paused_everything", False),
    ]
    assert notable_events(database_url, gid) == [
        ("threshold_crossed", "none"),  # excellent -> good
        ("threshold_crossed", "none"),  # good -> acceptable
        ("threshold_crossed", "alert_caution"),
        ("threshold_crossed", "alert_warning"),
        ("threshold_crossed", "pause_redemptions"),
        ("pause", "pause"),
        ("threshold_crossed", "pause_everything"),
        ("pause", "pause"),
        ("forensic_audit", "required"),  # after the emergency pause
    ]
    rows = pauses(database_url, gid)
    assert [(p["scope"], p["pause_type"], float(p["holder_control_at_pause"]), p["resumed_at"]) for p in rows] == [
        ("redemptions", "automatic", 50.5, None),
        ("everything", "automatic", 48.5, None),
    ]
    assert [(c.service, c.idempotency_key) for c in sim.sim.pauses()] == [
        ("redemption-algorithm", rows[0]["pause_key"]),
        ("sol-treasury-core", rows[1]["pause_key"]),
    ]
    assert all(k["pause_key"].startswith(f"{gid}:") for k in rows)
    assert [c for c in sim.sim.calls if c.action == "resume"] == []
    assert recorder.kinds() == ["caution", "warning", "critical", "emergency"]
    urgent = {r.kind: r.urgent for r in recorder.requests}
    assert urgent == {"caution": False, "warning": True, "critical": True, "emergency": True}
    # Every check is in the audit log with its holder control (the status page charts it).
    assert check_count(database_url, gid) >= len(values)


async def test_rapid_drop_below_critical(time_skipping_env, guardian, sim, recorder, database_url):
    handle = await guardian([70.0, 70.0, 48.0])
    gid = handle.id
    await time_skipping_env.sleep(70)
    await eventually(lambda: len(sim.sim.pauses()) == 2)
    await eventually(lambda: len(pauses(database_url, gid)) == 1)
    (pause,) = pauses(database_url, gid)
    assert (pause["scope"], pause["pause_type"]) == ("everything", "automatic")
    assert sorted((c.service, c.idempotency_key) for c in sim.sim.pauses()) == [
        ("redemption-algorithm", pause["pause_key"]),
        ("sol-treasury-core", pause["pause_key"]),
    ]
    assert len([c for c in sim.sim.calls if c.action == "pause"]) == 2  # exactly once each
    assert [a["alert_type"] for a in alerts(database_url, gid)] == ["caution", "warning", "critical", "emergency"]
    assert notable_events(database_url, gid) == [
        ("threshold_crossed", "pause_everything"),
        ("pause", "pause"),
        ("forensic_audit", "required"),
    ]
    assert recorder.kinds() == ["emergency"]


async def test_recovery_from_pause_needs_a_signed_resume(time_skipping_env, guardian, sim, recorder, database_url):
    env = time_skipping_env
    handle = await guardian([70.0, 50.5] + [51.2] * 3 + [53.0] * 6 + [70.0])
    gid = handle.id
    await env.sleep(31)
    await eventually(lambda: len(sim.sim.pauses()) == 1)
    await env.sleep(80)  # recovered to 70, alerts cleared with the dwell, still paused
    status = await handle.query(GuardianWorkflow.status)
    assert (status.system_status, status.paused, status.current_holder_control) == ("redemptions_paused", True, 70.0)
    assert status.alerts_active == 0 and status.governance_level == "excellent"
    assert sim.sim.resumes() == []

    now = await env.get_current_time()
    # A forged resume (not an admin) changes nothing but the audit log.
    await handle.signal(RESUME_SIGNAL, {"authorization": sign(OUTSIDER, "resume", now, guardian_id=gid)})
    await env.sleep(1)
    assert (await handle.query(GuardianWorkflow.status)).paused is True
    # A valid one resumes (one admin signature after a redemptions pause).
    now = await env.get_current_time()
    await handle.signal(RESUME_SIGNAL, {"authorization": sign(ADMIN_0, "resume", now, guardian_id=gid)})
    await eventually(lambda: len(sim.sim.resumes()) == 1)
    await eventually(lambda: pauses(database_url, gid)[0]["resumed_at"] is not None)
    status = await handle.query(GuardianWorkflow.status)
    assert (status.system_status, status.paused) == ("operational", False)
    (row,) = pauses(database_url, gid)
    assert row["resumed_at"] is not None and row["resumed_by"] == "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    (call,) = sim.sim.resumes()
    assert (call.service, call.idempotency_key) == ("redemption-algorithm", row["pause_key"])
    events = notable_events(database_url, gid)
    assert events[-2:] == [("admin_rejected", "rejected_resume"), ("resume", "resume")]
    assert recorder.kinds()[-1] == "resume"


async def test_multiple_crossings_with_hysteresis(time_skipping_env, guardian, sim, database_url):
    cycle = SCENARIOS["oscillate"]  # 60, 56, 54, 52.5, 51.5, 50.5, 51.5, 52.5, 54, 56
    handle = await guardian(cycle * 2 + [60.0])
    gid = handle.id
    await time_skipping_env.sleep(200)
    await eventually(lambda: len(sim.sim.pauses()) == 1)
    await eventually(
        lambda: len(alerts(database_url, gid)) == 6 and all(a["resolved"] for a in alerts(database_url, gid))
    )
    assert [(a["alert_type"], a["action_taken"]) for a in alerts(database_url, gid)] == [
        ("caution", "increased_monitoring"),
        ("warning", "urgent_notification_prepare_pause"),
        ("critical", "paused_redemptions"),
        ("caution", "increased_monitoring"),
        ("warning", "urgent_notification_prepare_pause"),
        ("critical", "redemptions_already_paused"),
    ]
    dip = [
        ("threshold_crossed", "alert_caution"),
        ("threshold_crossed", "alert_warning"),
    ]
    recover = [
        ("threshold_crossed", "none"),  # critical -> warning (the critical alert cleared)
        ("alert_resolved", "cleared_critical_alert"),
        ("threshold_crossed", "decreased_monitoring"),  # warning -> caution
        ("alert_resolved", "cleared_warning_alert"),
        ("threshold_crossed", "decreased_monitoring"),  # caution -> acceptable
        ("alert_resolved", "cleared_caution_alert"),
    ]
    assert notable_events(database_url, gid) == [
        ("threshold_crossed", "none"),  # good -> acceptable
        *dip,
        ("threshold_crossed", "pause_redemptions"),
        ("pause", "pause"),
        *recover,
        *dip,
        ("threshold_crossed", "alert_critical"),
        *recover,
    ]
    # One pause for the whole episode: the system stays paused until a human resumes it.
    assert len(sim.sim.pauses()) == 1 and len(pauses(database_url, gid)) == 1
    assert (await handle.query(GuardianWorkflow.status)).system_status == "redemptions_paused"


async def test_hovering_at_51_does_not_flap(time_skipping_env, guardian, sim, recorder, database_url):
    hover = [50.9, 51.1, 50.95, 51.05, 51.0, 51.1, 50.9]
    handle = await guardian([55.0, 51.5] + hover * 6)
    gid = handle.id
    await time_skipping_env.sleep(30 + 5 + 60)
    await eventually(lambda: check_count(database_url, gid) >= 2 + len(hover) * 6)
    assert notable_events(database_url, gid) == [
        ("threshold_crossed", "alert_warning"),
        ("threshold_crossed", "pause_redemptions"),
        ("pause", "pause"),
    ]
    assert [(a["alert_type"], a["resolved"]) for a in alerts(database_url, gid)] == [
        ("caution", False),
        ("warning", False),
        ("critical", False),
    ]
    assert len([c for c in sim.sim.calls if c.action == "pause"]) == 1
    assert recorder.kinds() == ["warning", "critical"]
    status = await handle.query(GuardianWorkflow.status)
    assert (status.governance_level, status.check_interval_seconds) == ("critical", 1)


async def test_pushed_reading_is_checked_at_once(time_skipping_env, guardian, sim, database_url):
    env = time_skipping_env
    handle = await guardian([70.0])
    await eventually(lambda: check_count(database_url, handle.id) == 1)
    before = await env.get_current_time()
    # The guardian sleeps 30 s now; a push must not wait for it.
    await handle.signal(READING_SIGNAL, reading_body(48.0, now=before))
    await eventually(lambda: len(sim.sim.pauses()) == 2, timeout=10)
    after = await env.get_current_time()
    assert after - before < timedelta(seconds=1)
    events = (await handle.query(GuardianWorkflow.events)).events
    assert events[-1].details.startswith("poll") and any(e.details == "push interval=1s" for e in events)


async def test_garbage_readings_raise_tracker_unavailable_and_never_trip(
    time_skipping_env, guardian, sim, recorder, database_url
):
    handle = await guardian([55.0] + SCENARIOS["garbage"] + [56.0])
    gid = handle.id
    await time_skipping_env.sleep(30 * 10)
    await eventually(lambda: check_count(database_url, gid) >= 2)
    assert [(a["alert_type"], a["resolved"]) for a in alerts(database_url, gid)] == [("tracker_unavailable", True)]
    errors = [r for r in notable_events(database_url, gid) if r[0] == "tracker_error"]
    assert errors == [("tracker_error", "none")] * 2 + [("tracker_error", "alert")] + [("tracker_error", "none")] * 4
    assert ("alert_resolved", "cleared_tracker_unavailable_alert") in notable_events(database_url, gid)
    assert sim.sim.calls == []
    assert recorder.kinds() == ["tracker_unavailable", "recovery"]
    assert (await handle.query(GuardianWorkflow.status)).governance_level == "acceptable"


async def test_failing_breaker_target_is_retried_without_blocking_checks(
    time_skipping_env, guardian, sim, database_url
):
    sim.sim.fail_next("pause", times=2, status=503)
    handle = await guardian([70.0, 50.0])
    await time_skipping_env.sleep(31)
    await eventually(lambda: len(sim.sim.pauses()) == 1, timeout=30)
    statuses = [c.status for c in sim.sim.calls if c.action == "pause"]
    assert statuses == [503, 503, 200]
    assert len({c.idempotency_key for c in sim.sim.calls}) == 1
    assert check_count(database_url, handle.id) >= 2


async def test_invalid_admin_request_shape_is_rejected_by_signal_as_event(
    time_skipping_env, guardian, sim, database_url
):
    handle = await guardian([70.0])
    await eventually(lambda: check_count(database_url, handle.id) == 1)
    await handle.signal(PAUSE_SIGNAL, {"reason": "", "authorization": "garbage"})
    await handle.signal(PAUSE_SIGNAL, {"reason": "x"})
    await handle.signal(PAUSE_SIGNAL, {"reason": 5, "authorization": "x"})
    now = await time_skipping_env.get_current_time()
    await handle.signal(
        PAUSE_SIGNAL,
        {
            "reason": "quorum test",
            "authorization": [
                sign(ADMIN_0, "pause", now, reason="quorum test", guardian_id=handle.id),
                sign(ADMIN_1, "pause", now, reason="quorum test", guardian_id=handle.id),
            ],
        },
    )
    await eventually(lambda: len(sim.sim.pauses()) == 2)
    await eventually(lambda: len(notable_events(database_url, handle.id)) == 4)
    assert notable_events(database_url, handle.id) == [("admin_rejected", "rejected_pause")] * 3 + [("pause", "pause")]
    details = [
        e.details for e in (await handle.query(GuardianWorkflow.events)).events if e.event_type == "admin_rejected"
    ]
    assert details[0] == "malformed: malformed pause body: reason must be a string, got int"
    assert details[1].startswith("malformed: malformed pause body: authorization is required")
    assert details[2].startswith("malformed: malformed pause body: reason is required for a pause")
    result = await handle.query(GuardianWorkflow.status)
    assert (result.system_status, result.paused) == ("fully_paused", True)
