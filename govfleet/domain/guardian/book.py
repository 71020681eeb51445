"""The guardian's book: its state (`GuardianState`, carried across continue-as-new), the effects
a step produced that the workflow has not taken yet (`drain()`), and the primitives every step
writes through — idempotency keys, audit events, alerts, pauses and their breaker calls,
notifications. The steps themselves are in `checks`, `admin` and `lifecycle`; `core` puts them
together. See docs/guardian.md.

Every key is `<guardian id>:<chain>:<kind><n>` from a counter in the state, so the order in which
a step calls these primitives is the order of its audit rows and keys: running guardians replay
it, so it must not change without a workflow patch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from govfleet.domain.admin_auth import verify_admin_action
from govfleet.domain.guardian.levels import LEVEL_ALERTS, UNKNOWN_LEVEL, interval_for, round2, system_status_of, worse
from govfleet.domain.guardian.models import (
    Alert,
    AlertResolution,
    AuditEvent,
    BreakerCall,
    BreakerTarget,
    Effects,
    GuardianConfig,
    GuardianState,
    Pause,
    RecordBatch,
    RecordResult,
)
from govfleet.domain.guardian.notices import Notice
from govfleet.domain.notifications import NotificationRequest
from govfleet.domain.text import clip
from govfleet.domain.timestamps import iso_utc

Verifier = Callable[..., list]
ALERT_MESSAGE_LIMIT = 300  # characters of an alert's message (it may quote what a tracker sent)


def iso_or_none(t: datetime | None) -> str | None:
    return None if t is None else iso_utc(t)


class GuardianBook:
    """The guardian's state and the effects not yet handed to the workflow, with the primitives
    every step writes through. Methods take `now` (workflow time) and append to the pending
    effects, which `drain()` hands to the workflow."""

    def __init__(self, config: GuardianConfig, state: GuardianState, *, verifier: Verifier | None = None):
        self.config = config
        self.rules = config.rules
        self.state = state
        self._verify = verifier or verify_admin_action
        self._fx = self._new_effects()
        # Nonces already handed to an audit write (or carried in the state from one): only
        # newly accepted ones go into the next batch.
        self._nonces_recorded: set[str] = set(state.used_nonces)

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
            details=None if details is None else clip(details),
        )
        self.state.events.append(ev)
        del self.state.events[: max(0, len(self.state.events) - self.config.recent_events)]
        self._fx.record.events.append(ev)
        return ev

    def _notify(self, now: datetime, kind: str, urgent: bool, notice: Notice, data: dict) -> None:
        self.state.seq.notify += 1
        self._fx.notifications.append(
            NotificationRequest(
                idempotency_key=self._key("n", self.state.seq.notify),
                kind=kind,
                urgent=urgent,
                title=notice.title,
                body=notice.body,
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

    def target(self, name: str) -> BreakerTarget | None:
        """A breaker target by name: configured, or removed from the configuration while paused."""
        return next((t for t in self.config.breakers if t.name == name), None) or self.state.retired_targets.get(name)

    def resume_quorum(self) -> int:
        return self.config.resume_quorum if any(p.emergency for p in self.active_pauses()) else 1

    def paused_since(self) -> datetime | None:
        """Since when the system is at its current status: the first active pause of scope
        `everything` when fully paused, else the first active pause."""
        active = self.active_pauses()
        full = [p for p in active if p.scope == "everything"]
        return min((p.paused_at for p in (full or active)), default=None)

    def resume_requires(self) -> str:
        return "governance_vote" if any(p.emergency for p in self.active_pauses()) else "admin_approval"

    def interval_seconds(self) -> int:
        return interval_for(self.state.level, self.rules)

    def next_poll_in(self, now: datetime) -> float:
        """Seconds until the guardian fetches the next reading itself: an interval of the current
        level after the last time it did. Signals, updates and pushed readings do not move it, so
        no stream of them can postpone the check (docs/guardian.md, "The workflow")."""
        last = self.state.last_poll_at
        if last is None:
            return 0.0
        return max(0.0, (last + timedelta(seconds=self.interval_seconds()) - now).total_seconds())

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
            message=clip(message, ALERT_MESSAGE_LIMIT),
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
        paused_by: str | None = None,
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
            paused_by=paused_by,
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
