"""Workflow `GovernanceHeartbeat`, started by the `governance:heartbeat` schedule every interval
(names and payloads: govfleet/contracts/heartbeat.py; the checks: docs/heartbeat.md).

gather (DB) → evaluate (pure) → CloudEvent → record (DB) → POST to the sink (optional) →
notifications (deduped, recovery) → tell the status workflow.

Only the gathering decides whether the tenant can act: the record, the sink, the notifications
and the status update are each best-effort with bounded timeouts, so a heartbeat always
completes. A heartbeat whose checks failed ends the workflow as failed (red in the Temporal UI,
after everything was recorded and sent); the schedule carries on regardless.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.heartbeat import HeartbeatActivities
    from activities.notify import NotificationActivities
    from activities.status import StatusActivities
    from govfleet.contracts.heartbeat import (
        HEARTBEAT_WORKFLOW,
        HeartbeatInput,
        HeartbeatResult,
        PostSinkInput,
        RecordHeartbeatInput,
        RenewGrantInput,
    )
    from govfleet.contracts.notifications import NotificationRequest, ResendPendingInput
    from govfleet.contracts.status import StatusUpdate
    from govfleet.domain.grant_renewal import (
        KIND_GRANT_RENEWAL_FAILED,
        KIND_GRANT_RENEWAL_OFF,
        KIND_GRANT_RENEWED,
        GrantRenewalPolicy,
        plan_grant_renewal,
    )
    from govfleet.domain.heartbeat import (
        CHECK_SYSTEM_TENANT,
        KIND_FAILED,
        KIND_GRANT_EXPIRING,
        KIND_LOW_BALANCE,
        KIND_RECOVERY,
        CheckResult,
        HeartbeatEvaluation,
        HeartbeatFacts,
        HeartbeatThresholds,
        build_cloudevent,
        evaluate,
        heartbeat_source,
        plan_notifications,
    )
    from govfleet.domain.timestamps import iso_utc
    from workflows.activity_options import (
        HEARTBEAT_DB,
        HEARTBEAT_NOTIFICATION,
        HEARTBEAT_RESEND,
        HEARTBEAT_SINK,
        HEARTBEAT_STATUS,
    )
    from workflows.failures import cause_message

# docs/patches.md
GRANT_RENEWAL_PATCH = "heartbeat-grant-renewal"
RESEND_PENDING_PATCH = "heartbeat-resend-pending"

_TITLES = {
    KIND_FAILED: "Governance heartbeat FAILED: the system tenant cannot act",
    KIND_LOW_BALANCE: "Governance heartbeat: system tenant balance is low",
    KIND_GRANT_EXPIRING: "Governance heartbeat: the governance execution grant expires soon",
}


@workflow.defn(name=HEARTBEAT_WORKFLOW)
class GovernanceHeartbeat:
    @workflow.run
    async def run(self, inp: HeartbeatInput) -> HeartbeatResult:
        info = workflow.info()
        now = workflow.now()
        event_id = info.workflow_id
        thresholds = HeartbeatThresholds(
            low_balance_threshold_credits=inp.low_balance_threshold_credits,
            grant_expiry_warning_hours=inp.grant_expiry_warning_hours,
        )
        problems: list[str] = []
        grant_notices: list[NotificationRequest] = []
        grant_renewal: str | None = None

        try:
            gathered = await workflow.execute_activity_method(HeartbeatActivities.gather, **HEARTBEAT_DB)
            facts = gathered.facts
            if workflow.patched(GRANT_RENEWAL_PATCH):
                facts, grant_notices, grant_renewal = await self._renew_grant(inp, facts, now, event_id)
            evaluation = evaluate(facts, thresholds, now)
            previous = gathered.previous
        except ActivityError as err:
            # The database cannot be read: the tenant cannot act. Say so, loudly.
            reason = f"cannot read the system tenant: {cause_message(err)}"
            evaluation = HeartbeatEvaluation(
                status="failed",
                alerts=[KIND_FAILED],
                balance=None,
                grant_expires_at=None,
                checks=[CheckResult(name=CHECK_SYSTEM_TENANT, ok=False, detail=reason)],
            )
            previous = None
            problems.append(reason)

        interval = timedelta(minutes=inp.interval_minutes)
        grace = timedelta(seconds=inp.grace_seconds)
        plan = plan_notifications(
            evaluation,
            previous,
            now=now,
            interval=interval,
            grace=grace,
            renotify=timedelta(minutes=inp.renotify_minutes),
        )
        event = build_cloudevent(
            event_id=event_id,
            source=heartbeat_source(inp.dao_name),
            time=now,
            evaluation=evaluation,
            thresholds=thresholds,
            notified_at=plan.notified_at,
        )
        result = HeartbeatResult(
            event_id=event_id, status=evaluation.status, alerts=evaluation.alerts, grant_renewal=grant_renewal
        )
        # Prometheus (through the worker runtime): 1 ok, 0.5 degraded, 0 failed.
        workflow.metric_meter().create_gauge_float("governance_heartbeat_health", "1 ok, 0.5 degraded, 0 failed").set(
            {"ok": 1.0, "failed": 0.0}.get(evaluation.status, 0.5)
        )

        try:
            recorded = await workflow.execute_activity_method(
                HeartbeatActivities.record, RecordHeartbeatInput(event=event), **HEARTBEAT_DB
            )
            result.recorded = True
            if not recorded.inserted:
                problems.append(f"event {event_id} was already recorded")
        except ActivityError as err:
            problems.append(f"could not record the heartbeat event: {cause_message(err)}")

        if inp.sink_url:
            try:
                await workflow.execute_activity_method(
                    HeartbeatActivities.post_sink, PostSinkInput(url=inp.sink_url, event=event), **HEARTBEAT_SINK
                )
                result.sink_delivered = True
            except ActivityError as err:
                result.sink_delivered = False
                problems.append(f"sink: {cause_message(err)}")

        details = "\n".join(f"- {c.name}: {'ok' if c.ok else 'FAILED'} — {c.detail}" for c in evaluation.checks)
        requests = [
            NotificationRequest(
                idempotency_key=f"{event_id}:{kind}",
                kind=kind,
                urgent=(kind == KIND_FAILED),
                title=_TITLES.get(kind, kind),
                body=details,
                data=event["data"],
            )
            for kind in plan.notify
        ]
        if plan.recovery:
            requests.append(
                NotificationRequest(
                    idempotency_key=f"{event_id}:{KIND_RECOVERY}",
                    kind=KIND_RECOVERY,
                    title="Governance heartbeat recovered",
                    body=f"The heartbeat is ok again (it was {plan.recovered_from}).\n{details}",
                    data={**event["data"], "recovered_from": plan.recovered_from},
                )
            )
        requests += grant_notices
        for req in requests:
            try:
                await workflow.execute_activity_method(
                    NotificationActivities.send_notification, req, **HEARTBEAT_NOTIFICATION
                )
                result.notified.append(req.kind)
            except ActivityError as err:
                problems.append(f"notification {req.kind}: {cause_message(err)}")

        if workflow.patched(RESEND_PENDING_PATCH):
            # Urgent notices that reached nobody, sent again (docs/notifications.md, "Never silent").
            try:
                resent = await workflow.execute_activity_method(
                    NotificationActivities.resend_pending, ResendPendingInput(), **HEARTBEAT_RESEND
                )
                result.resent, result.still_pending = resent.delivered, len(resent.still_pending)
            except ActivityError as err:
                problems.append(f"pending notices: {cause_message(err)}")

        try:
            await workflow.execute_activity_method(
                StatusActivities.notify_status,
                StatusUpdate(heartbeat={**event["data"], "time": event["time"], "id": event_id}, source="heartbeat"),
                **HEARTBEAT_STATUS,
            )
        except ActivityError as err:
            problems.append(f"status: {cause_message(err)}")

        result.problems = problems
        if evaluation.status == "failed":
            failed = "; ".join(c.detail for c in evaluation.checks if not c.ok)
            raise ApplicationError(
                f"heartbeat failed: {failed}",
                result.model_dump(mode="json"),
                type="HeartbeatFailed",
                non_retryable=True,
            )
        return result

    async def _renew_grant(
        self, inp: HeartbeatInput, facts: HeartbeatFacts, now: datetime, event_id: str
    ) -> tuple[HeartbeatFacts, list[NotificationRequest], str | None]:
        """Renew the governance grant inside the renewal window (docs/heartbeat.md, "The
        governance grant"); the facts as they are afterwards, the notices to send, what was done."""
        policy = GrantRenewalPolicy.model_construct(  # validated in the repo-spec
            auto_renew=inp.grant_auto_renew,
            renew_within_days=inp.grant_renew_within_days,
            renew_for_days=inp.grant_renew_for_days,
        )
        plan = plan_grant_renewal(facts, policy, now)
        day = now.date().isoformat()
        data = {
            "grant_id": facts.grant_id,
            "grant_expires_at": iso_utc(facts.grant_expires_at) if facts.grant_expires_at else None,
        }
        if plan.action == "renewal_off":
            notice = NotificationRequest(
                idempotency_key=f"governance:grant-renewal-off:{day}",  # once a day
                kind=KIND_GRANT_RENEWAL_OFF,
                title="Governance grant expires soon and automatic renewal is off",
                body=plan.detail,
                data=data,
            )
            return facts, [notice], plan.detail
        if plan.action != "renew" or plan.until is None:
            return facts, [], None
        try:
            renewed = await workflow.execute_activity_method(
                HeartbeatActivities.renew_grant, RenewGrantInput(until=plan.until), **HEARTBEAT_DB
            )
        except ActivityError as err:
            why = f"renewing the governance grant failed: {cause_message(err)} ({plan.detail})"
            notice = NotificationRequest(
                idempotency_key=f"governance:grant-renewal-failed:{day}",  # once a day
                kind=KIND_GRANT_RENEWAL_FAILED,
                urgent=True,
                title="Governance grant renewal FAILED: renew it with `govfleet grant renew`",
                body=why,
                data=data,
            )
            return facts, [notice], why
        notice = NotificationRequest(
            idempotency_key=f"{event_id}:{KIND_GRANT_RENEWED}",
            kind=KIND_GRANT_RENEWED,
            title="Governance grant renewed",
            body=plan.detail,
            data={**data, "grant_expires_at": iso_utc(renewed.expires_at) if renewed.expires_at else None},
        )
        return facts.model_copy(update={"grant_expires_at": renewed.expires_at}), [notice], plan.detail
