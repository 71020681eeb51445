"""The API's database reads (the adapters behind the HTTP routes).

Tenant data (the system tenant's ledger and governance runs) is read through
`tenant_scope` as the system principal, with row-level security and no BYPASSRLS; the
guardian's tables (alerts, the complete audit log, pauses) are operational data of the
fleet, not tenant data, and are read directly. No function here takes a user id.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from psycopg import AsyncConnection

from govfleet.db import SYSTEM_PRINCIPAL_USER_ID, SYSTEM_TENANT_ID, tenant_scope

CHECK_EVENT = "governance_check"


def _f(value) -> float | None:
    return None if value is None else float(value)


async def ping(conn: AsyncConnection) -> None:
    await conn.execute("SELECT 1")


async def alerts(conn: AsyncConnection, guardian_id: str, limit: int, resolved: bool | None = None) -> list[dict]:
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


async def events(conn: AsyncConnection, guardian_id: str, limit: int, event_type: str | None = None) -> list[dict]:
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


async def latest_check(conn: AsyncConnection, guardian_id: str) -> dict | None:
    cur = await conn.execute(
        """SELECT timestamp, holder_control, threshold_level FROM governance_events
           WHERE guardian_id = %s AND event_type = %s ORDER BY timestamp DESC, id DESC LIMIT 1""",
        (guardian_id, CHECK_EVENT),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return {**row, "holder_control": _f(row["holder_control"])}


async def open_pauses(conn: AsyncConnection, guardian_id: str) -> list[dict]:
    cur = await conn.execute(
        """SELECT id, paused_at, pause_reason, pause_type, scope FROM system_pauses
           WHERE guardian_id = %s AND resumed_at IS NULL ORDER BY paused_at DESC""",
        (guardian_id,),
    )
    return list(await cur.fetchall())


async def active_alert_count(conn: AsyncConnection, guardian_id: str) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM governance_alerts WHERE guardian_id = %s AND NOT resolved", (guardian_id,)
    )
    row = await cur.fetchone()
    return int(row["n"])


async def holder_control_series(
    conn: AsyncConnection, guardian_id: str, *, since: datetime, until: datetime, bucket: timedelta
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
        {"timestamp": r["bucket"], "holder_control": round(float(r["avg"]), 2), "min": float(r["min"]),
         "max": float(r["max"]), "checks": int(r["checks"])}
        for r in rows
    ]


async def activity(conn: AsyncConnection, guardian_id: str, *, first: date, last: date) -> list[dict]:
    """The daily series of `GET /api/v1/governance/activity`, dense (a row for every day)."""
    start = datetime(first.year, first.month, first.day).isoformat() + "+00:00"
    end = datetime(last.year, last.month, last.day).isoformat() + "+00:00"
    days: dict[date, dict] = {}
    d = first
    while d <= last:
        days[d] = {"date": d, "runs": 0, "runs_succeeded": 0, "runs_failed": 0,
                   "credits_received": "0", "credits_spent": "0", "holder_control": None}
        d += timedelta(days=1)
    async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID) as c:
        cur = await c.execute(
            """SELECT (started_at AT TIME ZONE 'UTC')::date AS day, count(*) AS runs,
                      count(*) FILTER (WHERE status = 'success') AS ok,
                      count(*) FILTER (WHERE status IN ('error', 'refused')) AS failed
               FROM governance_runs
               WHERE owner_user_id = %s AND deleted_at IS NULL
                 AND started_at >= %s::timestamptz AND started_at < %s::timestamptz + interval '1 day'
               GROUP BY 1""",
            (SYSTEM_PRINCIPAL_USER_ID, start, end),
        )
        for r in await cur.fetchall():
            if r["day"] in days:
                days[r["day"]].update(runs=int(r["runs"]), runs_succeeded=int(r["ok"]), runs_failed=int(r["failed"]))
        cur = await c.execute(
            """SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
                      COALESCE(sum(amount) FILTER (WHERE amount > 0), 0) AS received,
                      COALESCE(-sum(amount) FILTER (WHERE amount < 0), 0) AS spent
               FROM credit_ledger
               WHERE billing_account_id = %s
                 AND created_at >= %s::timestamptz AND created_at < %s::timestamptz + interval '1 day'
               GROUP BY 1""",
            (SYSTEM_TENANT_ID, start, end),
        )
        for r in await cur.fetchall():
            if r["day"] in days:
                days[r["day"]].update(credits_received=_int_str(r["received"]), credits_spent=_int_str(r["spent"]))
    cur = await conn.execute(
        """SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, min(holder_control) AS min,
                  avg(holder_control) AS avg, max(holder_control) AS max, count(*) AS checks
           FROM governance_events
           WHERE guardian_id = %s AND event_type = %s AND holder_control IS NOT NULL
             AND timestamp >= %s::timestamptz AND timestamp < %s::timestamptz + interval '1 day'
           GROUP BY 1""",
        (guardian_id, CHECK_EVENT, start, end),
    )
    for r in await cur.fetchall():
        if r["day"] in days:
            days[r["day"]]["holder_control"] = {
                "min": float(r["min"]), "avg": round(float(r["avg"]), 2), "max": float(r["max"]),
                "checks": int(r["checks"]),
            }
    await conn.commit()
    return [days[k] for k in sorted(days)]


def _int_str(v) -> str:
    if isinstance(v, Decimal):
        return str(int(v))
    return str(int(v))
