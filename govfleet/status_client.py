"""Telling the `governance-status` workflow that something changed, and reading its contract.

`read_status_v1` is the client side of `governance.status.v1`: forward compatible, it ignores
fields it does not know (a newer server may add some) and checks the ones it knows exactly as
the server does. The server's own model stays exact (`extra="forbid"`).

Signal-with-start (`tell_status`) or update-with-start (`refresh_status`, which waits until the
change is in the read model): the status workflow is started if it is not running, so a sender
never depends on start-up order. Best-effort by design: status is a read model rebuilt from the
database on start, so a lost update is repaired at the next rebuild, never a lost fact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from govfleet.contracts.status import (
    REFRESH_UPDATE,
    STATUS_WORKFLOW,
    STATUS_WORKFLOW_ID,
    UPDATE_SIGNAL,
    StatusUpdate,
)
from govfleet.domain.status import GovernanceStatusV1, RecentRunV1, UpcomingRun

if TYPE_CHECKING:  # Temporal is imported only by the sender, so a client reading the contract starts fast.
    from temporalio.client import Client


def _known(data: object, fields: object) -> object:
    """`data` with only the keys in `fields` (anything that is not a mapping is left to validation)."""
    return {k: v for k, v in data.items() if k in fields} if isinstance(data, dict) else data


def _known_list(items: object, fields: object) -> object:
    return [_known(i, fields) for i in items] if isinstance(items, list) else items


def read_status_v1(data: object) -> GovernanceStatusV1:
    """A `governance.status.v1` body as a client reads it: unknown fields (top level, in
    upcoming runs, in recent runs) are ignored; a known field that is wrong is still an error."""
    top = _known(data, GovernanceStatusV1.model_fields)
    if isinstance(top, dict):
        top = {
            **top,
            **(
                {"upcomingRuns": _known_list(top["upcomingRuns"], UpcomingRun.model_fields)}
                if "upcomingRuns" in top
                else {}
            ),
            **({"recentRuns": _known_list(top["recentRuns"], RecentRunV1.model_fields)} if "recentRuns" in top else {}),
        }
    return GovernanceStatusV1.model_validate(top)


def read_extended_schedules(data: object) -> list[dict]:
    """The `schedules` of `GET /api/v1/governance/status/extended` as a client reads them (for
    `govfleet status`'s table): `name`, `paused`, `source` (`temporal` | `cron-fallback`) and
    `nextRunAt` of each, unknown fields ignored. ValueError when the body is not that shape."""
    items = data.get("schedules") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("no list `schedules`")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"a schedule that is not an object: {item!r}")
        name, paused, source, at = item.get("name"), item.get("paused"), item.get("source"), item.get("nextRunAt")
        if not isinstance(name, str) or not isinstance(paused, bool) or not isinstance(source, str):
            raise ValueError(f"a schedule without name, paused or source: {item!r}")
        if at is not None and not isinstance(at, str):
            raise ValueError(f"a schedule whose nextRunAt is not a string: {item!r}")
        out.append({"name": name, "paused": paused, "source": source, "nextRunAt": at})
    return out


def read_extended_fleet(data: object) -> dict | None:
    """The extended status's fleet part (guardians, notifications, problems, warnings) as a client
    reads it for `govfleet status`, or None from an API that has none. Entries of the wrong type
    are left out; the table shows what is there."""
    if not isinstance(data, dict) or "guardians" not in data:
        return None
    out: dict = {}
    for key, kind in (("guardians", dict), ("notifications", dict), ("problems", str), ("warnings", str)):
        value = data.get(key)
        out[key] = [v for v in value if isinstance(v, kind)] if isinstance(value, list) else []
    out["guardians"] = [g for g in out["guardians"] if isinstance(g.get("workflow_id"), str)]
    return out


async def tell_status(client: Client, task_queue: str, update: StatusUpdate) -> None:
    from temporalio.common import WorkflowIDConflictPolicy

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
    from temporalio.client import WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy

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
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return bool(resp.pollers)
