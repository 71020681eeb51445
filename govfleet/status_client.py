"""Telling the `governance-status` workflow that something changed.

Signal-with-start: the status workflow is started if it is not running, so a sender never
depends on start-up order. Best-effort by design: status is a read model rebuilt from the
database on start, so a lost update is repaired at the next rebuild, never a lost fact.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from govfleet.contracts.status import STATUS_WORKFLOW, STATUS_WORKFLOW_ID, UPDATE_SIGNAL, StatusUpdate


async def tell_status(client: Client, task_queue: str, update: StatusUpdate) -> None:
    await client.start_workflow(
        STATUS_WORKFLOW,
        {},
        id=STATUS_WORKFLOW_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=UPDATE_SIGNAL,
        start_signal_args=[update],
    )
