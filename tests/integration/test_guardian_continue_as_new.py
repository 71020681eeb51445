"""Continue-as-new on a dev server that suggests it after 50 history events: the guardian
continues as new, carries its whole state (level, open alerts, pauses, used nonces,
counters) and keeps every run's history short."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from govfleet.domain.guardian.models import PauseInput
from govfleet.simulator import TrackerSimulator, start_simulator
from govfleet.temporal import SEARCH_ATTRIBUTES, temporal_cli_path
from tests.integration.guardian_support import (
    ADMIN_0,
    NotificationRecorder,
    alerts,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    pauses,
    settle,
    sign,
    start_guardian,
)
from workflows.guardian import GuardianWorkflow


@pytest.fixture(scope="module")
async def suggesting_env():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        data_converter=pydantic_data_converter,
        search_attributes=list(SEARCH_ATTRIBUTES),
        ui=False,
        dev_server_log_level="error",
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=50"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_continues_as_new_carrying_all_state(suggesting_env, task_queue, config, database_url):
    client = suggesting_env.client
    running = await start_simulator(TrackerSimulator())
    running.sim.set_reading(50.5)  # critical: 1 s checks, redemptions paused, three alerts open
    try:
        async with guardian_worker(client, task_queue, config, database_url, NotificationRecorder()):
            # Our own threshold far away: only the server's suggestion triggers it here.
            cfg = make_config(config, running, new_guardian_id(), continue_as_new_after_events=100_000)
            handle = await start_guardian(client, task_queue, cfg)
            gid = handle.id
            await eventually(lambda: len(running.sim.pauses()) == 1)
            reason = "hold before the handover"
            token = sign(ADMIN_0, "pause", datetime.now(UTC), reason=reason, guardian_id=gid)
            await handle.execute_update(GuardianWorkflow.pause_update, PauseInput(reason=reason, authorization=token))
            before = await handle.query(GuardianWorkflow.stats)

            async def continued_twice():
                return (await handle.query(GuardianWorkflow.stats)).runs >= 2

            await eventually(continued_twice, timeout=60)

            stats = await handle.query(GuardianWorkflow.stats)
            assert stats.checks > before.checks and stats.used_nonces == 1
            status = await handle.query(GuardianWorkflow.status)
            assert (status.governance_level, status.system_status, status.alerts_active) == (
                "critical",
                "fully_paused",
                3,
            )
            # Two pauses (automatic: redemptions; manual: the rest), each target called exactly once.
            assert sorted(c.service for c in running.sim.pauses()) == ["redemption-algorithm", "sol-treasury-core"]
            assert len([c for c in running.sim.calls if c.action == "pause"]) == 2
            assert [(p["pause_type"], p["scope"]) for p in pauses(database_url, gid)] == [
                ("automatic", "redemptions"),
                ("manual", "everything"),
            ]
            # No alert was opened twice by a new run.
            assert sorted(a["alert_type"] for a in alerts(database_url, gid)) == ["caution", "critical", "warning"]
            # The nonce used in the first run is still remembered.
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await handle.execute_update(
                    GuardianWorkflow.pause_update, PauseInput(reason=reason, authorization=token)
                )
            assert info.value.cause.details == ("replayed",)

            # Every run but the current one ended in continue-as-new, with a short history.
            lengths = []
            run_id = (await handle.describe()).run_id
            while run_id:
                history = await client.get_workflow_handle(gid, run_id=run_id).fetch_history()
                events = history.events
                lengths.append(len(events))
                first = events[0].workflow_execution_started_event_attributes
                run_id = first.continued_execution_run_id or None
                if len(lengths) > 1:
                    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            assert len(lengths) >= 3
            assert max(lengths[1:]) < 50 + 20, lengths
            await settle(handle)
            await handle.terminate("test over")
    finally:
        await running.stop()
