"""Tag `payments`: confirming a credit purchase through the payment workflow (see docs/ledger.md).

The body is read raw and bounded, its signature verified over those exact bytes before anything
is parsed (docs/ledger.md, "Authentication"), then it is parsed strictly and validated.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import ValidationError

from govfleet import payments
from govfleet.api import gateway
from govfleet.api.body import parse_json
from govfleet.api.context import api_context
from govfleet.api.errors import ApiError, ErrorBody, error_responses, problem_text
from govfleet.domain.billing import ConfirmPaymentInput, ConfirmPaymentResult
from govfleet.domain.payment_signature import SIGNATURE_HEADER, PaymentSignatureError, verify_payment
from govfleet.settings import Settings

router = APIRouter(tags=["payments"])

# A confirmation is about 100 bytes; anything much larger is not one, and is refused before it
# is hashed or parsed.
PAYMENT_BODY_LIMIT_BYTES = 16 * 1024

_signature = APIKeyHeader(
    name=SIGNATURE_HEADER,
    scheme_name="PaymentSignature",
    description="`t=<unix seconds>,v1=<hex>`: `v1` is HMAC-SHA256 with the server's `PAYMENT_SIGNING_SECRET` over "
    '`"<t>." + the raw request body`; `t` must be within `PAYMENT_SIGNATURE_TOLERANCE_SECONDS` (default 300) of '
    "the server's clock. `govfleet pay` signs; docs/ledger.md shows how to sign in any language.",
    auto_error=False,
)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > PAYMENT_BODY_LIMIT_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > PAYMENT_BODY_LIMIT_BYTES:
            raise _too_large()
    return bytes(body)


def _too_large() -> ApiError:
    return ApiError(413, "body_too_large", f"a payment confirmation body is at most {PAYMENT_BODY_LIMIT_BYTES} bytes")


def _secrets(settings: Settings) -> list[str]:
    secrets = settings.payment_signing_secrets()
    if not secrets:
        # Never open: without a secret nobody can be told apart from the payment backend. (Like
        # readings push without its token: a refusal, not an outage.)
        raise ApiError(
            403,
            "payments_disabled",
            "payment confirmation is disabled on this server: set PAYMENT_SIGNING_SECRET (see docs/ledger.md)",
        )
    return secrets


def _verify(settings: Settings, secrets: list[str], raw: bytes, header: str | None) -> None:
    try:
        # Wall-clock time: the signer's `t` is wall-clock time too.
        verify_payment(
            header, raw, secrets, now=int(time.time()), tolerance_seconds=settings.PAYMENT_SIGNATURE_TOLERANCE_SECONDS
        )
    except PaymentSignatureError as err:
        raise ApiError(401, "invalid_signature", err.message, {"reason": err.code}) from None


def _confirmation(raw: bytes, content_type: str) -> ConfirmPaymentInput:
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "a payment confirmation is sent as application/json")
    data = parse_json(raw)
    try:
        return ConfirmPaymentInput.model_validate(data)
    except ValidationError as err:
        problems = [
            {
                "field": ".".join(["body", *map(str, e["loc"])]),
                "problem": problem_text(e["msg"]),
                "type": e["type"],
            }
            for e in err.errors(include_input=False, include_url=False)
        ]
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ApiError(422, "validation_error", f"{first['field']}: {first['problem']}{more}", problems) from None


@router.post(
    "/api/v1/payments/credits/confirm",
    response_model=ConfirmPaymentResult,
    responses={
        202: {
            "description": "Still being confirmed after the wait; send the same request again",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **error_responses(400, 403, 409, 413, 415, 422, 500, 503),
        401: {"model": ErrorBody, "description": "Missing, malformed, expired or wrong payment signature"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ConfirmPaymentInput.model_json_schema()}},
        }
    },
    summary="Confirm a credit purchase (user credits + system-tenant revenue share)",
    description="Signed by the payment backend: header `Govfleet-Payment-Signature: t=<unix seconds>,v1=<hex>`, "
    'HMAC-SHA256 with `PAYMENT_SIGNING_SECRET` over `"<t>." + raw body` (401 otherwise; 403 when the server has '
    "no secret). Runs the payment workflow `payment-<client_payment_id>`: the user gets the purchased credits "
    "and `cogni_system` its revenue-share bonus, in one transaction, exactly once. The same id with the same "
    "payload returns the first result; the same id with a different user or amount is a 409 that says nothing "
    "about the stored payment. Amounts above the server's per-purchase maximum (`PAYMENT_MAX_USD_CENTS`, "
    "default 1,000,000 cents = $10,000) are refused with 422.",
)
async def confirm_payment(request: Request, signature: str | None = Security(_signature)) -> Any:
    ctx = api_context(request)
    secrets = _secrets(ctx.config.settings)
    raw = await _read_body(request)
    _verify(ctx.config.settings, secrets, raw, signature)
    payment = _confirmation(raw, request.headers.get("content-type", ""))
    try:
        return await gateway.confirm_payment(ctx, payment)
    except payments.PaymentPending as err:
        return JSONResponse(
            {"pending": True, "client_payment_id": payment.client_payment_id, "message": str(err)}, status_code=202
        )
