"""The governance guardian's rules, as pure code (no I/O, no clock, no Temporal).

`GuardianCore` is the whole decision logic of the guardian workflow: it holds the
guardian's state (carried across continue-as-new as one `GuardianState`), takes a
reading (or a failed one) or an admin action with the time it happened, updates the
state and returns the *effects* the workflow must carry out: audit rows to write,
breaker calls to make, notifications to send, search attributes to upsert. The
workflow (workflows/guardian.py) only orchestrates; every rule is here and is tested
by plain tests (tests/unit/test_guardian*.py).

Rules (PRODUCT.md's decision table is authoritative; every number comes from
repo-spec `guardian.rules`; `<` is strictly below):

| holder control h | level      | alert      | interval  | breaker                        |
| h >= 70          | excellent  | -          | normal    | -                              |
| 60 <= h < 70     | good       | -          | normal    | -                              |
| 55 <= h < 60     | acceptable | -          | normal    | -                              |
| 52 <= h < 55     | caution    | caution    | caution   | notify admins                  |
| 51 <= h < 52     | warning    | warning    | critical  | urgent notify, prepare pause   |
| 49 <= h < 51     | critical   | critical   | critical  | pause redemptions              |
| h < 49           | emergency  | emergency  | critical  | pause everything               |

Alerts: one open alert per type (caution, warning, critical, emergency,
tracker_unavailable). A level alert of type T opens when h drops below T's threshold
(so at the warning level both the caution and the warning alert are open) and resolves
only after h has stayed at or above threshold + hysteresis for `clear_after_checks`
consecutive valid checks; a check below that resets the count, an invalid reading
neither counts nor resets. The *effective* level reported (and used for the check
interval) is the worse of the level of h and the level of the most severe open alert,
so a value hovering around a threshold neither flaps the level nor floods the audit
log. Notifications: one per check that opens alerts (for the most severe one:
"escalation"), a reminder for the most severe open alert after `renotify_minutes`
without one, one recovery notice per check that resolves alerts.

Breakers: h below the critical threshold pauses the redemption-scope targets, h below
the emergency threshold pauses every target, each pause exactly once (a pause id in
the state; the idempotency key of every call is `<guardian id>:<pause id>`). Nothing
ever resumes automatically: only a signed admin `resume`, which needs holder control
at or above the critical threshold at that moment, and after an emergency pause also
`governance_verified` and a quorum of distinct admin signatures.

Readings that are not finite numbers in [0, 100], whose votes do not add up (or do
not give the reported percentage within 0.05 points), that are older than the
staleness limit or from the future are *invalid* (`InvalidReading` with a code): they
are audited as `tracker_error` events, never move the level and never trip a breaker;
`failures_before_alert` consecutive failures open a `tracker_unavailable` alert that
the next valid reading resolves.

Audit writes: when writing the audit rows fails (PostgreSQL unreachable) the rows are
kept and written later, with every check in between; the next attempt waits
`AUDIT_RETRY_SECONDS` after a failure. `audit_failures_before_alert` consecutive failed
writes send one urgent `database_unavailable` notification; the first write that succeeds
after it sends a `database_recovered` notice and leaves an `audit_unavailable` event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from govfleet.contracts import GUARDIAN_WORKFLOW_ID, NotificationRequest
from govfleet.domain.admin_auth import (
    AuthorizationError,
    parse_authorizations,
    prune_used_nonces,
    verify_admin_action,
)
from govfleet.domain.alerts_template import is_urgent, render_alert
from govfleet.repo_spec import BreakerTarget, GuardianRules, GuardianSpec

# --- levels ----------------------------------------------------------------------------

LEVELS = ("excellent", "good", "acceptable", "caution", "warning", "critical", "emergency")
SEVERITY = {name: i for i, name in enumerate(LEVELS)}
GREEN_LEVELS = ("excellent", "good", "acceptable")
UNKNOWN_LEVEL = "unknown"
# Seed 004's upper bands; they change nothing but the reported level, so they are constants.
EXCELLENT_AT = Decimal("70")
GOOD_AT = Decimal("60")

LEVEL_ALERTS = ("caution", "warning", "critical", "emergency")
TRACKER_ALERT = "tracker_unavailable"
DATABASE_ALERT = "database_unavailable"  # a notification kind: audit writes keep failing
DATABASE_RECOVERED = "database_recovered"
AUDIT_RETRY_SECONDS = 5  # after a failed audit write, the next attempt waits this long
ALERT_ACTIONS = {
    "caution": "increased_monitoring",
    "warning": "urgent_notification_prepare_pause",
    "critical": "paused_redemptions",
    "emergency": "paused_everything",
    TRACKER_ALERT: "notified_admins",
}
SYSTEM_STATUSES = ("operational", "redemptions_paused", "fully_paused")
VOTE_TOLERANCE_POINTS = Decimal("0.05")
FUTURE_TOLERANCE_SECONDS = 60


def to_decimal(value: float | int | Decimal) -> Decimal:
    """A reading as the decimal a person reads (54.99 is 54.99, not 54.9899999...)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def determine_level(h: float | Decimal, rules: GuardianRules) -> str:
    """The decision table: the level of a holder-control percentage."""
    d = to_decimal(h)
    if d >= EXCELLENT_AT:
        return "excellent"
    if d >= GOOD_AT:
        return "good"
    if d >= rules.caution_threshold:
        return "acceptable"
    if d >= rules.warning_threshold:
        return "caution"
    if d >= rules.critical_threshold:
        return "warning"
    if d >= rules.emergency_threshold:
        return "critical"
    return "emergency"


