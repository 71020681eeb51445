"""Activity `send_notification` against real loopback receivers: the HMAC-signed webhook,
apprise `json://` URLs, failures that make the activity raise, and retries (direct and by a
real Temporal worker) that do not re-deliver to a channel that already got it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from govfleet.contracts.notifications import SEND_NOTIFICATION_ACTIVITY, NotificationRequest
from govfleet.db import create_pool
from govfleet.domain.webhook_signature import verify_signature
from govfleet.repo_spec import RepoSpec
from govfleet.settings import Config
from tests.integration.notify_support import Receiver

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotificationActivities, with_idempotency_header
    from govfleet.contracts.notifications import NotificationResult
    from workers.resources import Resources

SECRET = "test-webhook-secret"


def spec_config(config: Config, notifications: dict) -> Config:
    data = config.spec.model_dump(mode="json")
    data["guardian"]["notifications"] = notifications
    return Config(settings=config.settings, spec=RepoSpec.model_validate(data))


@pytest.fixture
async def make_activities(config, database_url):
    opened: list[Resources] = []

    async def make(notifications: dict, environ: dict[str, str], client=None) -> NotificationActivities:
        pool = await create_pool(database_url, max_size=2)
        res = Resources(
            config=spec_config(config, notifications),
            database_url=database_url,
            pool=pool,
            http=httpx.AsyncClient(),
            client=client,
        )
        opened.append(res)
        return NotificationActivities(res, environ=environ)

    yield make
    for res in opened:
        await res.close()


def request(urgent: bool = False, kind: str = "caution") -> NotificationRequest:
    return NotificationRequest(
        idempotency_key=f"governance-guardian:1:n{uuid.uuid4().hex[:8]}",
        kind=kind,
        urgent=urgent,
        title="TIE governance alert: caution (holder control 54.2%)",
        body="🚨 TIE GOVERNANCE ALERT\n\nLevel: caution\nHolder Control: 54.2%",
        data={"holder_control": 54.2, "guardian_id": "governance-guardian"},
    )


NOTIFS = {
    "admin_urls": ["${TEST_ADMIN_URL}"],
    "urgent_urls": ["${TEST_URGENT_URL}"],
    "webhook": {"url": "PLACEHOLDER", "secret": "${TEST_WEBHOOK_SECRET}"},
}


def notifs(receiver: Receiver) -> dict:
    return {**NOTIFS, "webhook": {"url": receiver.url("/hook"), "secret": "${TEST_WEBHOOK_SECRET}"}}


def env_for(receiver: Receiver) -> dict[str, str]:
    return {
        "TEST_ADMIN_URL": f"json://127.0.0.1:{receiver.port}/admin",
        "TEST_URGENT_URL": f"json://127.0.0.1:{receiver.port}/urgent",
        "TEST_WEBHOOK_SECRET": SECRET,
    }


async def test_webhook_is_signed_and_apprise_json_receives(receiver, make_activities):
    acts = await make_activities(notifs(receiver), env_for(receiver))
    req = request(urgent=False)
    result = NotificationResult.model_validate(await ActivityEnvironment().run(acts.send_notification, req))
    assert sorted(result.delivered) == ["apprise:${TEST_ADMIN_URL}", "webhook"]
    assert result.already_delivered == [] and result.skipped == []

    [hook] = receiver.on("/hook")
    assert hook.headers["x-govfleet-idempotency-key"] == req.idempotency_key
    assert verify_signature(SECRET, hook.body, hook.headers["x-govfleet-signature"])
    assert not verify_signature("wrong-secret", hook.body, hook.headers["x-govfleet-signature"])
    payload = hook.json()
    assert payload == {
        "idempotency_key": req.idempotency_key,
        "kind": "caution",
        "urgent": False,
        "title": req.title,
        "body": req.body,
        "data": req.data,
        "source": "governance-fleet",
    }

    [admin] = receiver.on("/admin")  # apprise's json:// plugin
    assert admin.json()["title"] == req.title and admin.json()["message"] == req.body
    assert admin.headers["x-govfleet-idempotency-key"] == req.idempotency_key
    assert receiver.on("/urgent") == []  # not urgent: admins only


async def test_urgent_goes_to_admins_and_urgent_channels(receiver, make_activities):
    acts = await make_activities(notifs(receiver), env_for(receiver))
    req = request(urgent=True, kind="critical")
    result = await acts.deliver(req)
    assert sorted(result.delivered) == ["apprise:${TEST_ADMIN_URL}", "apprise:${TEST_URGENT_URL}", "webhook"]
    assert len(receiver.on("/admin")) == len(receiver.on("/urgent")) == len(receiver.on("/hook")) == 1
    assert receiver.on("/urgent")[0].json()["type"] == "failure"  # apprise's urgent marker
    assert receiver.on("/hook")[0].json()["urgent"] is True


async def test_failing_channel_raises_and_retry_sends_only_to_it(receiver, make_activities):
    receiver.fail_first = {"/hook": 2}
    acts = await make_activities(notifs(receiver), env_for(receiver))
    req = request()

    for attempt in (1, 2):
        with pytest.raises(ApplicationError) as ei:
            await acts.deliver(req, attempt=attempt)
        err = ei.value
        assert err.type == "NotificationDeliveryFailed" and not err.non_retryable
        assert "1 of 2 channels failed" in err.message and "answered HTTP 503" in err.message
        assert "webhook" in err.message

    result = await acts.deliver(req, attempt=3)
    assert result.delivered == ["webhook"]
    assert result.already_delivered == ["apprise:${TEST_ADMIN_URL}"]
    assert len(receiver.on("/admin")) == 1  # never re-sent
    assert len(receiver.on("/hook")) == 3
    # Every webhook try carried the same key and the same signed body.
    hooks = receiver.on("/hook")
    assert len({h.body for h in hooks}) == 1 and len({h.headers["x-govfleet-signature"] for h in hooks}) == 1

    again = await acts.deliver(req, attempt=4)  # a late duplicate: nothing goes out
    assert again.delivered == [] and sorted(again.already_delivered) == ["apprise:${TEST_ADMIN_URL}", "webhook"]
    assert len(receiver.received) == 4


async def test_failing_apprise_channel_raises(receiver, make_activities):
    receiver.fail_first = {"/admin": 100}
    acts = await make_activities(notifs(receiver), env_for(receiver))
    with pytest.raises(ApplicationError) as ei:
        await acts.deliver(request())
    assert ei.value.type == "NotificationDeliveryFailed"
    assert "apprise:${TEST_ADMIN_URL}" in ei.value.message
    assert len(receiver.on("/hook")) == 1


async def test_unreachable_webhook_raises(make_activities):
    acts = await make_activities(
        {"webhook": {"url": "http://127.0.0.1:1/hook", "secret": "${TEST_WEBHOOK_SECRET}"}},
        {"TEST_WEBHOOK_SECRET": SECRET},
    )
    with pytest.raises(ApplicationError) as ei:
        await acts.deliver(request())
    assert "webhook: http://127.0.0.1:1/hook: ConnectError" in ei.value.message


async def test_unset_secrets_are_skipped(receiver, make_activities):
    environ = {"TEST_ADMIN_URL": f"json://127.0.0.1:{receiver.port}/admin"}  # no urgent URL, no webhook secret
    acts = await make_activities(notifs(receiver), environ)
    result = await acts.deliver(request(urgent=True))
    assert result.delivered == ["apprise:${TEST_ADMIN_URL}"]
    assert result.skipped == ["apprise:${TEST_URGENT_URL}", "webhook"]
    assert receiver.on("/hook") == [] and len(receiver.on("/admin")) == 1


async def test_invalid_apprise_url_fails_without_retry_after_the_rest(receiver, make_activities):
    environ = {**env_for(receiver), "TEST_ADMIN_URL": "nosuchscheme://whatever"}
    acts = await make_activities(notifs(receiver), environ)
    with pytest.raises(ApplicationError) as ei:
        await acts.deliver(request())
    assert ei.value.type == "NotificationChannelInvalid" and ei.value.non_retryable
    assert "apprise cannot use this URL" in ei.value.message
    assert "nosuchscheme" not in ei.value.message  # the secret's value is never echoed
    assert len(receiver.on("/hook")) == 1


def test_idempotency_header_only_on_generic_http_kinds():
    assert with_idempotency_header("json://h/p", "k:1") == "json://h/p?+X-Govfleet-Idempotency-Key=k%3A1"
    assert with_idempotency_header("jsons://h/p?a=b", "k") == "jsons://h/p?a=b&+X-Govfleet-Idempotency-Key=k"
    assert with_idempotency_header("slack://a/b/c", "k") == "slack://a/b/c"


@workflow.defn(sandboxed=False)
class NotifyOnce:
    @workflow.run
    async def run(self, req: NotificationRequest) -> dict:
        return await workflow.execute_activity(
            SEND_NOTIFICATION_ACTIVITY,
            req,
            start_to_close_timeout=timedelta(seconds=20),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200), backoff_coefficient=1.0, maximum_attempts=5
            ),
        )


async def test_temporal_retries_resend_only_the_failed_channel(
    receiver, make_activities, time_skipping_env, task_queue
):
    receiver.fail_first = {"/hook": 2}
    client = time_skipping_env.client
    acts = await make_activities(notifs(receiver), env_for(receiver), client)
    req = request(urgent=True, kind="warning")
    async with Worker(client, task_queue=task_queue, workflows=[NotifyOnce], activities=[acts.send_notification]):
        out = await client.execute_workflow(
            NotifyOnce.run, req, id=f"notify-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
    result = NotificationResult.model_validate(out)
    assert result.delivered == ["webhook"]
    assert sorted(result.already_delivered) == ["apprise:${TEST_ADMIN_URL}", "apprise:${TEST_URGENT_URL}"]
    assert (len(receiver.on("/admin")), len(receiver.on("/urgent")), len(receiver.on("/hook"))) == (1, 1, 3)


async def test_temporal_gives_up_on_invalid_channel_at_once(receiver, make_activities, time_skipping_env, task_queue):
    client = time_skipping_env.client
    environ = {**env_for(receiver), "TEST_ADMIN_URL": "nosuchscheme://whatever"}
    acts = await make_activities(notifs(receiver), environ, client)
    async with Worker(client, task_queue=task_queue, workflows=[NotifyOnce], activities=[acts.send_notification]):
        with pytest.raises(WorkflowFailureError) as ei:
            await client.execute_workflow(
                NotifyOnce.run, request(), id=f"notify-{uuid.uuid4().hex[:8]}", task_queue=task_queue
            )
    cause = ei.value.cause.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NotificationChannelInvalid"
    assert len(receiver.on("/hook")) == 1  # one attempt only
