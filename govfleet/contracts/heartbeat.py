"""Workflow `GovernanceHeartbeat`, started by the schedule `governance:heartbeat` every
interval (see docs/heartbeat.md). Its workflow id is the schedule's `<schedule id>-<time>`,
which is also the CloudEvent id and the idempotency key of everything one heartbeat writes.

A heartbeat whose checks failed ends the workflow as failed (type `HeartbeatFailed`, with the
`HeartbeatResult` as details) after everything was recorded and sent.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from govfleet.domain.heartbeat import HeartbeatFacts, PreviousHeartbeat

__all__ = [
    "GATHER_ACTIVITY",
    "HEARTBEAT_SCHEDULE_ID",
    "HEARTBEAT_WORKFLOW",
    "POST_SINK_ACTIVITY",
    "RECORD_ACTIVITY",
    "RENEW_GRANT_ACTIVITY",
    "HeartbeatGathered",
    "HeartbeatInput",
    "HeartbeatResult",
    "PostSinkInput",
    "PostSinkResult",
    "RecordHeartbeatInput",
    "RecordHeartbeatResult",
    "RenewGrantInput",
    "RenewGrantResult",
]

HEARTBEAT_WORKFLOW = "GovernanceHeartbeat"
HEARTBEAT_SCHEDULE_ID = "governance:heartbeat"

GATHER_ACTIVITY = "heartbeat_gather"
RECORD_ACTIVITY = "heartbeat_record"
POST_SINK_ACTIVITY = "heartbeat_post_sink"
RENEW_GRANT_ACTIVITY = "heartbeat_renew_grant"


class HeartbeatInput(BaseModel):
    """The workflow's input (the `governance:heartbeat` schedule's args)."""

    interval_minutes: int = Field(default=5, ge=1)
    grace_seconds: int = Field(default=60, ge=0)
    low_balance_threshold_credits: int = Field(default=1_000_000, ge=0)
    grant_expiry_warning_hours: int = Field(default=24, ge=0)
    renotify_minutes: int = Field(default=60, ge=1)
    sink_url: str | None = None
    dao_name: str = "cogni"
    # The governance grant's renewal (docs/heartbeat.md, "The governance grant"); repo-spec
    # governance.heartbeat.grant_*; left out of the schedule's args while at their defaults.
    grant_auto_renew: bool = True
    grant_renew_within_days: int = Field(default=30, ge=1)
    grant_renew_for_days: int = Field(default=365, ge=1)


class HeartbeatResult(BaseModel):
    event_id: str
    status: str
    alerts: list[str] = Field(default_factory=list)
    notified: list[str] = Field(default_factory=list)  # kinds actually sent (incl. "recovery")
    recorded: bool = False
    sink_delivered: bool | None = None  # None: no sink configured
    problems: list[str] = Field(default_factory=list)  # best-effort steps that did not succeed
    grant_renewal: str | None = None  # what this heartbeat did about the grant, when anything
    resent: list[str] = Field(default_factory=list)  # pending urgent notices a channel took now
    still_pending: int = 0  # pending urgent notices re-sent that still reached nobody


# --- activities the workflow calls ------------------------------------------------------


class HeartbeatGathered(BaseModel):
    facts: HeartbeatFacts
    previous: PreviousHeartbeat | None = None


class RecordHeartbeatInput(BaseModel):
    event: dict


class RecordHeartbeatResult(BaseModel):
    inserted: bool


class PostSinkInput(BaseModel):
    url: str
    event: dict


class PostSinkResult(BaseModel):
    status_code: int


class RenewGrantInput(BaseModel):
    until: datetime  # the new end; never moved closer, a revoked grant never renewed


class RenewGrantResult(BaseModel):
    expires_at: datetime | None
    renewed: bool  # the end is now at least `until`
