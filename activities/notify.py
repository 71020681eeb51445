"""Activity `send_notification`: guardian alerts and heartbeat failures to people.

Channels, from repo-spec `guardian.notifications` (or those of the guardian in `guardians`
that the notification's `data.guardian_id` names; secrets are `${ENV_VAR}` references,
resolved from the worker's environment when the activity runs; an unset one is skipped
with a warning):

- `admin_urls`: apprise URLs that get every notification;
- `urgent_urls`: apprise URLs that also get urgent ones (`NotificationRequest.urgent`);
- `webhook`: a POST of a JSON body (`webhook_payload`) signed with HMAC-SHA256
  (`X-Govfleet-Signature: sha256=<hex>`) and carrying `X-Govfleet-Idempotency-Key`.

and, from the worker's settings (the original system's variables), for every notification:

- `SLACK_WEBHOOK_URL`: a Slack incoming webhook, POSTed `{"text": …}` (`slack_payload`): every
  notification;
- `ADMIN_EMAIL` (over `SMTP_URL`, from `SMTP_FROM`): urgent ones.

Apprise URLs of the generic JSON / form / XML kinds (`json://`, `form://`, `xml://` and
their `s` variants) also get the `X-Govfleet-Idempotency-Key` header.

Delivery is at least once, per channel. Every channel that accepts a notification is
recorded in `notification_deliveries` under (idempotency key, channel); a retry of the
activity skips those and sends only to the rest. While that table cannot be read or written
(PostgreSQL down: an alert about exactly that must still go out) the activity sends to every
channel anyway and logs that the record is missing, so a retry may send a channel twice.
When any channel fails, the channels that did succeed are recorded first, then the activity
raises (`NotificationDeliveryFailed`, retryable), so Temporal retries it with the caller's
retry policy. An apprise URL that apprise cannot parse is a configuration error: the activity
then fails non-retryably (`NotificationChannelInvalid`) once every other channel is done. Callers run it in the
background (never in the check loop's critical path) and catch its final failure.

Result: `NotificationResult` (as a dict when the caller gives no result type).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from urllib.parse import quote, urlsplit

import apprise
import psycopg
from psycopg_pool import PoolTimeout
from temporalio import activity
from temporalio.exceptions import ApplicationError

from govfleet.contracts.notifications import (
    RESEND_PENDING_ACTIVITY,
    SEND_NOTIFICATION_ACTIVITY,
    NotificationRequest,
    NotificationResult,
    ResendPendingInput,
    ResendPendingResult,
)
from govfleet.domain.email_channel import SmtpServer, notification_email, parse_smtp_url
from govfleet.domain.notification_state import public_error
from govfleet.domain.webhook_signature import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, canonical_body, sign_body
from govfleet.logging import get_logger
from govfleet.notify_channels import (
    Channel,
    all_channels,
    notifying_guardian,
)
from govfleet.store import notifications as deliveries
from workers.resources import Resources

log = get_logger("govfleet.notify")

APPRISE_TIMEOUT_SECONDS = 15.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
SMTP_TIMEOUT_SECONDS = 15.0
DELIVERIES_TIMEOUT_SECONDS = 2.0  # waiting longer for the deliveries table only delays the notification
_HEADER_SCHEMES = {"json", "jsons", "form", "forms", "xml", "xmls"}
_APPRISE_HAS_TIMEOUT = "timeout" in inspect.signature(apprise.Apprise.notify).parameters


def slack_payload(req: NotificationRequest) -> dict:
    """What a Slack incoming webhook takes: the title in bold, then the body."""
    return {"text": f"*{req.title}*\n{req.body}"}


def with_idempotency_header(url: str, key: str) -> str:
    """Apprise's generic JSON/form/XML URLs take extra HTTP headers as `+Name=value`."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _HEADER_SCHEMES:
        return url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}+{IDEMPOTENCY_HEADER}={quote(key, safe='')}"


