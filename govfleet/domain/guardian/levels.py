"""The guardian's decision table: the level of a holder-control reading, the alert
thresholds and the check interval of each level. Every number comes from `GuardianRules`
(repo-spec `guardian.rules`); `<` is strictly below. See docs/guardian.md.

| holder control h | level      | alert      | interval  | breaker                        |
| h >= 70          | excellent  | -          | normal    | -                              |
| 60 <= h < 70     | good       | -          | normal    | -                              |
| 55 <= h < 60     | acceptable | -          | normal    | -                              |
| 52 <= h < 55     | caution    | caution    | caution   | notify admins                  |
| 51 <= h < 52     | warning    | warning    | critical  | urgent notify, prepare pause   |
| 49 <= h < 51     | critical   | critical   | critical  | pause redemptions              |
| h < 49           | emergency  | emergency  | critical  | pause everything               |
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, model_validator

LEVELS = ("excellent", "good", "acceptable", "caution", "warning", "critical", "emergency")
SEVERITY = {name: i for i, name in enumerate(LEVELS)}
GREEN_LEVELS = ("excellent", "good", "acceptable")
UNKNOWN_LEVEL = "unknown"
# The upper bands change nothing but the reported level, so they are constants.
EXCELLENT_AT = Decimal("70")
GOOD_AT = Decimal("60")

LEVEL_ALERTS = ("caution", "warning", "critical", "emergency")
TRACKER_ALERT = "tracker_unavailable"
BREAKER_ALERT = "breaker_unreachable"  # a breaker target failed its probe or keeps failing its calls
DATABASE_ALERT = "database_unavailable"  # a notification kind: audit writes keep failing
DATABASE_RECOVERED = "database_recovered"
ALERT_ACTIONS = {
    "caution": "increased_monitoring",
    "warning": "urgent_notification_prepare_pause",
    "critical": "paused_redemptions",
    "emergency": "paused_everything",
    TRACKER_ALERT: "notified_admins",
    BREAKER_ALERT: "notified_admins_urgently",
}
SYSTEM_STATUSES = ("operational", "redemptions_paused", "fully_paused")


class GuardianRules(BaseModel):
    """Thresholds and intervals of the decision table (repo-spec `guardian.rules`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    caution_threshold: Decimal = Decimal("55.0")
    warning_threshold: Decimal = Decimal("52.0")
    critical_threshold: Decimal = Decimal("51.0")
    emergency_threshold: Decimal = Decimal("49.0")
    monitoring_interval_normal: int = Field(default=30, ge=1)
    monitoring_interval_caution: int = Field(default=5, ge=1)
    monitoring_interval_critical: int = Field(default=1, ge=1)
    hysteresis: Decimal = Field(default=Decimal("0.5"), ge=0)
    clear_after_checks: int = Field(default=3, ge=1)
    renotify_minutes: int = Field(default=60, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> GuardianRules:
        order = [
            ("caution_threshold", self.caution_threshold),
            ("warning_threshold", self.warning_threshold),
            ("critical_threshold", self.critical_threshold),
            ("emergency_threshold", self.emergency_threshold),
        ]
        for (n1, v1), (n2, v2) in pairwise(order):
            if not v1 > v2:
                raise ValueError(f"{n1} ({v1}) must be above {n2} ({v2})")
        for n, v in order:
            if not (0 <= v <= 100):
                raise ValueError(f"{n} ({v}) must be within [0, 100]")
        return self


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


def system_status_of(pause_scopes: list[str]) -> str:
    """operational | redemptions_paused | fully_paused, from the scopes of the active pauses."""
    if any(scope == "everything" for scope in pause_scopes):
        return "fully_paused"
    if pause_scopes:
        return "redemptions_paused"
    return "operational"


def fmt_pct(d: Decimal | float) -> str:
    """55.0 -> '55', 54.2 -> '54.2' (for messages)."""
    return format(to_decimal(d).normalize(), "f")


def round2(h: float | None) -> float | None:
    return None if h is None else float(round(to_decimal(h), 2))
