"""An operator pauses a schedule in Temporal itself (the UI, `temporal schedule toggle --pause`),
with no govfleet command involved: the status workflow sees it at its next schedules read
(`schedules_refresh_seconds`), the contract stops announcing the schedule's runs, the extended
status and `govfleet status` show it as paused; unpaused, it is back (docs/status.md, "Upcoming
runs"); and `govfleet status` marks the times of the cron fallback. A running stack: dev Temporal
server (own namespace), the fleet's worker, real PostgreSQL, the API over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from govfleet.contracts.status import STATUS_WORKFLOW_ID, StatusWorkflowInput
from tests.golden.record import recording, save_golden
from tests.integration.test_status_support import api_stack, assert_contract, seed, wait_status_ready
from workflows.status import GovernanceStatusWorkflow

SCHEDULES = [{"charter": "COMMUNITY", "cron": "0 */6 * * *"}, {"charter": "OUTREACH", "cron": "0 9 * * 1"}]


@pytest.fixture
async def stack(dev_env, make_database, tmp_path):
    url = make_database()
    seed(url, balance=5_000_000_000)
    async with api_stack(dev_env, url, tmp_path, schedules=SCHEDULES, start_status=False) as s:
        # Started as every area starts it, but reading Temporal's schedules every 2 s.
        await s.client.start_workflow(
            GovernanceStatusWorkflow.run,
            StatusWorkflowInput(schedules_refresh_seconds=2),
            id=STATUS_WORKFLOW_ID,
            task_queue=s.task_queue,
        )
        try:
            await wait_status_ready(s)
            yield s
        finally:
            await s.client.get_workflow_handle(STATUS_WORKFLOW_ID).terminate()


async def _eventually(get, ok, timeout: float = 60):
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while True:
        last = await get()
        if ok(last):
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s; last: {last!r}")
        await asyncio.sleep(0.2)


def _names(body: dict) -> list[str]:
    return sorted(r["name"] for r in body["upcomingRuns"])


async def _govfleet(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "DATABASE_URL")}, **(env or {})}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "govfleet.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_an_operator_pause_in_temporal_shows_without_govfleet(stack):
    [outreach] = [s for s in stack.config.spec.governance.schedules if s.charter == "OUTREACH"]
    schedule = stack.client.get_schedule_handle(outreach.schedule_id)
    workflow = stack.client.get_workflow_handle(STATUS_WORKFLOW_ID)
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:

        async def v1() -> dict:
            resp = await http.get("/api/v1/governance/status")
            assert resp.status_code == 200, resp.text
            return assert_contract(resp.text, now=datetime.now(UTC) - timedelta(seconds=1))

        async def extended() -> dict:
            resp = await http.get("/api/v1/governance/status/extended")
            assert resp.status_code == 200, resp.text
            return resp.json()

        def outreach_of(ext: dict) -> dict:
            [entry] = [s for s in ext["schedules"] if s["scheduleId"] == outreach.schedule_id]
            return entry

        assert _names(await v1()) == ["Community", "Outreach"]
        code, table, err = await _govfleet("status", "--api", stack.url)
        assert code == 0, err
        assert "paused" not in table.lower()

        # As the Temporal UI does it: the client's ScheduleHandle, no govfleet code involved.
        await schedule.pause(note="operator, from the UI")
        await _eventually(v1, lambda b: _names(b) == ["Community"])
        ext = await _eventually(extended, lambda e: outreach_of(e)["paused"])
        assert outreach_of(ext)["nextRunAt"] is None and ext["schedulesSource"] == "temporal"
        snap = await workflow.query(GovernanceStatusWorkflow.snapshot)
        assert [(s.charter, s.paused) for s in snap.state.schedules] == [("COMMUNITY", False), ("OUTREACH", True)]
        status = (await workflow.query(GovernanceStatusWorkflow.status)).model_dump(mode="json")
        assert [r["name"] for r in status["upcomingRuns"]] == ["Community"]

        # `govfleet status` through the API: the table names it paused, --json stays the contract.
        code, table, err = await _govfleet("status", "--api", stack.url)
        assert code == 0, err
        [row] = [line for line in table.splitlines() if "Outreach" in line]
        assert "paused" in row
        code, out, err = await _govfleet("status", "--api", stack.url, "--json")
        assert code == 0, err
        body = assert_contract(out, now=datetime.now(UTC) - timedelta(seconds=5))
        assert set(json.loads(out)) == {"systemCredits", "upcomingRuns", "recentRuns"}
        assert _names(body) == ["Community"]

        await schedule.unpause(note="operator, from the UI")
        body = await _eventually(v1, lambda b: _names(b) == ["Community", "Outreach"])
        described = await schedule.describe()
        [nxt] = [r["nextRunAt"] for r in body["upcomingRuns"] if r["name"] == "Outreach"]
        assert nxt == described.info.next_action_times[0].strftime("%Y-%m-%dT%H:%M:%S.000Z")
        ext = await _eventually(extended, lambda e: not outreach_of(e)["paused"])
        assert outreach_of(ext)["nextRunAt"] == nxt

        # Reads that change nothing bump nothing: API processes keep their copy.
        def version() -> int:
            with psycopg.connect(stack.database_url) as conn:
                row = conn.execute("SELECT version FROM status_version").fetchone()
            assert row is not None
            return row[0]

        settled = await workflow.query(GovernanceStatusWorkflow.snapshot)
        before = await asyncio.to_thread(version)
        await _eventually(
            lambda: workflow.query(GovernanceStatusWorkflow.snapshot),
            lambda s: (
                s.state.schedules_read_at is not None
                and settled.state.schedules_read_at is not None
                and s.state.schedules_read_at >= settled.state.schedules_read_at + timedelta(seconds=4)
            ),
        )
        first_fire = min(t for s in settled.state.schedules for t in s.next_times)
        if datetime.now(UTC) < first_fire:  # no fire time passed meanwhile (that moves the listed times on)
            assert await asyncio.to_thread(version) == before
        if recording():  # the periodic schedules read of patch `status-schedules-from-temporal`
            await save_golden(workflow, "status_workflow_operator_pause")


async def test_govfleet_status_marks_cron_fallback_times(dev_env, make_database, tmp_path):
    """No worker answers: the API falls back to the repo-spec's crons; `govfleet status` (with the
    read token, which the extended status needs too) marks those times as estimated."""
    url = make_database()
    seed(url, balance=7)
    async with api_stack(
        dev_env,
        url,
        tmp_path,
        schedules=SCHEDULES[:1],
        worker=False,
        start_status=False,
        environ={"API_READ_TOKEN": "s3cret"},
    ) as s:
        code, table, err = await _govfleet("status", "--api", s.url, env={"API_READ_TOKEN": "s3cret"})
        assert code == 0, err
        assert "source: api (database)" in table
        [row] = [line for line in table.splitlines() if "Community" in line]
        assert row.rstrip().endswith("estimated (cron fallback)") and "paused" not in row
        code, out, err = await _govfleet("status", "--api", s.url, "--json", env={"API_READ_TOKEN": "s3cret"})
        assert code == 0, err
        assert "estimated" not in out and set(json.loads(out)) == {"systemCredits", "upcomingRuns", "recentRuns"}
