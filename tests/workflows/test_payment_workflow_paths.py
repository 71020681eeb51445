"""The payment workflow's refusal and failure paths, with the ledger activity replaced by name in
the time-skipping server and the real client (`confirm_via_workflow`) on top: a conflict, bad
input, a purchase above the maximum or an overflow fails the run with the same type and reaches
the caller as that error, is never retried and tells the status surface nothing; a transient
failure is retried until the confirmation goes through; a status failure or a replay never fails
or notifies a payment; a caller that finds a run of its id in flight gets the answer for its own
payload, not that run's."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.ledger import CONFIRM_PAYMENT_ACTIVITY
from govfleet.contracts.payment import PAYMENT_WORKFLOW, payment_workflow_id
from govfleet.contracts.status import NOTIFY_STATUS_ACTIVITY, StatusUpdate
from govfleet.domain.billing import ConfirmPaymentInput, ConfirmPaymentResult
from govfleet.payments import (
    InvalidPayment,
    LedgerOverflow,
    PaymentConflict,
    PaymentFailed,
    PurchaseTooLarge,
    confirm_via_workflow,
)
from tests.golden.record import recording, save_golden
from tests.workflows.doubles import Calls, new_id, worker
from workflows.payment import PaymentWorkflow


def result_for(req: ConfirmPaymentInput, *, replay: bool = False) -> ConfirmPaymentResult:
    credits = req.amount_usd_cents * 100_000
    return ConfirmPaymentResult(
        client_payment_id=req.client_payment_id,
        user_id=req.user_id,
        amount_usd_cents=req.amount_usd_cents,
        billing_account_id=f"acct_{req.user_id}",
        user_credits=credits,
        bonus_credits=credits * 3 // 4,
        user_balance_after=credits,
        system_balance_after=credits * 3 // 4,
        replay=replay,
    )


class Ledger:
    """The ledger transaction and the status surface, scripted."""

    def __init__(self, *, errors: list[Exception] | None = None, replay: bool = False, status_error: str | None = None):
        self.calls = Calls()
        self.errors = list(errors or [])
        self.replay = replay
        self.status_error = status_error

    @activity.defn(name=CONFIRM_PAYMENT_ACTIVITY)
    async def confirm_payment(self, req: ConfirmPaymentInput) -> ConfirmPaymentResult:
        self.calls.add(CONFIRM_PAYMENT_ACTIVITY, req)
        if self.errors:
            raise self.errors.pop(0)
        return result_for(req, replay=self.replay)

    @activity.defn(name=NOTIFY_STATUS_ACTIVITY)
    async def notify_status(self, update: StatusUpdate) -> None:
        self.calls.add(NOTIFY_STATUS_ACTIVITY, update)
        if self.status_error:
            raise ApplicationError(self.status_error, non_retryable=True)

    def activities(self) -> list:
        return [self.confirm_payment, self.notify_status]


def pay(cents: int = 10_000) -> ConfirmPaymentInput:
    return ConfirmPaymentInput(client_payment_id=new_id("pay-"), user_id="alice", amount_usd_cents=cents)


async def confirm(env, task_queue: str, ledger: Ledger, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
    async with worker(env, task_queue, [PaymentWorkflow], ledger.activities()):
        return await confirm_via_workflow(env.client, task_queue, request, timeout=30)


async def test_a_conflict_reaches_the_caller_as_a_conflict_and_is_not_retried(time_skipping_env, task_queue):
    request = pay(10_001)
    ledger = Ledger(errors=[ApplicationError("conflict", type="PaymentConflict", non_retryable=True)])
    with pytest.raises(PaymentConflict) as conflict:
        await confirm(time_skipping_env, task_queue, ledger, request)

    assert conflict.value.client_payment_id == request.client_payment_id
    assert str(conflict.value) == (
        f"payment {request.client_payment_id!r} was already confirmed with a different payload; "
        "a payment id can be confirmed only once"
    )
    assert ledger.calls.attempts(CONFIRM_PAYMENT_ACTIVITY) == [1]
    assert ledger.calls.of(NOTIFY_STATUS_ACTIVITY) == []


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("InvalidPayment", InvalidPayment),
        ("PurchaseTooLarge", PurchaseTooLarge),
        ("LedgerOverflow", LedgerOverflow),
    ],
)
async def test_refusals_keep_their_type_and_message(time_skipping_env, task_queue, kind, error):
    message = f"{kind}: refused by the ledger"
    ledger = Ledger(errors=[ApplicationError(message, type=kind, non_retryable=True)])
    with pytest.raises(error, match=f"^{message}$"):
        await confirm(time_skipping_env, task_queue, ledger, pay())
    assert ledger.calls.attempts(CONFIRM_PAYMENT_ACTIVITY) == [1]
    assert ledger.calls.of(NOTIFY_STATUS_ACTIVITY) == []


async def test_an_unexpected_failure_is_a_payment_failure_not_a_refusal(time_skipping_env, task_queue):
    request = pay()
    ledger = Ledger(errors=[ApplicationError("ledger row is corrupt", type="Corrupt", non_retryable=True)])
    with pytest.raises(PaymentFailed, match=f"payment '{request.client_payment_id}' failed") as failed:
        await confirm(time_skipping_env, task_queue, ledger, request)
    root: BaseException | None = failed.value
    while root is not None and not isinstance(root, ApplicationError):
        root = root.__cause__
    assert isinstance(root, ApplicationError) and root.message == "ledger row is corrupt"
    assert ledger.calls.attempts(CONFIRM_PAYMENT_ACTIVITY) == [1]


async def test_transient_failures_are_retried_until_the_confirmation_goes_through(time_skipping_env, task_queue):
    request = pay()
    ledger = Ledger(errors=[RuntimeError("connection refused"), RuntimeError("server closed the connection")])
    result = await confirm(time_skipping_env, task_queue, ledger, request)

    assert result.replay is False and result.client_payment_id == request.client_payment_id
    assert ledger.calls.attempts(CONFIRM_PAYMENT_ACTIVITY) == [1, 2, 3]
    assert all(r == request for r in ledger.calls.of(CONFIRM_PAYMENT_ACTIVITY))  # the same key every attempt
    [update] = ledger.calls.of(NOTIFY_STATUS_ACTIVITY)
    assert update.system_credits == str(result.system_balance_after)
    assert update.source == f"payment:{request.client_payment_id}"


async def test_a_status_failure_never_fails_a_payment(time_skipping_env, task_queue):
    ledger = Ledger(status_error="status workflow unreachable")
    result = await confirm(time_skipping_env, task_queue, ledger, pay())

    assert result.replay is False
    assert len(ledger.calls.of(NOTIFY_STATUS_ACTIVITY)) >= 1  # tried, failed, ignored


async def test_a_replay_tells_the_status_surface_nothing(time_skipping_env, task_queue):
    ledger = Ledger(replay=True)
    result = await confirm(time_skipping_env, task_queue, ledger, pay())

    assert result.replay is True
    assert ledger.calls.of(NOTIFY_STATUS_ACTIVITY) == []


class CommittedLedger:
    """A ledger where one payload of the id is already committed: it replays, every other payload
    conflicts. Confirmations of `held` payloads wait until `release` is set."""

    def __init__(self, committed: ConfirmPaymentInput, held: ConfirmPaymentInput):
        self.committed = committed
        self.held = held
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = Calls()

    @activity.defn(name=CONFIRM_PAYMENT_ACTIVITY)
    async def confirm_payment(self, req: ConfirmPaymentInput) -> ConfirmPaymentResult:
        self.calls.add(CONFIRM_PAYMENT_ACTIVITY, req)
        if req == self.held:
            self.holding.set()
            await self.release.wait()
        if req != self.committed:
            raise ApplicationError("conflict", type="PaymentConflict", non_retryable=True)
        return result_for(req, replay=True)

    @activity.defn(name=NOTIFY_STATUS_ACTIVITY)
    async def notify_status(self, update: StatusUpdate) -> None:
        self.calls.add(NOTIFY_STATUS_ACTIVITY, update)


async def test_a_caller_that_joins_a_conflicting_run_in_flight_gets_its_own_committed_result(
    time_skipping_env, task_queue
):
    committed = pay(10_000)
    other = ConfirmPaymentInput(client_payment_id=committed.client_payment_id, user_id="mallory", amount_usd_cents=1)
    ledger = CommittedLedger(committed, held=other)
    client = time_skipping_env.client
    async with worker(time_skipping_env, task_queue, [PaymentWorkflow], [ledger.confirm_payment, ledger.notify_status]):
        # The conflicting request's run, its ledger call held. A short workflow task timeout makes
        # the worker hand back the task while the call is held, so the run can take an update.
        conflicting = await client.start_workflow(
            PAYMENT_WORKFLOW,
            other,
            id=payment_workflow_id(other.client_payment_id),
            task_queue=task_queue,
            task_timeout=timedelta(seconds=1),
        )
        await asyncio.wait_for(ledger.holding.wait(), 10)

        # The retry carrying the committed payload finds that run and asks it to confirm its own payload.
        retry = await confirm_via_workflow(client, task_queue, committed, timeout=30)
        assert retry == result_for(committed, replay=True)

        ledger.release.set()
        with pytest.raises(WorkflowFailureError) as failed:
            await conflicting.result()
        assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == "PaymentConflict"
        if recording():
            await save_golden(conflicting, "payment_joined")
    # One run served both callers, one ledger call each.
    assert ledger.calls.of(CONFIRM_PAYMENT_ACTIVITY) == [other, committed]
    assert ledger.calls.of(NOTIFY_STATUS_ACTIVITY) == []


async def test_a_caller_with_the_same_payload_as_the_run_in_flight_gets_the_same_result(time_skipping_env, task_queue):
    request = pay()
    ledger = CommittedLedger(request, held=request)
    client = time_skipping_env.client
    async with worker(time_skipping_env, task_queue, [PaymentWorkflow], [ledger.confirm_payment, ledger.notify_status]):
        first = asyncio.create_task(confirm_via_workflow(client, task_queue, request, timeout=30))
        await asyncio.wait_for(ledger.holding.wait(), 10)
        joined = asyncio.create_task(confirm_via_workflow(client, task_queue, request, timeout=30))
        await asyncio.sleep(0.5)  # let the second caller reach the run
        ledger.release.set()
        assert await first == await joined == result_for(request, replay=True)
    # Shared when the run takes the update before it ends; otherwise the caller starts a new run.
    assert ledger.calls.of(CONFIRM_PAYMENT_ACTIVITY) in ([request], [request, request])
