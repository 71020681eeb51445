"""Activity `send_notification`: guardian alerts and heartbeat failures to people (the
cross-area delivery contract; the channels are `activities/notify.py`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from govfleet.domain.notifications import NotificationRequest

__all__ = [
    "RESEND_PENDING_ACTIVITY",
    "SEND_NOTIFICATION_ACTIVITY",
    "NotificationRequest",
    "NotificationResult",
    "ResendPendingInput",
    "ResendPendingResult",
]

SEND_NOTIFICATION_ACTIVITY = "send_notification"
RESEND_PENDING_ACTIVITY = "resend_pending_notifications"


class NotificationResult(BaseModel):
    idempotency_key: str
    delivered: list[str] = Field(default_factory=list)  # channels that got it in this attempt
    already_delivered: list[str] = Field(default_factory=list)  # channels that got it in an earlier attempt
    skipped: list[str] = Field(default_factory=list)  # channels whose secret is unset
    failed: list[str] = Field(default_factory=list)  # "channel: reason" (only in the raised error's details)
    # An urgent notice that reached no channel (none configured, or all failed): kept pending and
    # re-sent by the heartbeat until one takes it (docs/notifications.md, "Never silent").
    pending: bool = False


class ResendPendingInput(BaseModel):
    """Activity `resend_pending_notifications` (called by every heartbeat)."""

    limit: int = Field(default=10, ge=1, le=100)  # notices re-sent per call, oldest first


class ResendPendingResult(BaseModel):
    delivered: list[str] = Field(default_factory=list)  # idempotency keys a channel took now
    still_pending: list[str] = Field(default_factory=list)
