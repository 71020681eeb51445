"""The governance grant renewed by the heartbeat before it expires (docs/heartbeat.md, "The
governance grant"), pure.

Policy (repo-spec `governance.heartbeat`): `grant_auto_renew` (default true),
`grant_renew_within_days` (30: renew once the grant expires within this many days),
`grant_renew_for_days` (365: the renewed grant runs this long from the renewal). Only an active
grant is renewed: a revoked one is a deliberate decision and an expired one means nothing renewed
it for the whole window, so both stay for a person (`govfleet grant renew`); the heartbeat fails
on them and says so. With renewal off, the admins are told once a day inside the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from govfleet.domain.heartbeat import HeartbeatFacts
from govfleet.domain.timestamps import as_utc, iso_utc

KIND_GRANT_RENEWED = "governance.heartbeat.grant_renewed"
KIND_GRANT_RENEWAL_OFF = "governance.heartbeat.grant_renewal_off"
KIND_GRANT_RENEWAL_FAILED = "governance.heartbeat.grant_renewal_failed"


class GrantRenewalPolicy(BaseModel):
    auto_renew: bool = True
    renew_within_days: int = Field(default=30, ge=1, le=3650)
    renew_for_days: int = Field(default=365, ge=1, le=3650)

    @model_validator(mode="after")
    def _renewal_leaves_the_window(self) -> GrantRenewalPolicy:
        if self.renew_for_days <= self.renew_within_days:
            raise ValueError(
                f"grant_renew_for_days ({self.renew_for_days}) must be more than grant_renew_within_days "
                f"({self.renew_within_days}): a renewed grant must leave the renewal window"
            )
        return self


class GrantRenewalPlan(BaseModel):
    action: Literal["none", "renew", "renewal_off"]
    until: datetime | None = None  # renew: the new end
    detail: str


def plan_grant_renewal(facts: HeartbeatFacts, policy: GrantRenewalPolicy, now: datetime) -> GrantRenewalPlan:
    """What this heartbeat does about the grant (see the module docstring)."""
    now = as_utc(now)
    expires = facts.grant_expires_at
    if not facts.grant_exists or facts.grant_revoked_at is not None or expires is None:
        return GrantRenewalPlan(action="none", detail="no active grant with an end to renew")
    expires = as_utc(expires)
    if expires <= now:
        return GrantRenewalPlan(
            action="none", detail=f"expired at {iso_utc(expires)}: renew it by hand (`govfleet grant renew`)"
        )
    left = expires - now
    if left > timedelta(days=policy.renew_within_days):
        return GrantRenewalPlan(action="none", detail=f"active until {iso_utc(expires)}")
    days = left.total_seconds() / 86400
    if not policy.auto_renew:
        return GrantRenewalPlan(
            action="renewal_off",
            detail=(
                f"the governance grant expires at {iso_utc(expires)} (in {days:.1f} days) and automatic renewal is "
                "off (governance.heartbeat.grant_auto_renew: false): renew it with `govfleet grant renew`, or every "
                "governance run and heartbeat fails from then on"
            ),
        )
    until = now + timedelta(days=policy.renew_for_days)
    return GrantRenewalPlan(
        action="renew",
        until=until,
        detail=f"expires at {iso_utc(expires)} (in {days:.1f} days): renewed until {iso_utc(until)}",
    )
