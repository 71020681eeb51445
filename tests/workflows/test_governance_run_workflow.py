"""The governance-run workflow's branches, with its activities replaced by name in the
time-skipping server: a run refused for its grant or its budget is recorded as refused with the
reason and charges nothing; a successful run is charged once and its entrypoint gets the
idempotency key `<schedule id>:<scheduled time>` on every attempt; a failed entrypoint is
recorded as an error and fails the run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.governance_run import (
    BeginRunInput,
    BeginRunResult,
    ChargeRunInput,
    ChargeRunResult,
    EntrypointInput,
    EntrypointResult,
    FinishRunInput,
    FinishRunResult,
    GovernanceRunActivities,
)
from govfleet.contracts.governance_run import GOVERNANCE_RUN_WORKFLOW, GovernanceRunInput
from govfleet.contracts.status import NOTIFY_STATUS_ACTIVITY, StatusUpdate
from tests.workflows.doubles import Calls, name_of, worker
from workflows.governance_run import GovernanceRun, GovernanceRunResult

BEGIN = name_of(GovernanceRunActivities.begin)
CHARGE = name_of(GovernanceRunActivities.charge)
FINISH = name_of(GovernanceRunActivities.finish)
BRIEF = name_of(GovernanceRunActivities.entrypoint_brief)

SCHEDULE_ID = "governance:COMMUNITY"
SCHEDULED_AT = datetime(2026, 2, 17, 12, 0, tzinfo=UTC)
COST = 1_000_000
BUDGET = 100_000_000


class Ledger:
    """The database and the entrypoint, scripted."""

    def __init__(
        self,
        *,
        begin_refusal: str | None = None,
        charge_refusal: str | None = None,
        entrypoint_errors: list[ApplicationError] | None = None,
    ):
        self.calls = Calls()
        self.begin_refusal = begin_refusal
        self.charge_refusal = charge_refusal
        self.entrypoint_errors = list(entrypoint_errors or [])

    @activity.defn(name=BEGIN)
    async def begin(self, inp: BeginRunInput) -> BeginRunResult:
        self.calls.add(BEGIN, inp)
        now = datetime.now(UTC)
        if self.begin_refusal:
            return BeginRunResult(started_at=now, last_activity=now, status="refused", reason=self.begin_refusal)
        return BeginRunResult(started_at=now, last_activity=now, status="running")

    @activity.defn(name=CHARGE)
    async def charge(self, inp: ChargeRunInput) -> ChargeRunResult:
        self.calls.add(CHARGE, inp)
        if self.charge_refusal:
            return ChargeRunResult(refused_reason=self.charge_refusal)
        return ChargeRunResult(charged=inp.amount, balance_after=5 * COST)

    @activity.defn(name=BRIEF)
    async def entrypoint_brief(self, inp: EntrypointInput) -> EntrypointResult:
        self.calls.add(BRIEF, inp)
        if self.entrypoint_errors:
            raise self.entrypoint_errors.pop(0)
        return EntrypointResult(brief=f"# {inp.title}\n", detail="brief generated")

    @activity.defn(name=FINISH)
    async def finish(self, inp: FinishRunInput) -> FinishRunResult:
        self.calls.add(FINISH, inp)
        return FinishRunResult(last_activity=datetime.now(UTC))

    @activity.defn(name=NOTIFY_STATUS_ACTIVITY)
    async def notify_status(self, update: StatusUpdate) -> None:
        self.calls.add(NOTIFY_STATUS_ACTIVITY, update)

    def activities(self) -> list:
        return [self.begin, self.charge, self.entrypoint_brief, self.finish, self.notify_status]


def run_input(entrypoint: str = "BRIEF") -> GovernanceRunInput:
    return GovernanceRunInput(
        schedule_id=SCHEDULE_ID,
        charter="COMMUNITY",
        entrypoint=entrypoint,
        timezone="UTC",
        credits_per_run=COST,
        budget_credits_per_day=BUDGET,
        scheduled_at=SCHEDULED_AT,
    )


async def run(env, task_queue: str, ledger: Ledger) -> GovernanceRunResult:
    async with worker(env, task_queue, [GovernanceRun], ledger.activities()):
        return await env.client.execute_workflow(
            GOVERNANCE_RUN_WORKFLOW,
            run_input(),
            id=f"{SCHEDULE_ID}-2026-02-17T12:00:00Z",
            task_queue=task_queue,
            result_type=GovernanceRunResult,
        )


async def test_a_grant_refusal_records_the_run_as_refused_and_charges_nothing(time_skipping_env, task_queue):
    reason = "execution grant 'cogni_system_governance' was revoked at 2026-02-16T00:00:00Z"
    ledger = Ledger(begin_refusal=reason)
    result = await run(time_skipping_env, task_queue, ledger)

    assert result.status == "refused" and result.reason == reason and result.credits_charged == 0
    assert ledger.calls.of(CHARGE) == [] and ledger.calls.of(BRIEF) == []
    assert ledger.calls.of(FINISH) == []  # the refusal was recorded by `begin` itself
    [update] = ledger.calls.of(NOTIFY_STATUS_ACTIVITY)
    assert update.run.id == result.run_id and update.run.title == "Community — 2026-02-17"


async def test_a_budget_refusal_records_the_run_as_refused_and_runs_nothing(time_skipping_env, task_queue):
    reason = f"daily budget exhausted: spent {BUDGET} of {BUDGET} credits today (UTC); this run costs {COST}"
    ledger = Ledger(charge_refusal=reason)
    result = await run(time_skipping_env, task_queue, ledger)

    assert result.status == "refused" and result.reason == reason and result.credits_charged == 0
    [charge] = ledger.calls.of(CHARGE)
    assert (charge.amount, charge.budget_credits_per_day, charge.run_id) == (COST, BUDGET, result.run_id)
    assert ledger.calls.of(BRIEF) == []
    [finish] = ledger.calls.of(FINISH)
    assert (finish.status, finish.reason, finish.brief) == ("refused", reason, None)
    assert [u.run.id for u in ledger.calls.of(NOTIFY_STATUS_ACTIVITY)] == [result.run_id] * 2


async def test_a_run_is_charged_once_and_its_entrypoint_keeps_one_idempotency_key(time_skipping_env, task_queue):
    ledger = Ledger(entrypoint_errors=[ApplicationError("agent answered 503"), ApplicationError("agent timed out")])
    result = await run(time_skipping_env, task_queue, ledger)

    assert result.status == "success" and result.reason is None and result.credits_charged == COST
    assert result.idempotency_key == "governance:COMMUNITY:2026-02-17T12:00:00Z"
    assert len(ledger.calls.of(CHARGE)) == 1
    assert ledger.calls.attempts(BRIEF) == [1, 2, 3]
    assert {e.idempotency_key for e in ledger.calls.of(BRIEF)} == {result.idempotency_key}
    [finish] = ledger.calls.of(FINISH)
    assert (finish.status, finish.brief) == ("success", "# Community — 2026-02-17\n")


async def test_a_failed_entrypoint_is_recorded_as_an_error_and_fails_the_run(time_skipping_env, task_queue):
    ledger = Ledger(entrypoint_errors=[ApplicationError("agent answered 400", non_retryable=True)])
    with pytest.raises(WorkflowFailureError) as failed:
        await run(time_skipping_env, task_queue, ledger)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "GovernanceRunFailed"
    assert ledger.calls.attempts(BRIEF) == [1]
    [finish] = ledger.calls.of(FINISH)
    assert finish.status == "error" and finish.reason == "BRIEF failed: agent answered 400"
    assert len(ledger.calls.of(CHARGE)) == 1  # charged once; the failure does not charge again


GATEWAY = name_of(GovernanceRunActivities.entrypoint_gateway)


class GatewayLedger(Ledger):
    @activity.defn(name=GATEWAY)
    async def entrypoint_gateway(self, inp: EntrypointInput) -> EntrypointResult:
        self.calls.add(GATEWAY, inp)
        return EntrypointResult(brief=f"gateway ran {inp.entrypoint}\n", detail="agent gateway answered 200")

    def activities(self) -> list:
        return [*super().activities(), self.entrypoint_gateway]


async def run_free_word(env, task_queue: str, ledger: Ledger, **over) -> GovernanceRunResult:
    inp = run_input("GOVERN").model_copy(update=over)
    async with worker(env, task_queue, [GovernanceRun], ledger.activities()):
        return await env.client.execute_workflow(
            GOVERNANCE_RUN_WORKFLOW, inp, id=f"{SCHEDULE_ID}-gw", task_queue=task_queue, result_type=GovernanceRunResult
        )


async def test_a_free_word_goes_to_the_gateway_with_its_url_and_token_reference(time_skipping_env, task_queue):
    ledger = GatewayLedger()
    result = await run_free_word(
        time_skipping_env,
        task_queue,
        ledger,
        agent_url="${GW_URL}",
        agent_token="${GW_TOKEN}",
        agent_timeout_seconds=30,
    )
    assert result.status == "success" and result.credits_charged == COST
    [call] = ledger.calls.of(GATEWAY)
    assert (call.entrypoint, call.agent_url, call.agent_token, call.charter) == (
        "GOVERN",
        "${GW_URL}",
        "${GW_TOKEN}",
        "COMMUNITY",
    )
    assert call.idempotency_key == result.idempotency_key and ledger.calls.of(BRIEF) == []
    [finish] = ledger.calls.of(FINISH)
    assert (finish.status, finish.brief) == ("success", "gateway ran GOVERN\n")


async def test_a_free_word_without_a_gateway_url_is_an_error_without_a_call(time_skipping_env, task_queue):
    ledger = GatewayLedger()
    with pytest.raises(WorkflowFailureError):
        await run_free_word(time_skipping_env, task_queue, ledger)
    assert ledger.calls.of(GATEWAY) == []
    [finish] = ledger.calls.of(FINISH)
    assert finish.status == "error" and finish.reason is not None
    assert finish.reason.startswith("unknown entrypoint 'GOVERN'") and "governance.agent_gateway" in finish.reason
