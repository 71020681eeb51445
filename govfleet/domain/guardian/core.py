"""(About 980 lines, one class: every step — readings, alerts, breakers, admin actions, restore
after restart — mutates the same state, effect buffer and key counters; split, each part would
need all of them.)

`GuardianCore`: the guardian's whole decision logic, as pure code (no I/O, no clock, no
Temporal). See docs/guardian.md for the rules it implements.

It holds the guardian's state (`GuardianState`, carried across continue-as-new), takes a
reading (or a failed one) or an admin action with the time it happened, updates the state and
returns the *effects* the workflow must carry out (`drain()`): audit rows to write, breaker
calls to make, notifications to send, search attributes to upsert.

Invariants callers rely on:
- Alerts: one open alert per type. A level alert of type T opens when h drops below T's
  threshold and resolves only after h stayed at or above threshold + hysteresis for
  `clear_after_checks` consecutive valid checks; an invalid reading neither counts nor resets.
  The effective level (reported, and used for the check interval) is the worse of the level of
  h and the level of the most severe open alert.
- Breakers: below the critical threshold the redemption-scope targets are paused, below the
  emergency threshold every target, each pause exactly once. Nothing resumes automatically:
  only a signed admin resume, with holder control at or above the critical threshold at that
  moment (after an emergency pause also `governance_verified` and a quorum of admins).
- Audit writes that fail keep their rows for the next write; the next attempt waits
  `AUDIT_RETRY_SECONDS`; `audit_failures_before_alert` failures in a row send one urgent
  `database_unavailable` notification, the first success after it a `database_recovered`.
- The order of the steps of a check is the order of its audit rows and idempotency-key
  counters: running guardians replay it, so it must not change without a workflow patch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NoReturn

from govfleet.domain.admin_auth import (
    AuthorizationError,
    Scheme,
    VerifiedSignature,
    parse_authorizations,
    prune_used_nonces,
    verify_admin_action,
)
from govfleet.domain.alerts_template import is_urgent, render_alert
from govfleet.domain.guardian.levels import (
    ALERT_ACTIONS,
    DATABASE_ALERT,
    DATABASE_RECOVERED,
    GREEN_LEVELS,
    LEVEL_ALERTS,
    SEVERITY,
    TRACKER_ALERT,
    UNKNOWN_LEVEL,
    alert_threshold,
    determine_level,
    fmt_pct,
    interval_for,
    round2,
    system_status_of,
    to_decimal,
    worse,
)
from govfleet.domain.guardian.models import (
    AdminRejected,
    Alert,
    AlertResolution,
    AuditEvent,
    BreakerCall,
    BreakerTarget,
    Effects,
    GuardianConfig,
    GuardianState,
    Pause,
    PauseInput,
    PauseResult,
    RecordBatch,
    RecordResult,
    RestoreResult,
    ResumeInput,
    ResumeResult,
)
from govfleet.domain.guardian.readings import InvalidReading, Reading, TrackerFailure, validate_reading
from govfleet.domain.guardian.views import (
    AlertsResult,
    EventsResult,
    GovernanceResult,
    GuardianStatus,
    RulesResult,
    rules_view,
)
from govfleet.domain.notifications import NotificationRequest
from govfleet.domain.timestamps import iso_utc

AUDIT_RETRY_SECONDS = 5  # after a failed audit write, the next attempt waits this long

Verifier = Callable[..., list]


def _iso_or_none(t: datetime | None) -> str | None:
    return None if t is None else iso_utc(t)


def _whole(votes: int | float) -> int | None:
    """A vote count as the integer it is; None for a fractional count kept by a guardian from
    before counts had to be whole (the governance answer declares integers)."""
    return int(votes) if float(votes).is_integer() else None


@dataclass(frozen=True)
class _PlannedPause:
    scope: Literal["redemptions", "everything"]
    emergency: bool
    reason: str
    targets: list[BreakerTarget]


class GuardianCore:
    """The guardian's state machine. Methods take `now` (workflow time) and append to
    the pending effects, which `drain()` hands to the workflow."""

    def __init__(self, config: GuardianConfig, state: GuardianState, *, verifier: Verifier | None = None):
        self.config = config
        self.rules = config.rules
        self.state = state
        self._verify = verifier or verify_admin_action
        self._fx = self._new_effects()
        # Nonces already handed to an audit write (or carried in the state from one): only
        # newly accepted ones go into the next batch.
        self._nonces_recorded: set[str] = set(state.used_nonces)

    # -- helpers ----------------------------------------------------------------------

    def _new_effects(self) -> Effects:
        return Effects(record=RecordBatch(guardian_id=self.config.guardian_id))

    def drain(self) -> Effects:
        """The effects produced since the last drain (and the search attributes, if changed)."""
        attrs = {"GovernanceLevel": self.state.level or UNKNOWN_LEVEL, "SystemStatus": self.system_status()}
        if self.state.level is None:
            attrs.pop("GovernanceLevel")
        if attrs != self.state.published:
            self._fx.search_attributes = attrs
            self.state.published = dict(attrs)
        used = self.state.used_nonces
        new_nonces = {n: exp for n, exp in used.items() if n not in self._nonces_recorded}
        if new_nonces:
            self._fx.record.nonces_used.update(new_nonces)
        self._nonces_recorded = set(used)
        fx, self._fx = self._fx, self._new_effects()
        return fx

    def _key(self, kind: str, n: int) -> str:
        return f"{self.config.guardian_id}:{self.state.chain}:{kind}{n}"

    def _event(
        self,
        now: datetime,
        event_type: str,
        action: str,
        details: str | None = None,
        holder_control: float | None = None,
        level: str | None = None,
    ) -> AuditEvent:
        self.state.seq.event += 1
        ev = AuditEvent(
            key=self._key("e", self.state.seq.event),
            timestamp=now,
            event_type=event_type,
            holder_control=round2(holder_control if holder_control is not None else self.current_h()),
            threshold_level=level or self.state.level or UNKNOWN_LEVEL,
            action=action,
            details=details,
        )
        self.state.events.append(ev)
        del self.state.events[: max(0, len(self.state.events) - self.config.recent_events)]
        self._fx.record.events.append(ev)
        return ev

    def _notify(self, now: datetime, kind: str, urgent: bool, title: str, body: str, data: dict) -> None:
        self.state.seq.notify += 1
        self._fx.notifications.append(
            NotificationRequest(
                idempotency_key=self._key("n", self.state.seq.notify),
                kind=kind,
                urgent=urgent,
                title=title,
                body=body,
                data={"guardian_id": self.config.guardian_id, "timestamp": iso_utc(now), **data},
            )
        )

    def current_h(self) -> float | None:
        return self.state.reading.holder_control_percentage if self.state.reading else None

    def open_alerts(self) -> list[Alert]:
        return [a for a in self.state.alerts if not a.resolved]

    def open_alert(self, alert_type: str) -> Alert | None:
        for a in self.state.alerts:
            if a.alert_type == alert_type and not a.resolved:
                return a
        return None

    def active_pauses(self) -> list[Pause]:
        return [p for p in self.state.pauses if p.active]

    def paused_targets(self) -> set[str]:
        return {t for p in self.active_pauses() for t in p.targets}

    def system_status(self) -> str:
        return system_status_of([p.scope for p in self.active_pauses()])

    def resume_requires(self) -> str:
        return "governance_vote" if any(p.emergency for p in self.active_pauses()) else "admin_approval"

    def interval_seconds(self) -> int:
        return interval_for(self.state.level, self.rules)

    def _trim_alerts(self) -> None:
        resolved = [a for a in self.state.alerts if a.resolved]
        excess = len(resolved) - self.config.recent_alerts
        if excess > 0:
            drop = {id(a) for a in resolved[:excess]}
            self.state.alerts = [a for a in self.state.alerts if id(a) not in drop]

    def _trim_pauses(self) -> None:
        done = [p for p in self.state.pauses if not p.active]
        if len(done) > 20:
            drop = {p.pause_id for p in done[: len(done) - 20]}
            self.state.pauses = [p for p in self.state.pauses if p.pause_id not in drop]

    def _open_alert(self, now: datetime, alert_type: str, message: str, action: str) -> Alert:
        self.state.seq.alert += 1
        alert = Alert(
            key=self._key("a", self.state.seq.alert),
            alert_type=alert_type,
            timestamp=now,
            holder_control=round2(self.current_h()),
            message=message,
            action_taken=action,
        )
        self.state.alerts.append(alert)
        self._fx.record.alerts_opened.append(alert.model_copy())
        return alert

    def _resolve_alert(self, now: datetime, alert: Alert, why: str) -> None:
        alert.resolved = True
        alert.resolved_at = now
        self._fx.record.alerts_resolved.append(AlertResolution(key=alert.key, resolved_at=now))
        self._event(now, "alert_resolved", f"cleared_{alert.alert_type}_alert", why)

    def _effective_level(self) -> str | None:
        level = self.state.raw_level
        for a in self.open_alerts():
            if a.alert_type in LEVEL_ALERTS:
                level = worse(level, a.alert_type)
        return level

    def _pause(
        self,
        now: datetime,
        *,
        pause_type: Literal["automatic", "manual"],
        scope: Literal["redemptions", "everything"],
        emergency: bool,
        reason: str,
        targets: list[BreakerTarget],
    ) -> Pause:
        self.state.seq.pause += 1
        pause_id = f"pause-{self.state.chain}-{self.state.seq.pause}"
        pause = Pause(
            pause_id=pause_id,
            key=f"{self.config.guardian_id}:{pause_id}",
            pause_type=pause_type,
            scope=scope,
            emergency=emergency,
            paused_at=now,
            reason=reason,
            holder_control_at_pause=round2(self.current_h()),
            targets=[t.name for t in targets],
        )
        self.state.pauses.append(pause)
        self._fx.record.pauses_opened.append(pause.model_copy())
        for t in targets:
            self._fx.breaker_calls.append(self._breaker_call(t, "pause", pause, now))
        target_text = ", ".join(pause.targets) if pause.targets else "no breaker targets configured"
        self._event(
            now, "pause", "pause", f"{pause_type} pause of {scope} ({reason}); targets: {target_text}; key {pause.key}"
        )
        self._trim_pauses()
        return pause

    def _breaker_call(
        self, target: BreakerTarget, action: Literal["pause", "resume"], pause: Pause, now: datetime
    ) -> BreakerCall:
        return BreakerCall(
            guardian_id=self.config.guardian_id,
            target=target.name,
            url=target.url,
            action=action,
            idempotency_key=pause.key,
            scope=target.scope,
            reason=pause.reason if action == "pause" else (pause.resume_reason or "admin resume"),
            holder_control=round2(self.current_h()),
            token_ref=target.token,
            requested_at=now,
        )

    def restore(self, snapshot: RestoreResult, now: datetime) -> None:
        """A guardian started afresh (never, or after it was terminated) takes back what the
        database recorded for its id: open alerts, active pauses and unexpired admin nonces.
        A restored pause is not a new pause: its targets are called again only where the
        database has no acknowledgement of the pause call (same idempotency key, so a target
        that did receive it changes nothing). See docs/guardian.md, "Restart after terminate"."""
        st = self.state
        by_name = {t.name: t for t in self.config.breakers}
        for a in snapshot.alerts:
            st.alerts.append(
                Alert(
                    key=a.key,
                    id=a.id,
                    alert_type=a.alert_type,
                    timestamp=a.timestamp,
                    holder_control=a.holder_control,
                    message=a.message,
                    action_taken=a.action_taken,
                    notified_at=now,  # announced when it opened; reminders resume from here
                )
            )
        prefix = f"{self.config.guardian_id}:"
        recalled: list[str] = []
        for p in snapshot.pauses:
            if p.targets is not None:
                targets = list(p.targets)
            elif p.scope == "everything":
                targets = [t.name for t in self.config.breakers]
            else:
                targets = [t.name for t in self.config.breakers if t.scope == "redemptions"]
            emergency = (
                p.emergency if p.emergency is not None else (p.pause_type == "automatic" and p.scope == "everything")
            )
            pause = Pause(
                pause_id=p.key.removeprefix(prefix),
                key=p.key,
                pause_type=p.pause_type,
                scope=p.scope,
                emergency=emergency,
                paused_at=p.paused_at,
                reason=p.reason,
                holder_control_at_pause=p.holder_control_at_pause,
                targets=targets,
            )
            st.pauses.append(pause)
            for name in targets:
                if name not in p.acknowledged and name in by_name:
                    self._fx.breaker_calls.append(self._breaker_call(by_name[name], "pause", pause, now))
                    recalled.append(name)
        st.used_nonces.update(snapshot.nonces)
        self._nonces_recorded |= set(snapshot.nonces)
        st.level = self._effective_level()
        if snapshot.empty():
            return
        details = (
            f"restored from the database: {len(snapshot.alerts)} open alert(s) "
            f"[{', '.join(a.alert_type for a in snapshot.alerts)}], {len(snapshot.pauses)} active pause(s) "
            f"[{', '.join(p.key for p in snapshot.pauses)}], {len(snapshot.nonces)} admin nonce(s)"
        )
        if recalled:
            details += f"; pause not acknowledged by {', '.join(recalled)}: called again with the same key"
        self._event(now, "guardian_restored", "none", details)

    def restore_failed(self, now: datetime, error: str) -> None:
        """The database could not be read at start: monitor anyway, and tell the operators that
        alerts and pauses recorded before were not taken back (a pause may be repeated)."""
        details = f"state not restored from the database: {error[:300]}"
        self._event(now, "restore_failed", "none", details)
        self._notify(
            now,
            "restore_failed",
            True,
            f"Guardian started without its recorded state ({self.config.guardian_id})",
            "\n".join(
                [
                    "⚠️ TIE GOVERNANCE GUARDIAN STARTED WITHOUT ITS RECORDED STATE",
                    "",
                    details,
                    "Open alerts, active pauses and used admin nonces recorded before were not taken back;",
                    "monitoring continues. Check system_pauses before resuming anything.",
                    "",
                    f"Timestamp: {iso_utc(now)}",
                ]
            ),
            {"error": error[:300]},
        )

    def reconfigure(self, config: GuardianConfig, now: datetime) -> None:
        """New rules/targets from repo-spec; audited. Levels follow at the next check."""
        changed = sorted(k for k in GuardianConfig.model_fields if getattr(config, k) != getattr(self.config, k))
        self.config = config
        self.rules = config.rules
        self._event(now, "config_changed", "none", "changed: " + (", ".join(changed) or "nothing"))

    # -- checks -----------------------------------------------------------------------

    def on_fetch(
        self, reading: Reading | None, failure: TrackerFailure | None, now: datetime, source: str = "poll"
    ) -> None:
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
                f"Governance tracker unavailable ({self.config.guardian_id})",
                render_alert(
                    alert_type=TRACKER_ALERT,
                    holder_control=self.current_h(),
                    threshold=None,
                    action=alert.action_taken,
                    timestamp=now,
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
            self._pause(
                now, pause_type="automatic", scope=p.scope, emergency=p.emergency, reason=p.reason, targets=p.targets
            )
        self._notify_check(now, h, opened, resolved)
        self._trim_alerts()

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
                f"Governance recovered: {', '.join(kinds)} alert{'s' if len(kinds) > 1 else ''} resolved",
                "\n".join(
                    [
                        "✅ TIE GOVERNANCE RECOVERY",
                        "",
                        f"Resolved: {', '.join(kinds)}",
                        f"Holder Control: {fmt_pct(round(h, 2))}%",
                        f"Level: {self.state.level}",
                        "",
                        f"Timestamp: {iso_utc(now)}",
                        f"System Status: {self.system_status()}",
                    ]
                ),
                {"resolved": kinds, "holder_control": float(h), "level": self.state.level},
            )

    def _alert_notification(self, now: datetime, alert: Alert, *, reminder: bool, also: list[str]) -> None:
        urgent = is_urgent(alert.alert_type)
        threshold = alert_threshold(alert.alert_type, self.rules)
        prefix = "Reminder: " if reminder else ""
        h = self.current_h()
        hc = "unknown" if h is None else fmt_pct(round(to_decimal(h), 2))
        self._notify(
            now,
            alert.alert_type,
            urgent,
            f"{prefix}Governance {alert.alert_type}: holder control {hc}% ({self.config.guardian_id})",
            render_alert(
                alert_type=alert.alert_type,
                holder_control=self.current_h(),
                threshold=threshold,
                action=alert.action_taken,
                timestamp=now,
                system_status=self.system_status(),
            ),
            {
                "alert_type": alert.alert_type,
                "holder_control": self.current_h(),
                "threshold": float(threshold),
                "action": alert.action_taken,
                "system_status": self.system_status(),
                "reminder": reminder,
                "also_opened": also,
            },
        )

    # -- admin actions ----------------------------------------------------------------

    def _authorize(
        self, action: str, authorization: str | list[str], reason: str, now: datetime, quorum: int, scheme: Scheme
    ) -> list[VerifiedSignature]:
        """The verified signatures, or AdminRejected (audited). The nonces are used only when the
        action succeeds (`_use_nonces`); runs on the EIP-191 scheme used them here, even for an
        action rejected afterwards, and keep doing so while they are replayed."""
        self.state.used_nonces = prune_used_nonces(self.state.used_nonces, now)
        try:
            tokens = parse_authorizations(authorization)
            verified = self._verify(
                tokens,
                domain=self.config.signing_domain,
                action=action,
                guardian_id=self.config.guardian_id,
                reason=reason,
                now=now,
                admins=list(self.config.admins),
                used_nonces=frozenset(self.state.used_nonces),
                quorum=quorum,
                max_age_seconds=self.config.signature_max_age_seconds,
                scheme=scheme,
            )
        except AuthorizationError as exc:
            self._reject(now, action, exc.code, exc.message)
            raise  # unreachable: _reject raises
        except (ValueError, TypeError) as exc:
            self._reject(now, action, "malformed", str(exc))
            raise  # unreachable: _reject raises
        if scheme == "eip191":
            self._use_nonces(verified)
        return verified

    def _use_nonces(self, verified: list[VerifiedSignature]) -> None:
        for v in verified:
            self.state.used_nonces[v.nonce] = v.expires_at

    def reject(self, now: datetime, action: str, code: str, message: str) -> None:
        """Refuse an admin action for a reason found outside the core (e.g. an unparsable body)."""
        self._reject(now, action, code, message)

    def _reject(self, now: datetime, action: str, code: str, message: str) -> NoReturn:
        self._event(now, "admin_rejected", f"rejected_{action}", f"{code}: {message}")
        raise AdminRejected(code, message)

    def pause(self, req: PauseInput, now: datetime, scheme: Scheme = "eip712") -> PauseResult:
        """Signed manual pause of everything. Raises AdminRejected (after auditing it)."""
        verified = self._authorize("pause", req.authorization, req.reason, now, quorum=1, scheme=scheme)
        if not req.reason.strip():
            self._reject(now, "pause", "malformed", "reason is required for a pause")
        self._use_nonces(verified)
        signers = ",".join(sorted({v.signer for v in verified}))
        if self.system_status() == "fully_paused":
            first = min(self.active_pauses(), key=lambda p: p.paused_at)
            self._event(
                now,
                "pause",
                "none",
                f"already fully paused since {iso_utc(first.paused_at)}; requested by {signers}: {req.reason}",
            )
            return PauseResult(
                paused=True, paused_at=first.paused_at, reason=first.reason, resume_requires=self.resume_requires()
            )
        paused = self.paused_targets()
        targets = [t for t in self.config.breakers if t.name not in paused]
        pause = self._pause(
            now,
            pause_type="manual",
            scope="everything",
            emergency=False,
            reason=f"{req.reason} (by {signers})",
            targets=targets,
        )
        self._notify(
            now,
            "pause",
            True,
            f"Governance system paused by an admin ({self.config.guardian_id})",
            render_alert(
                alert_type="manual_pause",
                holder_control=self.current_h(),
                threshold=None,
                action="paused_everything",
                timestamp=now,
                system_status=self.system_status(),
            ),
            {"pause_id": pause.pause_id, "reason": req.reason, "signers": signers},
        )
        return PauseResult(paused=True, paused_at=now, reason=req.reason, resume_requires=self.resume_requires())

    def resume_quorum(self) -> int:
        return self.config.resume_quorum if any(p.emergency for p in self.active_pauses()) else 1

    def authorize_resume(self, req: ResumeInput, now: datetime, scheme: Scheme = "eip712") -> list[VerifiedSignature]:
        """First half of a resume: signatures (quorum after an emergency pause), pause state.
        The workflow then takes a fresh reading and calls `resume`."""
        verified = self._authorize(
            "resume", req.authorization, req.reason, now, quorum=self.resume_quorum(), scheme=scheme
        )
        if not self.active_pauses():
            self._reject(now, "resume", "not_paused", "the system is not paused; there is nothing to resume")
        if any(p.emergency for p in self.active_pauses()) and not req.governance_verified:
            self._reject(
                now,
                "resume",
                "governance_unverified",
                "resuming after an emergency pause requires governance_verified: true "
                "(a governance vote) and a quorum of admin signatures",
            )
        return verified

    def resume(
        self,
        req: ResumeInput,
        verified: list[VerifiedSignature],
        now: datetime,
        fresh: Reading | None,
        failure: TrackerFailure | None,
    ) -> ResumeResult:
        """Second half: holder control must be at or above the critical threshold now."""
        if fresh is None:
            why = f"{failure.code}: {failure.message}" if failure else "no reading"
            self._reject(
                now,
                "resume",
                "holder_control_unknown",
                f"cannot verify holder control now (tracker reading invalid: {why}); resume refused",
            )
        h = to_decimal(fresh.holder_control_percentage)
        if h < self.rules.critical_threshold:
            self._reject(
                now,
                "resume",
                "unsafe_to_resume",
                f"holder control {fmt_pct(h)}% is below the critical threshold "
                f"{fmt_pct(self.rules.critical_threshold)}%; resume refused",
            )
        self._use_nonces(verified)
        signers = ",".join(sorted({v.signer for v in verified}))
        reason = req.reason.strip() or "admin resume"
        resumed = []
        for p in self.active_pauses():
            p.resumed_at = now
            p.resumed_by = signers[:100]
            p.resume_reason = reason
            resumed.append(p)
            self._fx.record.pauses_resumed.append(p.model_copy())
            by_name = {t.name: t for t in self.config.breakers}
            for name in p.targets:
                if name in by_name:
                    self._fx.breaker_calls.append(self._breaker_call(by_name[name], "resume", p, now))
        self._event(
            now,
            "resume",
            "resume",
            f"resumed {', '.join(p.pause_id for p in resumed)} by {signers} at {fmt_pct(h)}%: {reason}",
        )
        for a in self.open_alerts():
            if a.alert_type in ("critical", "emergency"):
                self._resolve_alert(now, a, "resolved by admin resume")
        self.state.level = self._effective_level()
        self._notify(
            now,
            "resume",
            False,
            f"Governance system resumed ({self.config.guardian_id})",
            "\n".join(
                [
                    "✅ TIE GOVERNANCE RESUMED",
                    "",
                    f"Holder Control: {fmt_pct(round(h, 2))}%",
                    f"Resumed by: {signers}",
                    f"Reason: {reason}",
                    "",
                    f"Timestamp: {iso_utc(now)}",
                    f"System Status: {self.system_status()}",
                ]
            ),
            {"signers": signers, "holder_control": float(h), "pauses": [p.pause_id for p in resumed]},
        )
        return ResumeResult(paused=False, resumed_at=now, current_holder_control=round2(float(h)), safe_to_resume=True)

    # -- queries ----------------------------------------------------------------------

    def status(self) -> GuardianStatus:
        return GuardianStatus(
            monitoring_active=True,
            last_check=self.state.last_check,
            check_interval_seconds=self.interval_seconds(),
            current_holder_control=round2(self.current_h()),
            governance_level=self.state.level or UNKNOWN_LEVEL,
            system_status=self.system_status(),
            paused=bool(self.active_pauses()),
            alerts_active=len(self.open_alerts()),
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

    # -- audit writes -----------------------------------------------------------------

    def audit_write_due(self, now: datetime) -> bool:
        """Whether to attempt the audit write now: always, except within AUDIT_RETRY_SECONDS
        of a failed one (the rows wait, the checks go on)."""
        st = self.state
        return st.audit_last_failure is None or now - st.audit_last_failure >= timedelta(seconds=AUDIT_RETRY_SECONDS)

    def on_audit_failed(self, now: datetime, error: str) -> None:
        """An audit write failed (its rows are kept for the next one)."""
        st = self.state
        st.audit_failures += 1
        st.audit_failing_since = st.audit_failing_since or now
        st.audit_last_failure = now
        if st.audit_failures >= self.config.audit_failures_before_alert and not st.audit_alerted:
            st.audit_alerted = True
            since = st.audit_failing_since
            self._notify(
                now,
                DATABASE_ALERT,
                True,
                f"Governance audit log unavailable ({self.config.guardian_id})",
                "\n".join(
                    [
                        "🚨 TIE GOVERNANCE AUDIT LOG UNAVAILABLE",
                        "",
                        f"{st.audit_failures} consecutive audit writes failed since {_iso_or_none(since)}.",
                        f"Last error: {error[:300]}",
                        "Monitoring and circuit breakers continue; the audit rows are kept and written once "
                        "the database answers again.",
                        "",
                        f"Timestamp: {iso_utc(now)}",
                        f"System Status: {self.system_status()}",
                    ]
                ),
                {"failures": st.audit_failures, "failing_since": _iso_or_none(since), "error": error[:300]},
            )

    def on_audit_written(self, now: datetime) -> None:
        """An audit write succeeded: ends a run of failures (a recovery notice if one was alerted)."""
        st = self.state
        if not st.audit_failures:
            return
        since, failures = st.audit_failing_since, st.audit_failures
        if st.audit_alerted:
            outage = (now - since).total_seconds() if since else 0.0
            details = (
                f"{failures} audit writes failed from {_iso_or_none(since)} to {iso_utc(now)} ({outage:.0f} s); "
                "the rows were kept and are written"
            )
            self._event(now, "audit_unavailable", "recovered", details)
            self._notify(
                now,
                DATABASE_RECOVERED,
                False,
                f"Governance audit log recovered ({self.config.guardian_id})",
                "\n".join(
                    [
                        "✅ TIE GOVERNANCE AUDIT LOG RECOVERED",
                        "",
                        details,
                        "",
                        f"Timestamp: {iso_utc(now)}",
                        f"System Status: {self.system_status()}",
                    ]
                ),
                {"failures": failures, "failing_since": _iso_or_none(since), "outage_seconds": round(outage, 1)},
            )
        st.audit_failures = 0
        st.audit_failing_since = None
        st.audit_last_failure = None
        st.audit_alerted = False

    def take_notifications(self) -> list[NotificationRequest]:
        """The notifications produced since the last drain, for sending at once."""
        taken, self._fx.notifications = self._fx.notifications, []
        return taken

    def assign_ids(self, result: RecordResult) -> None:
        for e in self.state.events:
            if e.id is None and e.key in result.event_ids:
                e.id = result.event_ids[e.key]
        for a in self.state.alerts:
            if a.id is None and a.key in result.alert_ids:
                a.id = result.alert_ids[a.key]
