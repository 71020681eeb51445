"""Workflow `Payment` (names and payloads: govfleet/contracts/payment.py; the ledger rules:
docs/ledger.md): confirm a credit purchase durably.

It runs the ledger transaction as an activity with retries (a crashed worker, a database restart
or a lost reply only delay the confirmation; the payment id makes every attempt idempotent), then
tells the status workflow the system tenant's new balance, best-effort (a local activity).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.status import StatusActivities
    from govfleet.contracts.payment import (
        NON_RETRYABLE_TYPES,
        PAYMENT_WORKFLOW,
        ConfirmPaymentInput,
        ConfirmPaymentResult,
    )
    from govfleet.contracts.status import StatusUpdate
    from workflows.activity_options import PAYMENT_CONFIRM, PAYMENT_STATUS


@workflow.defn(name=PAYMENT_WORKFLOW)
class PaymentWorkflow:
    @workflow.run
    async def run(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        try:
            result = await workflow.execute_activity_method(
                LedgerActivities.confirm_payment,
                request,
                **PAYMENT_CONFIRM,
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
                await workflow.execute_local_activity_method(
                    StatusActivities.notify_status,
                    StatusUpdate(
                        system_credits=str(result.system_balance_after),
                        source=f"payment:{request.client_payment_id}",
                    ),
                    **PAYMENT_STATUS,
                )
            except FailureError as err:  # status is a read model; never fail a payment for it
                # (a failed local activity surfaces as its own error, e.g. ApplicationError or TimeoutError)
                workflow.logger.warning("could not tell status about payment %s: %s", request.client_payment_id, err)
        return result
