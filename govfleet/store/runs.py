"""Governance runs: the governance_runs rows, the governance execution grant they run under,
and their charge to the system tenant within the daily budget (see docs/schedules.md).

Idempotency: the run id is the primary key of `governance_runs` and the ledger reference of its
charge, so a retried call neither inserts a second row nor charges twice. The budget check and
the charge are one critical section across every worker process (a transaction-scoped advisory
lock), so two runs can never both spend the last of a day's budget.
"""

from __future__ import annotations

from datetime import datetime

from govfleet.contracts.governance_run import (
    REFUSED_NOT_FUNDED,
    REFUSED_OVER_BUDGET,
    BeginRunInput,
    BeginRunResult,
    ChargeRunInput,
    ChargeRunResult,
)
from govfleet.db import (
    GOVERNANCE_GRANT_ID,
    SYSTEM_PRINCIPAL_USER_ID,
    SYSTEM_TENANT_ID,
    DbConnection,
    DbPool,
    tenant_scope,
)
from govfleet.domain.billing import REASON_GOVERNANCE_RUN, InsufficientCredits
from govfleet.domain.governance_run import GrantFacts, budget_refusal, grant_refusal
from govfleet.domain.timestamps import as_utc
from govfleet.store import ledger

# Serialises "budget check + charge" across every worker process (pg advisory lock key).
BUDGET_LOCK_KEY = 0x6F76_7275_6E00  # "govrun"


async def read_grant(conn: DbConnection) -> GrantFacts:
    cur = await conn.execute(
        "SELECT billing_account_id, scopes, expires_at, revoked_at FROM execution_grants WHERE id = %s",
        (GOVERNANCE_GRANT_ID,),
    )
    row = await cur.fetchone()
    if row is None:
        return GrantFacts(grant_id=GOVERNANCE_GRANT_ID, exists=False)
    return GrantFacts(
        grant_id=GOVERNANCE_GRANT_ID,
        exists=True,
        billing_account_id=row["billing_account_id"],
        scopes=list(row["scopes"] or []),
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


async def begin_run(pool: DbPool, inp: BeginRunInput) -> BeginRunResult:
    """Record the run (once) and validate the governance grant for its entrypoint; a refused run
    is recorded as `refused` with the reason. A run begun again keeps its recorded outcome."""
    async with pool.connection() as conn:
        async with conn.transaction():
            cur = await conn.execute(
                "INSERT INTO governance_runs (id, owner_user_id, title, schedule_id, charter, entrypoint, scheduled_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (
                    inp.run_id,
                    SYSTEM_PRINCIPAL_USER_ID,
                    inp.title,
                    inp.schedule_id,
                    inp.charter,
                    inp.entrypoint,
                    inp.scheduled_at,
                ),
            )
            cur = await conn.execute(
                "SELECT status, reason, started_at, updated_at, now() AS now"
                " FROM governance_runs WHERE id = %s FOR UPDATE",
                (inp.run_id,),
            )
            row = await cur.fetchone()
            if row is None:  # inserted or already there, in this transaction; no code deletes runs
                raise RuntimeError(f"governance run {inp.run_id!r} is missing right after it was recorded")
            if row["status"] != "running":  # a retry after the run was refused or finished
                return BeginRunResult(
                    started_at=row["started_at"],
                    last_activity=row["updated_at"],
                    status=row["status"],
                    reason=row["reason"],
                )
        # The grant and the tool policy are read the way the tenant sees them (RLS, application role).
        async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID):
            grant = await read_grant(conn)
            cur = await conn.execute(
                "SELECT tool_allowlist FROM tenant_policies WHERE billing_account_id = %s", (SYSTEM_TENANT_ID,)
            )
            policy = await cur.fetchone()
        refusal = grant_refusal(grant, inp.entrypoint, as_utc(row["now"]), tenant_id=SYSTEM_TENANT_ID)
        if refusal is None:
            return BeginRunResult(
                started_at=row["started_at"],
                last_activity=row["updated_at"],
                status="running",
                tool_allowlist=list(policy["tool_allowlist"]) if policy else [],  # no policy: no tools
            )
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE governance_runs SET status = 'refused', reason = %s, updated_at = now()"
                " WHERE id = %s AND status = 'running' RETURNING updated_at",
                (refusal, inp.run_id),
            )
            done = await cur.fetchone()
    return BeginRunResult(
        started_at=row["started_at"],
        last_activity=done["updated_at"] if done else row["updated_at"],
        status="refused",
        reason=refusal,
    )


async def charge_run(pool: DbPool, inp: ChargeRunInput) -> ChargeRunResult:
    """Charge the run at 1x within the daily budget, once (ledger reference = run id). Over
    budget or over balance is a refusal in the result; a bad amount (ValueError) or the same run
    charged another amount (ChargeConflict) raises.

    One connection and one transaction for the whole critical section: a charge that waited for
    the lock while holding one pooled connection and then asked for a second would starve the
    pool as soon as the pool's size in charges arrive at once."""
    if inp.amount == 0:
        return ChargeRunResult(charged=0)
    async with pool.connection() as conn, conn.transaction():
        # Budget check and charge as one critical section across all workers.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (BUDGET_LOCK_KEY,))
        cur = await conn.execute(
            "SELECT 1 FROM credit_ledger WHERE billing_account_id = %s AND reason = %s AND reference = %s",
            (SYSTEM_TENANT_ID, REASON_GOVERNANCE_RUN, inp.run_id),
        )
        already = await cur.fetchone() is not None
        if not already:
            refusal = budget_refusal(await ledger.spent_today_on(conn), inp.amount, inp.budget_credits_per_day)
            if refusal:
                return ChargeRunResult(refused_reason=refusal, refused_code=REFUSED_OVER_BUDGET)
        try:
            charged = await ledger.charge_system_tenant_on(
                conn,
                amount=inp.amount,
                reference=inp.run_id,
                reason=REASON_GOVERNANCE_RUN,
                metadata={"schedule_id": inp.schedule_id},
            )
        except InsufficientCredits as exc:
            return ChargeRunResult(refused_reason=str(exc), refused_code=REFUSED_NOT_FUNDED)
        await conn.execute(
            "UPDATE governance_runs SET credits_charged = %s, updated_at = now() WHERE id = %s",
            (charged.charged, inp.run_id),
        )
    return ChargeRunResult(charged=charged.charged, balance_after=charged.balance_after, replay=charged.replay)


async def finish_run(pool: DbPool, run_id: str, status: str, reason: str | None, brief: str | None) -> datetime | None:
    """Record the run's outcome; its new `updated_at`, or None when the run was never recorded."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE governance_runs SET status = %s, reason = %s, brief = COALESCE(%s, brief), updated_at = now()"
            " WHERE id = %s RETURNING updated_at",
            (status, reason, brief, run_id),
        )
        row = await cur.fetchone()
    return None if row is None else row["updated_at"]
