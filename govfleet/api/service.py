"""The status service behind `GET /api/v1/governance/status` (docs/status.md).

`StatusService` answers `governance.status.v1` and its extended view. The read model is the
status workflow's state (query `snapshot`: Temporal's schedules, their next action times and
pause states) with the database's facts read directly (the system tenant's balance, its recent
runs with their outcomes, the latest heartbeat).

Read your writes: before answering from its cached copy the service reads the database's status
version (migration 0070), which every committed change the status shows bumps in its own
transaction (and the status workflow bumps after it read Temporal's schedules again). The copy is
used only while the version is unchanged; one version read serves every request that arrived
before it started (`_VersionGate`), so a request never rides on a read that began before it did.
Upcoming runs are computed from the request's own clock every time, so they are never in the
past. When the workflow does not answer (no worker, Temporal down) the schedules come from the
repo-spec's crons (marked `cron-fallback`), and the workflow is started again (signal-with-start),
at most once per `restart_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from temporalio.client import Client

from govfleet import db
from govfleet.contracts.status import SNAPSHOT_QUERY, STATUS_WORKFLOW_ID, SnapshotQueryResult, StatusState, StatusUpdate
from govfleet.db import DbConnection, DbPool
from govfleet.domain.status import (
    GovernanceStatusExtended,
    GovernanceStatusV1,
    HeartbeatRecord,
    RunRecord,
    build_extended,
    build_status,
    schedule_entries,
)
from govfleet.settings import Config
from govfleet.status_client import tell_status
from govfleet.store import status as status_store

log = structlog.get_logger("govfleet.api")

Clock = Callable[[], datetime]
FALLBACK_KEEP_SECONDS = 5.0  # a copy read without the workflow is kept this long at most


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Snapshot:
    state: StatusState
    source: str  # "workflow" | "database"
    taken_at: float  # monotonic
    version: int | None = None  # the status version it is current for (None: not known)


class _VersionGate:
    """Single-flight reads of the status version, each started after every caller waiting for it
    arrived: callers that come while a read is running wait for the next one."""

    def __init__(self, read: Callable[[], Awaitable[int]]):
        self._read = read
        self._next: asyncio.Future[int] | None = None
        self._runner: asyncio.Task | None = None

    async def current(self) -> int:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiter = self._next
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await asyncio.shield(waiter)

    async def _run(self) -> None:
        while self._next is not None:
            waiter, self._next = self._next, None
            try:
                waiter.set_result(await self._read())
            except Exception as exc:
                waiter.set_exception(exc)
                waiter.exception()  # retrieved: callers get it, no "never retrieved" warning


class StatusService:
    def __init__(
        self,
        config: Config,
        client: Client | None,
        pool: DbPool | None,
        *,
        clock: Clock = utc_now,
        cache_ttl: float = 30.0,
        query_timeout: float = 3.0,
        restart_interval: float = 30.0,
    ):
        self.config = config
        self.client = client
        self.pool = pool
        self.clock = clock
        # How long a copy whose version did not change is kept before the workflow is asked again
        # anyway (a change nobody bumps the version for, e.g. a pause in the Temporal UI before
        # the workflow's next read); 0: no copy, every request reads everything.
        self.cache_ttl = cache_ttl
        self.query_timeout = query_timeout
        self.restart_interval = restart_interval
        self._cached: Snapshot | None = None
        self._inflight: tuple[int | None, asyncio.Future] | None = None
        self._last_restart = float("-inf")
        self._rendered: tuple[Snapshot, datetime, datetime | None, bytes] | None = None
        self._version_conn: DbConnection | None = None
        self._versions = _VersionGate(self._read_version)

    async def _read_version(self) -> int:
        """On a connection of its own (autocommit: one round trip, no pool checkout); a broken
        one is dropped and the next read connects again."""
        if self.pool is None:
            raise RuntimeError("no database configured")
        conn = self._version_conn
        if conn is None or conn.closed:
            conninfo = self.pool.conninfo
            if not isinstance(conninfo, str):
                raise RuntimeError("the pool's connection string is computed; cannot open the version connection")
            conn = self._version_conn = await db.connect_autocommit(conninfo, self.query_timeout)
        try:
            return await asyncio.wait_for(status_store.read_status_version(conn), self.query_timeout)
        except BaseException:
            self._version_conn = None
            with contextlib.suppress(Exception):
                await conn.close()
            raise

    async def close(self) -> None:
        conn, self._version_conn = self._version_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def snapshot(self) -> Snapshot:
        """The read model, current for every change committed before this call."""
        try:
            version: int | None = await self._versions.current()
        except Exception as exc:  # the database does not answer: nothing to validate a copy with
            log.warning("status version unreadable; reading everything", error=str(exc)[:200])
            version = None
        if self.cache_ttl <= 0:  # no copy kept: read everything (concurrent reads of one version shared)
            return await self._fresh(version)
        cached = self._cached
        if cached is not None and version is not None and cached.version == version:
            # A fallback copy is kept only briefly: the workflow is asked again soon.
            keep = self.cache_ttl if cached.source == "workflow" else min(self.cache_ttl, FALLBACK_KEEP_SECONDS)
            if time.monotonic() - cached.taken_at < keep:
                return cached
        return await self._fresh(version)

    async def _fresh(self, version: int | None) -> Snapshot:
        """A new snapshot, shared with a concurrent one taken for this version or a later one."""
        running = self._inflight
        if running is not None and version is not None and running[0] is not None and running[0] >= version:
            return await asyncio.shield(running[1])
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._inflight = (version, future)
        try:
            snap = await self._take(version)
            current = self._cached
            if snap.version is not None and (current is None or (current.version or -1) <= snap.version):
                self._cached = snap
            future.set_result(snap)
            return snap
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters get it, no "never retrieved" warning
            raise
        finally:
            if self._inflight is not None and self._inflight[1] is future:
                self._inflight = None

    async def _take(self, version: int | None) -> Snapshot:
        facts = None
        # No version: the database did not answer a moment ago; the workflow's own copy of the
        # facts is used rather than waiting for the database again.
        if self.pool is not None and version is not None:
            try:
                facts = await self._database_facts()
            except Exception as exc:
                log.warning("status facts unreadable from the database", error=str(exc)[:200])
        if self.client is not None:
            try:
                handle = self.client.get_workflow_handle(STATUS_WORKFLOW_ID)
                result = await handle.query(
                    SNAPSHOT_QUERY,
                    result_type=SnapshotQueryResult,
                    rpc_timeout=timedelta(seconds=self.query_timeout),
                )
                if result.state.credits_known or facts is not None:
                    state = result.state
                    if facts is not None:
                        state = _with_facts(state, *facts)
                    return Snapshot(state, "workflow", time.monotonic(), version if facts is not None else None)
            except Exception as exc:  # not started, no worker, Temporal unreachable
                log.warning("status workflow did not answer; schedules from the repo-spec", error=str(exc)[:200])
                await self._restart_workflow()
        if facts is None and self.pool is not None and version is None:
            facts = await self._database_facts()  # the workflow did not answer either: one more try
        if facts is None:
            raise RuntimeError("neither the status workflow nor the database answered")
        return Snapshot(self._from_spec(*facts), "database", time.monotonic(), version)

    async def _database_facts(self) -> tuple[str, list[RunRecord], HeartbeatRecord | None]:
        assert self.pool is not None
        async with self.pool.connection(timeout=self.query_timeout) as conn:
            credits = await status_store.read_system_credits(conn)
            runs = await status_store.read_recent_runs(conn)
            heartbeat = await status_store.read_latest_heartbeat(conn)
        return credits, runs, heartbeat

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

    def _from_spec(self, credits: str, runs: list[RunRecord], heartbeat: HeartbeatRecord | None) -> StatusState:
        """Temporal cannot be asked: the repo-spec's schedules, their times from the cron
        arithmetic (marked `cron-fallback`), no pause state."""
        governance = self.config.spec.governance
        hb = governance.heartbeat
        return StatusState(
            system_credits=credits,
            credits_known=True,
            schedules=schedule_entries(self.config.spec.listed_schedules()),
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

    async def extended(self) -> tuple[GovernanceStatusExtended, str]:
        snap = await self.snapshot()
        s = snap.state
        return (
            build_extended(
                system_credits=s.system_credits, schedules=s.schedules, recent_runs=s.recent_runs, now=self.clock()
            ),
            snap.source,
        )


def _with_facts(
    state: StatusState, credits: str, runs: list[RunRecord], heartbeat: HeartbeatRecord | None
) -> StatusState:
    """The workflow's state with the database's facts, which are at least as new."""
    newer = state.heartbeat
    if heartbeat is not None and (newer is None or heartbeat.time >= newer.time):
        newer = heartbeat
    return state.model_copy(
        update={"system_credits": credits, "credits_known": True, "recent_runs": runs, "heartbeat": newer}
    )
