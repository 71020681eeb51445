"""Helpers shared by the status-surface tests (status workflow, API, /gov page): a repo-spec
with test schedules, database seeding as the fleet's own writers would leave it, a worker
for the status workflow, and a running API on a free loopback port. The one test here
checks the seeding helper itself."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.status import StatusActivities
from activities.status_reads import StatusReadActivities
from govfleet.settings import Config, load_config
from workers.resources import Resources
from workflows.status import GovernanceStatusWorkflow

from tests.unit.test_status_contract import assert_contract  # noqa: F401  (re-exported for the status tests)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_spec(tmp_path: Path, schedules: list[dict], extra: str = "", environ: dict | None = None) -> Config:
    lines = ["governance:", "  heartbeat:", "    interval_minutes: 5", "    grace_seconds: 60", "  schedules:"]
    for s in schedules:
        lines.append(f"    - charter: {s['charter']}")
        lines.append(f"      cron: \"{s['cron']}\"")
        lines.append(f"      timezone: {s.get('timezone', 'UTC')}")
    if not schedules:
        lines[-1] = "  schedules: []"
    path = tmp_path / f"repo-spec-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return load_config(environ={"REPO_SPEC_PATH": str(path), **(environ or {})})


def seed(url: str, *, balance: int | None = None, runs: list[dict] = (), other_runs: list[dict] = (),
         heartbeat: dict | None = None) -> None:
    """Write what the ledger, the governance runs and the heartbeat would have written."""
    with psycopg.connect(url) as conn:
        if balance is not None:
            conn.execute("UPDATE billing_accounts SET balance_credits = %s WHERE id = 'cogni_system'", (balance,))
        for r in runs:
            conn.execute(
                """INSERT INTO governance_runs (id, owner_user_id, title, started_at, updated_at, deleted_at, status)
                   VALUES (%s, 'cogni_system_principal', %s, %s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, updated_at = EXCLUDED.updated_at""",
                (r["id"], r.get("title"), r["started_at"], r.get("updated_at", r["started_at"]),
                 r.get("deleted_at"), r.get("status", "success")),
            )
        for r in other_runs:
            conn.execute("INSERT INTO users (id) VALUES (%s) ON CONFLICT DO NOTHING", (r["owner"],))
            conn.execute(
                """INSERT INTO governance_runs (id, owner_user_id, title, started_at, updated_at)
                   VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
                (r["id"], r["owner"], r.get("title"), r["started_at"], r.get("updated_at", r["started_at"])),
            )
        if heartbeat is not None:
            conn.execute(
                "INSERT INTO heartbeat_events (id, source, type, time, status, data) VALUES (%s, %s, %s, %s, %s, %s)",
                (heartbeat["id"], "/cogni/test/governance/heartbeat", "governance.heartbeat", heartbeat["time"],
                 heartbeat["status"], json.dumps(heartbeat.get("data", {"status": heartbeat["status"]}))),
            )


def make_runs(n: int, *, start: datetime, prefix: str = "run") -> list[dict]:
    return [
        {"id": f"{prefix}-{i:02d}", "title": f"Community — run {i}", "started_at": start + timedelta(minutes=i),
         "updated_at": start + timedelta(minutes=i, seconds=30)}
        for i in range(n)
    ]


@asynccontextmanager
async def status_worker(client: Client, config: Config, database_url: str, task_queue: str) -> AsyncIterator[Resources]:
    resources = await Resources.open(config, database_url, client, pool_size=4)
    reads = StatusReadActivities(resources)
    try:
        async with Worker(
            client, task_queue=task_queue, workflows=[GovernanceStatusWorkflow],
            activities=[reads.read_status_db, reads.read_schedules, StatusActivities(resources).notify_status],
        ):
            yield resources
    finally:
        await resources.close()


def test_seed_writes_what_the_status_reads(make_database):
    url = make_database()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    seed(url, balance=42, runs=make_runs(3, start=start), other_runs=[{"id": "x", "owner": "alice", "started_at": start}])
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT balance_credits FROM billing_accounts WHERE id='cogni_system'").fetchone()[0] == 42
        owners = dict(conn.execute("SELECT owner_user_id, count(*) FROM governance_runs GROUP BY 1").fetchall())
    assert owners == {"cogni_system_principal": 3, "alice": 1}
