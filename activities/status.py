"""Activity `notify_status`: workflows tell the status workflow about a change."""

from __future__ import annotations

from temporalio import activity

from govfleet.contracts.status import NOTIFY_STATUS_ACTIVITY, StatusUpdate
from govfleet.status_client import tell_status
from workers.resources import Resources


class StatusActivities:
    def __init__(self, resources: Resources):
        self._resources = resources

    @activity.defn(name=NOTIFY_STATUS_ACTIVITY)
    async def notify_status(self, update: StatusUpdate) -> None:
        await tell_status(self._resources.client, activity.info().task_queue, update)
