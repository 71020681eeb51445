"""The guardian's state, carried whole across continue-as-new, and the effects of a decision
(audit rows, breaker calls, notifications) that the workflow carries out. See docs/guardian.md.

Idempotency: every audit row, pause and notification has a key built from the guardian id,
the state's `chain` (fixed at the first run) and a counter, so a retried write or call is
never applied twice; a breaker call's key is `<guardian id>:<pause id>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from govfleet.domain.admin_signing import GovernanceApproval, SigningDomain
from govfleet.domain.guardian.levels import GuardianRules, round2
from govfleet.domain.guardian.readings import Reading, TrackerFailure
from govfleet.domain.guardian.views import AlertView, EventView
from govfleet.domain.notifications import NotificationRequest
from govfleet.domain.secret_ref import SecretRef

GUARDIAN_WORKFLOW_ID = "governance-guardian"  # the default guardian's workflow id


class BreakerTarget(BaseModel):
    """A service the guardian pauses and resumes (repo-spec `guardian.breakers`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    scope: Literal["redemptions", "everything"]
    token: SecretRef | None = None


class GuardianConfig(BaseModel):
    """Everything the guardian workflow needs from repo-spec (passed in its input so
    that its history says which tracker and targets it used)."""

    model_config = ConfigDict(frozen=True)

    guardian_id: str = GUARDIAN_WORKFLOW_ID
    rules: GuardianRules = GuardianRules()
    tracker_url: str = "http://127.0.0.1:8922"
    tracker_timeout_seconds: float = 2.0
    staleness_seconds: int = 120
    failures_before_alert: int = 3
    breakers: list[BreakerTarget] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)
    # The EIP-712 domain admin signatures are bound to (repo-spec `cogni_dao`; docs/admin-actions.md).
    signing_domain: SigningDomain = SigningDomain()
    resume_quorum: int = 2
    signature_max_age_seconds: int = 900
    # Workflow mechanics.
    continue_as_new_after_events: int = 2500  # well before the server's 4,096 suggestion
    audit_flush_seconds: int = 5  # routine check rows of fast (1 s) checks are written in batches this old
    # consecutive failed audit writes, then database_unavailable
    audit_failures_before_alert: int = Field(default=2, ge=1)
    restore_timeout_seconds: float = Field(
        default=15.0, gt=0
    )  # a fresh start reads its recorded state this long at most
    recent_events: int = 200
    recent_alerts: int = 100
    upsert_search_attributes: bool = True


class Alert(BaseModel):
    key: str  # idempotency key of its governance_alerts row
    id: int | None = None  # database id, once written
    alert_type: str
    timestamp: datetime
    holder_control: float | None
    message: str
    action_taken: str
    resolved: bool = False
    resolved_at: datetime | None = None
    notified_at: datetime | None = None
    notifications: int = 0
    clear_streak: int = 0

    def view(self) -> AlertView:
        return AlertView(
            id=self.id,
            timestamp=self.timestamp,
            alert_type=self.alert_type,
            holder_control=round2(self.holder_control),
            message=self.message,
            action_taken=self.action_taken,
            resolved=self.resolved,
            resolved_at=self.resolved_at,
        )


class AuditEvent(BaseModel):
    key: str  # idempotency key of its governance_events row
    id: int | None = None
    timestamp: datetime
    event_type: str  # governance_check|threshold_crossed|alert_resolved|pause|resume|tracker_error|admin_rejected
    holder_control: float | None
    threshold_level: str
    action: str
    details: str | None = None

    def view(self) -> EventView:
        return EventView(
            id=self.id,
            timestamp=self.timestamp,
            event_type=self.event_type,
            holder_control=round2(self.holder_control),
            threshold_level=self.threshold_level,
            action=self.action,
            details=self.details,
        )


class Pause(BaseModel):
    pause_id: str
    key: str  # `<guardian id>:<pause id>`: breaker idempotency key and system_pauses.pause_key
    pause_type: Literal["automatic", "manual"]
    scope: Literal["redemptions", "everything"]
    emergency: bool = False  # automatic at the emergency level: resuming needs a governance vote
    paused_at: datetime
    reason: str
    holder_control_at_pause: float | None
    targets: list[str] = Field(default_factory=list)
    paused_by: str | None = None  # the signing admins of a manual pause (None: the guardian)
    resumed_at: datetime | None = None
    resumed_by: str | None = None
    resume_reason: str | None = None
    resume_approval: str | None = None  # the governance approval signed into the resume ("<ref> <url>")

    @property
    def active(self) -> bool:
        return self.resumed_at is None


