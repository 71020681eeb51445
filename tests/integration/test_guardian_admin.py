"""Signed admin actions through workflow updates (the HTTP path) on the Temporal dev server
(the time-skipping server's update support is partial), the documented query shapes, search
attributes in visibility, and notifications through the real `send_notification` activity
to a failing loopback webhook that never blocks the check loop."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.notify import NotificationActivities
from govfleet.api.server import start_api
from govfleet.contracts.guardian import AlertsQueryInput, EventsQueryInput
from govfleet.domain.admin_signing import GovernanceApproval
from govfleet.domain.guardian.models import PauseInput, ResumeInput
from govfleet.repo_spec import NotificationsSpec, WebhookSpec
from govfleet.settings import Config
from govfleet.simulator import TrackerSimulator, start_simulator
from govfleet.temporal import GOVERNANCE_LEVEL, SYSTEM_STATUS
from tests.integration.guardian_support import (
    ADMIN_0,
    ADMIN_1,
    OUTSIDER,
    NotificationRecorder,
    alerts,
    check_count,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    notable_events,
    pauses,
    rows,
    settle,
    sign,
    start_guardian,
)
from workflows.guardian import GuardianWorkflow


@pytest.fixture
async def sim():
    running = await start_simulator(TrackerSimulator())
    running.sim.set_reading(70.5)
    try:
        yield running
    finally:
        await running.stop()


def now() -> datetime:
    return datetime.now(UTC)


async def rejected(call) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "AdminRejected"
    return cause


async def test_signed_pause_and_resume_by_update(dev_env, task_queue, config, database_url, sim):
    client = dev_env.client
    recorder = NotificationRecorder()
    async with guardian_worker(client, task_queue, config, database_url, recorder):
        cfg = make_config(config, sim, new_guardian_id())
        handle = await start_guardian(client, task_queue, cfg)
        gid = handle.id
        await eventually(lambda: check_count(database_url, gid) == 1)

        # The documented response shapes (docs/guardian.md), from workflow state.
        status = await handle.query(GuardianWorkflow.status)
        assert status.model_dump(exclude={"last_check"}) == {
            "monitoring_active": True,
            "check_interval_seconds": 30,
            "current_holder_control": 70.5,
            "governance_level": "excellent",
            "system_status": "operational",
            "paused": False,
            "alerts_active": 0,
            # beyond the seed's shape: no incident
            "paused_since": None,
            "pauses": [],
            "resume_requires": None,
            "open_alerts": [],
            "forensic_audit": None,
            "unreachable_targets": [],
        }
        gov = await handle.query(GuardianWorkflow.governance)
        assert (gov.holder_control_percentage, gov.total_votes, gov.holder_votes, gov.seller_votes) == (
            70.5,
            10000,
            7050,
            2950,
        )
        assert (gov.threshold_level, gov.margin_above_critical, gov.is_stable) == ("excellent", 19.5, True)
        rules = await handle.query(GuardianWorkflow.rules)
        assert rules.pause_redemptions_at == 51.0 and rules.pause_system_at == 49.0
        assert (await handle.query(GuardianWorkflow.alerts, AlertsQueryInput(limit=5))).alerts == []

        # Search attributes are in visibility.
        async def attrs():
            desc = await handle.describe()
            return (
                desc.typed_search_attributes.get(GOVERNANCE_LEVEL) == "excellent"
                and desc.typed_search_attributes.get(SYSTEM_STATUS) == "operational"
            )

        await eventually(attrs)

        # A forged pause (not an admin) fails with the reason and changes nothing.
        reason = "Manual intervention required"
        forged = PauseInput(reason=reason, authorization=sign(OUTSIDER, "pause", now(), reason=reason, guardian_id=gid))
        cause = await rejected(handle.execute_update(GuardianWorkflow.pause_update, forged))
        assert cause.details == ("foreign",) and "not an admin of" in cause.message
        assert (await handle.query(GuardianWorkflow.status)).paused is False
        assert sim.sim.calls == []

        # A body without authorization is refused as malformed, and audited like any rejection.
        cause = await rejected(handle.execute_update(GuardianWorkflow.pause_update, PauseInput(reason=reason)))
        assert cause.details == ("malformed",) and "authorization is required" in cause.message

        # A valid pause answers with the documented response.
        token = sign(ADMIN_0, "pause", now(), reason=reason, guardian_id=gid)
        result = await handle.execute_update(
            GuardianWorkflow.pause_update, PauseInput(reason=reason, authorization=token)
        )
        assert (result.paused, result.reason, result.resume_requires) == (True, reason, "admin_approval")
        await eventually(lambda: len(sim.sim.pauses()) == 2)
        (row,) = pauses(database_url, gid)
        assert (row["pause_type"], row["scope"]) == ("manual", "everything")
        assert {c.idempotency_key for c in sim.sim.pauses()} == {row["pause_key"]}
        # The same token again is a replay.
        cause = await rejected(
            handle.execute_update(GuardianWorkflow.pause_update, PauseInput(reason=reason, authorization=token))
        )
        assert cause.details == ("replayed",)

        async def paused_attrs():
            desc = await handle.describe()
            return desc.typed_search_attributes.get(SYSTEM_STATUS) == "fully_paused"

        await eventually(paused_attrs)

        # Resume: an expired signature, then a valid one.
        expired = ResumeInput(authorization=sign(ADMIN_1, "resume", now(), guardian_id=gid, ttl=-5))
        cause = await rejected(handle.execute_update(GuardianWorkflow.resume_update, expired))
        assert cause.details == ("expired",)
        sim.sim.set_reading(50.5)  # below critical now: refused, even though signed
        ok = ResumeInput(authorization=sign(ADMIN_1, "resume", now(), guardian_id=gid))
        cause = await rejected(handle.execute_update(GuardianWorkflow.resume_update, ok))
        assert cause.details == ("unsafe_to_resume",) and "50.5% is below the critical threshold 51%" in cause.message
        sim.sim.set_reading(51.0)
        ok = ResumeInput(authorization=sign(ADMIN_1, "resume", now(), guardian_id=gid))
        resumed = await handle.execute_update(GuardianWorkflow.resume_update, ok)
        assert (resumed.paused, resumed.current_holder_control, resumed.safe_to_resume) == (False, 51.0, True)
        await eventually(lambda: len(sim.sim.resumes()) == 2)
        await eventually(
            lambda: pauses(database_url, gid)[0]["resumed_by"] == "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
        )

        assert [e for e in notable_events(database_url, gid) if e[0] in ("pause", "resume", "admin_rejected")] == [
            ("admin_rejected", "rejected_pause"),
            ("admin_rejected", "rejected_pause"),
            ("pause", "pause"),
            ("admin_rejected", "rejected_pause"),
            ("admin_rejected", "rejected_resume"),
            ("admin_rejected", "rejected_resume"),
            ("resume", "resume"),
        ]
        events = (await handle.query(GuardianWorkflow.events, EventsQueryInput(limit=3))).events
        assert len(events) == 3 and all(e.id is not None for e in events)
        assert recorder.kinds()[:1] == ["pause"] and "resume" in recorder.kinds()
        await settle(handle)
        await handle.terminate("test over")


APPROVAL = GovernanceApproval(reference="proposal 42", url="https://snapshot.example/cogni/proposal/42")


async def test_emergency_resume_needs_a_quorum_signing_the_governance_approval(
    dev_env, task_queue, config, database_url, sim
):
    client = dev_env.client
    async with guardian_worker(client, task_queue, config, database_url, NotificationRecorder()):
        sim.sim.set_reading(48.0)
        handle = await start_guardian(client, task_queue, make_config(config, sim, new_guardian_id()))
        gid = handle.id
        await eventually(lambda: len(sim.sim.pauses()) == 2)
        sim.sim.set_reading(60.0)

        def approved(key: str) -> str:
            return sign(key, "resume", now(), guardian_id=gid, approval=APPROVAL)

        one = ResumeInput(authorization=approved(ADMIN_0), governance_approval=APPROVAL)
        assert (await rejected(handle.execute_update(GuardianWorkflow.resume_update, one))).details == ("quorum",)
        # The old flag, with a quorum that signed no approval: refused (a flag no signature covers means nothing).
        two = [sign(ADMIN_0, "resume", now(), guardian_id=gid), sign(ADMIN_1, "resume", now(), guardian_id=gid)]
        flagged = ResumeInput(authorization=two, governance_verified=True)
        cause = await rejected(handle.execute_update(GuardianWorkflow.resume_update, flagged))
        assert cause.details == ("governance_unverified",)
        # Those refused tokens claimed for an approval later: they never verify.
        claimed = ResumeInput(authorization=two, governance_approval=APPROVAL)
        cause = await rejected(handle.execute_update(GuardianWorkflow.resume_update, claimed))
        assert cause.details in (("foreign",), ("replayed",))
        both = ResumeInput(authorization=" ".join([approved(ADMIN_0), approved(ADMIN_1)]), governance_approval=APPROVAL)
        result = await handle.execute_update(GuardianWorkflow.resume_update, both)
        assert result.paused is False and result.current_holder_control == 60.0
        await eventually(lambda: len(sim.sim.resumes()) == 2)
        # Every open level alert resolved; the approval in the audit log and on the pause rows.
        assert not [a["alert_type"] for a in alerts(database_url, gid) if not a["resolved"]]
        (resume_event,) = rows(
            database_url, "SELECT details FROM governance_events WHERE guardian_id = %s AND event_type = 'resume'", gid
        )
        assert APPROVAL.reference in resume_event["details"] and APPROVAL.url in resume_event["details"]
        assert {p["resume_approval"] for p in pauses(database_url, gid)} == {f"{APPROVAL.reference} {APPROVAL.url}"}
        await settle(handle)
        await handle.terminate("test over")


class FlakyWebhook:
    """A loopback webhook receiver that fails its first `fail` deliveries."""

    def __init__(self, secret: str, fail: int):
        self.secret = secret
        self.fail = fail
        self.received: list[dict] = []
        self.refused = 0

    async def receive(self, request: Request):
        body = await request.body()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        assert request.headers["x-govfleet-signature"] == expected
        if self.refused < self.fail:
            self.refused += 1
            return JSONResponse({"error": "down"}, status_code=503)
        self.received.append({"key": request.headers["x-govfleet-idempotency-key"], **json.loads(body)})
        return JSONResponse({"ok": True})


async def test_failing_notification_channel_never_blocks_the_loop(dev_env, task_queue, config, database_url, sim):
    secret = "loopback-test-secret"
    hook = FlakyWebhook(secret, fail=2)
    served = await start_api(Starlette(routes=[Route("/hook", hook.receive, methods=["POST"])]))
    try:
        guardian_spec = config.spec.guardian.model_copy(
            update={
                "notifications": NotificationsSpec(
                    webhook=WebhookSpec(url=f"{served.url}/hook", secret="${GUARDIAN_TEST_WEBHOOK_SECRET}")
                )
            }
        )
        spec = config.spec.model_copy(update={"guardian": guardian_spec})
        cfg_obj = Config(settings=config.settings, spec=spec)
        client = dev_env.client

        def real_notifier(resources):
            notify = NotificationActivities(resources, environ={"GUARDIAN_TEST_WEBHOOK_SECRET": secret})
            return [notify.send_notification]

        async with guardian_worker(client, task_queue, cfg_obj, database_url, more_activities=real_notifier):
            sim.sim.set_reading(51.5)  # warning: urgent notification, 1 s checks
            handle = await start_guardian(client, task_queue, make_config(config, sim, new_guardian_id()))
            # The channel refuses the first two attempts (retried 2 s, 4 s later); checks go on meanwhile.
            await eventually(lambda: len(hook.received) == 1, timeout=30)
            assert hook.refused == 2
            assert (await handle.query(GuardianWorkflow.stats)).checks >= 4  # 1 s checks went on
            (got,) = hook.received
            assert got["kind"] == "warning" and got["urgent"] is True
            assert "Level: warning\nHolder Control: 51.5%\nThreshold: 52%" in got["body"]
            await settle(handle)
            await handle.terminate("test over")
    finally:
        await served.stop()
