"""Temporal Schedules reconciled from `.cogni/repo-spec.yaml`.

    desired = desired_schedules(spec)          (pure; the whole file was validated on load)
    actual  = read_actual(client, ...)         (describe every declared id; list for owned extras)
    plan    = make_plan(desired, actual)       (pure: create / update / delete / unchanged / blocked,
                                                adopt with --adopt, migrate from an old id)
    apply_plan(client, plan, desired)          (writes only for create / update / delete / adopt / migrate)

Ownership: a schedule belongs to this repo when its memo (set at create) or its action's
workflow memo (rewritten on every update) names our owner. The action memo also carries the
spec hash and the canonical spec, so a cron-only or timezone-only edit is drift, and every
update refreshes the hash in the same write as the spec (they can never disagree).

Safety:
- nothing is written unless the plan says so: a second run is all `unchanged` with zero writes;
- an update keeps `state` (an operator's pause and note) from the current description;
- schedules that are not ours are never written, also not when they sit on a declared id
  (`blocked`, reported, non-zero exit) — except, with `adopt`, one without any govfleet memo
  (the original system's), which is recreated with our spec and memo, its state kept (`_adopt`:
  the schedule-level memo, which listing finds, can only be written by a create);
- a schedule of ours under an old id (the charter's case kept) is migrated: old paused, new
  created, the gap backfilled, old deleted (`_migrate`), so no instant fires twice;
- two reconcilers at once: create races end in "already exists", which is re-read and
  re-planned; updates re-check ownership and hash on the fresh description inside the update
  callback and skip when the other reconciler already wrote the same spec; deletes
  `describe()` first and treat "not found" as done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio.api.enums.v1 import ScheduleOverlapPolicy as ProtoOverlap
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from govfleet.domain.schedule_spec import (
    MEMO_KEY,
    ActualSchedule,
    DesiredSchedule,
    Plan,
    PlanItem,
    make_plan,
    plan_item,
    render_plan,
)
from govfleet.logging import get_logger
from govfleet.repo_spec import RepoSpec
from schedules.desired import default_owner, desired_schedules

log = get_logger("govfleet.reconcile")

DESCRIBE_CONCURRENCY = 16
WRITE_CONCURRENCY = 8
CREATED_NOTE = "created by govfleet reconcile from .cogni/repo-spec.yaml"


class ReconcileError(RuntimeError):
    """The reconcile could not be completed; the message says which schedules and why."""


class GatewayMissing(ValueError):
    """Charters hand their entrypoint to the agent gateway, and repo-spec configures none."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


# --- building Temporal objects --------------------------------------------------------------


def schedule_memo(d: DesiredSchedule, owner: str) -> dict:
    return {MEMO_KEY: {"owner": owner, "spec_hash": d.spec_hash, "spec": d.canonical()}}


def build_schedule(d: DesiredSchedule, owner: str, state: ScheduleState | None = None) -> Schedule:
    if d.cron is not None:
        spec = ScheduleSpec(cron_expressions=[d.cron], time_zone_name=d.timezone or None)
    elif d.interval_seconds is not None:
        spec = ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=d.interval_seconds))],
            time_zone_name=d.timezone or None,
        )
    else:
        raise ValueError(f"{d.schedule_id}: neither cron nor interval")
    return Schedule(
        action=ScheduleActionStartWorkflow(
            d.workflow,
            d.args,
            id=d.schedule_id,
            task_queue=d.task_queue,
            execution_timeout=(
                timedelta(seconds=d.execution_timeout_seconds) if d.execution_timeout_seconds is not None else None
            ),
            memo=schedule_memo(d, owner),
        ),
        spec=spec,
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=timedelta(seconds=d.catchup_window_seconds),
            pause_on_failure=False,
        ),
        state=state or ScheduleState(note=CREATED_NOTE),
    )


# --- reading the actual state ---------------------------------------------------------------


