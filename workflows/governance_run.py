"""Workflow `GovernanceRun`: one charter's scheduled run, paid by the system tenant (names and
payloads: govfleet/contracts/governance_run.py; the rules: docs/schedules.md).

begin (record the run, validate the grant) → charge (1x, within the daily budget, once) →
entrypoint from the registry (HEARTBEAT, BRIEF, HTTP; any other word is handed to the agent
gateway) → finish (success or error with reason).
A run refused for its grant or budget is recorded as `refused` with the reason and completes
normally; a run whose entrypoint failed is recorded as `error` and then fails the workflow (so
it is red in the Temporal UI). The schedule never pauses on failure, so the next run happens.

The run id is the workflow id; for schedule-started runs Temporal makes it
`<schedule id>-<scheduled time>`, so the schedule id is its prefix.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.governance_run import GovernanceRunActivities
    from activities.status import StatusActivities
    from govfleet.contracts.governance_run import (
        GOVERNANCE_RUN_WORKFLOW,
        REFUSED_NOT_FUNDED,
        BeginRunInput,
        ChargeRunInput,
        EntrypointInput,
        FinishRunInput,
        GovernanceRunInput,
        GovernanceRunResult,
    )
    from govfleet.contracts.notifications import NotificationRequest
    from govfleet.contracts.status import RecentRun, StatusUpdate
    from govfleet.domain.governance_run import KIND_NOT_FUNDED, idempotency_key, run_title
    from govfleet.domain.timestamps import as_utc
    from workflows.activity_options import RUN_DB, RUN_NOTIFICATION, RUN_STATUS, run_entrypoint
    from workflows.failures import cause_message
    from workflows.notifications import send_notification

SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

# The entrypoint registry: name -> (activity, start-to-close timeout).
ENTRYPOINTS = {
    "HEARTBEAT": (GovernanceRunActivities.entrypoint_heartbeat, timedelta(seconds=30)),
    "BRIEF": (GovernanceRunActivities.entrypoint_brief, timedelta(seconds=60)),
    "HTTP": (GovernanceRunActivities.entrypoint_http, timedelta(seconds=120)),
}
# Any other word goes to the agent gateway (docs/schedules.md, "Entrypoints"); docs/patches.md.
GATEWAY_PATCH = "governance-run-gateway"
# A run refused because the system tenant cannot pay it tells the admins (docs/patches.md).
NOT_FUNDED_PATCH = "governance-run-not-funded-notice"
GATEWAY_TIMEOUT = timedelta(seconds=120)


@workflow.defn(name=GOVERNANCE_RUN_WORKFLOW)
class GovernanceRun:
    @workflow.run
    async def run(self, inp: GovernanceRunInput) -> GovernanceRunResult:
        info = workflow.info()
        run_id = info.workflow_id
        scheduled_at = inp.scheduled_at or info.typed_search_attributes.get(SCHEDULED_START_TIME) or info.start_time
        title = run_title(inp.charter, scheduled_at, inp.timezone)
        key = idempotency_key(inp.schedule_id, scheduled_at)

        begun = await workflow.execute_activity_method(
            GovernanceRunActivities.begin,
            BeginRunInput(
                run_id=run_id,
                schedule_id=inp.schedule_id,
                charter=inp.charter,
                entrypoint=inp.entrypoint,
                title=title,
                scheduled_at=scheduled_at,
            ),
            **RUN_DB,
        )
        result = GovernanceRunResult(
            run_id=run_id, title=title, status=begun.status, reason=begun.reason, idempotency_key=key
        )
        await self._tell_status(run_id, title, begun.started_at, begun.last_activity, begun.status, begun.reason)
        if begun.status != "running":
            return result

        charge = await workflow.execute_activity_method(
            GovernanceRunActivities.charge,
            ChargeRunInput(
                run_id=run_id,
                schedule_id=inp.schedule_id,
                amount=inp.credits_per_run,
                budget_credits_per_day=inp.budget_credits_per_day,
            ),
            **RUN_DB,
        )
        if charge.refused_reason:
            if charge.refused_code == REFUSED_NOT_FUNDED and workflow.patched(NOT_FUNDED_PATCH):
                await self._tell_admins_not_funded(inp, run_id, scheduled_at, charge.refused_reason)
            return await self._finish(result, begun.started_at, "refused", charge.refused_reason, None)
        result.credits_charged = charge.charged

        entry = ENTRYPOINTS.get(inp.entrypoint)
        if entry is None and inp.agent_url and workflow.patched(GATEWAY_PATCH):
            timeout = timedelta(seconds=inp.agent_timeout_seconds) if inp.agent_timeout_seconds else GATEWAY_TIMEOUT
            entry = (GovernanceRunActivities.entrypoint_gateway, timeout)
        if entry is None:
            return await self._finish(
                result,
                begun.started_at,
                "error",
                f"unknown entrypoint {inp.entrypoint!r} (known: {', '.join(ENTRYPOINTS)}; "
                "any other word needs governance.agent_gateway)",
                None,
            )
        activity_fn, timeout = entry
        try:
            out = await workflow.execute_activity_method(
                activity_fn,
                EntrypointInput(
                    run_id=run_id,
                    schedule_id=inp.schedule_id,
                    charter=inp.charter,
                    title=title,
                    scheduled_at=scheduled_at,
                    idempotency_key=key,
                    agent_url=inp.agent_url,
                    budget_credits_per_day=inp.budget_credits_per_day,
                    entrypoint=inp.entrypoint if inp.entrypoint not in ENTRYPOINTS else None,
                    agent_token=inp.agent_token,
                    agent_protocol=inp.agent_protocol,
                    tool_allowlist=begun.tool_allowlist,
                ),
                **run_entrypoint(timeout),
            )
        except ActivityError as err:
            return await self._finish(
                result, begun.started_at, "error", f"{inp.entrypoint} failed: {cause_message(err)}", None
            )
        return await self._finish(result, begun.started_at, "success", None, out.brief)

    async def _finish(
        self, result: GovernanceRunResult, started_at: datetime, status: str, reason: str | None, brief: str | None
    ) -> GovernanceRunResult:
        done = await workflow.execute_activity_method(
            GovernanceRunActivities.finish,
            FinishRunInput(run_id=result.run_id, status=status, reason=reason, brief=brief),
            **RUN_DB,
        )
        result.status, result.reason = status, reason
        await self._tell_status(result.run_id, result.title, started_at, done.last_activity, status, reason)
        if status == "error":
            raise ApplicationError(
                f"governance run {result.run_id} failed: {reason}",
                result.model_dump(mode="json"),
                type="GovernanceRunFailed",
                non_retryable=True,
            )
        return result

    async def _tell_admins_not_funded(
        self, inp: GovernanceRunInput, run_id: str, scheduled_at: datetime, reason: str
    ) -> None:
        """The system tenant cannot pay its runs: the admins are told, once per charter and day
        (the idempotency key; docs/heartbeat.md, "Not funded")."""
        day = as_utc(scheduled_at).astimezone(UTC).date().isoformat()
        await send_notification(
            NotificationRequest(
                idempotency_key=f"governance-run:not-funded:{inp.charter.lower()}:{day}",
                kind=KIND_NOT_FUNDED,
                urgent=True,
                title=f"Governance run {inp.charter} refused: the system tenant is not funded",
                body=(
                    f"{reason}.\nEvery governance run is refused until the system tenant has credits "
                    "(each purchase mints its share; `govfleet ledger balance` shows it)."
                ),
                data={"charter": inp.charter, "schedule_id": inp.schedule_id, "run_id": run_id, "day": day},
            ),
            RUN_NOTIFICATION,
        )

    async def _tell_status(
        self,
        run_id: str,
        title: str,
        started_at: datetime,
        last_activity: datetime,
        status: str | None,
        reason: str | None,
    ) -> None:
        try:
            await workflow.execute_activity_method(
                StatusActivities.notify_status,
                StatusUpdate(
                    run=RecentRun(
                        id=run_id,
                        title=title,
                        started_at=started_at,
                        last_activity=last_activity,
                        status=status,
                        reason=reason,
                    ),
                    source="governance_run",
                ),
                **RUN_STATUS,
            )
        except ActivityError:
            workflow.logger.warning("could not tell the status workflow about run %s", run_id)
