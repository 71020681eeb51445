"""What a workflow asks the notification channels to deliver (guardian alerts, heartbeat
failures). Delivery is the `send_notification` activity's job (see
`govfleet.contracts.notifications`); the idempotency key makes every retry the same message."""

from __future__ import annotations

from pydantic import BaseModel, Field


class NotificationRequest(BaseModel):
    """Input of activity `send_notification`."""

    idempotency_key: str
    kind: str  # e.g. caution|warning|critical|emergency|tracker_unavailable|governance.heartbeat.low_balance|recovery
    urgent: bool = False
    title: str
    body: str
    data: dict = Field(default_factory=dict)
