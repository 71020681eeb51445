"""Names and payloads shared between areas: workflow types, well-known ids, and the
cross-area activity/signal payloads. Pure (pydantic only), safe to import in workflows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from govfleet.domain.notifications import NotificationRequest  # noqa: F401  (re-exported)

# Workflow types (as registered with Temporal) and well-known workflow ids (PRODUCT.md).
GUARDIAN_WORKFLOW = "GovernanceGuardian"
GUARDIAN_WORKFLOW_ID = "governance-guardian"
STATUS_WORKFLOW = "GovernanceStatus"
STATUS_WORKFLOW_ID = "governance-status"
PAYMENT_WORKFLOW = "Payment"
HEARTBEAT_WORKFLOW = "GovernanceHeartbeat"
HEARTBEAT_SCHEDULE_ID = "governance:heartbeat"
GOVERNANCE_RUN_WORKFLOW = "GovernanceRun"

# Cross-area activities, called by name so areas do not import each other's adapters.
NOTIFY_STATUS_ACTIVITY = "notify_status"
SEND_NOTIFICATION_ACTIVITY = "send_notification"


def payment_workflow_id(client_payment_id: str) -> str:
    return f"payment-{client_payment_id}"


class RecentRun(BaseModel):
    id: str
    title: str | None = None
    started_at: datetime
    last_activity: datetime


class StatusUpdate(BaseModel):
    """What an area tells the `governance-status` workflow (activity `notify_status`,
    delivered as signal `update` with signal-with-start). Every field is optional."""

    system_credits: str | None = None  # the system tenant's balance after a change (bigint as string)
    run: RecentRun | None = None  # a governance run started or finished
    schedules_changed: bool = False  # the reconciler changed schedules: re-read them
    heartbeat: dict | None = None  # the latest heartbeat CloudEvent's data (status, time, checks)
    source: str = Field("", description="who sent it, for the audit trail")
