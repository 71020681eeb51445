"""What the guardian answers to queries (and the HTTP API serves): status, governance
metrics, alerts, events and rules, in the documented shapes (see docs/guardian.md)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from govfleet.domain.guardian.levels import UNKNOWN_LEVEL, GuardianRules, system_status_of


class PauseView(BaseModel):
    """An active pause, as the status tells it: what is paused, since when, by whom or by which
    reading, and why."""

    pause_key: str
    scope: str  # redemptions | everything
    pause_type: str  # automatic | manual
    emergency: bool
    since: datetime
    reason: str
    paused_by: str  # "guardian" (an automatic pause) or the signing admins' addresses
    holder_control_at_pause: float | None
    targets: list[str]


class ResumeRequirements(BaseModel):
    """What a resume needs now (docs/admin-actions.md)."""

    quorum: int  # distinct admin signatures
    admins: int  # admins configured
    governance_approval: bool  # the DAO's approval signed into the resume (after an emergency)
    holder_control_at_least: float  # the critical threshold, checked with a fresh reading


class ForensicAuditView(BaseModel):
    """After an emergency pause a forensic audit is required until an admin signs its completion."""

    required: bool
    required_since: datetime | None = None
    pause_key: str | None = None  # the emergency pause that required it
    completed_at: datetime | None = None
    completed_by: str | None = None
    report: str | None = None  # the reference to the report the completion was signed with


class GuardianStatus(BaseModel):
    monitoring_active: bool
    last_check: datetime | None
    check_interval_seconds: int
    current_holder_control: float | None
    governance_level: str
    system_status: str
    paused: bool
    alerts_active: int
    # Beyond the seed's shape (clients ignore what they do not know):
    paused_since: datetime | None = None  # since when the system is at its current system_status
    pauses: list[PauseView] = []
    resume_requires: ResumeRequirements | None = None  # None when not paused
    open_alerts: list[str] = []  # types of the open alerts, most severe first
    forensic_audit: ForensicAuditView | None = None  # None: never required
    unreachable_targets: list[str] = []  # breaker targets that failed their probe or a call


class GovernanceResult(BaseModel):
    holder_control_percentage: float | None
    total_votes: int | None
    holder_votes: int | None
    seller_votes: int | None
    threshold_level: str
    margin_above_critical: float | None
    is_stable: bool
    last_updated: datetime | None


class AlertView(BaseModel):
    id: int | None
    timestamp: datetime
    alert_type: str
    holder_control: float | None
    message: str
    action_taken: str
    resolved: bool
    resolved_at: datetime | None


class EventView(BaseModel):
    id: int | None
    timestamp: datetime
    event_type: str
    holder_control: float | None
    threshold_level: str
    action: str
    details: str | None


class AlertsResult(BaseModel):
    alerts: list[AlertView]


class EventsResult(BaseModel):
    events: list[EventView]


class RulesResult(BaseModel):
    critical_threshold: float
    caution_threshold: float
    warning_threshold: float
    pause_redemptions_at: float
    pause_system_at: float
    monitoring_interval_normal: int
    monitoring_interval_caution: int
    monitoring_interval_critical: int


def rules_view(r: GuardianRules) -> RulesResult:
    return RulesResult(
        critical_threshold=float(r.critical_threshold),
        caution_threshold=float(r.caution_threshold),
        warning_threshold=float(r.warning_threshold),
        pause_redemptions_at=float(r.critical_threshold),
        pause_system_at=float(r.emergency_threshold),
        monitoring_interval_normal=r.monitoring_interval_normal,
        monitoring_interval_caution=r.monitoring_interval_caution,
        monitoring_interval_critical=r.monitoring_interval_critical,
    )


def status_from_audit_log(
    *,
    last_check: datetime | None,
    holder_control: float | None,
    level: str | None,
    pause_scopes: list[str],
    alerts_active: int,
    rules: GuardianRules,
) -> GuardianStatus:
    """The status as the audit tables tell it, for when the guardian workflow does not answer:
    the last governance check, the open pauses and the unresolved alerts; not monitoring."""
    return GuardianStatus(
        monitoring_active=False,
        last_check=last_check,
        check_interval_seconds=rules.monitoring_interval_normal,
        current_holder_control=holder_control,
        governance_level=level or UNKNOWN_LEVEL,
        system_status=system_status_of(pause_scopes),
        paused=bool(pause_scopes),
        alerts_active=alerts_active,
    )
