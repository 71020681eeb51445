"""Governance-run charges on real PostgreSQL, more of them at once than the pool has
connections: every one completes (none waits for a connection held by another charge that
waits for the budget lock), and the daily budget is spent exactly, never overspent.

A charge takes one connection for its whole critical section (see docs/schedules.md), so a
pool of three serves any number of concurrent charges, one after another.
"""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from govfleet import db
from govfleet.contracts.governance_run import ChargeRunInput
from govfleet.domain.billing import REASON_GOVERNANCE_RUN, SYSTEM_TENANT_ID
from govfleet.store import ledger, runs
from tests.integration.schedules_support import fund_system_tenant

POOL = 3
CHARGES = 12  # four times the pool
AMOUNT = 1_000_000
AFFORDABLE = 7  # the budget covers this many charges of the day


async def test_more_concurrent_charges_than_pool_connections_complete_within_the_budget(make_database):
    url = make_database()
    fund_system_tenant(url, 100 * AMOUNT)
    pool = await db.create_pool(url, min_size=POOL, max_size=POOL)
    try:
        budget = await ledger.spent_today(pool) + AFFORDABLE * AMOUNT
        tag = uuid.uuid4().hex[:6]
        inputs = [
            ChargeRunInput(
                run_id=f"governance:COMMUNITY-{tag}-{i}",
                schedule_id="governance:COMMUNITY",
                amount=AMOUNT,
                budget_credits_per_day=budget,
            )
            for i in range(CHARGES)
        ]
        # Generous: the stall this guards against lasts until the pool's 30 s timeout and fails.
        results = await asyncio.wait_for(asyncio.gather(*[runs.charge_run(pool, i) for i in inputs]), 120)
        charged = [r for r in results if r.charged]
        refused = [r for r in results if r.refused_reason]
        assert len(charged) == AFFORDABLE and len(refused) == CHARGES - AFFORDABLE
        assert all(r.charged == AMOUNT and not r.replay for r in charged)
        assert all("daily budget exhausted" in (r.refused_reason or "") for r in refused)
        assert await ledger.spent_today(pool) == budget

        # A retried charge (the activity attempted again) replays, even with the budget spent.
        again = await asyncio.gather(*[runs.charge_run(pool, i) for i in inputs])
        assert sum(1 for r in again if r.replay and r.charged == AMOUNT) == AFFORDABLE
        assert await ledger.spent_today(pool) == budget

        with psycopg.connect(url) as conn:
            entries = conn.execute(
                "SELECT reference, amount FROM credit_ledger WHERE billing_account_id = %s AND reason = %s"
                " AND reference LIKE %s",
                (SYSTEM_TENANT_ID, REASON_GOVERNANCE_RUN, f"governance:COMMUNITY-{tag}-%"),
            ).fetchall()
        assert len(entries) == AFFORDABLE and len({r for r, _ in entries}) == AFFORDABLE
        assert all(amount == -AMOUNT for _, amount in entries)
        assert (await ledger.verify(pool)).ok
    finally:
        await pool.close()
