"""The guardian's tables: governance_events (the complete audit log), governance_alerts,
system_pauses and admin_rejections (rejected admin requests at the API, counted). Operational
data of the fleet, not tenant data, so read and written directly (no tenant scope). Every
audit write is keyed by the row's idempotency key (see docs/guardian.md); the rejection counters
are added up (a write retried after a lost answer may count twice: they are counters, not audit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from govfleet.contracts.guardian import (
    RecordBatch,
    RecordResult,
    RestoredAlert,
    RestoredPause,
    RestoredResume,
    RestoreResult,
)
from govfleet.db import DbConnection, DbPool
from govfleet.domain.guardian.models import ForensicAudit

CHECK_EVENT = "governance_check"
RESUME_RECALL_WINDOW = timedelta(days=7)  # a resume older than this is not called again after a restart


def _f(value) -> float | None:
    return None if value is None else float(value)


async def alerts(conn: DbConnection, guardian_id: str, limit: int, resolved: bool | None = None) -> list[dict]:
    where = "guardian_id = %s"
    params: list = [guardian_id]
    if resolved is not None:
        where += " AND resolved = %s"
        params.append(resolved)
    cur = await conn.execute(
        f"""SELECT id, timestamp, alert_type, holder_control, message, action_taken, resolved, resolved_at
            FROM governance_alerts WHERE {where} ORDER BY timestamp DESC, id DESC LIMIT %s""",
        (*params, limit),
    )
    rows = await cur.fetchall()
    return [{**r, "holder_control": _f(r["holder_control"])} for r in rows]


async def events(conn: DbConnection, guardian_id: str, limit: int, event_type: str | None = None) -> list[dict]:
    where = "guardian_id = %s"
    params: list = [guardian_id]
    if event_type:
        where += " AND event_type = %s"
        params.append(event_type)
    cur = await conn.execute(
        f"""SELECT id, timestamp, event_type, holder_control, threshold_level, action, details
            FROM governance_events WHERE {where} ORDER BY timestamp DESC, id DESC LIMIT %s""",
        (*params, limit),
    )
    rows = await cur.fetchall()
    return [{**r, "holder_control": _f(r["holder_control"])} for r in rows]


async def latest_check(conn: DbConnection, guardian_id: str) -> dict | None:
    cur = await conn.execute(
        """SELECT timestamp, holder_control, threshold_level FROM governance_events
           WHERE guardian_id = %s AND event_type = %s ORDER BY timestamp DESC, id DESC LIMIT 1""",
        (guardian_id, CHECK_EVENT),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return {**row, "holder_control": _f(row["holder_control"])}


async def open_pauses(conn: DbConnection, guardian_id: str) -> list[dict]:
    cur = await conn.execute(
        """SELECT id, paused_at, pause_reason, pause_type, scope FROM system_pauses
           WHERE guardian_id = %s AND resumed_at IS NULL ORDER BY paused_at DESC""",
        (guardian_id,),
    )
    return list(await cur.fetchall())


async def active_alert_count(conn: DbConnection, guardian_id: str) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM governance_alerts WHERE guardian_id = %s AND NOT resolved", (guardian_id,)
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate without GROUP BY returns exactly one row
    return int(row["n"])


async def holder_control_series(
    conn: DbConnection, guardian_id: str, *, since: datetime, until: datetime, bucket: timedelta
) -> list[dict]:
    cur = await conn.execute(
        """SELECT date_bin(%s, timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                  avg(holder_control) AS avg, min(holder_control) AS min, max(holder_control) AS max,
                  count(*) AS checks
           FROM governance_events
           WHERE guardian_id = %s AND event_type = %s AND holder_control IS NOT NULL
             AND timestamp >= %s AND timestamp <= %s
           GROUP BY 1 ORDER BY 1""",
        (bucket, guardian_id, CHECK_EVENT, since, until),
    )
    rows = await cur.fetchall()
    return [
        {
            "timestamp": r["bucket"],
            "holder_control": round(float(r["avg"]), 2),
            "min": float(r["min"]),
            "max": float(r["max"]),
            "checks": int(r["checks"]),
        }
        for r in rows
    ]


async def record_batch(pool: DbPool, batch: RecordBatch, *, timeout: float) -> RecordResult:
    """Write the audit rows of a batch in one transaction; returns the database ids. Every row
    carries its idempotency key, so a retried batch writes nothing twice (and still gets the ids)."""
    result = RecordResult()
    gid = batch.guardian_id
    async with pool.connection(timeout=timeout) as conn, conn.transaction():
        if batch.events:
            ev = batch.events
            cur = await conn.execute(
                """
                    INSERT INTO governance_events
                        (guardian_id, timestamp, event_type, holder_control, threshold_level, action,
                         details, idempotency_key)
                    SELECT %s, u.* FROM unnest(%s::timestamptz[], %s::text[], %s::numeric[], %s::text[],
                                               %s::text[], %s::text[], %s::text[]) AS u
                    ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
                    RETURNING id, idempotency_key
                    """,
                (
                    gid,
                    [e.timestamp for e in ev],
                    [e.event_type[:30] for e in ev],
                    [e.holder_control for e in ev],
                    [e.threshold_level[:20] for e in ev],
                    [e.action[:50] for e in ev],
                    [e.details for e in ev],
                    [e.key for e in ev],
                ),
            )
            result.event_ids = {row["idempotency_key"]: row["id"] for row in await cur.fetchall()}
        if batch.alerts_opened:
            al = batch.alerts_opened
            cur = await conn.execute(
                """
                    INSERT INTO governance_alerts
                        (guardian_id, timestamp, alert_type, holder_control, message, action_taken,
                         idempotency_key)
                    SELECT %s, u.* FROM unnest(%s::timestamptz[], %s::text[], %s::numeric[], %s::text[],
                                               %s::text[], %s::text[]) AS u
                    ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
                    RETURNING id, idempotency_key
                    """,
                (
                    gid,
                    [a.timestamp for a in al],
                    [a.alert_type[:30] for a in al],
                    [a.holder_control for a in al],
                    [a.message for a in al],
                    [a.action_taken[:50] for a in al],
                    [a.key for a in al],
                ),
            )
            result.alert_ids = {row["idempotency_key"]: row["id"] for row in await cur.fetchall()}
        if batch.alerts_resolved:
            res = batch.alerts_resolved
            await conn.execute(
                """
                    UPDATE governance_alerts a SET resolved = true, resolved_at = u.resolved_at
                    FROM unnest(%s::text[], %s::timestamptz[]) AS u(key, resolved_at)
                    WHERE a.idempotency_key = u.key AND NOT a.resolved
                    """,
                ([r.key for r in res], [r.resolved_at for r in res]),
            )
        for p in batch.pauses_opened:
            await conn.execute(
                """
                    INSERT INTO system_pauses
                        (guardian_id, paused_at, pause_reason, pause_type, scope, holder_control_at_pause,
                         pause_key, targets, emergency)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (pause_key) DO NOTHING
                    """,
                (
                    gid,
                    p.paused_at,
                    p.reason,
                    p.pause_type,
                    p.scope,
                    p.holder_control_at_pause,
                    p.key,
                    list(p.targets),
                    p.emergency,
                ),
            )
        if batch.nonces_used:
            await conn.execute(
                """
                    INSERT INTO admin_nonces (guardian_id, nonce, expires_at)
                    SELECT %s, u.* FROM unnest(%s::text[], %s::timestamptz[]) AS u
                    ON CONFLICT (guardian_id, nonce) DO NOTHING
                    """,
                (gid, list(batch.nonces_used), list(batch.nonces_used.values())),
            )
        for p in batch.pauses_resumed:
            await conn.execute(
                """
                    UPDATE system_pauses
                    SET resumed_at = %s, resumed_by = %s, resume_reason = %s, resume_approval = %s
                    WHERE pause_key = %s AND resumed_at IS NULL
                    """,
                (p.resumed_at, (p.resumed_by or "")[:100], p.resume_reason, p.resume_approval, p.key),
            )
        for f in batch.forensic:
            await conn.execute(
                """
                    INSERT INTO forensic_audits
                        (guardian_id, pause_key, required_at, completed_at, completed_by, report)
                    VALUES (%s, %s, %s, %s, %s, %s)
                    ON CONFLICT (pause_key) DO UPDATE SET
                        completed_at = coalesce(forensic_audits.completed_at, EXCLUDED.completed_at),
                        completed_by = coalesce(forensic_audits.completed_by, EXCLUDED.completed_by),
                        report = coalesce(forensic_audits.report, EXCLUDED.report)
                    """,
                (gid, f.pause_key, f.required_at, f.completed_at, f.completed_by, f.report),
            )
    return result


async def restore_snapshot(pool: DbPool, guardian_id: str, now: datetime, *, timeout: float) -> RestoreResult:
    """What a guardian started afresh takes back: its open alerts, its active pauses (with the
    targets that acknowledged the pause call) and its admin nonces still within their expiry."""
    async with pool.connection(timeout=timeout) as conn:
        cur = await conn.execute(
            """SELECT id, idempotency_key, alert_type, timestamp, holder_control, message, action_taken
               FROM governance_alerts
               WHERE guardian_id = %s AND NOT resolved AND idempotency_key IS NOT NULL
               ORDER BY timestamp, id""",
            (guardian_id,),
        )
        alerts = [
            RestoredAlert(
                key=r["idempotency_key"],
                id=r["id"],
                alert_type=r["alert_type"],
                timestamp=r["timestamp"],
                holder_control=_f(r["holder_control"]),
                message=r["message"],
                action_taken=r["action_taken"],
            )
            for r in await cur.fetchall()
        ]
        cur = await conn.execute(
            """SELECT p.pause_key, p.pause_type, p.scope, p.emergency, p.paused_at, p.pause_reason,
                      p.holder_control_at_pause, p.targets,
                      coalesce(array_agg(a.target) FILTER (WHERE a.target IS NOT NULL), '{}') AS acknowledged
               FROM system_pauses p
               LEFT JOIN breaker_acks a ON a.idempotency_key = p.pause_key AND a.action = 'pause'
               WHERE p.guardian_id = %s AND p.resumed_at IS NULL AND p.pause_key IS NOT NULL
               GROUP BY p.id ORDER BY p.paused_at, p.id""",
            (guardian_id,),
        )
        pauses = [
            RestoredPause(
                key=r["pause_key"],
                pause_type=r["pause_type"],
                scope=r["scope"],
                emergency=r["emergency"],
                paused_at=r["paused_at"],
                reason=r["pause_reason"],
                holder_control_at_pause=_f(r["holder_control_at_pause"]),
                targets=r["targets"],
                acknowledged=list(r["acknowledged"]),
            )
            for r in await cur.fetchall()
        ]
        # Resumes written before their calls went out (a terminate in between): the targets
        # that never acknowledged them are called again with the same key.
        cur = await conn.execute(
            """SELECT p.pause_key, p.scope, p.targets, p.resumed_at, p.resumed_by, p.resume_reason,
                      coalesce(array_agg(a.target) FILTER (WHERE a.target IS NOT NULL), '{}') AS acknowledged
               FROM system_pauses p
               LEFT JOIN breaker_acks a ON a.idempotency_key = p.pause_key AND a.action = 'resume'
               WHERE p.guardian_id = %s AND p.resumed_at IS NOT NULL AND p.resumed_at > %s
                     AND p.pause_key IS NOT NULL AND p.targets IS NOT NULL
               GROUP BY p.id ORDER BY p.resumed_at, p.id""",
            (guardian_id, now - RESUME_RECALL_WINDOW),
        )
        resumes = [
            RestoredResume(
                key=r["pause_key"],
                scope=r["scope"],
                targets=list(r["targets"]),
                resumed_at=r["resumed_at"],
                resumed_by=r["resumed_by"],
                resume_reason=r["resume_reason"],
                acknowledged=list(r["acknowledged"]),
            )
            for r in await cur.fetchall()
            if set(r["targets"]) - set(r["acknowledged"])
        ]
        cur = await conn.execute(
            "SELECT nonce, expires_at FROM admin_nonces WHERE guardian_id = %s AND expires_at > %s",
            (guardian_id, now),
        )
        nonces = {r["nonce"]: r["expires_at"] for r in await cur.fetchall()}
        cur = await conn.execute(
            """SELECT pause_key, required_at FROM forensic_audits
               WHERE guardian_id = %s AND completed_at IS NULL ORDER BY required_at DESC LIMIT 1""",
            (guardian_id,),
        )
        row = await cur.fetchone()
        forensic = ForensicAudit(pause_key=row["pause_key"], required_at=row["required_at"]) if row else None
    return RestoreResult(alerts=alerts, pauses=pauses, resumes=resumes, nonces=nonces, forensic=forensic)


async def record_breaker_ack(pool: DbPool, idempotency_key: str, target: str, action: str, *, timeout: float) -> None:
    """A breaker target answered a call with 2xx (keyed like the call: repeating it is harmless)."""
    async with pool.connection(timeout=timeout) as conn:
        await conn.execute(
            """INSERT INTO breaker_acks (idempotency_key, target, action) VALUES (%s, %s, %s)
               ON CONFLICT DO NOTHING""",
            (idempotency_key, target, action),
        )


@dataclass
class AdminRejections:
    """One row of admin_rejections: rejected admin requests of one guardian, source address,
    minute, action and code (see govfleet/api/admin_gate.py)."""

    guardian_id: str
    source: str
    window_start: datetime
    action: str
    code: str
    count: int
    limited: int  # of those, answered 429
    first_at: datetime
    last_at: datetime
    sample: str
    # The distinct client addresses the row counts: 1 for an address's own row; for the row of
    # source `*` (the addresses past the per-minute limit), how many were folded into it.
    sources: int = 1


async def add_admin_rejections(pool: DbPool, rows: list[AdminRejections], *, timeout: float) -> None:
    """Add counted rejections: one statement for all of them, each row's counters added to the
    row of the same guardian, minute, source, action and code."""
    if not rows:
        return
    async with pool.connection(timeout=timeout) as conn:
        await conn.execute(
            """
            INSERT INTO admin_rejections AS r
                (guardian_id, source, window_start, action, code, count, limited, first_at, last_at, sample,
                 sources)
            SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[],
                                 %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::text[],
                                 %s::bigint[])
            ON CONFLICT (guardian_id, window_start, source, action, code) DO UPDATE SET
                count = r.count + EXCLUDED.count,
                limited = r.limited + EXCLUDED.limited,
                first_at = least(r.first_at, EXCLUDED.first_at),
                last_at = greatest(r.last_at, EXCLUDED.last_at),
                sources = CASE WHEN r.source = '*' THEN r.sources + EXCLUDED.sources ELSE r.sources END
            """,
            (
                [r.guardian_id for r in rows],
                [r.source for r in rows],
                [r.window_start for r in rows],
                [r.action for r in rows],
                [r.code for r in rows],
                [r.count for r in rows],
                [r.limited for r in rows],
                [r.first_at for r in rows],
                [r.last_at for r in rows],
                [r.sample for r in rows],
                [r.sources for r in rows],
            ),
        )


PRUNE_BATCH_ROWS = 10_000


async def prune_admin_rejections(pool: DbPool, *, keep_days: int, timeout: float) -> int:
    """Delete counted rejections of minutes older than `keep_days` days, at most PRUNE_BATCH_ROWS
    a call (bounded work; far more than the rows a minute can add); returns how many."""
    async with pool.connection(timeout=timeout) as conn:
        cur = await conn.execute(
            """DELETE FROM admin_rejections WHERE ctid IN (
                   SELECT ctid FROM admin_rejections WHERE window_start < now() - make_interval(days => %s)
                   LIMIT %s)""",
            (keep_days, PRUNE_BATCH_ROWS),
        )
        return cur.rowcount


async def admin_rejections(conn: DbConnection, guardian_id: str, limit: int) -> list[dict]:
    """The latest counted rejections of one guardian, newest window first."""
    cur = await conn.execute(
        """SELECT window_start, source, action, code, count, limited, sources, first_at, last_at, sample
           FROM admin_rejections WHERE guardian_id = %s
           ORDER BY window_start DESC, count DESC, source, action, code LIMIT %s""",
        (guardian_id, limit),
    )
    return await cur.fetchall()
