"""The HTTP API (FastAPI): the status surface, seed 004's guardian endpoints, the payment
confirmation, the `/gov` page and `/openapi.json`.

Routes validate and delegate: the status contract comes from `StatusService`, guardian
state from the guardian workflow's queries and updates, history from the database
(`govfleet.api.queries`). Every error has one body format (`govfleet.api.errors`).

Access:
- read endpoints are public unless `API_READ_TOKEN` is set; then they need
  `Authorization: Bearer <token>` (`/health`, `/gov` and `/openapi.json` stay public);
- `POST /guardian/pause` and `/guardian/resume` always need a valid admin signature
  (EIP-191, verified by the guardian workflow; a rejection is a 403 with the reason);
- `POST /guardian/readings` needs `Authorization: Bearer <GUARDIAN_PUSH_TOKEN>`;
- no endpoint takes a user id for system-tenant data.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from typing import Any

import httpx
import structlog
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from govfleet import db, payments
from govfleet.api.errors import ApiError, error_responses, install_error_handlers
from govfleet.api.models import (
    ActivityOut,
    AlertsOut,
    ConfirmPaymentBody,
    EventsOut,
    GovernanceMetricsOut,
    GuardianStatusOut,
    HealthOut,
    HeartbeatOut,
    HolderControlOut,
    PauseIn,
    PauseOut,
    ReadingAccepted,
    ReadingIn,
    ResumeIn,
    ResumeOut,
    RulesOut,
    Thresholds,
)
from govfleet.api.service import Clock, StatusService, utc_now
from govfleet.contracts import guardian as guardian_contract
from govfleet.domain.billing import ConfirmPaymentResult
from govfleet.domain.heartbeat import heartbeat_state
from govfleet.domain.secret_ref import resolve_secret
from govfleet.domain.status import GovernanceStatusV1
from govfleet.settings import Config, load_config
from govfleet.store import guardian as guardian_store
from govfleet.store import status as status_store

log = structlog.get_logger("govfleet.api")

SOURCE_HEADER = "X-Govfleet-Source"
PAYMENT_WAIT_SECONDS = 30.0
ACTIVITY_CACHE_SECONDS = 60.0  # the daily series scans a month of audit rows: at most once a minute
API_DESCRIPTION = """\
The status surface of governance-fleet: the system tenant's governance status
(`governance.status.v1`), its daily activity, the guardian's eight endpoints (seed 004),
tracker readings push, and purchase confirmation.

**Errors** all share one body: `{"error": {"code", "message", "details"}}`.

