"""The governance heartbeat, pure: liveness state, the checks, and the CloudEvent (docs/heartbeat.md).

No I/O and no Temporal imports: the heartbeat workflow gathers facts through activities and
hands them here; the status surface calls `heartbeat_state` with the latest heartbeat time.

Heartbeat state (the peers' vocabulary: new / up / late / down / paused):

- ``paused``  an operator paused the heartbeat schedule; a heartbeat cannot undo that,
- ``new``     no heartbeat was ever recorded,
- ``up``      the last heartbeat is at most ``interval + grace`` old,
- ``late``    older than ``interval + grace`` (one beat missed),
- ``down``    older than ``2 × interval + grace`` (two beats missed).

A heartbeat time in the future (clock skew between hosts) counts as ``up``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from govfleet.domain.timestamps import as_utc, iso_utc

HEARTBEAT_EVENT_TYPE = "governance.heartbeat"
KIND_LOW_BALANCE = "governance.heartbeat.low_balance"
KIND_GRANT_EXPIRING = "governance.heartbeat.grant_expiring"
KIND_FAILED = "governance.heartbeat.failed"
KIND_RECOVERY = "recovery"
ALERT_KINDS = (KIND_LOW_BALANCE, KIND_GRANT_EXPIRING, KIND_FAILED)

HeartbeatStateName = Literal["new", "up", "late", "down", "paused"]
HeartbeatStatus = Literal["ok", "degraded", "failed"]

CHECK_SYSTEM_TENANT = "system_tenant"
CHECK_BALANCE = "balance"
CHECK_GRANT_ACTIVE = "grant_active"
CHECK_GRANT_EXPIRY = "grant_expiry"


def heartbeat_state(
    last_heartbeat_at: datetime | None,
    *,
    interval: timedelta,
    grace: timedelta,
    now: datetime,
    paused: bool = False,
) -> Literal["new", "up", "late", "down", "paused"]:
    """ "new" | "up" | "late" | "down" | "paused" (see the module docstring)."""
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {interval}")
    if grace < timedelta(0):
        raise ValueError(f"grace must not be negative, got {grace}")
    if paused:
        return "paused"
    if last_heartbeat_at is None:
        return "new"
    age = as_utc(now) - as_utc(last_heartbeat_at)
    if age <= interval + grace:
        return "up"
    if age <= 2 * interval + grace:
        return "late"
    return "down"


# --- checks ---------------------------------------------------------------------------------


class HeartbeatThresholds(BaseModel):
    low_balance_threshold_credits: int = Field(ge=0)
    grant_expiry_warning_hours: int = Field(ge=0)


class HeartbeatFacts(BaseModel):
    """What the heartbeat activity read from the database (nothing interpreted yet)."""

    tenant_id: str = "cogni_system"
    tenant_exists: bool
    tenant_flagged: bool = False
    balance: int | None = None
    # Whether the account ever received credits (a positive ledger entry). A fresh database's
    # system tenant has not: its 0 is "not funded yet", not a balance that fell (docs/heartbeat.md).
    # Default True: facts recorded before this field existed are judged as they were.
    funded: bool = True
    grant_id: str = "cogni_system_governance"
    grant_exists: bool = False
    grant_expires_at: datetime | None = None
    grant_revoked_at: datetime | None = None


class CheckResult(BaseModel):
    name: str
    ok: bool
    detail: str


class HeartbeatEvaluation(BaseModel):
    status: HeartbeatStatus
    checks: list[CheckResult]
    alerts: list[str]  # alert kinds raised by this heartbeat (a subset of ALERT_KINDS)
    balance: int | None
    grant_expires_at: datetime | None


def evaluate(facts: HeartbeatFacts, thresholds: HeartbeatThresholds, now: datetime) -> HeartbeatEvaluation:
    """Run the four checks. A missing/unflagged tenant or no active grant is ``failed``; a low
    balance or a grant about to expire is ``degraded``; otherwise ``ok``. A tenant never funded
    fails the balance check without the low-balance alert (and stays ``ok``)."""
    now = as_utc(now)
    checks: list[CheckResult] = []
    alerts: list[str] = []
    failed = False

    if not facts.tenant_exists:
        checks.append(
            CheckResult(
                name=CHECK_SYSTEM_TENANT, ok=False, detail=f"billing account {facts.tenant_id!r} does not exist"
            )
        )
        failed = True
    elif not facts.tenant_flagged:
        checks.append(
            CheckResult(
                name=CHECK_SYSTEM_TENANT,
                ok=False,
                detail=f"billing account {facts.tenant_id!r} is not flagged is_system_tenant",
            )
        )
        failed = True
    else:
        checks.append(
            CheckResult(
                name=CHECK_SYSTEM_TENANT, ok=True, detail=f"{facts.tenant_id!r} exists and is the system tenant"
            )
        )

    threshold = thresholds.low_balance_threshold_credits
    if facts.balance is None:
        checks.append(CheckResult(name=CHECK_BALANCE, ok=False, detail="no balance (system tenant missing)"))
    elif facts.balance < threshold and not facts.funded:
        checks.append(
            CheckResult(
                name=CHECK_BALANCE,
                ok=False,
                detail=f"not funded yet: balance {facts.balance}, no credits ever received (threshold {threshold}); "
                "governance runs are refused until credits are bought (`govfleet pay`)",
            )
        )
    elif facts.balance < threshold:
        checks.append(
            CheckResult(
                name=CHECK_BALANCE, ok=False, detail=f"balance {facts.balance} is below the threshold {threshold}"
            )
        )
        alerts.append(KIND_LOW_BALANCE)
    else:
        checks.append(
            CheckResult(name=CHECK_BALANCE, ok=True, detail=f"balance {facts.balance} is at least {threshold}")
        )

    expires = as_utc(facts.grant_expires_at) if facts.grant_expires_at else None
    if not facts.grant_exists:
        checks.append(
            CheckResult(name=CHECK_GRANT_ACTIVE, ok=False, detail=f"execution grant {facts.grant_id!r} does not exist")
        )
        failed = True
    elif facts.grant_revoked_at is not None:
        checks.append(
            CheckResult(
                name=CHECK_GRANT_ACTIVE,
                ok=False,
                detail=f"execution grant {facts.grant_id!r} was revoked at "
                f"{as_utc(facts.grant_revoked_at).isoformat()}",
            )
        )
        failed = True
    elif expires is not None and expires <= now:
        checks.append(
            CheckResult(
                name=CHECK_GRANT_ACTIVE,
                ok=False,
                detail=f"execution grant {facts.grant_id!r} expired at {expires.isoformat()}; renew it with "
                "`govfleet grant renew`",
            )
        )
        failed = True
    else:
        checks.append(
            CheckResult(name=CHECK_GRANT_ACTIVE, ok=True, detail=f"execution grant {facts.grant_id!r} is active")
        )

    warn = timedelta(hours=thresholds.grant_expiry_warning_hours)
    grant_active = checks[-1].ok
    if not grant_active:
        checks.append(CheckResult(name=CHECK_GRANT_EXPIRY, ok=False, detail="no active grant"))
    elif expires is None:
        checks.append(CheckResult(name=CHECK_GRANT_EXPIRY, ok=True, detail="grant never expires"))
    elif expires - now < warn:
        checks.append(
            CheckResult(
                name=CHECK_GRANT_EXPIRY,
                ok=False,
                detail=f"grant expires at {expires.isoformat()}, within {thresholds.grant_expiry_warning_hours} h; "
                "renew it with `govfleet grant renew`",
            )
        )
        alerts.append(KIND_GRANT_EXPIRING)
    else:
        checks.append(CheckResult(name=CHECK_GRANT_EXPIRY, ok=True, detail=f"grant expires at {expires.isoformat()}"))

    if failed:
        alerts.insert(0, KIND_FAILED)
        status: HeartbeatStatus = "failed"
    elif alerts:
        status = "degraded"
    else:
        status = "ok"
    return HeartbeatEvaluation(
        status=status, checks=checks, alerts=alerts, balance=facts.balance, grant_expires_at=expires
    )


# --- alert dedupe and recovery ---------------------------------------------------------------


class PreviousHeartbeat(BaseModel):
    """The latest stored heartbeat event before this one (from `heartbeat_events`)."""

    time: datetime
    status: str
    alerts: list[str] = Field(default_factory=list)
    notified_at: dict[str, datetime] = Field(default_factory=dict)  # alert kind -> when last notified


class NotificationPlan(BaseModel):
    notify: list[str]  # alert kinds to send now
    notified_at: dict[str, datetime]  # carried into this heartbeat's event
    recovery: bool  # send a recovery notice
    recovered_from: str | None = None  # what it recovered from: a status or a liveness state


def plan_notifications(
    evaluation: HeartbeatEvaluation,
    previous: PreviousHeartbeat | None,
    *,
    now: datetime,
    interval: timedelta,
    grace: timedelta,
    renotify: timedelta = timedelta(hours=1),
) -> NotificationPlan:
    """Alert once per held breach: a kind is sent when it was not raised by the previous
    heartbeat, or when its last notice is older than `renotify`. A recovery notice goes out when
    this heartbeat is ok and the previous one was not, or when the heartbeat comes back after
    being late or down."""
    now = as_utc(now)
    prev_alerts = set(previous.alerts) if previous else set()
    prev_notified = {k: as_utc(v) for k, v in (previous.notified_at if previous else {}).items()}
    notify: list[str] = []
    notified_at: dict[str, datetime] = {}
    for kind in evaluation.alerts:
        last = prev_notified.get(kind)
        if kind not in prev_alerts or last is None or now - last >= renotify:
            notify.append(kind)
            notified_at[kind] = now
        else:
            notified_at[kind] = last
    recovered_from: str | None = None
    if previous is not None and evaluation.status == "ok":
        liveness = heartbeat_state(previous.time, interval=interval, grace=grace, now=now)
        if previous.status != "ok":
            recovered_from = previous.status
        elif liveness in ("late", "down"):
            recovered_from = liveness
    return NotificationPlan(
        notify=notify, notified_at=notified_at, recovery=recovered_from is not None, recovered_from=recovered_from
    )


# --- the CloudEvent --------------------------------------------------------------------------


def heartbeat_source(dao_name: str) -> str:
    return f"/cogni/{dao_name}/governance/heartbeat"


def build_cloudevent(
    *,
    event_id: str,
    source: str,
    time: datetime,
    evaluation: HeartbeatEvaluation,
    thresholds: HeartbeatThresholds,
    tenant_id: str = "cogni_system",
    grant_id: str = "cogni_system_governance",
    notified_at: dict[str, datetime] | None = None,
) -> dict:
    """A `governance.heartbeat` CloudEvent (specversion 1.0, structured JSON form). The balance
    is a string (bigint-safe, like the status contract)."""
    if not event_id:
        raise ValueError("event_id must not be empty")
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": HEARTBEAT_EVENT_TYPE,
        "time": iso_utc(time),
        "datacontenttype": "application/json",
        "data": {
            "status": evaluation.status,
            "system_tenant": tenant_id,
            "balance": None if evaluation.balance is None else str(evaluation.balance),
            "low_balance_threshold": str(thresholds.low_balance_threshold_credits),
            "grant_id": grant_id,
            "grant_expires_at": iso_utc(evaluation.grant_expires_at) if evaluation.grant_expires_at else None,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in evaluation.checks},
            "alerts": list(evaluation.alerts),
            "notified_at": {k: iso_utc(v) for k, v in (notified_at or {}).items()},
        },
    }


def previous_from_event(time: datetime, status: str, data: dict) -> PreviousHeartbeat:
    """Rebuild the dedupe state from a stored event's columns and data."""
    notified = {}
    for kind, when in (data.get("notified_at") or {}).items():
        try:
            notified[kind] = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
        except ValueError:
            continue
    return PreviousHeartbeat(time=time, status=status, alerts=list(data.get("alerts") or []), notified_at=notified)
