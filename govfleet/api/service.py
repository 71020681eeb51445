"""The feature services behind the routes (seed 000's `getGovernanceStatus` layer).

`StatusService` answers `governance.status.v1`: it reads the status workflow's read model
(query `snapshot`), caches it for a short TTL with a single request in flight, and computes
the upcoming runs from the request's own wall clock every time, so they are never in the
past when answered, whatever the cache age. When the workflow does not answer (no worker,
Temporal down) it falls back to the same reads from the database and the repo-spec, and
starts the workflow again (signal-with-start), at most once per `restart_interval`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import structlog
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from activities.status_reads import (
    read_latest_heartbeat,
    read_recent_runs,
    read_system_credits,
    schedules_from_spec,
)
from govfleet.contracts import STATUS_WORKFLOW_ID, StatusUpdate
from govfleet.domain.status import GovernanceStatusV1, build_status
from govfleet.settings import Config
from govfleet.status_client import tell_status
from workflows.status import SNAPSHOT_QUERY, SnapshotQueryResult, StatusState

log = structlog.get_logger("govfleet.api")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Snapshot:
    state: StatusState
    source: str  # "workflow" | "database"
    taken_at: float  # monotonic


class StatusService:
    def __init__(
        self,
        config: Config,
        client: Client | None,
        pool: AsyncConnectionPool | None,
        *,
        clock: Clock = utc_now,
        cache_ttl: float = 2.0,
        query_timeout: float = 3.0,
        restart_interval: float = 30.0,
    ):
        self.config = config
        self.client = client
        self.pool = pool
        self.clock = clock
        self.cache_ttl = cache_ttl
        self.query_timeout = query_timeout
        self.restart_interval = restart_interval
        self._cached: Snapshot | None = None
        self._inflight: asyncio.Future | None = None
        self._last_restart = float("-inf")

    async def snapshot(self) -> Snapshot:
        cached = self._cached
        if cached is not None and time.monotonic() - cached.taken_at < self.cache_ttl:
            return cached
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        loop = asyncio.get_running_loop()
        self._inflight = loop.create_future()
        try:
            snap = await self._take()
            self._cached = snap
            self._inflight.set_result(snap)
            return snap
        except BaseException as exc:
            self._inflight.set_exception(exc)
            self._inflight.exception()  # mark retrieved: waiters get it, no "never retrieved" warning
            raise
        finally:
            self._inflight = None

    async def _take(self) -> Snapshot:
        if self.client is not None:
            try:
                handle = self.client.get_workflow_handle(STATUS_WORKFLOW_ID)
                result = await handle.query(
                    SNAPSHOT_QUERY, result_type=SnapshotQueryResult,
                    rpc_timeout=timedelta(seconds=self.query_timeout),
                )
                if result.state.credits_known:
                    return Snapshot(result.state, "workflow", time.monotonic())
            except Exception as exc:  # not started, no worker, Temporal unreachable
                log.warning("status workflow did not answer; reading the database", error=str(exc)[:200])
                await self._restart_workflow()
        return Snapshot(await self._from_database(), "database", time.monotonic())

    async def _restart_workflow(self) -> None:
        now = time.monotonic()
        if self.client is None or now - self._last_restart < self.restart_interval:
            return
        self._last_restart = now
        try:
            await asyncio.wait_for(
                tell_status(self.client, self.config.settings.TEMPORAL_TASK_QUEUE, StatusUpdate(source="api")),
                timeout=self.query_timeout,
            )
        except Exception as exc:
            log.warning("could not start the status workflow", error=str(exc)[:200])

    async def _from_database(self) -> StatusState:
        if self.pool is None:
            raise RuntimeError("the status workflow did not answer and no database is configured")
        async with self.pool.connection() as conn:
            credits = await read_system_credits(conn)
            runs = await read_recent_runs(conn)
            heartbeat = await read_latest_heartbeat(conn)
        hb = self.config.spec.governance.heartbeat
        return StatusState(
            system_credits=credits, credits_known=True, schedules=schedules_from_spec(self.config.spec),
            heartbeat_interval_seconds=hb.interval_minutes * 60, heartbeat_grace_seconds=hb.grace_seconds,
            heartbeat=heartbeat, recent_runs=runs, rebuilt_at=self.clock(),
        )

    async def status(self) -> tuple[GovernanceStatusV1, str]:
        snap = await self.snapshot()
        s = snap.state
        # Computed now, from this request's clock: never a cached fire time.
        status = build_status(
            system_credits=s.system_credits, schedules=s.schedules, recent_runs=s.recent_runs, now=self.clock()
        )
        return status, snap.source
