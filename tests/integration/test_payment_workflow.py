"""The durable payment path on the Temporal dev server with the fleet's worker and real
PostgreSQL: `payment-<id>` workflows confirm, replay, refuse conflicts, survive 50 racing
confirmations, answer a retry of the committed payload with the committed result while a
conflicting request is in flight, never fail for a status problem, and leave exactly one pair of
entries when the worker is killed (kill -9) in the middle of a confirmation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.ledger import FAULT_ENV, LedgerActivities
from govfleet.contracts.payment import PAYMENT_WORKFLOW, payment_workflow_id
from govfleet.contracts.status import NOTIFY_STATUS_ACTIVITY, StatusUpdate
from govfleet.payments import (
    ConfirmPaymentInput,
    ConfirmPaymentResult,
    InvalidPayment,
    PaymentConflict,
    confirm_via_workflow,
)
from govfleet.store import ledger
from tests.golden.record import recording, save_golden
from tests.operator_spec import operator_spec
from workers.factory import build_worker
from workers.resources import Resources
from workflows.payment import PaymentWorkflow

REPO_ROOT = Path(__file__).resolve().parents[2]


def pay(pid: str, user: str, cents: int) -> ConfirmPaymentInput:
    return ConfirmPaymentInput(client_payment_id=pid, user_id=user, amount_usd_cents=cents)


def rows(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def entries(url: str, pid: str) -> list[tuple]:
    return rows(
        url, "SELECT billing_account_id, reason, amount FROM credit_ledger WHERE reference = %s ORDER BY id", pid
    )


async def assert_invariant(resources: Resources) -> None:
    report = await ledger.verify(resources.pool)
    assert report.ok, report


@asynccontextmanager
async def fleet(client: Client, config, url: str, task_queue: str) -> AsyncIterator[Resources]:
    """The fleet's own worker (registry + factory) on a fresh task queue."""
    resources = await Resources.open(config, url, client, pool_size=10)
    try:
        async with build_worker(client, resources, task_queue=task_queue):
            yield resources
    finally:
        await resources.close()


