"""Client side of the payment path: start (or join) the payment workflow and return its result.

Used by `POST /api/v1/payments/credits/confirm` and `govfleet pay`. The workflow id is
`payment-<client_payment_id>`: concurrent confirmations of one id join the same run; a
confirmation after the run finished starts a new run, which finds the payment already confirmed
and returns the first result with `replay=True`.
"""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from govfleet.contracts.payment import PAYMENT_WORKFLOW, payment_workflow_id
from govfleet.domain.billing import (
    BillingError,
    ConfirmPaymentInput,
    ConfirmPaymentResult,
    InvalidPayment,
    LedgerOverflow,
    PaymentConflict,
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


def _refusal(err: BaseException, client_payment_id: str) -> BillingError | None:
    """The domain error carried by a failed payment workflow, if any."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError):
            if cause.type == "PaymentConflict":
                detail = str(cause.details[0]) if cause.details else "a different payload"
                return PaymentConflict(client_payment_id, detail)
            if cause.type == "InvalidPayment":
                return InvalidPayment(cause.message)
            if cause.type == "LedgerOverflow":
                return LedgerOverflow(cause.message)
        cause = cause.__cause__
    return None


async def confirm_via_workflow(
    client: Client, task_queue: str, request: ConfirmPaymentInput | dict, *, timeout: float | None = None
) -> ConfirmPaymentResult:
    """Confirm a credit purchase through the payment workflow and return its result.

    Raises InvalidPayment (HTTP 400/422), PaymentConflict (HTTP 409), LedgerOverflow (HTTP 422),
    PaymentPending when `timeout` seconds pass first (HTTP 202; the confirmation continues).
    """
    request = parse_confirm_input(request)
    handle = await client.start_workflow(
        PAYMENT_WORKFLOW,
        request,
        id=payment_workflow_id(request.client_payment_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=ConfirmPaymentResult,
        # When this process also runs a worker on the task queue (`govfleet up`), the server hands
        # the first workflow task straight back to it; otherwise the flag is ignored.
        request_eager_start=True,
    )
    try:
        if timeout is None:
            result = await handle.result()
        else:
            result = await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        raise PaymentPending(request.client_payment_id, timeout or 0) from None
    except WorkflowFailureError as err:
        refusal = _refusal(err, request.client_payment_id)
        if refusal is not None:
            raise refusal from None
        raise PaymentFailed(f"payment {request.client_payment_id!r} failed: {err.cause or err}") from err
    # A concurrent confirmation with a different payload joins the running workflow of the first:
    # its result then shows the first payload, which is a conflict for this caller.
    differences = []
    if result.user_id != request.user_id:
        differences.append(f"a different user_id ({result.user_id!r}, not {request.user_id!r})")
    if result.amount_usd_cents != request.amount_usd_cents:
        differences.append(f"a different amount_usd_cents ({result.amount_usd_cents}, not {request.amount_usd_cents})")
    if differences:
        raise PaymentConflict(request.client_payment_id, " and ".join(differences))
    return result
