"""`governance-status`: the thin, long-lived read model behind the status surface.

- Query `status` answers exactly `governance.status.v1` (seed 000). Query `snapshot` gives
  the whole read model (what the HTTP API uses; it computes the upcoming runs itself from
  the request's wall clock).
- Signal `update` (`govfleet.contracts.StatusUpdate`, sent with signal-with-start by every
  area) keeps it current: balances, runs, heartbeats, "schedules changed".
- Rebuilt from the database and the repo-spec on start, on every continue-as-new, after a
  burst of updates (debounced, because signals may arrive out of order) and every
  `refresh_seconds` (a lost update is repaired there, never a lost fact).

Upcoming runs are never in the past when answered: the workflow wakes at every fire time
of every schedule, so `workflow.now()` (the time a query sees) never lags behind a passed
fire time, and a caller may pass its own clock (`StatusQueryInput.at`), which wins when
later. The HTTP API goes further and computes them from its own clock per request.

History stays bounded: the workflow continues as new when the server suggests it or after
`max_history_events`, once running handlers have finished, carrying its whole state.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.status_reads import (
        READ_SCHEDULES_ACTIVITY,
        READ_STATUS_DB_ACTIVITY,
        HeartbeatRecord,
        ReadSchedulesInput,
        ReadSchedulesResult,
        ReadStatusDbInput,
        ReadStatusDbResult,
    )
    from govfleet.contracts import STATUS_WORKFLOW, StatusUpdate
    from govfleet.domain.status import (
        GovernanceStatusV1,
        RunRecord,
        ScheduleEntry,
        StatusError,
        build_status,
        credits_string,
        merge_recent_runs,
        next_wake,
    )

STATUS_QUERY = "status"
SNAPSHOT_QUERY = "snapshot"
UPDATE_SIGNAL = "update"


class StatusState(BaseModel):
    """Everything the status surface shows; carried across continue-as-new."""

    system_credits: str = "0"
    credits_known: bool = False  # False until the first database read or ledger update
    schedules: list[ScheduleEntry] = Field(default_factory=list)
    heartbeat_interval_seconds: int = 300
    heartbeat_grace_seconds: int = 60
    heartbeat_paused: bool = False
    heartbeat: HeartbeatRecord | None = None
    recent_runs: list[RunRecord] = Field(default_factory=list)
    rebuilt_at: datetime | None = None  # last successful database read
    schedules_read_at: datetime | None = None
    updated_at: datetime | None = None  # last change of any kind
    spec_error: str | None = None
    read_error: str | None = None  # the last rebuild failed (the previous state is kept)
    updates_received: int = 0


class StatusWorkflowInput(BaseModel):
    """All fields default: senders start this workflow with `{}` (signal-with-start)."""

    state: StatusState | None = None
    refresh_seconds: int = Field(900, ge=1)
    debounce_seconds: float = Field(2.0, ge=0)
    max_history_events: int = Field(3000, ge=10)
    check_temporal_schedules: bool = True
    generation: int = 0  # how many times this read model has continued as new


class StatusQueryInput(BaseModel):
    at: datetime | None = None  # the caller's clock: upcoming runs are after max(at, workflow time)


class SnapshotQueryInput(BaseModel):
    pass


class SnapshotQueryResult(BaseModel):
    state: StatusState
    workflow_time: datetime
    generation: int


_ACTIVITY_OPTIONS = dict(
    start_to_close_timeout=timedelta(seconds=20),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                             maximum_attempts=3),
)


@workflow.defn(name=STATUS_WORKFLOW)
class GovernanceStatusWorkflow:
    @workflow.init
    def __init__(self, input: StatusWorkflowInput) -> None:
        self._input = input
        self._state = input.state.model_copy(deep=True) if input.state else StatusState()
        self._dirty: set[str] = set()

    @workflow.run
    async def run(self, input: StatusWorkflowInput) -> None:
        await self._rebuild(db=True, schedules=True)
        last_refresh = workflow.now()
        refresh = timedelta(seconds=input.refresh_seconds)
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
            timeout = max(wake_at - now, timedelta(milliseconds=100))
            try:
                await workflow.wait_condition(lambda: bool(self._dirty), timeout=timeout)
            except asyncio.TimeoutError:
                pass
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
            # Otherwise a fire time passed: this task alone moved workflow time past it.

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() >= self._input.max_history_events
        )

    async def _rebuild(self, *, db: bool, schedules: bool) -> None:
        errors = []
        if schedules:
            try:
                res: ReadSchedulesResult = await workflow.execute_activity(
                    READ_SCHEDULES_ACTIVITY,
                    ReadSchedulesInput(check_temporal=self._input.check_temporal_schedules),
                    result_type=ReadSchedulesResult,
                    **_ACTIVITY_OPTIONS,
                )
                s = self._state
                s.schedules = res.schedules
                s.heartbeat_interval_seconds = res.heartbeat_interval_seconds
                s.heartbeat_grace_seconds = res.heartbeat_grace_seconds
                s.heartbeat_paused = res.heartbeat_paused
                s.spec_error = res.spec_error
                s.schedules_read_at = workflow.now()
            except ActivityError as err:
                errors.append(f"schedules: {_cause(err)}")
        if db:
            try:
                got: ReadStatusDbResult = await workflow.execute_activity(
                    READ_STATUS_DB_ACTIVITY,
                    ReadStatusDbInput(),
                    result_type=ReadStatusDbResult,
                    **_ACTIVITY_OPTIONS,
                )
                s = self._state
                s.system_credits = got.system_credits
                s.credits_known = True
                # The database is authoritative; runs signalled after the read was taken
                # are kept by the merge (newer last_activity wins).
                s.recent_runs = merge_recent_runs(got.recent_runs, [r for r in s.recent_runs
                                                                     if r.last_activity > got.read_at])
                if got.heartbeat is not None and (s.heartbeat is None or got.heartbeat.time >= s.heartbeat.time):
                    s.heartbeat = got.heartbeat
                s.rebuilt_at = workflow.now()
            except ActivityError as err:
                errors.append(f"database: {_cause(err)}")
        self._state.read_error = "; ".join(errors) or None
        if errors:
            workflow.logger.warning("status rebuild failed, keeping the previous state: %s", self._state.read_error)
        self._state.updated_at = workflow.now()

    # --- handlers ------------------------------------------------------------------------

    @workflow.signal(name=UPDATE_SIGNAL)
    def update(self, update: StatusUpdate) -> None:
        """Never raises: a bad field is logged and ignored (a raising signal handler would
        fail the workflow task over and over)."""
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
                    id=update.run.id, title=update.run.title,
                    started_at=update.run.started_at, last_activity=update.run.last_activity,
                )
                s.recent_runs = merge_recent_runs(s.recent_runs, [run])
            except ValueError as err:
                workflow.logger.warning("ignored run from %r: %s", update.source, err)
        if update.schedules_changed:
            self._dirty.add("schedules")
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
        return build_status(system_credits=s.system_credits, schedules=s.schedules,
                            recent_runs=s.recent_runs, now=now)

    @workflow.query(name=SNAPSHOT_QUERY)
    def snapshot(self, input: SnapshotQueryInput | None = None) -> SnapshotQueryResult:
        return SnapshotQueryResult(state=self._state, workflow_time=workflow.now(), generation=self._input.generation)


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err) or type(err).__name__


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
    return HeartbeatRecord(id=str(data.get("id", "")), time=time, status=status,
                           type=str(data.get("type", "governance.heartbeat")), data=data)
