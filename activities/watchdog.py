"""The watchdog's adapters (docs/watchdog.md):

- `watchdog_inspect`: describes each watched workflow id in Temporal (the latest run's status;
  "never started" when Temporal has no such id; whether its workflow task keeps failing) and reads
  the last successful heartbeat from the database. What cannot be read is reported as unreadable,
  never raised: the watchdog then changes nothing about it until the next look.
- `watchdog_record`: writes opened and resolved incidents (idempotency key per incident).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

from temporalio import activity
from temporalio.client import WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from govfleet.contracts.watchdog import (
    INSPECT_ACTIVITY,
    RECORD_ACTIVITY,
    InspectInput,
    Observation,
    RecordIncidentsInput,
)
from govfleet.domain.timestamps import iso_utc
from govfleet.store import watchdog as watchdog_store
from workers.resources import Resources

DESCRIBE_TIMEOUT = timedelta(seconds=5)
FAILING_TASK_ATTEMPT = 2  # a workflow task on this attempt or later has failed before
DB_TIMEOUT_SECONDS = 5.0


def _failing_task(desc: WorkflowExecutionDescription) -> str | None:
    """How a running workflow's workflow task keeps failing, from Temporal's description: a task
    on its second attempt or later has failed at least once and is being retried."""
    pending = desc.raw_description.pending_workflow_task
    if not desc.raw_description.HasField("pending_workflow_task") or pending.attempt < FAILING_TASK_ATTEMPT:
        return None
    since = pending.original_scheduled_time.ToDatetime(tzinfo=UTC)
    return f"its workflow task failed {pending.attempt - 1} times since {iso_utc(since)} and is retried"


class WatchdogActivities:
    def __init__(self, resources: Resources):
        self._r = resources

    async def _status(self, workflow_id: str) -> tuple[str, str | None, str | None, str | None]:
        """(id, status name or None when never started, how its workflow task keeps failing or None,
        error or None)."""
        try:
            desc = await self._r.client.get_workflow_handle(workflow_id).describe(rpc_timeout=DESCRIBE_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return workflow_id, None, None, None
            return workflow_id, None, None, f"{workflow_id}: {exc.status.name}: {exc.message}"
        except Exception as exc:  # timeouts, connection errors
            return workflow_id, None, None, f"{workflow_id}: {type(exc).__name__}: {exc}"
        status = desc.status.name if desc.status is not None else None
        return workflow_id, status, _failing_task(desc), None

    @activity.defn(name=INSPECT_ACTIVITY)
    async def inspect(self, req: InspectInput) -> Observation:
        obs = Observation()
        for wid, status, failing, error in await asyncio.gather(*(self._status(w) for w in req.workflow_ids)):
            if error is not None:
                obs.unreadable.append(wid)
                obs.errors.append(error)
            else:
                obs.statuses[wid] = status
                if failing is not None:
                    obs.failing_tasks[wid] = failing
        if req.heartbeat:
            try:
                obs.last_heartbeat_ok_at = await watchdog_store.last_successful_heartbeat(
                    self._r.pool, timeout=DB_TIMEOUT_SECONDS
                )
                obs.heartbeat_readable = True
            except Exception as exc:
                obs.errors.append(f"heartbeat: {type(exc).__name__}: {str(exc)[:200]}")
        return obs

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, req: RecordIncidentsInput) -> None:
        await watchdog_store.record_changes(self._r.pool, req.changes, timeout=DB_TIMEOUT_SECONDS)
