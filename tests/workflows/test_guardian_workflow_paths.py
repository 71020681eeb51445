"""Guardian workflow branches that need no PostgreSQL, in the time-skipping server with the
tracker, the audit writes, the breaker targets and the notification channels replaced by name:
an audit log that is down while holder control crosses the critical threshold (the breaker is
still paused, checks go on, one alert, every row written once it is back, a recovery notice), a
tracker that cannot be reached (an alert after `failures_before_alert`, never a breaker call),
and continue-as-new carrying a pause and the rows not yet written."""

from __future__ import annotations

from govfleet.domain.guardian.levels import DATABASE_ALERT, DATABASE_RECOVERED, TRACKER_ALERT
from tests.integration.fleet_support import wait_for
from tests.workflows.guardian_outside import FETCH_READING_ACTIVITY, RECORD_ACTIVITY, running, stats
from workflows.guardian import GuardianWorkflow


async def test_an_audit_outage_never_stops_checks_or_breakers_and_loses_no_row(time_skipping_env, guardian):
    env = time_skipping_env
    handle, outside = await guardian(70.0)
    await wait_for(lambda: outside.events("governance_check"), 20, "the first check written")

    outside.database_down = True
    await env.sleep(30)  # the next check's write fails (retried once, then kept)
    await wait_for(
        lambda: len(outside.written) == 1 and len(outside.calls.of(RECORD_ACTIVITY)) >= 3, 20, "a failed write"
    )
    await env.sleep(30)  # a second failed write: the database alert goes out, once
    await wait_for(lambda: DATABASE_ALERT in outside.kinds(), 20, "the database_unavailable alert")

    outside.value = 50.5  # below critical while the audit log is down: the breaker still trips
    await env.sleep(30)
    await wait_for(lambda: outside.breaker_calls, 20, "the pause call")
    [(pause, while_down)] = outside.breaker_calls
    assert while_down and pause.action == "pause" and pause.target == "redemption-algorithm"
    assert pause.idempotency_key.startswith(f"{handle.id}:pause-")
    checks_during_outage = (await stats(handle)).checks
    assert checks_during_outage >= 4 and (await stats(handle)).audit_failures >= 3

    outside.database_down = False
    await env.sleep(6)  # the next due attempt writes everything that was kept
    await wait_for(lambda: outside.events("audit_unavailable"), 20, "the audit_unavailable event")
    await wait_for(lambda: DATABASE_RECOVERED in outside.kinds(), 20, "the recovery notice")

    checks = [e.key for e in outside.events("governance_check")]
    assert len(checks) == len(set(checks)), "a row was written twice"
    assert len(checks) >= checks_during_outage  # every check made during the outage was written
    written_types = {e.event_type for e in outside.events()}
    assert {"threshold_crossed", "pause", "audit_unavailable"} <= written_types
    [opened] = [p for b in outside.written for p in b.pauses_opened]
    assert opened.key == pause.idempotency_key and opened.scope == "redemptions"
    alerts = [n for n in outside.notifications.values() if n.kind == DATABASE_ALERT]
    assert len(alerts) == 1 and alerts[0].urgent
    assert [n.kind for n in outside.notifications.values()].count(DATABASE_RECOVERED) == 1
    assert (await stats(handle)).audit_failures == 0
    assert len(outside.breaker_calls) == 1  # paused once, never resumed by itself
    assert await running(handle)


async def test_an_unreachable_tracker_raises_an_alert_and_never_trips_a_breaker(time_skipping_env, guardian):
    env = time_skipping_env
    handle, outside = await guardian(70.0)  # failures_before_alert: 3 (the default)
    await wait_for(lambda: outside.events("governance_check"), 20, "the first check written")

    outside.value = None
    for n in range(1, 4):
        await env.sleep(30)
        await wait_for(lambda n=n: len(outside.events("tracker_error")) == n, 20, f"tracker error {n} written")
    errors = outside.events("tracker_error")
    assert [e.action for e in errors] == ["none", "none", "alert"]
    assert all("unreachable: fetch activity failed" in e.details for e in errors)
    await wait_for(lambda: TRACKER_ALERT in outside.kinds(), 20, "the tracker_unavailable notification")
    [alert] = [n for n in outside.notifications.values() if n.kind == TRACKER_ALERT]
    assert alert.urgent is False  # the level was excellent when the tracker went away
    status = await handle.query(GuardianWorkflow.status)
    assert status.governance_level == "excellent" and status.alerts_active == 1 and not status.paused

    outside.value = 70.0  # the next valid reading resolves the alert
    await env.sleep(30)
    await wait_for(lambda: outside.events("alert_resolved"), 20, "the alert resolved")
    assert (await handle.query(GuardianWorkflow.status)).alerts_active == 0
    await wait_for(lambda: "recovery" in outside.kinds(), 20, "the recovery notice")
    assert outside.breaker_calls == []
    assert await running(handle)


async def _ran_twice(handle):
    s = await stats(handle)
    return s if s.runs >= 2 else None


async def test_continue_as_new_carries_the_pause_and_pauses_once(time_skipping_env, guardian):
    env = time_skipping_env
    handle, outside = await guardian(50.5, continue_as_new_after_events=40)
    await wait_for(lambda: outside.breaker_calls, 20, "the pause call")
    await env.sleep(20)  # 1 s checks: several continue-as-new boundaries
    later = await wait_for(lambda: _ran_twice(handle), 20, "two continue-as-new")
    assert later.runs >= 2, later
    status = await handle.query(GuardianWorkflow.status)
    assert status.paused and status.system_status == "redemptions_paused" and status.governance_level == "critical"
    assert later.checks >= 15  # counters travel with the state
    assert len(outside.breaker_calls) == 1  # the pause is state, not re-issued by a new run
    checks = [e.key for e in outside.events("governance_check")]
    assert len(checks) == len(set(checks))


async def test_a_stream_of_signals_never_postpones_the_check(time_skipping_env, guardian):
    """Found by the simulator (signal-postpones-check): each signal used to start the check interval
    afresh, so holder control could go unchecked as long as signals kept arriving. The guardian polls
    an interval after its last poll, whatever arrives meanwhile."""
    env = time_skipping_env
    handle, outside = await guardian(70.0)  # 30 s checks
    await wait_for(lambda: outside.calls.of(FETCH_READING_ACTIVITY), 20, "the first poll")
    outside.value = 45.0  # the tracker now says: below the emergency threshold
    for _ in range(9):  # a refused admin action every 10 s, for 90 s
        await handle.signal(GuardianWorkflow.pause_signal, {"reason": "x", "authorization": "not-a-token"})
        await env.sleep(10)
    await wait_for(lambda: len(outside.calls.of(FETCH_READING_ACTIVITY)) >= 3, 20, "polls every 30 s")
    await wait_for(lambda: outside.breaker_calls, 20, "the pause the polls found")
    assert len(outside.events("admin_rejected")) >= 1
