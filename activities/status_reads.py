"""Activities that rebuild the status read model (on start, on continue-as-new, on a
refresh): the database reads (govfleet/store/status.py) and the schedules (the repo-spec on
disk, and each Temporal Schedule's pause state)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from govfleet.contracts.governance_run import schedule_id
from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID
from govfleet.contracts.status import (
    READ_SCHEDULES_ACTIVITY,
    READ_STATUS_DB_ACTIVITY,
    ReadSchedulesInput,
    ReadSchedulesResult,
    ReadStatusDbInput,
    ReadStatusDbResult,
)
from govfleet.domain.status import schedule_entries
from govfleet.repo_spec import RepoSpecError, load_repo_spec
from govfleet.store import status as status_store
from workers.resources import Resources


async def schedule_paused(client: Client, sid: str) -> bool | None:
    """Whether the Temporal Schedule is paused by an operator; None when it does not exist."""
    try:
        desc = await client.get_schedule_handle(sid).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return bool(desc.schedule.state.paused)


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
        schedules = schedule_entries(spec.governance.schedules)
        heartbeat_paused = False
        if input.check_temporal:
            client = self._resources.client
            checked = []
            for s in schedules:
                paused = await schedule_paused(client, schedule_id(s.charter))
                checked.append(s.model_copy(update={"paused": bool(paused)}))
            schedules = checked
            heartbeat_paused = bool(await schedule_paused(client, HEARTBEAT_SCHEDULE_ID))
        hb = spec.governance.heartbeat
        return ReadSchedulesResult(
            schedules=schedules,
            heartbeat_interval_seconds=hb.interval_minutes * 60,
            heartbeat_grace_seconds=hb.grace_seconds,
            heartbeat_paused=heartbeat_paused,
            spec_error=spec_error,
        )
