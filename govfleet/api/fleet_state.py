"""What the fleet must say wherever its status is seen (`/health`, the extended status,
`govfleet status`, `/gov`): whether each guardian can tell anyone (docs/notifications.md, "Never
silent"), the urgent notices still pending, a declared throw-away environment or the demo's
public keys (docs/security.md), and a system tenant that cannot pay its runs.

The channels configured are this process's view (the repo-spec and this process's environment:
give the API the workers' notification variables, as compose does); how each channel fared and
what is pending are the workers' records in the database.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from govfleet.db import DbPool
from govfleet.domain.notification_state import ChannelRecord, NotificationState, PendingNotice, not_funded_warning
from govfleet.notify_channels import scope_states
from govfleet.settings import Config
from govfleet.startup_guard import demo_keys_notice, public_admins_of, throwaway_notice
from govfleet.store import notifications as notification_store
from govfleet.store import policies
from govfleet.store import status as status_store

PENDING_SHOWN = 20  # pending notices listed (all are counted)


@dataclass
class FleetState:
    notifications: list[NotificationState]  # one per scope: each declared guardian (and the `guardian` block)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # notification problems: they make health `degraded`
    throwaway_environment: bool = False
    tool_policy: dict | None = None
    system_credits: int | None = None
    database_read: bool = True  # False: channel records, pending notices and the balance are unknown

    def for_scope(self, scope: str) -> NotificationState | None:
        return next((n for n in self.notifications if n.scope == scope), None)


def run_costs(config: Config) -> list[int]:
    tenant = config.spec.governance.system_tenant
    return [
        tenant.credits_per_run if s.credits_per_run is None else s.credits_per_run
        for s in config.spec.governance.charter_schedules
    ]


async def read_fleet_state(
    config: Config, pool: DbPool | None, *, environ: Mapping[str, str] | None = None, timeout: float = 2.0
) -> FleetState:
    env = os.environ if environ is None else environ
    records: list[ChannelRecord] = []
    pending: list[PendingNotice] = []
    counts: dict[str, int] = {}
    policy: dict | None = None
    credits: int | None = None
    read = pool is not None
    if pool is not None:
        try:
            async with pool.connection(timeout=timeout) as conn:
                records = [ChannelRecord.model_validate(r) for r in await notification_store.channel_states(conn)]
                rows, counts = await notification_store.pending_notices(conn, PENDING_SHOWN)
                pending = [PendingNotice.model_validate(r) for r in rows]
                credits = int(await status_store.read_system_credits(conn))
                policy = await policies.read_tool_policy(conn)
        except Exception:  # the database is down: /health says so on its own
            read = False
    states = scope_states(config, env, records=records, pending=pending, pending_counts=counts if read else None)
    warnings = [w for s in states for w in s.warnings]
    public = public_admins_of(config.spec)
    if config.settings.throwaway_environment:
        warnings.append(throwaway_notice(public))
    elif public:  # only `govfleet up` gets here: every deployment command refuses them
        warnings.append(demo_keys_notice(public))
    if credits is not None:
        unfunded = not_funded_warning(credits, run_costs(config))
        if unfunded:
            warnings.append(unfunded)
    return FleetState(
        notifications=states,
        warnings=warnings,
        problems=[p for s in states for p in s.problems],
        throwaway_environment=config.settings.throwaway_environment,
        tool_policy=policy,
        system_credits=credits,
        database_read=read,
    )


class FleetStateCache:
    """`/health` and the extended status are public reads: the fleet state behind them is read at
    most once per `ttl` seconds whatever the request rate (one read at a time; callers that arrive
    while it runs share it)."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._value: FleetState | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, config: Config, pool: DbPool | None) -> FleetState:
        if self._value is not None and time.monotonic() - self._at < self.ttl:
            return self._value
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.ttl:
                self._value = await read_fleet_state(config, pool)
                self._at = time.monotonic()
            return self._value