**Access**: read endpoints are public unless the server sets `API_READ_TOKEN`; then send
`Authorization: Bearer <token>`. Pause and resume always need an EIP-191 admin signature
(`govfleet sign`). Readings push needs `Authorization: Bearer <GUARDIAN_PUSH_TOKEN>`.
"""


@dataclass
class ApiContext:
    config: Config
    client: Client | None
    pool: AsyncConnectionPool
    http: httpx.AsyncClient
    status: StatusService
    clock: Clock
    query_timeout: float
    _tracker_probe: tuple[float, bool] = field(default=(float("-inf"), False))
    _activity: dict = field(default_factory=dict)  # (days, last day) -> (monotonic time, ActivityOut)

    @property
    def guardian_id(self) -> str:
        return self.config.spec.guardian.workflow_id


def _ctx(request: Request) -> ApiContext:
    return request.app.state.ctx


_read_bearer = HTTPBearer(auto_error=False, scheme_name="ReadToken",
                          description="`API_READ_TOKEN`: required on read endpoints only when the server sets it")
_push_bearer = HTTPBearer(auto_error=False, scheme_name="PushToken",
                          description="`GUARDIAN_PUSH_TOKEN`: required to push tracker readings")


def _token_matches(given: HTTPAuthorizationCredentials | None, expected: str) -> bool:
    return given is not None and given.scheme.lower() == "bearer" and hmac.compare_digest(
        given.credentials.encode(), expected.encode()
    )


async def require_read_access(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_read_bearer)
) -> None:
    token = _ctx(request).config.settings.API_READ_TOKEN
    if token and not _token_matches(credentials, token):
        raise ApiError(401, "unauthorized", "this endpoint needs `Authorization: Bearer <API_READ_TOKEN>`",
                       headers={"WWW-Authenticate": "Bearer"})


async def require_push_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_push_bearer)
) -> None:
    cfg = _ctx(request).config
    token = cfg.settings.GUARDIAN_PUSH_TOKEN or resolve_secret(cfg.spec.guardian.tracker.push_token, os.environ)
    if not token:
        raise ApiError(403, "push_disabled", "readings push is disabled on this server: set GUARDIAN_PUSH_TOKEN")
    if not _token_matches(credentials, token):
        raise ApiError(401, "unauthorized", "readings push needs `Authorization: Bearer <GUARDIAN_PUSH_TOKEN>`",
                       headers={"WWW-Authenticate": "Bearer"})


def create_app(
    config: Config | None = None,
    *,
    client: Client | None = None,
    database_url: str | None = None,
    pool: AsyncConnectionPool | None = None,
    clock: Clock = utc_now,
    cache_ttl: float = 2.0,
    query_timeout: float = 3.0,
    pool_size: int = 10,
) -> FastAPI:
    """The API. Without arguments everything comes from `load_config()` (TEMPORAL_ADDRESS and
    DATABASE_URL must be set); tests and `govfleet up` pass what they already hold."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        cfg = config or load_config()
        closers: list[Callable] = []
        temporal = client
        if temporal is None:
            from govfleet.temporal import connect

            address = cfg.settings.TEMPORAL_ADDRESS
            if not address:
                raise db.StartupError("TEMPORAL_ADDRESS is not set; the API needs the Temporal server the workers use")
            temporal = await connect(address, cfg.settings.TEMPORAL_NAMESPACE)
        p = pool
        if p is None:
            url = database_url or cfg.settings.DATABASE_URL
            if not url:
                raise db.StartupError("DATABASE_URL is not set; the API needs the fleet's database")
            p = await db.create_pool(url, max_size=pool_size)
            closers.append(p.close)
        http = httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0))
        closers.append(http.aclose)
        status = StatusService(cfg, temporal, p, clock=clock, cache_ttl=cache_ttl, query_timeout=query_timeout)
        app.state.ctx = ApiContext(config=cfg, client=temporal, pool=p, http=http, status=status, clock=clock,
                                   query_timeout=query_timeout)
        try:
            yield
        finally:
            for close in reversed(closers):
                await close()

    app = FastAPI(
        title="governance-fleet API",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "governance", "description": "System-tenant governance status (seed 000)"},
            {"name": "guardian", "description": "The governance guardian (seed 004)"},
            {"name": "payments", "description": "Credit purchases (seed 003)"},
        ],
    )
    install_error_handlers(app)
    _routes(app)
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            ctx = getattr(app.state, "ctx", None)
            if ctx is not None and not ctx.config.settings.API_READ_TOKEN:
                _drop_security(schema, "ReadToken")  # reads are public on this server
            # Bodies parsed by hand (to answer with our error format) are documented here.
            schema.setdefault("components", {}).setdefault("schemas", {})["ReadingIn"] = ReadingIn.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        return app.openapi_schema

    app.openapi = openapi
    return app


# --- helpers ---------------------------------------------------------------------------------


async def _guardian_query(ctx: ApiContext, name: str) -> Any:
    if ctx.client is None:
        raise ApiError(503, "guardian_unavailable", "no Temporal client configured")
    handle = ctx.client.get_workflow_handle(ctx.guardian_id)
    try:
        return await handle.query(name, rpc_timeout=timedelta(seconds=ctx.query_timeout))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(503, "guardian_unavailable", f"guardian workflow {ctx.guardian_id!r} is not running") from None
        raise ApiError(503, "guardian_unavailable",
                       f"guardian workflow {ctx.guardian_id!r} did not answer query {name!r}: {err.message}") from None
    except Exception as err:
        raise ApiError(503, "guardian_unavailable",
                       f"guardian workflow {ctx.guardian_id!r} did not answer query {name!r}: {err}") from None


