"""The heartbeat workflow on the dev server with the fleet's worker and real PostgreSQL:
ok / low balance / expiring grant / missing tenant, the CloudEvent in the database and at a
loopback sink, deduped notifications and the recovery notice, and a run started by the
`governance:heartbeat` schedule itself."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest
from temporalio.client import WorkflowFailureError

from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID, HEARTBEAT_WORKFLOW, HeartbeatInput, HeartbeatResult
from govfleet.domain.grant_renewal import KIND_GRANT_RENEWAL_OFF, KIND_GRANT_RENEWED
from govfleet.domain.heartbeat import KIND_FAILED, KIND_GRANT_EXPIRING, KIND_LOW_BALANCE, KIND_RECOVERY
from govfleet.repo_spec import parse_repo_spec
from schedules.reconciler import describe_or_none, reconcile
from tests.conftest import EXAMPLE_SPEC
from tests.golden.record import recording, save_golden
from tests.integration.schedules_support import LoopbackServer, fleet_worker, fund_system_tenant


def events(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, source, type, status, data FROM heartbeat_events ORDER BY time").fetchall()


async def beat(client, task_queue: str, **over) -> HeartbeatResult:
    inp = HeartbeatInput(dao_name="cogni-demo", **over)
    return await client.execute_workflow(
        HEARTBEAT_WORKFLOW,
        inp,
        id=f"{HEARTBEAT_SCHEDULE_ID}-test-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        result_type=HeartbeatResult,
    )


async def test_heartbeat_ok_is_recorded_and_posted_to_the_sink(dev_env, config, make_database, task_queue):
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    with LoopbackServer() as sink:
        async with fleet_worker(dev_env.client, config, url, task_queue) as (_, notes):
            handle = await dev_env.client.start_workflow(
                HEARTBEAT_WORKFLOW,
                HeartbeatInput(dao_name="cogni-demo", sink_url=sink.url + "/events"),
                id=f"{HEARTBEAT_SCHEDULE_ID}-test-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
            result = await handle.result()
            if recording():
                await save_golden(handle, "heartbeat_ok")
    result = HeartbeatResult.model_validate(result) if isinstance(result, dict) else result
    assert result.status == "ok" and result.recorded and result.sink_delivered and result.alerts == []
    assert notes.sent == []
    [(eid, source, typ, status, data)] = events(url)
    assert eid == handle.id and source == "/cogni/cogni-demo/governance/heartbeat"
    assert typ == "governance.heartbeat" and status == "ok"
    assert data["balance"] == "5000000" and data["grant_expires_at"].endswith("Z")
    assert set(data["checks"]) == {"system_tenant", "balance", "grant_active", "grant_expiry"}
    assert all(c["ok"] for c in data["checks"].values())
    [post] = sink.received
    assert post.path == "/events" and post.headers["content-type"] == "application/cloudevents+json"
    ce = post.json()
    assert ce["specversion"] == "1.0" and ce["id"] == handle.id and ce["type"] == "governance.heartbeat"
    assert ce["data"]["status"] == "ok" and {"id", "source", "type", "time", "data"} <= set(ce)


async def test_a_fresh_database_is_not_funded_yet_without_an_alert(dev_env, config, make_database, task_queue):
    url = make_database()  # the seeded system tenant starts at 0 credits, never funded
    async with fleet_worker(dev_env.client, config, url, task_queue) as (_, notes):
        result = await beat(dev_env.client, task_queue)
    assert result.status == "ok" and result.alerts == [] and notes.sent == []
    [(_, _, _, status, data)] = events(url)
    assert status == "ok" and data["balance"] == "0"
    assert data["checks"]["balance"]["ok"] is False
    assert data["checks"]["balance"]["detail"].startswith("not funded yet: balance 0")


async def test_low_balance_alerts_once_then_recovers(dev_env, config, make_database, task_queue):
    url = make_database()
    fund_system_tenant(url, 400_000)  # funded, below the threshold
    async with fleet_worker(dev_env.client, config, url, task_queue) as (_, notes):
        first = await beat(dev_env.client, task_queue)
        assert first.status == "degraded" and first.alerts == [KIND_LOW_BALANCE]
        assert notes.kinds() == [KIND_LOW_BALANCE]
        assert "balance 400000 is below the threshold 1000000" in notes.sent[0].body
        if recording():
            await save_golden(dev_env.client.get_workflow_handle(first.event_id), "heartbeat_low_balance")
        # Held breach: no second notice.
        second = await beat(dev_env.client, task_queue)
        assert second.status == "degraded" and second.notified == []
        assert notes.kinds() == [KIND_LOW_BALANCE]
        # Funded: ok again, and a recovery notice.
        fund_system_tenant(url, 2_000_000)
        third = await beat(dev_env.client, task_queue)
        assert third.status == "ok" and third.notified == [KIND_RECOVERY]
        assert notes.kinds() == [KIND_LOW_BALANCE, KIND_RECOVERY]
    assert [e[3] for e in events(url)] == ["degraded", "degraded", "ok"]


async def test_expiring_grant_is_raised(dev_env, config, make_database, task_queue):
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE execution_grants SET expires_at = now() + interval '2 hours'")
    async with fleet_worker(dev_env.client, config, url, task_queue) as (_, notes):
        result = await beat(dev_env.client, task_queue, grant_auto_renew=False)  # nothing renews it
    assert result.status == "degraded" and result.alerts == [KIND_GRANT_EXPIRING]
    assert notes.kinds() == [KIND_GRANT_EXPIRING, KIND_GRANT_RENEWAL_OFF] and not notes.sent[0].urgent
    assert notes.sent[0].idempotency_key == f"{result.event_id}:{KIND_GRANT_EXPIRING}"
    [(_, _, _, status, data)] = events(url)
    assert status == "degraded" and data["checks"]["grant_expiry"]["ok"] is False


def grant_expiry(url: str):
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT expires_at, now() FROM execution_grants WHERE id = 'cogni_system_governance'"
        ).fetchone()


async def test_the_heartbeat_renews_the_grant_before_it_expires(dev_env, config, make_database, task_queue):
    """Before: the grant expired 365 days after `migrate` unless someone ran `govfleet grant renew`."""
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE execution_grants SET expires_at = now() + interval '10 days'")
    async with fleet_worker(dev_env.client, config, url, task_queue) as (_, notes):
        result = await beat(dev_env.client, task_queue)
        expires, now = grant_expiry(url)
        assert timedelta(days=364) < expires - now <= timedelta(days=365), expires - now
        assert result.status == "ok" and "renewed until" in (result.grant_renewal or "")
        assert notes.kinds() == [KIND_GRANT_RENEWED]
        # Outside the window now: the next heartbeat renews nothing and says nothing.
        again = await beat(dev_env.client, task_queue)
    assert again.grant_renewal is None and grant_expiry(url)[0] == expires and notes.kinds() == [KIND_GRANT_RENEWED]


async def test_a_revoked_grant_is_not_renewed_and_the_heartbeat_says_so(dev_env, config, make_database, task_queue):
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE execution_grants SET expires_at = now() + interval '10 days', revoked_at = now()")
    async with fleet_worker(dev_env.client, config, url, task_queue) as (_, notes):
        with pytest.raises(WorkflowFailureError):  # a revoked grant fails the heartbeat (as before)
            await beat(dev_env.client, task_queue)
    expires, now = grant_expiry(url)
    assert expires - now < timedelta(days=11)  # untouched
    assert notes.kinds() == [KIND_FAILED]


async def test_missing_tenant_fails_loudly(dev_env, config, make_database, task_queue):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM execution_grants")
        conn.execute("DELETE FROM billing_accounts WHERE id = 'cogni_system'")
    async with fleet_worker(dev_env.client, config, url, task_queue) as (_, notes):
        with pytest.raises(WorkflowFailureError) as info:
            await beat(dev_env.client, task_queue)
        if recording():
            [(eid, *_)] = events(url)
            await save_golden(dev_env.client.get_workflow_handle(eid), "heartbeat_failed")
    assert "billing account 'cogni_system' does not exist" in str(info.value.cause)
    assert notes.kinds()[0] == KIND_FAILED and notes.sent[0].urgent
    # Recorded before failing: the status surface sees the failure too.
    [(_, _, _, status, data)] = events(url)
    assert status == "failed" and data["checks"]["system_tenant"]["ok"] is False and data["balance"] is None


async def test_the_schedule_starts_heartbeats(dev_env, config, make_database, task_queue):
    """`govfleet reconcile` with the example spec, then trigger the heartbeat schedule: the run's
    workflow id carries the schedule id as prefix and its event lands in the database."""
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    client = dev_env.client
    spec = parse_repo_spec(EXAMPLE_SPEC.read_text())
    ids = [HEARTBEAT_SCHEDULE_ID] + [s.schedule_id for s in spec.governance.schedules]
    try:
        report = await reconcile(client, spec, task_queue=task_queue, notify_status=False)
        assert report.ok, report.render()
        async with fleet_worker(client, config, url, task_queue):
            handle = client.get_schedule_handle(HEARTBEAT_SCHEDULE_ID)
            await handle.trigger()
            for _ in range(100):
                if events(url):
                    break
                await asyncio.sleep(0.1)
        [(eid, _, _, status, _)] = events(url)
        assert eid.startswith(f"{HEARTBEAT_SCHEDULE_ID}-") and status == "ok"
        desc = await handle.describe()
        assert desc.info.recent_actions and desc.info.recent_actions[-1].action.workflow_id == eid
    finally:
        for sid in ids:
            if await describe_or_none(client, sid) is not None:
                await client.get_schedule_handle(sid).delete()


async def test_a_heartbeat_prunes_counted_admin_rejections_past_their_retention(
    dev_env, config, make_database, task_queue
):
    """Before: nothing ever deleted a row of admin_rejections. The heartbeat deletes the minutes
    older than ADMIN_REJECTIONS_RETENTION_DAYS (14 by default) and keeps the rest."""
    url = make_database()
    fund_system_tenant(url, 5_000_000)
    keep_days = config.settings.ADMIN_REJECTIONS_RETENTION_DAYS
    ages = {"old": keep_days + 6, "just past": keep_days, "recent": keep_days - 1, "today": 0}
    with psycopg.connect(url) as conn:
        for source, days in ages.items():
            conn.execute(
                """INSERT INTO admin_rejections (guardian_id, source, window_start, action, code, count, first_at,
                                                 last_at, sample)
                   SELECT 'governance-guardian', %s, w, 'pause', 'foreign', 1, w, w, 's'
                   FROM (SELECT date_trunc('minute', now()) - make_interval(days => %s, mins => 1) AS w) AS t""",
                (source, days),
            )
    async with fleet_worker(dev_env.client, config, url, task_queue):
        result = await beat(dev_env.client, task_queue)
    assert result.recorded
    with psycopg.connect(url) as conn:
        left = {r[0] for r in conn.execute("SELECT source FROM admin_rejections").fetchall()}
    assert left == {"recent", "today"}
