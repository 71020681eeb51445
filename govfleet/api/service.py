"""The status service behind `GET /api/v1/governance/status` (docs/status.md).

`StatusService` answers `governance.status.v1`: it reads the status workflow's read model
(query `snapshot`), caches it for a short TTL (then serves it while one background refresh
runs; concurrent refreshes share one query), and computes
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
from datetime import UTC, datetime, timedelta

import structlog
from temporalio.client import Client

from govfleet.contracts.status import SNAPSHOT_QUERY, STATUS_WORKFLOW_ID, SnapshotQueryResult, StatusState, StatusUpdate
from govfleet.db import DbPool
from govfleet.domain.status import GovernanceStatusV1, build_status, schedule_entries
from govfleet.settings import Config
from govfleet.status_client import tell_status
from govfleet.store import status as status_store

log = structlog.get_logger("govfleet.api")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        pool: DbPool | None,
        *,
        clock: Clock = utc_now,
        cache_ttl: float = 2.0,
        max_stale: float = 30.0,
        query_timeout: float = 3.0,
        restart_interval: float = 30.0,
    ):
        self.config = config
        self.client = client
        self.pool = pool
        self.clock = clock
        self.cache_ttl = cache_ttl
        self.max_stale = max(max_stale, cache_ttl)
        self._background: asyncio.Task | None = None
        self.query_timeout = query_timeout
        self.restart_interval = restart_interval
        self._cached: Snapshot | None = None
        self._inflight: asyncio.Future | None = None
        self._last_restart = float("-inf")
        self._rendered: tuple[Snapshot, datetime, datetime | None, bytes] | None = None

    async def snapshot(self) -> Snapshot:
        """The read model: fresh within `cache_ttl`; after that the cached one is still served
        (up to `max_stale`) while one background refresh runs, so no request waits for it."""
        cached = self._cached
        if cached is not None and self.cache_ttl > 0:
            age = time.monotonic() - cached.taken_at
            if age < self.cache_ttl:
                return cached
            if age < self.max_stale:
                if self._background is None or self._background.done():
                    self._background = asyncio.create_task(self._refresh_quietly())
                return cached
        return await self._fresh()

    async def _refresh_quietly(self) -> None:
        try:
            await self._fresh()
        except Exception as exc:
            log.warning("status refresh failed; serving the previous read model", error=str(exc)[:200])

    async def _fresh(self) -> Snapshot:
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
                    SNAPSHOT_QUERY,
                    result_type=SnapshotQueryResult,
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
            credits = await status_store.read_system_credits(conn)
            runs = await status_store.read_recent_runs(conn)
            heartbeat = await status_store.read_latest_heartbeat(conn)
        governance = self.config.spec.governance
        hb = governance.heartbeat
        return StatusState(
            system_credits=credits,
            credits_known=True,
            schedules=schedule_entries(governance.schedules),
            heartbeat_interval_seconds=hb.interval_minutes * 60,
            heartbeat_grace_seconds=hb.grace_seconds,
            heartbeat=heartbeat,
            recent_runs=runs,
            rebuilt_at=self.clock(),
        )

    async def status_json(self) -> tuple[bytes, str]:
        """The contract as JSON bytes. The rendering is reused while it is provably the same:
        same read model, and the clock still before the soonest upcoming run (before it, no
        schedule's next fire time can change); otherwise it is computed again."""
        snap = await self.snapshot()
        now = self.clock()
        r = self._rendered
        if r is not None and r[0] is snap and r[1] <= now and (r[2] is None or now < r[2]):
            return r[3], snap.source
        s = snap.state
        status = build_status(
            system_credits=s.system_credits, schedules=s.schedules, recent_runs=s.recent_runs, now=now
        )
        body = status.model_dump_json().encode()
        until = status.upcomingRuns[0].nextRunAt if status.upcomingRuns else None
        self._rendered = (snap, now, until, body)
        return body, snap.source

    async def status(self) -> tuple[GovernanceStatusV1, str]:
        snap = await self.snapshot()
        s = snap.state
        # Computed now, from this request's clock: never a cached fire time.
        status = build_status(
            system_credits=s.system_credits, schedules=s.schedules, recent_runs=s.recent_runs, now=self.clock()
        )
        return status, snap.source
