"""Declared long-lived workflows reconciled from `.cogni/repo-spec.yaml`, like the schedules
(see docs/declared-workflows.md):

    declared = declared_workflows(spec)              (pure: guardians, status, watchdog)
    actual   = describe each id                      (latest run's status, memo config hash)
    plan     = plan_workflows(desired, actual)       (pure: create / update / unchanged)
    apply                                            (start, or signal `configure`)

- `create`: never started, or its latest run is closed (terminated, failed, ...): started with
  the declared input, its configuration hash in the memo (a guardian also with
  `GUARDIAN_TASK_TIMEOUT`). A guardian started again restores its state from the database.
- `update`: running with another configuration hash: signal `configure`; the workflow applies it
  and writes the new hash into its memo.
- `unchanged`: running with the declared hash (or not reconfigurable): nothing is sent.

Safe with several reconcilers at once (every worker reconciles at start-up): a start that finds
the id running (`WorkflowAlreadyStartedError`, the default conflict policy) re-reads it and
re-plans that id; two `configure` signals with the same configuration are applied once (the
workflow ignores one whose hash it already has). Describing needs no worker, so the reconcile
works before any worker runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from govfleet.contracts.guardian import CONFIGURE_SIGNAL
from govfleet.domain.declared import (
    MEMO_KEY,
    ActualWorkflow,
    WorkflowPlanItem,
    memo_for,
    plan_item,
    plan_workflows,
    render_workflow_plan,
)
from govfleet.repo_spec import RepoSpec
from schedules.declared import DeclaredWorkflow, declared_workflows

CONCURRENCY = 16


async def describe_actual(client: Client, workflow_id: str) -> ActualWorkflow:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return ActualWorkflow(workflow_id=workflow_id)
        raise
    memo = await desc.memo()
    ours = memo.get(MEMO_KEY) if isinstance(memo, dict) else None
    recorded = ours.get("config_hash") if isinstance(ours, dict) else None
    return ActualWorkflow(
        workflow_id=workflow_id,
        status=desc.status.name if desc.status is not None else None,
        config_hash=recorded if isinstance(recorded, str) else None,
    )


@dataclass
class WorkflowOutcome:
    workflow_id: str
    planned: str
    outcome: str  # started | reconfigured | unchanged | failed
    detail: str = ""


@dataclass
class WorkflowsReport:
    items: list[WorkflowPlanItem]
    applied: bool = False
    outcomes: list[WorkflowOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[WorkflowOutcome]:
        return [o for o in self.outcomes if o.outcome == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    def summary(self) -> str:
        if not self.applied:
            return ", ".join(f"{i.action} {i.workflow_id}" for i in self.items)
        parts = [f"{self.count(k)} {k}" for k in ("started", "reconfigured", "unchanged", "failed") if self.count(k)]
        return ", ".join(parts) or "nothing"

    def render(self) -> str:
        out = [render_workflow_plan(self.items)]
        if self.applied:
            out += ["", f"Applied: {self.summary()}."]
            for o in self.outcomes:
                if o.outcome == "failed" or o.detail:
                    out.append(f"  {o.outcome}: {o.workflow_id}: {o.detail}")
        return "\n".join(out)


async def _start(client: Client, d: DeclaredWorkflow, task_queue: str) -> WorkflowOutcome:
    want = d.desired
    try:
        await client.start_workflow(
            want.workflow_type,
            d.start_input,
            id=want.workflow_id,
            task_queue=task_queue,
            memo=memo_for(want.config_hash, **want.memo_extra),
            task_timeout=d.task_timeout,
        )
        return WorkflowOutcome(want.workflow_id, "create", "started")
    except WorkflowAlreadyStartedError:
        # Another reconciler (a worker starting at the same moment) got there first.
        again = plan_item(want, await describe_actual(client, want.workflow_id))
        if again.action == "unchanged":
            return WorkflowOutcome(want.workflow_id, "create", "unchanged", "started concurrently")
        if again.action == "update":
            return await _configure(client, d, planned="create")
        return WorkflowOutcome(want.workflow_id, "create", "failed", "closed again while starting; re-run")


async def _configure(client: Client, d: DeclaredWorkflow, planned: str = "update") -> WorkflowOutcome:
    try:
        await client.get_workflow_handle(d.workflow_id).signal(CONFIGURE_SIGNAL, d.configure)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return WorkflowOutcome(d.workflow_id, planned, "failed", "closed while reconfiguring; re-run")
        raise
    return WorkflowOutcome(d.workflow_id, planned, "reconfigured")


async def reconcile_workflows(
    client: Client,
    spec: RepoSpec | None,
    *,
    task_queue: str,
    dry_run: bool = False,
    declared: list[DeclaredWorkflow] | None = None,
) -> WorkflowsReport:
    """Plan (and unless `dry_run`, apply) the declared workflows of a validated repo-spec, or
    exactly the `declared` ones when given (a test's own guardians)."""
    if declared is None:
        if spec is None:
            raise ValueError("reconcile_workflows needs a repo-spec or the declared workflows")
        declared = declared_workflows(spec)
    wanted = declared
    sem = asyncio.Semaphore(CONCURRENCY)

    async def read(d: DeclaredWorkflow) -> ActualWorkflow:
        async with sem:
            return await describe_actual(client, d.workflow_id)

    actual = {a.workflow_id: a for a in await asyncio.gather(*(read(d) for d in wanted))}
    report = WorkflowsReport(items=plan_workflows([d.desired for d in wanted], actual))
    if dry_run:
        return report

    async def apply(d: DeclaredWorkflow, item: WorkflowPlanItem) -> WorkflowOutcome:
        async with sem:
            try:
                if item.action == "create":
                    return await _start(client, d, task_queue)
                if item.action == "update":
                    return await _configure(client, d)
                return WorkflowOutcome(d.workflow_id, "unchanged", "unchanged")
            except Exception as exc:  # reported per workflow; the others still apply
                return WorkflowOutcome(d.workflow_id, item.action, "failed", f"{type(exc).__name__}: {exc}")

    # Guardians first (they protect), then the read model, then the watchdog that watches them.
    for kind in ("guardian", "status", "watchdog"):
        group = [(d, i) for d, i in zip(wanted, report.items, strict=True) if d.desired.kind == kind]
        report.outcomes += await asyncio.gather(*(apply(d, i) for d, i in group))
    report.applied = True
    return report
