"""Governance-run activities: record the run, validate its grant, charge it within the daily
budget (govfleet/store/runs.py), run an entrypoint (HEARTBEAT, BRIEF, HTTP, or any other word
handed to the agent gateway), mark it finished. HTTP and the gateway send `<schedule id>:<scheduled
time>` as the idempotency key.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import openclaw_gateway as openclaw
from govfleet.contracts.governance_run import (
    BEGIN_ACTIVITY,
    CHARGE_ACTIVITY,
    ENTRYPOINT_BRIEF_ACTIVITY,
    ENTRYPOINT_GATEWAY_ACTIVITY,
    ENTRYPOINT_HEARTBEAT_ACTIVITY,
    ENTRYPOINT_HTTP_ACTIVITY,
    FINISH_ACTIVITY,
    BeginRunInput,
    BeginRunResult,
    ChargeRunInput,
    ChargeRunResult,
    EntrypointInput,
    EntrypointResult,
    FinishRunInput,
    FinishRunResult,
)
from govfleet.db import SYSTEM_TENANT_ID
from govfleet.domain.billing import ChargeConflict
from govfleet.domain.governance_run import AlertLine, BriefFacts, GuardianSnapshot, HeartbeatSnapshot, render_brief
from govfleet.domain.heartbeat import HeartbeatThresholds, evaluate, heartbeat_state
from govfleet.domain.secret_ref import SECRET_REF, resolve_secret
from govfleet.store import heartbeat as heartbeat_store
from govfleet.store import ledger, runs
from govfleet.store import status as status_store
from workers.resources import Resources

BRIEF_ALERTS = 5
HTTP_BRIEF_LIMIT = 20_000
# The header the OpenClaw agent's outbound calls carry the tenant's tool allowlist in (comma-separated).
TOOL_ALLOWLIST_HEADER = "x-cogni-tool-allowlist"
OPENCLAW_MARGIN_SECONDS = 2.0
OPENCLAW_DEFAULT_SECONDS = 120.0


def package_version() -> str:
    try:
        return importlib.metadata.version("governance-fleet")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class GovernanceRunActivities:
    def __init__(self, resources: Resources):
        self._resources = resources

    # --- lifecycle -------------------------------------------------------------------------

    @activity.defn(name=BEGIN_ACTIVITY)
    async def begin(self, inp: BeginRunInput) -> BeginRunResult:
        """Record the run (once) and validate the governance grant for its entrypoint."""
        return await runs.begin_run(self._resources.pool, inp)

    @activity.defn(name=CHARGE_ACTIVITY)
    async def charge(self, inp: ChargeRunInput) -> ChargeRunResult:
        """Charge the run at 1x within the daily budget, once (ledger reference = run id)."""
        try:
            return await runs.charge_run(self._resources.pool, inp)
        except (ValueError, ChargeConflict) as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None

    @activity.defn(name=FINISH_ACTIVITY)
    async def finish(self, inp: FinishRunInput) -> FinishRunResult:
        if inp.status not in ("success", "error", "refused"):
            raise ApplicationError(f"status must be success, error or refused, got {inp.status!r}", non_retryable=True)
        updated_at = await runs.finish_run(self._resources.pool, inp.run_id, inp.status, inp.reason, inp.brief)
        if updated_at is None:
            raise ApplicationError(f"governance run {inp.run_id!r} was never recorded", non_retryable=True)
        return FinishRunResult(last_activity=updated_at)

    # --- entrypoints -----------------------------------------------------------------------

    @activity.defn(name=ENTRYPOINT_HEARTBEAT_ACTIVITY)
    async def entrypoint_heartbeat(self, inp: EntrypointInput) -> EntrypointResult:
        """The heartbeat's checks, as a run: a short markdown report (no heartbeat event)."""
        hb = self._resources.config.spec.governance.heartbeat
        thresholds = HeartbeatThresholds(
            low_balance_threshold_credits=hb.low_balance_threshold_credits,
            grant_expiry_warning_hours=hb.grant_expiry_warning_hours,
        )
        ev = evaluate(await heartbeat_store.gather_facts(self._resources.pool), thresholds, datetime.now(UTC))
        lines = [f"# {inp.title}", "", f"Heartbeat checks: **{ev.status}**", ""]
        lines += [f"- {c.name}: {'ok' if c.ok else 'FAILED'} — {c.detail}" for c in ev.checks]
        if ev.status == "failed":
            raise ApplicationError(
                "heartbeat checks failed: " + "; ".join(c.detail for c in ev.checks if not c.ok), non_retryable=True
            )
        return EntrypointResult(brief="\n".join(lines) + "\n", detail=ev.status)

    @activity.defn(name=ENTRYPOINT_BRIEF_ACTIVITY)
    async def entrypoint_brief(self, inp: EntrypointInput) -> EntrypointResult:
        """Guardian status, heartbeat, balance and recent alerts, as a markdown brief."""
        cfg = self._resources.config.spec
        pool = self._resources.pool
        rows = await status_store.brief_rows(pool, alerts=BRIEF_ALERTS)
        now, ev, hb = rows.now, rows.last_check, rows.heartbeat
        hb_spec = cfg.governance.heartbeat
        facts = BriefFacts(
            dao_name=cfg.cogni_dao.name,
            title=inp.title,
            generated_at=now,
            balance=rows.balance,
            budget_per_day=inp.budget_credits_per_day,
            spent_today=await ledger.spent_today(pool),
            guardian=GuardianSnapshot(
                level=ev["threshold_level"] if ev else None,
                holder_control=str(ev["holder_control"]) if ev else None,
                last_check_at=ev["timestamp"] if ev else None,
                active_pauses=[f"{p['scope']} ({p['pause_reason']})" for p in rows.open_pauses],
            ),
            heartbeat=HeartbeatSnapshot(
                at=hb["time"] if hb else None,
                status=hb["status"] if hb else None,
                state=heartbeat_state(
                    hb["time"] if hb else None,
                    interval=timedelta(minutes=hb_spec.interval_minutes),
                    grace=timedelta(seconds=hb_spec.grace_seconds),
                    now=now,
                ),
            ),
            alerts=[
                AlertLine(at=a["timestamp"], alert_type=a["alert_type"], message=a["message"], resolved=a["resolved"])
                for a in rows.alerts
            ],
        )
        return EntrypointResult(brief=render_brief(facts), detail="brief generated")

    @activity.defn(name=ENTRYPOINT_HTTP_ACTIVITY)
    async def entrypoint_http(self, inp: EntrypointInput) -> EntrypointResult:
        """POST the run to the charter's agent; the agent deduplicates on the idempotency key."""
        if not inp.agent_url:
            raise ApplicationError(f"charter {inp.charter!r} has entrypoint HTTP but no agent_url", non_retryable=True)
        return await self._post_agent(inp.agent_url, self._run_body(inp), {}, who="agent")

    @activity.defn(name=ENTRYPOINT_GATEWAY_ACTIVITY)
    async def entrypoint_gateway(self, inp: EntrypointInput) -> EntrypointResult:
        """Hand a free-word entrypoint to the agent gateway, as the original system does. In the
        gateway's protocol: `openclaw`, OpenClaw's WebSocket protocol (activities/openclaw_gateway.py,
        the word as the agent's message); plain HTTP, the HTTP entrypoint's request plus
        `entrypoint` and `message` (both the word), with the gateway's bearer token when one is
        configured."""
        url = inp.agent_url
        if url and SECRET_REF.match(url):
            url = resolve_secret(url, os.environ)
            if not url:
                raise ApplicationError(
                    f"the agent gateway URL {inp.agent_url} is not set in the worker's environment", non_retryable=True
                )
        if not url or not inp.entrypoint:
            raise ApplicationError(
                f"charter {inp.charter!r}: no agent gateway configured for entrypoint {inp.entrypoint!r}",
                non_retryable=True,
            )
        token = None
        if inp.agent_token:
            token = resolve_secret(inp.agent_token, os.environ)
            if not token:
                raise ApplicationError(
                    f"the agent gateway token {inp.agent_token} is not set in the worker's environment",
                    non_retryable=True,
                )
        if inp.agent_protocol == "openclaw":
            if not token:
                raise ApplicationError(f"the OpenClaw gateway {url} needs a token", non_retryable=True)
            return await self._openclaw(url, token, inp)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {**self._run_body(inp), "entrypoint": inp.entrypoint, "message": inp.entrypoint}
        return await self._post_agent(url, body, headers, who="agent gateway")

    @staticmethod
    async def _openclaw(url: str, token: str, inp: EntrypointInput) -> EntrypointResult:
        """One agent call in OpenClaw's protocol, in its own session (the run's), with the run's
        idempotency key and the tenant's tool allowlist among the headers the agent's outbound
        calls carry; it ends a little before the activity's own timeout, so a slow gateway is
        reported as such."""
        try:
            budget = activity.info().start_to_close_timeout
        except RuntimeError:  # called outside a worker (tests)
            budget = None
        seconds = max(1.0, budget.total_seconds() - OPENCLAW_MARGIN_SECONDS) if budget else OPENCLAW_DEFAULT_SECONDS
        call = openclaw.AgentCall(
            url=url,
            token=token,
            message=inp.entrypoint or "",
            session_key=f"agent:main:cogni_system:{inp.run_id}",
            idempotency_key=inp.idempotency_key,
            outbound_headers={"x-cogni-run-id": inp.run_id, TOOL_ALLOWLIST_HEADER: ",".join(inp.tool_allowlist)},
            timeout_seconds=seconds,
            client_version=package_version(),
        )
        try:
            reply = await openclaw.run_agent(call)
        except openclaw.GatewayRefused as exc:
            raise ApplicationError(f"agent gateway {url}: {exc}", non_retryable=True) from None
        except openclaw.GatewayFailed as exc:
            raise ApplicationError(f"agent gateway {url}: {exc}") from None
        return EntrypointResult(
            brief=reply.text[:HTTP_BRIEF_LIMIT], detail=f"agent gateway answered (run {reply.run_id or '?'})"
        )

    @staticmethod
    def _run_body(inp: EntrypointInput) -> dict:
        """What an agent (HTTP entrypoint) or the gateway gets for one run, the tenant's tool
        allowlist included: the agent may use those tools and no other (docs/heartbeat.md,
        "Tool allowlist")."""
        return {
            "idempotency_key": inp.idempotency_key,
            "run_id": inp.run_id,
            "schedule_id": inp.schedule_id,
            "charter": inp.charter,
            "title": inp.title,
            "scheduled_time": inp.scheduled_at.isoformat(),
            "tenant_id": SYSTEM_TENANT_ID,
            "tool_allowlist": list(inp.tool_allowlist),
        }

    async def _post_agent(self, url: str, body: dict, headers: dict, *, who: str) -> EntrypointResult:
        """POST one run; 5xx, 408 and 429 are retried, other 4xx are not; the brief is the
        answer's `brief` field, else its body (at most HTTP_BRIEF_LIMIT characters)."""
        key = body["idempotency_key"]
        try:
            resp = await self._resources.http.post(url, json=body, headers={"Idempotency-Key": key, **headers})
        except Exception as exc:
            raise ApplicationError(f"{who} {url} unreachable: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            retryable = resp.status_code >= 500 or resp.status_code in (408, 429)
            raise ApplicationError(
                f"{who} {url} answered {resp.status_code}: {resp.text[:200]}", non_retryable=not retryable
            )
        brief: str | None = None
        if "json" in resp.headers.get("content-type", ""):
            try:
                data = resp.json()
                brief = data.get("brief") if isinstance(data, dict) else None
                if brief is None:
                    brief = "```json\n" + json.dumps(data, indent=2)[:HTTP_BRIEF_LIMIT] + "\n```\n"
            except ValueError:
                brief = None
        if brief is None:
            brief = resp.text[:HTTP_BRIEF_LIMIT]
        return EntrypointResult(brief=str(brief)[:HTTP_BRIEF_LIMIT], detail=f"{who} answered {resp.status_code}")
