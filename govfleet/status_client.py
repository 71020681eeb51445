"""Telling the `governance-status` workflow that something changed.

Signal-with-start (`tell_status`) or update-with-start (`refresh_status`, which waits until the
change is in the read model): the status workflow is started if it is not running, so a sender
never depends on start-up order. Best-effort by design: status is a read model rebuilt from the
database on start, so a lost update is repaired at the next rebuild, never a lost fact.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from govfleet.contracts.status import (
    REFRESH_UPDATE,
    STATUS_WORKFLOW,
    STATUS_WORKFLOW_ID,
    UPDATE_SIGNAL,
    StatusUpdate,
)


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


async def refresh_status(client: Client, task_queue: str, update: StatusUpdate) -> None:
    """Update-with-start `refresh`: returns once the status workflow has applied `update` and
    read again what it names (a worker must run the workflow). For writers whose next read must
    show their write (the reconciler)."""
    await client.execute_update_with_start_workflow(
        REFRESH_UPDATE,
        update,
        start_workflow_operation=WithStartWorkflowOperation(
            STATUS_WORKFLOW,
            {},
            id=STATUS_WORKFLOW_ID,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        ),
    )


async def workers_poll(client: Client, task_queue: str) -> bool:
    """Whether any worker polled `task_queue` for workflow tasks lately (Temporal keeps pollers
    for a few minutes): without one, an update would wait for nobody."""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return bool(resp.pollers)
