"""The system tenant's policy (`tenant_policies`): the tools its governance runs may use, from
repo-spec `governance.system_tenant.tool_allowlist` (docs/heartbeat.md, "Tool allowlist").
Written by `govfleet migrate`, `govfleet reconcile` and every worker at start; read, as the tenant
sees it, by every governance run as it begins (store/runs.py) and by the status surface."""

from __future__ import annotations

import psycopg

from govfleet.db import SYSTEM_PRINCIPAL_USER_ID, SYSTEM_TENANT_ID, DbConnection, tenant_scope

_UPSERT = """INSERT INTO tenant_policies (billing_account_id, tool_allowlist, source, updated_at)
             VALUES (%s, %s, %s, now())
             ON CONFLICT (billing_account_id) DO UPDATE SET
                 tool_allowlist = excluded.tool_allowlist, source = excluded.source, updated_at = now()
             WHERE tenant_policies.tool_allowlist IS DISTINCT FROM excluded.tool_allowlist"""


def store_tool_allowlist(database_url: str, tools: list[str], source: str, *, connect_timeout: float = 10) -> bool:
    """Store the allowlist (blocking); True when it changed."""
    with psycopg.connect(database_url, connect_timeout=max(1, int(connect_timeout))) as conn:
        cur = conn.execute(_UPSERT, (SYSTEM_TENANT_ID, list(tools), source))
        return cur.rowcount > 0


async def read_tool_policy(conn: DbConnection) -> dict | None:
    """`{tool_allowlist, source, updated_at}` as the system tenant sees it; None when none is stored."""
    async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID):
        cur = await conn.execute(
            "SELECT tool_allowlist, source, updated_at FROM tenant_policies WHERE billing_account_id = %s",
            (SYSTEM_TENANT_ID,),
        )
        row = await cur.fetchone()
    return None if row is None else {**row, "tool_allowlist": list(row["tool_allowlist"])}
