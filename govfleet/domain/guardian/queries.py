"""The guardian's answers to queries (`status`, `governance`, `alerts`, `events`, `rules`),
read from its state in the shapes of `views`."""

from __future__ import annotations

from govfleet.domain.guardian.book import GuardianBook
from govfleet.domain.guardian.levels import GREEN_LEVELS, SEVERITY, UNKNOWN_LEVEL, round2, to_decimal
from govfleet.domain.guardian.views import (
    AlertsResult,
    EventsResult,
    ForensicAuditView,
    GovernanceResult,
    GuardianStatus,
    PauseView,
    ResumeRequirements,
    RulesResult,
    rules_view,
)


def _whole(votes: int | float) -> int | None:
    """A vote count as the integer it is; None for a fractional count kept by a guardian from
    before counts had to be whole (the governance answer declares integers)."""
    return int(votes) if float(votes).is_integer() else None


class GuardianQueries(GuardianBook):
    """What the workflow's queries answer."""

    def status(self) -> GuardianStatus:
        active = sorted(self.active_pauses(), key=lambda p: p.paused_at)
        return GuardianStatus(
            monitoring_active=True,
            last_check=self.state.last_check,
            check_interval_seconds=self.interval_seconds(),
            current_holder_control=round2(self.current_h()),
            governance_level=self.state.level or UNKNOWN_LEVEL,
            system_status=self.system_status(),
            paused=bool(active),
            alerts_active=len(self.open_alerts()),
            paused_since=self.paused_since(),
            pauses=[
                PauseView(
                    pause_key=p.key,
                    scope=p.scope,
                    pause_type=p.pause_type,
                    emergency=p.emergency,
                    since=p.paused_at,
                    reason=p.reason,
                    paused_by=p.paused_by or ("guardian" if p.pause_type == "automatic" else "admin"),
                    holder_control_at_pause=p.holder_control_at_pause,
                    targets=list(p.targets),
                )
                for p in active
            ],
            resume_requires=(
                ResumeRequirements(
                    quorum=self.resume_quorum(),
                    admins=len(self.config.admins),
                    governance_approval=any(p.emergency for p in active),
                    holder_control_at_least=float(self.rules.critical_threshold),
                )
                if active
                else None
            ),
            open_alerts=[
                a.alert_type for a in sorted(self.open_alerts(), key=lambda a: -SEVERITY.get(a.alert_type, -1))
            ],
            forensic_audit=self.forensic_audit(),
            unreachable_targets=sorted(self.state.unreachable),
        )

    def forensic_audit(self) -> ForensicAuditView | None:
        audit = self.state.forensic
        if audit is None:
            return None
        return ForensicAuditView(
            required=audit.open,
            required_since=audit.required_at,
            pause_key=audit.pause_key,
            completed_at=audit.completed_at,
            completed_by=audit.completed_by,
            report=audit.report,
        )

    def governance(self) -> GovernanceResult:
        r = self.state.reading
        level = self.state.level or UNKNOWN_LEVEL
        return GovernanceResult(
            holder_control_percentage=round2(r.holder_control_percentage) if r else None,
            total_votes=_whole(r.total_votes) if r else None,
            holder_votes=_whole(r.holder_votes) if r else None,
            seller_votes=_whole(r.seller_votes) if r else None,
            threshold_level=level,
            margin_above_critical=(
                float(round(to_decimal(r.holder_control_percentage) - self.rules.critical_threshold, 2)) if r else None
            ),
            is_stable=level in GREEN_LEVELS,
            last_updated=r.last_updated if r else None,
        )

    def alerts(self, limit: int = 20) -> AlertsResult:
        rows = sorted(self.state.alerts, key=lambda a: (a.timestamp, a.key), reverse=True)
        return AlertsResult(alerts=[a.view() for a in rows[: max(0, limit)]])

    def events(self, limit: int = 50) -> EventsResult:
        recent = self.state.events[-max(0, limit) :] if limit > 0 else []
        return EventsResult(events=[e.view() for e in reversed(recent)])

    def rules_view(self) -> RulesResult:
        return rules_view(self.rules)
