"""The schedules a repo-spec declares, as `DesiredSchedule`s (pure: no I/O, no Temporal).

The heartbeat first (`governance:heartbeat`: every `governance.heartbeat.interval_minutes`, or
on the cron of a `HEARTBEAT` entry in `governance.schedules`), then one
`governance:<charter lowercased>` per other `governance.schedules[]` entry, in file order. Each
carries the workflow type and input its runs start with; its canonical form is what the spec
hash covers (see docs/schedules.md). A charter entry whose entrypoint is not built in is handed
to the agent gateway (`governance.agent_gateway`, else the one OPENCLAW_GATEWAY_URL names: its
URL, token reference and protocol travel in the run's input). The original system's
`LEDGER_INGEST` starts the original's `CollectEpochWorkflow` on its `ledger-tasks` queue, with
the original's arguments (govfleet/contracts/ledger_ingest.py).
"""

from __future__ import annotations

from govfleet.contracts.governance_run import GOVERNANCE_RUN_WORKFLOW, GovernanceRunInput
from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID, HEARTBEAT_WORKFLOW, HeartbeatInput
from govfleet.contracts.ledger_ingest import (
    COLLECT_EPOCH_WORKFLOW,
    LEDGER_TASK_QUEUE,
    ActivitySourceArgs,
    LedgerIngestArgs,
    LedgerIngestRunV1,
)
from govfleet.domain.schedule_spec import DesiredSchedule, effective_catchup
from govfleet.repo_spec import RepoSpec, ScheduleSpec

# GovernanceRunInput fields only gateway runs carry (left out of every other run's input and hash);
# `agent_protocol` only when it is not plain HTTP, so HTTP gateway runs keep their hash.
GATEWAY_FIELDS = ("agent_token", "agent_timeout_seconds", "agent_protocol")
# HeartbeatInput fields left out of the schedule's args (and hash) while at their defaults, so a
# heartbeat schedule reconciled before they existed is not changed by their arrival.
GRANT_RENEWAL_FIELDS = ("grant_auto_renew", "grant_renew_within_days", "grant_renew_for_days")
HEARTBEAT_EXECUTION_TIMEOUT_SECONDS = 600


def _defaults_of(model, fields: tuple[str, ...]) -> set[str]:
    return {f for f in fields if getattr(model, f) == type(model).model_fields[f].default}


GOVERNANCE_RUN_EXECUTION_TIMEOUT_SECONDS = 3600


def default_owner(spec: RepoSpec) -> str:
    """Who owns the schedules reconciled from this repo-spec (stored in their memos)."""
    return f"governance-fleet:{spec.cogni_dao.name}"


def _ledger_ingest_schedule(s: ScheduleSpec, spec: RepoSpec, catchup: int) -> DesiredSchedule:
    """The original's ledger ingestion: its workflow, its queue, its arguments (the workflow
    reads `input`: the file's ledger section, in the original's camelCase)."""
    ledger = spec.activity_ledger
    if ledger is None or spec.node_id is None or spec.scope_id is None or spec.scope_key is None:
        raise ValueError(f"charter {s.charter!r} needs activity_ledger, node_id, scope_id and scope_key")
    run = LedgerIngestRunV1(
        scopeId=spec.scope_id,
        scopeKey=spec.scope_key,
        epochLengthDays=ledger.epoch_length_days,
        activitySources={
            name: ActivitySourceArgs(
                attributionPipeline=src.attribution_pipeline,
                sourceRefs=list(src.source_refs),
                excludedLogins=list(src.excluded_logins) if src.excluded_logins is not None else None,
            )
            for name, src in ledger.activity_sources.items()
        },
        baseIssuanceCredits=str(int(ledger.pool_config.base_issuance_credits)) if ledger.pool_config else "0",
        approvers=list(ledger.approvers) or None,
    )
    args = LedgerIngestArgs(
        nodeId=spec.node_id, input=run, triggerRef=s.schedule_id, temporalScheduleId=s.schedule_id
    ).model_dump(mode="json")
    # Absent optional fields are left out of the input, as the original leaves them out.
    args["input"] = run.model_dump(mode="json", exclude_none=True)
    return DesiredSchedule(
        schedule_id=s.schedule_id,
        workflow=COLLECT_EPOCH_WORKFLOW,
        args=args,
        task_queue=LEDGER_TASK_QUEUE,
        cron=s.cron,
        timezone=s.timezone,
        catchup_window_seconds=catchup,
        execution_timeout_seconds=None,  # the original sets none: an epoch takes what it takes
        summary=f'cron "{s.cron}" {s.timezone} · {s.entrypoint} → {COLLECT_EPOCH_WORKFLOW} on {LEDGER_TASK_QUEUE}',
        legacy_ids=[s.legacy_schedule_id] if s.legacy_schedule_id else [],
    )


