"""Workflow `Payment` (names and payloads: govfleet/contracts/payment.py; the ledger rules:
docs/ledger.md): confirm a credit purchase durably.

A run confirms its input; while it is in flight, a caller with the same payment id asks it with
update `confirm` to confirm that caller's payload, so every caller gets the answer for its own
payload (the committed result, or a conflict) whatever else is in flight. Equal payloads in one
run share one ledger call.

The ledger transaction runs as a local activity with retries (a crashed worker, a database
restart or a lost reply only delay the confirmation; the payment id makes every attempt
idempotent), then the status workflow is told the system tenant's new balance, best-effort (a
local activity too), before the caller gets its answer. Local activities keep a confirmation to one
workflow task; see docs/ledger.md, "Speed", for the figures behind that choice.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.status import StatusActivities
    from govfleet.contracts.payment import (
        CONFIRM_UPDATE,
        NON_RETRYABLE_TYPES,
        PAYMENT_WORKFLOW,
        ConfirmPaymentInput,
        ConfirmPaymentResult,
    )
    from govfleet.contracts.status import StatusUpdate
    from workflows.activity_options import PAYMENT_CONFIRM, PAYMENT_STATUS


# Not sandboxed: the sandbox rebuilds its module environment for every run, which doubled the
# CPU a confirmation costs this process (docs/ledger.md, "Speed"). The workflow imports only
# contracts and activity references and does no I/O; the golden histories guard its determinism.
@workflow.defn(name=PAYMENT_WORKFLOW, sandboxed=False)
class PaymentWorkflow:
    def __init__(self) -> None:
        self._confirmations: dict[tuple[str, int], asyncio.Task[ConfirmPaymentResult]] = {}

    @workflow.run
    async def run(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        try:
            return await self._confirm(request)
        finally:
            # Callers that joined this run with update `confirm` get their answers first.
            await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update(name=CONFIRM_UPDATE)
    async def confirm(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        return await self._confirm(request)

    def _confirm(self, request: ConfirmPaymentInput) -> asyncio.Task[ConfirmPaymentResult]:
        key = (request.user_id, request.amount_usd_cents)
        task = self._confirmations.get(key)
        if task is None:
            task = self._confirmations[key] = asyncio.create_task(self._confirm_once(request))
        return task

    async def _confirm_once(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        try:
            result = await workflow.execute_local_activity_method(
                LedgerActivities.confirm_payment,
                request,
                **PAYMENT_CONFIRM,
            )
        except FailureError as err:
            # A refusal arrives as the ApplicationError itself or wrapped in an ActivityError.
            cause = err.cause if isinstance(err, ActivityError) else err
            if isinstance(cause, ApplicationError) and cause.type in NON_RETRYABLE_TYPES:
                # Refused (bad input, conflict, too large, overflow): fails with the same type.
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise

        if not result.replay and result.bonus_credits > 0:
            try:
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
