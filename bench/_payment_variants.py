"""Other ways the payment workflow could have been built, measured against the chosen one by
bench/ledger_bench.py (docs/ledger.md, "Speed"). Each runs the same ledger transaction and the
same status notification as `workflows/payment.py`; only how Temporal is used differs:

- `BenchPaymentActivity`: the transaction as a regular activity (a second task round trip);
- `BenchPaymentLocalSandboxed`: a local activity, in the default workflow sandbox;
- `BenchPaymentUpdate`: the transaction in an update handler, reached with update-with-start (the
  caller gets the update's result; no separate wait for the run's result);
- `BenchPaymentNoStatus`: the chosen design without telling the status workflow (what that costs).

Not registered by the fleet; the benchmark adds them to its own worker.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.status import StatusActivities
    from govfleet.contracts.payment import NON_RETRYABLE_TYPES
    from govfleet.contracts.status import StatusUpdate
    from govfleet.domain.billing import ConfirmPaymentInput, ConfirmPaymentResult

_TIMEOUT = timedelta(seconds=60)
_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)


async def _notify(request: ConfirmPaymentInput, result: ConfirmPaymentResult) -> None:
    if not result.replay and result.bonus_credits > 0:
        await workflow.execute_local_activity_method(
            StatusActivities.notify_status,
            StatusUpdate(
                system_credits=str(result.system_balance_after), source=f"payment:{request.client_payment_id}"
            ),
            start_to_close_timeout=timedelta(seconds=10),
        )


async def _confirm_local(request: ConfirmPaymentInput, *, notify: bool = True) -> ConfirmPaymentResult:
    result = await workflow.execute_local_activity_method(
        LedgerActivities.confirm_payment, request, start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY
    )
    if notify:
        await _notify(request, result)
    return result


@workflow.defn(name="BenchPaymentActivity", sandboxed=False)
class BenchPaymentActivity:
    @workflow.run
    async def run(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        result = await workflow.execute_activity_method(
            LedgerActivities.confirm_payment, request, start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY
        )
        await _notify(request, result)
        return result


@workflow.defn(name="BenchPaymentLocalSandboxed")
class BenchPaymentLocalSandboxed:
    @workflow.run
    async def run(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        return await _confirm_local(request)


@workflow.defn(name="BenchPaymentUpdate", sandboxed=False)
class BenchPaymentUpdate:
    @workflow.run
    async def run(self, request: ConfirmPaymentInput) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update(name="confirm")
    async def confirm(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        return await _confirm_local(request)


@workflow.defn(name="BenchPaymentNoStatus", sandboxed=False)
class BenchPaymentNoStatus:
    @workflow.run
    async def run(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        return await _confirm_local(request, notify=False)


VARIANTS = [BenchPaymentActivity, BenchPaymentLocalSandboxed, BenchPaymentUpdate, BenchPaymentNoStatus]
