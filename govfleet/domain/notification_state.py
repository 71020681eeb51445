"""Never silent (docs/notifications.md, "Never silent"), pure: whether the fleet can tell anyone, said
per guardian (each guardian's alerts go to its own channels; the heartbeat's and the runs' to
the `guardian` block's).

From what is configured (the channel names an urgent notice would go to, and those skipped
because their secret is unset), the operator's `NOTIFY_URLS=none`, how each channel fared the
last time (`notification_channel_state`) and the urgent notices that reached nobody
(`notification_pending`):

| state | when | says |
| --- | --- | --- |
| `none` | no channel configured | a problem: alerts reach nobody (health `degraded`) |
| `declared_none` | no channel, and `NOTIFY_URLS=none` | a warning: said on purpose, still said |
| `failing` | a configured channel's last attempt failed | a problem, with its last error |
| `ok` | otherwise | |

Urgent notices still pending are a problem in every state, until a channel takes them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from govfleet.domain.timestamps import iso_utc

NotificationStateName = Literal["ok", "failing", "none", "declared_none"]
# How messages name the `guardian` block's channels when the file declares no such guardian: they
# still carry the heartbeat's, the watchdog's and the runs' notices.
FLEET_LABEL = "the fleet (heartbeat, watchdog, runs)"
PUBLIC_ERROR_LIMIT = 300
# scheme://[userinfo@]host[:port] and whatever follows up to a space or a quote.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^\s/@'\"]*@)?([^\s/?#'\"]*)[^\s'\"]*")


def public_error(text: str) -> str:
    """A channel's error as it may be shown on the public status surface: every URL cut to its
    scheme and host (a webhook's path, a URL's query or credentials can be its secret), at most
    PUBLIC_ERROR_LIMIT characters."""
    cleaned = _URL.sub(lambda m: f"{m.group(1)}{m.group(2)}/…", text)
    return cleaned if len(cleaned) <= PUBLIC_ERROR_LIMIT else cleaned[: PUBLIC_ERROR_LIMIT - 1] + "…"


class ChannelRecord(BaseModel):
    """A row of `notification_channel_state`."""

    scope: str
    channel: str
    last_attempt_at: datetime
    last_delivered_at: datetime | None = None
    last_failed_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


class PendingNotice(BaseModel):
    """An urgent notice no channel took yet (a row of `notification_pending`)."""

    idempotency_key: str
    scope: str
    kind: str
    title: str
    created_at: datetime
    attempts: int
    last_attempt_at: datetime
    next_attempt_at: datetime
    last_error: str


class ChannelState(BaseModel):
    name: str
    configured: bool  # False: not configured any more, but used before (its record stays)
    state: Literal["ok", "failing", "unused"]  # unused: configured, never used yet
    last_delivered_at: datetime | None = None
    last_failed_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


class NotificationState(BaseModel):
    scope: str  # the guardian whose channels these are (the `guardian` block's: also the heartbeat's)
    label: str = ""  # how messages name it: the scope, or FLEET_LABEL for an undeclared `guardian` block
    state: NotificationStateName
    channels: list[ChannelState] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # configured, but their secret is unset
    declared_none: bool = False
    pending_urgent: int = 0
    pending: list[PendingNotice] = Field(default_factory=list)  # the oldest few
    problems: list[str] = Field(default_factory=list)  # make /health `degraded`
    warnings: list[str] = Field(default_factory=list)  # said, without degrading


def notification_state(
    *,
    scope: str,
    configured: list[str],
    skipped: list[str],
    declared_none: bool,
    records: list[ChannelRecord],
    pending: list[PendingNotice],
    pending_count: int | None = None,
    label: str | None = None,
) -> NotificationState:
    """The state of one guardian's channels (see the module docstring). `records` and `pending`
    may hold other scopes' rows: only `scope`'s count. `label` names it in messages (default: the
    scope)."""
    who = label or scope
    mine = {r.channel: r for r in records if r.scope == scope}
    channels: list[ChannelState] = []
    for name in configured:
        r = mine.get(name)
        if r is None:
            channels.append(ChannelState(name=name, configured=True, state="unused"))
            continue
        failing = r.consecutive_failures > 0
        channels.append(
            ChannelState(
                name=name,
                configured=True,
                state="failing" if failing else "ok",
                last_delivered_at=r.last_delivered_at,
                last_failed_at=r.last_failed_at,
                last_error=r.last_error if failing else None,
                consecutive_failures=r.consecutive_failures,
            )
        )
    waiting = [p for p in pending if p.scope == scope]
    count = len(waiting) if pending_count is None else pending_count
    problems: list[str] = []
    warnings: list[str] = []
    unset = f"; not set: {', '.join(skipped)}" if skipped else ""
    if not configured and declared_none:
        state: NotificationStateName = "declared_none"
        warnings.append(f"{who}: notifications are off on purpose (NOTIFY_URLS=none): its alerts reach nobody{unset}")
    elif not configured:
        state = "none"
        problems.append(
            f"{who}: no notification channel: its alerts reach nobody{unset} "
            "(set NOTIFY_URLS, SLACK_WEBHOOK_URL, ADMIN_EMAIL or guardian.notifications; or NOTIFY_URLS=none)"
        )
    else:
        failing = [c for c in channels if c.state == "failing"]
        state = "failing" if failing else "ok"
        for c in failing:
            since = iso_utc(c.last_failed_at) if c.last_failed_at else "?"
            problems.append(
                f"{who}: notification channel {c.name} is failing ({c.consecutive_failures} in a row, last at "
                f"{since}): {c.last_error or 'no reason recorded'}"
            )
    if count:
        oldest = min(waiting, key=lambda p: p.created_at) if waiting else None
        what = f"; oldest: {oldest.kind} since {iso_utc(oldest.created_at)} ({oldest.last_error})" if oldest else ""
        problems.append(f"{who}: {count} urgent notice(s) reached nobody and are pending{what}")
    return NotificationState(
        scope=scope,
        label=who,
        state=state,
        channels=channels,
        skipped=list(skipped),
        declared_none=declared_none,
        pending_urgent=count,
        pending=waiting,
        problems=problems,
        warnings=warnings,
    )


def not_funded_warning(balance: int, run_costs: list[int]) -> str | None:
    """`system tenant not funded` when its balance cannot pay the cheapest scheduled run."""
    paying = [c for c in run_costs if c > 0]
    if not paying or balance >= min(paying):
        return None
    return (
        f"system tenant not funded: balance {balance} credits, a governance run costs {min(paying)}; every run is "
        "refused until credits are bought"
    )
