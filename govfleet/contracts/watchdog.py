"""Workflow `GovernanceWatchdog` (id `governance-watchdog`): watches the declared long-lived
workflows and the heartbeat, and tells operators when one is down (see docs/watchdog.md).

- Signal `configure` (`WatchdogConfig`): a new watch list from repo-spec (sent by the reconciler).
- Query `status` (`WatchdogStatus`): open incidents, last look, what each watched workflow was.
- Local activity `watchdog_inspect` (`InspectInput` → `Observation`): describes the watched
  workflows in Temporal and reads the last successful heartbeat from the database.
- Activity `watchdog_record` (`RecordIncidentsInput`): writes opened / resolved incidents.
- Notifications go through `send_notification` with the incident's idempotency key.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from govfleet.domain.notifications import NotificationRequest
from govfleet.domain.watchdog import (
    WATCHDOG_WORKFLOW_ID,
    HeartbeatWatch,
    Incident,
    IncidentChange,
    Observation,
    WatchdogConfig,
    WatchdogState,
    WatchedWorkflow,
)

__all__ = [
    "CONFIGURE_SIGNAL",
    "INSPECT_ACTIVITY",
    "RECORD_ACTIVITY",
    "STATUS_QUERY",
    "WATCHDOG_WORKFLOW",
    "WATCHDOG_WORKFLOW_ID",
    "HeartbeatWatch",
    "Incident",
    "IncidentChange",
    "InspectInput",
    "Observation",
    "RecordIncidentsInput",
    "WatchdogConfig",
    "WatchdogInput",
    "WatchdogState",
    "WatchdogStatus",
    "WatchedWorkflow",
]

WATCHDOG_WORKFLOW = "GovernanceWatchdog"

CONFIGURE_SIGNAL = "configure"
STATUS_QUERY = "status"

INSPECT_ACTIVITY = "watchdog_inspect"
RECORD_ACTIVITY = "watchdog_record"


class WatchdogInput(BaseModel):
    """Start input and continue-as-new carrier."""

    config: WatchdogConfig
    state: WatchdogState | None = None
    notifications: list[NotificationRequest] = Field(default_factory=list)  # not yet sent at continue-as-new
    unrecorded: list[IncidentChange] = Field(default_factory=list)  # not yet written at continue-as-new
    runs: int = 0
    continue_as_new_after_events: int = Field(default=2000, ge=100)


class InspectInput(BaseModel):
    workflow_ids: list[str]
    heartbeat: bool = True  # read the last successful heartbeat too


class RecordIncidentsInput(BaseModel):
    changes: list[IncidentChange]


class WatchdogStatus(BaseModel):
    checks: int
    last_check_at: datetime | None
    open: list[Incident]
    workflows: dict[str, str]  # workflow id -> last observed status (RUNNING, TERMINATED, NOT_STARTED, ...)
    last_heartbeat_ok_at: datetime | None
    runs: int
