"""Which notification channels a notification goes to (docs/guardian.md, "Notifications"): the
plan the `send_notification` activity sends by, and the one the status surface reports, so the
two cannot disagree. No sending here (that is `activities/notify.py`).

- repo-spec `guardian.notifications` (or that of the guardian in `guardians` that the
  notification's `data.guardian_id` names): `admin_urls` (apprise URLs, every notification),
  `urgent_urls` (also urgent ones), `webhook` (every one); secrets are `${ENV_VAR}` references
  resolved from the worker's environment, and an unset one is *skipped*;
- the worker's settings: `NOTIFY_URLS` (apprise URLs, every notification), `SLACK_WEBHOOK_URL`
  (every one), `ADMIN_EMAIL` over `SMTP_URL` (urgent ones).

Channel names never hold a secret: `apprise:${VAR}`, `apprise:NOTIFY_URLS`, `webhook`,
`slack:SLACK_WEBHOOK_URL`, `email:ADMIN_EMAIL`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from govfleet.domain.notification_state import (
    FLEET_LABEL,
    ChannelRecord,
    NotificationState,
    PendingNotice,
    notification_state,
)
from govfleet.domain.secret_ref import resolve_secret
from govfleet.repo_spec import GuardianSpec, NotificationsSpec, RepoSpec
from govfleet.settings import Config, Settings

WEBHOOK_CHANNEL = "webhook"
SLACK_CHANNEL = "slack:SLACK_WEBHOOK_URL"
EMAIL_CHANNEL = "email:ADMIN_EMAIL"
NOTIFY_URLS_CHANNEL = "apprise:NOTIFY_URLS"


class Channel(BaseModel):
    name: str  # never holds a secret (see the module's docstring)
    kind: str  # 'apprise' | 'webhook' | 'slack' | 'email'
    target: str | None = None  # the resolved URL (secret: never logged)
    secret: str | None = None  # the webhook's HMAC secret
    webhook_url: str | None = None
    recipients: list[str] = []  # email


def environment_channels(settings: Settings, urgent: bool) -> list[Channel]:
    """The channels the worker's environment adds to every notification: NOTIFY_URLS and Slack
    always, the admins' email for urgent ones."""
    channels: list[Channel] = []
    urls = settings.notify_urls()
    for i, url in enumerate(urls, 1):
        name = NOTIFY_URLS_CHANNEL if len(urls) == 1 else f"{NOTIFY_URLS_CHANNEL}#{i}"
        channels.append(Channel(name=name, kind="apprise", target=url))
    if settings.SLACK_WEBHOOK_URL:
        channels.append(Channel(name=SLACK_CHANNEL, kind="slack", target=settings.SLACK_WEBHOOK_URL))
    if urgent and settings.ADMIN_EMAIL and settings.SMTP_URL:
        channels.append(
            Channel(name=EMAIL_CHANNEL, kind="email", target=settings.SMTP_URL, recipients=settings.admin_emails())
        )
    return channels


def notifying_guardian(spec: RepoSpec, guardian_id: object) -> GuardianSpec:
    """The guardian whose channels a notification uses: the one its `data.guardian_id` names, else
    the `guardian` block (heartbeat, runs)."""
    found = spec.guardian_by_id(guardian_id) if isinstance(guardian_id, str) else None
    return found or spec.guardian


def channels_spec(spec: RepoSpec, guardian_id: object) -> NotificationsSpec:
    return notifying_guardian(spec, guardian_id).notifications


def apprise_channel_name(ref: str) -> str:
    return f"apprise:{ref}"


def plan_channels(spec: NotificationsSpec, urgent: bool, environ: Mapping[str, str]) -> tuple[list[Channel], list[str]]:
    """The repo-spec channels a notification goes to, and the names of those skipped because
    their secret is unset. Admin URLs always; urgent URLs too when urgent; the webhook always."""
    refs = list(spec.admin_urls) + (list(spec.urgent_urls) if urgent else [])
    channels: list[Channel] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for ref in refs:
        name = apprise_channel_name(ref)
        if name in seen:
            continue
        seen.add(name)
        url = resolve_secret(ref, environ)
        if url is None:
            skipped.append(name)
        else:
            channels.append(Channel(name=name, kind="apprise", target=url))
    if spec.webhook is not None:
        secret = resolve_secret(spec.webhook.secret, environ)
        if secret is None:
            skipped.append(WEBHOOK_CHANNEL)
        else:
            channels.append(Channel(name=WEBHOOK_CHANNEL, kind="webhook", webhook_url=spec.webhook.url, secret=secret))
    return channels, skipped


def all_channels(
    spec: RepoSpec, settings: Settings, guardian_id: object, urgent: bool, environ: Mapping[str, str]
) -> tuple[list[Channel], list[str]]:
    """Every channel a notification about `guardian_id` goes to (repo-spec's, then the
    environment's) and the skipped ones."""
    channels, skipped = plan_channels(channels_spec(spec, guardian_id), urgent, environ)
    return channels + environment_channels(settings, urgent), skipped


def notification_scopes(spec: RepoSpec) -> list[str]:
    """Whose channels there are: every declared guardian, and the `guardian` block when the file
    declares only `guardians` (the heartbeat's and the runs' notices still use it)."""
    ids = [g.workflow_id for g in spec.declared_guardians()]
    if spec.guardian.workflow_id not in ids:
        ids.append(spec.guardian.workflow_id)
    return ids


def scope_states(
    config: Config,
    environ: Mapping[str, str],
    *,
    records: Sequence[ChannelRecord] = (),
    pending: Sequence[PendingNotice] = (),
    pending_counts: Mapping[str, int] | None = None,
) -> list[NotificationState]:
    """Each scope's notification state: its configured channels (this process's view), with the
    delivery records and pending notices when given (none: what a banner says at start)."""
    return [
        notification_state(
            scope=scope,
            configured=[c.name for c in channels],
            skipped=skipped,
            declared_none=config.settings.notifications_declared_none,
            records=list(records),
            pending=list(pending),
            pending_count=None if pending_counts is None else pending_counts.get(scope, 0),
            label=None if config.spec.guardian_by_id(scope) else FLEET_LABEL,
        )
        for scope in notification_scopes(config.spec)
        for channels, skipped in [all_channels(config.spec, config.settings, scope, True, environ)]
    ]


def banner_lines(config: Config, environ: Mapping[str, str]) -> list[tuple[bool, str]]:
    """One line per scope for a start banner: (whether anyone is told, what to say)."""
    lines = []
    for s in scope_states(config, environ):
        if s.channels:
            lines.append((True, f"{s.label}: {', '.join(c.name for c in s.channels)}"))
        else:
            lines.append((False, (s.problems or s.warnings)[0]))
    return lines
