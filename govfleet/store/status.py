"""Reads of the status surface: the system tenant's balance and governance runs, the latest
heartbeat, the daily activity series, and the facts a run's brief summarises.

Tenant data (the system tenant's balance, ledger and governance runs) is read through
`tenant_scope` as the system principal: the application role, no BYPASSRLS, row-level security
decides. No function here takes a user id (see docs/status.md).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from govfleet.db import SYSTEM_PRINCIPAL_USER_ID, SYSTEM_TENANT_ID, DbConnection, DbPool, tenant_scope
from govfleet.domain.status import RECENT_LIMIT, HeartbeatRecord, RunRecord
from govfleet.store.guardian import CHECK_EVENT


async def read_system_credits(conn: DbConnection) -> str:
    async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID) as c:
        cur = await c.execute(
            "SELECT balance_credits FROM billing_accounts WHERE id = %s AND is_system_tenant", (SYSTEM_TENANT_ID,)
        )
        row = await cur.fetchone()
    if row is None:
        raise LookupError(f"system tenant '{SYSTEM_TENANT_ID}' is not visible to its principal; run `govfleet migrate`")
    return str(_col(row, "balance_credits"))


async def read_recent_runs(conn: DbConnection, limit: int = RECENT_LIMIT) -> list[RunRecord]:
    """The system principal's runs that are not deleted, most recently updated first."""
    limit = max(0, min(int(limit), RECENT_LIMIT))
    async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID) as c:
        cur = await c.execute(
            """SELECT id, title, started_at, updated_at, status, reason FROM governance_runs
               WHERE owner_user_id = %s AND deleted_at IS NULL
               ORDER BY updated_at DESC, id DESC LIMIT %s""",
            (SYSTEM_PRINCIPAL_USER_ID, limit),
        )
        rows = await cur.fetchall()
    return [
        RunRecord(
            id=_col(r, "id", 0),
            title=_col(r, "title", 1),
            started_at=_col(r, "started_at", 2),
            last_activity=_col(r, "updated_at", 3),
            status=_col(r, "status", 4),
            reason=_col(r, "reason", 5),
        )
        for r in rows
    ]


async def read_status_version(conn: DbConnection) -> int:
    """The status surface's change counter (migration 0070): bumped in the same transaction as
    every change the status shows, so an unchanged number means an unchanged answer."""
    cur = await conn.execute("SELECT version FROM status_version WHERE id = 1")
    row = await cur.fetchone()
    if not conn.autocommit:
        await conn.commit()
    return int(_col(row, "version")) if row is not None else 0


async def bump_status_version(conn: DbConnection) -> None:
    """A change the database does not see (Temporal's schedules were read again)."""
    await conn.execute("UPDATE status_version SET version = version + 1 WHERE id = 1")
    await conn.commit()


async def read_latest_heartbeat(conn: DbConnection) -> HeartbeatRecord | None:
    cur = await conn.execute(
        "SELECT id, type, time, status, data FROM heartbeat_events ORDER BY time DESC, id DESC LIMIT 1"
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None:
        return None
    return HeartbeatRecord(
        id=_col(row, "id", 0),
        type=_col(row, "type", 1),
        time=_col(row, "time", 2),
        status=_col(row, "status", 3),
        data=_col(row, "data", 4) or {},
    )


def _col(row, name: str, index: int = 0):
    return row[name] if isinstance(row, dict) else row[index]


async def activity(conn: DbConnection, guardian_id: str, *, first: date, last: date) -> list[dict]:
    """The daily series of `GET /api/v1/governance/activity`, dense (a row for every day)."""
    start = datetime(first.year, first.month, first.day).isoformat() + "+00:00"
    end = datetime(last.year, last.month, last.day).isoformat() + "+00:00"
    days: dict[date, dict] = {}
    d = first
    while d <= last:
        days[d] = {
            "date": d,
            "runs": 0,
            "runs_succeeded": 0,
            "runs_failed": 0,
            "credits_received": "0",
            "credits_spent": "0",
            "holder_control": None,
        }
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
                "min": float(r["min"]),
                "avg": round(float(r["avg"]), 2),
                "max": float(r["max"]),
                "checks": int(r["checks"]),
            }
    await conn.commit()
    return [days[k] for k in sorted(days)]


def _int_str(v) -> str:
    if isinstance(v, Decimal):
        return str(int(v))
    return str(int(v))


class BriefRows(NamedTuple):
    """What a run's brief summarises, read in one snapshot of the database's clock."""

    now: datetime
    last_check: dict[str, Any] | None  # the latest audit event with a holder control
    open_pauses: list[dict[str, Any]]
    alerts: list[dict[str, Any]]  # the most recent, resolved or not
    heartbeat: dict[str, Any] | None  # the latest heartbeat event (time, status)
    balance: int | None  # the system tenant's balance


async def brief_rows(pool: DbPool, *, alerts: int) -> BriefRows:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT now() AS now")
        row = await cur.fetchone()
        assert row is not None  # a SELECT without FROM returns exactly one row
        now = row["now"]
        cur = await conn.execute(
            "SELECT timestamp, threshold_level, holder_control FROM governance_events"
            " WHERE holder_control IS NOT NULL ORDER BY timestamp DESC LIMIT 1"
        )
        ev = await cur.fetchone()
        cur = await conn.execute(
            "SELECT scope, pause_reason FROM system_pauses WHERE resumed_at IS NULL ORDER BY paused_at"
        )
        pauses = await cur.fetchall()
        cur = await conn.execute(
            "SELECT timestamp, alert_type, message, resolved FROM governance_alerts ORDER BY timestamp DESC LIMIT %s",
            (alerts,),
        )
        recent_alerts = await cur.fetchall()
        cur = await conn.execute("SELECT time, status FROM heartbeat_events ORDER BY time DESC LIMIT 1")
        hb = await cur.fetchone()
        cur = await conn.execute("SELECT balance_credits FROM billing_accounts WHERE id = %s", (SYSTEM_TENANT_ID,))
        acct = await cur.fetchone()
        await conn.rollback()
    return BriefRows(
        now=now,
        last_check=ev,
        open_pauses=list(pauses),
        alerts=list(recent_alerts),
        heartbeat=hb,
        balance=int(acct["balance_credits"]) if acct else None,
    )
