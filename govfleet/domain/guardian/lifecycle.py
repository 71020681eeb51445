"""What happens around the checks: a start after a terminate takes back what the database
recorded (`restore`), a configuration from repo-spec replaces the old one (`reconfigure`), and
audit writes that fail are retried with an alert after a run of failures. See docs/guardian.md,
"Restart after terminate" and "Audit"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NoReturn

from pydantic import ValidationError

from govfleet.domain.declared import config_hash
from govfleet.domain.guardian import notices
from govfleet.domain.guardian.book import GuardianBook, iso_or_none
from govfleet.domain.guardian.levels import DATABASE_ALERT, DATABASE_RECOVERED
from govfleet.domain.guardian.models import Alert, GuardianConfig, Pause, RestoreResult
from govfleet.domain.text import clip, quote
from govfleet.domain.timestamps import iso_utc

AUDIT_RETRY_SECONDS = 5  # after a failed audit write, the next attempt waits this long
_WHO_CAN_ACT = ("admins", "resume_quorum", "signing_domain", "breakers")


class ConfigurationRefused(Exception):
    """A `configure` signal's configuration was refused (malformed, incomplete, unverifiable or
    one that would remove every admin); nothing of it was applied."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


def parse_configuration(raw: Any) -> GuardianConfig:
    """The configuration a `configure` signal carries: `{"config": <every field of GuardianConfig>,
    "config_hash": <its hash>}` as the reconciler sends it. Anything else — another shape, a
    missing field, a field of the wrong type, a hash that does not match — is
    `ConfigurationRefused` naming the problem: nothing is ever applied in part."""
    if not isinstance(raw, dict) or set(raw) != {"config", "config_hash"}:
        keys = sorted(raw)[:5] if isinstance(raw, dict) else type(raw).__name__
        raise ConfigurationRefused(f"a configure signal carries exactly config and config_hash, got {quote(keys)}")
    body, claimed = raw["config"], raw["config_hash"]
    if not isinstance(body, dict):
        raise ConfigurationRefused(f"config must be an object, got {type(body).__name__}")
    missing = [name for name in GuardianConfig.model_fields if name not in body]
    if missing:
        raise ConfigurationRefused(f"incomplete configuration: missing {', '.join(missing[:8])}")
    try:
        config = GuardianConfig.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigurationRefused(f"config.{where}: {first['msg']}") from None
    if not isinstance(claimed, str) or claimed != config_hash(config):
        raise ConfigurationRefused(f"config_hash {quote(claimed)} is not the hash of the configuration it carries")
    return config


def _describe(config: GuardianConfig, field: str) -> str:
    if field == "breakers":
        return "[" + ", ".join(f"{t.name} {t.scope} {t.url}" for t in config.breakers) + "]"
    if field == "signing_domain":
        return config.signing_domain.describe()
    if field == "admins":
        return "[" + ", ".join(a.lower() for a in config.admins) + "]"
    return str(getattr(config, field))


def _sensitive_changes(old: GuardianConfig, new: GuardianConfig) -> list[str]:
    """Who can act on the guardian, old → new: admins, quorum, signing domain, breakers."""
    return [
        clip(f"{field}: {_describe(old, field)} -> {_describe(new, field)}", 1000)
        for field in _WHO_CAN_ACT
        if getattr(old, field) != getattr(new, field)
    ]


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
        if snapshot.forensic is not None and (st.forensic is None or st.forensic.open is False):
            st.forensic = snapshot.forensic
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

    def reconfigure(self, config: GuardianConfig, now: datetime, *, guarded: bool = True) -> None:
        """New rules/targets from repo-spec; audited. Levels follow at the next check.

        `guarded` (docs/security.md, "Temporal access"): a configuration that would leave a guardian
        that has admins with none is refused (`ConfigurationRefused`, audited, nothing applied); a
        change of admins, quorum, signing domain or breakers is audited old → new and notified
        urgently. Runs from before the guard replay without it (docs/patches.md)."""
        changed = sorted(k for k in GuardianConfig.model_fields if getattr(config, k) != getattr(self.config, k))
        if guarded and self.config.admins and not config.admins:
            self.refuse_configuration(now, "it has no admins: a configuration can never remove every admin")
        sensitive = _sensitive_changes(self.config, config) if guarded else []
        if guarded:
            self._retire_paused_targets(config)
        self.config = config
        self.rules = config.rules
        self._event(now, "config_changed", "none", "changed: " + (", ".join(changed) or "nothing"))
        if sensitive:
            self._event(now, "config_changed", "admins_or_breakers", "; ".join(sensitive))
            self._notify(
                now,
                "config_changed",
                True,
                notices.configuration_changed(self.config.guardian_id, changes=sensitive, now=now),
                {"changes": sensitive},
            )

    def _retire_paused_targets(self, config: GuardianConfig) -> None:
        """A target removed while a pause holds it is kept, so that the resume still reaches it;
        one configured again is the configuration's."""
        kept = {t.name for t in config.breakers}
        paused = self.paused_targets()
        for t in self.config.breakers:
            if t.name not in kept and t.name in paused:
                self.state.retired_targets[t.name] = t
        for name in kept:
            self.state.retired_targets.pop(name, None)

    def refuse_configuration(self, now: datetime, why: str) -> NoReturn:
        """A `configure` that is not applied: audited, then `ConfigurationRefused`."""
        why = clip(why)
        self._event(now, "config_refused", "none", f"configuration refused, nothing applied: {why}")
        raise ConfigurationRefused(why)

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
