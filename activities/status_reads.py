"""Activities that rebuild the status read model (on start, on continue-as-new, on a
refresh): the database reads (govfleet/store/status.py) and the schedules as Temporal has them
(schedules/observed.py: next action times, pause state; the repo-spec on disk says which ids to
look at and the heartbeat settings)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity

from govfleet.contracts.status import (
    READ_SCHEDULES_ACTIVITY,
    READ_STATUS_DB_ACTIVITY,
    STATUS_CHANGED_ACTIVITY,
    ReadSchedulesInput,
    ReadSchedulesResult,
    ReadStatusDbInput,
    ReadStatusDbResult,
)
from govfleet.domain.status import schedule_entries
from govfleet.repo_spec import RepoSpecError, load_repo_spec
from govfleet.store import status as status_store
from schedules.observed import observe_schedules
from workers.resources import Resources


class StatusReadActivities:
    def __init__(self, resources: Resources):
        self._resources = resources

    @activity.defn(name=READ_STATUS_DB_ACTIVITY)
    async def read_status_db(self, input: ReadStatusDbInput) -> ReadStatusDbResult:
        async with self._resources.pool.connection() as conn:
            credits = await status_store.read_system_credits(conn)
            runs = await status_store.read_recent_runs(conn, input.recent_limit)
            heartbeat = await status_store.read_latest_heartbeat(conn)
        return ReadStatusDbResult(
            system_credits=credits, recent_runs=runs, heartbeat=heartbeat, read_at=datetime.now(UTC)
        )

    @activity.defn(name=READ_SCHEDULES_ACTIVITY)
    async def read_schedules(self, input: ReadSchedulesInput) -> ReadSchedulesResult:
        config = self._resources.config
        spec_error = None
        try:
            # Re-read the file: the reconciler applies edits without restarting workers.
            spec = load_repo_spec(Path(config.settings.REPO_SPEC_PATH))
        except RepoSpecError as err:
            spec, spec_error = config.spec, str(err)
            activity.logger.warning("repo-spec unreadable, using the one loaded at start: %s", err)
        heartbeat_paused = False
        not_ours: list[str] = []
        if input.check_temporal:
            seen = await observe_schedules(self._resources.client, spec, config.settings.TEMPORAL_TASK_QUEUE)
            schedules, heartbeat_paused, not_ours = seen.charters, seen.heartbeat_paused, seen.not_ours
        else:  # the repo-spec alone (tests of the read model without schedules): cron arithmetic, marked
            schedules = schedule_entries(spec.listed_schedules())
        hb = spec.governance.heartbeat
        return ReadSchedulesResult(
            schedules=schedules,
            heartbeat_interval_seconds=hb.interval_minutes * 60,
            heartbeat_grace_seconds=hb.grace_seconds,
            heartbeat_paused=heartbeat_paused,
            spec_error=spec_error,
            not_ours=not_ours,
        )

    @activity.defn(name=STATUS_CHANGED_ACTIVITY)
    async def status_changed(self) -> None:
        """Tell every API process that the read model changed (it validates its cache against
        this version before answering, docs/status.md "Read your writes")."""
        async with self._resources.pool.connection() as conn:
            await status_store.bump_status_version(conn)
