"""A guardian terminated and started again by the reconciler, against the dev server, real
PostgreSQL and the loopback simulator: it takes back its active pauses, open alerts and used
admin nonces from the database — still fully paused, no breaker called a second time, a replayed
admin signature still refused — and says so with a `guardian_restored` event. (The golden
history `guardian_restored` is recorded from here.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from govfleet.contracts.guardian import PauseInput
from govfleet.simulator import TrackerSimulator, start_simulator
from tests.golden.record import recording, save_golden
from tests.integration.fleet_support import ensure_guardian
from tests.integration.guardian_support import (
    ADMIN_0,
    NotificationRecorder,
    alerts,
    check_count,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    pauses,
    rows,
    sign,
)
from workflows.guardian import GuardianWorkflow


@pytest.fixture
async def sim():
    running = await start_simulator(TrackerSimulator())
    running.sim.set_reading(50.5)  # below the critical threshold: redemptions are paused
    try:
        yield running
    finally:
        await running.stop()


def pause_calls(sim) -> list[tuple[str, str | None, bool]]:
    return [(c.service or "", c.idempotency_key, c.duplicate) for c in sim.sim.calls if c.action == "pause"]


async def test_a_terminated_guardian_started_again_takes_back_its_state(dev_env, task_queue, config, database_url, sim):
    client = dev_env.client
    recorder = NotificationRecorder()
    cfg = make_config(config, sim, new_guardian_id())
    gid = cfg.guardian_id
    async with guardian_worker(client, task_queue, config, database_url, recorder):
        first = await ensure_guardian(client, task_queue, cfg, expect="started")
        await eventually(lambda: len(pause_calls(sim)) == 1)  # redemptions paused automatically
        reason = "Manual intervention required"
        token = sign(ADMIN_0, "pause", datetime.now(UTC), reason=reason, guardian_id=gid)
        await first.execute_update(GuardianWorkflow.pause_update, PauseInput(reason=reason, authorization=token))
        await eventually(lambda: len(pause_calls(sim)) == 2)  # and then everything, by an admin
        await eventually(
            lambda: len(rows(database_url, "SELECT 1 FROM breaker_acks WHERE idempotency_key LIKE %s", f"{gid}:%")) == 2
        )
        assert len(rows(database_url, "SELECT 1 FROM admin_nonces WHERE guardian_id = %s", gid)) == 1
        open_alerts = [a["alert_type"] for a in alerts(database_url, gid) if not a["resolved"]]
        assert open_alerts == ["caution", "warning", "critical"]
        calls_before = pause_calls(sim)
        await first.terminate("terminated by an operator")

        again = await ensure_guardian(client, task_queue, cfg, expect="started")
        assert again.id == gid
        [restored] = await eventually(
            lambda: rows(
                database_url,
                "SELECT details FROM governance_events WHERE guardian_id = %s AND event_type = 'guardian_restored'",
                gid,
            )
        )
        assert "3 open alert(s) [caution, warning, critical], 2 active pause(s)" in restored["details"]
        assert "1 admin nonce(s)" in restored["details"]
        status = await again.query(GuardianWorkflow.status)
        assert status.paused and status.system_status == "fully_paused" and status.alerts_active == 3
        checks = check_count(database_url, gid)
        await eventually(lambda: check_count(database_url, gid) >= checks + 3)  # 1 s checks, still below 51 %
        assert pause_calls(sim) == calls_before  # no breaker called a second time
        assert len(pauses(database_url, gid)) == 2  # and no new pause recorded
        assert [a["alert_type"] for a in alerts(database_url, gid)] == ["caution", "warning", "critical"]  # none twice

        # The admin signature used before the terminate is still spent.
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await again.execute_update(GuardianWorkflow.pause_update, PauseInput(reason=reason, authorization=token))
        cause = info.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "AdminRejected"
        assert cause.details == ("replayed",), cause
        if recording():
            await save_golden(again, "guardian_restored")
        await again.terminate("test over")
