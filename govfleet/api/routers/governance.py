"""Tag `governance`: the system tenant's governance status (`governance.status.v1`, see
docs/status.md), its daily activity, the heartbeat state and the holder-control chart."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from fastapi import APIRouter, Query, Request, Response

from govfleet import db
from govfleet.api import gateway
from govfleet.api.context import READ, SOURCE_HEADER, ApiContext, api_context
from govfleet.api.errors import ApiError, error_responses
from govfleet.api.models import (
    ActivityDay,
    ActivityOut,
    GovernanceStatusExtendedOut,
    GuardianOverviewOut,
    GuardianStatusOut,
    HeartbeatOut,
    HolderControlOut,
    HolderControlPoint,
    NotificationStateOut,
    Thresholds,
    ToolPolicyOut,
)
from govfleet.api.reads import read_database, within_deadline
from govfleet.contracts.guardian import STATUS_QUERY
from govfleet.domain.heartbeat import heartbeat_state
from govfleet.domain.status import GovernanceStatusV1
from govfleet.domain.watchdog import HEARTBEAT_MISSED
from govfleet.store import guardian as guardian_store
from govfleet.store import status as status_store
from govfleet.store import watchdog as watchdog_store

ACTIVITY_CACHE_SECONDS = 60.0  # the daily series scans a month of audit rows: at most once a minute

router = APIRouter(tags=["governance"])


@router.get(
    "/api/v1/governance/status",
    response_model=GovernanceStatusV1,
    dependencies=READ,
    operation_id="governance.status.v1",
    responses=error_responses(401, 503),
    summary="System tenant credits, upcoming runs (computed live) and recent runs",
    description="Exactly the `governance.status.v1` contract. `systemCredits` is a string "
    "(bigint-safe); `upcomingRuns` (at most 3, soonest first) are the next times Temporal fires each "
    "schedule we own that is not paused, after the moment of the answer (cron arithmetic only while Temporal "
    "cannot be asked); `recentRuns` (at most 10) are the system principal's runs, most recent first. A read "
    "shows every change committed before it began. Header "
    f"`{SOURCE_HEADER}` says whether the schedules came from the status workflow or (fallback) the repo-spec.",
)
async def governance_status(request: Request) -> Response:
    ctx = api_context(request)
    body, source = await within_deadline(ctx, "the governance status", ctx.status.status_json())
    # Validated against the contract when it was built (GovernanceStatusV1); sent as is.
    return Response(body, media_type="application/json", headers={SOURCE_HEADER: source, "Cache-Control": "no-store"})


@router.get(
    "/api/v1/governance/status/extended",
    response_model=GovernanceStatusExtendedOut,
    dependencies=READ,
    responses=error_responses(401, 503),
    summary="The status with what the contract leaves out: paused schedules, where times came from, run outcomes",
    description="Every governance schedule we own in Temporal, paused ones included (`paused`, no `nextRunAt`), "
    "soonest first; `source` per schedule and `schedulesSource` overall: `temporal` (Temporal's next action "
    "time) or `cron-fallback` (cron arithmetic while Temporal cannot be asked). `recentRuns` carry their "
    "`outcome` (running, succeeded, failed, refused) and `reason`. Same read model and read-your-writes "
    "guarantee as `/api/v1/governance/status`. Beyond the schedules, the fleet's own state: each declared "
    "guardian (`guardians`: running, its status query, the age of its last check, whether its alerts reach "
    "anyone), the notification state per guardian (`notifications`: channels with their last error, urgent "
    "notices pending), `problems` and `warnings` as `/health` says them (no channel, a failing channel, "
    "notifications off on purpose, a throw-away environment, a system tenant not funded), and the system "
    "tenant's tool allowlist (`toolPolicy`).",
)
async def governance_status_extended(request: Request) -> Response:
    ctx = api_context(request)
    (base, source), fleet, guardians = await asyncio.gather(
        within_deadline(ctx, "the governance status", ctx.status.extended()),
        ctx.fleet.get(ctx.config, ctx.pool),
        guardian_overviews(ctx),
    )
    notifications = {n.scope: NotificationStateOut.model_validate(n.model_dump()) for n in fleet.notifications}
    for g in guardians:
        g.notifications = notifications.get(g.workflow_id)
    out = GovernanceStatusExtendedOut(
        **base.model_dump(),
        guardians=guardians,
        notifications=list(notifications.values()),
        problems=fleet.problems,
        warnings=fleet.warnings,
        throwawayEnvironment=fleet.throwaway_environment,
        toolPolicy=ToolPolicyOut.model_validate(fleet.tool_policy) if fleet.tool_policy else None,
    )
    return Response(
        out.model_dump_json().encode(),
        media_type="application/json",
        headers={SOURCE_HEADER: source, "Cache-Control": "no-store"},
    )


async def guardian_overviews(ctx: ApiContext) -> list[GuardianOverviewOut]:
    """Every declared guardian: running or not, its status query (None when it does not answer)
    and the age of its last check."""
    now = ctx.clock()

    async def one(g) -> GuardianOverviewOut:
        async def status() -> GuardianStatusOut | None:
            try:
                return await gateway.query_guardian(ctx, STATUS_QUERY, GuardianStatusOut, guardian_id=g.workflow_id)
            except ApiError:
                return None

        seen, st = await asyncio.gather(gateway.describe_workflow(ctx, g.workflow_id), status())
        last = st.last_check if st else None
        return GuardianOverviewOut(
            workflow_id=g.workflow_id,
            name=g.name,
            running=seen.running,
            status=st,
            last_check_age_seconds=max(0, int((now - last).total_seconds())) if last else None,
        )

    return list(await asyncio.gather(*(one(g) for g in ctx.config.spec.declared_guardians())))


@router.get(
    "/api/v1/governance/activity",
    response_model=ActivityOut,
    dependencies=READ,
    responses=error_responses(401, 422, 503),
    summary="Daily activity series of the system tenant",
    description="One row per UTC day for the last `days` days (today included), with no gaps: "
    "`runs` (governance runs started that day, with `runs_succeeded` and `runs_failed`, from "
    "governance_runs), `credits_received` and `credits_spent` (sums of the system tenant's positive and "
    "negative credit-ledger entries, as strings), and `holder_control` min/avg/max over the guardian's "
    "`governance_check` audit events (null on days without checks). System tenant only; no user id. "
    "Computed at most once a minute per `days` value (today's figures may lag by up to 60 s).",
)
async def governance_activity(request: Request, days: int = Query(30, ge=1, le=366)) -> ActivityOut:
    ctx = api_context(request)
    last = ctx.clock().date()
    first = last - timedelta(days=days - 1)
    key = (days, last)
    hit = ctx._activity.get(key)
    if hit is not None and time.monotonic() - hit[0] < ACTIVITY_CACHE_SECONDS:
        return hit[1]
    series = await read_database(
        ctx, "the activity series", lambda conn: status_store.activity(conn, ctx.guardian_id, first=first, last=last)
    )
    out = ActivityOut(
        tenant=db.SYSTEM_TENANT_ID,
        days=days,
        from_date=first,
        to_date=last,
        series=[ActivityDay.model_validate(d) for d in series],
    )
    if len(ctx._activity) > 400:
        ctx._activity.clear()
    ctx._activity[key] = (time.monotonic(), out)
    return out


@router.get(
    "/api/v1/governance/heartbeat",
    response_model=HeartbeatOut,
    dependencies=READ,
    responses=error_responses(401, 503),
    summary="The system tenant's heartbeat state (new / up / late / down / paused)",
    description="State computed at request time from the last `governance.heartbeat` event, the heartbeat "
    "interval and grace from repo-spec, and whether an operator paused the heartbeat schedule; `down` (with "
    "`missed_since`) while the watchdog's `heartbeat_missed` incident is open.",
)
async def governance_heartbeat(request: Request) -> HeartbeatOut:
    ctx = api_context(request)
    snap = await within_deadline(ctx, "the heartbeat state", ctx.status.snapshot())
    s = snap.state
    hb = s.heartbeat
    state = heartbeat_state(
        hb.time if hb else None,
        interval=timedelta(seconds=s.heartbeat_interval_seconds),
        grace=timedelta(seconds=s.heartbeat_grace_seconds),
        now=ctx.clock(),
        paused=s.heartbeat_paused,
    )
    # The watchdog's dead-man's switch (docs/watchdog.md): a missed heartbeat is "down" at once.
    missed = await _heartbeat_missed_since(ctx)
    if missed is not None:
        state = "down"
    data = hb.data if hb else {}
    nested = data.get("data")
    inner = nested if isinstance(nested, dict) else data
    return HeartbeatOut(
        state=state,
        missed_since=missed,
        status=hb.status if hb else None,
        last_heartbeat_at=hb.time if hb else None,
        interval_seconds=s.heartbeat_interval_seconds,
        grace_seconds=s.heartbeat_grace_seconds,
        checks=inner.get("checks") if isinstance(inner.get("checks"), dict) else None,
        alerts=[a for a in inner.get("alerts") or [] if isinstance(a, str)],
    )


async def _heartbeat_missed_since(ctx) -> datetime | None:
    try:
        incidents = await read_database(ctx, "the watchdog's incidents", watchdog_store.open_incidents)
    except ApiError:  # the state without the watchdog's word
        return None
    return next((i["opened_at"] for i in incidents if i["kind"] == HEARTBEAT_MISSED), None)


@router.get(
    "/api/v1/governance/holder-control",
    response_model=HolderControlOut,
    dependencies=READ,
    responses=error_responses(401, 422, 503),
    summary="Holder control over the last hours, with the guardian's thresholds",
    description="The guardian's `governance_check` audit events of the last `hours`, averaged into at most "
    "`points` time buckets (min/max kept), with the caution/warning/critical/emergency thresholds from "
    "repo-spec for drawing threshold lines.",
)
async def holder_control(
    request: Request, hours: float = Query(6.0, gt=0, le=168), points: int = Query(360, ge=10, le=2000)
) -> HolderControlOut:
    ctx = api_context(request)
    now = ctx.clock()
    bucket = max(1, int(hours * 3600 / points + 0.999))
    series = await read_database(
        ctx,
        "the holder-control series",
        lambda conn: guardian_store.holder_control_series(
            conn, ctx.guardian_id, since=now - timedelta(hours=hours), until=now, bucket=timedelta(seconds=bucket)
        ),
    )
    r = ctx.config.spec.guardian.rules
    return HolderControlOut(
        hours=hours,
        bucket_seconds=bucket,
        points=[HolderControlPoint.model_validate(p) for p in series],
        thresholds=Thresholds(
            caution=float(r.caution_threshold),
            warning=float(r.warning_threshold),
            critical=float(r.critical_threshold),
            emergency=float(r.emergency_threshold),
        ),
    )
