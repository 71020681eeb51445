"""Ledger activities: the payment confirmation transaction, run with retries by the payment workflow
(as a local activity: see docs/ledger.md, "Speed").

Idempotency: the payment id is the key (`payments` primary key), so a retried attempt (after a
timeout, a crash before COMMIT or a lost completion after COMMIT) writes at most one pair of
entries. The workflow run id is recorded as `confirmed_by`, so an attempt that finds its own run's
earlier commit reports the confirmation as new, not as a replay.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from govfleet.contracts.payment import CONFIRM_PAYMENT_ACTIVITY
from govfleet.domain.billing import BillingError, ConfirmPaymentInput, ConfirmPaymentResult
from govfleet.logging import get_logger
from govfleet.store import ledger
from workers.resources import Resources

# Fault injection for tests and drills only: `before_commit:SECONDS` or `after_commit:SECONDS`
# makes the confirmation sleep inside its transaction (before COMMIT) or after it (before the
# activity reports), so a test can kill the worker at exactly that point.
FAULT_ENV = "GOVFLEET_FAULT_CONFIRM_PAUSE"

log = get_logger(__name__)
BENIGN = ApplicationErrorCategory.BENIGN


def parse_fault(value: str | None) -> tuple[str, float] | None:
    if not value:
        return None
    point, _, seconds = value.partition(":")
    if point not in ("before_commit", "after_commit"):
        raise ValueError(f"{FAULT_ENV}={value!r}: point must be before_commit or after_commit")
    try:
        return point, float(seconds)
    except ValueError:
        raise ValueError(f"{FAULT_ENV}={value!r}: expected <point>:<seconds>") from None


class LedgerActivities:
    def __init__(self, resources: Resources, *, fault: str | None = None):
        self._resources = resources
        self._fault = parse_fault(fault if fault is not None else os.environ.get(FAULT_ENV))

    async def _pause(self, point: str) -> None:
        if self._fault and self._fault[0] == point:
            log.warning("fault injection: pausing confirmation", point=point, seconds=self._fault[1])
            await asyncio.sleep(self._fault[1])

    async def _pause_before_commit(self) -> None:
        await self._pause("before_commit")

    @activity.defn(name=CONFIRM_PAYMENT_ACTIVITY)
    async def confirm_payment(self, request: ConfirmPaymentInput) -> ConfirmPaymentResult:
        info = activity.info()
        before_commit: Callable[[], Awaitable[None]] | None = None
        if self._fault and self._fault[0] == "before_commit":
            before_commit = self._pause_before_commit

        try:
            result = await ledger.confirm_payment(
                self._resources.pool,
                request,
                share=self._resources.config.settings.SYSTEM_TENANT_REVENUE_SHARE,
                max_usd_cents=self._resources.config.settings.PAYMENT_MAX_USD_CENTS,
                confirmed_by=info.workflow_run_id,
                before_commit=before_commit,
            )
            await self._pause("after_commit")
        # A refusal is an answer, not a fault: one log line, and BENIGN keeps the SDK from logging
        # it as a failed activity with a traceback.
        except BillingError as exc:
            log.info("payment refused", client_payment_id=request.client_payment_id, reason=str(exc))
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True, category=BENIGN) from None
        log.info(
            "payment confirmed" if not result.replay else "payment replayed",
            client_payment_id=result.client_payment_id,
            user_credits=result.user_credits,
            bonus_credits=result.bonus_credits,
            attempt=info.attempt,
        )
        return result
