"""The original system's ledger ingestion, which the fleet schedules but never runs: workflow
`CollectEpochWorkflow` on the task queue `ledger-tasks`, polled by the original system's own
workers (docs/schedules.md, "The original's own words").

A repo-spec charter `LEDGER_INGEST` (or, as the original does, an `activity_ledger` section
without one) becomes a schedule `governance:ledger_ingest` that starts this workflow with the
same arguments the original's schedule sync gives it, so the original's workers keep running
it after the fleet took the schedule over. Nothing here is a workflow of ours: there is no
worker, no activity, no charge.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "COLLECT_EPOCH_WORKFLOW",
    "LEDGER_INGEST_CHARTER",
    "LEDGER_INGEST_CRON",
    "LEDGER_INGEST_GRAPH_ID",
    "LEDGER_TASK_QUEUE",
    "ORIGINAL_SYSTEM_PRINCIPAL_ID",
    "ORIGINAL_TASK_QUEUE",
    "ActivitySourceArgs",
    "LedgerIngestArgs",
    "LedgerIngestRunV1",
    "original_task_queue",
]

COLLECT_EPOCH_WORKFLOW = "CollectEpochWorkflow"
LEDGER_TASK_QUEUE = "ledger-tasks"
# The queue the original's workers poll for everything else (its TEMPORAL_TASK_QUEUE), and
# `<it>-<node id>`, one per node, beside it.
ORIGINAL_TASK_QUEUE = "scheduler-tasks"
LEDGER_INGEST_CHARTER = "LEDGER_INGEST"  # matched ignoring case, as the original matches it
# The original schedules the ingestion daily when the file has a ledger but no LEDGER_INGEST entry.
LEDGER_INGEST_CRON = "0 0 * * *"
LEDGER_INGEST_GRAPH_ID = "ledger:ingest"
# The original's system-tenant principal, a constant seeded by its migrations; its schedules
# name it as the run's requester.
ORIGINAL_SYSTEM_PRINCIPAL_ID = "00000000-0000-4000-a000-000000000001"


def original_task_queue(name: str) -> bool:
    """A task queue the original system's workers poll: sharing one with them makes each side
    take the other's tasks (docs/schedules.md, "Task queues")."""
    return name in (LEDGER_TASK_QUEUE, ORIGINAL_TASK_QUEUE) or name.startswith(ORIGINAL_TASK_QUEUE + "-")


class ActivitySourceArgs(BaseModel):
    """One `activity_ledger.activity_sources` entry, in the original's camelCase."""

    model_config = ConfigDict(frozen=True)

    attributionPipeline: str
    sourceRefs: list[str]
    excludedLogins: list[str] | None = None


class LedgerIngestRunV1(BaseModel):
    """The workflow's own input (`input` of the envelope below): the ledger section of the file."""

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = 1
    scopeId: str
    scopeKey: str
    epochLengthDays: int
    activitySources: dict[str, ActivitySourceArgs]
    baseIssuanceCredits: str | None = None
    approvers: list[str] | None = None


class LedgerIngestArgs(BaseModel):
    """The schedule's one argument: the envelope the original's schedules give every workflow
    they start. `CollectEpochWorkflow` reads `input` alone; `executionGrantId` and
    `dbScheduleId` name rows in the original's database, which the fleet cannot know: they are
    null (docs/schedules.md, "The original's own words")."""

    model_config = ConfigDict(frozen=True)

    nodeId: str
    graphId: str = LEDGER_INGEST_GRAPH_ID
    executionGrantId: str | None = None
    input: LedgerIngestRunV1
    runKind: str = "system_scheduled"
    triggerSource: str = "temporal_schedule"
    triggerRef: str
    requestedBy: str = ORIGINAL_SYSTEM_PRINCIPAL_ID
    dbScheduleId: str | None = None
    temporalScheduleId: str = Field(min_length=1)
