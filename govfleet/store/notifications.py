"""notification_deliveries: which channel already got which notification, keyed by
(idempotency key, channel), so a retried delivery skips the channels that accepted it."""

from __future__ import annotations

from govfleet.db import DbPool
from govfleet.domain.notifications import NotificationRequest


async def delivered_channels(pool: DbPool, key: str, *, timeout: float) -> set[str]:
    async with pool.connection(timeout=timeout) as conn:
        cur = await conn.execute("SELECT channel FROM notification_deliveries WHERE idempotency_key = %s", (key,))
        return {row["channel"] for row in await cur.fetchall()}


async def record_deliveries(
    pool: DbPool, req: NotificationRequest, channels: list[str], attempt: int, *, timeout: float
) -> None:
    async with pool.connection(timeout=timeout) as conn, conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO notification_deliveries (idempotency_key, channel, kind, urgent, attempt) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key, channel) DO NOTHING",
            [(req.idempotency_key, c, req.kind, req.urgent, attempt) for c in channels],
        )
