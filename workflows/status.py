"""Workflow `GovernanceStatus`: the thin, long-lived read model behind the status surface
(names and payloads: govfleet/contracts/status.py; the contract it answers: docs/status.md).

Rebuilt from the database and the repo-spec on start, on every continue-as-new, after a burst
of `update` signals (debounced, because signals may arrive out of order) and every
`refresh_seconds` (a lost update is repaired there, never a lost fact).

Upcoming runs are never in the past when answered: the workflow wakes at every fire time of
every schedule, so `workflow.now()` (the time a query sees) never lags behind a passed fire
time, and a caller may pass its own clock (`StatusQueryInput.at`), which wins when later.

Upcoming runs come from Temporal's own schedules (their next action times, read by the
`status_read_schedules` activity); the workflow reads them again every
`schedules_refresh_seconds` (so a pause made in the Temporal UI shows within about a minute) and
when fewer than `TIMES_LOW` listed times are left for a schedule, and after each read that changed them it bumps
the database's status version, so API processes drop their cached copy (docs/status.md). Update
`refresh` is the synchronous way in: the reconciler waits for it, so a status read after
`govfleet reconcile` shows the new schedules.

History stays bounded: the workflow continues as new when the server suggests it or after
`max_history_events`, once running handlers have finished, carrying its whole state.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.status_reads import StatusReadActivities
    from govfleet.contracts.status import (
        REFRESH_UPDATE,
        SNAPSHOT_QUERY,
        STATUS_QUERY,
        STATUS_WORKFLOW,
        UPDATE_SIGNAL,
        HeartbeatRecord,
        ReadSchedulesInput,
        ReadStatusDbInput,
        SnapshotQueryInput,
        SnapshotQueryResult,
        StatusQueryInput,
        StatusState,
        StatusUpdate,
        StatusWorkflowInput,
    )
    from govfleet.domain.status import (
        TEMPORAL,
        GovernanceStatusV1,
        RunRecord,
        StatusError,
        build_status,
        credits_string,
        merge_recent_runs,
        next_wake,
        times_left,
    )
    from workflows.activity_options import STATUS_READ
    from workflows.failures import cause_message


# Schedules from Temporal's next action times (read again every `schedules_refresh_seconds` and
# when they run low), the status
# version bumped after a schedules read that changed them, the database read again after a
# governance run's update (its charge moved the balance). docs/patches.md.
SCHEDULES_FROM_TEMPORAL_PATCH = "status-schedules-from-temporal"
TIMES_LOW = 3  # read Temporal's schedules again when fewer listed fire times are left


@workflow.defn(name=STATUS_WORKFLOW)
class GovernanceStatusWorkflow:
    @workflow.init
    def __init__(self, input: StatusWorkflowInput) -> None:
        self._input = input
        self._state = input.state.model_copy(deep=True) if input.state else StatusState()
        self._dirty: set[str] = set()
        self._schedule_reads = 0  # schedules reads started in this run
        self._schedules_applied = 0  # the newest read whose result is in the state
        self._schedules_tried_at: datetime | None = None  # the last schedules read ended (success or not)

    @workflow.run
    async def run(self, input: StatusWorkflowInput) -> None:
        await self._rebuild(db=True, schedules=True)
        last_refresh = workflow.now()
        refresh = timedelta(seconds=input.refresh_seconds)
        schedules_refresh = timedelta(seconds=input.schedules_refresh_seconds)
        while True:
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    input.model_copy(update={"state": self._state, "generation": input.generation + 1})
                )
            now = workflow.now()
            wake_at = last_refresh + refresh
            try:
                fire = next_wake(self._state.schedules, now)
            except StatusError:
                fire = None
            if fire is not None and fire < wake_at:
                wake_at = fire
            # A pause or unpause made in Temporal (UI, `temporal schedule toggle`) tells us nothing:
            # only a new describe() sees it. Runs that started before the patch keep their timers.
            reread_at = self._schedules_reread_at(schedules_refresh)
            if reread_at is not None and reread_at < wake_at:
                wake_at = reread_at
            timeout = max(wake_at - now, timedelta(milliseconds=100))
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: bool(self._dirty), timeout=timeout)
            if self._dirty:
                # Debounce a burst of updates into one authoritative read.
                if input.debounce_seconds:
                    await workflow.sleep(input.debounce_seconds)
                dirty, self._dirty = self._dirty, set()
                await self._rebuild(db="db" in dirty, schedules="schedules" in dirty)
                if "db" in dirty and "schedules" in dirty:
                    last_refresh = workflow.now()
            elif workflow.now() - last_refresh >= refresh:
                await self._rebuild(db=True, schedules=True)
                last_refresh = workflow.now()
            elif self._schedules_due(schedules_refresh) or (
                self._times_running_low() and workflow.patched(SCHEDULES_FROM_TEMPORAL_PATCH)
            ):
                await self._rebuild(db=False, schedules=True)
            # Otherwise a fire time passed: this task alone moved workflow time past it.

    def _schedules_reread_at(self, every: timedelta) -> datetime | None:
        """When the schedules are due to be described again (None: not on this path)."""
        if self._schedules_tried_at is None or not workflow.patched(SCHEDULES_FROM_TEMPORAL_PATCH):
            return None
        return self._schedules_tried_at + every

    def _schedules_due(self, every: timedelta) -> bool:
        # Asked again after the wait: update `refresh` may have read them meanwhile.
        reread_at = self._schedules_reread_at(every)
        return reread_at is not None and workflow.now() >= reread_at

    def _times_running_low(self) -> bool:
        now = workflow.now()
        return any(
            s.source == TEMPORAL and s.next_times and times_left(s, now) < TIMES_LOW for s in self._state.schedules
        )

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() >= self._input.max_history_events
        )

    async def _rebuild(self, *, db: bool, schedules: bool) -> None:
        errors = []
        if schedules:
            # Reads may overlap (the main loop's and update `refresh`'s): an older read that
            # finishes later must not overwrite a newer one.
            self._schedule_reads += 1
            read = self._schedule_reads
            try:
                res = await workflow.execute_activity_method(
                    StatusReadActivities.read_schedules,
                    ReadSchedulesInput(check_temporal=self._input.check_temporal_schedules),
                    **STATUS_READ,
                )
                if read < self._schedules_applied:
                    res = None
            except ActivityError as err:
                errors.append(f"schedules: {cause_message(err)}")
                res = None
            if res is not None:
                self._schedules_applied = read
                s = self._state
                changed = (res.schedules, res.heartbeat_paused, res.not_ours) != (
                    s.schedules,
                    s.heartbeat_paused,
                    s.schedules_not_ours,
                )
                s.schedules = res.schedules
                s.heartbeat_interval_seconds = res.heartbeat_interval_seconds
                s.heartbeat_grace_seconds = res.heartbeat_grace_seconds
                s.heartbeat_paused = res.heartbeat_paused
                s.spec_error = res.spec_error
                s.schedules_not_ours = res.not_ours
                s.schedules_read_at = workflow.now()
                if changed and workflow.patched(SCHEDULES_FROM_TEMPORAL_PATCH):
                    # After the state changed: an API that sees the new version queries this state.
                    try:
                        await workflow.execute_activity_method(StatusReadActivities.status_changed, **STATUS_READ)
                    except ActivityError as err:
                        errors.append(f"status version: {cause_message(err)}")
            # From the end of the read, failed or not: Temporal unreachable is asked again a
            # period later, not in a loop.
            self._schedules_tried_at = workflow.now()
        if db:
            try:
                got = await workflow.execute_activity_method(
                    StatusReadActivities.read_status_db,
                    ReadStatusDbInput(),
                    **STATUS_READ,
                )
                s = self._state
                s.system_credits = got.system_credits
                s.credits_known = True
                # The database is authoritative; runs signalled after the read was taken
                # are kept by the merge (newer last_activity wins).
                s.recent_runs = merge_recent_runs(
                    got.recent_runs, [r for r in s.recent_runs if r.last_activity > got.read_at]
                )
                if got.heartbeat is not None and (s.heartbeat is None or got.heartbeat.time >= s.heartbeat.time):
                    s.heartbeat = got.heartbeat
                s.rebuilt_at = workflow.now()
            except ActivityError as err:
                errors.append(f"database: {cause_message(err)}")
        self._state.read_error = "; ".join(errors) or None
        if errors:
            workflow.logger.warning("status rebuild failed, keeping the previous state: %s", self._state.read_error)
        self._state.updated_at = workflow.now()

    # --- handlers ------------------------------------------------------------------------

    @workflow.signal(name=UPDATE_SIGNAL)
    def update(self, update: StatusUpdate) -> None:
        """Never raises: a bad field is logged and ignored (a raising signal handler would
        fail the workflow task over and over)."""
        self._apply(update)
        if update.schedules_changed:
            self._dirty.add("schedules")

    @workflow.update(name=REFRESH_UPDATE)
    async def refresh(self, update: StatusUpdate) -> None:
        """Like signal `update`, but returns only once the change is in the read model: schedules
        (and with `system_credits`, the balance) read again now, not debounced, and the status
        version bumped when they changed. The reconciler waits for it."""
        self._apply(update)
        await self._rebuild(db=update.system_credits is not None, schedules=update.schedules_changed)

    def _apply(self, update: StatusUpdate) -> None:
        s = self._state
        s.updates_received += 1
        if update.system_credits is not None:
            try:
                s.system_credits = credits_string(update.system_credits)
                s.credits_known = True
            except StatusError as err:
                workflow.logger.warning("ignored update from %r: %s", update.source, err)
            # Balance updates may arrive out of order: confirm from the database.
            self._dirty.add("db")
        if update.run is not None:
            try:
                run = RunRecord(
                    id=update.run.id,
                    title=update.run.title,
                    started_at=update.run.started_at,
                    last_activity=update.run.last_activity,
                    status=update.run.status,
                    reason=update.run.reason,
                )
                s.recent_runs = merge_recent_runs(s.recent_runs, [run])
            except ValueError as err:
                workflow.logger.warning("ignored run from %r: %s", update.source, err)
            # A run's charge moved the balance: read it (debounced with the rest of the burst).
            if workflow.patched(SCHEDULES_FROM_TEMPORAL_PATCH):
                self._dirty.add("db")
        if update.heartbeat is not None:
            record = _heartbeat_record(update.heartbeat, workflow.now())
            if record is None:
                workflow.logger.warning("ignored heartbeat from %r: no status", update.source)
            elif s.heartbeat is None or record.time >= s.heartbeat.time:
                s.heartbeat = record
        s.updated_at = workflow.now()

    @workflow.query(name=STATUS_QUERY)
    def status(self, input: StatusQueryInput | None = None) -> GovernanceStatusV1:
        now = workflow.now()
        if input is not None and input.at is not None and input.at > now:
            now = input.at
        s = self._state
        return build_status(system_credits=s.system_credits, schedules=s.schedules, recent_runs=s.recent_runs, now=now)

    @workflow.query(name=SNAPSHOT_QUERY)
    def snapshot(self, input: SnapshotQueryInput | None = None) -> SnapshotQueryResult:
        return SnapshotQueryResult(state=self._state, workflow_time=workflow.now(), generation=self._input.generation)


def _heartbeat_record(data: dict, now: datetime) -> HeartbeatRecord | None:
    status = data.get("status")
    if not isinstance(status, str) or not status:
        return None
    when = data.get("time") or data.get("checked_at")
    try:
        time = datetime.fromisoformat(when.replace("Z", "+00:00")) if isinstance(when, str) else now
        if time.tzinfo is None:
            time = now
    except ValueError:
        time = now
    return HeartbeatRecord(
        id=str(data.get("id", "")),
        time=time,
        status=status,
        type=str(data.get("type", "governance.heartbeat")),
        data=data,
    )
