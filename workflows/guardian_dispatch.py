"""The guardian workflow's background work: breaker calls (in order per target, a resume never
overtaking its pause), read-only probes of the targets, and notifications. None of it blocks a
check; what the loop must know comes back as a `Report` it takes in order (docs/guardian.md,
"Breakers").

A call is first tried for `BREAKER_ALERT_AFTER` (retried inside that window); if it has not been
acknowledged by then the loop is told (an urgent `breaker_unreachable` alert) and the call goes on
being retried, without limit and with the same idempotency key, until the target answers — then
the loop is told again. Runs from before this replay a single call retried without limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.guardian import GuardianActivities
    from govfleet.contracts.guardian import BreakerCall, BreakerProbe
    from govfleet.contracts.notifications import NotificationRequest
    from govfleet.domain.text import clip
    from workflows.activity_options import (
        GUARDIAN_BREAKER_CALL,
        GUARDIAN_BREAKER_CALL_FIRST,
        GUARDIAN_BREAKER_PROBE,
        GUARDIAN_NOTIFICATION,
    )
    from workflows.notifications import send_notification


@dataclass(frozen=True)
class Report:
    """What the background work tells the loop about a breaker target."""

    kind: Literal["probe", "call_failing", "call_answered"]
    target: str
    action: str = ""
    error: str | None = None


class GuardianDispatch:
    """Breaker queues, probes and notifications in flight, each as a workflow task referenced
    until it is done. `report` hands a `Report` to the workflow's loop."""

    def __init__(self, report: Callable[[Report], None]) -> None:
        self._report = report
        self._breaker_queues: dict[str, list[BreakerCall]] = {}
        self._breaker_workers: set[str] = set()
        self.notifications: dict[str, NotificationRequest] = {}
        self._tasks: set[asyncio.Task] = set()
        self.alert_on_failing_calls = False  # set by the workflow under its patch

    def _background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- breaker calls ------------------------------------------------------------------

    def enqueue_breaker(self, call: BreakerCall) -> None:
        self._breaker_queues.setdefault(call.target, []).append(call)
        if call.target not in self._breaker_workers:
            self._breaker_workers.add(call.target)
            self._background(self._breaker_worker(call.target))

    def pending_breaker_calls(self) -> list[BreakerCall]:
        return [c for q in self._breaker_queues.values() for c in q]

    async def _breaker_worker(self, target: str) -> None:
        queue = self._breaker_queues[target]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.pop(0)
        finally:
            self._breaker_workers.discard(target)

    async def _deliver(self, call: BreakerCall) -> None:
        failing = False
        while True:
            first = self.alert_on_failing_calls and not failing
            options = GUARDIAN_BREAKER_CALL_FIRST if first else GUARDIAN_BREAKER_CALL
            try:
                await workflow.execute_activity_method(
                    GuardianActivities.call_breaker, call, **(options | {"summary": f"{call.action} {call.target}"})
                )
            except ActivityError as exc:
                if not first:  # only on cancellation: the unlimited retries never give up
                    workflow.logger.error("breaker %s %s abandoned: %s", call.target, call.action, exc.cause or exc)
                    return
                failing = True
                error = clip(str(exc.cause or exc), 200)
                self._report(Report("call_failing", call.target, call.action, error))
                continue
            if failing:
                self._report(Report("call_answered", call.target, call.action))
            return

    # -- probes ---------------------------------------------------------------------------

    def probe(self, probe: BreakerProbe) -> None:
        self._background(self._probe(probe))

    async def _probe(self, probe: BreakerProbe) -> None:
        try:
            result = await workflow.execute_activity_method(
                GuardianActivities.probe_breaker,
                probe,
                **(GUARDIAN_BREAKER_PROBE | {"summary": f"probe {probe.target}"}),
            )
            error = result.error
        except ActivityError as exc:
            error = clip(str(exc.cause or exc), 200)
        self._report(Report("probe", probe.target, "probe", error))

    # -- notifications --------------------------------------------------------------------

    def notify(self, req: NotificationRequest) -> None:
        self.notifications[req.idempotency_key] = req
        self._background(self._send(req))

    async def _send(self, req: NotificationRequest) -> None:
        try:
            await send_notification(req, GUARDIAN_NOTIFICATION)
        finally:
            self.notifications.pop(req.idempotency_key, None)
