"""Workflow `GovernanceGuardian` (id `governance-guardian`, or `governance-guardian-<name>`
for a named guardian in repo-spec): watches holder control and trips the circuit breakers
(see docs/guardian.md; admin actions: docs/admin-actions.md).

Handlers:
- signals `reading` (`ReadingPayload`, a pushed tracker reading), `pause` / `resume` (bodies
  as `PauseInput` / `ResumeInput`, signed; a rejection is audited), `configure`
  (`GuardianConfig`, when repo-spec changed);
- updates `pause` / `resume`: the same admin actions, failing with the reason
  (`ApplicationError` type `AdminRejected`, the code as details) when rejected;
- queries `status`, `governance`, `alerts`, `events`, `rules` (answered from workflow state),
  `stats` (loop counters) and `config`.

The start input `GuardianInput` is also the continue-as-new carrier: the whole state, unsent
work and unprocessed signals travel in it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from govfleet.domain.guardian.models import (
    GUARDIAN_WORKFLOW_ID,
    BreakerCall,
    GuardianConfig,
    GuardianState,
    PauseInput,
    PauseResult,
    RecordBatch,
    RecordResult,
    RestoredAlert,
    RestoredPause,
    RestoredResume,
    RestoreInput,
    RestoreResult,
    ResumeInput,
    ResumeResult,
)
from govfleet.domain.guardian.readings import FetchReadingInput, FetchReadingResult, ReadingPayload
from govfleet.domain.guardian.views import AlertsResult, EventsResult, GovernanceResult, GuardianStatus, RulesResult
from govfleet.domain.notifications import NotificationRequest

__all__ = [
    "ALERTS_QUERY",
    "CALL_BREAKER_ACTIVITY",
    "CONFIGURE_SIGNAL",
    "CONFIG_QUERY",
    "EVENTS_QUERY",
    "FETCH_READING_ACTIVITY",
    "GOVERNANCE_QUERY",
    "GUARDIAN_TASK_TIMEOUT",
    "GUARDIAN_WORKFLOW",
    "GUARDIAN_WORKFLOW_ID",
    "PAUSE_SIGNAL",
    "PAUSE_UPDATE",
    "READING_SIGNAL",
    "RECORD_ACTIVITY",
    "RESTORE_ACTIVITY",
    "RESUME_SIGNAL",
    "RESUME_UPDATE",
    "RULES_QUERY",
    "STATS_QUERY",
    "STATUS_QUERY",
    "AlertsQueryInput",
    "AlertsResult",
    "BreakerCall",
    "BreakerCallResult",
    "EventsQueryInput",
    "EventsResult",
    "FetchReadingInput",
    "FetchReadingResult",
    "GovernanceResult",
    "GuardianConfig",
    "GuardianInput",
    "GuardianStatus",
    "PauseInput",
    "PauseResult",
    "PendingCommand",
    "ReadingPayload",
    "RecordBatch",
    "RecordResult",
    "RestoreInput",
    "RestoreResult",
    "RestoredAlert",
    "RestoredPause",
    "RestoredResume",
    "ResumeInput",
    "ResumeResult",
    "RulesResult",
    "StatsResult",
    "StatusQueryInput",
    "guardian_workflow_id",
]

GUARDIAN_WORKFLOW = "GovernanceGuardian"
# The guardian's workflow task timeout, set whenever a guardian starts or continues as new: a
# task held by a worker that died is retried on another after this long (see docs/fleet.md).
GUARDIAN_TASK_TIMEOUT = timedelta(seconds=2)

READING_SIGNAL = "reading"
PAUSE_SIGNAL = "pause"
RESUME_SIGNAL = "resume"
CONFIGURE_SIGNAL = "configure"
PAUSE_UPDATE = "pause"
RESUME_UPDATE = "resume"
STATUS_QUERY = "status"
GOVERNANCE_QUERY = "governance"
ALERTS_QUERY = "alerts"
EVENTS_QUERY = "events"
RULES_QUERY = "rules"
STATS_QUERY = "stats"
CONFIG_QUERY = "config"

FETCH_READING_ACTIVITY = "guardian_fetch_reading"
RECORD_ACTIVITY = "guardian_record"
CALL_BREAKER_ACTIVITY = "guardian_call_breaker"
RESTORE_ACTIVITY = "guardian_restore"


def guardian_workflow_id(name: str | None = None) -> str:
    """The guardian's workflow id: `governance-guardian`, or `governance-guardian-<name>`."""
    return GUARDIAN_WORKFLOW_ID if not name else f"{GUARDIAN_WORKFLOW_ID}-{name}"


CommandKind = Literal["reading", "pause", "resume", "configure"]


class PendingCommand(BaseModel):
    """A signal not yet processed when the run continued as new."""

    kind: CommandKind
    reading: ReadingPayload | None = None
    pause: PauseInput | None = None
    resume: ResumeInput | None = None
    configure: GuardianConfig | None = None


class GuardianInput(BaseModel):
    """Start input and continue-as-new carrier: everything the guardian knows."""

    config: GuardianConfig
    state: GuardianState | None = None
    inbox: list[PendingCommand] = Field(default_factory=list)
    breaker_queue: list[BreakerCall] = Field(default_factory=list)
    notifications: list[NotificationRequest] = Field(default_factory=list)
    unrecorded: RecordBatch | None = None
    runs: int = 0  # how many times this guardian has continued as new


class AlertsQueryInput(BaseModel):
    limit: int = 20


class EventsQueryInput(BaseModel):
    limit: int = 50


class StatusQueryInput(BaseModel):
    pass


class StatsResult(BaseModel):
    checks: int
    runs: int
    history_length: int
    pending_breaker_calls: int
    pending_notifications: int
    unrecorded_rows: int
    used_nonces: int
    audit_failures: int = 0  # consecutive failed audit writes (PostgreSQL unreachable)


class BreakerCallResult(BaseModel):
    """Result of activity `guardian_call_breaker`."""

    target: str
    action: str
    status_code: int
    duplicate: bool | None = None
