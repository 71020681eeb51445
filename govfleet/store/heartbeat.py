"""The heartbeat's tables: heartbeat_events (one row per CloudEvent, keyed by its id), and the
reads of the system tenant's account and governance grant that the checks need, through
`tenant_scope`, so the heartbeat also proves the tenant-scoped path works (see docs/heartbeat.md).
"""

from __future__ import annotations

import json
from datetime import datetime

from govfleet.db import GOVERNANCE_GRANT_ID, SYSTEM_PRINCIPAL_USER_ID, SYSTEM_TENANT_ID, DbPool, tenant_scope
from govfleet.domain.heartbeat import HeartbeatFacts, PreviousHeartbeat, previous_from_event


async def gather_facts(pool: DbPool) -> HeartbeatFacts:
    """What the heartbeat checks, read as the system principal (tenant scope, row-level security)."""
    async with pool.connection() as conn, tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID):
        cur = await conn.execute(
            "SELECT is_system_tenant, balance_credits FROM billing_accounts WHERE id = %s", (SYSTEM_TENANT_ID,)
        )
        account = await cur.fetchone()
        cur = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM credit_ledger WHERE billing_account_id = %s AND amount > 0) AS funded",
            (SYSTEM_TENANT_ID,),
        )
        funded = await cur.fetchone()
        cur = await conn.execute(
            "SELECT expires_at, revoked_at FROM execution_grants WHERE id = %s", (GOVERNANCE_GRANT_ID,)
        )
        grant = await cur.fetchone()
    return HeartbeatFacts(
        tenant_id=SYSTEM_TENANT_ID,
        tenant_exists=account is not None,
        tenant_flagged=bool(account and account["is_system_tenant"]),
        balance=int(account["balance_credits"]) if account else None,
        funded=bool(funded and funded["funded"]),
        grant_id=GOVERNANCE_GRANT_ID,
        grant_exists=grant is not None,
        grant_expires_at=grant["expires_at"] if grant else None,
        grant_revoked_at=grant["revoked_at"] if grant else None,
    )


async def previous_heartbeat(pool: DbPool, *, before_id: str | None = None) -> PreviousHeartbeat | None:
    """The latest heartbeat event other than `before_id` (this heartbeat's own, on a retry)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT time, status, data FROM heartbeat_events WHERE id IS DISTINCT FROM %s ORDER BY time DESC LIMIT 1",
            (before_id,),
        )
        row = await cur.fetchone()
        await conn.rollback()
    if row is None:
        return None
    return previous_from_event(row["time"], row["status"], row["data"] or {})


async def insert_event(pool: DbPool, ev: dict) -> bool:
    """Store a `governance.heartbeat` CloudEvent once (keyed by its id); False when it was already there."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO heartbeat_events (id, source, type, time, status, data)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (
                ev["id"],
                ev["source"],
                ev["type"],
                datetime.fromisoformat(ev["time"].replace("Z", "+00:00")),
                ev["data"]["status"],
                json.dumps(ev["data"]),
            ),
        )
        inserted = cur.rowcount == 1
        await conn.commit()
    return inserted
