"""Governance runs, pure: title, idempotency key, grant and budget decisions, the markdown brief.

No I/O, no Temporal imports: the GovernanceRun workflow and its activities call these.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from govfleet.domain.timestamps import as_utc, iso_utc

RUN_STATUSES = ("running", "success", "error", "refused")

# The built-in entrypoints; any other single word is handed to the agent gateway.
BUILTIN_ENTRYPOINTS = ("HEARTBEAT", "BRIEF", "HTTP")
# The grant scope every gateway-handed entrypoint needs (one scope: "may hand work to the gateway").
GATEWAY_SCOPE = "governance:GATEWAY"

KIND_NOT_FUNDED = "governance.run.not_funded"  # a run refused: the system tenant cannot pay it


def charter_display_name(charter: str) -> str:
    """'COMMUNITY' -> 'Community', 'DAO_OPS' -> 'Dao Ops'; mixed-case names are kept."""
    if charter.upper() == charter:
        return charter.replace("_", " ").title()
    return charter.replace("_", " ")


def run_title(charter: str, scheduled_at: datetime, tz: str = "UTC") -> str:
    """The run title: "<Charter> — <date>", the date in the schedule's timezone (docs/status.md)."""
    local = as_utc(scheduled_at).astimezone(ZoneInfo(tz))
    return f"{charter_display_name(charter)} — {local.date().isoformat()}"


def idempotency_key(schedule_id: str, scheduled_at: datetime) -> str:
    """`<schedule id>:<scheduled time>` — the same for every retry of one scheduled fire."""
    return f"{schedule_id}:{iso_utc(scheduled_at)}"


def required_scope(entrypoint: str) -> str:
    """`governance:<ENTRYPOINT>` for a built-in; `governance:GATEWAY` for a word the gateway gets."""
    return f"governance:{entrypoint}" if entrypoint in BUILTIN_ENTRYPOINTS else GATEWAY_SCOPE


class GrantFacts(BaseModel):
    grant_id: str
    exists: bool
    billing_account_id: str | None = None
    scopes: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


def grant_refusal(grant: GrantFacts, entrypoint: str, now: datetime, *, tenant_id: str = "cogni_system") -> str | None:
    """Why the grant does not allow this run, or None when it does."""
    if not grant.exists:
        return f"execution grant {grant.grant_id!r} does not exist"
    if grant.billing_account_id not in (None, tenant_id):
        return f"execution grant {grant.grant_id!r} belongs to {grant.billing_account_id!r}, not {tenant_id!r}"
    if grant.revoked_at is not None:
        return f"execution grant {grant.grant_id!r} was revoked at {iso_utc(grant.revoked_at)}"
    if grant.expires_at is not None and as_utc(grant.expires_at) <= as_utc(now):
        return f"execution grant {grant.grant_id!r} expired at {iso_utc(grant.expires_at)}"
    scope = required_scope(entrypoint)
    if scope not in grant.scopes:
        return (
            f"execution grant {grant.grant_id!r} does not allow {scope!r} (scopes: {', '.join(grant.scopes) or 'none'})"
        )
    return None


def budget_refusal(spent_today: int, cost: int, budget_per_day: int) -> str | None:
    """Why a run of `cost` credits would exceed the daily budget, or None."""
    if cost < 0 or spent_today < 0 or budget_per_day < 0:
        raise ValueError(f"amounts must not be negative (spent {spent_today}, cost {cost}, budget {budget_per_day})")
    if spent_today + cost > budget_per_day:
        return (
            f"daily budget exhausted: spent {spent_today} of {budget_per_day} credits today (UTC); "
            f"this run costs {cost}"
        )
    return None


# --- the brief ------------------------------------------------------------------------------


class GuardianSnapshot(BaseModel):
    level: str | None = None
    holder_control: str | None = None
    last_check_at: datetime | None = None
    active_pauses: list[str] = Field(default_factory=list)


class AlertLine(BaseModel):
    at: datetime
    alert_type: str
    message: str
    resolved: bool


class HeartbeatSnapshot(BaseModel):
    at: datetime | None = None
    status: str | None = None
    state: str = "new"


class BriefFacts(BaseModel):
    dao_name: str
    title: str
    generated_at: datetime
    balance: int | None
    budget_per_day: int
    spent_today: int
    guardian: GuardianSnapshot
    heartbeat: HeartbeatSnapshot
    alerts: list[AlertLine] = Field(default_factory=list)


def _fmt_t(t: datetime | None) -> str:
    return iso_utc(t) if t else "never"


def render_brief(f: BriefFacts) -> str:
    g, h = f.guardian, f.heartbeat
    lines = [
        f"# {f.title}",
        "",
        f"Governance brief for **{f.dao_name}**, generated {iso_utc(f.generated_at)}.",
        "",
        "## Guardian",
        f"- Level: **{g.level or 'unknown (no check recorded)'}**"
        + (f", holder control {g.holder_control} %" if g.holder_control is not None else ""),
        f"- Last check: {_fmt_t(g.last_check_at)}",
        f"- Active pauses: {', '.join(g.active_pauses) if g.active_pauses else 'none'}",
        "",
        "## Heartbeat",
        f"- State: **{h.state}**; last heartbeat {_fmt_t(h.at)}" + (f" ({h.status})" if h.status else ""),
        "",
        "## System tenant",
        f"- Balance: {'missing' if f.balance is None else f'{f.balance:,} credits'}",
        f"- Spent today: {f.spent_today:,} of {f.budget_per_day:,} credits",
        "",
        "## Recent alerts",
    ]
    if not f.alerts:
        lines.append("- none")
    for a in f.alerts:
        lines.append(f"- {iso_utc(a.at)} **{a.alert_type}**: {a.message}" + (" (resolved)" if a.resolved else ""))
    return "\n".join(lines) + "\n"