def _owner_of(memo: object) -> dict:
    if isinstance(memo, dict):
        inner = memo.get(MEMO_KEY)
        if isinstance(inner, dict):
            return inner
    return {}


async def _action_memo(client: Client, action: ScheduleActionStartWorkflow) -> dict:
    raw = action.memo or {}
    if MEMO_KEY not in raw:
        return {}
    value = raw[MEMO_KEY]
    if not isinstance(value, dict):  # raw Payload from a described schedule
        try:
            value = (await client.data_converter.decode([value]))[0]
        except Exception:
            return {}
    return value if isinstance(value, dict) else {}


_OVERLAP_NAMES = {int(v): k.removeprefix("SCHEDULE_OVERLAP_POLICY_") for k, v in ProtoOverlap.items()}


async def actual_from_description(client: Client, desc: ScheduleDescription) -> ActualSchedule:
    sched = desc.schedule
    memo_of_schedule = _owner_of(await desc.memo())
    action = sched.action
    action_memo: dict = {}
    observed: dict = {}
    if isinstance(action, ScheduleActionStartWorkflow):
        action_memo = await _action_memo(client, action)
        observed.update(workflow=action.workflow, workflow_id=action.id, task_queue=action.task_queue)
    observed["timezone"] = sched.spec.time_zone_name or ""
    observed["overlap"] = _OVERLAP_NAMES.get(int(sched.policy.overlap), str(sched.policy.overlap))
    # The server fills in its default window; an absent one is reported as drift (observed None).
    window = sched.policy.catchup_window
    observed["catchup_window_seconds"] = int(window.total_seconds()) if window is not None else None
    owner = action_memo.get("owner") or memo_of_schedule.get("owner")
    return ActualSchedule(
        schedule_id=desc.id,
        owner=owner,
        unlisted=owner is not None and memo_of_schedule.get("owner") != owner,
        spec_hash=action_memo.get("spec_hash"),
        stored=action_memo.get("spec") if isinstance(action_memo.get("spec"), dict) else None,
        observed=observed,
        paused=bool(sched.state.paused),
        note=sched.state.note or "",
    )


