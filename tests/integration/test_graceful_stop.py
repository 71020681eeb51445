"""A worker stopped with SIGTERM (compose's stop, a rolling deploy) in the middle of a payment:
it stops taking work, lets the confirmation it runs finish and commit, exits 0, and the payment
completes — exactly one pair of ledger entries, no retry, no replay. The confirmation is held
open inside its transaction by the ledger's fault-injection hook so the signal lands mid-payment."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest

from activities.ledger import FAULT_ENV
from govfleet.contracts.payment import PAYMENT_WORKFLOW, payment_workflow_id
from govfleet.domain.billing import ConfirmPaymentInput, ConfirmPaymentResult
from tests.integration.fleet_support import temporal_address, wait_for
from tests.integration.production_support import Processes
from tests.operator_spec import operator_spec
from tests.production_sequence import WORKER

pytestmark = pytest.mark.slow

HOLD_SECONDS = 4.0  # the confirmation sleeps this long inside its transaction


def rows(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


async def test_sigterm_during_a_payment_lets_it_finish(dev_env, make_database, task_queue, tmp_path):
    url = make_database()
    pid = "graceful-stop-1"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "GOVFLEET_")) and k not in ("DATABASE_URL", "METRICS_PORT")
    }
    env.update(
        TEMPORAL_ADDRESS=temporal_address(dev_env.client),
        TEMPORAL_TASK_QUEUE=task_queue,
        DATABASE_URL=url,
        LOG_FORMAT="json",
        WORKER_SHUTDOWN_GRACE_SECONDS="20",
        REPO_SPEC_PATH=str(operator_spec()),  # a deployment's admins, not the demo's public keys
    )
    procs = Processes(env=env, logs=tmp_path)
    try:
        first = procs.start(
            "worker-1", *WORKER, "--no-reconcile", extra_env={FAULT_ENV: f"before_commit:{HOLD_SECONDS}"}
        )
        await wait_for(lambda: "worker polling" in first.log_tail(100_000), 90, "the worker polling", *procs.started)
        handle = await dev_env.client.start_workflow(
            PAYMENT_WORKFLOW,
            ConfirmPaymentInput(client_payment_id=pid, user_id="grace", amount_usd_cents=2_500),
            id=payment_workflow_id(pid),
            task_queue=task_queue,
            result_type=ConfirmPaymentResult,
        )
        await wait_for(
            lambda: "fault injection: pausing confirmation" in first.log_tail(100_000),
            30,
            "the payment in flight",
            *procs.started,
        )
        assert rows(url, "SELECT 1 FROM payments WHERE client_payment_id = %s", pid) == []  # not committed yet
        first.proc.terminate()  # SIGTERM, as `docker compose stop` sends it
        code = await asyncio.to_thread(first.proc.wait, 30)
        assert code == 0, first.log_tail()
        assert "worker stopping" in first.log_tail(100_000)
        # It finished the confirmation before leaving: committed, once.
        assert rows(
            url, "SELECT billing_account_id, amount FROM credit_ledger WHERE reference = %s ORDER BY id", pid
        ) == [("acct_grace", 250_000_000), ("cogni_system", 187_500_000)]

        procs.start("worker-2", *WORKER, "--no-reconcile")  # the rest of the workflow needs a worker
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.replay is False and result.user_balance_after == 250_000_000
        assert rows(url, "SELECT count(*) FROM credit_ledger WHERE reference = %s", pid) == [(2,)]
    finally:
        procs.stop_all()
