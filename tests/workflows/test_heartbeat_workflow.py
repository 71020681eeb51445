"""The heartbeat workflow's branches that need no database, in the time-skipping server with
its activities replaced by name: a failing sink never fails the heartbeat, a sink that fails
once is retried with the same event, a recovery notice follows a failed or missed heartbeat,
and an unreadable database is a loud failure that is still recorded and notified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.heartbeat import (
    HeartbeatActivities,
    HeartbeatGathered,
    PostSinkInput,
    PostSinkResult,
    RecordHeartbeatInput,
    RecordHeartbeatResult,
)
from govfleet.contracts.heartbeat import (
    HEARTBEAT_SCHEDULE_ID,
    HEARTBEAT_WORKFLOW,
    RENEW_GRANT_ACTIVITY,
    HeartbeatInput,
    RenewGrantInput,
    RenewGrantResult,
)
from govfleet.contracts.notifications import (
    RESEND_PENDING_ACTIVITY,
    SEND_NOTIFICATION_ACTIVITY,
    ResendPendingInput,
    ResendPendingResult,
)
from govfleet.contracts.status import NOTIFY_STATUS_ACTIVITY, StatusUpdate
from govfleet.domain.grant_renewal import KIND_GRANT_RENEWAL_FAILED, KIND_GRANT_RENEWAL_OFF, KIND_GRANT_RENEWED
from govfleet.domain.heartbeat import (
    KIND_FAILED,
    KIND_LOW_BALANCE,
    KIND_RECOVERY,
    HeartbeatFacts,
    PreviousHeartbeat,
)
from govfleet.domain.notifications import NotificationRequest
from tests.workflows.doubles import Calls, name_of, new_id, worker
from workflows.heartbeat import GovernanceHeartbeat, HeartbeatResult

GATHER = name_of(HeartbeatActivities.gather)
RECORD = name_of(HeartbeatActivities.record)
POST_SINK = name_of(HeartbeatActivities.post_sink)
SINK_URL = "http://sink.test/events"  # never contacted: the sink activity is a double


def healthy(balance: int = 5_000_000) -> HeartbeatFacts:
    return HeartbeatFacts(
        tenant_exists=True,
        tenant_flagged=True,
        balance=balance,
        grant_exists=True,
        grant_expires_at=datetime(2100, 1, 1, tzinfo=UTC),
    )


class Outside:
    """The database, the sink, the notification channels and the status workflow, scripted."""

    def __init__(
        self,
        *,
        facts: HeartbeatFacts | None = None,
        previous: PreviousHeartbeat | None = None,
        gather_error: str | None = None,
        sink_errors: list[ApplicationError] | None = None,
        notify_error: str | None = None,
        renew_error: str | None = None,
        still_pending: list[str] | None = None,
    ):
        self.calls = Calls()
        self.renew_error = renew_error
        self.still_pending = list(still_pending or [])
        self.facts = facts or healthy()
        self.previous = previous
        self.gather_error = gather_error
        self.sink_errors = list(sink_errors or [])
        self.notify_error = notify_error

    @activity.defn(name=GATHER)
    async def gather(self) -> HeartbeatGathered:
        self.calls.add(GATHER)
        if self.gather_error:
            raise ApplicationError(self.gather_error, non_retryable=True)
        return HeartbeatGathered(facts=self.facts, previous=self.previous)

    @activity.defn(name=RECORD)
    async def record(self, inp: RecordHeartbeatInput) -> RecordHeartbeatResult:
        self.calls.add(RECORD, inp.event)
        return RecordHeartbeatResult(inserted=True)

    @activity.defn(name=POST_SINK)
    async def post_sink(self, inp: PostSinkInput) -> PostSinkResult:
        self.calls.add(POST_SINK, inp)
        if self.sink_errors:
            raise self.sink_errors.pop(0)
        return PostSinkResult(status_code=202)

    @activity.defn(name=SEND_NOTIFICATION_ACTIVITY)
    async def send_notification(self, req: NotificationRequest) -> None:
        self.calls.add(SEND_NOTIFICATION_ACTIVITY, req)
        if self.notify_error:
            raise ApplicationError(self.notify_error, non_retryable=True)

    @activity.defn(name=NOTIFY_STATUS_ACTIVITY)
    async def notify_status(self, update: StatusUpdate) -> None:
        self.calls.add(NOTIFY_STATUS_ACTIVITY, update)

    @activity.defn(name=RENEW_GRANT_ACTIVITY)
    async def renew_grant(self, inp: RenewGrantInput) -> RenewGrantResult:
        self.calls.add(RENEW_GRANT_ACTIVITY, inp)
        if self.renew_error:
            raise ApplicationError(self.renew_error, non_retryable=True)
        return RenewGrantResult(expires_at=inp.until, renewed=True)

    @activity.defn(name=RESEND_PENDING_ACTIVITY)
    async def resend_pending(self, inp: ResendPendingInput) -> ResendPendingResult:
        self.calls.add(RESEND_PENDING_ACTIVITY, inp)
        return ResendPendingResult(delivered=["k-delivered"], still_pending=self.still_pending)

    def activities(self) -> list:
        return [
            self.gather,
            self.record,
            self.post_sink,
            self.send_notification,
            self.notify_status,
            self.renew_grant,
            self.resend_pending,
        ]


async def beat(env, task_queue: str, outside: Outside, **inp) -> tuple[str, HeartbeatResult]:
    workflow_id = new_id(f"{HEARTBEAT_SCHEDULE_ID}-test-")
    async with worker(env, task_queue, [GovernanceHeartbeat], outside.activities()):
        result = await env.client.execute_workflow(
            HEARTBEAT_WORKFLOW,
            HeartbeatInput(dao_name="cogni-demo", **inp),
            id=workflow_id,
            task_queue=task_queue,
            result_type=HeartbeatResult,
        )
    return workflow_id, result


async def test_a_sink_that_keeps_failing_never_fails_the_heartbeat(time_skipping_env, task_queue):
    outside = Outside(sink_errors=[ApplicationError("heartbeat sink answered 503")] * 10)
    event_id, result = await beat(time_skipping_env, task_queue, outside, sink_url=SINK_URL)

    assert result.status == "ok" and result.recorded is True
    assert result.sink_delivered is False
    assert result.problems == ["sink: heartbeat sink answered 503"]
    # Retried (three attempts), each with the same event, and only after the event was recorded.
    assert outside.calls.attempts(POST_SINK) == [1, 2, 3]
    assert {p.event["id"] for p in outside.calls.of(POST_SINK)} == {event_id}
    assert outside.calls.names()[:2] == [GATHER, RECORD]
    # The status surface still hears about the heartbeat; nothing to notify.
    [update] = outside.calls.of(NOTIFY_STATUS_ACTIVITY)
    assert update.heartbeat["status"] == "ok" and update.heartbeat["id"] == event_id
    assert outside.calls.of(SEND_NOTIFICATION_ACTIVITY) == []


async def test_a_sink_that_refuses_the_event_is_not_retried(time_skipping_env, task_queue):
    refused = ApplicationError("heartbeat sink answered 400", non_retryable=True)
    outside = Outside(sink_errors=[refused])
    _, result = await beat(time_skipping_env, task_queue, outside, sink_url=SINK_URL)

    assert result.status == "ok" and result.sink_delivered is False
    assert outside.calls.attempts(POST_SINK) == [1]
    assert result.problems == ["sink: heartbeat sink answered 400"]


async def test_a_sink_that_recovers_gets_the_same_event_once_more(time_skipping_env, task_queue):
    outside = Outside(sink_errors=[ApplicationError("heartbeat sink unreachable: ConnectError")])
    event_id, result = await beat(time_skipping_env, task_queue, outside, sink_url=SINK_URL)

    assert result.sink_delivered is True and result.problems == []
    first, second = outside.calls.of(POST_SINK)
    assert first.event == second.event and first.event["id"] == event_id
    assert first.event["type"] == "governance.heartbeat" and first.event["specversion"] == "1.0"


async def test_no_sink_configured_means_no_sink_call(time_skipping_env, task_queue):
    outside = Outside()
    _, result = await beat(time_skipping_env, task_queue, outside)

    assert result.sink_delivered is None and outside.calls.of(POST_SINK) == []


@pytest.mark.parametrize(
    ("previous_status", "age", "recovered_from"),
    [
        ("failed", timedelta(minutes=5), "failed"),  # the last heartbeat failed
        ("degraded", timedelta(minutes=5), "degraded"),
        ("ok", timedelta(hours=1), "down"),  # heartbeats were missed (interval 5 min, grace 60 s)
    ],
)
async def test_recovery_notice_after_a_bad_or_missed_heartbeat(
    time_skipping_env, task_queue, previous_status, age, recovered_from
):
    previous = PreviousHeartbeat(
        time=datetime.now(UTC) - age,
        status=previous_status,
        alerts=[KIND_FAILED] if previous_status == "failed" else [],
    )
    outside = Outside(previous=previous)
    event_id, result = await beat(time_skipping_env, task_queue, outside)

    assert result.status == "ok" and result.notified == [KIND_RECOVERY]
    [notice] = outside.calls.of(SEND_NOTIFICATION_ACTIVITY)
    assert notice.kind == KIND_RECOVERY and notice.urgent is False
    assert notice.idempotency_key == f"{event_id}:{KIND_RECOVERY}"
    assert f"(it was {recovered_from})" in notice.body and notice.data["recovered_from"] == recovered_from


async def test_a_held_ok_heartbeat_sends_no_recovery(time_skipping_env, task_queue):
    previous = PreviousHeartbeat(time=datetime.now(UTC) - timedelta(minutes=5), status="ok")
    outside = Outside(previous=previous)
    _, result = await beat(time_skipping_env, task_queue, outside)

    assert result.notified == [] and outside.calls.of(SEND_NOTIFICATION_ACTIVITY) == []


async def test_a_failing_notification_channel_is_a_problem_not_a_failure(time_skipping_env, task_queue):
    outside = Outside(facts=healthy(balance=10), notify_error="apprise: every channel refused")
    _, result = await beat(time_skipping_env, task_queue, outside)

    assert result.status == "degraded" and result.alerts == [KIND_LOW_BALANCE]
    assert result.notified == []
    assert result.problems == [f"notification {KIND_LOW_BALANCE}: apprise: every channel refused"]
    assert len(outside.calls.of(NOTIFY_STATUS_ACTIVITY)) == 1


async def test_an_unreadable_database_fails_loudly_but_is_still_recorded_and_notified(time_skipping_env, task_queue):
    outside = Outside(gather_error="connection refused")
    with pytest.raises(WorkflowFailureError) as failed:
        await beat(time_skipping_env, task_queue, outside)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "HeartbeatFailed"
    assert "cannot read the system tenant: connection refused" in cause.message
    result = HeartbeatResult.model_validate(cause.details[0])
    assert result.status == "failed" and result.alerts == [KIND_FAILED] and result.recorded is True
    assert result.notified == [KIND_FAILED]
    [event] = outside.calls.of(RECORD)
    assert event["data"]["status"] == "failed" and event["data"]["balance"] is None
    [alert] = outside.calls.of(SEND_NOTIFICATION_ACTIVITY)
    assert alert.kind == KIND_FAILED and alert.urgent is True
    [update] = outside.calls.of(NOTIFY_STATUS_ACTIVITY)
    assert update.heartbeat["status"] == "failed"


# --- the governance grant renewed by the heartbeat (docs/heartbeat.md, "The governance grant") ---


def expiring_in(days: float) -> HeartbeatFacts:
    return healthy().model_copy(update={"grant_expires_at": datetime.now(UTC) + timedelta(days=days)})


async def test_a_grant_inside_the_window_is_renewed_before_it_is_judged(time_skipping_env, task_queue):
    outside = Outside(facts=expiring_in(0.5))  # within 24 h: would be `grant_expiring` without the renewal
    event_id, result = await beat(time_skipping_env, task_queue, outside)

    [renewal] = outside.calls.of(RENEW_GRANT_ACTIVITY)
    assert timedelta(days=364) < renewal.until - datetime.now(UTC) <= timedelta(days=365)
    assert result.status == "ok" and result.alerts == [] and "renewed until" in (result.grant_renewal or "")
    [notice] = outside.calls.of(SEND_NOTIFICATION_ACTIVITY)
    assert notice.kind == KIND_GRANT_RENEWED and notice.idempotency_key == f"{event_id}:{KIND_GRANT_RENEWED}"
    [event] = outside.calls.of(RECORD)  # the event says the grant as it is after the renewal
    assert event["data"]["grant_expires_at"].startswith(str(renewal.until.year))


async def test_a_grant_outside_the_window_is_left_alone(time_skipping_env, task_queue):
    outside = Outside(facts=expiring_in(40))
    _, result = await beat(time_skipping_env, task_queue, outside)

    assert outside.calls.of(RENEW_GRANT_ACTIVITY) == [] and result.grant_renewal is None


async def test_renewal_off_tells_the_admins_once_a_day_and_renews_nothing(time_skipping_env, task_queue):
    outside = Outside(facts=expiring_in(10))
    _, result = await beat(time_skipping_env, task_queue, outside, grant_auto_renew=False)

    assert outside.calls.of(RENEW_GRANT_ACTIVITY) == [] and "automatic renewal is off" in (result.grant_renewal or "")
    [notice] = outside.calls.of(SEND_NOTIFICATION_ACTIVITY)
    assert notice.kind == KIND_GRANT_RENEWAL_OFF and "automatic renewal is off" in notice.body
    assert notice.idempotency_key == f"governance:grant-renewal-off:{datetime.now(UTC).date().isoformat()}"


async def test_a_failed_renewal_is_an_urgent_notice(time_skipping_env, task_queue):
    outside = Outside(facts=expiring_in(0.5), renew_error="the governance grant was revoked")
    _, result = await beat(time_skipping_env, task_queue, outside)

    kinds = {n.kind: n for n in outside.calls.of(SEND_NOTIFICATION_ACTIVITY)}
    failed = kinds[KIND_GRANT_RENEWAL_FAILED]
    assert failed.urgent and "the governance grant was revoked" in failed.body
    assert result.status == "degraded" and KIND_GRANT_RENEWAL_FAILED in result.notified


async def test_every_heartbeat_resends_the_pending_urgent_notices(time_skipping_env, task_queue):
    outside = Outside(still_pending=["k-nobody"])
    _, result = await beat(time_skipping_env, task_queue, outside)

    assert len(outside.calls.of(RESEND_PENDING_ACTIVITY)) == 1
    assert result.resent == ["k-delivered"] and result.still_pending == 1
    # ... after its own notices, before it tells the status workflow.
    names = outside.calls.names()
    assert names.index(RESEND_PENDING_ACTIVITY) < names.index(NOTIFY_STATUS_ACTIVITY)