async def activity_types(client: Client, workflow_id: str) -> list[str]:
    """Activities the latest run executed: scheduled ones, then local ones (recorded as markers)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    local = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            data = e.marker_recorded_event_attributes.details.get("data")
            if data and data.payloads:
                local.append(json.loads(data.payloads[0].data)["activity_type"])
    return scheduled + local


async def test_a_hundred_dollars_through_the_workflow_then_replay_then_conflict(
    dev_env, config, make_database, task_queue
):
    url = make_database()
    client = dev_env.client
    async with fleet(client, config, url, task_queue) as resources:
        handle = await client.start_workflow(
            PAYMENT_WORKFLOW, pay("wf-100", "alice", 10_000), id=payment_workflow_id("wf-100"), task_queue=task_queue
        )
        await handle.result()
        if recording():
            await save_golden(handle, "payment")
        result = await confirm_via_workflow(client, task_queue, pay("wf-100", "alice", 10_000))
        assert result.replay is True  # a new run after the first finished: the first result, nothing written
        assert (result.user_credits, result.bonus_credits) == (1_000_000_000, 750_000_000)
        assert (result.user_balance_after, result.system_balance_after) == (1_000_000_000, 750_000_000)
        assert await activity_types(client, "payment-wf-100") == ["confirm_payment"]  # replay: status not told

        first = await confirm_via_workflow(
            client, task_queue, {"client_payment_id": "wf-new", "user_id": "bob", "amount_usd_cents": 250}
        )
        assert first.replay is False and first.system_balance_after == 750_000_000 + 18_750_000
        assert await activity_types(client, "payment-wf-new") == ["confirm_payment", NOTIFY_STATUS_ACTIVITY]

        with pytest.raises(PaymentConflict, match="'wf-100' was already confirmed with a different payload") as info:
            await confirm_via_workflow(client, task_queue, pay("wf-100", "alice", 10_001))
        assert info.value.client_payment_id == "wf-100" and "alice" not in str(info.value)
        if recording():
            await save_golden(client.get_workflow_handle("payment-wf-100"), "payment_conflict")
        with pytest.raises(PaymentConflict) as info:
            await confirm_via_workflow(client, task_queue, pay("wf-100", "mallory", 10_000))
        assert "alice" not in str(info.value) and "10000" not in str(info.value)

        assert entries(url, "wf-100") == [
            ("acct_alice", "widget_payment", 1_000_000_000),
            ("cogni_system", "platform_revenue_share", 750_000_000),
        ]
        assert rows(url, "SELECT id FROM users WHERE id = 'mallory'") == []
        await assert_invariant(resources)


async def test_a_conflict_is_one_log_line_without_a_traceback(dev_env, config, make_database, task_queue, capfd):
    # The fleet's log (docs/cli.md, "Errors"): a refused payment is an answer, not a failure.
    from govfleet.logging import configure_logging

    url = make_database()
    configure_logging("json", "INFO")
    try:
        async with fleet(dev_env.client, config, url, task_queue):
            await confirm_via_workflow(dev_env.client, task_queue, pay("wf-log", "alice", 100))
            capfd.readouterr()  # only what the conflict logs
            # Twice: once against the finished run, once racing a run in flight.
            with pytest.raises(PaymentConflict):
                await confirm_via_workflow(dev_env.client, task_queue, pay("wf-log", "alice", 101))
            racing = [confirm_via_workflow(dev_env.client, task_queue, pay("wf-race", "bob", n)) for n in (100, 102)]
            results = await asyncio.gather(*racing, return_exceptions=True)
            assert sum(isinstance(r, PaymentConflict) for r in results) == 1, results
            await asyncio.sleep(0.5)  # anything the SDK would log about the failed runs
    finally:
        configure_logging("console", "INFO")
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    refused = [r for r in lines if r["event"] == "payment refused"]
    assert len(refused) == 2 and all(r["level"] == "info" for r in refused), lines
    assert not [r for r in lines if r["level"] in ("warning", "error", "critical")], lines


async def test_bad_input_is_refused_before_any_workflow_starts(dev_env, task_queue):
    with pytest.raises(InvalidPayment, match="client_payment_id"):
        await confirm_via_workflow(
            dev_env.client, task_queue, {"client_payment_id": "", "user_id": "u", "amount_usd_cents": 100}
        )
    with pytest.raises(InvalidPayment, match="amount_usd_cents"):
        await confirm_via_workflow(
            dev_env.client, task_queue, {"client_payment_id": "wf-bad", "user_id": "u", "amount_usd_cents": -1}
        )
    with pytest.raises(RPCError):
        await dev_env.client.get_workflow_handle("payment-wf-bad").describe()


async def test_fifty_concurrent_confirmations_through_workflows_write_one_pair(
    dev_env, config, make_database, task_queue
):
    url = make_database()
    client = dev_env.client
    async with fleet(client, config, url, task_queue) as resources:
        same = [confirm_via_workflow(client, task_queue, pay("wf-race", "dave", 1_234)) for _ in range(50)]
        other = [confirm_via_workflow(client, task_queue, pay("wf-race", "dave", 999)) for _ in range(5)]
        results = await asyncio.gather(*same, *other, return_exceptions=True)
        good = [r for r in results if not isinstance(r, BaseException)]
        conflicts = [r for r in results if isinstance(r, PaymentConflict)]
        assert len(good) + len(conflicts) == 55, [
            r for r in results if isinstance(r, BaseException) and not isinstance(r, PaymentConflict)
        ]
        # Whichever payload reached the database first won; every other caller got a conflict.
        winner = good[0].amount_usd_cents
        assert {r.amount_usd_cents for r in good} == {winner}
        assert len(good) == (50 if winner == 1_234 else 5)
        assert len({r.model_dump_json(exclude={"replay"}) for r in good}) == 1
        credits = winner * 100_000
        assert entries(url, "wf-race") == [
            ("acct_dave", "widget_payment", credits),
            ("cogni_system", "platform_revenue_share", credits * 3 // 4),
        ]
        await assert_invariant(resources)


async def test_a_retry_of_the_committed_payload_never_gets_a_conflict(dev_env, config, make_database, task_queue):
    """Each round sends a conflicting payload and, right behind it, a retry of the committed one:
    the retry finds the conflicting run in flight and still gets the committed result."""
    url = make_database()
    client = dev_env.client
    async with fleet(client, config, url, task_queue) as resources:
        committed = await confirm_via_workflow(client, task_queue, pay("wf-retry", "alice", 10_000))
        for _ in range(20):
            other = asyncio.create_task(confirm_via_workflow(client, task_queue, pay("wf-retry", "mallory", 1)))
            retry = asyncio.create_task(confirm_via_workflow(client, task_queue, pay("wf-retry", "alice", 10_000)))
            conflict, result = await asyncio.gather(other, retry, return_exceptions=True)
            assert isinstance(conflict, PaymentConflict), conflict
            assert isinstance(result, ConfirmPaymentResult), result
            assert result.model_dump(exclude={"replay"}) == committed.model_dump(exclude={"replay"})
        assert entries(url, "wf-retry") == [
            ("acct_alice", "widget_payment", 1_000_000_000),
            ("cogni_system", "platform_revenue_share", 750_000_000),
        ]
        await assert_invariant(resources)


async def test_a_status_failure_never_fails_a_payment(dev_env, config, make_database, task_queue):
    url = make_database()

    @activity.defn(name=NOTIFY_STATUS_ACTIVITY)
    async def status_is_down(update: StatusUpdate) -> None:
        raise ApplicationError("status workflow unreachable", non_retryable=True)

    resources = await Resources.open(config, url, dev_env.client, pool_size=2)
    try:
        async with Worker(
            dev_env.client,
            task_queue=task_queue,
            workflows=[PaymentWorkflow],
            activities=[LedgerActivities(resources, fault="").confirm_payment, status_is_down],
        ):
            result = await confirm_via_workflow(dev_env.client, task_queue, pay("wf-status-down", "erin", 100))
        assert result.replay is False and result.bonus_credits == 7_500_000
        assert await activity_types(dev_env.client, "payment-wf-status-down") == [
            "confirm_payment",
            NOTIFY_STATUS_ACTIVITY,
        ]
        await assert_invariant(resources)
    finally:
        await resources.close()


def start_worker(address: str, url: str, task_queue: str, fault: str | None, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("METRICS_PORT", FAULT_ENV)}
    env.update(
        TEMPORAL_ADDRESS=address,
        DATABASE_URL=url,
        TEMPORAL_TASK_QUEUE=task_queue,
        LOG_FORMAT="json",
        REPO_SPEC_PATH=str(operator_spec()),
        LOG_LEVEL="WARNING",
    )
    if fault:
        env[FAULT_ENV] = fault
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "govfleet.cli", "worker", "--no-reconcile"],  # no guardian of the example spec
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_until(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
async def test_worker_killed_mid_confirmation_leaves_exactly_one_pair(
    dev_env, make_database, task_queue, point, tmp_path
):
    url = make_database()
    address = dev_env.client.service_client.config.target_host
    pid = f"wf-kill-{point}"
    log = tmp_path / "workers.log"
    first = start_worker(address, url, task_queue, fault=f"{point}:60", log=log)
    second = None
    try:
        handle = await dev_env.client.start_workflow(
            PAYMENT_WORKFLOW,
            pay(pid, "frank", 10_000),
            id=payment_workflow_id(pid),
            task_queue=task_queue,
            result_type=ConfirmPaymentResult,
        )
        if point == "before_commit":
            # Both writes done, transaction open, COMMIT not sent.
            def in_flight() -> bool:
                return bool(
                    rows(
                        url,
                        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state = 'idle in transaction' AND query LIKE '%%WITH pre AS%%'",
                    )
                )
        else:
            # Committed; the activity has not reported completion.
            def in_flight() -> bool:
                return bool(rows(url, "SELECT 1 FROM payments WHERE client_payment_id = %s", pid))

        await wait_until(in_flight, 30, f"the confirmation to reach {point}", log)
        first.send_signal(signal.SIGKILL)
        first.wait(10)

        expected = (
            []
            if point == "before_commit"
            else [
                ("acct_frank", "widget_payment", 1_000_000_000),
                ("cogni_system", "platform_revenue_share", 750_000_000),
            ]
        )
        assert entries(url, pid) == expected  # the killed transaction rolled back / the commit stands

        second = start_worker(address, url, task_queue, fault=None, log=log)
        result = await asyncio.wait_for(handle.result(), 45)
        # The retry either did the work or found its own run's commit: not a replay either way.
        assert result.replay is False and result.user_balance_after == 1_000_000_000
        assert entries(url, pid) == [
            ("acct_frank", "widget_payment", 1_000_000_000),
            ("cogni_system", "platform_revenue_share", 750_000_000),
        ]
        assert rows(url, "SELECT count(*) FROM payments") == [(1,)]
        history = await handle.fetch_history()
        # The killed worker's workflow task (running the confirmation) timed out; another worker
        # ran the confirmation again.
        assert any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT for e in history.events)
        assert await activity_types(dev_env.client, payment_workflow_id(pid)) == [
            "confirm_payment",
            NOTIFY_STATUS_ACTIVITY,
        ]
        with psycopg.connect(url) as conn:
            report = conn.execute(
                "SELECT a.id FROM billing_accounts a LEFT JOIN credit_ledger e ON e.billing_account_id = a.id"
                " GROUP BY a.id, a.balance_credits HAVING a.balance_credits <> COALESCE(SUM(e.amount), 0)"
            ).fetchall()
        assert report == []
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def govfleet(args: list[str], **env_over: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update(REPO_SPEC_PATH=str(operator_spec()), **env_over)
    return subprocess.run(
        [sys.executable, "-m", "govfleet.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_invalid_revenue_share_stops_the_worker_at_start_up():
    bad = govfleet(
        ["worker"],
        SYSTEM_TENANT_REVENUE_SHARE="1.5",
        DATABASE_URL="postgresql://unused/x",
        TEMPORAL_ADDRESS="127.0.0.1:1",
    )
    assert bad.returncode == 2
    assert "SYSTEM_TENANT_REVENUE_SHARE" in bad.stderr and "between 0 and 1" in bad.stderr
