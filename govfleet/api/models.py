"""Request and response bodies of the HTTP API.

The guardian models are the documented shapes field for field (docs/guardian.md); datetimes are
ISO 8601 UTC with a `Z` suffix. Holder-control figures are percentages (0-100) as JSON numbers.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from govfleet.domain.status import GovernanceStatusExtended, UtcDatetime, to_utc


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _In(BaseModel):
    # Strict: a body is refused unless it has exactly the documented JSON types (no "60" for 60).
    model_config = ConfigDict(extra="forbid", strict=True)


# --- the guardian's endpoints ----------------------------------------------------------------


class ActivePauseOut(_Out):
    pause_key: str
    scope: str = Field(description="redemptions|everything")
    pause_type: str = Field(description="automatic|manual")
    emergency: bool
    since: UtcDatetime
    reason: str
    paused_by: str = Field(description='"guardian" for an automatic pause, else the signing admins')
    holder_control_at_pause: float | None = None
    targets: list[str]


class ResumeRequirementsOut(_Out):
    quorum: int
    admins: int
    governance_approval: bool
    holder_control_at_least: float


class ForensicAuditStatusOut(_Out):
    required: bool
    required_since: UtcDatetime | None = None
    pause_key: str | None = None
    completed_at: UtcDatetime | None = None
    completed_by: str | None = None
    report: str | None = None


class GuardianStatusOut(_Out):
    monitoring_active: bool
    last_check: UtcDatetime | None = None
    check_interval_seconds: int
    current_holder_control: float | None = None
    governance_level: str = Field(
        description="excellent|good|acceptable|caution|warning|critical|emergency (or unknown)"
    )
    system_status: str = Field(description="operational|redemptions_paused|fully_paused")
    paused: bool
    alerts_active: int
    # Beyond the seed's shape: the incident, when there is one (docs/guardian.md, "Status").
    paused_since: UtcDatetime | None = None
    pauses: list[ActivePauseOut] = Field(default_factory=list)
    resume_requires: ResumeRequirementsOut | None = None
    open_alerts: list[str] = Field(default_factory=list)
    forensic_audit: ForensicAuditStatusOut | None = None
    unreachable_targets: list[str] = Field(default_factory=list)


class GovernanceMetricsOut(_Out):
    holder_control_percentage: float | None = None
    total_votes: int | None = None
    holder_votes: int | None = None
    seller_votes: int | None = None
    threshold_level: str
    margin_above_critical: float | None = None
    is_stable: bool
    last_updated: UtcDatetime | None = None


class AlertOut(_Out):
    id: int
    timestamp: UtcDatetime
    alert_type: str = Field(description="caution|warning|critical|emergency|tracker_unavailable")
    holder_control: float | None = None
    message: str
    action_taken: str
    resolved: bool
    resolved_at: UtcDatetime | None = None


class AlertsOut(_Out):
    alerts: list[AlertOut]


class EventOut(_Out):
    id: int
    timestamp: UtcDatetime
    event_type: str = Field(
        description="governance_check|threshold_crossed|pause|resume|... (the guardian's audit log)"
    )
    holder_control: float | None = None
    threshold_level: str
    action: str
    details: str | None = None


class EventsOut(_Out):
    events: list[EventOut]


Authorization = str | list[str]


class PauseIn(_In):
    reason: str = Field(min_length=1, max_length=2000, description="why the system is paused (signed verbatim)")
    authorization: Authorization = Field(
        description="EIP-712 admin authorization token(s) `<nonce>.<expiry>.<0x signature>` (`govfleet sign "
        "pause`); one string (several tokens separated by spaces or commas) or a list of strings"
    )


class PauseOut(_Out):
    paused: bool
    paused_at: UtcDatetime
    reason: str
    resume_requires: str


class GovernanceApprovalIn(_In):
    reference: str = Field(
        min_length=1, max_length=200, description="the DAO's decision: a proposal id or a transaction hash"
    )
    url: str = Field(max_length=500, description="where members read it (http or https)")


class ResumeIn(_In):
    authorization: Authorization = Field(
        description="EIP-712 admin authorization token(s), as for pause; after an emergency pause a quorum, each "
        "signed over `governance_approval` (`govfleet sign resume --approval-ref … --approval-url …`)"
    )
    governance_approval: GovernanceApprovalIn | None = Field(
        None, description="the DAO's approval, signed into every token: required after an emergency pause"
    )
    governance_verified: bool = Field(False, description="accepted and ignored: the approval is what is signed")
    reason: str = Field("", max_length=2000, description="optional; signed verbatim (empty when not given)")


class ForensicAuditIn(_In):
    report: str = Field(
        min_length=1, max_length=2000, description="a reference to the forensic audit's report (signed verbatim)"
    )
    authorization: Authorization = Field(
        description="an admin's EIP-712 authorization of action `complete_forensic_audit` with the report as its "
        "reason (`govfleet sign complete_forensic_audit --report …`)"
    )


class ForensicAuditOut(_Out):
    completed_at: UtcDatetime
    completed_by: str
    report: str
    pause_key: str = Field(description="the emergency pause that required the audit")


class ResumeOut(_Out):
    paused: bool
    resumed_at: UtcDatetime
    current_holder_control: float | None = None
    safe_to_resume: bool


class AdminRejectionOut(_Out):
    window_start: UtcDatetime = Field(description="the minute these rejections fall in")
    source: str = Field(
        description="the client address (`*`: the addresses past the per-minute limit of addresses, counted together)"
    )
    action: str = Field(description="pause|resume")
    code: str = Field(
        description="the rejection code (malformed, expired, foreign, replayed, invalid_json, or the guardian's: "
        "not_paused, unsafe_to_resume, ...)"
    )
    count: int
    limited: int = Field(description="of those, answered 429 (the address or a signer was over its limit)")
    sources: int = Field(description="the distinct client addresses this row counts (1 unless `source` is `*`)")
    first_at: UtcDatetime
    last_at: UtcDatetime
    sample: str = Field(description="the first rejection message of the minute (at most 200 characters)")


class AdminRejectionsOut(_Out):
    rejections: list[AdminRejectionOut]


class RulesOut(_Out):
    critical_threshold: float
    caution_threshold: float
    warning_threshold: float
    pause_redemptions_at: float
    pause_system_at: float
    monitoring_interval_normal: int
    monitoring_interval_caution: int
    monitoring_interval_critical: int


class WorkflowHealthOut(_Out):
    workflow_id: str
    kind: Literal["guardian", "status", "watchdog"]
    running: bool | None = Field(description="null when Temporal did not answer")
    status: str = Field(description="RUNNING, TERMINATED, FAILED, ..., NOT_STARTED, or UNKNOWN")
    tracker_url: str | None = Field(None, description="guardians: the tracker the running guardian uses")
    tracker_connected: bool | None = None


class IncidentOut(_Out):
    kind: str = Field(description="guardian_down | workflow_down | workflow_stuck | heartbeat_missed")
    subject: str
    opened_at: UtcDatetime
    details: str


class ChannelStateOut(_Out):
    name: str = Field(description="never a secret: apprise:${VAR}, apprise:NOTIFY_URLS, webhook, slack:…, email:…")
    configured: bool
    state: Literal["ok", "failing", "unused"] = Field(description="unused: configured, never used yet")
    last_delivered_at: UtcDatetime | None = None
    last_failed_at: UtcDatetime | None = None
    last_error: str | None = Field(None, description="while failing: the channel's last error")
    consecutive_failures: int = 0


class PendingNoticeOut(_Out):
    idempotency_key: str
    kind: str
    title: str
    created_at: UtcDatetime
    attempts: int
    last_attempt_at: UtcDatetime
    next_attempt_at: UtcDatetime = Field(description="the heartbeat sends it again from then on")
    last_error: str


class NotificationStateOut(_Out):
    scope: str = Field(description="the guardian whose channels these are (the heartbeat's: the `guardian` block's)")
    label: str = Field("", description="how messages name it (the fleet's, when the file declares no such guardian)")
    state: Literal["ok", "failing", "none", "declared_none"]
    channels: list[ChannelStateOut] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="configured channels whose secret is not set")
    declared_none: bool = Field(False, description="NOTIFY_URLS=none: no channel, on purpose")
    pending_urgent: int = Field(0, description="urgent notices that reached nobody yet")
    pending: list[PendingNoticeOut] = Field(default_factory=list, description="the oldest pending ones")
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class HealthOut(_Out):
    status: Literal["healthy", "degraded", "unhealthy"]
    monitoring_active: bool
    voting_tracker_connected: bool
    database: Literal["connected", "disconnected"]
    last_governance_check: UtcDatetime | None = None
    seconds_since_last_check: int | None = None
    workflows: list[WorkflowHealthOut] = Field(
        default_factory=list, description="every declared long-lived workflow: guardians, status, watchdog"
    )
    incidents: list[IncidentOut] = Field(default_factory=list, description="the watchdog's open incidents")
    problems: list[str] = Field(default_factory=list, description="why the status is not healthy, one line each")
    warnings: list[str] = Field(
        default_factory=list,
        description="said without degrading the status: notifications off on purpose (NOTIFY_URLS=none), a declared "
        "throw-away environment or the demo's public keys, a system tenant that cannot pay its runs",
    )
    throwaway_environment: bool = Field(
        False, description="GOVFLEET_THROWAWAY_ENVIRONMENT: publicly known keys are accepted as admins"
    )
    notifications: list[NotificationStateOut] = Field(
        default_factory=list, description="per guardian: whether its alerts reach anyone"
    )


class GuardianSummaryOut(_Out):
    workflow_id: str
    name: str | None = None
    running: bool | None
    tracker_url: str
    status: GuardianStatusOut | None = Field(None, description="its `status` query; null when it does not answer")


class GuardiansOut(_Out):
    guardians: list[GuardianSummaryOut]


def _whole_number(v: object) -> object:
    # A vote count written as 1200.0 is the whole number 1200 (as the guardian takes it); 1200.5 is not.
    return int(v) if isinstance(v, float) and v.is_integer() else v


VoteCount = Annotated[int, BeforeValidator(_whole_number), Field(ge=0, description="a whole number of votes")]


class ReadingIn(_In):
    """A tracker reading pushed to the guardian (the tracker's `/voting/governance` shape)."""

    holder_control_percentage: float = Field(ge=0, le=100)
    total_votes: VoteCount
    holder_votes: VoteCount
    seller_votes: VoteCount
    last_updated: datetime

    @field_validator("holder_control_percentage")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("holder_control_percentage must be a finite number")
        return v

    @field_validator("last_updated", mode="after")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("last_updated must carry a timezone (e.g. 2025-11-16T10:00:00Z)")
        return to_utc(v)

    @model_validator(mode="after")
    def _votes_add_up(self) -> ReadingIn:
        if self.holder_votes + self.seller_votes != self.total_votes:
            raise ValueError(
                f"holder_votes ({self.holder_votes}) + seller_votes ({self.seller_votes}) "
                f"must equal total_votes ({self.total_votes})"
            )
        return self


class ReadingAccepted(_Out):
    accepted: bool
    guardian: str


# --- the status surface ---------------------------------------------------------------------


class HolderControlStats(_Out):
    min: float
    avg: float
    max: float
    checks: int


class ActivityDay(_Out):
    date: date
    runs: int = Field(description="governance runs of the system tenant started that day (UTC)")
    runs_succeeded: int
    runs_failed: int = Field(description="runs that ended in error or were refused")
    credits_received: str = Field(description="credits added to the system tenant that day (bigint as string)")
    credits_spent: str = Field(description="credits charged to the system tenant that day (bigint as string)")
    holder_control: HolderControlStats | None = Field(
        description="from the guardian's governance checks; null when none"
    )


class ActivityOut(_Out):
    tenant: str
    days: int
    from_date: date
    to_date: date
    series: list[ActivityDay]


class Thresholds(_Out):
    caution: float
    warning: float
    critical: float
    emergency: float


class HolderControlPoint(_Out):
    timestamp: UtcDatetime = Field(description="start of the bucket")
    holder_control: float = Field(description="average over the bucket")
    min: float
    max: float
    checks: int


class HolderControlOut(_Out):
    hours: float
    bucket_seconds: int
    thresholds: Thresholds
    points: list[HolderControlPoint]


class HeartbeatOut(_Out):
    state: Literal["new", "up", "late", "down", "paused"]
    status: str | None = Field(None, description="the last heartbeat's status: ok|degraded|failed")
    last_heartbeat_at: UtcDatetime | None = None
    interval_seconds: int
    grace_seconds: int
    checks: dict | None = None
    alerts: list[str] = Field(default_factory=list)
    missed_since: UtcDatetime | None = Field(
        None, description="the watchdog's heartbeat_missed incident is open since then (state is `down`)"
    )


# --- the extended status's fleet part ---------------------------------------------------------


class GuardianOverviewOut(_Out):
    workflow_id: str
    name: str | None = None
    running: bool | None = Field(description="null when Temporal did not answer")
    status: GuardianStatusOut | None = Field(None, description="its `status` query; null when it does not answer")
    last_check_age_seconds: int | None = Field(None, description="how old its last check is")
    notifications: NotificationStateOut | None = None


class ToolPolicyOut(_Out):
    tool_allowlist: list[str] = Field(description="the tools the system tenant's agent runs may use (sent with each)")
    source: str = Field(description="what stored it (govfleet migrate, reconcile, a worker's start)")
    updated_at: UtcDatetime


class GovernanceStatusExtendedOut(GovernanceStatusExtended):
    """The extended status with the fleet's own state (docs/status.md, "Extended status")."""

    guardians: list[GuardianOverviewOut] = Field(default_factory=list)
    notifications: list[NotificationStateOut] = Field(
        default_factory=list, description="per guardian (and the `guardian` block's, for the heartbeat)"
    )
    problems: list[str] = Field(default_factory=list, description="notification problems (as in /health)")
    warnings: list[str] = Field(default_factory=list, description="as in /health")
    throwawayEnvironment: bool = False
    toolPolicy: ToolPolicyOut | None = None