async def describe_or_none(client: Client, schedule_id: str) -> ScheduleDescription | None:
    try:
        return await client.get_schedule_handle(schedule_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


GOVERNANCE_ID_PREFIX = "governance:"


async def listed_candidate_ids(client: Client, owner: str) -> set[str]:
    """Ids that may be ours, from the (eventually consistent) list: those whose schedule memo
    names our owner, and the `governance:` ones without any govfleet memo there (the original
    system's, or ones an earlier release adopted by rewriting only the action's memo). Callers
    describe each and keep those whose owner is ours."""
    found: set[str] = set()
    async for entry in await client.list_schedules():
        try:
            memo = _owner_of(dict(await entry.memo()))
        except Exception:
            continue
        if memo.get("owner") == owner or (not memo and entry.id.startswith(GOVERNANCE_ID_PREFIX)):
            found.add(entry.id)
    return found


async def read_actual(client: Client, declared: Iterable[str], owner: str) -> dict[str, ActualSchedule]:
    """Describe every declared id (authoritative), plus every listed schedule we own (for deletes)."""
    ids = set(declared) | await listed_candidate_ids(client, owner)
    sem = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def one(sid: str) -> tuple[str, ActualSchedule | None]:
        async with sem:
            desc = await describe_or_none(client, sid)
            return sid, (await actual_from_description(client, desc)) if desc else None

    results = await asyncio.gather(*(one(sid) for sid in sorted(ids)))
    return {sid: a for sid, a in results if a is not None}


# --- applying -------------------------------------------------------------------------------


@dataclass
class ItemOutcome:
    schedule_id: str
    planned: str
    outcome: str  # created | updated | adopted | migrated | deleted | unchanged | blocked | failed | gone
    detail: str = ""


@dataclass
class ReconcileReport:
    plan: Plan
    applied: bool = False
    outcomes: list[ItemOutcome] = field(default_factory=list)
    writes: int = 0

    @property
    def failed(self) -> list[ItemOutcome]:
        return [o for o in self.outcomes if o.outcome == "failed"]

    @property
    def blocked(self) -> list[str]:
        if self.applied:
            return [o.schedule_id for o in self.outcomes if o.outcome == "blocked"]
        return [i.schedule_id for i in self.plan.blocked]

    @property
    def changed(self) -> bool:
        return self.writes > 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked

    def render(self) -> str:
        out = [render_plan(self.plan)]
        if self.applied:
            counts: dict[str, int] = {}
            for o in self.outcomes:
                counts[o.outcome] = counts.get(o.outcome, 0) + 1
            parts = [
                f"{counts[k]} {k}"
                for k in ("created", "updated", "adopted", "migrated", "deleted", "unchanged", "gone")
                if counts.get(k)
            ]
            out.append("")
            out.append(f"Applied: {', '.join(parts) or 'nothing'} ({self.writes} writes).")
            for o in self.outcomes:
                if o.outcome in ("failed", "blocked") or o.outcome != _EXPECTED.get(o.planned, o.outcome):
                    out.append(f"  {o.outcome}: {o.schedule_id}: {o.detail}")
        if self.blocked:
            out.append(f"Blocked: {', '.join(self.blocked)} (not owned by {self.plan.owner}; not touched).")
        return "\n".join(out)


_EXPECTED = {
    "adopt": "adopted",
    "migrate": "migrated",
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "unchanged": "unchanged",
    "blocked": "blocked",
}


class _Blocked(Exception):
    pass


class _Recreate(Exception):
    """The fresh plan says adopt: only a create writes the schedule memo."""


class _Counter:
    def __init__(self) -> None:
        self.writes = 0


async def _create(client: Client, d: DesiredSchedule, owner: str, c: _Counter) -> ItemOutcome:
    try:
        c.writes += 1
        await client.create_schedule(d.schedule_id, build_schedule(d, owner), memo=schedule_memo(d, owner))
        return ItemOutcome(d.schedule_id, "create", "created")
    except ScheduleAlreadyRunningError:
        # Another reconciler (or a person) got there first: re-read and re-plan this one id.
        c.writes -= 1
        desc = await describe_or_none(client, d.schedule_id)
        if desc is None:
            return ItemOutcome(d.schedule_id, "create", "failed", "exists and vanished while creating; re-run")
        again = plan_item(d, await actual_from_description(client, desc), owner)
        if again.action == "unchanged":
            return ItemOutcome(d.schedule_id, "create", "unchanged", "created concurrently with the same spec")
        if again.action == "blocked":
            return ItemOutcome(d.schedule_id, "create", "blocked", again.reason)
        if again.action == "adopt":
            return await _adopt(client, d, owner, c, planned="create")
        return await _update(client, d, owner, c, planned="create")


async def _update(client: Client, d: DesiredSchedule, owner: str, c: _Counter, planned: str = "update") -> ItemOutcome:
    """Update one schedule, re-planned on the fresh description inside the update: the state
    (pause, note) is kept."""
    wrote = False

    async def updater(inp: ScheduleUpdateInput) -> ScheduleUpdate | None:
        nonlocal wrote
        current = await actual_from_description(client, inp.description)
        item = plan_item(d, current, owner)
        if item.action == "blocked":
            raise _Blocked(item.reason)
        if item.action == "adopt":
            raise _Recreate()
        if item.action == "unchanged":
            wrote = False
            return None
        wrote = True
        # Keep the operator's pause, note and any remaining-actions limit.
        return ScheduleUpdate(schedule=build_schedule(d, owner, state=inp.description.schedule.state))

    try:
        await client.get_schedule_handle(d.schedule_id).update(updater)
    except _Blocked as exc:
        return ItemOutcome(d.schedule_id, planned, "blocked", str(exc))
    except _Recreate:
        return await _adopt(client, d, owner, c, planned=planned)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return ItemOutcome(d.schedule_id, planned, "gone", "deleted while updating; re-run to create it")
        raise
    if wrote:
        c.writes += 1
        return ItemOutcome(d.schedule_id, planned, "updated")
    return ItemOutcome(d.schedule_id, planned, "unchanged", "already up to date (concurrent reconcile)")


MIGRATING_NOTE = "govfleet reconcile: moving to {new}"
ADOPTING_NOTE = "govfleet reconcile: taking over"
ADOPTED_NOTE = "taken over by govfleet reconcile --adopt"
PAUSE_VISIBLE_POLLS = 100  # 0.1 s apart


async def _pause_for_handover(handle, desc: ScheduleDescription, note: str, c: _Counter) -> ScheduleDescription | None:
    """Pause a schedule (unless an operator had) and wait until the scheduler shows it: from then
    on it starts nothing and its recent actions are final. None when the pause never shows."""
    if not desc.schedule.state.paused:
        c.writes += 1
        await handle.pause(note=note)
    after = await handle.describe()
    for _ in range(PAUSE_VISIBLE_POLLS):
        if after.schedule.state.paused:
            return after
        await asyncio.sleep(0.1)
        after = await handle.describe()
    return None


async def _backfill_gap(client: Client, d: DesiredSchedule, last: datetime | None) -> str:
    """Fire, on the new schedule, what fell between the old one's last action and the new one's
    creation (within the catch-up window); returns what was backfilled, for the report."""
    new = client.get_schedule_handle(d.schedule_id)
    window = backfill_window(last, (await new.describe()).info.created_at, timedelta(seconds=d.catchup_window_seconds))
    if window is None:
        return ""
    await new.backfill(ScheduleBackfill(start_at=window[0], end_at=window[1], overlap=ScheduleOverlapPolicy.SKIP))
    return f"; backfilled {window[0]:%H:%M:%S}–{window[1]:%H:%M:%S}Z"


async def _adopt(client: Client, d: DesiredSchedule, owner: str, c: _Counter, planned: str = "adopt") -> ItemOutcome:
    """Take a schedule over by recreating it under the same id: the schedule-level memo, which
    listing finds (delete step, status surface), can only be written by a create — the update
    request cannot set it (the SDK's ScheduleUpdate has no memo; the server refuses the raw
    request's memo on workflow-backed schedules). Same order as a migration, so nothing fires
    twice and nothing is lost: pause it (unless an operator had), read its last action, delete
    it, create ours with its state (an operator's pause and note), backfill the gap. If the
    create fails, the schedule as it was is created again (docs/schedules.md, "Adopting the
    original's schedules")."""
    sid = d.schedule_id
    handle = client.get_schedule_handle(sid)
    desc = await describe_or_none(client, sid)
    if desc is None:
        return await _create(client, d, owner, c)
    item = plan_item(d, await actual_from_description(client, desc), owner, adopt=True)
    if item.action == "blocked":
        return ItemOutcome(sid, planned, "blocked", item.reason)
    if item.action != "adopt":  # meanwhile ours, with the schedule memo: a plain update
        return await _update(client, d, owner, c, planned=planned)
    operator_paused, note = bool(desc.schedule.state.paused), desc.schedule.state.note or ""
    after = await _pause_for_handover(handle, desc, ADOPTING_NOTE, c)
    if after is None:
        return ItemOutcome(sid, planned, "failed", f"{sid} did not show its pause; left as it was")
    last = max((a.scheduled_at for a in after.info.recent_actions), default=None)
    state = ScheduleState(paused=operator_paused, note=note or ADOPTED_NOTE)
    c.writes += 1
    await handle.delete()
    try:
        c.writes += 1
        await client.create_schedule(sid, build_schedule(d, owner, state=state), memo=schedule_memo(d, owner))
    except Exception as exc:
        try:  # the schedule as described before the pause: its spec, action and state
            await client.create_schedule(sid, desc.schedule)
        except Exception as again:
            return ItemOutcome(
                sid,
                planned,
                "failed",
                f"taking over failed ({type(exc).__name__}: {exc}) and the schedule as it was could not be created "
                f"again ({type(again).__name__}: {again}); its last description: {desc.schedule!r}",
            )
        return ItemOutcome(
            sid, planned, "failed", f"taking over failed ({type(exc).__name__}: {exc}); the schedule is as it was"
        )
    detail = "recreated with our memo" + ("" if operator_paused else await _backfill_gap(client, d, last))
    return ItemOutcome(sid, planned, "adopted", detail)


def backfill_window(
    last_action: datetime | None, created_at: datetime, catchup_window: timedelta
) -> tuple[datetime, datetime] | None:
    """The fire times a migration may have left to nobody: after the old schedule's last action
    (it took nothing after that: it was paused first) up to the new schedule's creation (it fires
    only what comes after), no further back than the catch-up window the old schedule would have
    honoured. None when that window is empty."""
    start = created_at - catchup_window
    if last_action is not None:
        start = max(start, last_action + timedelta(seconds=1))
    return (start, created_at) if start <= created_at else None


async def _migrate(client: Client, d: DesiredSchedule, item: PlanItem, owner: str, c: _Counter) -> ItemOutcome:
    """Move one of our schedules from its old id to its new one without a double run: the old
    one is paused first (from then on it starts nothing), then the new one is created with the
    old one's state, then fire times that fell between the old one's last action and the new
    one's creation are backfilled on the new one, then the old one is deleted. Two schedules can
    never both fire one instant: the old one is stopped before the new one exists
    (docs/schedules.md, "Migrating our schedules from the old ids")."""
    old_id = item.from_id or ""
    old = client.get_schedule_handle(old_id)
    desc = await describe_or_none(client, old_id)
    if desc is None:
        return await _create(client, d, owner, c)
    if (await actual_from_description(client, desc)).owner != owner:
        return ItemOutcome(d.schedule_id, "migrate", "blocked", f"{old_id} is no longer ours; not migrated")
    operator_paused, note = bool(desc.schedule.state.paused), desc.schedule.state.note or ""
    after = await _pause_for_handover(old, desc, MIGRATING_NOTE.format(new=d.schedule_id), c)
    if after is None:
        return ItemOutcome(d.schedule_id, "migrate", "failed", f"{old_id} did not show its pause; nothing created")
    last = max((a.scheduled_at for a in after.info.recent_actions), default=None)
    state = ScheduleState(paused=operator_paused, note=note if operator_paused else CREATED_NOTE)
    try:
        c.writes += 1
        await client.create_schedule(d.schedule_id, build_schedule(d, owner, state=state), memo=schedule_memo(d, owner))
    except ScheduleAlreadyRunningError:
        c.writes -= 1
        return ItemOutcome(
            d.schedule_id, "migrate", "failed", f"{d.schedule_id} appeared while migrating; {old_id} is left paused"
        )
    detail = f"from {old_id}" + ("" if operator_paused else await _backfill_gap(client, d, last))
    c.writes += 1
    await old.delete()
    return ItemOutcome(d.schedule_id, "migrate", "migrated", detail)


async def _delete(client: Client, item: PlanItem, owner: str, c: _Counter) -> ItemOutcome:
    desc = await describe_or_none(client, item.schedule_id)
    if desc is None:
        return ItemOutcome(item.schedule_id, "delete", "gone", "already deleted")
    current = await actual_from_description(client, desc)
    if current.owner != owner:
        return ItemOutcome(item.schedule_id, "delete", "blocked", f"owner is now {current.owner!r}; not deleted")
    try:
        c.writes += 1
        await client.get_schedule_handle(item.schedule_id).delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return ItemOutcome(item.schedule_id, "delete", "gone", "already deleted")
        raise
    return ItemOutcome(item.schedule_id, "delete", "deleted")


async def apply_plan(client: Client, plan: Plan, desired: list[DesiredSchedule]) -> tuple[list[ItemOutcome], int]:
    by_id = {d.schedule_id: d for d in desired}
    counter = _Counter()
    sem = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def one(item: PlanItem) -> ItemOutcome:
        async with sem:
            try:
                if item.action == "create":
                    return await _create(client, by_id[item.schedule_id], plan.owner, counter)
                if item.action == "update":
                    return await _update(client, by_id[item.schedule_id], plan.owner, counter)
                if item.action == "adopt":
                    return await _adopt(client, by_id[item.schedule_id], plan.owner, counter)
                if item.action == "migrate":
                    return await _migrate(client, by_id[item.schedule_id], item, plan.owner, counter)
                if item.action == "delete":
                    return await _delete(client, item, plan.owner, counter)
                return ItemOutcome(item.schedule_id, item.action, _EXPECTED[item.action], item.reason)
            except Exception as exc:  # reported per schedule; the others still apply
                return ItemOutcome(item.schedule_id, item.action, "failed", f"{type(exc).__name__}: {exc}")

    outcomes = list(await asyncio.gather(*(one(i) for i in plan.items)))
    return outcomes, counter.writes


async def reconcile(
    client: Client,
    spec: RepoSpec,
    *,
    task_queue: str,
    owner: str | None = None,
    dry_run: bool = False,
    adopt: bool = False,
    notify_status: bool = True,
    gateway_in_environment: bool = False,
) -> ReconcileReport:
    """Plan (and unless `dry_run`, apply) the schedules of a validated repo-spec. With `adopt`,
    schedules without a govfleet memo on declared ids (the original system's) are taken over.

    Every desired schedule, including its Temporal `Schedule` object, is built before the first
    write, so a problem in any of them changes nothing; a free-word entrypoint without an agent
    gateway — none in the file, and OPENCLAW_GATEWAY_URL unset (`gateway_in_environment`) — is
    refused (`GatewayMissing`) before anything is read or written."""
    problems = spec.governance.gateway_problems(gateway_in_environment=gateway_in_environment)
    if problems:
        raise GatewayMissing(problems)
    owner = owner or default_owner(spec)
    desired = desired_schedules(spec, task_queue)
    for d in desired:
        build_schedule(d, owner)
    ids = [d.schedule_id for d in desired] + [old for d in desired for old in d.legacy_ids]
    actual = await read_actual(client, ids, owner)
    plan = make_plan(desired, actual, owner, adopt=adopt)
    report = ReconcileReport(plan=plan)
    if dry_run:
        return report
    report.outcomes, report.writes = await apply_plan(client, plan, desired)
    report.applied = True
    if report.writes and notify_status:
        await _tell_status(client, task_queue)
    return report


STATUS_REFRESH_SECONDS = 15.0


async def _tell_status(client: Client, task_queue: str) -> None:
    """The status workflow reads the schedules again before the reconcile returns (update
    `refresh`), so a status read after it shows them (docs/status.md, "Read your writes").
    Best-effort: when no worker polls, or none answers within STATUS_REFRESH_SECONDS, a signal is
    left instead (the status workflow rebuilds on start anyway); a reconcile never fails for the read model."""
    from govfleet.contracts.status import StatusUpdate
    from govfleet.status_client import refresh_status, tell_status, workers_poll

    update = StatusUpdate(schedules_changed=True, source="reconciler")
    try:
        if await workers_poll(client, task_queue):
            await asyncio.wait_for(refresh_status(client, task_queue, update), STATUS_REFRESH_SECONDS)
            return
    except Exception as exc:
        log.warning("the status workflow did not confirm the new schedules; signalling it", error=str(exc)[:200])
    try:
        await asyncio.wait_for(tell_status(client, task_queue, update), 10)
    except Exception as exc:  # never fail a reconcile for the read model
        log.warning("could not tell the status workflow that schedules changed", error=str(exc))