def _charter_schedule(s: ScheduleSpec, spec: RepoSpec, task_queue: str, catchup: int) -> DesiredSchedule:
    if s.is_ledger_ingest:
        return _ledger_ingest_schedule(s, spec, catchup)
    tenant = spec.governance.system_tenant
    gateway = spec.governance.gateway
    extra: dict = {}
    if s.uses_gateway:
        # Only set for gateway runs, so the input (and hash) of every other run stays as it was.
        extra = dict(agent_token=gateway.token, agent_timeout_seconds=gateway.timeout_seconds)
        if gateway.effective_protocol != "http":
            extra["agent_protocol"] = gateway.effective_protocol
    run = GovernanceRunInput(
        schedule_id=s.schedule_id,
        charter=s.charter,
        entrypoint=s.entrypoint,
        timezone=s.timezone,
        agent_url=gateway.url if s.uses_gateway else s.agent_url,
        **extra,
        credits_per_run=tenant.credits_per_run if s.credits_per_run is None else s.credits_per_run,
        budget_credits_per_day=tenant.budget_credits_per_day,
    )
    return DesiredSchedule(
        schedule_id=s.schedule_id,
        workflow=GOVERNANCE_RUN_WORKFLOW,
        args=run.model_dump(mode="json", exclude={"scheduled_at", *(k for k in GATEWAY_FIELDS if k not in extra)}),
        task_queue=task_queue,
        cron=s.cron,
        timezone=s.timezone,
        catchup_window_seconds=catchup,
        execution_timeout_seconds=GOVERNANCE_RUN_EXECUTION_TIMEOUT_SECONDS,
        summary=f'cron "{s.cron}" {s.timezone} · {s.entrypoint}'
        + (f" via gateway ({gateway.effective_protocol})" if s.uses_gateway else ""),
        legacy_ids=[s.legacy_schedule_id] if s.legacy_schedule_id else [],
    )


def desired_schedules(spec: RepoSpec, task_queue: str) -> list[DesiredSchedule]:
    """Every schedule repo-spec declares: the heartbeat first, then the charters in file order."""
    if not task_queue:
        raise ValueError("task_queue must not be empty")
    g = spec.governance
    catchup = effective_catchup(g.catchup_window_seconds)
    hb = g.heartbeat
    entry = g.heartbeat_entry
    cadence: dict = (
        dict(interval_seconds=hb.interval_minutes * 60)
        if entry is None
        else dict(cron=entry.cron, timezone=entry.timezone)
    )
    heartbeat = DesiredSchedule(
        schedule_id=HEARTBEAT_SCHEDULE_ID,
        workflow=HEARTBEAT_WORKFLOW,
        args=HeartbeatInput(
            interval_minutes=hb.interval_minutes,
            grace_seconds=hb.grace_seconds,
            low_balance_threshold_credits=hb.low_balance_threshold_credits,
            grant_expiry_warning_hours=hb.grant_expiry_warning_hours,
            sink_url=hb.sink_url,
            dao_name=spec.cogni_dao.name,
            grant_auto_renew=hb.grant_auto_renew,
            grant_renew_within_days=hb.grant_renew_within_days,
            grant_renew_for_days=hb.grant_renew_for_days,
        ).model_dump(mode="json", exclude=_defaults_of(hb, GRANT_RENEWAL_FIELDS)),
        task_queue=task_queue,
        **cadence,
        catchup_window_seconds=catchup,
        execution_timeout_seconds=HEARTBEAT_EXECUTION_TIMEOUT_SECONDS,
        summary=(
            f"every {hb.interval_minutes} min · HEARTBEAT"
            if entry is None
            else f'cron "{entry.cron}" {entry.timezone} · HEARTBEAT'
        ),
    )
    return [heartbeat, *(_charter_schedule(s, spec, task_queue, catchup) for s in spec.charter_schedules)]
