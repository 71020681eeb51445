"""Reads that rebuild the status read model (on start, on continue-as-new, on a refresh).

Tenant data (the system tenant's balance, its governance runs) is read through
`govfleet.db.tenant_scope` as the system principal: the application role, no BYPASSRLS,
row-level security decides (seed 000, RLS_VIA_TENANT_SCOPE, SYSTEM_TENANT_SCOPE). Nothing
here takes a user id. The plain async functions are shared with the HTTP API's fallback
path; the activity class wraps them for the status workflow.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import psycopg
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from govfleet.contracts.governance_run import schedule_id
from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID
from govfleet.contracts.status import (
    READ_SCHEDULES_ACTIVITY,
    READ_STATUS_DB_ACTIVITY,
    ReadSchedulesInput,
    ReadSchedulesResult,
    ReadStatusDbInput,
    ReadStatusDbResult,
)
from govfleet.db import SYSTEM_PRINCIPAL_USER_ID, SYSTEM_TENANT_ID, tenant_scope
from govfleet.domain.status import RECENT_LIMIT, HeartbeatRecord, RunRecord, schedule_entries
from govfleet.repo_spec import RepoSpecError, load_repo_spec
from workers.resources import Resources

# --- plain reads (shared with the API) -------------------------------------------------


async def read_system_credits(conn: psycopg.AsyncConnection) -> str:
    async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID) as c:
        cur = await c.execute(
            "SELECT balance_credits FROM billing_accounts WHERE id = %s AND is_system_tenant", (SYSTEM_TENANT_ID,)
        )
        row = await cur.fetchone()
    if row is None:
        raise LookupError(f"system tenant '{SYSTEM_TENANT_ID}' is not visible to its principal; run `govfleet migrate`")
    return str(_col(row, "balance_credits"))


async def read_recent_runs(conn: psycopg.AsyncConnection, limit: int = RECENT_LIMIT) -> list[RunRecord]:
    """Seed 000: `WHERE owner_user_id = SYSTEM_PRINCIPAL AND deleted_at IS NULL ORDER BY
    updated_at DESC LIMIT 10`."""
    limit = max(0, min(int(limit), RECENT_LIMIT))
    async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID) as c:
        cur = await c.execute(
            """SELECT id, title, started_at, updated_at FROM governance_runs
               WHERE owner_user_id = %s AND deleted_at IS NULL
               ORDER BY updated_at DESC, id DESC LIMIT %s""",
            (SYSTEM_PRINCIPAL_USER_ID, limit),
        )
        rows = await cur.fetchall()
    return [
        RunRecord(
            id=_col(r, "id", 0), title=_col(r, "title", 1),
            started_at=_col(r, "started_at", 2), last_activity=_col(r, "updated_at", 3),
        )
        for r in rows
    ]


async def read_latest_heartbeat(conn: psycopg.AsyncConnection) -> HeartbeatRecord | None:
    cur = await conn.execute(
        "SELECT id, type, time, status, data FROM heartbeat_events ORDER BY time DESC, id DESC LIMIT 1"
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None:
        return None
    return HeartbeatRecord(
        id=_col(row, "id", 0), type=_col(row, "type", 1), time=_col(row, "time", 2),
        status=_col(row, "status", 3), data=_col(row, "data", 4) or {},
    )


def _col(row, name: str, index: int = 0):
    return row[name] if isinstance(row, dict) else row[index]


async def schedule_paused(client: Client, schedule_id: str) -> bool | None:
    """Whether the Temporal Schedule is paused by an operator; None when it does not exist."""
    try:
        desc = await client.get_schedule_handle(schedule_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return bool(desc.schedule.state.paused)


# --- activities ------------------------------------------------------------------------


class StatusReadActivities:
    def __init__(self, resources: Resources):
        self._resources = resources

    @activity.defn(name=READ_STATUS_DB_ACTIVITY)
    async def read_status_db(self, input: ReadStatusDbInput) -> ReadStatusDbResult:
        async with self._resources.pool.connection() as conn:
            credits = await read_system_credits(conn)
            runs = await read_recent_runs(conn, input.recent_limit)
            heartbeat = await read_latest_heartbeat(conn)
        return ReadStatusDbResult(
            system_credits=credits, recent_runs=runs, heartbeat=heartbeat, read_at=activity_now()
        )

    @activity.defn(name=READ_SCHEDULES_ACTIVITY)
    async def read_schedules(self, input: ReadSchedulesInput) -> ReadSchedulesResult:
        config = self._resources.config
        spec_error = None
        try:
            # Re-read the file: the reconciler applies edits without restarting workers.
            spec = load_repo_spec(Path(config.settings.REPO_SPEC_PATH))
        except RepoSpecError as err:
            spec, spec_error = config.spec, str(err)
            activity.logger.warning("repo-spec unreadable, using the one loaded at start: %s", err)
        schedules = schedule_entries(spec.governance.schedules)
        heartbeat_paused = False
        if input.check_temporal:
            client = self._resources.client
            checked = []
            for s in schedules:
                paused = await schedule_paused(client, schedule_id(s.charter))
                checked.append(s.model_copy(update={"paused": bool(paused)}))
            schedules = checked
            heartbeat_paused = bool(await schedule_paused(client, HEARTBEAT_SCHEDULE_ID))
        hb = spec.governance.heartbeat
        return ReadSchedulesResult(
            schedules=schedules,
            heartbeat_interval_seconds=hb.interval_minutes * 60,
            heartbeat_grace_seconds=hb.grace_seconds,
            heartbeat_paused=heartbeat_paused,
            spec_error=spec_error,
        )


def activity_now() -> datetime:
    from datetime import timezone

    return datetime.now(timezone.utc)
