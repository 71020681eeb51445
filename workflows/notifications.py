"""Sending one notification from a long-running workflow (the guardian, the watchdog).

The activity retries by its preset; when it finally gives up, the workflow logs it and goes on:
a failing channel must never fail or block the workflow that watches (docs/guardian.md,
"Notifications").
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotificationActivities
    from govfleet.contracts.notifications import NotificationRequest


async def send_notification(req: NotificationRequest, options: workflow.ActivityConfig) -> None:
    """Run `send_notification` with `options` (an activity preset), summarised by the kind;
    a final failure is logged, not raised."""
    try:
        await workflow.execute_activity_method(
            NotificationActivities.send_notification,
            req,
            **(options | {"summary": f"notify {req.kind}"}),
        )
    except ActivityError as exc:
        workflow.logger.warning("notification %s gave up: %s", req.idempotency_key, exc.cause or exc)
