"""Workflow `GovernanceWatchdog`: orchestration only; the rules are `WatchdogCore`
(govfleet/domain/watchdog.py), names and payloads govfleet/contracts/watchdog.py, the
behaviour docs/watchdog.md.

Every `check_seconds` (a Temporal timer, cut short by `configure`): one local activity looks
(describes the watched workflows, reads the last successful heartbeat), the core decides, the
incidents it opened or resolved are written by an activity and announced by notifications,
both in the background so that a slow database or channel never delays the next look. It is
deliberately not the heartbeat and not a guardian: it watches them from outside, so it still
speaks when they are gone. Continues as new after `continue_as_new_after_events` events.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.watchdog import WatchdogActivities
    from govfleet.contracts.notifications import NotificationRequest
    from govfleet.contracts.watchdog import (
        CONFIGURE_SIGNAL,
        STATUS_QUERY,
        WATCHDOG_WORKFLOW,
        IncidentChange,
        InspectInput,
        RecordIncidentsInput,
        WatchdogConfig,
        WatchdogInput,
        WatchdogState,
        WatchdogStatus,
    )
    from govfleet.domain.declared import MEMO_KEY, config_hash, memo_for
    from govfleet.domain.watchdog import WatchdogCore
    from workflows.activity_options import WATCHDOG_INSPECT, WATCHDOG_NOTIFICATION, WATCHDOG_RECORD
    from workflows.notifications import send_notification


@workflow.defn(name=WATCHDOG_WORKFLOW)
class WatchdogWorkflow:
    @workflow.init
    def __init__(self, input: WatchdogInput) -> None:
        state = input.state or WatchdogState(chain=workflow.info().run_id.replace("-", "")[:12])
        self.core = WatchdogCore(input.config, state)
        self._runs = input.runs
        self._pending_config: WatchdogConfig | None = None
        self._tasks: set[asyncio.Task] = set()
        self._sending: dict[str, NotificationRequest] = {}
        self._recording: dict[int, list[IncidentChange]] = {}
        self._batches = 0

    @workflow.run
    async def run(self, input: WatchdogInput) -> None:
        if input.unrecorded:
            self._start_record(list(input.unrecorded))
        for req in input.notifications:
            self._start_send(req)
        while True:
            await self._look()
            with contextlib.suppress(TimeoutError):  # the usual way: the next look is due
                await workflow.wait_condition(
                    lambda: self._pending_config is not None,
                    timeout=timedelta(seconds=self.core.config.check_seconds),
                    timeout_summary="next look",
                )
            if self._pending_config is not None:
                self._apply_config(self._pending_config)
                self._pending_config = None
            info = workflow.info()
            if info.is_continue_as_new_suggested() or info.get_current_history_length() >= (
                input.continue_as_new_after_events
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    WatchdogInput(
                        config=self.core.config,
                        state=self.core.state,
                        notifications=list(self._sending.values()),
                        unrecorded=[c for batch in self._recording.values() for c in batch],
                        runs=self._runs + 1,
                        continue_as_new_after_events=input.continue_as_new_after_events,
                    ),
                    memo=memo_for(config_hash(self.core.config)),
                )

    def _apply_config(self, config: WatchdogConfig) -> None:
        if config_hash(config) != config_hash(self.core.config):
            self.core.reconfigure(config)
        if workflow.memo_value(MEMO_KEY, {}) != memo_for(config_hash(self.core.config))[MEMO_KEY]:
            workflow.upsert_memo(memo_for(config_hash(self.core.config)))

    async def _look(self) -> None:
        cfg = self.core.config
        try:
            obs = await workflow.execute_local_activity_method(
                WatchdogActivities.inspect,
                InspectInput(workflow_ids=[w.workflow_id for w in cfg.workflows], heartbeat=cfg.heartbeat is not None),
                **(WATCHDOG_INSPECT | {"summary": "look"}),
            )
        except FailureError as exc:  # a failed local activity raises its own error, not ActivityError
            workflow.logger.warning("watchdog could not look: %s", exc.cause or exc)
            return
        if obs.errors:
            workflow.logger.warning("watchdog could not read everything: %s", "; ".join(obs.errors))
        fx = self.core.observe(obs, workflow.now())
        if fx.changes:
            self._start_record(fx.changes)
        for req in fx.notifications:
            self._start_send(req)

    # Background work, carried across continue-as-new while unfinished (idempotent by key).

    def _background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_record(self, changes: list[IncidentChange]) -> None:
        self._batches += 1
        self._recording[self._batches] = changes
        self._background(self._record(self._batches, changes))

    def _start_send(self, req: NotificationRequest) -> None:
        self._sending[req.idempotency_key] = req
        self._background(self._send(req))

    async def _record(self, batch: int, changes: list[IncidentChange]) -> None:
        try:
            await workflow.execute_activity_method(
                WatchdogActivities.record,
                RecordIncidentsInput(changes=changes),
                **(WATCHDOG_RECORD | {"summary": "record incidents"}),
            )
        except ActivityError as exc:
            workflow.logger.warning("incidents not recorded: %s", exc.cause or exc)
        finally:
            self._recording.pop(batch, None)

    async def _send(self, req: NotificationRequest) -> None:
        try:
            await send_notification(req, WATCHDOG_NOTIFICATION)
        finally:
            self._sending.pop(req.idempotency_key, None)

    @workflow.signal(name=CONFIGURE_SIGNAL)
    def configure(self, config: WatchdogConfig) -> None:
        """A new watch list from repo-spec (sent by the reconciler when its hash differs)."""
        self._pending_config = config

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> WatchdogStatus:
        st = self.core.state
        return WatchdogStatus(
            checks=st.checks,
            last_check_at=st.last_check_at,
            open=list(st.open),
            workflows=dict(st.last_statuses),
            last_heartbeat_ok_at=st.last_heartbeat_ok_at,
            runs=self._runs,
        )