class BreakerCall(BaseModel):
    """One call to a breaker target (activity `guardian_call_breaker`)."""

    guardian_id: str
    target: str
    url: str
    action: Literal["pause", "resume"]
    idempotency_key: str
    scope: str
    reason: str
    holder_control: float | None
    token_ref: str | None = None
    requested_at: datetime


class ForensicAudit(BaseModel):
    """After an emergency pause a forensic audit is required, until an admin signs its completion
    with a reference to the report (docs/guardian.md, "Forensic audit")."""

    pause_key: str  # the emergency pause that required it
    required_at: datetime
    completed_at: datetime | None = None
    completed_by: str | None = None
    report: str | None = None

    @property
    def open(self) -> bool:
        return self.completed_at is None


class BreakerProbe(BaseModel):
    """A read-only check that a breaker target answers (`GET {url}/admin/status`), made when the
    guardian enters warning so that a pause does not fail when it is needed."""

    guardian_id: str
    target: str
    url: str
    token_ref: str | None = None


class Counters(BaseModel):
    event: int = 0
    alert: int = 0
    pause: int = 0
    notify: int = 0


class GuardianState(BaseModel):
    """All of the guardian's memory; carried whole across continue-as-new."""

    chain: str  # fixed at the first run; makes idempotency keys unique per guardian lifetime
    level: str | None = None  # effective level (see GuardianCore)
    raw_level: str | None = None
    reading: Reading | None = None
    last_check: datetime | None = None
    last_valid_check: datetime | None = None
    last_poll_at: datetime | None = None  # the last time the guardian itself fetched a reading
    consecutive_failures: int = 0
    last_error: TrackerFailure | None = None
    alerts: list[Alert] = Field(default_factory=list)  # open ones plus the most recent resolved
    events: list[AuditEvent] = Field(default_factory=list)  # most recent audit events
    pauses: list[Pause] = Field(default_factory=list)  # active ones plus the most recent resumed
    used_nonces: dict[str, datetime] = Field(default_factory=dict)  # nonce -> expiry
    seq: Counters = Field(default_factory=Counters)
    checks: int = 0
    published: dict[str, str] = Field(default_factory=dict)  # search attributes last upserted
    audit_failures: int = 0  # consecutive failed audit writes
    audit_failing_since: datetime | None = None
    audit_last_failure: datetime | None = None
    audit_alerted: bool = False  # database_unavailable sent for the current run of failures
    forensic: ForensicAudit | None = None  # the last forensic audit required (open or completed)
    unreachable: dict[str, str] = Field(default_factory=dict)  # breaker target -> why (failed probe or call)
    # Targets removed from the configuration while a pause holds them: a resume still reaches them.
    retired_targets: dict[str, BreakerTarget] = Field(default_factory=dict)


class AlertResolution(BaseModel):
    key: str
    resolved_at: datetime


class RecordBatch(BaseModel):
    """Audit rows for one transaction (activity `guardian_record`)."""

    guardian_id: str
    events: list[AuditEvent] = Field(default_factory=list)
    alerts_opened: list[Alert] = Field(default_factory=list)
    alerts_resolved: list[AlertResolution] = Field(default_factory=list)
    pauses_opened: list[Pause] = Field(default_factory=list)
    pauses_resumed: list[Pause] = Field(default_factory=list)
    nonces_used: dict[str, datetime] = Field(default_factory=dict)  # admin nonce -> signature expiry
    forensic: list[ForensicAudit] = Field(default_factory=list)  # required or completed forensic audits

    def routine(self) -> bool:
        """Only governance_check events: nothing that must be written at once."""
        return not (
            self.alerts_opened
            or self.alerts_resolved
            or self.pauses_opened
            or self.pauses_resumed
            or self.nonces_used
            or self.forensic
        ) and all(e.event_type == "governance_check" for e in self.events)

    def empty(self) -> bool:
        return not (
            self.events
            or self.alerts_opened
            or self.alerts_resolved
            or self.pauses_opened
            or self.pauses_resumed
            or self.nonces_used
            or self.forensic
        )

    def merged(self, later: RecordBatch) -> RecordBatch:
        return RecordBatch(
            guardian_id=self.guardian_id,
            events=self.events + later.events,
            alerts_opened=self.alerts_opened + later.alerts_opened,
            alerts_resolved=self.alerts_resolved + later.alerts_resolved,
            pauses_opened=self.pauses_opened + later.pauses_opened,
            pauses_resumed=self.pauses_resumed + later.pauses_resumed,
            nonces_used={**self.nonces_used, **later.nonces_used},
            forensic=self.forensic + later.forensic,
        )


