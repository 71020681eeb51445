"""Declared long-lived workflows, pure: what the repo-spec wants running (the guardians, the
status read model, the watchdog), its configuration hash, and the plan against what runs
(see docs/declared-workflows.md).

No I/O and no Temporal imports. `schedules/declared.py` derives the desired workflows from
repo-spec; `schedules/workflows.py` describes them in Temporal and applies the plan.

The configuration hash is stored in the workflow's memo (key `govfleet`, field `config_hash`):
set when the workflow is started, and rewritten by the workflow itself when it applies a
`configure` signal, so `describe()` (no worker needed) tells whether the running configuration
is the declared one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from govfleet.domain.schedule_spec import MEMO_KEY, spec_hash

__all__ = [
    "MEMO_KEY",
    "ActualWorkflow",
    "DesiredWorkflow",
    "WorkflowAction",
    "WorkflowPlanItem",
    "config_hash",
    "memo_for",
    "plan_workflows",
    "render_workflow_plan",
]

WorkflowKind = Literal["guardian", "status", "watchdog"]
WorkflowAction = Literal["create", "update", "unchanged"]
RUNNING = "RUNNING"


def config_hash(config: BaseModel) -> str:
    """SHA-256 of the configuration's canonical JSON (the same function in the reconciler and in
    the workflow that applies a `configure`)."""
    return spec_hash(config.model_dump(mode="json"))


def memo_for(config_hash_value: str, **extra: str) -> dict:
    """The memo a declared workflow carries: `{"govfleet": {"config_hash": ..., ...}}`."""
    return {MEMO_KEY: {"config_hash": config_hash_value, **extra}}


class DesiredWorkflow(BaseModel):
    """One long-lived workflow the repo-spec declares."""

    workflow_id: str
    workflow_type: str
    kind: WorkflowKind
    config_hash: str
    reconfigurable: bool  # it has a `configure` signal; otherwise a running one is left as it is
    summary: str = ""
    memo_extra: dict[str, str] = Field(default_factory=dict)  # more memo fields (the guardian's tracker)


class ActualWorkflow(BaseModel):
    """What Temporal says about that workflow id (its latest run)."""

    workflow_id: str
    status: str | None = None  # RUNNING, COMPLETED, FAILED, TERMINATED, ...; None: never started
    config_hash: str | None = None


class WorkflowPlanItem(BaseModel):
    workflow_id: str
    kind: WorkflowKind
    action: WorkflowAction
    reason: str = ""
    summary: str = ""


def plan_item(d: DesiredWorkflow, a: ActualWorkflow | None) -> WorkflowPlanItem:
    def item(action: WorkflowAction, reason: str) -> WorkflowPlanItem:
        return WorkflowPlanItem(workflow_id=d.workflow_id, kind=d.kind, action=action, reason=reason, summary=d.summary)

    if a is None or a.status is None:
        return item("create", "not started yet")
    if a.status != RUNNING:
        return item("create", f"its last run is {a.status.lower()}; start it again")
    if not d.reconfigurable:
        return item("unchanged", "running")
    if a.config_hash == d.config_hash:
        return item("unchanged", "running, configuration as declared")
    if a.config_hash is None:
        return item("update", "running without a recorded configuration: send it the declared one")
    return item("update", "configuration differs from repo-spec: signal configure")


def plan_workflows(desired: list[DesiredWorkflow], actual: dict[str, ActualWorkflow]) -> list[WorkflowPlanItem]:
    """One item per desired workflow, in the order given."""
    return [plan_item(d, actual.get(d.workflow_id)) for d in desired]


_SYMBOL = {"create": "+", "update": "~", "unchanged": "="}


def render_workflow_plan(items: list[WorkflowPlanItem], *, title: str = "Workflows plan") -> str:
    width = max([len(i.workflow_id) for i in items] + [10])
    lines = [f"{title}:", ""]
    for i in items:
        lines.append(
            f"  {_SYMBOL[i.action]} {i.action:<9}  {i.workflow_id:<{width}}  {i.summary}  ({i.reason})".rstrip()
        )
    counts = {a: sum(1 for i in items if i.action == a) for a in _SYMBOL}
    lines += [
        "",
        f"Plan: {counts['create']} to start, {counts['update']} to reconfigure, {counts['unchanged']} unchanged.",
    ]
    return "\n".join(lines)
