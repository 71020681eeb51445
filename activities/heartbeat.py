"""Heartbeat activities: read what the checks need, store the CloudEvent, POST it to a sink.
Every write is idempotent on the event id (one id per scheduled heartbeat). Recording also does
the fleet's periodic housekeeping: counted admin rejections older than their retention are
deleted (docs/security.md, "Admin actions"), best-effort, never failing the heartbeat."""

from __future__ import annotations

import json

from temporalio import activity
from temporalio.exceptions import ApplicationError

from govfleet.contracts.heartbeat import (
    GATHER_ACTIVITY,
    POST_SINK_ACTIVITY,
    RECORD_ACTIVITY,
    RENEW_GRANT_ACTIVITY,
    HeartbeatGathered,
    PostSinkInput,
    PostSinkResult,
    RecordHeartbeatInput,
    RecordHeartbeatResult,
    RenewGrantInput,
    RenewGrantResult,
)
from govfleet.store import grants as grant_store
from govfleet.store import guardian as guardian_store
from govfleet.store import heartbeat as heartbeat_store
from workers.resources import Resources

PRUNE_TIMEOUT_SECONDS = 5.0


class HeartbeatActivities:
    def __init__(self, resources: Resources):
        self._resources = resources

    @activity.defn(name=GATHER_ACTIVITY)
    async def gather(self) -> HeartbeatGathered:
        pool = self._resources.pool
        facts = await heartbeat_store.gather_facts(pool)
        previous = await heartbeat_store.previous_heartbeat(pool, before_id=activity.info().workflow_id)
        return HeartbeatGathered(facts=facts, previous=previous)

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, inp: RecordHeartbeatInput) -> RecordHeartbeatResult:
        ev = inp.event
        for key in ("id", "source", "type", "time", "data"):
            if key not in ev:
                raise ApplicationError(f"heartbeat event lacks {key!r}", non_retryable=True)
        inserted = await heartbeat_store.insert_event(self._resources.pool, ev)
        await self._prune_admin_rejections()
        return RecordHeartbeatResult(inserted=inserted)

    async def _prune_admin_rejections(self) -> None:
        keep_days = self._resources.config.settings.ADMIN_REJECTIONS_RETENTION_DAYS
        try:
            deleted = await guardian_store.prune_admin_rejections(
                self._resources.pool, keep_days=keep_days, timeout=PRUNE_TIMEOUT_SECONDS
            )
        except Exception as exc:  # housekeeping: the next heartbeat tries again
            activity.logger.warning(f"counted admin rejections not pruned: {type(exc).__name__}: {exc}"[:300])
            return
        if deleted:
            activity.logger.info(f"pruned {deleted} counted admin rejection rows older than {keep_days} days")

    @activity.defn(name=RENEW_GRANT_ACTIVITY)
    async def renew_grant(self, inp: RenewGrantInput) -> RenewGrantResult:
        """Move the governance grant's end to `inp.until` (idempotent: the same `until` on every
        retry; never closer). A revoked or missing grant is not renewed (non-retryable)."""
        row = await grant_store.extend_grant(self._resources.pool, inp.until)
        if row is None:
            raise ApplicationError("the governance grant does not exist", type="GrantMissing", non_retryable=True)
        if row["revoked_at"] is not None:
            raise ApplicationError(
                f"the governance grant was revoked at {row['revoked_at'].isoformat()}: not renewed",
                type="GrantRevoked",
                non_retryable=True,
            )
        expires = row["expires_at"]
        return RenewGrantResult(expires_at=expires, renewed=expires is None or expires >= inp.until)

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
            raise ApplicationError(f"heartbeat sink {inp.url} answered {resp.status_code}", non_retryable=not retryable)
        return PostSinkResult(status_code=resp.status_code)
