"""Workflow `GovernanceStatus` (id `governance-status`): the long-lived read model behind the
status surface (see docs/status.md).

- Query `status` answers exactly `governance.status.v1` (`GovernanceStatusV1`); query
  `snapshot` gives the whole read model (`SnapshotQueryResult`), from which the HTTP API
  computes the upcoming runs with its own clock.
- Signal `update` (`StatusUpdate`) is how every area tells it about a change, with
  signal-with-start (`govfleet.status_client.tell_status`), so no sender depends on start-up
  order; every field is optional and a bad one is ignored, never raised.
- Activity `notify_status` is that signal-with-start, for workflows.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from govfleet.domain.status import (
    RECENT_LIMIT,
    GovernanceStatusV1,
    HeartbeatRecord,
    RunRecord,
    ScheduleEntry,
)

__all__ = [
    "NOTIFY_STATUS_ACTIVITY",
    "READ_SCHEDULES_ACTIVITY",
    "READ_STATUS_DB_ACTIVITY",
    "REFRESH_UPDATE",
    "SNAPSHOT_QUERY",
    "STATUS_CHANGED_ACTIVITY",
    "STATUS_QUERY",
    "STATUS_WORKFLOW",
    "STATUS_WORKFLOW_ID",
    "UPDATE_SIGNAL",
    "GovernanceStatusV1",
    "HeartbeatRecord",
    "ReadSchedulesInput",
    "ReadSchedulesResult",
    "ReadStatusDbInput",
    "ReadStatusDbResult",
    "RecentRun",
    "SnapshotQueryInput",
    "SnapshotQueryResult",
    "StatusQueryInput",
    "StatusState",
    "StatusUpdate",
    "StatusWorkflowInput",
]

STATUS_WORKFLOW = "GovernanceStatus"
STATUS_WORKFLOW_ID = "governance-status"

UPDATE_SIGNAL = "update"
STATUS_QUERY = "status"
SNAPSHOT_QUERY = "snapshot"

NOTIFY_STATUS_ACTIVITY = "notify_status"
READ_STATUS_DB_ACTIVITY = "status_read_db"
READ_SCHEDULES_ACTIVITY = "status_read_schedules"
STATUS_CHANGED_ACTIVITY = "status_changed"
REFRESH_UPDATE = "refresh"


# --- signal `update` ---------------------------------------------------------------------


class RecentRun(BaseModel):
    id: str
    title: str | None = None
    started_at: datetime
    last_activity: datetime
    status: str | None = None  # running | success | error | refused
    reason: str | None = None


class StatusUpdate(BaseModel):
    """What an area tells the status workflow (activity `notify_status`, delivered as signal
    `update` with signal-with-start). Every field is optional."""

    system_credits: str | None = None  # the system tenant's balance after a change (bigint as string)
    run: RecentRun | None = None  # a governance run started or finished
    schedules_changed: bool = False  # the reconciler changed schedules: re-read them
    heartbeat: dict | None = None  # the latest heartbeat CloudEvent's data (status, time, checks)
    source: str = Field("", description="who sent it, for the audit trail")


# --- the read model, input and queries ---------------------------------------------------


class StatusState(BaseModel):
    """Everything the status surface shows; carried across continue-as-new."""

    system_credits: str = "0"
    credits_known: bool = False  # False until the first database read or ledger update
    schedules: list[ScheduleEntry] = Field(default_factory=list)
    heartbeat_interval_seconds: int = 300
    heartbeat_grace_seconds: int = 60
    heartbeat_paused: bool = False
    heartbeat: HeartbeatRecord | None = None
    recent_runs: list[RunRecord] = Field(default_factory=list)
    rebuilt_at: datetime | None = None  # last successful database read
    schedules_read_at: datetime | None = None
    updated_at: datetime | None = None  # last change of any kind
    spec_error: str | None = None
    schedules_not_ours: list[str] = Field(default_factory=list)  # declared ids another owner holds
    read_error: str | None = None  # the last rebuild failed (the previous state is kept)
    updates_received: int = 0


class StatusWorkflowInput(BaseModel):
    """All fields default: senders start this workflow with `{}` (signal-with-start)."""

    state: StatusState | None = None
    refresh_seconds: int = Field(900, ge=1)  # everything read again (database and schedules)
    # Temporal's schedules described again (an operator's pause shows within this): docs/status.md
    schedules_refresh_seconds: int = Field(60, ge=1)
    debounce_seconds: float = Field(2.0, ge=0)
    max_history_events: int = Field(3000, ge=10)
    check_temporal_schedules: bool = True
    generation: int = 0  # how many times this read model has continued as new


class StatusQueryInput(BaseModel):
    at: datetime | None = None  # the caller's clock: upcoming runs are after max(at, workflow time)


class SnapshotQueryInput(BaseModel):
    pass


class SnapshotQueryResult(BaseModel):
    state: StatusState
    workflow_time: datetime
    generation: int


# --- activities the workflow calls ------------------------------------------------------


class ReadStatusDbInput(BaseModel):
    recent_limit: int = RECENT_LIMIT


class ReadStatusDbResult(BaseModel):
    system_credits: str
    recent_runs: list[RunRecord]
    heartbeat: HeartbeatRecord | None = None
    read_at: datetime


class ReadSchedulesInput(BaseModel):
    check_temporal: bool = True  # describe the schedules in Temporal (False: the repo-spec's crons, marked fallback)


class ReadSchedulesResult(BaseModel):
    schedules: list[ScheduleEntry]
    heartbeat_interval_seconds: int
    heartbeat_grace_seconds: int
    heartbeat_paused: bool = False
    spec_error: str | None = None  # the repo-spec on disk is invalid: the last good one was used
    not_ours: list[str] = Field(default_factory=list)  # declared ids that another owner holds (not shown)
