"""The governance execution grant (`execution_grants`, id `cogni_system_governance`): read and
renewed by `govfleet grant` (docs/heartbeat.md, "The governance grant"). Operational access,
outside the tenant scope: only an operator with the database URL runs it."""

from __future__ import annotations

from datetime import datetime

from govfleet.db import GOVERNANCE_GRANT_ID, DbPool


async def read_grant(pool: DbPool, grant_id: str = GOVERNANCE_GRANT_ID) -> dict | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT id, user_id, billing_account_id, scopes, created_at, expires_at, revoked_at, now() AS now
               FROM execution_grants WHERE id = %s""",
            (grant_id,),
        )
        return await cur.fetchone()


async def extend_grant(pool: DbPool, until: datetime, grant_id: str = GOVERNANCE_GRANT_ID) -> dict | None:
    """Move the expiry to `until` unless it is already later (or never expires) or the grant is
    revoked; returns the row as it is afterwards (None when there is no such grant)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            """UPDATE execution_grants SET expires_at = %s
               WHERE id = %s AND revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at < %s""",
            (until, grant_id, until),
        )
        cur = await conn.execute(
            "SELECT id, scopes, created_at, expires_at, revoked_at, now() AS now FROM execution_grants WHERE id = %s",
            (grant_id,),
        )
        return await cur.fetchone()
