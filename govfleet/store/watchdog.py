"""The watchdog's reads and writes (docs/watchdog.md): the last successful heartbeat, and the
`watchdog_incidents` table (opened and resolved by idempotency key; read by /health and the
heartbeat endpoint)."""

from __future__ import annotations

from datetime import datetime

from govfleet.db import DbConnection, DbPool
from govfleet.domain.watchdog import IncidentChange

# A heartbeat whose checks ran (ok, or degraded by a low balance / an expiring grant) is a
# sign of life; a failed one is not.
SUCCESSFUL_HEARTBEAT = ("ok", "degraded")


async def last_successful_heartbeat(pool: DbPool, *, timeout: float) -> datetime | None:
    async with pool.connection(timeout=timeout) as conn:
        cur = await conn.execute(
            "SELECT max(time) AS at FROM heartbeat_events WHERE status = ANY(%s)", (list(SUCCESSFUL_HEARTBEAT),)
        )
        row = await cur.fetchone()
    return row["at"] if row else None


async def record_changes(pool: DbPool, changes: list[IncidentChange], *, timeout: float) -> None:
    async with pool.connection(timeout=timeout) as conn, conn.transaction():
        for c in changes:
            i = c.incident
            await conn.execute(
                """INSERT INTO watchdog_incidents (idempotency_key, kind, subject, opened_at, details)
                   VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING""",
                (i.key, i.kind, i.subject, i.opened_at, i.details),
            )
            if c.change == "resolved":
                await conn.execute(
                    """UPDATE watchdog_incidents SET resolved_at = %s, resolution = %s
                       WHERE idempotency_key = %s AND resolved_at IS NULL""",
                    (i.resolved_at, i.resolution, i.key),
                )


async def open_incidents(conn: DbConnection) -> list[dict]:
    cur = await conn.execute(
        """SELECT kind, subject, opened_at, details FROM watchdog_incidents
           WHERE resolved_at IS NULL ORDER BY opened_at DESC LIMIT 100"""
    )
    return list(await cur.fetchall())
