"""Tag `payments`: confirming a credit purchase through the payment workflow (see docs/ledger.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from govfleet import payments
from govfleet.api import gateway
from govfleet.api.context import api_context
from govfleet.api.errors import error_responses
from govfleet.api.models import ConfirmPaymentBody
from govfleet.domain.billing import ConfirmPaymentResult

router = APIRouter(tags=["payments"])


@router.post(
    "/api/v1/payments/credits/confirm",
    response_model=ConfirmPaymentResult,
    responses={
        202: {
            "description": "Still being confirmed after the wait; send the same request again",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **error_responses(409, 422, 500, 503),
    },
    summary="Confirm a credit purchase (user credits + system-tenant revenue share)",
    description="Runs the payment workflow `payment-<client_payment_id>`: the user gets the purchased "
    "credits and `cogni_system` its revenue-share bonus, in one transaction, exactly once. The same id with "
    "the same payload returns the first result; the same id with a different user or amount is a 409. "
    "Deploy it behind the payment provider's verification: this endpoint trusts its caller.",
)
async def confirm_payment(request: Request, body: ConfirmPaymentBody) -> Any:
    try:
        return await gateway.confirm_payment(api_context(request), body.model_dump())
    except payments.PaymentPending as err:
        return JSONResponse(
            {"pending": True, "client_payment_id": body.client_payment_id, "message": str(err)}, status_code=202
        )
