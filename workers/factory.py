"""The one worker factory: every workflow and activity of the fleet, registered once.

Each area (ledger, guardian, schedules, status) contributes its workflows and its activity
instances in `workers/registry.py`; this module wires them into a Temporal `Worker`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from workers.registry import activities_for, workflows
from workers.resources import Resources


class _BindLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity_id=info.activity_id,
            activity_type=info.activity_type,
            attempt=info.attempt,
        ):
            return await super().execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Binds workflow and activity ids into structlog's context for every activity call."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindLogContext(next)


# Failover (see docs/fleet.md): when a worker dies, a workflow it had cached waits on that
# worker's sticky queue for this long before the server hands its next task to another worker.
STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT = timedelta(seconds=1)
# Every guardian of the fleet fits in one survivor's cache, so a failover replays each once.
MAX_CACHED_WORKFLOWS = 4000
FAILOVER_OPTIONS: dict[str, Any] = {
    "sticky_queue_schedule_to_start_timeout": STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT,
    "max_cached_workflows": MAX_CACHED_WORKFLOWS,
}


def build_worker(
    client: Client,
    resources: Resources,
    *,
    task_queue: str | None = None,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Any] = (),
    **worker_kwargs: Any,
) -> Worker:
    """The fleet's worker; `worker_kwargs` add to or override `FAILOVER_OPTIONS`."""
    # On shutdown (SIGTERM) running activities may finish this long before they are cancelled.
    grace = timedelta(seconds=resources.config.settings.WORKER_SHUTDOWN_GRACE_SECONDS)
    worker_kwargs.setdefault("graceful_shutdown_timeout", grace)
    return Worker(
        client,
        task_queue=task_queue or resources.config.settings.TEMPORAL_TASK_QUEUE,
        workflows=[*workflows(), *extra_workflows],
        activities=[*activities_for(resources), *extra_activities],
        interceptors=[LogContextInterceptor()],
        **{**FAILOVER_OPTIONS, **worker_kwargs},
    )
