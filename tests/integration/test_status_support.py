"""Helpers shared by the status-surface tests (status workflow, API, /gov page): a repo-spec
with test schedules, database seeding as the fleet's own writers would leave it, a worker
for the status workflow, and a running API on a free loopback port. The one test here
checks the seeding helper itself."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.status import StatusActivities
from activities.status_reads import StatusReadActivities
from govfleet.settings import Config, load_config
from tests.unit.test_status_contract import assert_contract  # noqa: F401  (re-exported for the status tests)
from workers.resources import Resources
from workflows.status import GovernanceStatusWorkflow


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_spec(tmp_path: Path, schedules: list[dict], extra: str = "", environ: dict | None = None) -> Config:
    """A repo-spec with these charters; it declares the default guardian (a file declares none
    unless it says so) when `extra` does not declare its own."""
    declares = any(line.startswith(("guardian:", "guardians:")) for line in extra.splitlines())
    lines = [] if declares else ["guardian: {}"]
    lines += ["governance:", "  heartbeat:", "    interval_minutes: 5", "    grace_seconds: 60", "  schedules:"]
    for s in schedules:
        lines.append(f"    - charter: {s['charter']}")
        lines.append(f'      cron: "{s["cron"]}"')
        lines.append(f"      timezone: {s.get('timezone', 'UTC')}")
    if not schedules:
        lines[-1] = "  schedules: []"
    path = tmp_path / f"repo-spec-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return load_config(environ={"REPO_SPEC_PATH": str(path), **(environ or {})})


def seed(
    url: str,
    *,
    balance: int | None = None,
    runs: list[dict] = (),
    other_runs: list[dict] = (),
    heartbeat: dict | None = None,
) -> None:
    """Write what the ledger, the governance runs and the heartbeat would have written."""
    with psycopg.connect(url) as conn:
        if balance is not None:
            conn.execute("UPDATE billing_accounts SET balance_credits = %s WHERE id = 'cogni_system'", (balance,))
        for r in runs:
            conn.execute(
                """INSERT INTO governance_runs (id, owner_user_id, title, started_at, updated_at, deleted_at, status)
                   VALUES (%s, 'cogni_system_principal', %s, %s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, updated_at = EXCLUDED.updated_at""",
                (
                    r["id"],
                    r.get("title"),
                    r["started_at"],
                    r.get("updated_at", r["started_at"]),
                    r.get("deleted_at"),
                    r.get("status", "success"),
                ),
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
                (
                    heartbeat["id"],
                    "/cogni/test/governance/heartbeat",
                    "governance.heartbeat",
                    heartbeat["time"],
                    heartbeat["status"],
                    json.dumps(heartbeat.get("data", {"status": heartbeat["status"]})),
                ),
            )


def make_runs(n: int, *, start: datetime, prefix: str = "run") -> list[dict]:
    return [
        {
            "id": f"{prefix}-{i:02d}",
            "title": f"Community — run {i}",
            "started_at": start + timedelta(minutes=i),
            "updated_at": start + timedelta(minutes=i, seconds=30),
        }
        for i in range(n)
    ]


@asynccontextmanager
async def status_worker(client: Client, config: Config, database_url: str, task_queue: str) -> AsyncIterator[Resources]:
    resources = await Resources.open(config, database_url, client, pool_size=4)
    reads = StatusReadActivities(resources)
    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[GovernanceStatusWorkflow],
            activities=[
                reads.read_status_db,
                reads.read_schedules,
                reads.status_changed,
                StatusActivities(resources).notify_status,
            ],
        ):
            yield resources
    finally:
        await resources.close()


def test_seed_writes_what_the_status_reads(make_database):
    url = make_database()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seed(
        url, balance=42, runs=make_runs(3, start=start), other_runs=[{"id": "x", "owner": "alice", "started_at": start}]
    )
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT balance_credits FROM billing_accounts WHERE id='cogni_system'").fetchone()[0] == 42
        owners = dict(conn.execute("SELECT owner_user_id, count(*) FROM governance_runs GROUP BY 1").fetchall())
    assert owners == {"cogni_system_principal": 3, "alice": 1}


# --- a running stack: isolated Temporal namespace, the fleet's worker, the API ---------------


async def isolated_client(env) -> Client:
    """A client on a fresh namespace of the shared dev server, so that the well-known workflow
    ids (`governance-status`, `governance-guardian`) of this stack meet no other test's."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

    from govfleet.temporal import connect, ensure_search_attributes

    namespace = unique("ns")
    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    client = await connect(env.client.service_client.config.target_host, namespace)
    await ensure_search_attributes(client)
    return client


class MovableClock:
    """The API's clock: real time plus an offset a test may move."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.frozen: datetime | None = None

    def __call__(self) -> datetime:
        if self.frozen is not None:
            return self.frozen
        return datetime.now(UTC) + self.offset


@dataclass
class Stack:
    client: Client
    config: Config
    database_url: str
    task_queue: str
    url: str
    clock: MovableClock


@asynccontextmanager
async def api_stack(
    env,
    database_url: str,
    tmp_path: Path,
    *,
    schedules: list[dict],
    environ: dict | None = None,
    cache_ttl: float = 2.0,
    start_status: bool = True,
    worker: bool = True,
    extra_spec: str = "",
    temporal_schedules: bool = True,
) -> AsyncIterator[Stack]:
    """The fleet's real worker (every registered workflow and activity), the charters' schedules
    in Temporal (`install_schedules`), the status workflow started the way every area starts it,
    and the API on a free loopback port."""
    from govfleet.api import create_app
    from govfleet.api.server import start_api
    from govfleet.contracts.status import StatusUpdate
    from govfleet.status_client import tell_status
    from workers.factory import build_worker

    client = await isolated_client(env)
    task_queue = unique("tq")
    config = write_spec(tmp_path, schedules, extra_spec, environ={"TEMPORAL_TASK_QUEUE": task_queue, **(environ or {})})
    clock = MovableClock()
    resources = await Resources.open(config, database_url, client, pool_size=4)
    try:
        async with AsyncExitStack() as stack:
            if temporal_schedules:
                await install_schedules(client, config)
            if worker:
                await stack.enter_async_context(build_worker(client, resources, task_queue=task_queue))
            if start_status:
                await tell_status(client, task_queue, StatusUpdate(source="test"))
            app = create_app(
                config,
                client=client,
                database_url=database_url,
                clock=clock,
                cache_ttl=cache_ttl,
                query_timeout=2.0,
                pool_size=4,
            )
            api = await start_api(app)
            stack.push_async_callback(api.stop)
            yield Stack(
                client=client, config=config, database_url=database_url, task_queue=task_queue, url=api.url, clock=clock
            )
    finally:
        await resources.close()


async def install_schedules(client: Client, config: Config, only: set[str] | None = None) -> list[str]:
    """The repo-spec's charter schedules in Temporal, as the reconciler writes them (our owner in
    the memo), but starting their runs on a task queue no worker polls: the status surface sees
    real schedules while no run charges anything. Returns the schedule ids."""
    from govfleet.contracts.governance_run import GOVERNANCE_RUN_WORKFLOW
    from schedules.desired import default_owner, desired_schedules
    from schedules.reconciler import build_schedule, schedule_memo

    owner = default_owner(config.spec)
    ids = []
    for d in desired_schedules(config.spec, unique("idle")):
        if d.workflow != GOVERNANCE_RUN_WORKFLOW or (only is not None and d.schedule_id not in only):
            continue
        await client.create_schedule(d.schedule_id, build_schedule(d, owner), memo=schedule_memo(d, owner))
        ids.append(d.schedule_id)
    return ids


async def wait_status_ready(stack: Stack, timeout: float = 20) -> None:
    """Until the status workflow has rebuilt from the database and answers."""
    from workflows.status import GovernanceStatusWorkflow

    handle = stack.client.get_workflow_handle("governance-status")
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            snap = await handle.query(GovernanceStatusWorkflow.snapshot)
            if snap.state.rebuilt_at is not None and snap.state.schedules_read_at is not None:
                return
        except Exception:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the status workflow did not rebuild in time")
        await asyncio.sleep(0.1)
