"""GovernanceHeartbeat: started by the `governance:heartbeat` schedule every interval.

gather (DB) → evaluate (pure) → CloudEvent → record (DB) → POST to the sink (optional) →
notifications (deduped, recovery) → tell the status workflow.

Only the gathering decides whether the tenant can act: the record, the sink, the notifications
and the status update are each best-effort with bounded timeouts, so a heartbeat always
completes. A heartbeat whose checks failed ends the workflow as failed (red in the Temporal UI,
after everything was recorded and sent); the schedule carries on regardless.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from activities.heartbeat import (
        HeartbeatActivities,
        HeartbeatGathered,
        PostSinkInput,
        RecordHeartbeatInput,
    )
    from govfleet.contracts import (
        HEARTBEAT_WORKFLOW,
        NOTIFY_STATUS_ACTIVITY,
        SEND_NOTIFICATION_ACTIVITY,
        NotificationRequest,
        StatusUpdate,
    )
    from govfleet.domain.heartbeat import (
        CHECK_SYSTEM_TENANT,
        KIND_FAILED,
        KIND_GRANT_EXPIRING,
        KIND_LOW_BALANCE,
        KIND_RECOVERY,
        CheckResult,
        HeartbeatEvaluation,
        HeartbeatThresholds,
        build_cloudevent,
        evaluate,
        heartbeat_source,
        plan_notifications,
    )
    from govfleet.domain.schedule_spec import HeartbeatInput

__all__ = ["GovernanceHeartbeat", "HeartbeatInput", "HeartbeatResult"]

DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                       maximum_interval=timedelta(seconds=10), maximum_attempts=4)
SIDE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=10), maximum_attempts=3)

_TITLES = {
    KIND_FAILED: "Governance heartbeat FAILED: the system tenant cannot act",
    KIND_LOW_BALANCE: "Governance heartbeat: system tenant balance is low",
    KIND_GRANT_EXPIRING: "Governance heartbeat: the governance execution grant expires soon",
}


class HeartbeatResult(BaseModel):
    event_id: str
    status: str
    alerts: list[str] = Field(default_factory=list)
    notified: list[str] = Field(default_factory=list)  # kinds actually sent (incl. "recovery")
    recorded: bool = False
    sink_delivered: bool | None = None  # None: no sink configured
    problems: list[str] = Field(default_factory=list)  # best-effort steps that did not succeed


def _cause(err: BaseException) -> str:
    while getattr(err, "cause", None) is not None:
        err = err.cause  # type: ignore[assignment]
    return str(err) or type(err).__name__


@workflow.defn(name=HEARTBEAT_WORKFLOW)
class GovernanceHeartbeat:
    @workflow.run
    async def run(self, inp: HeartbeatInput) -> HeartbeatResult:
        info = workflow.info()
        now = workflow.now()
        event_id = info.workflow_id
        thresholds = HeartbeatThresholds(low_balance_threshold_credits=inp.low_balance_threshold_credits,
                                         grant_expiry_warning_hours=inp.grant_expiry_warning_hours)
        problems: list[str] = []

        try:
            gathered: HeartbeatGathered = await workflow.execute_activity_method(
                HeartbeatActivities.gather, start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=timedelta(minutes=1), retry_policy=DB_RETRY)
            evaluation = evaluate(gathered.facts, thresholds, now)
            previous = gathered.previous
        except ActivityError as err:
            # The database cannot be read: the tenant cannot act. Say so, loudly.
            reason = f"cannot read the system tenant: {_cause(err)}"
            evaluation = HeartbeatEvaluation(
                status="failed", alerts=[KIND_FAILED], balance=None, grant_expires_at=None,
                checks=[CheckResult(name=CHECK_SYSTEM_TENANT, ok=False, detail=reason)])
            previous = None
            problems.append(reason)

        interval = timedelta(minutes=inp.interval_minutes)
        grace = timedelta(seconds=inp.grace_seconds)
        plan = plan_notifications(evaluation, previous, now=now, interval=interval, grace=grace,
                                  renotify=timedelta(minutes=inp.renotify_minutes))
        event = build_cloudevent(event_id=event_id, source=heartbeat_source(inp.dao_name), time=now,
                                 evaluation=evaluation, thresholds=thresholds, notified_at=plan.notified_at)
        result = HeartbeatResult(event_id=event_id, status=evaluation.status, alerts=evaluation.alerts)
        # Prometheus (through the worker runtime): 1 ok, 0.5 degraded, 0 failed.
        workflow.metric_meter().create_gauge_float(
            "governance_heartbeat_health", "1 ok, 0.5 degraded, 0 failed"
        ).set({"ok": 1.0, "failed": 0.0}.get(evaluation.status, 0.5))

        try:
            recorded = await workflow.execute_activity_method(
                HeartbeatActivities.record, RecordHeartbeatInput(event=event),
                start_to_close_timeout=timedelta(seconds=20), schedule_to_close_timeout=timedelta(minutes=1),
                retry_policy=DB_RETRY)
            result.recorded = True
            if not recorded.inserted:
                problems.append(f"event {event_id} was already recorded")
        except ActivityError as err:
            problems.append(f"could not record the heartbeat event: {_cause(err)}")

        if inp.sink_url:
            try:
                await workflow.execute_activity_method(
                    HeartbeatActivities.post_sink, PostSinkInput(url=inp.sink_url, event=event),
                    start_to_close_timeout=timedelta(seconds=15), schedule_to_close_timeout=timedelta(minutes=1),
                    retry_policy=SIDE_RETRY)
                result.sink_delivered = True
            except ActivityError as err:
                result.sink_delivered = False
                problems.append(f"sink: {_cause(err)}")

        details = "\n".join(f"- {c.name}: {'ok' if c.ok else 'FAILED'} — {c.detail}" for c in evaluation.checks)
        requests = [
            NotificationRequest(
                idempotency_key=f"{event_id}:{kind}", kind=kind, urgent=(kind == KIND_FAILED),
                title=_TITLES.get(kind, kind), body=details, data=event["data"])
            for kind in plan.notify
        ]
        if plan.recovery:
            requests.append(NotificationRequest(
                idempotency_key=f"{event_id}:{KIND_RECOVERY}", kind=KIND_RECOVERY,
                title="Governance heartbeat recovered",
                body=f"The heartbeat is ok again (it was {plan.recovered_from}).\n{details}",
                data={**event["data"], "recovered_from": plan.recovered_from}))
        for req in requests:
            try:
                await workflow.execute_activity(
                    SEND_NOTIFICATION_ACTIVITY, req, start_to_close_timeout=timedelta(seconds=20),
                    schedule_to_close_timeout=timedelta(seconds=45), retry_policy=SIDE_RETRY)
                result.notified.append(req.kind)
            except ActivityError as err:
                problems.append(f"notification {req.kind}: {_cause(err)}")

        try:
            await workflow.execute_activity(
                NOTIFY_STATUS_ACTIVITY,
                StatusUpdate(heartbeat={**event["data"], "time": event["time"], "id": event_id}, source="heartbeat"),
                start_to_close_timeout=timedelta(seconds=10), schedule_to_close_timeout=timedelta(seconds=20),
                retry_policy=SIDE_RETRY)
        except ActivityError as err:
            problems.append(f"status: {_cause(err)}")

        result.problems = problems
        if evaluation.status == "failed":
            failed = "; ".join(c.detail for c in evaluation.checks if not c.ok)
            raise ApplicationError(f"heartbeat failed: {failed}", result.model_dump(mode="json"),
                                   type="HeartbeatFailed", non_retryable=True)
        return result