def _shape(model, value: Any, what: str):
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise ApiError(502, "bad_gateway", f"the guardian's {what} answer does not have the documented shape",
                       [{"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in err.errors()]) from None


async def _guardian_update(ctx: ApiContext, name: str, body: dict) -> Any:
    if ctx.client is None:
        raise ApiError(503, "guardian_unavailable", "no Temporal client configured")
    handle = ctx.client.get_workflow_handle(ctx.guardian_id)
    try:
        return await handle.execute_update(name, body, rpc_timeout=timedelta(seconds=max(ctx.query_timeout, 10)))
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause or err)
        details: dict = {"action": name}
        if isinstance(cause, ApplicationError):
            details["type"] = cause.type
            if cause.details:
                details["code"] = cause.details[0] if len(cause.details) == 1 else list(cause.details)
        raise ApiError(403, "rejected", reason, details) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(503, "guardian_unavailable", f"guardian workflow {ctx.guardian_id!r} is not running") from None
        raise ApiError(503, "guardian_unavailable", f"update {name!r} failed: {err.message}") from None


async def _tracker_connected(ctx: ApiContext) -> bool:
    checked_at, ok = ctx._tracker_probe
    if time.monotonic() - checked_at < 5.0:
        return ok
    url = ctx.config.spec.guardian.tracker.url.rstrip("/") + "/voting/governance"
    try:
        resp = await ctx.http.get(url)
        ok = resp.status_code == 200
    except httpx.HTTPError:
        ok = False
    ctx._tracker_probe = (time.monotonic(), ok)
    return ok


def _status_from_database(ctx: ApiContext, check: dict | None, pauses: list[dict], active: int) -> dict:
    rules = ctx.config.spec.guardian.rules
    scopes = {p["scope"] for p in pauses}
    system_status = "fully_paused" if "everything" in scopes else ("redemptions_paused" if pauses else "operational")
    return {
        "monitoring_active": False,
        "last_check": check["timestamp"] if check else None,
        "check_interval_seconds": rules.monitoring_interval_normal,
        "current_holder_control": check["holder_control"] if check else None,
        "governance_level": check["threshold_level"] if check else "unknown",
        "system_status": system_status,
        "paused": bool(pauses),
        "alerts_active": active,
    }


# --- routes ----------------------------------------------------------------------------------


def _routes(app: FastAPI) -> None:
    read = [Depends(require_read_access)]

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/gov")

    @app.get("/gov", include_in_schema=False, response_class=HTMLResponse)
    async def gov_page() -> HTMLResponse:
        html = resources.files("govfleet.api").joinpath("static/gov.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    # -- governance (seed 000) --

    @app.get(
        "/api/v1/governance/status", tags=["governance"], response_model=GovernanceStatusV1, dependencies=read,
        operation_id="governance.status.v1", responses=error_responses(401, 503),
        summary="System tenant credits, upcoming runs (computed live) and recent runs",
        description="Exactly the `governance.status.v1` contract of seed 000. `systemCredits` is a string "
        "(bigint-safe); `upcomingRuns` (at most 3, soonest first) are computed from each schedule's cron and "
        "timezone at request time and are always in the future; `recentRuns` (at most 10) are the system "
        f"principal's runs, most recent first. Header `{SOURCE_HEADER}` says whether the read model came from "
        "the status workflow or (fallback) the database.",
    )
    async def governance_status(request: Request) -> Response:
        ctx = _ctx(request)
        try:
            body, source = await ctx.status.status_json()
        except Exception as exc:
            raise ApiError(503, "unavailable", f"governance status is unavailable: {exc}") from None
        # Validated against the contract when it was built (GovernanceStatusV1); sent as is.
        return Response(body, media_type="application/json",
                        headers={SOURCE_HEADER: source, "Cache-Control": "no-store"})

    @app.get(
        "/api/v1/governance/activity", tags=["governance"], response_model=ActivityOut, dependencies=read,
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
        ctx = _ctx(request)
        last = ctx.clock().date()
        first = last - timedelta(days=days - 1)
        key = (days, last)
        hit = ctx._activity.get(key)
        if hit is not None and time.monotonic() - hit[0] < ACTIVITY_CACHE_SECONDS:
            return hit[1]
        try:
            async with ctx.pool.connection() as conn:
                series = await status_store.activity(conn, ctx.guardian_id, first=first, last=last)
        except Exception as exc:
            raise ApiError(503, "database_unavailable", f"activity is unavailable: {exc}") from None
        out = ActivityOut(tenant=db.SYSTEM_TENANT_ID, days=days, from_date=first, to_date=last, series=series)
        if len(ctx._activity) > 400:
            ctx._activity.clear()
        ctx._activity[key] = (time.monotonic(), out)
        return out

    @app.get(
        "/api/v1/governance/heartbeat", tags=["governance"], response_model=HeartbeatOut, dependencies=read,
        responses=error_responses(401, 503),
        summary="The system tenant's heartbeat state (new / up / late / down / paused)",
        description="State computed at request time from the last `governance.heartbeat` event, the heartbeat "
        "interval and grace from repo-spec, and whether an operator paused the heartbeat schedule.",
    )
    async def governance_heartbeat(request: Request) -> HeartbeatOut:
        ctx = _ctx(request)
        try:
            snap = await ctx.status.snapshot()
        except Exception as exc:
            raise ApiError(503, "unavailable", f"heartbeat state is unavailable: {exc}") from None
        s = snap.state
        hb = s.heartbeat
        state = heartbeat_state(
            hb.time if hb else None, interval=timedelta(seconds=s.heartbeat_interval_seconds),
            grace=timedelta(seconds=s.heartbeat_grace_seconds), now=ctx.clock(), paused=s.heartbeat_paused,
        )
        data = hb.data if hb else {}
        inner = data.get("data") if isinstance(data.get("data"), dict) else data
        return HeartbeatOut(
            state=state, status=hb.status if hb else None, last_heartbeat_at=hb.time if hb else None,
            interval_seconds=s.heartbeat_interval_seconds, grace_seconds=s.heartbeat_grace_seconds,
            checks=inner.get("checks") if isinstance(inner.get("checks"), dict) else None,
            alerts=[a for a in inner.get("alerts") or [] if isinstance(a, str)],
        )

    @app.get(
        "/api/v1/governance/holder-control", tags=["governance"], response_model=HolderControlOut,
        dependencies=read, responses=error_responses(401, 422, 503),
        summary="Holder control over the last hours, with the guardian's thresholds",
        description="The guardian's `governance_check` audit events of the last `hours`, averaged into at most "
        "`points` time buckets (min/max kept), with the caution/warning/critical/emergency thresholds from "
        "repo-spec for drawing threshold lines.",
    )
    async def holder_control(
        request: Request, hours: float = Query(6.0, gt=0, le=168), points: int = Query(360, ge=10, le=2000)
    ) -> HolderControlOut:
        ctx = _ctx(request)
        now = ctx.clock()
        bucket = max(1, int(hours * 3600 / points + 0.999))
        try:
            async with ctx.pool.connection() as conn:
                series = await guardian_store.holder_control_series(
                    conn, ctx.guardian_id, since=now - timedelta(hours=hours), until=now,
                    bucket=timedelta(seconds=bucket),
                )
        except Exception as exc:
            raise ApiError(503, "database_unavailable", f"holder control is unavailable: {exc}") from None
        r = ctx.config.spec.guardian.rules
        return HolderControlOut(
            hours=hours, bucket_seconds=bucket, points=series,
            thresholds=Thresholds(caution=float(r.caution_threshold), warning=float(r.warning_threshold),
                                  critical=float(r.critical_threshold), emergency=float(r.emergency_threshold)),
        )

    # -- guardian (seed 004) --

    @app.get(
        "/guardian/status", tags=["guardian"], response_model=GuardianStatusOut, dependencies=read,
        responses=error_responses(401, 502, 503),
        summary="Guardian status (seed 004 #1)",
        description="From the guardian workflow's `status` query (its live state). When the guardian does not "
        "answer, the same shape is derived from the database (last governance check, open pauses, unresolved "
        f"alerts) with `monitoring_active: false` and header `{SOURCE_HEADER}: database`.",
    )
    async def guardian_status(request: Request, response: Response) -> GuardianStatusOut:
        ctx = _ctx(request)
        try:
            value = await _guardian_query(ctx, guardian_contract.STATUS_QUERY)
            response.headers[SOURCE_HEADER] = "workflow"
            return _shape(GuardianStatusOut, value, "status")
        except ApiError as err:
            if err.code != "guardian_unavailable":
                raise
            try:
                async with ctx.pool.connection() as conn:
                    check = await guardian_store.latest_check(conn, ctx.guardian_id)
                    pauses = await guardian_store.open_pauses(conn, ctx.guardian_id)
                    active = await guardian_store.active_alert_count(conn, ctx.guardian_id)
            except Exception as exc:
                raise ApiError(503, "unavailable", f"{err.message}, and the database is unavailable: {exc}") from None
            response.headers[SOURCE_HEADER] = "database"
            return GuardianStatusOut.model_validate(_status_from_database(ctx, check, pauses, active))

    @app.get(
        "/guardian/governance", tags=["guardian"], response_model=GovernanceMetricsOut, dependencies=read,
        responses=error_responses(401, 502, 503), summary="Current governance metrics (seed 004 #2)",
        description="From the guardian workflow's `governance` query: its last valid tracker reading.",
    )
    async def guardian_governance(request: Request) -> GovernanceMetricsOut:
        return _shape(GovernanceMetricsOut, await _guardian_query(_ctx(request), guardian_contract.GOVERNANCE_QUERY), "governance")

    @app.get(
        "/guardian/alerts", tags=["guardian"], response_model=AlertsOut, dependencies=read,
        responses=error_responses(401, 422, 503), summary="Alert history (seed 004 #3)",
        description="From the database table governance_alerts (every alert this guardian raised, newest first). "
        "`resolved=false` lists only open alerts.",
    )
    async def guardian_alerts(
        request: Request, limit: int = Query(20, ge=1, le=500), resolved: bool | None = Query(None)
    ) -> AlertsOut:
        ctx = _ctx(request)
        try:
            async with ctx.pool.connection() as conn:
                rows = await guardian_store.alerts(conn, ctx.guardian_id, limit, resolved)
        except Exception as exc:
            raise ApiError(503, "database_unavailable", f"alerts are unavailable: {exc}") from None
        return AlertsOut(alerts=rows)

    @app.get(
        "/guardian/events", tags=["guardian"], response_model=EventsOut, dependencies=read,
        responses=error_responses(401, 422, 503), summary="Governance events: the audit log (seed 004 #4)",
        description="From the database table governance_events: the complete audit log of this guardian (every "
        "check, threshold crossing, pause, resume and rejected admin action), newest first.",
    )
    async def guardian_events(
        request: Request, limit: int = Query(50, ge=1, le=1000),
        event_type: str | None = Query(None, max_length=30, description="only events of this type"),
    ) -> EventsOut:
        ctx = _ctx(request)
        try:
            async with ctx.pool.connection() as conn:
                rows = await guardian_store.events(conn, ctx.guardian_id, limit, event_type)
        except Exception as exc:
            raise ApiError(503, "database_unavailable", f"events are unavailable: {exc}") from None
        return EventsOut(events=rows)

    @app.post(
        "/guardian/pause", tags=["guardian"], response_model=PauseOut,
        responses=error_responses(403, 422, 502, 503), summary="Pause the system (admin, seed 004 #5)",
        description="Sent to the guardian workflow as update `pause`. `authorization` is an EIP-191 admin "
        "signature token (`govfleet sign pause --reason ...`); a missing, malformed, expired, replayed or "
        "foreign signature is rejected with 403 and the reason, and changes nothing.",
    )
    async def guardian_pause(request: Request, body: PauseIn) -> PauseOut:
        _require_authorization(body.authorization)
        result = await _guardian_update(_ctx(request), guardian_contract.PAUSE_UPDATE, body.model_dump(mode="json"))
        return _shape(PauseOut, result, "pause")

    @app.post(
        "/guardian/resume", tags=["guardian"], response_model=ResumeOut,
        responses=error_responses(403, 422, 502, 503), summary="Resume the system (admin, seed 004 #6)",
        description="Sent to the guardian workflow as update `resume`. Needs admin signature(s) like pause; "
        "after an emergency pause also `governance_verified: true` and a quorum of distinct admins. A "
        "rejection (bad signature, holder control still below the critical threshold, ...) is a 403 with the "
        "reason.",
    )
    async def guardian_resume(request: Request, body: ResumeIn) -> ResumeOut:
        _require_authorization(body.authorization)
        result = await _guardian_update(_ctx(request), guardian_contract.RESUME_UPDATE, body.model_dump(mode="json"))
        return _shape(ResumeOut, result, "resume")

    @app.get(
        "/guardian/rules", tags=["guardian"], response_model=RulesOut, dependencies=read,
        responses=error_responses(401, 502), summary="System rules (seed 004 #7)",
        description="From the guardian workflow's `rules` query; when it does not answer, from repo-spec "
        f"`guardian.rules` (header `{SOURCE_HEADER}: config`).",
    )
    async def guardian_rules(request: Request, response: Response) -> RulesOut:
        ctx = _ctx(request)
        try:
            value = await _guardian_query(ctx, guardian_contract.RULES_QUERY)
            response.headers[SOURCE_HEADER] = "workflow"
            return _shape(RulesOut, value, "rules")
        except ApiError as err:
            if err.code != "guardian_unavailable":
                raise
        r = ctx.config.spec.guardian.rules
        response.headers[SOURCE_HEADER] = "config"
        return RulesOut(
            critical_threshold=float(r.critical_threshold), caution_threshold=float(r.caution_threshold),
            warning_threshold=float(r.warning_threshold), pause_redemptions_at=float(r.critical_threshold),
            pause_system_at=float(r.emergency_threshold), monitoring_interval_normal=r.monitoring_interval_normal,
            monitoring_interval_caution=r.monitoring_interval_caution,
            monitoring_interval_critical=r.monitoring_interval_critical,
        )

    @app.get(
        "/health", tags=["guardian"], response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "Unhealthy: the database is unreachable"}},
        summary="Health check (seed 004 #8)",
        description="`healthy` when the database answers, the guardian is monitoring, the tracker answers and "
        "the last check is recent (within three normal intervals); `degraded` otherwise; `unhealthy` (HTTP 503) "
        "when the database does not answer. Always public.",
    )
    async def health(request: Request) -> JSONResponse:
        ctx = _ctx(request)
        now = ctx.clock()

        async def database() -> tuple[bool, dict | None]:
            try:
                async with ctx.pool.connection(timeout=2.0) as conn:
                    return True, await guardian_store.latest_check(conn, ctx.guardian_id)
            except Exception:
                return False, None

        async def guardian() -> dict | None:
            try:
                return _shape(GuardianStatusOut, await _guardian_query(ctx, guardian_contract.STATUS_QUERY), "status").model_dump()
            except ApiError:
                return None

        (db_ok, check), gstatus, tracker = await asyncio.gather(database(), guardian(), _tracker_connected(ctx))
        last = (gstatus or {}).get("last_check") or (check or {}).get("timestamp")
        since = int((now - last).total_seconds()) if last else None
        monitoring = bool(gstatus and gstatus.get("monitoring_active"))
        stale_after = 3 * ctx.config.spec.guardian.rules.monitoring_interval_normal
        if not db_ok:
            state = "unhealthy"
        elif monitoring and tracker and since is not None and since <= stale_after:
            state = "healthy"
        else:
            state = "degraded"
        body = HealthOut(
            status=state, monitoring_active=monitoring, voting_tracker_connected=tracker,
            database="connected" if db_ok else "disconnected", last_governance_check=last,
            seconds_since_last_check=max(0, since) if since is not None else None,
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=503 if state == "unhealthy" else 200)

    @app.post(
        "/guardian/readings", tags=["guardian"], response_model=ReadingAccepted, status_code=202,
        dependencies=[Depends(require_push_token)], responses=error_responses(401, 403, 422, 503),
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ReadingIn"}}}}},
        summary="Push a tracker reading to the guardian",
        description="Delivered to the guardian workflow as signal `reading` and checked at once (the current "
        "sleep is cut short). Needs `Authorization: Bearer <GUARDIAN_PUSH_TOKEN>`. A reading out of [0, 100], "
        "with a non-numeric field or whose votes do not add up is answered with 422 naming the problem; it is "
        "still delivered, so the guardian records it as an invalid reading in its audit log (an invalid reading "
        "never moves the level). The guardian also refuses stale readings.",
    )
    async def guardian_readings(request: Request) -> ReadingAccepted:
        ctx = _ctx(request)
        body = await request.body()
        try:
            raw = json.loads(body)
        except ValueError:
            raise ApiError(422, "validation_error", "the body must be a JSON object (a tracker reading)") from None
        if not isinstance(raw, dict):
            raise ApiError(422, "validation_error", "the body must be a JSON object (a tracker reading)")
        problems = None
        try:
            ReadingIn.model_validate_json(body, strict=True)
        except ValidationError as err:
            problems = [{"field": ".".join(map(str, e["loc"])) or "body", "problem": _clean(e["msg"]),
                         "type": e["type"]} for e in err.errors()]
        payload = {k: raw.get(k) for k in READING_FIELDS}
        if ctx.client is None:
            raise ApiError(503, "guardian_unavailable", "no Temporal client configured")
        handle = ctx.client.get_workflow_handle(ctx.guardian_id)
        try:
            await handle.signal(guardian_contract.READING_SIGNAL, payload, rpc_timeout=timedelta(seconds=ctx.query_timeout))
        except RPCError as err:
            if problems is None:
                if err.status == RPCStatusCode.NOT_FOUND:
                    raise ApiError(503, "guardian_unavailable",
                                   f"guardian workflow {ctx.guardian_id!r} is not running") from None
                raise ApiError(503, "guardian_unavailable", f"signal failed: {err.message}") from None
        if problems:
            first = problems[0]
            raise ApiError(422, "invalid_reading", f"{first['field']}: {first['problem']}", problems)
        return ReadingAccepted(accepted=True, guardian=ctx.guardian_id)

    # -- payments (seed 003) --

    @app.post(
        "/api/v1/payments/credits/confirm", tags=["payments"], response_model=ConfirmPaymentResult,
        responses={202: {"description": "Still being confirmed after the wait; send the same request again",
                         "content": {"application/json": {"schema": {"type": "object"}}}},
                   **error_responses(409, 422, 500, 503)},
        summary="Confirm a credit purchase (user credits + system-tenant revenue share)",
        description="Runs the payment workflow `payment-<client_payment_id>`: the user gets the purchased "
        "credits and `cogni_system` its revenue-share bonus, in one transaction, exactly once. The same id with "
        "the same payload returns the first result; the same id with a different user or amount is a 409. "
        "Deploy it behind the payment provider's verification: this endpoint trusts its caller.",
    )
    async def confirm_payment(request: Request, body: ConfirmPaymentBody) -> Any:
        ctx = _ctx(request)
        if ctx.client is None:
            raise ApiError(503, "unavailable", "no Temporal client configured")
        try:
            result = await payments.confirm_via_workflow(
                ctx.client, ctx.config.settings.TEMPORAL_TASK_QUEUE, body.model_dump(), timeout=PAYMENT_WAIT_SECONDS
            )
        except payments.PaymentConflict as err:
            raise ApiError(409, "payment_conflict", str(err), {"client_payment_id": body.client_payment_id}) from None
        except payments.PaymentPending as err:
            return JSONResponse({"pending": True, "client_payment_id": body.client_payment_id, "message": str(err)},
                                status_code=202)
        except payments.BillingError as err:  # invalid input, ledger overflow: nothing was written
            raise ApiError(422, "validation_error", str(err)) from None
        except payments.PaymentFailed as err:
            raise ApiError(500, "payment_failed", str(err)) from None
        except RPCError as err:
            raise ApiError(503, "unavailable", f"payment confirmation failed: {err.message}") from None
        return result


def _drop_security(schema: dict, scheme: str) -> None:
    for operations in schema.get("paths", {}).values():
        for op in operations.values():
            if isinstance(op, dict) and "security" in op:
                op["security"] = [r for r in op["security"] if scheme not in r]
                if not op["security"]:
                    del op["security"]


READING_FIELDS = ("holder_control_percentage", "total_votes", "holder_votes", "seller_votes", "last_updated")


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _require_authorization(value: str | list[str]) -> None:
    from govfleet.domain.admin_auth import AuthorizationError, parse_authorizations

    try:
        tokens = parse_authorizations(value)
    except AuthorizationError as err:
        raise ApiError(403, "rejected", err.message, {"code": err.code}) from None
    if not tokens:
        raise ApiError(403, "rejected", "an admin signature is required (see `govfleet sign`)", {"code": "malformed"})
