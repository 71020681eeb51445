"""`GET /health` (docs/watchdog.md, "Telling operators"): the database, every declared
long-lived workflow (described in Temporal: no worker needed), each guardian's tracker — the
address the running guardian uses (from its memo), not the repo-spec's default — the last check
of the first guardian and the watchdog's open incidents.

- `unhealthy` (HTTP 503): the database does not answer, or a declared guardian is not running
  (terminated, failed, never started): `problems` names it;
- `degraded`: anything else not right (monitoring inactive, a tracker not answering, the last
  check older than three normal intervals, the status or watchdog workflow not running, an open
  incident such as `heartbeat_missed`, Temporal not answering, a guardian with no notification
  channel, a failing channel, urgent notices pending: `govfleet/api/fleet_state.py`);
- `healthy` otherwise. `warnings` are said without degrading it: notifications off on purpose
  (`NOTIFY_URLS=none`), a declared throw-away environment or the demo's public keys, a system
  tenant that cannot pay its runs.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from govfleet.api import gateway
from govfleet.api.context import ApiContext
from govfleet.api.errors import ApiError
from govfleet.api.models import GuardianStatusOut, HealthOut, IncidentOut, NotificationStateOut, WorkflowHealthOut
from govfleet.contracts.guardian import STATUS_QUERY
from govfleet.contracts.status import STATUS_WORKFLOW_ID
from govfleet.contracts.watchdog import WATCHDOG_WORKFLOW_ID
from govfleet.store import guardian as guardian_store
from govfleet.store import watchdog as watchdog_store

TRACKER_PROBE_SECONDS = 5.0  # a tracker is asked at most this often


async def tracker_connected(ctx: ApiContext, url: str) -> bool:
    checked_at, ok = ctx._tracker_probes.get(url, (float("-inf"), False))
    if time.monotonic() - checked_at < TRACKER_PROBE_SECONDS:
        return ok
    try:
        resp = await ctx.http.get(url.rstrip("/") + "/voting/governance")
        ok = resp.status_code == 200
    except httpx.HTTPError:
        ok = False
    if len(ctx._tracker_probes) > 1000:  # bounded: one entry per tracker address seen
        ctx._tracker_probes.clear()
    ctx._tracker_probes[url] = (time.monotonic(), ok)
    return ok


def declared(ctx: ApiContext) -> list[tuple[str, str]]:
    """(workflow id, kind) of every declared long-lived workflow, guardians first."""
    spec = ctx.config.spec
    out = [(g.workflow_id, "guardian") for g in spec.declared_guardians()]
    out.append((STATUS_WORKFLOW_ID, "status"))
    if spec.watchdog.enabled:
        out.append((WATCHDOG_WORKFLOW_ID, "watchdog"))
    return out


async def check(ctx: ApiContext) -> HealthOut:
    now = ctx.clock()
    spec = ctx.config.spec
    primary = ctx.guardian_id

    async def database() -> tuple[bool, dict | None, list[dict]]:
        try:
            async with ctx.pool.connection(timeout=2.0) as conn:
                check_row = await guardian_store.latest_check(conn, primary)
                incidents = await watchdog_store.open_incidents(conn)
                return True, check_row, incidents
        except Exception:
            return False, None, []

    async def status() -> dict | None:
        try:
            return (await gateway.query_guardian(ctx, STATUS_QUERY, GuardianStatusOut)).model_dump()
        except ApiError:
            return None

    wanted = declared(ctx)
    (db_ok, check_row, incidents), gstatus, seen, fleet = await asyncio.gather(
        database(),
        status(),
        asyncio.gather(*(gateway.describe_workflow(ctx, wid) for wid, _ in wanted)),
        ctx.fleet.get(ctx.config, ctx.pool),
    )
    problems: list[str] = []
    unhealthy = not db_ok
    if not db_ok:
        problems.append("the database does not answer")
    workflows: list[WorkflowHealthOut] = []
    for (wid, kind), s in zip(wanted, seen, strict=True):
        item = WorkflowHealthOut(workflow_id=wid, kind=kind, running=s.running, status=s.status)  # type: ignore[arg-type]
        if kind == "guardian":
            g = spec.guardian_by_id(wid)
            memo_url = s.memo.get("tracker_url")
            item.tracker_url = memo_url if isinstance(memo_url, str) else (g.tracker.url if g else None)
            if item.tracker_url:
                item.tracker_connected = await tracker_connected(ctx, item.tracker_url)
                if not item.tracker_connected:
                    problems.append(f"the tracker of {wid} at {item.tracker_url} does not answer")
        if s.running is False:
            what = "was never started" if s.status == "NOT_STARTED" else f"is not running ({s.status})"
            problems.append(f"{kind} workflow {wid} {what}")
            unhealthy = unhealthy or kind == "guardian"
        elif s.running is None:
            problems.append(f"Temporal did not say whether {wid} runs")
        workflows.append(item)

    last = (gstatus or {}).get("last_check") or (check_row or {}).get("timestamp")
    since = int((now - last).total_seconds()) if last else None
    monitoring = bool(gstatus and gstatus.get("monitoring_active"))
    primary_item = next((w for w in workflows if w.workflow_id == primary), None)
    tracker_ok = bool(primary_item and primary_item.tracker_connected)
    stale_after = 3 * (spec.guardian_by_id(primary) or spec.guardian).rules.monitoring_interval_normal
    if not monitoring and primary_item is not None and primary_item.running is not False:
        problems.append(f"guardian {primary} is not answering its status query")
    guarded = bool(spec.declared_guardians())  # none declared: no holder control to watch
    if guarded and since is not None and since > stale_after:
        problems.append(f"the last governance check is {since} s old (more than {stale_after} s)")
    problems += [f"open incident {i['kind']} ({i['subject']}): {i['details']}" for i in incidents]
    problems += fleet.problems  # nobody to tell, a failing channel, urgent notices pending
    if unhealthy:
        state = "unhealthy"
    elif not problems and (not guarded or (monitoring and tracker_ok and since is not None and since <= stale_after)):
        state = "healthy"
    else:
        state = "degraded"
    return HealthOut(
        status=state,
        monitoring_active=monitoring,
        voting_tracker_connected=tracker_ok,
        database="connected" if db_ok else "disconnected",
        last_governance_check=last,
        seconds_since_last_check=max(0, since) if since is not None else None,
        workflows=workflows,
        incidents=[IncidentOut.model_validate(i) for i in incidents],
        problems=problems,
        warnings=fleet.warnings,
        throwaway_environment=fleet.throwaway_environment,
        notifications=[NotificationStateOut.model_validate(n.model_dump()) for n in fleet.notifications],
    )