def webhook_payload(req: NotificationRequest) -> dict:
    """The webhook's JSON body: the same for every retry of one notification."""
    return {
        "idempotency_key": req.idempotency_key,
        "kind": req.kind,
        "urgent": req.urgent,
        "title": req.title,
        "body": req.body,
        "data": req.data,
        "source": "governance-fleet",
    }


def _where(url: str) -> str:
    """A URL without credentials, query or fragment, for messages."""
    p = urlsplit(url)
    host = p.hostname or ""
    port = f":{p.port}" if p.port else ""
    return f"{p.scheme}://{host}{port}{p.path}"


def _host(url: str) -> str:
    """Scheme, host and port alone: a Slack webhook's path is its secret."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.hostname or ''}{f':{p.port}' if p.port else ''}"


def _brief(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _smtp_send(server: SmtpServer, message: EmailMessage) -> None:
    """One SMTP session (blocking: run in a thread)."""
    context = ssl.create_default_context()
    if server.security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS)
    with smtp:
        if server.security == "starttls":
            smtp.starttls(context=context)
        if server.username:
            smtp.login(server.username, server.password or "")
        smtp.send_message(message)


class ChannelError(Exception):
    def __init__(self, channel: str, reason: str, *, permanent: bool = False):
        self.channel = channel
        self.reason = reason
        self.permanent = permanent
        super().__init__(f"{channel}: {reason}")


class NotificationActivities:
    def __init__(self, resources: Resources, environ: Mapping[str, str] | None = None):
        self._resources = resources
        self._environ = environ
        self._warned: set[str] = set()

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    async def _delivered(self, key: str) -> set[str]:
        """Channels that already got this notification; none known while the table is unreachable."""
        try:
            return await deliveries.delivered_channels(self._resources.pool, key, timeout=DELIVERIES_TIMEOUT_SECONDS)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("delivery records unreadable; sending to every channel", idempotency_key=key, error=_brief(exc))
            return set()

    async def _record(self, req: NotificationRequest, channels: list[str], attempt: int) -> None:
        if not channels:
            return
        try:
            await deliveries.record_deliveries(
                self._resources.pool, req, channels, attempt, timeout=DELIVERIES_TIMEOUT_SECONDS
            )
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # What went out went out; a retry of this notification may send these channels again.
            log.warning(
                "delivery not recorded", idempotency_key=req.idempotency_key, channels=channels, error=_brief(exc)
            )

    async def _send_apprise(self, channel: Channel, req: NotificationRequest) -> None:
        assert channel.target is not None
        ap = apprise.Apprise()
        if not ap.add(with_idempotency_header(channel.target, req.idempotency_key)):
            raise ChannelError(channel.name, "apprise cannot use this URL (check the variable's value)", permanent=True)
        kwargs: dict = {"timeout": APPRISE_TIMEOUT_SECONDS} if _APPRISE_HAS_TIMEOUT else {}
        result = await ap.async_notify(
            body=req.body,
            title=req.title,
            notify_type=apprise.NotifyType.FAILURE if req.urgent else apprise.NotifyType.WARNING,
            **kwargs,
        )
        if not result:
            logs = getattr(result, "logs", None)
            reasons = [e.message for e in logs() if str(e.level) in ("WARNING", "ERROR", "CRITICAL")] if logs else []
            raise ChannelError(channel.name, "; ".join(reasons) or "apprise reported a failure")

    async def _send_webhook(self, channel: Channel, req: NotificationRequest) -> None:
        assert channel.webhook_url is not None and channel.secret is not None
        body = canonical_body(webhook_payload(req))
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: req.idempotency_key,
            SIGNATURE_HEADER: sign_body(channel.secret, body),
            "User-Agent": "governance-fleet",
        }
        try:
            resp = await self._resources.http.post(
                channel.webhook_url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
            )
        except Exception as exc:  # httpx.HTTPError, invalid URL
            raise ChannelError(channel.name, f"{_where(channel.webhook_url)}: {type(exc).__name__}: {exc}") from None
        if not 200 <= resp.status_code < 300:
            raise ChannelError(channel.name, f"{_where(channel.webhook_url)} answered HTTP {resp.status_code}")

    async def _send_slack(self, channel: Channel, req: NotificationRequest) -> None:
        assert channel.target is not None
        try:
            resp = await self._resources.http.post(
                channel.target,
                json=slack_payload(req),
                headers={IDEMPOTENCY_HEADER: req.idempotency_key, "User-Agent": "governance-fleet"},
                timeout=WEBHOOK_TIMEOUT_SECONDS,
            )
        except Exception as exc:  # httpx.HTTPError; its message may hold the URL, whose path is the secret
            raise ChannelError(channel.name, f"{_host(channel.target)}: {type(exc).__name__}") from None
        if not 200 <= resp.status_code < 300:
            # Slack answers a short reason (`invalid_token`, `no_service`, …) in the body.
            raise ChannelError(
                channel.name, f"{_host(channel.target)} answered HTTP {resp.status_code}: {resp.text[:100]}"
            )

    async def _send_email(self, channel: Channel, req: NotificationRequest) -> None:
        assert channel.target is not None
        server = parse_smtp_url(channel.target)
        message = notification_email(
            sender=self._resources.config.settings.SMTP_FROM,
            recipients=channel.recipients,
            title=req.title,
            body=req.body,
            idempotency_key=req.idempotency_key,
            idempotency_header=IDEMPOTENCY_HEADER,
        )
        try:
            await asyncio.to_thread(_smtp_send, server, message)
        except (smtplib.SMTPException, OSError) as exc:
            where = f"{server.host}:{server.port}"
            raise ChannelError(channel.name, f"SMTP {where}: {type(exc).__name__}: {exc}") from None

    async def _send(self, channel: Channel, req: NotificationRequest) -> None:
        if channel.kind == "webhook":
            await self._send_webhook(channel, req)
        elif channel.kind == "slack":
            await self._send_slack(channel, req)
        elif channel.kind == "email":
            await self._send_email(channel, req)
        else:
            await self._send_apprise(channel, req)

    @activity.defn(name=SEND_NOTIFICATION_ACTIVITY)
    async def send_notification(self, req: NotificationRequest) -> NotificationResult:
        attempt = activity.info().attempt
        return await self.deliver(req, attempt=attempt)

    async def deliver(self, req: NotificationRequest, *, attempt: int = 1) -> NotificationResult:
        if not req.idempotency_key:
            raise ApplicationError(
                "notification has an empty idempotency_key", type="InvalidNotification", non_retryable=True
            )
        config = self._resources.config
        guardian_id = req.data.get("guardian_id")
        scope = notifying_guardian(config.spec, guardian_id).workflow_id
        channels, skipped = all_channels(config.spec, config.settings, guardian_id, req.urgent, self.environ)
        for name in skipped:  # warned once per channel and worker process, then logged at debug
            say = log.debug if name in self._warned else log.warning
            self._warned.add(name)
            say(
                "notification channel skipped: its secret is not set", channel=name, idempotency_key=req.idempotency_key
            )
        done = await self._delivered(req.idempotency_key)
        result = NotificationResult(
            idempotency_key=req.idempotency_key,
            already_delivered=[c.name for c in channels if c.name in done],
            skipped=skipped,
        )
        pending = [c for c in channels if c.name not in done]
        if not channels:
            # Nobody can be told (docs/notifications.md, "Never silent"): said in the log every time
            # for an urgent notice, which is then kept pending.
            say = log.warning if req.urgent or "" not in self._warned else log.debug
            self._warned.add("")
            say(
                "notification has no channel to go to: nobody is told",
                kind=req.kind,
                urgent=req.urgent,
                idempotency_key=req.idempotency_key,
                declared_none=config.settings.notifications_declared_none,
            )
        outcomes = await asyncio.gather(*(self._send(c, req) for c in pending), return_exceptions=True)
        errors: list[ChannelError] = []
        for channel, outcome in zip(pending, outcomes, strict=True):
            if outcome is None:
                result.delivered.append(channel.name)
            elif isinstance(outcome, ChannelError):
                errors.append(outcome)
            elif isinstance(outcome, BaseException):
                errors.append(ChannelError(channel.name, f"{type(outcome).__name__}: {outcome}"))
        # Record what did go out before reporting what did not: a retry must not re-send it.
        await self._record(req, result.delivered, attempt)
        await self._keep_state(req, scope, result, errors, skipped)
        for name in result.delivered:
            log.info("notification delivered", channel=name, kind=req.kind, idempotency_key=req.idempotency_key)
        if errors:
            result.failed = [str(e) for e in errors]
            retryable = [e for e in errors if not e.permanent]
            summary = (
                f"notification {req.idempotency_key} ({req.kind}): {len(errors)} of {len(channels)} channels "
                f"failed: {'; '.join(result.failed)}"
            )
            log.warning("notification channels failed", failed=result.failed, idempotency_key=req.idempotency_key)
            raise ApplicationError(
                summary,
                result.model_dump(),
                type="NotificationDeliveryFailed" if retryable else "NotificationChannelInvalid",
                non_retryable=not retryable,
            )
        return result

    async def _keep_state(
        self,
        req: NotificationRequest,
        scope: str,
        result: NotificationResult,
        errors: list[ChannelError],
        skipped: list[str],
    ) -> None:
        """Each channel's outcome, and an urgent notice that reached nobody kept pending (or,
        once a channel took it, no longer): what the status surface shows. Best effort: the
        database may be the very thing that is down."""
        reached = result.delivered + result.already_delivered
        result.pending = req.urgent and not reached
        try:
            await deliveries.record_channel_outcomes(
                self._resources.pool,
                scope,
                result.delivered,
                {e.channel: public_error(e.reason) for e in errors},
                timeout=DELIVERIES_TIMEOUT_SECONDS,
            )
            if not req.urgent:
                return
            if reached:
                await deliveries.mark_pending_delivered(
                    self._resources.pool, req.idempotency_key, reached, timeout=DELIVERIES_TIMEOUT_SECONDS
                )
            else:
                why = "; ".join(public_error(str(e)) for e in errors) or no_channel_reason(
                    skipped, self._resources.config.settings.notifications_declared_none
                )
                await deliveries.keep_pending(self._resources.pool, req, scope, why, timeout=DELIVERIES_TIMEOUT_SECONDS)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("notification state not recorded", idempotency_key=req.idempotency_key, error=_brief(exc))

    @activity.defn(name=RESEND_PENDING_ACTIVITY)
    async def resend_pending(self, inp: ResendPendingInput) -> ResendPendingResult:
        """Re-send the urgent notices no channel took (oldest first, at most `inp.limit`), each
        under its own idempotency key; one that still reaches nobody waits longer (1 min doubling
        to 6 h) before the next try. Called by every heartbeat (docs/notifications.md, "Never silent")."""
        due = await deliveries.due_pending(self._resources.pool, inp.limit, timeout=DELIVERIES_TIMEOUT_SECONDS)
        result = ResendPendingResult()
        for row in due:
            req = NotificationRequest.model_validate(row["request"])
            try:
                sent = await self.deliver(req, attempt=int(row["resends"]) + 2)
                reached = bool(sent.delivered or sent.already_delivered)
            except ApplicationError:
                reached = False
            if reached:
                result.delivered.append(req.idempotency_key)
            else:
                result.still_pending.append(req.idempotency_key)
                await deliveries.postpone_pending(
                    self._resources.pool, req.idempotency_key, timeout=DELIVERIES_TIMEOUT_SECONDS
                )
        if due:
            log.info(
                "pending urgent notices re-sent",
                delivered=len(result.delivered),
                still_pending=len(result.still_pending),
            )
        return result


def no_channel_reason(skipped: list[str], declared_none: bool) -> str:
    """Why a notice reached nobody although nothing failed."""
    if declared_none and not skipped:
        return "no notification channel: NOTIFY_URLS=none"
    unset = f" ({', '.join(skipped)}: secret not set)" if skipped else ""
    return f"no notification channel configured{unset}"
