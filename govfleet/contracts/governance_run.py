"""Workflow `GovernanceRun`: one charter's scheduled run, paid by the system tenant (see
docs/schedules.md). Each charter's schedule is `governance:<charter lowercased>`; the run id is the
workflow id, for schedule-started runs `<schedule id>-<scheduled time>`, which is the primary
key of its `governance_runs` row and the ledger reference of its charge.

A run refused for its grant or budget completes with status `refused`; a run whose entrypoint
failed is recorded as `error` and fails the workflow (type `GovernanceRunFailed`).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = [
    "BEGIN_ACTIVITY",
    "CHARGE_ACTIVITY",
    "ENTRYPOINT_BRIEF_ACTIVITY",
    "ENTRYPOINT_GATEWAY_ACTIVITY",
    "ENTRYPOINT_HEARTBEAT_ACTIVITY",
    "ENTRYPOINT_HTTP_ACTIVITY",
    "FINISH_ACTIVITY",
    "GOVERNANCE_RUN_WORKFLOW",
    "REFUSED_NOT_FUNDED",
    "REFUSED_OVER_BUDGET",
    "BeginRunInput",
    "BeginRunResult",
    "ChargeRunInput",
    "ChargeRunResult",
    "EntrypointInput",
    "EntrypointResult",
    "FinishRunInput",
    "FinishRunResult",
    "GovernanceRunInput",
    "GovernanceRunResult",
    "legacy_schedule_id",
    "schedule_id",
]

GOVERNANCE_RUN_WORKFLOW = "GovernanceRun"
REFUSED_NOT_FUNDED = "not_funded"
REFUSED_OVER_BUDGET = "over_budget"

BEGIN_ACTIVITY = "governance_run_begin"
CHARGE_ACTIVITY = "governance_run_charge"
FINISH_ACTIVITY = "governance_run_finish"
ENTRYPOINT_HEARTBEAT_ACTIVITY = "governance_entrypoint_heartbeat"
ENTRYPOINT_BRIEF_ACTIVITY = "governance_entrypoint_brief"
ENTRYPOINT_HTTP_ACTIVITY = "governance_entrypoint_http"
ENTRYPOINT_GATEWAY_ACTIVITY = "governance_entrypoint_gateway"


def schedule_id(charter: str) -> str:
    """The Temporal Schedule of a charter: `governance:<charter lowercased>`, the original
    system's id (docs/schedules.md, "Schedule ids")."""
    return f"governance:{charter.lower()}"


def legacy_schedule_id(charter: str) -> str:
    """The id earlier releases gave a charter's schedule (the charter's case kept); only the
    reconciler's migration reads it."""
    return f"governance:{charter}"


class GovernanceRunInput(BaseModel):
    """The workflow's input (one charter's schedule args)."""

    schedule_id: str
    charter: str
    entrypoint: str
    timezone: str = "UTC"
    # HTTP: the charter's agent_url; a gateway entrypoint: governance.agent_gateway.url (an
    # http(s) URL or a ${ENV_VAR} reference the worker resolves).
    agent_url: str | None = None
    # Gateway entrypoints only: the ${ENV_VAR} reference of the token, the timeout, and the
    # protocol when it is not plain HTTP ("openclaw": docs/schedules.md, "Entrypoints").
    agent_token: str | None = None
    agent_timeout_seconds: float | None = None
    agent_protocol: str | None = None
    credits_per_run: int = Field(ge=0)
    budget_credits_per_day: int = Field(ge=0)
    # Only for runs started by hand: the schedule sets TemporalScheduledStartTime itself.
    scheduled_at: datetime | None = None


class GovernanceRunResult(BaseModel):
    run_id: str
    title: str
    status: str  # success | error | refused
    reason: str | None = None
    credits_charged: int = 0
    idempotency_key: str


# --- activities the workflow calls ------------------------------------------------------


class BeginRunInput(BaseModel):
    run_id: str
    schedule_id: str
    charter: str
    entrypoint: str
    title: str
    scheduled_at: datetime


class BeginRunResult(BaseModel):
    started_at: datetime
    last_activity: datetime
    status: str  # running | refused (or a final status when a finished run is begun again)
    reason: str | None = None
    # The system tenant's stored tool policy, read with its grant (docs/heartbeat.md, "Tool allowlist").
    tool_allowlist: list[str] = Field(default_factory=list)


class ChargeRunInput(BaseModel):
    run_id: str
    schedule_id: str
    amount: int
    budget_credits_per_day: int


class ChargeRunResult(BaseModel):
    charged: int = 0
    balance_after: int | None = None
    replay: bool = False
    refused_reason: str | None = None
    # Why it was refused, for the workflow to act on: REFUSED_NOT_FUNDED (the balance cannot pay
    # the run) or REFUSED_OVER_BUDGET (the day's budget is spent).
    refused_code: str | None = None


class FinishRunInput(BaseModel):
    run_id: str
    status: str  # success | error | refused
    reason: str | None = None
    brief: str | None = None


class FinishRunResult(BaseModel):
    last_activity: datetime


class EntrypointInput(BaseModel):
    run_id: str
    schedule_id: str
    charter: str
    title: str
    scheduled_at: datetime
    idempotency_key: str
    agent_url: str | None = None
    budget_credits_per_day: int = 0
    # Gateway entrypoints only: the word handed to the gateway, the token's ${ENV_VAR} reference
    # and the protocol (None: plain HTTP).
    entrypoint: str | None = None
    agent_token: str | None = None
    agent_protocol: str | None = None
    # The tools the agent may use: the tenant's stored policy as the run began (none: no tools).
    tool_allowlist: list[str] = Field(default_factory=list)


class EntrypointResult(BaseModel):
    brief: str | None = None
    detail: str = ""
