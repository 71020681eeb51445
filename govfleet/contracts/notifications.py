"""Activity `send_notification`: guardian alerts and heartbeat failures to people (the
cross-area delivery contract; the channels are `activities/notify.py`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from govfleet.domain.notifications import NotificationRequest

__all__ = ["SEND_NOTIFICATION_ACTIVITY", "NotificationRequest", "NotificationResult"]

SEND_NOTIFICATION_ACTIVITY = "send_notification"


class NotificationResult(BaseModel):
    idempotency_key: str
    delivered: list[str] = Field(default_factory=list)  # channels that got it in this attempt
    already_delivered: list[str] = Field(default_factory=list)  # channels that got it in an earlier attempt
    skipped: list[str] = Field(default_factory=list)  # channels whose secret is unset
    failed: list[str] = Field(default_factory=list)  # "channel: reason" (only in the raised error's details)
