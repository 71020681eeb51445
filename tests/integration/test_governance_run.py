"""Governance runs on the dev server with the fleet's worker, real PostgreSQL and a loopback
agent: BRIEF recorded with its brief and charged once, a retried charge activity still charges
once, budget exhaustion and grant problems refuse the run with a recorded reason, the HTTP
entrypoint's idempotency key, and a failing run that does not break its schedule."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from govfleet.contracts.governance_run import GOVERNANCE_RUN_WORKFLOW, GovernanceRunInput, GovernanceRunResult
from govfleet.repo_spec import parse_repo_spec
from govfleet.settings import Config, load_settings
from schedules.reconciler import describe_or_none, reconcile
from tests.golden.record import recording, save_golden
from tests.integration.schedules_support import (
    LoopbackServer,
    fleet_worker,
    fund_system_tenant,
    govfleet,
    system_balance,
)
from tests.operator_spec import operator_spec_text
from workers.factory import build_worker
from workers.resources import Resources

SCHEDULED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def run_input(charter: str = "COMMUNITY", **over) -> GovernanceRunInput:
    data: dict[str, Any] = dict(
        schedule_id=f"governance:{charter}",
        charter=charter,
        entrypoint="BRIEF",
        credits_per_run=1_000_000,
        budget_credits_per_day=100_000_000,
        scheduled_at=SCHEDULED,
    )
    data.update(over)
    return GovernanceRunInput(**data)


def run_id(inp: GovernanceRunInput) -> str:
    return f"{inp.schedule_id}-{uuid.uuid4().hex[:8]}"


def run_row(url: str, rid: str) -> dict:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM governance_runs WHERE id = %s", (rid,)).fetchone()


def charges(url: str, rid: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT amount, reason FROM credit_ledger WHERE reference = %s", (rid,)).fetchall()


async def execute(client, task_queue: str, inp: GovernanceRunInput, rid: str | None = None) -> GovernanceRunResult:
    return await client.execute_workflow(
        GOVERNANCE_RUN_WORKFLOW, inp, id=rid or run_id(inp), task_queue=task_queue, result_type=GovernanceRunResult
    )


async def test_brief_run_is_recorded_briefed_and_charged_once(dev_env, config, make_database, task_queue):
    url = make_database()
    fund_system_tenant(url, 10_000_000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO governance_events (event_type, holder_control, threshold_level, action)"
            " VALUES ('check', 53.20, 'caution', 'notify_admins')"
        )
        conn.execute(
            "INSERT INTO governance_alerts (alert_type, holder_control, message, action_taken)"
            " VALUES ('caution', 53.20, 'Holder control below 55%', 'notify_admins')"
        )
    inp = run_input()
    rid = run_id(inp)
    async with fleet_worker(dev_env.client, config, url, task_queue):
        handle = await dev_env.client.start_workflow(
            GOVERNANCE_RUN_WORKFLOW, inp, id=rid, task_queue=task_queue, result_type=GovernanceRunResult
        )
        result = await handle.result()
        if recording():
            await save_golden(handle, "governance_run_brief")
    assert result.status == "success" and result.credits_charged == 1_000_000
    assert result.title == "Community — 2025-03-01"
    assert result.idempotency_key == "governance:COMMUNITY:2025-03-01T09:00:00Z"
    row = run_row(url, rid)
    assert row["status"] == "success" and row["reason"] is None and row["title"] == "Community — 2025-03-01"
    assert row["owner_user_id"] == "cogni_system_principal" and row["credits_charged"] == 1_000_000
    assert row["schedule_id"] == "governance:COMMUNITY" and row["scheduled_at"] == SCHEDULED
    assert row["updated_at"] >= row["started_at"]
    brief = row["brief"]
    assert brief.startswith("# Community — 2025-03-01")
    assert "Level: **caution**, holder control 53.20 %" in brief
    assert "Balance: 9,000,000 credits" in brief and "Holder control below 55%" in brief
    assert "## Heartbeat" in brief
    assert charges(url, rid) == [(-1_000_000, "governance_run")]
    assert system_balance(url) == 9_000_000


class _CrashAfterCharge(Interceptor):
    """The charge activity commits, then its first attempt 'crashes' before reporting back."""

    def __init__(self) -> None:
        self.attempts = 0

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        outer = self

        class Inbound(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                from temporalio import activity

                result = await super().execute_activity(input)
                if activity.info().activity_type == "governance_run_charge":
                    outer.attempts += 1
                    if activity.info().attempt == 1:
                        raise RuntimeError("worker lost after the charge committed")
                return result

        return Inbound(next)


async def test_a_retried_charge_activity_charges_once(dev_env, config, make_database, task_queue):
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    crash = _CrashAfterCharge()
    inp = run_input("ENGINEERING", credits_per_run=2_000_000)
    rid = run_id(inp)
    async with fleet_worker(dev_env.client, config, url, task_queue, interceptors=[crash]):
        result = await execute(dev_env.client, task_queue, inp, rid)
        if recording():
            await save_golden(dev_env.client.get_workflow_handle(rid), "governance_run_charge_retried")
    assert crash.attempts == 2  # really retried
    assert result.status == "success" and result.credits_charged == 2_000_000
    assert charges(url, rid) == [(-2_000_000, "governance_run")]
    assert system_balance(url) == 3_000_000


async def test_budget_exhaustion_and_low_balance_refuse_with_a_reason(dev_env, config, make_database, task_queue):
    url = make_database()
    fund_system_tenant(url, 3_000_000)
    async with fleet_worker(dev_env.client, config, url, task_queue):
        ok = await execute(dev_env.client, task_queue, run_input(budget_credits_per_day=1_500_000))
        assert ok.status == "success"
        inp = run_input(budget_credits_per_day=1_500_000)
        rid = run_id(inp)
        refused = await execute(dev_env.client, task_queue, inp, rid)
        if recording():
            await save_golden(dev_env.client.get_workflow_handle(rid), "governance_run_refused")
        assert refused.status == "refused" and refused.credits_charged == 0
        assert (
            refused.reason
            == "daily budget exhausted: spent 1000000 of 1500000 credits today (UTC); this run costs 1000000"
        )
        row = run_row(url, rid)
        assert row["status"] == "refused" and row["reason"] == refused.reason and row["brief"] is None
        assert charges(url, rid) == []
        # Within budget but above the balance (2,000,000 left): refused as insufficient credits.
        inp = run_input(credits_per_run=2_500_000)
        rid = run_id(inp)
        poor = await execute(dev_env.client, task_queue, inp, rid)
        assert poor.status == "refused" and "insufficient credits" in poor.reason
        assert "2000000" in poor.reason and "2500000" in poor.reason
        assert run_row(url, rid)["status"] == "refused" and charges(url, rid) == []
    assert system_balance(url) == 2_000_000


@pytest.mark.parametrize(
    "sql,entrypoint,expected",
    [
        ("UPDATE execution_grants SET revoked_at = now()", "BRIEF", "was revoked"),
        ("UPDATE execution_grants SET expires_at = now() - interval '1 minute'", "BRIEF", "expired at"),
        (
            "UPDATE execution_grants SET scopes = ARRAY['governance:BRIEF']",
            "HEARTBEAT",
            "does not allow 'governance:HEARTBEAT'",
        ),
        ("DELETE FROM execution_grants", "BRIEF", "does not exist"),
    ],
)
async def test_grant_problems_refuse_the_run(dev_env, config, make_database, task_queue, sql, entrypoint, expected):
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)
    inp = run_input(entrypoint=entrypoint)
    rid = run_id(inp)
    async with fleet_worker(dev_env.client, config, url, task_queue):
        result = await execute(dev_env.client, task_queue, inp, rid)
    assert result.status == "refused" and expected in result.reason
    row = run_row(url, rid)
    assert row["status"] == "refused" and expected in row["reason"]
    assert charges(url, rid) == [] and system_balance(url) == 5_000_000


async def test_http_entrypoint_sends_one_idempotency_key_across_retries(dev_env, config, make_database, task_queue):
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    with LoopbackServer() as agent:
        agent.responses = [503]  # first attempt fails, the retry succeeds
        agent.reply_json = {"brief": "# Agent brief\n\nAll quiet.\n"}
        inp = run_input("AGENT", entrypoint="HTTP", agent_url=agent.url + "/run")
        rid = run_id(inp)
        async with fleet_worker(dev_env.client, config, url, task_queue):
            result = await execute(dev_env.client, task_queue, inp, rid)
    assert result.status == "success"
    assert [r.headers["idempotency-key"] for r in agent.received] == ["governance:AGENT:2025-03-01T09:00:00Z"] * 2
    body = agent.received[-1].json()
    assert body["idempotency_key"] == "governance:AGENT:2025-03-01T09:00:00Z" and body["run_id"] == rid
    assert run_row(url, rid)["brief"] == "# Agent brief\n\nAll quiet.\n"
    assert charges(url, rid) == [(-1_000_000, "governance_run")]


async def test_failed_runs_do_not_break_their_schedule(dev_env, config, make_database, task_queue):
    """A schedule-started HTTP run whose agent refuses (400) is recorded as error with its reason;
    the schedule stays active and the next trigger runs again, with the scheduled time in its key."""
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    client = dev_env.client
    tag = uuid.uuid4().hex[:8]
    sid = f"governance:agent{tag}"
    with LoopbackServer() as agent:
        agent.responses = [400, 400]
        spec = parse_repo_spec(
            f"cogni_dao: {{name: dao{tag}}}\n"
            "governance:\n"
            "  schedules:\n"
            f"    - {{charter: AGENT{tag}, cron: '0 0 1 1 *', entrypoint: HTTP, agent_url: '{agent.url}/run'}}\n"
        )
        try:
            assert (await reconcile(client, spec, task_queue=task_queue, notify_status=False)).ok
            async with fleet_worker(client, config, url, task_queue):
                handle = client.get_schedule_handle(sid)
                for n in (1, 2):
                    if n == 2:  # fire ids are per second: make the second fire a distinct one
                        await asyncio.sleep(1.05 - datetime.now().microsecond / 1e6)
                    await handle.trigger()
                    for _ in range(200):
                        with psycopg.connect(url) as conn:
                            done = conn.execute(
                                "SELECT count(*) FROM governance_runs WHERE schedule_id = %s AND status <> 'running'",
                                (sid,),
                            ).fetchone()[0]
                        if done >= n:
                            break
                        await asyncio.sleep(0.1)
            desc = await handle.describe()
        finally:
            for s in (sid, "governance:heartbeat"):
                if await describe_or_none(client, s) is not None:
                    await client.get_schedule_handle(s).delete()
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(
            "SELECT * FROM governance_runs WHERE schedule_id = %s ORDER BY started_at", (sid,)
        ).fetchall()
    assert [r["status"] for r in rows] == ["error", "error"]
    assert all(r["id"].startswith(f"{sid}-") for r in rows)
    assert "HTTP failed" in rows[0]["reason"] and "answered 400" in rows[0]["reason"]
    assert not desc.schedule.state.paused and len(desc.info.recent_actions) == 2
    # The key carries the schedule id and the scheduled time Temporal set for that fire.
    keys = [r.headers["idempotency-key"] for r in agent.received]
    assert len(keys) == 2 and all(k.startswith(f"{sid}:") and k.endswith("Z") for k in keys)
    assert keys[0] != keys[1]


async def test_a_run_refused_for_funds_tells_the_admins_once_per_charter_and_day(
    dev_env, config, make_database, task_queue
):
    """Before: an unfunded system tenant refused every run and nobody was told."""
    url = make_database()  # a fresh fleet: the system tenant holds 0 credits
    with LoopbackServer() as channel:
        settings = load_settings({"NOTIFY_URLS": f"json://127.0.0.1:{channel.url.rsplit(':', 1)[1]}/alerts"})
        told = Config(settings=settings, spec=config.spec)
        resources = await Resources.open(told, url, dev_env.client, pool_size=4)
        try:
            async with build_worker(dev_env.client, resources, task_queue=task_queue):
                results = [
                    await execute(dev_env.client, task_queue, run_input("COMMUNITY")),
                    await execute(dev_env.client, task_queue, run_input("COMMUNITY")),  # the same day again
                    await execute(dev_env.client, task_queue, run_input("TREASURY")),
                    await execute(dev_env.client, task_queue, run_input("COMMUNITY", budget_credits_per_day=0)),
                ]
        finally:
            await resources.close()
    assert [r.status for r in results] == ["refused"] * 4
    assert "insufficient credits" in results[0].reason and "daily budget" in results[3].reason
    notices = [r.json() for r in channel.received if r.path == "/alerts"]
    # One notice per charter and day (the budget refusal is a policy, not a lack of funds).
    titles = sorted(n["title"] for n in notices)
    assert titles == [
        "Governance run COMMUNITY refused: the system tenant is not funded",
        "Governance run TREASURY refused: the system tenant is not funded",
    ], notices
    keys = sorted(r.headers.get("x-govfleet-idempotency-key") for r in channel.received)
    assert keys == ["governance-run:not-funded:community:2025-03-01", "governance-run:not-funded:treasury:2025-03-01"]


async def test_every_agent_run_carries_the_tenants_tool_allowlist(dev_env, config, make_database, task_queue, tmp_path):
    """Before: `system_tenant.tool_allowlist` was parsed and ignored."""
    url = make_database(migrate=False)
    spec = tmp_path / "repo-spec.yaml"
    spec.write_text(operator_spec_text().replace("      - core__github_read\n", ""))
    migrated = govfleet("migrate", env={"DATABASE_URL": url, "REPO_SPEC_PATH": str(spec)})
    assert migrated.returncode == 0, migrated.stderr
    assert "system tenant tool allowlist: core__metrics_query, core__loki_query" in migrated.stdout
    fund_system_tenant(url, 5_000_000)
    with LoopbackServer() as agent:
        inp = run_input("AGENT", entrypoint="HTTP", agent_url=agent.url + "/run")
        async with fleet_worker(dev_env.client, config, url, task_queue):
            result = await execute(dev_env.client, task_queue, inp)
    assert result.status == "success"
    body = agent.received[-1].json()
    assert body["tool_allowlist"] == ["core__metrics_query", "core__loki_query"] and body["tenant_id"] == "cogni_system"
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT tool_allowlist, source FROM tenant_policies").fetchall()
    assert stored == [(["core__metrics_query", "core__loki_query"], "govfleet migrate")]
