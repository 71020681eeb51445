"""Governance-run activities: record the run, validate its grant, charge it within the daily
budget, run an entrypoint (HEARTBEAT, BRIEF, HTTP), mark it finished.

Idempotency: the run id (the workflow id, `<schedule id>-<scheduled time>` for schedule-started
runs) is the primary key of `governance_runs` and the ledger reference of its charge, so a
retried activity neither inserts a second row nor charges twice. The HTTP entrypoint sends
`<schedule id>:<scheduled time>` as its idempotency key.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from temporalio import activity
from temporalio.exceptions import ApplicationError

from govfleet.contracts.governance_run import (
    BEGIN_ACTIVITY,
    CHARGE_ACTIVITY,
    ENTRYPOINT_BRIEF_ACTIVITY,
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
from govfleet.db import GOVERNANCE_GRANT_ID, SYSTEM_PRINCIPAL_USER_ID, SYSTEM_TENANT_ID, tenant_scope
from govfleet.domain.governance_run import (
    AlertLine,
    BriefFacts,
    GrantFacts,
    GuardianSnapshot,
    HeartbeatSnapshot,
    budget_refusal,
    grant_refusal,
    render_brief,
)
from govfleet.domain.heartbeat import HeartbeatThresholds, evaluate, heartbeat_state
from workers.resources import Resources

# Serialises "budget check + charge" across every worker process (pg advisory lock key).
BUDGET_LOCK_KEY = 0x6F76_7275_6E00  # "govrun"
BRIEF_ALERTS = 5
HTTP_BRIEF_LIMIT = 20_000


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


async def _grant(conn) -> GrantFacts:
    cur = await conn.execute(
        "SELECT billing_account_id, scopes, expires_at, revoked_at FROM execution_grants WHERE id = %s",
        (GOVERNANCE_GRANT_ID,))
    row = await cur.fetchone()
    if row is None:
        return GrantFacts(grant_id=GOVERNANCE_GRANT_ID, exists=False)
    return GrantFacts(grant_id=GOVERNANCE_GRANT_ID, exists=True, billing_account_id=row["billing_account_id"],
                      scopes=list(row["scopes"] or []), expires_at=row["expires_at"], revoked_at=row["revoked_at"])


class GovernanceRunActivities:
    def __init__(self, resources: Resources):
        self._resources = resources

    # --- lifecycle -------------------------------------------------------------------------

    @activity.defn(name=BEGIN_ACTIVITY)
    async def begin(self, inp: BeginRunInput) -> BeginRunResult:
        """Record the run (once) and validate the governance grant for its entrypoint."""
        pool = self._resources.pool
        async with pool.connection() as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO governance_runs (id, owner_user_id, title, schedule_id, charter, entrypoint, scheduled_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (inp.run_id, SYSTEM_PRINCIPAL_USER_ID, inp.title, inp.schedule_id, inp.charter, inp.entrypoint,
                     inp.scheduled_at))
                cur = await conn.execute("SELECT status, reason, started_at, updated_at, now() AS now"
                                         " FROM governance_runs WHERE id = %s FOR UPDATE", (inp.run_id,))
                row = await cur.fetchone()
                if row["status"] != "running":  # a retry after the run was refused or finished
                    return BeginRunResult(started_at=row["started_at"], last_activity=row["updated_at"],
                                          status=row["status"], reason=row["reason"])
            # The grant is read the way the tenant sees it (RLS, application role).
            async with tenant_scope(conn, SYSTEM_PRINCIPAL_USER_ID):
                grant = await _grant(conn)
            refusal = grant_refusal(grant, inp.entrypoint, _utc(row["now"]), tenant_id=SYSTEM_TENANT_ID)
            if refusal is None:
                return BeginRunResult(started_at=row["started_at"], last_activity=row["updated_at"], status="running")
            async with conn.transaction():
                cur = await conn.execute(
                    "UPDATE governance_runs SET status = 'refused', reason = %s, updated_at = now()"
                    " WHERE id = %s AND status = 'running' RETURNING updated_at", (refusal, inp.run_id))
                done = await cur.fetchone()
        return BeginRunResult(started_at=row["started_at"], last_activity=done["updated_at"] if done else row["updated_at"],
                              status="refused", reason=refusal)

    @activity.defn(name=CHARGE_ACTIVITY)
    async def charge(self, inp: ChargeRunInput) -> ChargeRunResult:
        """Charge the run at 1x within the daily budget, once (ledger reference = run id)."""
        from govfleet import ledger

        if inp.amount == 0:
            return ChargeRunResult(charged=0)
        pool = self._resources.pool
        async with pool.connection() as lock_conn:
            async with lock_conn.transaction():
                # Budget check and charge as one critical section across all workers.
                await lock_conn.execute("SELECT pg_advisory_xact_lock(%s)", (BUDGET_LOCK_KEY,))
                cur = await lock_conn.execute(
                    "SELECT 1 FROM credit_ledger WHERE billing_account_id = %s AND reason = %s AND reference = %s",
                    (SYSTEM_TENANT_ID, "governance_run", inp.run_id))
                already = await cur.fetchone() is not None
                if not already:
                    spent = await ledger.spent_today(pool)
                    refusal = budget_refusal(spent, inp.amount, inp.budget_credits_per_day)
                    if refusal:
                        return ChargeRunResult(refused_reason=refusal)
                try:
                    charged = await ledger.charge_system_tenant(
                        pool, amount=inp.amount, reference=inp.run_id, reason="governance_run",
                        metadata={"schedule_id": inp.schedule_id})
                except ledger.InsufficientCredits as exc:
                    return ChargeRunResult(refused_reason=str(exc))
                except (ValueError, ledger.ChargeConflict) as exc:
                    raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
        async with pool.connection() as conn:
            await conn.execute("UPDATE governance_runs SET credits_charged = %s, updated_at = now() WHERE id = %s",
                               (charged.charged, inp.run_id))
        return ChargeRunResult(charged=charged.charged, balance_after=charged.balance_after, replay=charged.replay)

    @activity.defn(name=FINISH_ACTIVITY)
    async def finish(self, inp: FinishRunInput) -> FinishRunResult:
        if inp.status not in ("success", "error", "refused"):
            raise ApplicationError(f"status must be success, error or refused, got {inp.status!r}", non_retryable=True)
        async with self._resources.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE governance_runs SET status = %s, reason = %s, brief = COALESCE(%s, brief), updated_at = now()"
                " WHERE id = %s RETURNING updated_at", (inp.status, inp.reason, inp.brief, inp.run_id))
            row = await cur.fetchone()
        if row is None:
            raise ApplicationError(f"governance run {inp.run_id!r} was never recorded", non_retryable=True)
        return FinishRunResult(last_activity=row["updated_at"])

    # --- entrypoints -----------------------------------------------------------------------

    @activity.defn(name=ENTRYPOINT_HEARTBEAT_ACTIVITY)
    async def entrypoint_heartbeat(self, inp: EntrypointInput) -> EntrypointResult:
        """The heartbeat's checks, as a run: a short markdown report (no heartbeat event)."""
        from activities.heartbeat import gather_facts

        hb = self._resources.config.spec.governance.heartbeat
        thresholds = HeartbeatThresholds(low_balance_threshold_credits=hb.low_balance_threshold_credits,
                                         grant_expiry_warning_hours=hb.grant_expiry_warning_hours)
        ev = evaluate(await gather_facts(self._resources), thresholds, datetime.now(timezone.utc))
        lines = [f"# {inp.title}", "", f"Heartbeat checks: **{ev.status}**", ""]
        lines += [f"- {c.name}: {'ok' if c.ok else 'FAILED'} — {c.detail}" for c in ev.checks]
        if ev.status == "failed":
            raise ApplicationError("heartbeat checks failed: " + "; ".join(c.detail for c in ev.checks if not c.ok),
                                   non_retryable=True)
        return EntrypointResult(brief="\n".join(lines) + "\n", detail=ev.status)

    @activity.defn(name=ENTRYPOINT_BRIEF_ACTIVITY)
    async def entrypoint_brief(self, inp: EntrypointInput) -> EntrypointResult:
        """Guardian status, heartbeat, balance and recent alerts, as a markdown brief."""
        from govfleet import ledger

        cfg = self._resources.config.spec
        pool = self._resources.pool
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT now() AS now")
            now = (await cur.fetchone())["now"]
            cur = await conn.execute(
                "SELECT timestamp, threshold_level, holder_control FROM governance_events"
                " WHERE holder_control IS NOT NULL ORDER BY timestamp DESC LIMIT 1")
            ev = await cur.fetchone()
            cur = await conn.execute(
                "SELECT scope, pause_reason FROM system_pauses WHERE resumed_at IS NULL ORDER BY paused_at")
            pauses = await cur.fetchall()
            cur = await conn.execute(
                "SELECT timestamp, alert_type, message, resolved FROM governance_alerts"
                " ORDER BY timestamp DESC LIMIT %s", (BRIEF_ALERTS,))
            alerts = await cur.fetchall()
            cur = await conn.execute("SELECT time, status FROM heartbeat_events ORDER BY time DESC LIMIT 1")
            hb = await cur.fetchone()
            cur = await conn.execute("SELECT balance_credits FROM billing_accounts WHERE id = %s", (SYSTEM_TENANT_ID,))
            acct = await cur.fetchone()
            await conn.rollback()
        hb_spec = cfg.governance.heartbeat
        facts = BriefFacts(
            dao_name=cfg.cogni_dao.name,
            title=inp.title,
            generated_at=now,
            balance=int(acct["balance_credits"]) if acct else None,
            budget_per_day=inp.budget_credits_per_day,
            spent_today=await ledger.spent_today(pool),
            guardian=GuardianSnapshot(
                level=ev["threshold_level"] if ev else None,
                holder_control=str(ev["holder_control"]) if ev else None,
                last_check_at=ev["timestamp"] if ev else None,
                active_pauses=[f"{p['scope']} ({p['pause_reason']})" for p in pauses],
            ),
            heartbeat=HeartbeatSnapshot(
                at=hb["time"] if hb else None, status=hb["status"] if hb else None,
                state=heartbeat_state(hb["time"] if hb else None, interval=timedelta(minutes=hb_spec.interval_minutes),
                                      grace=timedelta(seconds=hb_spec.grace_seconds), now=now),
            ),
            alerts=[AlertLine(at=a["timestamp"], alert_type=a["alert_type"], message=a["message"],
                              resolved=a["resolved"]) for a in alerts],
        )
        return EntrypointResult(brief=render_brief(facts), detail="brief generated")

    @activity.defn(name=ENTRYPOINT_HTTP_ACTIVITY)
    async def entrypoint_http(self, inp: EntrypointInput) -> EntrypointResult:
        """POST the run to the charter's agent; the agent deduplicates on the idempotency key."""
        if not inp.agent_url:
            raise ApplicationError(f"charter {inp.charter!r} has entrypoint HTTP but no agent_url", non_retryable=True)
        body = {
            "idempotency_key": inp.idempotency_key,
            "run_id": inp.run_id,
            "schedule_id": inp.schedule_id,
            "charter": inp.charter,
            "title": inp.title,
            "scheduled_time": inp.scheduled_at.isoformat(),
        }
        try:
            resp = await self._resources.http.post(
                inp.agent_url, json=body, headers={"Idempotency-Key": inp.idempotency_key})
        except Exception as exc:
            raise ApplicationError(f"agent {inp.agent_url} unreachable: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            retryable = resp.status_code >= 500 or resp.status_code in (408, 429)
            raise ApplicationError(f"agent {inp.agent_url} answered {resp.status_code}: {resp.text[:200]}",
                                   non_retryable=not retryable)
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
        return EntrypointResult(brief=str(brief)[:HTTP_BRIEF_LIMIT], detail=f"agent answered {resp.status_code}")
