"""The API's one way to reach workflows: queries, updates and signals to the guardian(s), the
payment workflow, and `describe()` of the declared workflows (running or not; /health). Every
failure becomes an `ApiError` here, the same way for every route:

- no Temporal client, the workflow not running, Temporal not answering: 503 `guardian_unavailable`
  (`unavailable` for payments);
- an update the workflow rejected (a bad signature, unsafe to resume, ...): 403 `rejected`,
  with the reason and the rejection's code;
- an answer without the documented shape: 502 `bad_gateway`;
- a payment refused for its input: 409 `payment_conflict` (naming only the caller's own id) or
  422 `validation_error`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from govfleet import payments
from govfleet.api.context import ApiContext
from govfleet.api.errors import ApiError
from govfleet.domain.billing import ConfirmPaymentInput, ConfirmPaymentResult
from govfleet.domain.declared import MEMO_KEY

M = TypeVar("M", bound=BaseModel)

PAYMENT_WAIT_SECONDS = 30.0


def _guardian(ctx: ApiContext, guardian_id: str | None = None) -> WorkflowHandle:
    if ctx.client is None:
        raise ApiError(503, "guardian_unavailable", "no Temporal client configured")
    return ctx.client.get_workflow_handle(guardian_id or ctx.guardian_id)


def _not_running(ctx: ApiContext, guardian_id: str | None = None) -> ApiError:
    return ApiError(503, "guardian_unavailable", f"guardian workflow {guardian_id or ctx.guardian_id!r} is not running")


@dataclass(frozen=True)
class WorkflowSeen:
    """A declared workflow as `describe()` shows it (no worker needed)."""

    status: str  # RUNNING, TERMINATED, ..., NOT_STARTED, UNKNOWN (Temporal did not answer)
    memo: dict

    @property
    def running(self) -> bool | None:
        return None if self.status == "UNKNOWN" else self.status == "RUNNING"


async def describe_workflow(ctx: ApiContext, workflow_id: str) -> WorkflowSeen:
    if ctx.client is None:
        return WorkflowSeen("UNKNOWN", {})
    try:
        desc = await ctx.client.get_workflow_handle(workflow_id).describe(
            rpc_timeout=timedelta(seconds=ctx.query_timeout)
        )
        memo = await desc.memo()
    except RPCError as err:
        return WorkflowSeen("NOT_STARTED" if err.status == RPCStatusCode.NOT_FOUND else "UNKNOWN", {})
    except Exception:
        return WorkflowSeen("UNKNOWN", {})
    ours = memo.get(MEMO_KEY) if isinstance(memo, dict) else None
    return WorkflowSeen(desc.status.name if desc.status else "UNKNOWN", ours if isinstance(ours, dict) else {})


def shaped(model: type[M], value: Any, what: str) -> M:
    """`value` as `model`, or 502: the guardian answered something else than documented."""
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise ApiError(
            502,
            "bad_gateway",
            f"the guardian's {what} answer does not have the documented shape",
            [{"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in err.errors()],
        ) from None


async def query_guardian(ctx: ApiContext, name: str, model: type[M], guardian_id: str | None = None) -> M:
    handle = _guardian(ctx, guardian_id)
    try:
        value = await handle.query(name, rpc_timeout=timedelta(seconds=ctx.query_timeout))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _not_running(ctx, guardian_id) from None
        raise ApiError(
            503,
            "guardian_unavailable",
            f"guardian workflow {handle.id!r} did not answer query {name!r}: {err.message}",
        ) from None
    except Exception as err:
        raise ApiError(
            503, "guardian_unavailable", f"guardian workflow {handle.id!r} did not answer query {name!r}: {err}"
        ) from None
    return shaped(model, value, name)


async def update_guardian(ctx: ApiContext, name: str, body: dict, model: type[M]) -> M:
    handle = _guardian(ctx)
    try:
        value = await handle.execute_update(name, body, rpc_timeout=timedelta(seconds=max(ctx.query_timeout, 10)))
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause or err)
        details: dict = {"action": name}
        if isinstance(cause, ApplicationError):
            details["type"] = cause.type
            if cause.details:
                details["code"] = cause.details[0] if len(cause.details) == 1 else list(cause.details)
        raise ApiError(403, "rejected", reason, details) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _not_running(ctx) from None
        raise ApiError(503, "guardian_unavailable", f"update {name!r} failed: {err.message}") from None
    return shaped(model, value, name)


async def signal_guardian(ctx: ApiContext, name: str, payload: Any, *, best_effort: bool = False) -> None:
    """Send a signal. With `best_effort`, a guardian that is not running or does not answer is not
    an error (the caller is answering with an error of its own anyway)."""
    handle = _guardian(ctx)
    try:
        await handle.signal(name, payload, rpc_timeout=timedelta(seconds=ctx.query_timeout))
    except RPCError as err:
        if best_effort:
            return
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _not_running(ctx) from None
        raise ApiError(503, "guardian_unavailable", f"signal failed: {err.message}") from None


async def confirm_payment(ctx: ApiContext, payment: ConfirmPaymentInput) -> ConfirmPaymentResult:
    """Run the payment workflow for this payload and wait for its answer. Raises
    `payments.PaymentPending` when it is still running after the wait (the route answers 202)."""
    if ctx.client is None:
        raise ApiError(503, "unavailable", "no Temporal client configured")
    try:
        return await payments.confirm_via_workflow(
            ctx.client, ctx.config.settings.TEMPORAL_TASK_QUEUE, payment, timeout=PAYMENT_WAIT_SECONDS
        )
    except payments.PaymentConflict as err:
        raise ApiError(409, "payment_conflict", str(err), {"client_payment_id": payment.client_payment_id}) from None
    except payments.BillingError as err:  # invalid input, too large, ledger overflow: nothing was written
        raise ApiError(422, "validation_error", str(err)) from None
    except payments.PaymentFailed as err:
        raise ApiError(500, "payment_failed", str(err)) from None
    except RPCError as err:
        raise ApiError(503, "unavailable", f"payment confirmation failed: {err.message}") from None
