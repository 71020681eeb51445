"""Workflow `GovernanceGuardian` (id `governance-guardian`, or `governance-guardian-<name>`
for a named guardian in repo-spec): watches holder control and trips the circuit breakers
(see docs/guardian.md; admin actions: docs/admin-actions.md).

Handlers:
- signals `reading` (`ReadingPayload`, a pushed tracker reading), `pause` / `resume` /
  `forensic_audit` (bodies as `PauseInput` / `ResumeInput` / `ForensicAuditInput`, signed; a
  rejection is audited), `configure` (`GuardianConfigureInput`, when repo-spec changed). Every
  payload is taken raw and decoded by the workflow, so one that cannot be decoded is audited;
- updates `pause` / `resume` / `forensic_audit`: the same admin actions, failing with the reason
  (`ApplicationError` type `AdminRejected`, the code as details) when rejected;
- queries `status`, `governance`, `alerts`, `events`, `rules` (answered from workflow state),
  `stats` (loop counters) and `config`.

The start input `GuardianInput` is also the continue-as-new carrier: the whole state, unsent
work and unprocessed signals travel in it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from govfleet.domain.guardian.models import (
    GUARDIAN_WORKFLOW_ID,
    BreakerCall,
    BreakerProbe,
    ForensicAuditInput,
    ForensicAuditResult,
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
    "FORENSIC_AUDIT_SIGNAL",
    "FORENSIC_AUDIT_UPDATE",
    "GOVERNANCE_QUERY",
    "GUARDIAN_TASK_TIMEOUT",
    "GUARDIAN_WORKFLOW",
    "GUARDIAN_WORKFLOW_ID",
    "PAUSE_SIGNAL",
    "PAUSE_UPDATE",
    "PROBE_BREAKER_ACTIVITY",
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
    "BreakerProbe",
    "BreakerProbeResult",
    "EventsQueryInput",
    "EventsResult",
    "FetchReadingInput",
    "FetchReadingResult",
    "ForensicAuditInput",
    "ForensicAuditResult",
    "GovernanceResult",
    "GuardianConfig",
    "GuardianConfigureInput",
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
FORENSIC_AUDIT_SIGNAL = "forensic_audit"
PAUSE_UPDATE = "pause"
RESUME_UPDATE = "resume"
FORENSIC_AUDIT_UPDATE = "forensic_audit"
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
PROBE_BREAKER_ACTIVITY = "guardian_probe_breaker"


def guardian_workflow_id(name: str | None = None) -> str:
    """The guardian's workflow id: `governance-guardian`, or `governance-guardian-<name>`."""
    return GUARDIAN_WORKFLOW_ID if not name else f"{GUARDIAN_WORKFLOW_ID}-{name}"


CommandKind = Literal["reading", "pause", "resume", "configure", "forensic_audit"]


class PendingCommand(BaseModel):
    """A signal not yet processed when the run continued as new: its decoded payload in `raw`
    (runs from before raw payloads carried the typed fields)."""

    kind: CommandKind
    reading: ReadingPayload | None = None
    pause: PauseInput | None = None
    resume: ResumeInput | None = None
    configure: GuardianConfig | None = None
    raw: Any = None
    undecodable: str | None = None  # the payload could not be decoded: why (audited when processed)


class GuardianConfigureInput(BaseModel):
    """Signal `configure`: the whole configuration and its hash (`govfleet.domain.declared.config_hash`),
    as the reconciler sends them; anything else is refused and audited (docs/security.md)."""

    config: GuardianConfig
    config_hash: str


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
    state_bytes: int = 0  # size of the state carried across continue-as-new (JSON), bounded whatever arrives


class BreakerProbeResult(BaseModel):
    """Result of activity `guardian_probe_breaker`: `error` None when the target answered 2xx."""

    target: str
    error: str | None = None


class BreakerCallResult(BaseModel):
    """Result of activity `guardian_call_breaker`."""

    target: str
    action: str
    status_code: int
    duplicate: bool | None = None
