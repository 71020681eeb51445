"""Input cannot wedge the guardian (docs/security.md, "Bounded state"): 200 invalid readings of
60 KB each, then a real drop. Before, the guardian kept their text in its state and its
continue-as-new failed on every attempt (the payload too large), so nothing paused. Now it pauses
at the drop, continues as new cleanly and its carried state stays small."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from govfleet.contracts.guardian import READING_SIGNAL
from govfleet.simulator import TrackerSimulator, reading_body, start_simulator
from tests.integration.guardian_support import (
    NotificationRecorder,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    start_guardian,
)
from workflows.guardian import GuardianWorkflow

FLOOD = 200
JUNK_BYTES = 60_000


@pytest.mark.slow
async def test_a_flood_of_huge_invalid_readings_cannot_wedge_the_guardian(dev_env, task_queue, config, database_url):
    running = await start_simulator(TrackerSimulator())
    running.sim.set_reading(70.0)
    client = dev_env.client
    try:
        async with guardian_worker(client, task_queue, config, database_url, NotificationRecorder()):
            cfg = make_config(config, running, new_guardian_id(), continue_as_new_after_events=400)
            handle = await start_guardian(client, task_queue, cfg)
            await eventually(lambda: running.sim.served >= 1)
            junk = {**reading_body(70.0), "holder_control_percentage": "9" * JUNK_BYTES}
            for _ in range(FLOOD):
                await handle.signal(READING_SIGNAL, junk)

            async def flood_handled() -> bool:
                events = (await handle.query(GuardianWorkflow.events, {"limit": 5})).events
                return (await handle.query(GuardianWorkflow.stats)).checks >= FLOOD and bool(events)

            await eventually(flood_handled, timeout=120)
            stats = await handle.query(GuardianWorkflow.stats)
            assert stats.state_bytes < 200_000, stats  # 200 events kept, each quoting 40 characters of 60 KB
            last = (await handle.query(GuardianWorkflow.events, {"limit": 1})).events[0]
            assert last.event_type == "tracker_error" and "(60000 characters)" in (last.details or "")
            assert len(last.details or "") < 600

            # A real drop, pushed: the guardian pauses at once.
            running.sim.set_reading(45.0)
            dropped_at = time.monotonic()
            await handle.signal(READING_SIGNAL, reading_body(45.0, now=datetime.now(UTC)))
            await eventually(lambda: len(running.sim.pauses()) == 2, timeout=60)
            took = time.monotonic() - dropped_at
            assert took < cfg.rules.monitoring_interval_normal, took

            # And it continues as new cleanly, carrying a small state.
            await eventually(lambda: _continued(handle), timeout=120, interval=0.5)
            # Not stuck: no workflow task being retried (a busy machine may time one out now and then,
            # which the next attempt mends; a wedged guardian's attempts only grow).
            await eventually(lambda: _no_failing_task(handle), timeout=60, interval=0.5)
            after = await handle.query(GuardianWorkflow.stats)
            assert after.runs >= 1 and after.state_bytes < 200_000
            assert (await handle.query(GuardianWorkflow.status)).system_status == "fully_paused"
            print(
                f"flood of {FLOOD} x {JUNK_BYTES} B: state {stats.state_bytes} B; drop -> pause {took:.2f} s; "
                f"runs {after.runs}, history {after.history_length} events"
            )
            await handle.terminate("test over")
    finally:
        await running.stop()


async def _no_failing_task(handle) -> bool:
    raw = (await handle.describe()).raw_description
    return not raw.HasField("pending_workflow_task") or raw.pending_workflow_task.attempt <= 1


async def _continued(handle) -> bool:
    return (await handle.query(GuardianWorkflow.stats)).runs >= 1
