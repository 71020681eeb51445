"""The watchdog with its real activities, against the dev server and real PostgreSQL: a watched
guardian id that is not running and a heartbeat that went silent each open one incident (a row in
`watchdog_incidents`, one urgent notification) and resolve with one recovery notice when the
guardian runs and a heartbeat succeeds. (The golden history `watchdog` is recorded from here.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from temporalio import workflow
from temporalio.worker import Worker

from activities.watchdog import WatchdogActivities
from govfleet.contracts.watchdog import (
    HeartbeatWatch,
    WatchdogConfig,
    WatchdogInput,
    WatchedWorkflow,
)
from tests.golden.record import recording, save_golden
from tests.integration.guardian_support import NotificationRecorder, eventually, rows
from workers.resources import Resources
from workflows.watchdog import WatchdogWorkflow


def heartbeat_at(url: str, when: datetime, status: str = "ok") -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO heartbeat_events (id, source, type, time, status, data) VALUES (%s, %s, %s, %s, %s, '{}')",
            (f"hb-{uuid.uuid4().hex[:8]}", "/test", "governance.heartbeat", when, status),
        )


async def test_watchdog_opens_and_resolves_incidents(dev_env, task_queue, config, make_database):
    url = make_database()
    client = dev_env.client
    guardian = f"governance-guardian-wd{uuid.uuid4().hex[:6]}"
    heartbeat_at(url, datetime.now(UTC) - timedelta(minutes=5))  # the last success, long ago
    heartbeat_at(url, datetime.now(UTC), status="failed")  # a failed one is no sign of life
    recorder = NotificationRecorder()
    resources = await Resources.open(config, url, client, pool_size=2)
    try:
        acts = WatchdogActivities(resources)
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[WatchdogWorkflow],
            activities=[acts.inspect, acts.record, recorder.send_notification],
        ):
            watch = WatchdogConfig(
                check_seconds=1,
                workflows=[WatchedWorkflow(workflow_id=guardian, kind="guardian", notify_guardian=guardian)],
                heartbeat=HeartbeatWatch(interval_seconds=60, grace_seconds=5),
                notify_guardian=guardian,
            )
            handle = await client.start_workflow(
                WatchdogWorkflow.run,
                WatchdogInput(config=watch, continue_as_new_after_events=200),
                id=f"governance-watchdog-{uuid.uuid4().hex[:6]}",
                task_queue=task_queue,
            )

            def incidents() -> list[dict]:
                return rows(url, "SELECT kind, subject, resolved_at FROM watchdog_incidents ORDER BY id")

            opened = await eventually(lambda: len(incidents()) == 2 and incidents(), timeout=30)
            assert {(i["kind"], i["subject"]) for i in opened} == {
                ("guardian_down", guardian),
                ("heartbeat_missed", "heartbeat"),
            }
            await eventually(lambda: sorted(recorder.kinds()) == ["guardian_down", "heartbeat_missed"])
            assert all(r.urgent for r in recorder.requests)

            # The guardian id runs (any workflow: the watchdog only asks Temporal), a heartbeat succeeds.
            stand_in = await client.start_workflow("StandIn", id=guardian, task_queue=f"{task_queue}-nobody")
            heartbeat_at(url, datetime.now(UTC))
            await eventually(lambda: all(i["resolved_at"] is not None for i in incidents()), timeout=30)
            await eventually(lambda: recorder.kinds().count("recovery") == 2)
            status = await handle.query(WatchdogWorkflow.status)
            assert status.open == [] and status.workflows == {guardian: "RUNNING"}
            assert len(incidents()) == 2  # each announced once
            if recording():
                await save_golden(handle, "watchdog")
            await stand_in.terminate("test over")
            await handle.terminate("test over")
    finally:
        await resources.close()


@workflow.defn(name="StuckGuardian", sandboxed=False)
class StuckGuardian:
    """Stands in for a guardian that cannot make progress (any cause): every workflow task fails."""

    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("this workflow task always fails")


async def test_a_guardian_whose_workflow_tasks_keep_failing_is_an_incident(dev_env, task_queue, config, make_database):
    url = make_database()
    client = dev_env.client
    guardian = f"governance-guardian-stuck{uuid.uuid4().hex[:6]}"
    recorder = NotificationRecorder()
    resources = await Resources.open(config, url, client, pool_size=2)
    try:
        acts = WatchdogActivities(resources)
        async with (
            Worker(client, task_queue=f"{task_queue}-stuck", workflows=[StuckGuardian]),
            Worker(
                client,
                task_queue=task_queue,
                workflows=[WatchdogWorkflow],
                activities=[acts.inspect, acts.record, recorder.send_notification],
            ),
        ):
            stuck = await client.start_workflow(StuckGuardian.run, id=guardian, task_queue=f"{task_queue}-stuck")
            watch = WatchdogConfig(
                check_seconds=1,
                workflows=[WatchedWorkflow(workflow_id=guardian, kind="guardian", notify_guardian=guardian)],
                notify_guardian=guardian,
            )
            handle = await client.start_workflow(
                WatchdogWorkflow.run,
                WatchdogInput(config=watch, continue_as_new_after_events=200),
                id=f"governance-watchdog-{uuid.uuid4().hex[:6]}",
                task_queue=task_queue,
            )
            [incident] = await eventually(
                lambda: rows(url, "SELECT kind, subject, details FROM watchdog_incidents WHERE subject = %s", guardian),
                timeout=60,
            )
            assert incident["kind"] == "workflow_stuck"
            assert "cannot make progress" in incident["details"] and "workflow task failed" in incident["details"]
            await eventually(lambda: "workflow_stuck" in recorder.kinds())
            assert [r.urgent for r in recorder.requests if r.kind == "workflow_stuck"] == [True]
            await stuck.terminate("test over")
            await handle.terminate("test over")
    finally:
        await resources.close()
