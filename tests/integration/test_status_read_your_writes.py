"""Read your writes on the status surface: a read that starts after a committed payment, a
governance run's charge or a reconcile shows it, whatever the API held before (docs/status.md,
"Read your writes"). A running stack: dev Temporal server (own namespace), the fleet's worker,
real PostgreSQL, the API over real HTTP, no waiting between the write and the read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from govfleet.contracts.governance_run import GOVERNANCE_RUN_WORKFLOW, GovernanceRunInput
from govfleet.contracts.status import StatusUpdate
from govfleet.settings import load_config
from govfleet.status_client import refresh_status
from schedules.reconciler import reconcile
from tests.integration.test_status_support import api_stack, assert_contract, seed, unique, wait_status_ready
from tests.payment_signing import PAY_PATH, signed, signing_environ

SCHEDULES = [{"charter": "COMMUNITY", "cron": "0 */6 * * *"}]


@pytest.fixture
async def stack(dev_env, make_database, tmp_path):
    url = make_database()
    seed(url, balance=5_000_000_000)
    async with api_stack(dev_env, url, tmp_path, schedules=SCHEDULES, environ=signing_environ()) as s:
        await wait_status_ready(s)
        yield s


@pytest.fixture
async def http(stack):
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as client:
        yield client


async def credits(http: httpx.AsyncClient) -> int:
    resp = await http.get("/api/v1/governance/status")
    assert resp.status_code == 200, resp.text
    return int(assert_contract(resp.text, now=datetime.now(UTC) - timedelta(seconds=1))["systemCredits"])


def balance(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT balance_credits FROM billing_accounts WHERE id = 'cogni_system'").fetchone()
    assert row is not None
    return int(row[0])


async def test_a_read_after_a_payment_shows_it(http, stack):
    before = await credits(http)
    assert before == 5_000_000_000 and await credits(http) == before  # the API holds a copy now
    payment = {"client_payment_id": unique("ryw-pay"), "user_id": "dora", "amount_usd_cents": 10_000}
    resp = await http.post(PAY_PATH, **signed(payment))
    assert resp.status_code == 200, resp.text
    assert await credits(http) == before + resp.json()["bonus_credits"] == balance(stack.database_url)


async def test_a_read_after_a_run_is_charged_shows_the_new_balance(http, stack):
    before = await credits(http)
    assert await credits(http) == before
    run_id = unique("run-ryw")
    handle = await stack.client.start_workflow(
        GOVERNANCE_RUN_WORKFLOW,
        GovernanceRunInput(
            schedule_id=stack.config.spec.governance.schedules[0].schedule_id,
            charter="COMMUNITY",
            entrypoint="BRIEF",
            credits_per_run=1_000_000,
            budget_credits_per_day=100_000_000,
            scheduled_at=datetime.now(UTC),
        ),
        id=run_id,
        task_queue=stack.task_queue,
    )
    # The moment the charge is committed (polled on the database), the status shows it.
    deadline = asyncio.get_running_loop().time() + 30
    while balance(stack.database_url) == before:
        assert asyncio.get_running_loop().time() < deadline, "the run was never charged"
        await asyncio.sleep(0.02)
    assert await credits(http) == before - 1_000_000
    # Once finished, the run carries its outcome in the extended status.
    await handle.result()
    ext = (await http.get("/api/v1/governance/status/extended")).json()
    [run] = [r for r in ext["recentRuns"] if r["id"] == run_id]
    assert run["outcome"] == "succeeded" and run["reason"] is None
    assert int(ext["systemCredits"]) == before - 1_000_000


async def test_a_refused_run_shows_its_outcome_and_reason(http, stack):
    await credits(http)
    run_id = unique("run-refused")
    await stack.client.execute_workflow(
        GOVERNANCE_RUN_WORKFLOW,
        GovernanceRunInput(
            schedule_id=stack.config.spec.governance.schedules[0].schedule_id,
            charter="COMMUNITY",
            entrypoint="BRIEF",
            credits_per_run=2_000_000,
            budget_credits_per_day=1_000_000,  # over budget: refused, nothing charged
            scheduled_at=datetime.now(UTC),
        ),
        id=run_id,
        task_queue=stack.task_queue,
    )
    ext = (await http.get("/api/v1/governance/status/extended")).json()
    [run] = [r for r in ext["recentRuns"] if r["id"] == run_id]
    assert run["outcome"] == "refused" and "budget" in run["reason"]


async def test_a_read_after_a_reconcile_shows_the_new_schedule_and_a_pause_shows_as_paused(http, stack):
    def names(body: dict) -> list[str]:
        return [r["name"] for r in body["upcomingRuns"]]

    assert names((await http.get("/api/v1/governance/status")).json()) == ["Community"]
    # An edit of the repo-spec that is not reconciled yet is not shown, even after a re-read.
    path = stack.config.settings.REPO_SPEC_PATH
    with open(path, "a") as f:
        f.write('    - charter: OUTREACH\n      cron: "0 9 * * 1"\n      timezone: Europe/Berlin\n')
    await refresh_status(stack.client, stack.task_queue, StatusUpdate(schedules_changed=True, source="test"))
    assert names((await http.get("/api/v1/governance/status")).json()) == ["Community"]

    spec = load_config(environ={"REPO_SPEC_PATH": path}).spec
    report = await reconcile(stack.client, spec, task_queue=stack.task_queue)
    assert report.ok, report.render()
    # Immediately after the reconcile returned: the new charter, at the time Temporal lists.
    body = (await http.get("/api/v1/governance/status")).json()
    assert sorted(names(body)) == ["Community", "Outreach"]
    [outreach] = [s for s in spec.governance.schedules if s.charter == "OUTREACH"]
    described = await stack.client.get_schedule_handle(outreach.schedule_id).describe()
    [nxt] = [r["nextRunAt"] for r in body["upcomingRuns"] if r["name"] == "Outreach"]
    assert nxt == described.info.next_action_times[0].strftime("%Y-%m-%dT%H:%M:%S.000Z")

    # An operator pauses it: after the status workflow read the schedules again, it is shown
    # as paused in the extended status and has no upcoming run in the contract.
    await stack.client.get_schedule_handle(outreach.schedule_id).pause(note="operator")
    await refresh_status(stack.client, stack.task_queue, StatusUpdate(schedules_changed=True, source="test"))
    assert names((await http.get("/api/v1/governance/status")).json()) == ["Community"]
    ext = (await http.get("/api/v1/governance/status/extended")).json()
    paused = {s["name"]: (s["paused"], s["nextRunAt"], s["scheduleId"]) for s in ext["schedules"]}
    assert paused["Outreach"] == (True, None, outreach.schedule_id)
    assert paused["Community"][0] is False and ext["schedulesSource"] == "temporal"
