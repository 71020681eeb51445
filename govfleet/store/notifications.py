"""notification_deliveries: which channel already got which notification, keyed by
(idempotency key, channel), so a retried delivery skips the channels that accepted it."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from govfleet.db import DbConnection, DbPool
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


# --- never silent: channel state and pending urgent notices (docs/notifications.md, "Never silent") ---

# A pending notice is re-sent by the heartbeat, at most this often: 1 min doubling to 6 h.
RESEND_FIRST_SECONDS = 60
RESEND_MAX_SECONDS = 6 * 3600
ERROR_LIMIT = 500  # characters of a channel's error kept


async def record_channel_outcomes(
    pool: DbPool, scope: str, delivered: list[str], failed: dict[str, str], *, timeout: float
) -> None:
    """How each channel fared in this attempt: a delivery clears its failures, a failure counts
    one more and keeps its reason (never a secret: channel errors name hosts, not URLs' paths)."""
    rows = [(scope, c, True, None) for c in delivered] + [(scope, c, False, e[:ERROR_LIMIT]) for c, e in failed.items()]
    if not rows:
        return
    async with pool.connection(timeout=timeout) as conn, conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO notification_channel_state AS s
                   (scope, channel, last_attempt_at, last_delivered_at, last_failed_at, last_error,
                    consecutive_failures)
               VALUES (%(scope)s, %(channel)s, now(),
                       CASE WHEN %(ok)s THEN now() END, CASE WHEN %(ok)s THEN NULL ELSE now() END,
                       %(error)s, CASE WHEN %(ok)s THEN 0 ELSE 1 END)
               ON CONFLICT (scope, channel) DO UPDATE SET
                   last_attempt_at = now(),
                   last_delivered_at = CASE WHEN %(ok)s THEN now() ELSE s.last_delivered_at END,
                   last_failed_at = CASE WHEN %(ok)s THEN s.last_failed_at ELSE now() END,
                   last_error = CASE WHEN %(ok)s THEN s.last_error ELSE %(error)s END,
                   consecutive_failures = CASE WHEN %(ok)s THEN 0 ELSE s.consecutive_failures + 1 END""",
            [{"scope": s, "channel": c, "ok": ok, "error": e} for s, c, ok, e in rows],
        )


async def keep_pending(pool: DbPool, req: NotificationRequest, scope: str, error: str, *, timeout: float) -> None:
    """An urgent notice no channel took: kept (or its last error updated) until one does."""
    async with pool.connection(timeout=timeout) as conn:
        await conn.execute(
            """INSERT INTO notification_pending AS p (idempotency_key, scope, kind, title, request, last_error)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (idempotency_key) DO UPDATE SET
                   attempts = p.attempts + 1, last_attempt_at = now(), last_error = excluded.last_error
               WHERE p.delivered_at IS NULL""",
            (
                req.idempotency_key,
                scope,
                req.kind,
                req.title[:300],
                Jsonb(req.model_dump(mode="json")),
                error[:ERROR_LIMIT],
            ),
        )


async def mark_pending_delivered(pool: DbPool, key: str, channels: list[str], *, timeout: float) -> None:
    async with pool.connection(timeout=timeout) as conn:
        await conn.execute(
            "UPDATE notification_pending SET delivered_at = now(), delivered_to = %s"
            " WHERE idempotency_key = %s AND delivered_at IS NULL",
            (channels, key),
        )


async def due_pending(pool: DbPool, limit: int, *, timeout: float) -> list[dict]:
    """The pending notices due for a re-send, oldest first."""
    async with pool.connection(timeout=timeout) as conn:
        cur = await conn.execute(
            "SELECT idempotency_key, request, resends FROM notification_pending"
            " WHERE delivered_at IS NULL AND next_attempt_at <= now() ORDER BY created_at LIMIT %s",
            (limit,),
        )
        return list(await cur.fetchall())


async def postpone_pending(pool: DbPool, key: str, *, timeout: float) -> None:
    """After a re-send that reached nobody: the next one after a doubling delay."""
    async with pool.connection(timeout=timeout) as conn:
        await conn.execute(
            """UPDATE notification_pending SET resends = resends + 1,
                   next_attempt_at = now() + make_interval(secs => LEAST(%s, %s * power(2, LEAST(resends, 20))))
               WHERE idempotency_key = %s AND delivered_at IS NULL""",
            (RESEND_MAX_SECONDS, RESEND_FIRST_SECONDS, key),
        )


async def channel_states(conn: DbConnection) -> list[dict]:
    cur = await conn.execute(
        "SELECT scope, channel, last_attempt_at, last_delivered_at, last_failed_at, last_error, consecutive_failures"
        " FROM notification_channel_state ORDER BY scope, channel"
    )
    return list(await cur.fetchall())


async def pending_notices(conn: DbConnection, limit: int = 20) -> tuple[list[dict], dict[str, int]]:
    """The oldest pending notices (at most `limit`) and how many are pending per scope."""
    cur = await conn.execute(
        "SELECT idempotency_key, scope, kind, title, created_at, attempts, resends, last_attempt_at,"
        " next_attempt_at, last_error FROM notification_pending WHERE delivered_at IS NULL"
        " ORDER BY created_at LIMIT %s",
        (limit,),
    )
    rows = list(await cur.fetchall())
    cur = await conn.execute(
        "SELECT scope, count(*) AS n FROM notification_pending WHERE delivered_at IS NULL GROUP BY scope"
    )
    return rows, {r["scope"]: int(r["n"]) for r in await cur.fetchall()}
