"""Tag `guardian`: the guardian's status, metrics, rules, alert and event history, the signed
admin actions, the readings push and the health check (see docs/guardian.md and
docs/admin-actions.md). Live state comes from the guardian workflow through the gateway;
history from the audit tables."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from govfleet.api import admin_actions, gateway
from govfleet.api import health as health_check
from govfleet.api.body import json_request_body, read_json
from govfleet.api.context import (
    READ,
    SOURCE_HEADER,
    ApiContext,
    api_context,
    require_push_token,
)
from govfleet.api.errors import ApiError, error_responses, problem_text
from govfleet.api.models import (
    AdminRejectionsOut,
    AlertsOut,
    EventsOut,
    ForensicAuditOut,
    GovernanceMetricsOut,
    GuardiansOut,
    GuardianStatusOut,
    GuardianSummaryOut,
    HealthOut,
    PauseOut,
    ReadingAccepted,
    ReadingIn,
    ResumeOut,
    RulesOut,
)
from govfleet.api.reads import read_database
from govfleet.contracts.guardian import (
    FORENSIC_AUDIT_UPDATE,
    GOVERNANCE_QUERY,
    PAUSE_UPDATE,
    READING_SIGNAL,
    RESUME_UPDATE,
    RULES_QUERY,
    STATUS_QUERY,
)
from govfleet.domain.guardian.readings import InvalidReading, validate_reading
from govfleet.domain.guardian.views import rules_view, status_from_audit_log
from govfleet.domain.identifiers import IDENTIFIER_PATTERN
from govfleet.store import guardian as guardian_store

READING_FIELDS = ("holder_control_percentage", "total_votes", "holder_votes", "seller_votes", "last_updated")

router = APIRouter(tags=["guardian"])


@router.get(
    "/guardian/status",
    response_model=GuardianStatusOut,
    dependencies=READ,
    responses=error_responses(401, 502, 503),
    summary="Guardian status",
    description="From the guardian workflow's `status` query (its live state). When the guardian does not "
    "answer, the same shape is derived from the database (last governance check, open pauses, unresolved "
    f"alerts) with `monitoring_active: false` and header `{SOURCE_HEADER}: database`.",
)
async def guardian_status(request: Request, response: Response) -> GuardianStatusOut:
    ctx = api_context(request)
    try:
        status = await gateway.query_guardian(ctx, STATUS_QUERY, GuardianStatusOut)
        response.headers[SOURCE_HEADER] = "workflow"
        return status
    except ApiError as err:
        if err.code != "guardian_unavailable":
            raise

        async def audit_log(conn) -> tuple[dict | None, list[dict], int]:
            return (
                await guardian_store.latest_check(conn, ctx.guardian_id),
                await guardian_store.open_pauses(conn, ctx.guardian_id),
                await guardian_store.active_alert_count(conn, ctx.guardian_id),
            )

        try:
            check, pauses, active = await read_database(ctx, "guardian status", audit_log)
        except ApiError as db_err:
            raise ApiError(503, "unavailable", f"{err.message}; {db_err.message}") from None
        response.headers[SOURCE_HEADER] = "database"
        status = status_from_audit_log(
            last_check=check["timestamp"] if check else None,
            holder_control=check["holder_control"] if check else None,
            level=check["threshold_level"] if check else None,
            pause_scopes=[p["scope"] for p in pauses],
            alerts_active=active,
            rules=ctx.config.spec.guardian.rules,
        )
        return GuardianStatusOut.model_validate(status.model_dump())


@router.get(
    "/guardian/governance",
    response_model=GovernanceMetricsOut,
    dependencies=READ,
    responses=error_responses(401, 502, 503),
    summary="Current governance metrics",
    description="From the guardian workflow's `governance` query: its last valid tracker reading.",
)
async def guardian_governance(request: Request) -> GovernanceMetricsOut:
    return await gateway.query_guardian(api_context(request), GOVERNANCE_QUERY, GovernanceMetricsOut)


@router.get(
    "/guardian/alerts",
    response_model=AlertsOut,
    dependencies=READ,
    responses=error_responses(401, 422, 503),
    summary="Alert history",
    description="From the database table governance_alerts (every alert this guardian raised, newest first). "
    "`resolved=false` lists only open alerts.",
)
async def guardian_alerts(
    request: Request, limit: int = Query(20, ge=1, le=500), resolved: bool | None = Query(None)
) -> AlertsOut:
    ctx = api_context(request)
    rows = await read_database(
        ctx, "the alert history", lambda conn: guardian_store.alerts(conn, ctx.guardian_id, limit, resolved)
    )
    return AlertsOut.model_validate({"alerts": rows})


@router.get(
    "/guardian/events",
    response_model=EventsOut,
    dependencies=READ,
    responses=error_responses(401, 422, 503),
    summary="Governance events: the audit log",
    description="From the database table governance_events: the complete audit log of this guardian (every "
    "check, threshold crossing, pause, resume and rejected admin action), newest first.",
)
async def guardian_events(
    request: Request,
    limit: int = Query(50, ge=1, le=1000),
    event_type: str | None = Query(
        None, max_length=30, pattern=IDENTIFIER_PATTERN, description="only events of this type (an identifier)"
    ),
) -> EventsOut:
    ctx = api_context(request)
    rows = await read_database(
        ctx, "the audit log", lambda conn: guardian_store.events(conn, ctx.guardian_id, limit, event_type)
    )
    return EventsOut.model_validate({"events": rows})


ADMIN_ERRORS = error_responses(400, 403, 413, 415, 422, 429, 502, 503)


@router.post(
    "/guardian/pause",
    response_model=PauseOut,
    responses=ADMIN_ERRORS,
    openapi_extra=json_request_body("PauseIn"),
    summary="Pause the system (admin)",
    description="Needs an EIP-712 admin authorization (`govfleet sign pause --reason ...`), verified here: "
    "a body of the wrong shape is a 422, a malformed, expired, replayed or foreign signature a 403, each with the "
    "rejection `code` in `details`, and nothing reaches the guardian. A verified request is sent to the "
    "guardian workflow as update `pause` (which verifies again). An address with too many rejected admin "
    "requests gets 429 and `Retry-After` for the next ones that do not verify.",
)
async def guardian_pause(request: Request) -> PauseOut:
    return await admin_actions.carry_out(request, "pause", PAUSE_UPDATE, PauseOut)


@router.post(
    "/guardian/resume",
    response_model=ResumeOut,
    responses=ADMIN_ERRORS,
    openapi_extra=json_request_body("ResumeIn"),
    summary="Resume the system (admin)",
    description="Needs admin authorization(s) like pause, verified here the same way; then sent to the "
    "guardian workflow as update `resume`. After an emergency pause a quorum of distinct admins, each signing "
    "the DAO's approval (`governance_approval`: proposal id or transaction hash, and its URL) into the resume. "
    "A rejection by the guardian (holder control still below the critical threshold, quorum, no signed "
    "approval, ...) is a 403 with the reason and its `code`; the genuine signatures of a refused resume are spent.",
)
async def guardian_resume(request: Request) -> ResumeOut:
    return await admin_actions.carry_out(request, "resume", RESUME_UPDATE, ResumeOut)


@router.post(
    "/guardian/forensic-audit",
    response_model=ForensicAuditOut,
    responses=ADMIN_ERRORS,
    openapi_extra=json_request_body("ForensicAuditIn"),
    summary="Sign the forensic audit's completion (admin)",
    description="After an emergency pause a forensic audit is required (shown in the status) until an admin signs "
    "its completion with a reference to the report: action `complete_forensic_audit`, the report as the signed "
    "reason. Verified here like pause, then sent to the guardian as update `forensic_audit`; audited.",
)
async def guardian_forensic_audit(request: Request) -> ForensicAuditOut:
    return await admin_actions.carry_out(request, "complete_forensic_audit", FORENSIC_AUDIT_UPDATE, ForensicAuditOut)


@router.get(
    "/guardian/rejections",
    response_model=AdminRejectionsOut,
    dependencies=READ,
    responses=error_responses(401, 422, 503),
    summary="Rejected admin requests, counted",
    description="From the database table admin_rejections: the admin requests (pause, resume) this API "
    "refused, counted per client address, minute, action and rejection code, newest minute first.",
)
async def guardian_rejections(request: Request, limit: int = Query(100, ge=1, le=1000)) -> AdminRejectionsOut:
    ctx = api_context(request)
    rows = await read_database(
        ctx, "the rejection counts", lambda conn: guardian_store.admin_rejections(conn, ctx.guardian_id, limit)
    )
    return AdminRejectionsOut.model_validate({"rejections": rows})


@router.get(
    "/guardian/rules",
    response_model=RulesOut,
    dependencies=READ,
    responses=error_responses(401, 502),
    summary="System rules",
    description="From the guardian workflow's `rules` query; when it does not answer, from repo-spec "
    f"`guardian.rules` (header `{SOURCE_HEADER}: config`).",
)
async def guardian_rules(request: Request, response: Response) -> RulesOut:
    ctx = api_context(request)
    try:
        rules = await gateway.query_guardian(ctx, RULES_QUERY, RulesOut)
        response.headers[SOURCE_HEADER] = "workflow"
        return rules
    except ApiError as err:
        if err.code != "guardian_unavailable":
            raise
    response.headers[SOURCE_HEADER] = "config"
    return RulesOut.model_validate(rules_view(ctx.config.spec.guardian.rules).model_dump())


@router.get(
    "/health",
    response_model=HealthOut,
    responses={
        503: {"model": HealthOut, "description": "Unhealthy: the database is unreachable or a guardian is down"}
    },
    summary="Health check",
    description="`healthy` when the database answers, every declared workflow (guardians, `governance-status`, "
    "`governance-watchdog`) runs, the first guardian is monitoring with a recent last check (within three normal "
    "intervals), each guardian's tracker (the address the running guardian uses) answers and the watchdog has no "
    "open incident; `degraded` otherwise; `unhealthy` (HTTP 503) when the database does not answer or a declared "
    "guardian is not running. `problems` says why, one line each. Always public.",
)
async def health(request: Request) -> JSONResponse:
    body = await health_check.check(api_context(request))
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if body.status == "unhealthy" else 200)


@router.get(
    "/guardians",
    response_model=GuardiansOut,
    dependencies=READ,
    responses=error_responses(401),
    summary="Every declared guardian",
    description="One entry per guardian the repo-spec declares (`guardian`, then `guardians`): whether its "
    "workflow runs, the tracker it uses and its `status` query (null when it does not answer).",
)
async def guardians(request: Request) -> GuardiansOut:
    ctx = api_context(request)

    async def one(g) -> GuardianSummaryOut:
        seen, status = await asyncio.gather(gateway.describe_workflow(ctx, g.workflow_id), _status_or_none(ctx, g))
        memo_url = seen.memo.get("tracker_url")
        return GuardianSummaryOut(
            workflow_id=g.workflow_id,
            name=g.name,
            running=seen.running,
            tracker_url=memo_url if isinstance(memo_url, str) else g.tracker.url,
            status=status,
        )

    found = await asyncio.gather(*(one(g) for g in ctx.config.spec.declared_guardians()))
    return GuardiansOut(guardians=list(found))


async def _status_or_none(ctx: ApiContext, g) -> GuardianStatusOut | None:
    try:
        return await gateway.query_guardian(ctx, STATUS_QUERY, GuardianStatusOut, guardian_id=g.workflow_id)
    except ApiError:
        return None


@router.post(
    "/guardian/readings",
    response_model=ReadingAccepted,
    status_code=202,
    dependencies=[Depends(require_push_token)],
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
    openapi_extra=json_request_body("ReadingIn"),
    summary="Push a tracker reading to the guardian",
    description="Delivered to the guardian workflow as signal `reading` and checked at once (the current "
    "sleep is cut short). Needs `Authorization: Bearer <GUARDIAN_PUSH_TOKEN>`. A reading out of [0, 100], "
    "with a non-numeric field or whose votes do not add up is answered with 422 naming the problem; it is "
    "still delivered, so the guardian records it as an invalid reading in its audit log (an invalid reading "
    "never moves the level). A reading whose `last_updated` is older than the guardian's "
    "`tracker.staleness_seconds` (or more than 60 s in the future) is answered with 422 `stale_reading` "
    "saying how old it is; it is delivered too, and the guardian refuses it as well.",
)
async def guardian_readings(request: Request) -> ReadingAccepted:
    ctx = api_context(request)
    raw = await read_json(request)
    if not isinstance(raw, dict):
        raise ApiError(422, "validation_error", "the body must be a JSON object (a tracker reading)")
    problems = None
    try:
        ReadingIn.model_validate_json(await request.body(), strict=True)
    except ValidationError as err:
        problems = [
            {"field": ".".join(map(str, e["loc"])) or "body", "problem": problem_text(e["msg"]), "type": e["type"]}
            for e in err.errors()
        ]
    payload = {k: raw.get(k) for k in READING_FIELDS}
    stale = None if problems else _stale(ctx, payload)
    # An invalid reading is delivered too (the guardian audits it), whatever happens to the signal.
    await gateway.signal_guardian(ctx, READING_SIGNAL, payload, best_effort=bool(problems or stale))
    if problems:
        first = problems[0]
        raise ApiError(422, "invalid_reading", f"{first['field']}: {first['problem']}", problems)
    if stale is not None:
        # The guardian refuses it too (a `tracker_error` in its audit log): say so instead of 202.
        raise ApiError(422, "stale_reading", stale.message, [{"field": "last_updated", "problem": stale.message}])
    return ReadingAccepted(accepted=True, guardian=ctx.guardian_id)


def _stale(ctx: ApiContext, payload: dict) -> InvalidReading | None:
    """The guardian's verdict on the reading's time (stale or from the future), by its repo-spec
    `tracker.staleness_seconds`; None when the time is acceptable."""
    spec = ctx.config.spec.guardian_by_id(ctx.guardian_id) or ctx.config.spec.guardian
    try:
        validate_reading(payload, now=datetime.now(UTC), staleness_seconds=spec.tracker.staleness_seconds)
    except InvalidReading as exc:
        return exc if exc.code in ("stale", "future") else None
    return None
