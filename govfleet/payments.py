"""Client side of the payment path: run the payment workflow for one confirmation and return the
answer for the caller's own payload.

Used by `POST /api/v1/payments/credits/confirm` (and through it `govfleet pay`). The workflow id
is `payment-<client_payment_id>`. A caller starts a run with its payload (eagerly: when this
process also runs a worker, the server hands the first workflow task straight back to it). If a
run of that id is already in flight, the caller does not take that run's result (its payload may
differ): it asks the run, with update `confirm`, to confirm the caller's payload too. So a request
carrying the committed payload always gets the committed result and one carrying another payload
always gets a conflict, whatever else is in flight. A confirmation after the runs finished starts
a new run, which finds the payment already confirmed and returns the first result with
`replay=True`. See docs/ledger.md.
"""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from govfleet.contracts.payment import CONFIRM_UPDATE, PAYMENT_WORKFLOW, payment_workflow_id
from govfleet.domain.billing import (
    BillingError,
    ConfirmPaymentInput,
    ConfirmPaymentResult,
    InvalidPayment,
    LedgerOverflow,
    PaymentConflict,
    PurchaseTooLarge,
    parse_confirm_input,
)

__all__ = [
    "BillingError",
    "ConfirmPaymentInput",
    "ConfirmPaymentResult",
    "InvalidPayment",
    "LedgerOverflow",
    "PaymentConflict",
    "PaymentFailed",
    "PaymentPending",
    "PurchaseTooLarge",
    "confirm_via_workflow",
    "parse_confirm_input",
]


class PaymentPending(TimeoutError):
    """The confirmation did not finish within the caller's wait; it continues durably."""

    def __init__(self, client_payment_id: str, waited: float):
        self.client_payment_id = client_payment_id
        super().__init__(
            f"payment {client_payment_id!r} is still being confirmed after {waited:g}s "
            f"(workflow {payment_workflow_id(client_payment_id)}); send the same request again for its result"
        )


class PaymentFailed(RuntimeError):
    """The payment workflow failed for a reason other than the input (should not happen)."""


_REFUSALS: dict[str, type[BillingError]] = {
    "InvalidPayment": InvalidPayment,
    "PurchaseTooLarge": PurchaseTooLarge,
    "LedgerOverflow": LedgerOverflow,
}


def _refusal(err: BaseException, client_payment_id: str) -> BillingError | None:
    """The domain error carried by a failed payment workflow or update, if any."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError):
            if cause.type == "PaymentConflict":
                return PaymentConflict(client_payment_id)
            refusal = _REFUSALS.get(cause.type or "")
            if refusal is not None:
                return refusal(cause.message)
        cause = cause.__cause__
    return None


def _answer(err: BaseException, client_payment_id: str) -> BillingError | PaymentFailed:
    refusal = _refusal(err, client_payment_id)
    if refusal is not None:
        return refusal
    cause = getattr(err, "cause", None) or err
    return PaymentFailed(f"payment {client_payment_id!r} failed: {cause}")


def _run_closed(err: RPCError) -> bool:
    """Whether an update was refused because its run closed before taking it."""
    return err.status == RPCStatusCode.NOT_FOUND or "already completed" in err.message


async def _confirm(client: Client, task_queue: str, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
    workflow_id = payment_workflow_id(request.client_payment_id)
    while True:
        try:
            handle = await client.start_workflow(
                PAYMENT_WORKFLOW,
                request,
                id=workflow_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                result_type=ConfirmPaymentResult,
                request_eager_start=True,
            )
        except WorkflowAlreadyStartedError as started:
            # A run of this id is in flight, maybe with another payload: ask it to confirm ours.
            joined = client.get_workflow_handle(workflow_id, run_id=started.run_id)
            try:
                return await joined.execute_update(CONFIRM_UPDATE, request, result_type=ConfirmPaymentResult)
            except WorkflowUpdateFailedError as err:
                raise _answer(err, request.client_payment_id) from err
            except RPCError as err:
                if not _run_closed(err):
                    raise
                await asyncio.sleep(0)  # it finished first: start a run of our own
                continue
        try:
            return await handle.result()
        except WorkflowFailureError as err:
            raise _answer(err, request.client_payment_id) from err


async def confirm_via_workflow(
    client: Client, task_queue: str, request: ConfirmPaymentInput | dict, *, timeout: float | None = None
) -> ConfirmPaymentResult:
    """Confirm a credit purchase through the payment workflow and return its result.

    Raises InvalidPayment (HTTP 422), PaymentConflict (HTTP 409), PurchaseTooLarge and
    LedgerOverflow (HTTP 422), PaymentFailed (HTTP 500), PaymentPending when `timeout` seconds
    pass first (HTTP 202; the confirmation continues).
    """
    request = parse_confirm_input(request)
    try:
        if timeout is None:
            return await _confirm(client, task_queue, request)
        return await asyncio.wait_for(_confirm(client, task_queue, request), timeout)
    except TimeoutError:
        raise PaymentPending(request.client_payment_id, timeout or 0) from None
