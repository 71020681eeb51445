"""A worker killed with SIGKILL while a pause is being delivered: another worker replays the
guardian and the pause still happens exactly once — one pause id, one idempotency key on every
attempt, one `system_pauses` row, one alert per type."""

from __future__ import annotations

import os
import signal

import pytest

from govfleet.simulator import TrackerSimulator, start_simulator
from tests import processes
from tests.integration.guardian_support import (
    NotificationRecorder,
    alerts,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    pauses,
    settle,
    start_guardian,
    worker_process,
)
from workflows.guardian import GuardianWorkflow


@pytest.mark.slow  # kills a process
async def test_pause_exactly_once_across_a_worker_crash(dev_env, task_queue, config, database_url):
    running = await start_simulator(TrackerSimulator())
    sim = running.sim
    sim.set_reading(51.5)  # warning: 1 s checks
    sim.fail_next("pause", times=1000, status=503)  # the redemption target is down for now
    proc = worker_process(dev_env.client.service_client.config.target_host, task_queue, database_url)
    try:
        cfg = make_config(config, running, new_guardian_id())
        handle = await start_guardian(dev_env.client, task_queue, cfg)
        await eventually(lambda: sim.served >= 1)
        sim.set_reading(50.0)
        await eventually(lambda: len([c for c in sim.calls if c.action == "pause"]) >= 3, timeout=30)
        os.kill(proc.pid, signal.SIGKILL)  # mid-retry: the pause has not landed yet
        proc.wait(10)
        sim.failures.clear()  # the target comes back
        async with guardian_worker(dev_env.client, task_queue, config, database_url, NotificationRecorder()):
            await eventually(lambda: len(sim.pauses()) == 1, timeout=60)
            status = await handle.query(GuardianWorkflow.status)
            assert (status.system_status, status.governance_level) == ("redemptions_paused", "critical")
            await eventually(lambda: len(pauses(database_url, handle.id)) == 1)
            (row,) = pauses(database_url, handle.id)
            keys = {c.idempotency_key for c in sim.calls if c.action == "pause"}
            assert keys == {row["pause_key"]}
            assert [c.service for c in sim.pauses()] == ["redemption-algorithm"]
            assert sorted(a["alert_type"] for a in alerts(database_url, handle.id)) == [
                "caution",
                "critical",
                "warning",
            ]
            await settle(handle)
            await handle.terminate("test over")
    finally:
        processes.stop(proc, sig=signal.SIGKILL)
        await running.stop()
