"""The payment workflow (id `payment-<client_payment_id>`): confirm a credit purchase durably.

It runs the ledger transaction as an activity with retries (a crashed worker, a database restart
or a lost reply only delay the confirmation; the payment id makes every attempt idempotent), then
tells the status workflow the system tenant's new balance, best-effort (a local activity).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import CONFIRM_PAYMENT_ACTIVITY, NON_RETRYABLE_TYPES
    from govfleet.contracts import NOTIFY_STATUS_ACTIVITY, PAYMENT_WORKFLOW, StatusUpdate
    from govfleet.domain.billing import ConfirmPaymentInput, ConfirmPaymentResult

CONFIRM_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)


@workflow.defn(name=PAYMENT_WORKFLOW)
class PaymentWorkflow:
    @workflow.run
    async def run(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        try:
            result = await workflow.execute_activity(
                CONFIRM_PAYMENT_ACTIVITY,
                request,
                result_type=ConfirmPaymentResult,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=5),
                retry_policy=CONFIRM_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in NON_RETRYABLE_TYPES:
                # Refused (bad input, conflict, overflow): the run fails with the same type.
                raise ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True) from None
            raise

        if not result.replay and result.bonus_credits > 0:
            try:
                # A local activity: one quick signal-with-start, no extra task round trip.
                await workflow.execute_local_activity(
                    NOTIFY_STATUS_ACTIVITY,
                    StatusUpdate(
                        system_credits=str(result.system_balance_after),
                        source=f"payment:{request.client_payment_id}",
                    ),
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=2)),
                )
            except FailureError as err:  # status is a read model; never fail a payment for it
                # (a failed local activity surfaces as its own error, e.g. ApplicationError or TimeoutError)
                workflow.logger.warning("could not tell status about payment %s: %s", request.client_payment_id, err)
        return result
