"""The watchdog workflow in the time-skipping server with its look, its incident writes and the
notification channels replaced by name: a guardian that stops running is announced once and its
return once, a missed heartbeat likewise, and continue-as-new keeps what is open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import activity

from govfleet.contracts.notifications import SEND_NOTIFICATION_ACTIVITY, NotificationRequest
from govfleet.contracts.watchdog import (
    INSPECT_ACTIVITY,
    RECORD_ACTIVITY,
    HeartbeatWatch,
    InspectInput,
    Observation,
    RecordIncidentsInput,
    WatchdogConfig,
    WatchdogInput,
    WatchedWorkflow,
)
from tests.integration.fleet_support import wait_for
from tests.workflows.doubles import new_id, worker
from workflows.watchdog import WatchdogWorkflow

G = "governance-guardian"


class World:
    def __init__(self) -> None:
        self.guardian: str | None = "RUNNING"
        self.heartbeat_at: datetime | None = None
        self.looks = 0
        self.changes: list[tuple[str, str, str]] = []  # (change, kind, subject)
        self.notes: dict[str, NotificationRequest] = {}

    @activity.defn(name=INSPECT_ACTIVITY)
    async def inspect(self, req: InspectInput) -> Observation:
        self.looks += 1
        return Observation(
            statuses={G: self.guardian, "governance-status": "RUNNING"},
            heartbeat_readable=True,
            last_heartbeat_ok_at=self.heartbeat_at,
        )

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, req: RecordIncidentsInput) -> None:
        self.changes += [(c.change, c.incident.kind, c.incident.subject) for c in req.changes]

    @activity.defn(name=SEND_NOTIFICATION_ACTIVITY)
    async def send(self, req: NotificationRequest) -> None:
        self.notes.setdefault(req.idempotency_key, req)

    def kinds(self) -> list[str]:
        return [n.kind for n in self.notes.values()]


def watch(heartbeat: bool) -> WatchdogConfig:
    return WatchdogConfig(
        check_seconds=15,
        workflows=[
            WatchedWorkflow(workflow_id=G, kind="guardian", notify_guardian=G),
            WatchedWorkflow(workflow_id="governance-status", kind="status", notify_guardian=G),
        ],
        heartbeat=HeartbeatWatch(interval_seconds=60, grace_seconds=10) if heartbeat else None,
    )


async def test_a_stopped_guardian_and_a_missed_heartbeat_are_told_once_each_way(time_skipping_env, task_queue):
    env = time_skipping_env
    world = World()
    world.heartbeat_at = datetime.now(UTC) + timedelta(days=1)  # far ahead of the skipped clock: "up"
    async with worker(env, task_queue, [WatchdogWorkflow], [world.inspect, world.record, world.send]):
        handle = await env.client.start_workflow(
            WatchdogWorkflow.run,
            WatchdogInput(config=watch(heartbeat=True), continue_as_new_after_events=100),
            id=new_id("governance-watchdog-t"),
            task_queue=task_queue,
        )
        await wait_for(lambda: world.looks >= 1, 20, "the first look")
        world.guardian = "TERMINATED"
        await env.sleep(31)
        await wait_for(lambda: ("opened", "guardian_down", G) in world.changes, 20, "guardian_down opened")
        await env.sleep(60)
        assert world.kinds().count("guardian_down") == 1
        world.guardian = "RUNNING"
        await env.sleep(16)
        await wait_for(lambda: ("resolved", "guardian_down", G) in world.changes, 20, "guardian_down resolved")
        await wait_for(lambda: "recovery" in world.kinds(), 20, "the recovery notice")

        world.heartbeat_at = None  # heartbeats stop: counted from when the watchdog began watching
        await env.sleep(120)
        await wait_for(lambda: "heartbeat_missed" in world.kinds(), 20, "heartbeat_missed")
        status = await handle.query(WatchdogWorkflow.status)
        assert [i.kind for i in status.open] == ["heartbeat_missed"]
        await env.sleep(600)  # several continue-as-new (every 100 events): still once, still open
        status = await handle.query(WatchdogWorkflow.status)
        assert status.runs >= 1 and [i.kind for i in status.open] == ["heartbeat_missed"]
        assert world.kinds().count("heartbeat_missed") == 1

        world.heartbeat_at = datetime.now(UTC) + timedelta(days=2)
        await env.sleep(16)
        await wait_for(lambda: ("resolved", "heartbeat_missed", "heartbeat") in world.changes, 20, "cleared")
        assert world.kinds().count("recovery") == 2
        assert all(n.urgent for n in world.notes.values() if n.kind != "recovery")
        await handle.terminate("test over")