class RestoreInput(BaseModel):
    """Activity `guardian_restore`: what a guardian started afresh reads back from the database."""

    guardian_id: str
    now: datetime  # nonces whose signature expired before this are not restored


class RestoredAlert(BaseModel):
    key: str
    id: int
    alert_type: str
    timestamp: datetime
    holder_control: float | None
    message: str
    action_taken: str


class RestoredPause(BaseModel):
    key: str  # `<guardian id>:<pause id>`
    pause_type: Literal["automatic", "manual"]
    scope: Literal["redemptions", "everything"]
    emergency: bool | None = None  # None: written before the column existed
    paused_at: datetime
    reason: str
    holder_control_at_pause: float | None
    targets: list[str] | None = None  # None: written before the column existed
    acknowledged: list[str] = Field(default_factory=list)  # targets that answered the pause call with 2xx


class RestoredResume(BaseModel):
    """A recent resume that some of its targets never acknowledged."""

    key: str
    scope: Literal["redemptions", "everything"]
    targets: list[str]
    resumed_at: datetime
    resumed_by: str | None = None
    resume_reason: str | None = None
    acknowledged: list[str] = Field(default_factory=list)  # targets that answered the resume call with 2xx


class RestoreResult(BaseModel):
    """Result of `guardian_restore`: the open alerts, the active pauses, the recent resumes some
    target never acknowledged, and the unexpired admin nonces recorded for this guardian id."""

    alerts: list[RestoredAlert] = Field(default_factory=list)
    pauses: list[RestoredPause] = Field(default_factory=list)
    resumes: list[RestoredResume] = Field(default_factory=list)
    nonces: dict[str, datetime] = Field(default_factory=dict)
    forensic: ForensicAudit | None = None  # the last one required, while it is open

    def empty(self) -> bool:
        return not (self.alerts or self.pauses or self.resumes or self.nonces or self.forensic)


class RecordResult(BaseModel):
    event_ids: dict[str, int] = Field(default_factory=dict)
    alert_ids: dict[str, int] = Field(default_factory=dict)


class Effects(BaseModel):
    record: RecordBatch
    breaker_calls: list[BreakerCall] = Field(default_factory=list)
    notifications: list[NotificationRequest] = Field(default_factory=list)
    probes: list[BreakerProbe] = Field(default_factory=list)
    search_attributes: dict[str, str] | None = None  # {"GovernanceLevel": .., "SystemStatus": ..} when changed

    def record_before_dispatch(self) -> bool:
        """Whether the audit rows must be written before the breaker calls go out: always when
        there are breaker calls, so that a pause or resume is in the database before any target
        hears of it (one idempotency key per decision, whenever the guardian is interrupted;
        docs/guardian.md, "Restart after terminate")."""
        return bool(self.breaker_calls)


class AdminRejected(Exception):
    """An admin action was refused; `code` says why (an AuthorizationError code, or
    not_paused, governance_unverified, holder_control_unknown, unsafe_to_resume,
    no_forensic_audit)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


class PauseInput(BaseModel):
    """Body of signal/update `pause` (= `POST /guardian/pause`)."""

    reason: str = ""
    authorization: str | list[str] = ""


class PauseResult(BaseModel):
    paused: bool
    paused_at: datetime
    reason: str
    resume_requires: str  # admin_approval | governance_vote


class ResumeInput(BaseModel):
    """Body of signal/update `resume` (= `POST /guardian/resume`); `reason` is optional
    and must be the reason the admins signed (`""` when none). After an emergency pause the
    DAO's decision, `governance_approval`, must be signed into every token; `governance_verified`
    is accepted and means nothing (runs from before the signed approval still read it)."""

    authorization: str | list[str] = ""
    governance_verified: bool = False
    governance_approval: GovernanceApproval | None = None
    reason: str = ""


class ForensicAuditInput(BaseModel):
    """Body of signal/update `forensic_audit` (= `POST /guardian/forensic-audit`): an admin signs
    the forensic audit's completion (action `complete_forensic_audit`, the report as the reason)."""

    report: str = ""
    authorization: str | list[str] = ""


class ForensicAuditResult(BaseModel):
    completed_at: datetime
    completed_by: str
    report: str
    pause_key: str


class ResumeResult(BaseModel):
    paused: bool
    resumed_at: datetime
    current_holder_control: float | None
    safe_to_resume: bool
