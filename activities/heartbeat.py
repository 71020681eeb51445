"""Heartbeat activities: read what the checks need, store the CloudEvent, POST it to a sink.

Reads of the system tenant's account and grant go through `tenant_scope` (the application
role under row-level security), so the heartbeat also proves the tenant-scoped path works.
Every write is idempotent on the event id (one id per scheduled heartbeat).
"""

from __future__ import annotations

import json
from datetime import datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from govfleet.contracts.heartbeat import (
    GATHER_ACTIVITY,
    POST_SINK_ACTIVITY,
    RECORD_ACTIVITY,
    HeartbeatGathered,
    PostSinkInput,
    PostSinkResult,
    RecordHeartbeatInput,
    RecordHeartbeatResult,
)
from govfleet.db import GOVERNANCE_GRANT_ID, SYSTEM_PRINCIPAL_USER_ID, SYSTEM_TENANT_ID, tenant_scope
from govfleet.domain.heartbeat import HeartbeatFacts, PreviousHeartbeat, previous_from_event
from workers.resources import Resources


async def gather_facts(resources: Resources) -> HeartbeatFacts:
    async with resources.pool.connection() as conn:
        async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID):
            cur = await conn.execute(
                "SELECT is_system_tenant, balance_credits FROM billing_accounts WHERE id = %s", (SYSTEM_TENANT_ID,))
            account = await cur.fetchone()
            cur = await conn.execute(
                "SELECT expires_at, revoked_at FROM execution_grants WHERE id = %s", (GOVERNANCE_GRANT_ID,))
            grant = await cur.fetchone()
    return HeartbeatFacts(
        tenant_id=SYSTEM_TENANT_ID,
        tenant_exists=account is not None,
        tenant_flagged=bool(account and account["is_system_tenant"]),
        balance=int(account["balance_credits"]) if account else None,
        grant_id=GOVERNANCE_GRANT_ID,
        grant_exists=grant is not None,
        grant_expires_at=grant["expires_at"] if grant else None,
        grant_revoked_at=grant["revoked_at"] if grant else None,
    )


async def latest_heartbeat(resources: Resources, *, before_id: str | None = None) -> PreviousHeartbeat | None:
    async with resources.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT time, status, data FROM heartbeat_events WHERE id IS DISTINCT FROM %s ORDER BY time DESC LIMIT 1",
            (before_id,),
        )
        row = await cur.fetchone()
        await conn.rollback()
    if row is None:
        return None
    return previous_from_event(row["time"], row["status"], row["data"] or {})


class HeartbeatActivities:
    def __init__(self, resources: Resources):
        self._resources = resources

    @activity.defn(name=GATHER_ACTIVITY)
    async def gather(self) -> HeartbeatGathered:
        facts = await gather_facts(self._resources)
        previous = await latest_heartbeat(self._resources, before_id=activity.info().workflow_id)
        return HeartbeatGathered(facts=facts, previous=previous)

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, inp: RecordHeartbeatInput) -> RecordHeartbeatResult:
        ev = inp.event
        for key in ("id", "source", "type", "time", "data"):
            if key not in ev:
                raise ApplicationError(f"heartbeat event lacks {key!r}", non_retryable=True)
        async with self._resources.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO heartbeat_events (id, source, type, time, status, data)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (ev["id"], ev["source"], ev["type"], datetime.fromisoformat(ev["time"].replace("Z", "+00:00")),
                 ev["data"]["status"], json.dumps(ev["data"])),
            )
            inserted = cur.rowcount == 1
            await conn.commit()
        return RecordHeartbeatResult(inserted=inserted)

    @activity.defn(name=POST_SINK_ACTIVITY)
    async def post_sink(self, inp: PostSinkInput) -> PostSinkResult:
        """Structured-mode CloudEvent; the event id lets the sink drop duplicates of a retry."""
        try:
            resp = await self._resources.http.post(
                inp.url,
                content=json.dumps(inp.event),
                headers={"content-type": "application/cloudevents+json", "ce-id": inp.event["id"]},
            )
        except Exception as exc:
            raise ApplicationError(f"heartbeat sink {inp.url} unreachable: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            retryable = resp.status_code >= 500 or resp.status_code in (408, 429)
            raise ApplicationError(f"heartbeat sink {inp.url} answered {resp.status_code}",
                                   non_retryable=not retryable)
        return PostSinkResult(status_code=resp.status_code)
