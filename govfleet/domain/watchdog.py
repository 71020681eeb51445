"""The watchdog's rules, pure (docs/watchdog.md): from what it observed (which declared
workflows run, when the heartbeat last succeeded) to incidents opened and resolved and the
notifications that go with them. No I/O, no Temporal, no clock: `now` is an argument.

- `guardian_down` / `workflow_down`: a declared workflow whose latest run is not running, seen
  so `down_after_checks` times in a row; resolved when it runs again.
- `workflow_stuck`: a declared workflow that runs but cannot make progress — its workflow task
  keeps failing (any cause: a payload too large, a bug, a nondeterminism after a bad deploy) —
  seen so `down_after_checks` times in a row; resolved when its task succeeds again.
- `heartbeat_missed` (a dead-man's switch): no successful heartbeat (status ok or degraded)
  within `interval + grace` of the last one, or of when the watchdog began watching if there
  never was one; resolved by the next successful heartbeat.

Each incident is announced once (urgent) when it opens and once (recovery) when it resolves;
idempotency keys come from the watchdog's `chain` and a counter, so a retried write or
notification is never applied twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from govfleet.domain.notifications import NotificationRequest
from govfleet.domain.timestamps import iso_utc

WATCHDOG_WORKFLOW_ID = "governance-watchdog"
GUARDIAN_DOWN = "guardian_down"
WORKFLOW_DOWN = "workflow_down"
HEARTBEAT_MISSED = "heartbeat_missed"
WORKFLOW_STUCK = "workflow_stuck"
IncidentKind = Literal["guardian_down", "workflow_down", "workflow_stuck", "heartbeat_missed"]
HEARTBEAT_SUBJECT = "heartbeat"


class WatchedWorkflow(BaseModel):
    workflow_id: str
    kind: Literal["guardian", "status"]
    notify_guardian: str  # whose notification channels hear about it (a guardian workflow id)


class HeartbeatWatch(BaseModel):
    interval_seconds: int = Field(ge=1)
    grace_seconds: int = Field(ge=0)


class WatchdogConfig(BaseModel):
    """What the watchdog watches (from repo-spec, through the reconciler)."""

    check_seconds: int = Field(default=15, ge=1)
    down_after_checks: int = Field(default=2, ge=1)
    workflows: list[WatchedWorkflow] = Field(default_factory=list)
    heartbeat: HeartbeatWatch | None = None
    notify_guardian: str = "governance-guardian"  # channels for the heartbeat's incidents


class Incident(BaseModel):
    key: str  # idempotency key of its watchdog_incidents row
    kind: IncidentKind
    subject: str  # the workflow id, or "heartbeat"
    opened_at: datetime
    details: str
    resolved_at: datetime | None = None
    resolution: str | None = None


class WatchdogState(BaseModel):
    """Carried across continue-as-new."""

    chain: str
    seq: int = 0
    checks: int = 0
    last_check_at: datetime | None = None
    heartbeat_watch_since: datetime | None = None
    down_streak: dict[str, int] = Field(default_factory=dict)  # workflow id -> checks seen not running
    stuck_streak: dict[str, int] = Field(default_factory=dict)  # workflow id -> checks seen with a failing task
    open: list[Incident] = Field(default_factory=list)
    last_statuses: dict[str, str] = Field(default_factory=dict)  # workflow id -> last observed status
    last_heartbeat_ok_at: datetime | None = None


class Observation(BaseModel):
    """What one look found. A value that could not be read is absent (None / missing key) and
    changes nothing."""

    statuses: dict[str, str | None] = Field(default_factory=dict)  # id -> RUNNING, TERMINATED, ...; None: never
    unreadable: list[str] = Field(default_factory=list)  # ids Temporal did not answer for
    failing_tasks: dict[str, str] = Field(default_factory=dict)  # id -> its workflow task keeps failing: how
    heartbeat_readable: bool = False
    last_heartbeat_ok_at: datetime | None = None
    errors: list[str] = Field(default_factory=list)


class IncidentChange(BaseModel):
    incident: Incident
    change: Literal["opened", "resolved"]


class WatchdogEffects(BaseModel):
    changes: list[IncidentChange] = Field(default_factory=list)
    notifications: list[NotificationRequest] = Field(default_factory=list)


class WatchdogCore:
    def __init__(self, config: WatchdogConfig, state: WatchdogState):
        self.config = config
        self.state = state

    def open_incident(self, kind: str, subject: str) -> Incident | None:
        return next((i for i in self.state.open if i.kind == kind and i.subject == subject), None)

    def _key(self, suffix: str) -> str:
        return f"{WATCHDOG_WORKFLOW_ID}:{self.state.chain}:{suffix}"

    def reconfigure(self, config: WatchdogConfig) -> None:
        """New watch list: incidents of workflows no longer watched are dropped from memory (their
        rows stay open until resolved by hand or by a later watch); the heartbeat clock restarts
        when the heartbeat is watched anew."""
        watched = {w.workflow_id for w in config.workflows}
        self.state.down_streak = {k: v for k, v in self.state.down_streak.items() if k in watched}
        self.state.stuck_streak = {k: v for k, v in self.state.stuck_streak.items() if k in watched}
        if config.heartbeat is None:
            self.state.heartbeat_watch_since = None
        self.config = config

    def observe(self, obs: Observation, now: datetime) -> WatchdogEffects:
        st = self.state
        fx = WatchdogEffects()
        st.checks += 1
        st.last_check_at = now
        for w in self.config.workflows:
            if w.workflow_id in obs.unreadable or w.workflow_id not in obs.statuses:
                continue
            status = obs.statuses[w.workflow_id]
            st.last_statuses[w.workflow_id] = status or "NOT_STARTED"
            kind = GUARDIAN_DOWN if w.kind == "guardian" else WORKFLOW_DOWN
            incident = self.open_incident(kind, w.workflow_id)
            if status == "RUNNING":
                st.down_streak.pop(w.workflow_id, None)
                if incident is not None:
                    self._resolve(fx, incident, now, "running again", w.notify_guardian)
                self._progress(fx, w, obs.failing_tasks.get(w.workflow_id), now)
                continue
            stuck = self.open_incident(WORKFLOW_STUCK, w.workflow_id)
            st.stuck_streak.pop(w.workflow_id, None)
            if stuck is not None:
                self._resolve(fx, stuck, now, f"not running any more ({status or 'never started'})", w.notify_guardian)
            st.down_streak[w.workflow_id] = st.down_streak.get(w.workflow_id, 0) + 1
            if incident is None and st.down_streak[w.workflow_id] >= self.config.down_after_checks:
                what = "was never started" if status is None else f"is not running (its last run {status.lower()})"
                self._open(
                    fx,
                    kind,
                    w.workflow_id,
                    now,
                    f"{w.workflow_id} {what}; `govfleet reconcile` (or a worker start) starts it again",
                    w.notify_guardian,
                )
        hb = self.config.heartbeat
        if hb is not None:
            if st.heartbeat_watch_since is None:
                st.heartbeat_watch_since = now
            if obs.heartbeat_readable:
                st.last_heartbeat_ok_at = obs.last_heartbeat_ok_at
                self._heartbeat(fx, hb, now)
        return fx

    def _progress(self, fx: WatchdogEffects, w: WatchedWorkflow, failing: str | None, now: datetime) -> None:
        """A running workflow whose workflow task keeps failing makes no progress: a guardian in that
        state checks nothing and pauses nothing (docs/watchdog.md, runbook)."""
        st = self.state
        incident = self.open_incident(WORKFLOW_STUCK, w.workflow_id)
        if failing is None:
            st.stuck_streak.pop(w.workflow_id, None)
            if incident is not None:
                self._resolve(fx, incident, now, "its workflow tasks succeed again", w.notify_guardian)
            return
        st.stuck_streak[w.workflow_id] = st.stuck_streak.get(w.workflow_id, 0) + 1
        if incident is None and st.stuck_streak[w.workflow_id] >= self.config.down_after_checks:
            what = "guardian" if w.kind == "guardian" else "workflow"
            self._open(
                fx,
                WORKFLOW_STUCK,
                w.workflow_id,
                now,
                f"{w.workflow_id} is running but cannot make progress: {failing}. The {what} checks and "
                "decides nothing while this lasts; see the runbook in docs/watchdog.md",
                w.notify_guardian,
            )

    def _heartbeat(self, fx: WatchdogEffects, hb: HeartbeatWatch, now: datetime) -> None:
        st = self.state
        allowed = timedelta(seconds=hb.interval_seconds + hb.grace_seconds)
        last = st.last_heartbeat_ok_at
        since = last if last is not None else st.heartbeat_watch_since
        assert since is not None  # set at the first look with a heartbeat to watch
        missed = now - since > allowed
        incident = self.open_incident(HEARTBEAT_MISSED, HEARTBEAT_SUBJECT)
        if missed and incident is None:
            when = f"since {iso_utc(last)}" if last else "ever"
            self._open(
                fx,
                HEARTBEAT_MISSED,
                HEARTBEAT_SUBJECT,
                now,
                f"no successful heartbeat {when}; expected every {hb.interval_seconds} s "
                f"(+ {hb.grace_seconds} s grace)",
                self.config.notify_guardian,
            )
        elif not missed and incident is not None:
            self._resolve(
                fx,
                incident,
                now,
                f"heartbeat succeeded at {iso_utc(last) if last else '?'}",
                self.config.notify_guardian,
            )

    def _open(
        self, fx: WatchdogEffects, kind: IncidentKind, subject: str, now: datetime, details: str, notify: str
    ) -> None:
        self.state.seq += 1
        incident = Incident(
            key=self._key(f"i{self.state.seq}"), kind=kind, subject=subject, opened_at=now, details=details
        )
        self.state.open.append(incident)
        fx.changes.append(IncidentChange(incident=incident, change="opened"))
        title = {
            GUARDIAN_DOWN: f"Guardian not running: {subject}",
            WORKFLOW_DOWN: f"Governance workflow not running: {subject}",
            WORKFLOW_STUCK: f"Governance workflow stuck: {subject}",
            HEARTBEAT_MISSED: "Governance heartbeat missed",
        }[kind]
        fx.notifications.append(
            NotificationRequest(
                idempotency_key=f"{incident.key}:opened",
                kind=kind,
                urgent=True,
                title=title,
                body="\n".join([f"🚨 {title.upper()}", "", details, "", f"Since: {iso_utc(now)}"]),
                data={"guardian_id": notify, "incident": kind, "subject": subject, "timestamp": iso_utc(now)},
            )
        )

    def _resolve(self, fx: WatchdogEffects, incident: Incident, now: datetime, why: str, notify: str) -> None:
        incident.resolved_at = now
        incident.resolution = why
        self.state.open = [i for i in self.state.open if i.key != incident.key]
        fx.changes.append(IncidentChange(incident=incident, change="resolved"))
        lasted = (now - incident.opened_at).total_seconds()
        fx.notifications.append(
            NotificationRequest(
                idempotency_key=f"{incident.key}:resolved",
                kind="recovery",
                urgent=False,
                title=f"Recovered: {incident.kind} ({incident.subject})",
                body="\n".join(
                    [
                        f"✅ RECOVERED: {incident.kind} ({incident.subject})",
                        "",
                        why,
                        f"Open from {iso_utc(incident.opened_at)} to {iso_utc(now)} ({lasted:.0f} s).",
                    ]
                ),
                data={
                    "guardian_id": notify,
                    "incident": incident.kind,
                    "subject": incident.subject,
                    "timestamp": iso_utc(now),
                    "outage_seconds": round(lasted, 1),
                },
            )
        )
