"""Workflow `Payment` (id `payment-<client_payment_id>`): confirm one credit purchase.

Input `ConfirmPaymentInput`, result `ConfirmPaymentResult` (see docs/ledger.md). The payment
id is the idempotency key of the whole path: a run confirms its input; a caller that finds a run
of its id already in flight asks that run, with update `confirm`, to confirm ITS payload and
gets the answer for that payload; a later run of the same id returns the first result with
`replay=True`.
"""

from __future__ import annotations

from govfleet.domain.billing import ConfirmPaymentInput, ConfirmPaymentResult

__all__ = [
    "CONFIRM_PAYMENT_ACTIVITY",
    "CONFIRM_UPDATE",
    "NON_RETRYABLE_TYPES",
    "PAYMENT_WORKFLOW",
    "ConfirmPaymentInput",
    "ConfirmPaymentResult",
    "payment_workflow_id",
]

PAYMENT_WORKFLOW = "Payment"
CONFIRM_PAYMENT_ACTIVITY = "confirm_payment"
CONFIRM_UPDATE = "confirm"  # another caller's payload, confirmed by the run in flight

# Failure types that retrying cannot fix: the activity raises them non-retryable and the
# workflow fails with the same type and message (the API maps them to 409 / 422).
NON_RETRYABLE_TYPES = ("InvalidPayment", "PaymentConflict", "LedgerOverflow", "PurchaseTooLarge")


def payment_workflow_id(client_payment_id: str) -> str:
    return f"payment-{client_payment_id}"