def alert_threshold(alert_type: str, rules: GuardianRules) -> Decimal:
    """Alert type T is breached while h < alert_threshold(T)."""
    return {
        "caution": rules.caution_threshold,
        "warning": rules.warning_threshold,
        "critical": rules.critical_threshold,
        "emergency": rules.emergency_threshold,
    }[alert_type]


def interval_for(level: str | None, rules: GuardianRules) -> int:
    """Seconds until the next check at this level (unknown level: the normal interval)."""
    if level in ("warning", "critical", "emergency"):
        return rules.monitoring_interval_critical
    if level == "caution":
        return rules.monitoring_interval_caution
    return rules.monitoring_interval_normal


def worse(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if SEVERITY[a] >= SEVERITY[b] else b


def _fmt_pct(d: Decimal | float) -> str:
    """55.0 -> '55', 54.2 -> '54.2' (for messages)."""
    d = to_decimal(d)
    text = format(d.normalize(), "f")
    return text


def _round2(h: float | None) -> float | None:
    return None if h is None else float(round(to_decimal(h), 2))


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- readings --------------------------------------------------------------------------


class InvalidReading(ValueError):
    """A tracker reading that must not be used. `code` is one of: unreachable,
    http_error, not_json, missing_field, not_a_number, out_of_range, votes_mismatch,
    stale, future."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class Reading(BaseModel):
    """A validated tracker reading (`GET {tracker}/voting/governance`)."""

    model_config = ConfigDict(frozen=True)

    holder_control_percentage: float
    total_votes: int | float
    holder_votes: int | float
    seller_votes: int | float
    last_updated: datetime


class ReadingPayload(BaseModel):
    """What signal `reading` (and `POST /guardian/readings`) carries: the tracker's
    fields, unvalidated, so that a bad push is audited as an invalid reading instead
    of being dropped by the data converter."""

    model_config = ConfigDict(extra="allow")

    holder_control_percentage: Any = None
    total_votes: Any = None
    holder_votes: Any = None
    seller_votes: Any = None
    last_updated: Any = None


class TrackerFailure(BaseModel):
    """A typed, non-exceptional failure of one reading (returned by the fetch activity)."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class FetchReadingInput(BaseModel):
    url: str  # the tracker's base URL; the activity GETs {url}/voting/governance
    timeout_seconds: float = 2.0
    staleness_seconds: int = 120


class FetchReadingResult(BaseModel):
    """Exactly one of `reading` (valid) and `failure` (typed: InvalidReading's codes)."""

    reading: Reading | None = None
    failure: TrackerFailure | None = None


def _number(raw: Mapping[str, Any], name: str) -> int | float:
    if name not in raw or raw[name] is None:
        raise InvalidReading("missing_field", f"{name} is missing")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidReading("not_a_number", f"{name} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidReading("not_a_number", f"{name} must be a finite number, got {value!r}")
    return value


def _timestamp(value: Any) -> datetime:
    if value is None:
        raise InvalidReading("missing_field", "last_updated is missing")
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidReading("not_a_number", f"last_updated {value!r} is not an ISO 8601 timestamp") from None
    else:
        raise InvalidReading("not_a_number", f"last_updated must be an ISO 8601 string, got {type(value).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        dt = dt.replace(tzinfo=UTC)  # the seed's trackers write UTC
    return dt.astimezone(UTC)


def validate_reading(raw: Any, *, now: datetime, staleness_seconds: int) -> Reading:
    """The reading if it is usable, else `InvalidReading` naming what is wrong."""
    if not isinstance(raw, Mapping):
        raise InvalidReading("not_json", f"the reading must be a JSON object, got {type(raw).__name__}")
    h = _number(raw, "holder_control_percentage")
    if not (0 <= h <= 100):
        raise InvalidReading("out_of_range", f"holder_control_percentage {h!r} is outside [0, 100]")
    total = _number(raw, "total_votes")
    holder = _number(raw, "holder_votes")
    seller = _number(raw, "seller_votes")
    for name, v in (("total_votes", total), ("holder_votes", holder), ("seller_votes", seller)):
        if v < 0:
            raise InvalidReading("out_of_range", f"{name} {v!r} is negative")
    if total <= 0:
        raise InvalidReading("votes_mismatch", f"total_votes is {total!r}: holder control is undefined without votes")
    try:
        d_total, d_holder, d_seller = (to_decimal(v) for v in (total, holder, seller))
    except InvalidOperation:  # pragma: no cover - finite numbers always convert
        raise InvalidReading("not_a_number", "votes are not numbers") from None
    if abs(d_holder + d_seller - d_total) > d_total * Decimal("1e-9"):
        raise InvalidReading(
            "votes_mismatch", f"holder_votes {holder!r} + seller_votes {seller!r} != total_votes {total!r}"
        )
    implied = d_holder * 100 / d_total
    if abs(implied - to_decimal(h)) > VOTE_TOLERANCE_POINTS:
        raise InvalidReading(
            "votes_mismatch",
            f"holder_control_percentage {h!r} does not match holder_votes/total_votes = "
            f"{_fmt_pct(round(implied, 4))}% (tolerance {VOTE_TOLERANCE_POINTS} points)",
        )
    updated = _timestamp(raw.get("last_updated"))
    age = (now - updated).total_seconds()
    if age > staleness_seconds:
        raise InvalidReading(
            "stale", f"last_updated {_iso(updated)} is {age:.0f} s old, more than the {staleness_seconds} s allowed"
        )
    if -age > FUTURE_TOLERANCE_SECONDS:
        raise InvalidReading("future", f"last_updated {_iso(updated)} is {-age:.0f} s in the future")
    return Reading(
        holder_control_percentage=float(h), total_votes=total, holder_votes=holder,
        seller_votes=seller, last_updated=updated,
    )


# --- configuration ---------------------------------------------------------------------


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
    resume_quorum: int = 2
    signature_max_age_seconds: int = 900
    # Workflow mechanics.
    continue_as_new_after_events: int = 2500  # well before the server's 4,096 suggestion
    audit_flush_seconds: int = 5  # routine check rows of fast (1 s) checks are written in batches this old
    audit_failures_before_alert: int = Field(2, ge=1)  # consecutive failed audit writes, then database_unavailable
    recent_events: int = 200
    recent_alerts: int = 100
    upsert_search_attributes: bool = True


def guardian_config(spec: GuardianSpec, **overrides: Any) -> GuardianConfig:
    """The guardian workflow's configuration from repo-spec's `guardian` block."""
    data: dict[str, Any] = dict(
        guardian_id=spec.workflow_id,
        rules=spec.rules,
        tracker_url=spec.tracker.url,
        tracker_timeout_seconds=spec.tracker.timeout_seconds,
        staleness_seconds=spec.tracker.staleness_seconds,
        failures_before_alert=spec.tracker.failures_before_alert,
        breakers=list(spec.breakers),
        admins=list(spec.admins),
        resume_quorum=spec.resume_quorum,
        signature_max_age_seconds=spec.signature_max_age_seconds,
    )
    data.update(overrides)
    return GuardianConfig(**data)


# --- state -----------------------------------------------------------------------------


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

    def view(self) -> "AlertView":
        return AlertView(
            id=self.id, timestamp=self.timestamp, alert_type=self.alert_type,
            holder_control=_round2(self.holder_control), message=self.message,
            action_taken=self.action_taken, resolved=self.resolved, resolved_at=self.resolved_at,
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

    def view(self) -> "EventView":
        return EventView(
            id=self.id, timestamp=self.timestamp, event_type=self.event_type,
            holder_control=_round2(self.holder_control), threshold_level=self.threshold_level,
            action=self.action, details=self.details,
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
    resumed_at: datetime | None = None
    resumed_by: str | None = None
    resume_reason: str | None = None

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


class Counters(BaseModel):
    event: int = 0
    alert: int = 0
    pause: int = 0
    notify: int = 0


class GuardianState(BaseModel):
    """All of the guardian's memory; carried whole across continue-as-new."""

    chain: str  # fixed at the first run; makes idempotency keys unique per guardian lifetime
    level: str | None = None  # effective level (see module docstring)
    raw_level: str | None = None
    reading: Reading | None = None
    last_check: datetime | None = None
    last_valid_check: datetime | None = None
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


# --- effects ---------------------------------------------------------------------------


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

    def routine(self) -> bool:
        """Only governance_check events: nothing that must be written at once."""
        return not (self.alerts_opened or self.alerts_resolved or self.pauses_opened or self.pauses_resumed) \
            and all(e.event_type == "governance_check" for e in self.events)

    def empty(self) -> bool:
        return not (self.events or self.alerts_opened or self.alerts_resolved or self.pauses_opened
                    or self.pauses_resumed)

    def merged(self, later: "RecordBatch") -> "RecordBatch":
        return RecordBatch(
            guardian_id=self.guardian_id,
            events=self.events + later.events,
            alerts_opened=self.alerts_opened + later.alerts_opened,
            alerts_resolved=self.alerts_resolved + later.alerts_resolved,
            pauses_opened=self.pauses_opened + later.pauses_opened,
            pauses_resumed=self.pauses_resumed + later.pauses_resumed,
        )


class RecordResult(BaseModel):
    event_ids: dict[str, int] = Field(default_factory=dict)
    alert_ids: dict[str, int] = Field(default_factory=dict)


class Effects(BaseModel):
    record: RecordBatch
    breaker_calls: list[BreakerCall] = Field(default_factory=list)
    notifications: list[NotificationRequest] = Field(default_factory=list)
    search_attributes: dict[str, str] | None = None  # {"GovernanceLevel": .., "SystemStatus": ..} when changed


class AdminRejected(Exception):
    """An admin action was refused; `code` says why (an AuthorizationError code, or
    not_paused, governance_unverified, holder_control_unknown, unsafe_to_resume)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


# --- query and admin models (seed 004 shapes) ------------------------------------------


class GuardianStatus(BaseModel):
    monitoring_active: bool
    last_check: datetime | None
    check_interval_seconds: int
    current_holder_control: float | None
    governance_level: str
    system_status: str
    paused: bool
    alerts_active: int


class GovernanceResult(BaseModel):
    holder_control_percentage: float | None
    total_votes: int | float | None
    holder_votes: int | float | None
    seller_votes: int | float | None
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
    and must be the reason the admins signed (`""` when none)."""

    authorization: str | list[str] = ""
    governance_verified: bool = False
    reason: str = ""


class ResumeResult(BaseModel):
    paused: bool
    resumed_at: datetime
    current_holder_control: float | None
    safe_to_resume: bool


# --- the core --------------------------------------------------------------------------

Verifier = Callable[..., list]


def render_alert_body(
    *, alert_type: str, holder_control: float | None, threshold: Decimal | float | None, action: str,
    timestamp: datetime, system_status: str,
) -> str:
    """Seed 004's alert message template (govfleet.domain.alerts_template)."""
    return render_alert(alert_type=alert_type, holder_control=holder_control, threshold=threshold, action=action,
                        timestamp=timestamp, system_status=system_status)


class GuardianCore:
    """The guardian's state machine. Methods take `now` (workflow time) and append to
    the pending effects, which `drain()` hands to the workflow."""

    def __init__(self, config: GuardianConfig, state: GuardianState, *, verifier: Verifier | None = None):
        self.config = config
        self.rules = config.rules
        self.state = state
        self._verify = verifier or verify_admin_action
        self._fx = self._new_effects()

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
        fx, self._fx = self._fx, self._new_effects()
        return fx

    def _key(self, kind: str, n: int) -> str:
        return f"{self.config.guardian_id}:{self.state.chain}:{kind}{n}"

    def _event(self, now: datetime, event_type: str, action: str, details: str | None = None,
               holder_control: float | None = None, level: str | None = None) -> AuditEvent:
        self.state.seq.event += 1
        ev = AuditEvent(
            key=self._key("e", self.state.seq.event), timestamp=now, event_type=event_type,
            holder_control=_round2(holder_control if holder_control is not None else self.current_h()),
            threshold_level=level or self.state.level or UNKNOWN_LEVEL, action=action, details=details,
        )
        self.state.events.append(ev)
        del self.state.events[: max(0, len(self.state.events) - self.config.recent_events)]
        self._fx.record.events.append(ev)
        return ev

    def _notify(self, now: datetime, kind: str, urgent: bool, title: str, body: str, data: dict) -> None:
        self.state.seq.notify += 1
        self._fx.notifications.append(NotificationRequest(
            idempotency_key=self._key("n", self.state.seq.notify), kind=kind, urgent=urgent,
            title=title, body=body,
            data={"guardian_id": self.config.guardian_id, "timestamp": _iso(now), **data},
        ))

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
        active = self.active_pauses()
        if any(p.scope == "everything" for p in active):
            return "fully_paused"
        if active:
            return "redemptions_paused"
        return "operational"

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
            key=self._key("a", self.state.seq.alert), alert_type=alert_type, timestamp=now,
            holder_control=_round2(self.current_h()), message=message, action_taken=action,
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

    def _pause(self, now: datetime, *, pause_type: str, scope: str, emergency: bool, reason: str,
               targets: list[BreakerTarget]) -> Pause:
        self.state.seq.pause += 1
        pause_id = f"pause-{self.state.chain}-{self.state.seq.pause}"
        pause = Pause(
            pause_id=pause_id, key=f"{self.config.guardian_id}:{pause_id}", pause_type=pause_type, scope=scope,
            emergency=emergency, paused_at=now, reason=reason, holder_control_at_pause=_round2(self.current_h()),
            targets=[t.name for t in targets],
        )
        self.state.pauses.append(pause)
        self._fx.record.pauses_opened.append(pause.model_copy())
        for t in targets:
            self._fx.breaker_calls.append(self._breaker_call(t, "pause", pause, now))
        target_text = ", ".join(pause.targets) if pause.targets else "no breaker targets configured"
        self._event(now, "pause", "pause", f"{pause_type} pause of {scope} ({reason}); targets: {target_text}; "
                                           f"key {pause.key}")
        self._trim_pauses()
        return pause

    def _breaker_call(self, target: BreakerTarget, action: str, pause: Pause, now: datetime) -> BreakerCall:
        return BreakerCall(
            guardian_id=self.config.guardian_id, target=target.name, url=target.url, action=action,
            idempotency_key=pause.key, scope=target.scope,
            reason=pause.reason if action == "pause" else (pause.resume_reason or "admin resume"),
            holder_control=_round2(self.current_h()), token_ref=target.token, requested_at=now,
        )

    def reconfigure(self, config: GuardianConfig, now: datetime) -> None:
        """New rules/targets from repo-spec; audited. Levels follow at the next check."""
        changed = sorted(k for k in GuardianConfig.model_fields
                         if getattr(config, k) != getattr(self.config, k))
        self.config = config
        self.rules = config.rules
        self._event(now, "config_changed", "none", "changed: " + (", ".join(changed) or "nothing"))

    # -- checks -----------------------------------------------------------------------

    def on_fetch(self, reading: Reading | None, failure: TrackerFailure | None, now: datetime,
                 source: str = "poll") -> None:
        if reading is not None:
            self.on_reading(reading, now, source)
        else:
            self.on_invalid(failure or TrackerFailure(code="unreachable", message="no reading"), now, source)

    def on_push(self, payload: Mapping[str, Any], now: datetime) -> Reading | None:
        """A pushed reading (signal `reading`): validated here, then checked at once."""
        try:
            reading = validate_reading(payload, now=now, staleness_seconds=self.config.staleness_seconds)
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
            message = (f"Tracker unavailable: {st.consecutive_failures} consecutive invalid readings "
                       f"(last: {failure.code}: {failure.message})")
            alert = self._open_alert(now, TRACKER_ALERT, message, ALERT_ACTIONS[TRACKER_ALERT])
            action = "alert"
            urgent = st.level is not None and SEVERITY[st.level] >= SEVERITY["warning"]
            alert.notified_at = now
            alert.notifications += 1
            self._notify(now, TRACKER_ALERT, urgent, f"Governance tracker unavailable ({self.config.guardian_id})",
                         render_alert_body(alert_type=TRACKER_ALERT, holder_control=self.current_h(), threshold=None,
                                           action=alert.action_taken, timestamp=now,
                                           system_status=self.system_status()),
                         {"alert_type": TRACKER_ALERT, "failures": st.consecutive_failures, "error": failure.code})
        self._event(now, "tracker_error", action, f"{source}: {failure.code}: {failure.message}")

    def on_reading(self, reading: Reading, now: datetime, source: str = "poll") -> None:
        st, rules = self.state, self.rules
        st.checks += 1
        st.reading = reading
        st.last_check = now
        st.last_valid_check = now
        st.consecutive_failures = 0
        st.last_error = None
        h = to_decimal(reading.holder_control_percentage)
        prev_level = st.level
        prev_interval = self.interval_seconds()

        # Alerts: open on breach, count the dwell above threshold + hysteresis, resolve.
        opened: list[Alert] = []
        resolved: list[Alert] = []
        tracker_alert = self.open_alert(TRACKER_ALERT)
        if tracker_alert is not None:
            resolved.append(tracker_alert)
        for alert_type in LEVEL_ALERTS:
            threshold = alert_threshold(alert_type, rules)
            alert = self.open_alert(alert_type)
            if h < threshold:
                if alert is None:
                    opened.append(alert_type)  # opened below, once the breaker decision is known
                else:
                    alert.clear_streak = 0
            elif alert is not None:
                if h >= threshold + rules.hysteresis:
                    alert.clear_streak += 1
                    if alert.clear_streak >= rules.clear_after_checks:
                        resolved.append(alert)
                else:
                    alert.clear_streak = 0

        # Breakers: pause exactly once per crossing; never resume here.
        new_pauses: list[Pause] = []
        paused = self.paused_targets()
        if h < rules.emergency_threshold and self.system_status() != "fully_paused":
            targets = [t for t in self.config.breakers if t.name not in paused]
            new_pauses.append(self._pause_later("everything", True, h, targets))
        elif h < rules.critical_threshold and self.system_status() == "operational":
            targets = [t for t in self.config.breakers if t.scope == "redemptions" and t.name not in paused]
            new_pauses.append(self._pause_later("redemptions", False, h, targets))

        st.raw_level = determine_level(h, rules)
        opened_alerts = []
        for alert_type in opened:
            threshold = alert_threshold(alert_type, rules)
            action = ALERT_ACTIONS[alert_type]
            if alert_type == "critical" and not any(p["scope"] == "redemptions" for p in new_pauses) \
                    and not any(p["scope"] == "everything" for p in new_pauses):
                action = "redemptions_already_paused"
            if alert_type == "emergency" and not any(p["scope"] == "everything" for p in new_pauses):
                action = "everything_already_paused"
            opened_alerts.append(self._open_alert(
                now, alert_type, f"Holder control dropped below {_fmt_pct(threshold)}%", action))
        for alert in resolved:
            alert.resolved = True
            alert.resolved_at = now
            self._fx.record.alerts_resolved.append(AlertResolution(key=alert.key, resolved_at=now))
        st.level = self._effective_level()
        new_interval = self.interval_seconds()

        # Audit: the check, the crossing, the resolutions, the pauses (in that order).
        if new_pauses:
            check_action = "pause"
        elif opened_alerts:
            check_action = "alert"
        else:
            check_action = "none"
        self._event(now, "governance_check", check_action, f"{source} interval={new_interval}s")
        if prev_level is not None and st.level != prev_level:
            if new_pauses:
                crossing_action = "pause_" + new_pauses[-1]["scope"]
            elif opened_alerts:
                crossing_action = f"alert_{opened_alerts[-1].alert_type}"
            elif new_interval < prev_interval:
                crossing_action = "increased_monitoring"
            elif new_interval > prev_interval:
                crossing_action = "decreased_monitoring"
            else:
                crossing_action = "none"
            self._event(now, "threshold_crossed", crossing_action, f"{prev_level} -> {st.level} at {_fmt_pct(h)}%")
        for alert in resolved:
            if alert.alert_type == TRACKER_ALERT:
                why = "a valid reading arrived"
            else:
                why = (f"holder control stayed at or above "
                       f"{_fmt_pct(alert_threshold(alert.alert_type, rules) + rules.hysteresis)}% "
                       f"for {rules.clear_after_checks} checks")
            self._event(now, "alert_resolved", f"cleared_{alert.alert_type}_alert", why)
        for p in new_pauses:
            self._pause(now, pause_type="automatic", scope=p["scope"], emergency=p["emergency"],
                        reason=p["reason"], targets=p["targets"])

        # Notifications: escalation, else a reminder; a recovery notice for resolutions.
        level_opened = [a for a in opened_alerts if a.alert_type in LEVEL_ALERTS]
        if level_opened:
            top = level_opened[-1]
            for a in level_opened:
                a.notified_at = now
                a.notifications += 1
            self._alert_notification(now, top, reminder=False,
                                     also=[a.alert_type for a in level_opened[:-1]])
        else:
            open_level = [a for a in self.open_alerts() if a.alert_type in LEVEL_ALERTS]
            if open_level:
                top = max(open_level, key=lambda a: SEVERITY[a.alert_type])
                due = top.notified_at is None or now - top.notified_at >= timedelta(minutes=rules.renotify_minutes)
                if due:
                    top.notified_at = now
                    top.notifications += 1
                    self._alert_notification(now, top, reminder=True, also=[])
        if resolved:
            kinds = [a.alert_type for a in resolved]
            self._notify(
                now, "recovery", False,
                f"Governance recovered: {', '.join(kinds)} alert{'s' if len(kinds) > 1 else ''} resolved",
                "\n".join([
                    "✅ TIE GOVERNANCE RECOVERY", "",
                    f"Resolved: {', '.join(kinds)}",
                    f"Holder Control: {_fmt_pct(round(h, 2))}%",
                    f"Level: {st.level}", "",
                    f"Timestamp: {_iso(now)}",
                    f"System Status: {self.system_status()}",
                ]),
                {"resolved": kinds, "holder_control": float(h), "level": st.level},
            )
        self._trim_alerts()

    def _pause_later(self, scope: str, emergency: bool, h: Decimal, targets: list[BreakerTarget]) -> dict:
        threshold = self.rules.emergency_threshold if emergency else self.rules.critical_threshold
        return {
            "scope": scope, "emergency": emergency, "targets": targets,
            "reason": f"Holder control {_fmt_pct(h)}% below {_fmt_pct(threshold)}%",
        }

    def _alert_notification(self, now: datetime, alert: Alert, *, reminder: bool, also: list[str]) -> None:
        urgent = is_urgent(alert.alert_type)
        threshold = alert_threshold(alert.alert_type, self.rules)
        prefix = "Reminder: " if reminder else ""
        h = self.current_h()
        hc = "unknown" if h is None else _fmt_pct(round(to_decimal(h), 2))
        self._notify(
            now, alert.alert_type, urgent,
            f"{prefix}Governance {alert.alert_type}: holder control {hc}% ({self.config.guardian_id})",
            render_alert_body(alert_type=alert.alert_type,
                              holder_control=self.current_h(), threshold=threshold,
                              action=alert.action_taken, timestamp=now, system_status=self.system_status()),
            {"alert_type": alert.alert_type, "holder_control": self.current_h(), "threshold": float(threshold),
             "action": alert.action_taken, "system_status": self.system_status(), "reminder": reminder,
             "also_opened": also},
        )

    # -- admin actions ----------------------------------------------------------------

    def _authorize(self, action: str, authorization: str | list[str], reason: str, now: datetime,
                   quorum: int) -> list:
        self.state.used_nonces = prune_used_nonces(self.state.used_nonces, now)
        try:
            tokens = parse_authorizations(authorization)
            verified = self._verify(
                tokens, action=action, guardian_id=self.config.guardian_id, reason=reason, now=now,
                admins=list(self.config.admins), used_nonces=frozenset(self.state.used_nonces), quorum=quorum,
                max_age_seconds=self.config.signature_max_age_seconds,
            )
        except AuthorizationError as exc:
            self._reject(now, action, exc.code, exc.message)
            raise  # unreachable: _reject raises
        except (ValueError, TypeError) as exc:
            self._reject(now, action, "malformed", str(exc))
            raise  # unreachable: _reject raises
        for v in verified:
            self.state.used_nonces[v.nonce] = v.expires_at
        return verified

    def reject(self, now: datetime, action: str, code: str, message: str) -> None:
        """Refuse an admin action for a reason found outside the core (e.g. an unparsable body)."""
        self._reject(now, action, code, message)

    def _reject(self, now: datetime, action: str, code: str, message: str) -> None:
        self._event(now, "admin_rejected", f"rejected_{action}", f"{code}: {message}")
        raise AdminRejected(code, message)

    def pause(self, req: PauseInput, now: datetime) -> PauseResult:
        """Signed manual pause of everything. Raises AdminRejected (after auditing it)."""
        verified = self._authorize("pause", req.authorization, req.reason, now, quorum=1)
        if not req.reason.strip():
            self._reject(now, "pause", "malformed", "reason is required for a pause")
        signers = ",".join(sorted({v.signer for v in verified}))
        if self.system_status() == "fully_paused":
            first = min(self.active_pauses(), key=lambda p: p.paused_at)
            self._event(now, "pause", "none", f"already fully paused since {_iso(first.paused_at)}; "
                                              f"requested by {signers}: {req.reason}")
            return PauseResult(paused=True, paused_at=first.paused_at, reason=first.reason,
                               resume_requires=self.resume_requires())
        paused = self.paused_targets()
        targets = [t for t in self.config.breakers if t.name not in paused]
        pause = self._pause(now, pause_type="manual", scope="everything", emergency=False,
                            reason=f"{req.reason} (by {signers})", targets=targets)
        self._notify(now, "pause", True, f"Governance system paused by an admin ({self.config.guardian_id})",
                     render_alert_body(alert_type="manual_pause", holder_control=self.current_h(), threshold=None,
                                       action="paused_everything", timestamp=now, system_status=self.system_status()),
                     {"pause_id": pause.pause_id, "reason": req.reason, "signers": signers})
        return PauseResult(paused=True, paused_at=now, reason=req.reason, resume_requires=self.resume_requires())

    def resume_quorum(self) -> int:
        return self.config.resume_quorum if any(p.emergency for p in self.active_pauses()) else 1

    def authorize_resume(self, req: ResumeInput, now: datetime) -> list:
        """First half of a resume: signatures (quorum after an emergency pause), pause state.
        The workflow then takes a fresh reading and calls `resume`."""
        verified = self._authorize("resume", req.authorization, req.reason, now, quorum=self.resume_quorum())
        if not self.active_pauses():
            self._reject(now, "resume", "not_paused", "the system is not paused; there is nothing to resume")
        if any(p.emergency for p in self.active_pauses()) and not req.governance_verified:
            self._reject(now, "resume", "governance_unverified",
                         "resuming after an emergency pause requires governance_verified: true "
                         "(a governance vote) and a quorum of admin signatures")
        return verified

    def resume(self, req: ResumeInput, verified: list, now: datetime, fresh: Reading | None,
               failure: TrackerFailure | None) -> ResumeResult:
        """Second half: holder control must be at or above the critical threshold now."""
        if fresh is None:
            why = f"{failure.code}: {failure.message}" if failure else "no reading"
            self._reject(now, "resume", "holder_control_unknown",
                         f"cannot verify holder control now (tracker reading invalid: {why}); resume refused")
        h = to_decimal(fresh.holder_control_percentage)
        if h < self.rules.critical_threshold:
            self._reject(now, "resume", "unsafe_to_resume",
                         f"holder control {_fmt_pct(h)}% is below the critical threshold "
                         f"{_fmt_pct(self.rules.critical_threshold)}%; resume refused")
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
        self._event(now, "resume", "resume",
                    f"resumed {', '.join(p.pause_id for p in resumed)} by {signers} at {_fmt_pct(h)}%: {reason}")
        for a in self.open_alerts():
            if a.alert_type in ("critical", "emergency"):
                self._resolve_alert(now, a, "resolved by admin resume")
        self.state.level = self._effective_level()
        self._notify(now, "resume", False, f"Governance system resumed ({self.config.guardian_id})",
                     "\n".join(["✅ TIE GOVERNANCE RESUMED", "", f"Holder Control: {_fmt_pct(round(h, 2))}%",
                                f"Resumed by: {signers}", f"Reason: {reason}", "", f"Timestamp: {_iso(now)}",
                                f"System Status: {self.system_status()}"]),
                     {"signers": signers, "holder_control": float(h), "pauses": [p.pause_id for p in resumed]})
        return ResumeResult(paused=False, resumed_at=now, current_holder_control=_round2(float(h)),
                            safe_to_resume=True)

    # -- queries ----------------------------------------------------------------------

    def status(self) -> GuardianStatus:
        return GuardianStatus(
            monitoring_active=True, last_check=self.state.last_check,
            check_interval_seconds=self.interval_seconds(), current_holder_control=_round2(self.current_h()),
            governance_level=self.state.level or UNKNOWN_LEVEL, system_status=self.system_status(),
            paused=bool(self.active_pauses()), alerts_active=len(self.open_alerts()),
        )

    def governance(self) -> GovernanceResult:
        r = self.state.reading
        level = self.state.level or UNKNOWN_LEVEL
        return GovernanceResult(
            holder_control_percentage=_round2(r.holder_control_percentage) if r else None,
            total_votes=r.total_votes if r else None, holder_votes=r.holder_votes if r else None,
            seller_votes=r.seller_votes if r else None, threshold_level=level,
            margin_above_critical=(float(round(to_decimal(r.holder_control_percentage)
                                               - self.rules.critical_threshold, 2)) if r else None),
            is_stable=level in GREEN_LEVELS, last_updated=r.last_updated if r else None,
        )

    def alerts(self, limit: int = 20) -> AlertsResult:
        rows = sorted(self.state.alerts, key=lambda a: (a.timestamp, a.key), reverse=True)
        return AlertsResult(alerts=[a.view() for a in rows[: max(0, limit)]])

    def events(self, limit: int = 50) -> EventsResult:
        return EventsResult(events=[e.view() for e in reversed(self.state.events[-max(0, limit):] if limit > 0 else [])])

    def rules_view(self) -> RulesResult:
        r = self.rules
        return RulesResult(
            critical_threshold=float(r.critical_threshold), caution_threshold=float(r.caution_threshold),
            warning_threshold=float(r.warning_threshold), pause_redemptions_at=float(r.critical_threshold),
            pause_system_at=float(r.emergency_threshold), monitoring_interval_normal=r.monitoring_interval_normal,
            monitoring_interval_caution=r.monitoring_interval_caution,
            monitoring_interval_critical=r.monitoring_interval_critical,
        )

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
                now, DATABASE_ALERT, True, f"Governance audit log unavailable ({self.config.guardian_id})",
                "\n".join([
                    "🚨 TIE GOVERNANCE AUDIT LOG UNAVAILABLE", "",
                    f"{st.audit_failures} consecutive audit writes failed since {_iso(since)}.",
                    f"Last error: {error[:300]}",
                    "Monitoring and circuit breakers continue; the audit rows are kept and written once "
                    "the database answers again.", "",
                    f"Timestamp: {_iso(now)}",
                    f"System Status: {self.system_status()}",
                ]),
                {"failures": st.audit_failures, "failing_since": _iso(since), "error": error[:300]},
            )

    def on_audit_written(self, now: datetime) -> None:
        """An audit write succeeded: ends a run of failures (a recovery notice if one was alerted)."""
        st = self.state
        if not st.audit_failures:
            return
        since, failures = st.audit_failing_since, st.audit_failures
        if st.audit_alerted:
            outage = (now - since).total_seconds() if since else 0.0
            details = (f"{failures} audit writes failed from {_iso(since)} to {_iso(now)} ({outage:.0f} s); "
                       "the rows were kept and are written")
            self._event(now, "audit_unavailable", "recovered", details)
            self._notify(now, DATABASE_RECOVERED, False, f"Governance audit log recovered ({self.config.guardian_id})",
                         "\n".join(["✅ TIE GOVERNANCE AUDIT LOG RECOVERED", "", details, "",
                                    f"Timestamp: {_iso(now)}", f"System Status: {self.system_status()}"]),
                         {"failures": failures, "failing_since": _iso(since), "outage_seconds": round(outage, 1)})
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
