"""The `governance-status` workflow against real PostgreSQL and real Temporal.

Time-skipping server: rebuild from the database, signals, the just-passed fire time.
Dev server: continue-as-new carrying state; the schedules as Temporal has them (ours only, paused
ones marked, Temporal's next action times).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleSpec,
    ScheduleState,
)

from govfleet.contracts.status import (
    STATUS_QUERY,
    STATUS_WORKFLOW_ID,
    RecentRun,
    SnapshotQueryResult,
    StatusQueryInput,
    StatusUpdate,
    StatusWorkflowInput,
)
from govfleet.domain.status import display_name
from govfleet.status_client import tell_status
from tests.golden.record import recording, save_golden
from tests.integration.test_status_support import (
    assert_contract,
    make_runs,
    seed,
    status_worker,
    unique,
    write_spec,
)
from workflows.status import GovernanceStatusWorkflow

SCHEDULES = [
    {"charter": "COMMUNITY", "cron": "0 */6 * * *"},
    {"charter": "ENGINEERING", "cron": "30 9 * * 1-5", "timezone": "Europe/Berlin"},
    {"charter": "TREASURY", "cron": "0 12 * * 1", "timezone": "America/New_York"},
    {"charter": "MINUTELY", "cron": "* * * * *"},
]
BIG = 9_000_000_000_000_000_001  # above 2**53: only a string keeps it exact


@pytest.fixture(scope="module")
def status_db(make_database) -> str:
    url = make_database()
    start = datetime.now(UTC) - timedelta(days=1)
    runs = make_runs(12, start=start)
    runs[11]["deleted_at"] = start  # the newest run is deleted: never shown
    seed(
        url,
        balance=BIG,
        runs=runs,
        other_runs=[{"id": "alice-run", "owner": "alice", "started_at": datetime.now(UTC)}],
    )
    return url


async def _query(handle, at: datetime | None = None) -> dict:
    status = await handle.query(GovernanceStatusWorkflow.status, StatusQueryInput(at=at) if at else None)
    return status.model_dump(mode="json")


async def test_rebuilds_from_the_database_and_answers_the_contract(time_skipping_env, status_db, tmp_path, task_queue):
    env = time_skipping_env
    config = write_spec(tmp_path, SCHEDULES)
    async with status_worker(env.client, config, status_db, task_queue):
        handle = await env.client.start_workflow(
            GovernanceStatusWorkflow.run,
            StatusWorkflowInput(check_temporal_schedules=False),
            id=unique("status"),
            task_queue=task_queue,
        )
        try:
            snap = await _wait_rebuilt(handle)
            assert snap.state.schedules and snap.state.read_error is None
            body = assert_contract(await _query(handle), now=snap.workflow_time)
            assert body["systemCredits"] == str(BIG)
            # 12 system runs, the newest deleted, alice's never visible: the 10 most recent others.
            assert [r["id"] for r in body["recentRuns"]] == [f"run-{i:02d}" for i in range(10, 0, -1)]
            assert body["recentRuns"][0]["title"] == "Community — run 10"
            assert body["upcomingRuns"][0]["name"] == "Minutely"
            assert len(body["upcomingRuns"]) == 3
            # A query without input also works (what `temporal workflow query --name status` sends).
            raw = await handle.query(STATUS_QUERY)
            assert raw["systemCredits"] == str(BIG)
        finally:
            await handle.terminate()


async def test_updates_keep_it_current_and_the_database_wins(time_skipping_env, make_database, tmp_path, task_queue):
    env = time_skipping_env
    url = make_database()
    seed(url, balance=1000)
    config = write_spec(tmp_path, SCHEDULES[:2])
    async with status_worker(env.client, config, url, task_queue):
        handle = await env.client.start_workflow(
            GovernanceStatusWorkflow.run,
            StatusWorkflowInput(check_temporal_schedules=False, debounce_seconds=2),
            id=unique("status"),
            task_queue=task_queue,
        )
        try:
            await _wait_rebuilt(handle)
            now = datetime.now(UTC)
            run = RecentRun(id="brief-1", title="Community — today", started_at=now, last_activity=now)
            seed(url, balance=1750, runs=[{"id": "brief-1", "title": "Community — today", "started_at": now}])
            await handle.signal(
                GovernanceStatusWorkflow.update, StatusUpdate(system_credits="1750", run=run, source="test")
            )
            body = await _query(handle)
            assert body["systemCredits"] == "1750"
            assert body["recentRuns"][0]["id"] == "brief-1"

            # An out-of-order (stale) balance is repaired by the debounced database read.
            await handle.signal(GovernanceStatusWorkflow.update, StatusUpdate(system_credits="1000", source="late"))
            assert (await _query(handle))["systemCredits"] == "1000"
            await env.sleep(timedelta(seconds=5))
            await _eventually(lambda: _query(handle), lambda b: b["systemCredits"] == "1750")

            # A finished run updates its entry; a heartbeat is kept; bad fields are ignored, not fatal.
            later = now + timedelta(minutes=3)
            done = RecentRun(id="brief-1", title="Community — today (done)", started_at=now, last_activity=later)
            await handle.signal(GovernanceStatusWorkflow.update, StatusUpdate(run=done, source="run"))
            hb = {"status": "ok", "time": later.isoformat(), "checks": {"balance": {"ok": True, "detail": "fine"}}}
            await handle.signal(GovernanceStatusWorkflow.update, StatusUpdate(heartbeat=hb, source="heartbeat"))
            await handle.signal(GovernanceStatusWorkflow.update, StatusUpdate(system_credits="-5", source="broken"))
            await handle.signal(
                GovernanceStatusWorkflow.update, StatusUpdate(heartbeat={"nothing": 1}, source="broken")
            )
            body = await _query(handle)
            assert body["recentRuns"][0]["title"] == "Community — today (done)" and len(body["recentRuns"]) == 1
            snap: SnapshotQueryResult = await handle.query(GovernanceStatusWorkflow.snapshot)
            assert snap.state.heartbeat.status == "ok" and snap.state.heartbeat.time == later
            assert snap.state.updates_received == 6
            if recording():
                await save_golden(handle, "status_workflow")
        finally:
            await handle.terminate()


async def test_upcoming_runs_never_lag_behind_a_passed_fire_time(
    time_skipping_env, make_database, tmp_path, task_queue
):
    """A cron firing every minute: after each fire time passes, the answer moves on."""
    env = time_skipping_env
    url = make_database()
    config = write_spec(tmp_path, [{"charter": "MINUTELY", "cron": "* * * * *"}])
    async with status_worker(env.client, config, url, task_queue):
        handle = await env.client.start_workflow(
            GovernanceStatusWorkflow.run,
            StatusWorkflowInput(check_temporal_schedules=False),
            id=unique("status"),
            task_queue=task_queue,
        )
        try:
            await _wait_rebuilt(handle)
            first = await _query(handle)
            fire = datetime.fromisoformat(first["upcomingRuns"][0]["nextRunAt"].replace("Z", "+00:00"))
            assert fire > await env.get_current_time()
            # Sleep past three fire times; each answer is after the server's current time.
            for _ in range(3):
                now = await env.get_current_time()
                await env.sleep(fire - now + timedelta(seconds=1))
                after = await env.get_current_time()
                assert after > fire
                body = await _eventually(
                    lambda: _query(handle), lambda b, fire=fire: b["upcomingRuns"][0]["nextRunAt"] != _iso(fire)
                )
                assert_contract(body, now=after)
                assert body["upcomingRuns"][0]["nextRunAt"] == _iso(fire + timedelta(minutes=1))
                fire += timedelta(minutes=1)
            # The caller's clock wins when it is later than the workflow's.
            ahead = await env.get_current_time() + timedelta(minutes=10, seconds=30)
            assert_contract(await _query(handle, at=ahead), now=ahead)
        finally:
            await handle.terminate()


async def test_continue_as_new_carries_state_and_rebuilds(dev_env, make_database, tmp_path, task_queue):
    """Schedules as Temporal has them: ours (one paused by an operator), not a foreign schedule on a
    declared id, not a declared charter that was never reconciled."""
    from schedules.reconciler import reconcile
    from tests.integration.test_status_support import isolated_client

    client = await isolated_client(dev_env)
    url = make_database()
    seed(url, balance=500)
    charter = f"ST{unique('x')[-8:].upper()}"
    config = write_spec(
        tmp_path,
        [
            {"charter": charter, "cron": "0 0 * * *"},
            {"charter": charter + "B", "cron": "0 1 * * *"},
            {"charter": charter + "C", "cron": "0 2 * * *"},
        ],
        environ={"TEMPORAL_TASK_QUEUE": task_queue},
    )
    declared = config.spec.governance.schedules
    # Charter C's id is held by a schedule that is not ours (no owner memo).
    foreign = await client.create_schedule(
        declared[2].schedule_id,
        Schedule(
            action=ScheduleActionStartWorkflow("Nothing", id=unique("nothing"), task_queue=task_queue),
            spec=ScheduleSpec(cron_expressions=["0 2 * * *"]),
            state=ScheduleState(paused=False, note="someone else's"),
        ),
    )
    report = await reconcile(client, config.spec, task_queue=task_queue, notify_status=False)
    assert report.blocked == [declared[2].schedule_id]
    # An operator paused the first charter's schedule: it has no upcoming run.
    await client.get_schedule_handle(declared[0].schedule_id).pause(note="operator")
    async with status_worker(client, config, url, task_queue):
        handle = await client.start_workflow(
            GovernanceStatusWorkflow.run,
            StatusWorkflowInput(max_history_events=40, debounce_seconds=0),
            id=unique("status"),
            task_queue=task_queue,
        )
        try:
            first_run = (await handle.describe()).run_id
            await _wait_rebuilt(handle)
            start = datetime.now(UTC)
            for i in range(15):
                t = start + timedelta(seconds=i)
                await handle.signal(
                    GovernanceStatusWorkflow.update,
                    StatusUpdate(
                        run=RecentRun(id=f"sig-{i:02d}", title=None, started_at=t, last_activity=t), source="test"
                    ),
                )
            seed(url, balance=800)
            await handle.signal(GovernanceStatusWorkflow.update, StatusUpdate(schedules_changed=True, source="test"))
            latest = client.get_workflow_handle(handle.id)  # follows the newest run
            snap = await _eventually(
                lambda: latest.query(GovernanceStatusWorkflow.snapshot),
                lambda s: s.generation >= 1 and s.state.system_credits == "800",
                timeout=30,
            )
            assert (await latest.describe()).run_id != first_run
            got = [(s.schedule_id, s.paused, s.source) for s in snap.state.schedules]
            assert got == [
                (declared[0].schedule_id, True, "temporal"),
                (declared[1].schedule_id, False, "temporal"),
            ]
            assert snap.state.schedules_not_ours == [declared[2].schedule_id]
            # Temporal's own next action times: 01:00 UTC every day.
            times = snap.state.schedules[1].next_times
            assert len(times) >= 3 and all(t.hour == 1 and t.minute == 0 for t in times)
            body = assert_contract(await _query(latest), now=datetime.now(UTC))
            assert [r["name"] for r in body["upcomingRuns"]] == [display_name(charter + "B")]
            # Signalled runs survive continue-as-new even though they are not in the database.
            assert [r["id"] for r in body["recentRuns"]] == [f"sig-{i:02d}" for i in range(14, 4, -1)]
            history = await latest.fetch_history()
            assert len(history.events) < 200
        finally:
            await client.get_workflow_handle(handle.id).terminate()
            await foreign.delete()


async def test_signal_with_start_from_any_area_starts_it(time_skipping_env, make_database, tmp_path, task_queue):
    """`tell_status` (what every area uses) starts the workflow with `{}` as its input."""
    env = time_skipping_env
    url = make_database()
    seed(url, balance=7)
    config = write_spec(tmp_path, [])
    handle = env.client.get_workflow_handle(STATUS_WORKFLOW_ID)
    with contextlib.suppress(Exception):  # a leftover from another test would receive the signal instead
        await handle.terminate()
    async with status_worker(env.client, config, url, task_queue):
        await tell_status(env.client, task_queue, StatusUpdate(system_credits="7", source="test"))
        try:
            body = await _eventually(lambda: _query(handle), lambda b: b["systemCredits"] == "7")
            assert body["upcomingRuns"] == [] and body["recentRuns"] == []
        finally:
            await handle.terminate()


# --- helpers ---------------------------------------------------------------------------


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


async def _wait_rebuilt(handle, timeout: float = 20) -> SnapshotQueryResult:
    return await _eventually(
        lambda: handle.query(GovernanceStatusWorkflow.snapshot),
        lambda s: s.state.rebuilt_at is not None and s.state.schedules_read_at is not None,
        timeout=timeout,
    )


async def _eventually(get, ok, timeout: float = 10):
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while True:
        try:
            last = await get()
            if ok(last):
                return last
        except Exception as exc:  # the workflow may not have run its first task yet
            last = exc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s; last: {last!r}")
        await asyncio.sleep(0.1)


def test_database_fixture_isolated(status_db):
    with psycopg.connect(status_db) as conn:
        n = conn.execute("SELECT count(*) FROM governance_runs").fetchone()[0]
    assert n == 13


async def test_temporal_times_are_read_again_before_they_run_out(dev_env, make_database, tmp_path, task_queue):
    """A schedule firing every 2 s: Temporal lists about ten times; the workflow reads them again
    when fewer than 3 are left, so the times it holds stay ahead, and each read that changed them
    bumps the status version (what API processes validate their copy against)."""
    from temporalio.client import ScheduleIntervalSpec

    from schedules.desired import default_owner, desired_schedules
    from schedules.reconciler import build_schedule, schedule_memo
    from tests.integration.test_status_support import isolated_client

    client = await isolated_client(dev_env)
    url = make_database()
    config = write_spec(
        tmp_path, [{"charter": "FAST", "cron": "* * * * *"}], environ={"TEMPORAL_TASK_QUEUE": task_queue}
    )
    owner = default_owner(config.spec)
    [d] = [d for d in desired_schedules(config.spec, unique("idle")) if d.args.get("charter") == "FAST"]
    schedule = build_schedule(d, owner)
    schedule.spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=2))])
    await client.create_schedule(d.schedule_id, schedule, memo=schedule_memo(d, owner))

    def version() -> int:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT version FROM status_version").fetchone()[0]

    async with status_worker(client, config, url, task_queue):
        handle = await client.start_workflow(
            GovernanceStatusWorkflow.run,
            StatusWorkflowInput(debounce_seconds=0),
            id=unique("status"),
            task_queue=task_queue,
        )
        try:
            snap = await _wait_rebuilt(handle)
            first = snap.state.schedules[0].next_times
            assert len(first) >= 5 and snap.state.schedules[0].source == "temporal"
            before = version()
            # Past the last time of the first list: only a new read can have moved the times on.
            later = await _eventually(
                lambda: handle.query(GovernanceStatusWorkflow.snapshot),
                lambda s: s.state.schedules[0].next_times[-1] > first[-1] + timedelta(seconds=4),
                timeout=60,
            )
            assert later.state.schedules[0].next_times[0] > datetime.now(UTC) - timedelta(seconds=10)
            # The version is bumped by an activity right after the state changed (so that an API
            # seeing the new version finds the new state): it may come a moment after the query.
            await _eventually(lambda: asyncio.to_thread(version), lambda v: v > before, timeout=30)
            body = assert_contract(await _query(handle), now=datetime.now(UTC) - timedelta(seconds=1))
            assert [r["name"] for r in body["upcomingRuns"]] == ["Fast"]
            if recording():  # the path of patch `status-schedules-from-temporal`
                await save_golden(handle, "status_workflow_temporal_times")
        finally:
            await handle.terminate()
