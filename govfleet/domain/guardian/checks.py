"""The check: a reading (polled, pushed, or fetched for a resume) or a failed one moves the
level, opens and resolves alerts with hysteresis and dwell, and pauses the breakers once per
crossing. See docs/guardian.md, "The decision table", "Alerts" and "Breakers"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from govfleet.domain.alerts_template import is_urgent
from govfleet.domain.guardian import notices
from govfleet.domain.guardian.book import GuardianBook
from govfleet.domain.guardian.levels import (
    ALERT_ACTIONS,
    LEVEL_ALERTS,
    SEVERITY,
    TRACKER_ALERT,
    alert_threshold,
    determine_level,
    fmt_pct,
    to_decimal,
)
from govfleet.domain.guardian.models import Alert, AlertResolution, BreakerProbe, BreakerTarget, ForensicAudit, Pause
from govfleet.domain.guardian.readings import InvalidReading, Reading, TrackerFailure, validate_reading
from govfleet.domain.text import clip

FAILURE_MESSAGE_LIMIT = 300  # characters of an invalid reading's message kept in the state


def _at_least_warning(level: str | None) -> bool:
    return level is not None and SEVERITY.get(level, -1) >= SEVERITY["warning"]


@dataclass(frozen=True)
class _PlannedPause:
    scope: Literal["redemptions", "everything"]
    emergency: bool
    reason: str
    targets: list[BreakerTarget]


class GuardianChecks(GuardianBook):
    """Readings in, level, alerts and automatic pauses out."""

    def on_fetch(
        self, reading: Reading | None, failure: TrackerFailure | None, now: datetime, source: str = "poll"
    ) -> None:
        if source == "poll":
            self.state.last_poll_at = now
        if reading is not None:
            self.on_reading(reading, now, source)
        else:
            self.on_invalid(failure or TrackerFailure(code="unreachable", message="no reading"), now, source)

    def on_push(self, payload: Mapping[str, Any], now: datetime, *, whole_votes: bool = True) -> Reading | None:
        """A pushed reading (signal `reading`): validated here, then checked at once."""
        try:
            reading = validate_reading(
                payload, now=now, staleness_seconds=self.config.staleness_seconds, whole_votes=whole_votes
            )
        except InvalidReading as exc:
            self.on_invalid(TrackerFailure(code=exc.code, message=exc.message), now, "push")
            return None
        self.on_reading(reading, now, "push")
        return reading

    def on_invalid(self, failure: TrackerFailure, now: datetime, source: str = "poll") -> None:
        # Kept in the state and the audit log: quoted, never whole (it may carry what anyone pushed).
        failure = TrackerFailure(code=clip(failure.code, 40), message=clip(failure.message, FAILURE_MESSAGE_LIMIT))
        st = self.state
        st.checks += 1
        st.last_check = now
        st.last_error = failure
        st.consecutive_failures += 1
        action = "none"
        if st.consecutive_failures >= self.config.failures_before_alert and self.open_alert(TRACKER_ALERT) is None:
            message = (
                f"Tracker unavailable: {st.consecutive_failures} consecutive invalid readings "
                f"(last: {failure.code}: {failure.message})"
            )
            alert = self._open_alert(now, TRACKER_ALERT, message, ALERT_ACTIONS[TRACKER_ALERT])
            action = "alert"
            urgent = st.level is not None and SEVERITY[st.level] >= SEVERITY["warning"]
            alert.notified_at = now
            alert.notifications += 1
            self._notify(
                now,
                TRACKER_ALERT,
                urgent,
                notices.tracker_unavailable(
                    self.config.guardian_id,
                    holder_control=self.current_h(),
                    action=alert.action_taken,
                    now=now,
                    system_status=self.system_status(),
                ),
                {"alert_type": TRACKER_ALERT, "failures": st.consecutive_failures, "error": failure.code},
            )
        self._event(now, "tracker_error", action, f"{source}: {failure.code}: {failure.message}")

    def on_reading(self, reading: Reading, now: datetime, source: str = "poll") -> None:
        """One valid check. The order of the steps is the order of the audit rows and of the
        idempotency-key counters; it must not change (running guardians replay it)."""
        st = self.state
        prev_level, prev_interval = st.level, self.interval_seconds()
        st.checks += 1
        st.reading = reading
        st.last_check = now
        st.last_valid_check = now
        st.consecutive_failures = 0
        st.last_error = None
        h = to_decimal(reading.holder_control_percentage)

        breached, resolved = self._alert_dwell(h)
        new_pauses = self._plan_pauses(h)
        st.raw_level = determine_level(h, self.rules)
        opened = self._open_level_alerts(now, breached, new_pauses)
        for alert in resolved:
            alert.resolved = True
            alert.resolved_at = now
            self._fx.record.alerts_resolved.append(AlertResolution(key=alert.key, resolved_at=now))
        st.level = self._effective_level()

        self._audit_check(now, source, h, prev_level, prev_interval, new_pauses, opened, resolved)
        for p in new_pauses:
            pause = self._pause(
                now, pause_type="automatic", scope=p.scope, emergency=p.emergency, reason=p.reason, targets=p.targets
            )
            if pause.emergency:
                self._require_forensic_audit(now, pause)
        self._notify_check(now, h, opened, resolved)
        self._trim_alerts()
        if _at_least_warning(st.level) and not _at_least_warning(prev_level):
            self._prepare_pause({c.target for c in self._fx.breaker_calls})

    def _require_forensic_audit(self, now: datetime, pause: Pause) -> None:
        """An emergency pause requires a forensic audit until an admin signs its completion (one
        open at a time: a second emergency before the completion is part of the same audit)."""
        if self.state.forensic is not None and self.state.forensic.open:
            return
        audit = ForensicAudit(pause_key=pause.key, required_at=now)
        self.state.forensic = audit
        self._fx.record.forensic.append(audit.model_copy())
        self._event(now, "forensic_audit", "required", f"forensic audit required after the emergency pause {pause.key}")

    def _prepare_pause(self, calling: set[str]) -> None:
        """Entering warning: check that every breaker target answers (a read-only probe), so that a
        pause does not fail when it is needed; a target already being called needs no probe."""
        for t in self.config.breakers:
            if t.name not in calling:
                self._fx.probes.append(
                    BreakerProbe(guardian_id=self.config.guardian_id, target=t.name, url=t.url, token_ref=t.token)
                )

    def _alert_dwell(self, h: Decimal) -> tuple[list[str], list[Alert]]:
        """Alert types newly breached (opened once the breaker decision is known), and open
        alerts that resolve now: the tracker alert at once, a level alert after h stayed at or
        above threshold + hysteresis for `clear_after_checks` checks (a check below resets)."""
        rules = self.rules
        breached: list[str] = []
        resolved: list[Alert] = []
        tracker_alert = self.open_alert(TRACKER_ALERT)
        if tracker_alert is not None:
            resolved.append(tracker_alert)
        for alert_type in LEVEL_ALERTS:
            threshold = alert_threshold(alert_type, rules)
            alert = self.open_alert(alert_type)
            if h < threshold:
                if alert is None:
                    breached.append(alert_type)
                else:
                    alert.clear_streak = 0
            elif alert is not None:
                if h >= threshold + rules.hysteresis:
                    alert.clear_streak += 1
                    if alert.clear_streak >= rules.clear_after_checks:
                        resolved.append(alert)
                else:
                    alert.clear_streak = 0
        return breached, resolved

    def _plan_pauses(self, h: Decimal) -> list[_PlannedPause]:
        """Pause exactly once per crossing (targets not already paused); never resume here."""
        paused = self.paused_targets()
        if h < self.rules.emergency_threshold and self.system_status() != "fully_paused":
            targets = [t for t in self.config.breakers if t.name not in paused]
            return [self._planned_pause("everything", True, h, targets)]
        if h < self.rules.critical_threshold and self.system_status() == "operational":
            targets = [t for t in self.config.breakers if t.scope == "redemptions" and t.name not in paused]
            return [self._planned_pause("redemptions", False, h, targets)]
        return []

    def _planned_pause(
        self, scope: Literal["redemptions", "everything"], emergency: bool, h: Decimal, targets: list[BreakerTarget]
    ) -> _PlannedPause:
        threshold = self.rules.emergency_threshold if emergency else self.rules.critical_threshold
        return _PlannedPause(
            scope=scope,
            emergency=emergency,
            targets=targets,
            reason=f"Holder control {fmt_pct(h)}% below {fmt_pct(threshold)}%",
        )

    def _open_level_alerts(self, now: datetime, breached: list[str], new_pauses: list[_PlannedPause]) -> list[Alert]:
        scopes = {p.scope for p in new_pauses}
        opened = []
        for alert_type in breached:
            threshold = alert_threshold(alert_type, self.rules)
            action = ALERT_ACTIONS[alert_type]
            if alert_type == "critical" and not scopes & {"redemptions", "everything"}:
                action = "redemptions_already_paused"
            if alert_type == "emergency" and "everything" not in scopes:
                action = "everything_already_paused"
            opened.append(
                self._open_alert(now, alert_type, f"Holder control dropped below {fmt_pct(threshold)}%", action)
            )
        return opened

    def _audit_check(
        self,
        now: datetime,
        source: str,
        h: Decimal,
        prev_level: str | None,
        prev_interval: int,
        new_pauses: list[_PlannedPause],
        opened: list[Alert],
        resolved: list[Alert],
    ) -> None:
        """The check's audit rows: the check, the crossing, the resolutions (the pauses follow)."""
        rules = self.rules
        new_interval = self.interval_seconds()
        if new_pauses:
            check_action = "pause"
        elif opened:
            check_action = "alert"
        else:
            check_action = "none"
        self._event(now, "governance_check", check_action, f"{source} interval={new_interval}s")
        if prev_level is not None and self.state.level != prev_level:
            if new_pauses:
                crossing_action = "pause_" + new_pauses[-1].scope
            elif opened:
                crossing_action = f"alert_{opened[-1].alert_type}"
            elif new_interval < prev_interval:
                crossing_action = "increased_monitoring"
            elif new_interval > prev_interval:
                crossing_action = "decreased_monitoring"
            else:
                crossing_action = "none"
            self._event(
                now, "threshold_crossed", crossing_action, f"{prev_level} -> {self.state.level} at {fmt_pct(h)}%"
            )
        for alert in resolved:
            if alert.alert_type == TRACKER_ALERT:
                why = "a valid reading arrived"
            else:
                why = (
                    f"holder control stayed at or above "
                    f"{fmt_pct(alert_threshold(alert.alert_type, rules) + rules.hysteresis)}% "
                    f"for {rules.clear_after_checks} checks"
                )
            self._event(now, "alert_resolved", f"cleared_{alert.alert_type}_alert", why)

    def _notify_check(self, now: datetime, h: Decimal, opened: list[Alert], resolved: list[Alert]) -> None:
        """Escalation for newly opened level alerts, else a reminder for the most severe open one
        after `renotify_minutes`; a recovery notice for resolutions."""
        level_opened = [a for a in opened if a.alert_type in LEVEL_ALERTS]
        if level_opened:
            top = level_opened[-1]
            for a in level_opened:
                a.notified_at = now
                a.notifications += 1
            self._alert_notification(now, top, reminder=False, also=[a.alert_type for a in level_opened[:-1]])
        else:
            open_level = [a for a in self.open_alerts() if a.alert_type in LEVEL_ALERTS]
            if open_level:
                top = max(open_level, key=lambda a: SEVERITY[a.alert_type])
                renotify = timedelta(minutes=self.rules.renotify_minutes)
                if top.notified_at is None or now - top.notified_at >= renotify:
                    top.notified_at = now
                    top.notifications += 1
                    self._alert_notification(now, top, reminder=True, also=[])
        if resolved:
            kinds = [a.alert_type for a in resolved]
            self._notify(
                now,
                "recovery",
                False,
                notices.recovery(
                    kinds, holder_control=h, level=self.state.level, now=now, system_status=self.system_status()
                ),
                {"resolved": kinds, "holder_control": float(h), "level": self.state.level},
            )

    def _alert_notification(self, now: datetime, alert: Alert, *, reminder: bool, also: list[str]) -> None:
        urgent = is_urgent(alert.alert_type)
        threshold = alert_threshold(alert.alert_type, self.rules)
        self._notify(
            now,
            alert.alert_type,
            urgent,
            notices.level_alert(
                self.config.guardian_id,
                alert_type=alert.alert_type,
                holder_control=self.current_h(),
                threshold=threshold,
                action=alert.action_taken,
                now=now,
                system_status=self.system_status(),
                reminder=reminder,
            ),
            {
                "alert_type": alert.alert_type,
                "holder_control": self.current_h(),
                "threshold": float(threshold),
                "action": alert.action_taken,
                "system_status": self.system_status(),
                "reminder": reminder,
                "also_opened": also,
                "forensic_audit_required": self.state.forensic is not None and self.state.forensic.open,
            },
        )
