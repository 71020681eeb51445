"""What happens around the checks: a start after a terminate takes back what the database
recorded (`restore`), a configuration from repo-spec replaces the old one (`reconfigure`), and
audit writes that fail are retried with an alert after a run of failures. See docs/guardian.md,
"Restart after terminate" and "Audit"."""

from __future__ import annotations

from datetime import datetime, timedelta

from govfleet.domain.guardian import notices
from govfleet.domain.guardian.book import GuardianBook, iso_or_none
from govfleet.domain.guardian.levels import DATABASE_ALERT, DATABASE_RECOVERED
from govfleet.domain.guardian.models import Alert, GuardianConfig, Pause, RestoreResult
from govfleet.domain.timestamps import iso_utc

AUDIT_RETRY_SECONDS = 5  # after a failed audit write, the next attempt waits this long


class GuardianLifecycle(GuardianBook):
    """Restore, reconfigure, and the audit-write outage bookkeeping."""

    def restore(self, snapshot: RestoreResult, now: datetime) -> None:
        """A guardian started afresh (never, or after it was terminated) takes back what the
        database recorded for its id: open alerts, active pauses and unexpired admin nonces.
        A restored pause is not a new pause: its targets are called again only where the
        database has no acknowledgement of the pause call (same idempotency key, so a target
        that did receive it changes nothing); likewise a recent resume some target never
        acknowledged is called again. See docs/guardian.md, "Restart after terminate"."""
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
        resumed_again: list[str] = []
        for r in snapshot.resumes:
            done = Pause(
                pause_id=r.key.removeprefix(prefix),
                key=r.key,
                pause_type="manual",
                scope=r.scope,
                paused_at=r.resumed_at,
                reason="",
                holder_control_at_pause=None,
                targets=list(r.targets),
                resumed_at=r.resumed_at,
                resumed_by=r.resumed_by,
                resume_reason=r.resume_reason,
            )
            for name in r.targets:
                if name not in r.acknowledged and name in by_name:
                    self._fx.breaker_calls.append(self._breaker_call(by_name[name], "resume", done, now))
                    resumed_again.append(name)
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
        if resumed_again:
            details += f"; resume not acknowledged by {', '.join(resumed_again)}: called again with the same key"
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
            notices.restore_failed(self.config.guardian_id, details=details, now=now),
            {"error": error[:300]},
        )

    def reconfigure(self, config: GuardianConfig, now: datetime) -> None:
        """New rules/targets from repo-spec; audited. Levels follow at the next check."""
        changed = sorted(k for k in GuardianConfig.model_fields if getattr(config, k) != getattr(self.config, k))
        self.config = config
        self.rules = config.rules
        self._event(now, "config_changed", "none", "changed: " + (", ".join(changed) or "nothing"))

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
                notices.audit_unavailable(
                    self.config.guardian_id,
                    failures=st.audit_failures,
                    since=iso_or_none(since),
                    error=error[:300],
                    now=now,
                    system_status=self.system_status(),
                ),
                {"failures": st.audit_failures, "failing_since": iso_or_none(since), "error": error[:300]},
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
                f"{failures} audit writes failed from {iso_or_none(since)} to {iso_utc(now)} ({outage:.0f} s); "
                "the rows were kept and are written"
            )
            self._event(now, "audit_unavailable", "recovered", details)
            self._notify(
                now,
                DATABASE_RECOVERED,
                False,
                notices.audit_recovered(
                    self.config.guardian_id, details=details, now=now, system_status=self.system_status()
                ),
                {"failures": failures, "failing_since": iso_or_none(since), "outage_seconds": round(outage, 1)},
            )
        st.audit_failures = 0
        st.audit_failing_since = None
        st.audit_last_failure = None
        st.audit_alerted = False
