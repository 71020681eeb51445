"""Helpers for the guardian's integration tests: a worker with the guardian workflow and
its real activities (PostgreSQL, HTTP to the loopback tracker simulator), a recorder for
notifications, signing with the public Hardhat development keys, database reads.

The private keys are the well-known, public Hardhat/Anvil development accounts 0, 1
(the demo admins of .cogni/repo-spec.yaml) and 2 (not an admin): test use only.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.guardian import GuardianActivities
from govfleet.contracts.guardian import GuardianInput
from govfleet.contracts.notifications import SEND_NOTIFICATION_ACTIVITY, NotificationRequest
from govfleet.domain.admin_signing import GovernanceApproval, SigningDomain, sign_authorization
from govfleet.domain.guardian.models import BreakerTarget, GuardianConfig
from govfleet.repo_spec import guardian_config, load_repo_spec
from govfleet.settings import Config
from govfleet.simulator import RunningSimulator
from tests import processes
from tests.conftest import REPO_ROOT
from workers.resources import Resources
from workflows.guardian import GuardianWorkflow

ADMIN_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat #0 (public)
ADMIN_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # Hardhat #1 (public)
OUTSIDER = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # Hardhat #2, not an admin
# The example repo-spec's cogni_dao: the domain the test guardians' admin signatures are bound to.
DEMO_DOMAIN = load_repo_spec(
    Path(__file__).resolve().parents[2] / ".cogni" / "repo-spec.yaml"
).cogni_dao.signing_domain()


class NotificationRecorder:
    """Plays the notification channel: records every `send_notification` request."""

    def __init__(self) -> None:
        self.requests: list[NotificationRequest] = []

    @activity.defn(name=SEND_NOTIFICATION_ACTIVITY)
    async def send_notification(self, req: NotificationRequest) -> None:
        self.requests.append(req)

    def kinds(self) -> list[str]:
        seen: dict[str, NotificationRequest] = {}
        for r in self.requests:  # at-least-once: deduplicate by idempotency key
            seen.setdefault(r.idempotency_key, r)
        return [r.kind for r in seen.values()]


def new_guardian_id(prefix: str = "governance-guardian-t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def make_config(config: Config, sim: RunningSimulator, guardian_id: str, **overrides) -> GuardianConfig:
    breakers = [
        BreakerTarget(name="redemption-algorithm", url=sim.url, scope="redemptions"),
        BreakerTarget(name="sol-treasury-core", url=sim.url, scope="everything"),
    ]
    data = dict(guardian_id=guardian_id, tracker_url=sim.url, breakers=breakers)
    data.update(overrides)
    return guardian_config(config.spec.guardian, config.spec.cogni_dao, **data)


@asynccontextmanager
async def guardian_worker(
    client: Client,
    task_queue: str,
    config: Config,
    database_url: str,
    recorder: NotificationRecorder | None = None,
    *,
    more_activities=None,
    **worker_kwargs,
) -> AsyncIterator[Resources]:
    resources = await Resources.open(config, database_url, client, pool_size=4)
    acts = GuardianActivities(resources)
    activities = [acts.fetch_reading, acts.record, acts.call_breaker, acts.probe_breaker, acts.restore]
    if recorder is not None:
        activities.append(recorder.send_notification)
    if more_activities is not None:
        activities += more_activities(resources)
    try:
        async with Worker(
            client, task_queue=task_queue, workflows=[GuardianWorkflow], activities=activities, **worker_kwargs
        ):
            yield resources
    finally:
        await resources.close()


async def start_guardian(client: Client, task_queue: str, cfg: GuardianConfig) -> WorkflowHandle:
    return await client.start_workflow(
        GuardianWorkflow.run, GuardianInput(config=cfg), id=cfg.guardian_id, task_queue=task_queue
    )


def sign(
    key: str,
    action: str,
    now: datetime,
    *,
    reason: str = "",
    guardian_id: str,
    nonce: str | None = None,
    ttl: int = 600,
    domain: SigningDomain = DEMO_DOMAIN,
    approval: GovernanceApproval | None = None,
) -> str:
    return sign_authorization(
        key,
        approval=approval,
        domain=domain,
        action=action,
        guardian_id=guardian_id,
        reason=reason,
        expires_at=now + timedelta(seconds=ttl),
        nonce=nonce or uuid.uuid4().hex,
    )


def rows(database_url: str, sql: str, *params) -> list[dict]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def notable_events(database_url: str, guardian_id: str) -> list[tuple[str, str]]:
    return [
        (r["event_type"], r["action"])
        for r in rows(
            database_url,
            "SELECT event_type, action FROM governance_events WHERE guardian_id = %s "
            "AND event_type <> 'governance_check' ORDER BY id",
            guardian_id,
        )
    ]


def alerts(database_url: str, guardian_id: str) -> list[dict]:
    return rows(database_url, "SELECT * FROM governance_alerts WHERE guardian_id = %s ORDER BY id", guardian_id)


def pauses(database_url: str, guardian_id: str) -> list[dict]:
    return rows(database_url, "SELECT * FROM system_pauses WHERE guardian_id = %s ORDER BY id", guardian_id)


def check_count(database_url: str, guardian_id: str) -> int:
    return rows(
        database_url,
        "SELECT count(*) AS n FROM governance_events WHERE guardian_id = %s AND event_type = 'governance_check'",
        guardian_id,
    )[0]["n"]


async def eventually(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g}s")
        await asyncio.sleep(interval)


async def settle(handle: WorkflowHandle, timeout: float = 20.0) -> None:
    """Wait until the guardian has no breaker call or notification in flight (the
    time-skipping server keeps time locked for an activity abandoned mid-flight)."""
    from workflows.guardian import GuardianWorkflow

    async def idle() -> bool:
        stats = await handle.query(GuardianWorkflow.stats)
        return stats.pending_breaker_calls == 0 and stats.pending_notifications == 0

    await eventually(idle, timeout=timeout)


def worker_process(address: str, task_queue: str, database_url: str) -> subprocess.Popen:
    """A guardian worker in a process of its own (`_serve_worker`), for tests that kill it; the
    caller stops it with `tests.processes.stop`."""
    proc = processes.spawn(
        [sys.executable, "-m", "tests.integration.guardian_support", address, task_queue, database_url],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if "worker ready" not in line:
        processes.stop(proc)
        raise AssertionError(line + (proc.stdout.read() if proc.stdout else ""))
    return proc


async def _serve_worker(address: str, task_queue: str, database_url: str) -> None:
    """A guardian worker in its own process (killed with SIGKILL by the crash test)."""
    from govfleet.settings import load_config
    from govfleet.temporal import connect
    from tests.conftest import EXAMPLE_SPEC

    client = await connect(address)
    config = load_config(environ={}, repo_spec_path=EXAMPLE_SPEC)
    async with guardian_worker(client, task_queue, config, database_url, NotificationRecorder()):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve_worker(*sys.argv[1:4]))
