"""The governance schedules as Temporal has them, for the status surface (docs/status.md,
"Upcoming runs").

Only what Temporal will actually run on our behalf counts: a schedule is shown when it exists in
Temporal and its memo names our owner (the reconciler wrote it). A charter added to the
repo-spec but not reconciled yet does not exist there, a charter whose id is taken by a foreign
schedule is not ours, and a cron edited in the file but not reconciled is still Temporal's old
one: none of them is shown as if it would run. Each entry carries Temporal's own next action
times (`ScheduleHandle.describe()`), which follow daylight-saving changes the way the server
fires them, and the schedule's pause state.

Listed, as the original system's status page lists them: the governance runs, the heartbeat
when it runs on a cron (the original's `HEARTBEAT` entry: "Heartbeat"; an interval heartbeat is
no charter and is not listed), and the original's ledger ingestion ("Ledger Ingest").

The ids come from the repo-spec (`desired_schedules`, describe is authoritative) and from listing
the schedules whose memo names our owner (a schedule removed from the file but still in Temporal
keeps firing until the next reconcile, so it is shown).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from temporalio.client import Client, ScheduleDescription

from govfleet.contracts.governance_run import GOVERNANCE_RUN_WORKFLOW
from govfleet.contracts.heartbeat import HEARTBEAT_WORKFLOW
from govfleet.contracts.ledger_ingest import COLLECT_EPOCH_WORKFLOW, LEDGER_INGEST_CHARTER
from govfleet.domain.status import TEMPORAL, ScheduleEntry, display_name
from govfleet.repo_spec import RepoSpec
from schedules.desired import default_owner, desired_schedules
from schedules.reconciler import DESCRIBE_CONCURRENCY, actual_from_description, describe_or_none, listed_candidate_ids


@dataclass
class ObservedSchedules:
    charters: list[ScheduleEntry] = field(default_factory=list)  # listed schedules, file order then id
    heartbeat_paused: bool = False
    not_ours: list[str] = field(default_factory=list)  # declared ids held by another owner (blocked)


async def observe_schedules(client: Client, spec: RepoSpec, task_queue: str) -> ObservedSchedules:
    """Describe every schedule we own in Temporal. Raises when Temporal does not answer (the
    caller keeps what it had, or falls back to the cron arithmetic, marked)."""
    owner = default_owner(spec)
    declared = desired_schedules(spec, task_queue)
    order = {d.schedule_id: i for i, d in enumerate(declared)}
    crons = {d.schedule_id: (d.cron, d.timezone) for d in declared}
    ids = set(order) | await listed_candidate_ids(client, owner)
    sem = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def one(sid: str) -> tuple[str, ScheduleDescription | None]:
        async with sem:
            return sid, await describe_or_none(client, sid)

    out = ObservedSchedules()
    described = await asyncio.gather(*(one(i) for i in ids))
    for sid, desc in sorted(described, key=lambda x: (order.get(x[0], 1 << 30), x[0])):
        if desc is None:
            continue  # declared but not (yet) in Temporal: it will not run
        actual = await actual_from_description(client, desc)
        if actual.owner != owner:
            if sid in order:
                out.not_ours.append(sid)
            continue
        stored = actual.stored or {}
        workflow = stored.get("workflow") or actual.observed.get("workflow")
        if workflow == HEARTBEAT_WORKFLOW:
            out.heartbeat_paused = actual.paused
            charter = "HEARTBEAT"
        elif workflow == COLLECT_EPOCH_WORKFLOW:
            charter = LEDGER_INGEST_CHARTER
        elif workflow == GOVERNANCE_RUN_WORKFLOW:
            args = stored.get("args")
            charter = str((args.get("charter") if isinstance(args, dict) else None) or sid.split(":", 1)[-1])
        else:
            continue
        cron, tz = stored.get("cron"), stored.get("timezone")
        if not isinstance(cron, str):
            cron, tz = crons.get(sid, (None, None))
        if not cron:
            continue  # not a cron schedule (an interval heartbeat): not listed
        out.charters.append(
            ScheduleEntry(
                charter=charter,
                cron=cron,
                timezone=tz or "UTC",
                name=display_name(charter),
                paused=actual.paused,
                schedule_id=sid,
                source=TEMPORAL,
                next_times=list(desc.info.next_action_times),
            )
        )
    return out
