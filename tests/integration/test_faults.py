"""Fault tests: real `govfleet worker` processes, killed or cut off from what they depend on.

1. kill -9 the worker while the guardian's pause is being retried: a second worker finishes
   it; the pause took effect once per target, one `system_pauses` row, one `pause` event;
2. kill -9 the Temporal dev server and start it again on its SQLite file: the guardian goes
   on with the same history and the worker reconnects by itself;
3. stop PostgreSQL for 30 s: the worker stays up, the guardian keeps checking, no audit row
   is lost, a payment made during the outage lands once, and `database_unavailable` is sent
   to the webhook (then a recovery notice);
4. the tracker serves 500s, garbage and answers too late: no pause, `tracker_unavailable`
   raised and resolved, both notified.

The tracker simulator and the webhook receiver run in this process on loopback; everything
else is a separate process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import httpx
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError

from activities.notify import NotificationActivities
from govfleet.contracts.guardian import CALL_BREAKER_ACTIVITY, CONFIGURE_SIGNAL, GuardianConfigureInput
from govfleet.contracts.notifications import NotificationRequest
from govfleet.contracts.payment import PAYMENT_WORKFLOW, payment_workflow_id
from govfleet.domain.declared import config_hash
from govfleet.payments import ConfirmPaymentInput, ConfirmPaymentResult
from govfleet.settings import load_config
from govfleet.simulator import TrackerSimulator, start_simulator
from govfleet.temporal import connect_when_ready
from tests.integration.fleet_support import (
    WEBHOOK_SECRET,
    WEBHOOK_SECRET_ENV,
    OwnPostgres,
    OwnTemporal,
    Receiver,
    WorkerProcess,
    check_times,
    event_numbers,
    free_port,
    history_identities,
    largest_gap,
    start_guardian,
    start_worker,
    temporal_address,
    wait_for,
    write_spec,
)
from tests.integration.guardian_support import alerts, check_count, pauses, rows
from workers.resources import Resources
from workflows.guardian import GuardianWorkflow


@pytest.fixture
async def sim():
    running = await start_simulator(TrackerSimulator())
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def receiver():
    rec = await Receiver().start()
    try:
        yield rec
    finally:
        await rec.stop()


@pytest.fixture
async def workers():
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        await w.stop()


async def stop_guardian(handle) -> None:
    with contextlib.suppress(RPCError):  # already gone with its server
        await handle.terminate("fault test over")


# --- 1. kill -9 the worker while the pause is being retried ----------------------------


@pytest.mark.slow  # kills a process
async def test_worker_killed_while_pausing_pauses_once(dev_env, database_url, task_queue, sim, workers, tmp_path):
    address = temporal_address(dev_env.client)
    spec = write_spec(tmp_path / "repo-spec.yaml", tracker_url=sim.url, rules={"monitoring_interval_normal": 1})
    sim.sim.set_values([70.0, 48.0], per_request=True)  # then an emergency: pause everything
    sim.sim.fail_next("pause", times=20, status=503)  # the targets refuse the first calls

    first = start_worker(
        address=address, database_url=database_url, task_queue=task_queue, spec_path=spec, log=tmp_path / "worker-1.log"
    )
    workers.append(first)
    await first.wait_polling()
    handle, cfg = await start_guardian(dev_env.client, task_queue, spec)
    try:

        def refused() -> int:
            return sum(1 for c in sim.sim.calls if c.action == "pause" and c.status == 503)

        await wait_for(lambda: refused() >= 3, 30, "the breaker calls to be retried", first)
        await first.kill9()
        refused_before_kill = refused()
        sim.sim.failures.clear()  # the targets are healthy again

        second = start_worker(
            address=address,
            database_url=database_url,
            task_queue=task_queue,
            spec_path=spec,
            log=tmp_path / "worker-2.log",
        )
        workers.append(second)
        await wait_for(lambda: len(sim.sim.pauses()) == 2, 60, "both targets to be paused", second)

        async def settled() -> bool:
            stats = await handle.query(GuardianWorkflow.stats)
            return stats.pending_breaker_calls == 0 and stats.unrecorded_rows == 0

        await wait_for(settled, 30, "the guardian to settle", second)

        # One pause row, one pause event, its key on every call to every target.
        [pause] = pauses(database_url, cfg.guardian_id)
        key = pause["pause_key"]
        assert key.startswith(f"{cfg.guardian_id}:")
        assert [
            (e["event_type"])
            for e in rows(
                database_url,
                "SELECT event_type FROM governance_events WHERE guardian_id = %s AND event_type = 'pause'",
                cfg.guardian_id,
            )
        ] == ["pause"]
        pause_calls = [c for c in sim.sim.calls if c.action == "pause"]
        assert {c.idempotency_key for c in pause_calls} == {key}
        applied = [c for c in pause_calls if c.status == 200 and not c.duplicate]
        assert sorted(c.service for c in applied) == ["redemption-algorithm", "sol-treasury-core"]
        assert refused_before_kill >= 3
        assert len(pause_calls) > len(applied)  # refused (and perhaps duplicate) calls were made too
        # No alert and no crossing was written twice.
        kinds = [a["alert_type"] for a in alerts(database_url, cfg.guardian_id)]
        assert sorted(kinds) == sorted(set(kinds)) and "emergency" in kinds

        # The second worker completed the breaker activity (after retries) and runs the workflow now.
        scheduled: dict[int, str] = {}
        breaker_attempts = []
        async for e in handle.fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                a = e.activity_task_started_event_attributes
                if scheduled[a.scheduled_event_id] == CALL_BREAKER_ACTIVITY:
                    breaker_attempts.append((a.attempt, a.identity))
        assert len(breaker_attempts) == 2 and all(ident == second.identity for _, ident in breaker_attempts)
        assert max(attempt for attempt, _ in breaker_attempts) >= 2
        identities = {ident for _, kind, ident in await history_identities(handle) if kind == "workflow_task"}
        assert {first.identity, second.identity} <= identities
    finally:
        await stop_guardian(handle)


# --- 2. restart the Temporal server on its persistent file ------------------------------


@pytest.mark.slow  # kills a process
async def test_temporal_server_restart_keeps_the_guardian_history(database_url, sim, workers, tmp_path):
    temporal = OwnTemporal(tmp_path / "temporal")
    await asyncio.to_thread(temporal.start)
    try:
        client = await connect_when_ready(temporal.address)
        task_queue = f"tq-{uuid.uuid4().hex[:12]}"
        spec = write_spec(tmp_path / "repo-spec.yaml", tracker_url=sim.url, rules={"monitoring_interval_normal": 1})
        worker = start_worker(
            address=temporal.address,
            database_url=database_url,
            task_queue=task_queue,
            spec_path=spec,
            log=tmp_path / "worker.log",
        )
        workers.append(worker)
        await worker.wait_polling()
        handle, cfg = await start_guardian(client, task_queue, spec)
        run_id = (await handle.describe()).run_id

        async def checks() -> int:
            return (await handle.query(GuardianWorkflow.stats)).checks

        await wait_for(lambda: _at_least(checks, 4), 30, "the first checks", worker)
        before = [(e.event_id, e.event_type) async for e in handle.fetch_history_events()]
        checks_before = await checks()

        await temporal.kill()  # kill -9: no graceful shutdown of the server
        await asyncio.sleep(3)
        assert worker.alive()
        await temporal.restart()

        client = await connect_when_ready(temporal.address)
        handle = client.get_workflow_handle(cfg.guardian_id)
        await wait_for(
            lambda: _at_least(checks, checks_before + 5), 60, "checks after the restart", worker, interval=0.5
        )

        assert worker.alive()  # the same process reconnected by itself
        described = await handle.describe()
        assert described.run_id == run_id
        after = [(e.event_id, e.event_type) async for e in handle.fetch_history_events()]
        assert after[: len(before)] == before and len(after) > len(before)
        assert {ident for _, _, ident in await history_identities(handle)} == {worker.identity}
        # The audit rows of the checks before and after the restart: none skipped, none twice.
        stats = await handle.query(GuardianWorkflow.stats)
        await wait_for(
            lambda: check_count(database_url, cfg.guardian_id) >= checks_before + 5,
            30,
            "the audit rows after the restart",
            worker,
        )
        numbers = event_numbers(database_url, cfg.guardian_id)
        assert numbers == list(range(1, len(numbers) + 1)) and stats.checks >= checks_before + 5
        await stop_guardian(handle)
    finally:
        await asyncio.to_thread(temporal.stop)


async def _at_least(get, n: int) -> bool:
    try:
        return await get() >= n
    except RPCError:  # the server is still coming back
        return False


# --- 3. PostgreSQL down for 30 s ---------------------------------------------------------

OUTAGE_SECONDS = 30


@pytest.mark.slow  # kills a process
async def test_postgres_down_for_30s_loses_nothing_and_alerts(dev_env, task_queue, sim, receiver, workers, tmp_path):
    pg = await asyncio.to_thread(OwnPostgres)
    await pg.start()
    try:
        await _postgres_outage(dev_env, task_queue, sim, receiver, workers, tmp_path, pg)
    finally:
        await asyncio.to_thread(pg.close)


async def _postgres_outage(dev_env, task_queue, sim, receiver, workers, tmp_path, pg: OwnPostgres) -> None:
    url = await asyncio.to_thread(pg.make_database)
    address = temporal_address(dev_env.client)
    spec = write_spec(
        tmp_path / "repo-spec.yaml",
        tracker_url=sim.url,
        webhook_url=receiver.url,
        rules={"monitoring_interval_normal": 1},
    )
    worker = start_worker(
        address=address, database_url=url, task_queue=task_queue, spec_path=spec, log=tmp_path / "worker.log"
    )
    workers.append(worker)
    await worker.wait_polling()
    handle, cfg = await start_guardian(dev_env.client, task_queue, spec)
    gid = cfg.guardian_id

    async def stats():
        return await handle.query(GuardianWorkflow.stats)

    await wait_for(lambda: check_count(url, gid) >= 3, 30, "the first audit rows", worker)
    checks_before = (await stats()).checks
    down_at = time.monotonic()
    await pg.stop()

    # A payment confirmed while the database is down.
    pid = f"fault-{uuid.uuid4().hex[:8]}"
    payment = await dev_env.client.start_workflow(
        PAYMENT_WORKFLOW,
        ConfirmPaymentInput(client_payment_id=pid, user_id="olga", amount_usd_cents=2_500),
        id=payment_workflow_id(pid),
        task_queue=task_queue,
        result_type=ConfirmPaymentResult,
    )

    await wait_for(lambda: "database_unavailable" in receiver.kinds(), OUTAGE_SECONDS, "database_unavailable", worker)
    alerted_after = time.monotonic() - down_at
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    during = await stats()
    assert worker.alive()
    assert during.audit_failures >= 2 and during.unrecorded_rows > 0
    await pg.start()
    up_at = time.monotonic()

    result = await asyncio.wait_for(payment.result(), 60)
    await wait_for(lambda: "database_recovered" in receiver.kinds(), 60, "the recovery notice", worker)
    recovered_after = time.monotonic() - up_at
    assert recovered_after < 20  # the pool reconnects within seconds (no long reconnect backoff)

    # A slow interval makes the guardian write what it holds and go quiet; then compare.
    slow = cfg.rules.model_copy(update={"monitoring_interval_normal": 60})
    quiet = cfg.model_copy(update={"rules": slow})
    await handle.signal(CONFIGURE_SIGNAL, GuardianConfigureInput(config=quiet, config_hash=config_hash(quiet)))

    await wait_for(lambda: _flushed(handle), 30, "the kept rows to be written", worker)
    final = await stats()
    assert worker.alive()

    # Every check the guardian made, before, during and after the outage, is in the table once.
    assert check_count(url, gid) == final.checks
    numbers = event_numbers(url, gid)
    assert numbers == list(range(1, len(numbers) + 1))  # no event key skipped, none twice
    assert during.checks - checks_before >= OUTAGE_SECONDS // 4  # it kept checking while the database was down
    times = check_times(url, gid)
    outage_gap = largest_gap(times)
    [event] = rows(
        url,
        "SELECT action, details FROM governance_events WHERE guardian_id = %s AND event_type = 'audit_unavailable'",
        gid,
    )
    assert event["action"] == "recovered"

    # The payment landed once, with its bonus.
    assert result.replay is False
    assert rows(url, "SELECT billing_account_id, amount FROM credit_ledger WHERE reference = %s ORDER BY id", pid) == [
        {"billing_account_id": "acct_olga", "amount": 250_000_000},
        {"billing_account_id": "cogni_system", "amount": 187_500_000},
    ]

    # Notifications: signed, the alert urgent, each kind once.
    unique = receiver.unique()
    assert [d.body["kind"] for d in unique] == ["database_unavailable", "database_recovered"]
    assert unique[0].body["urgent"] is True and all(d.signed for d in receiver.deliveries)
    print(
        f"\npostgres outage {OUTAGE_SECONDS}s: {during.checks - checks_before} checks during it, "
        f"largest gap between checks {outage_gap:.1f}s, alert after {alerted_after:.1f}s, "
        f"rows written {recovered_after:.1f}s after restart"
    )
    await stop_guardian(handle)


async def _flushed(handle) -> bool:
    s = await handle.query(GuardianWorkflow.stats)
    cfg = await handle.query(GuardianWorkflow.config_query)
    return s.unrecorded_rows == 0 and s.audit_failures == 0 and cfg.rules.monitoring_interval_normal == 60


async def test_a_notification_goes_out_while_its_delivery_records_are_unreachable(receiver, tmp_path):
    """send_notification delivers even when notification_deliveries cannot be read or written
    (nothing listens on the database port): at least once, never not at all."""
    spec = write_spec(tmp_path / "repo-spec.yaml", tracker_url="http://127.0.0.1:9", webhook_url=receiver.url)
    config = load_config(environ={}, repo_spec_path=spec)
    dead_url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=1"
    pool = AsyncConnectionPool(dead_url, min_size=1, open=False, kwargs={"row_factory": dict_row})
    await pool.open(wait=False)
    resources = Resources(config=config, database_url=dead_url, pool=pool, http=httpx.AsyncClient(), client=None)
    try:
        acts = NotificationActivities(resources, environ={WEBHOOK_SECRET_ENV: WEBHOOK_SECRET})
        req = NotificationRequest(
            idempotency_key="g:c:n1",
            kind="database_unavailable",
            urgent=True,
            title="Governance audit log unavailable",
            body="PostgreSQL is down",
        )
        started = time.monotonic()
        result = await acts.deliver(req)
        assert result.delivered == ["webhook"] and result.failed == []
        assert time.monotonic() - started < 10  # bounded waits for the unreachable table
        [delivery] = receiver.deliveries
        assert delivery.signed and delivery.key == "g:c:n1" and delivery.body["kind"] == "database_unavailable"
    finally:
        await resources.close()


# --- 4. the tracker misbehaves -----------------------------------------------------------


async def test_tracker_garbage_errors_and_timeouts_raise_and_resolve_tracker_unavailable(
    dev_env, database_url, task_queue, sim, receiver, workers, tmp_path
):
    address = temporal_address(dev_env.client)
    spec = write_spec(
        tmp_path / "repo-spec.yaml",
        tracker_url=sim.url,
        webhook_url=receiver.url,
        rules={"monitoring_interval_normal": 1},
        tracker={"timeout_seconds": 0.5, "failures_before_alert": 3},
    )
    sim.sim.slow_seconds = 2.0
    bad = ["http_500", "not_json", "timeout", "out_of_range", "timeout", "votes_mismatch", "http_500"]
    sim.sim.set_values([70.0, 70.0, *bad, 70.0], per_request=True)
    worker = start_worker(
        address=address, database_url=database_url, task_queue=task_queue, spec_path=spec, log=tmp_path / "worker.log"
    )
    workers.append(worker)
    await worker.wait_polling()
    handle, cfg = await start_guardian(dev_env.client, task_queue, spec)
    gid = cfg.guardian_id
    try:

        def resolved() -> bool:
            return any(a["alert_type"] == "tracker_unavailable" and a["resolved"] for a in alerts(database_url, gid))

        await wait_for(resolved, 60, "tracker_unavailable to be raised and resolved", worker)
        await wait_for(lambda: "recovery" in receiver.kinds(), 30, "the recovery notice", worker)

        assert sim.sim.pauses() == [] and pauses(database_url, gid) == []
        [alert] = alerts(database_url, gid)
        assert alert["alert_type"] == "tracker_unavailable" and alert["resolved"]
        errors = [
            r["details"]
            for r in rows(
                database_url,
                "SELECT details FROM governance_events WHERE "
                "guardian_id = %s AND event_type = 'tracker_error' ORDER BY id",
                gid,
            )
        ]
        assert [d.split(":")[1].strip() for d in errors] == [
            "http_error",
            "not_json",
            "unreachable",
            "out_of_range",
            "unreachable",
            "votes_mismatch",
            "http_error",
        ]
        assert "timed out" in errors[2]
        levels = {
            r["threshold_level"]
            for r in rows(database_url, "SELECT threshold_level FROM governance_events WHERE guardian_id = %s", gid)
        }
        assert levels == {"excellent"}  # invalid readings never moved the level
        status = await handle.query(GuardianWorkflow.status)
        assert (status.governance_level, status.system_status, status.alerts_active) == ("excellent", "operational", 0)
        assert receiver.kinds() == ["tracker_unavailable", "recovery"]
        assert all(d.signed for d in receiver.deliveries)
        assert check_count(database_url, gid) >= 2
    finally:
        await stop_guardian(handle)
