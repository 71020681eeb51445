"""Schedules as code, pure: a desired Temporal Schedule, its spec hash, and the plan (create /
update / delete / unchanged / blocked / adopt / migrate) against what exists (see docs/schedules.md).

No I/O and no Temporal imports. `schedules/desired.py` derives the desired schedules from
repo-spec; `schedules/reconciler.py` reads the actual state from Temporal into
`ActualSchedule`s and applies the plan.

Drift detection never compares a described cron with the spec's cron (the server turns cron
strings into calendar specs, so the cron never comes back). Instead every desired schedule is
reduced to a canonical dict; its SHA-256 (`spec_hash`) is stored with the schedule, beside the
canonical dict itself, in the memo of the schedule's start-workflow action — the part of a
schedule that an update can rewrite. Any edit of cron, timezone, interval, entrypoint, agent
URL, cost, budget, thresholds, task queue or catch-up window changes the hash. The fields that
do come back from `describe()` unchanged (workflow type and id, task queue, timezone, overlap
policy, catch-up window) are compared as well, so a schedule edited by hand outside repo-spec is
put back.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

HASH_VERSION = 1
MEMO_KEY = "govfleet"
# Temporal treats catch-up windows below 10 s as 10 s; we say so instead of pretending.
MIN_CATCHUP_WINDOW_SECONDS = 10


# --- desired state --------------------------------------------------------------------------


class DesiredSchedule(BaseModel):
    schedule_id: str
    workflow: str
    args: dict
    task_queue: str
    cron: str | None = None
    interval_seconds: int | None = None
    timezone: str = ""
    overlap: Literal["SKIP"] = "SKIP"
    catchup_window_seconds: int
    execution_timeout_seconds: int | None  # None: no limit (the original system's own workflows)
    summary: str
    # Ids earlier releases gave this schedule: one of ours found there is migrated (not hashed).
    legacy_ids: list[str] = Field(default_factory=list)

    def canonical(self) -> dict:
        """Everything that defines the schedule, in a stable JSON-able form (the hash input)."""
        data = self.model_dump(mode="json", exclude={"summary", "legacy_ids"})
        data["hash_version"] = HASH_VERSION
        return data

    @property
    def spec_hash(self) -> str:
        return spec_hash(self.canonical())

    def observable(self) -> dict:
        """The fields `describe()` gives back unchanged, for out-of-band drift."""
        return {
            "workflow": self.workflow,
            "workflow_id": self.schedule_id,
            "task_queue": self.task_queue,
            "timezone": self.timezone,
            "overlap": self.overlap,
            "catchup_window_seconds": self.catchup_window_seconds,
        }


def spec_hash(canonical: dict) -> str:
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def effective_catchup(seconds: int) -> int:
    return max(seconds, MIN_CATCHUP_WINDOW_SECONDS)


# --- actual state and the plan --------------------------------------------------------------


class ActualSchedule(BaseModel):
    """One existing schedule as read from Temporal. `owner` is the owner either memo names (the
    action's is rewritten by every update); `unlisted` says the schedule's own memo (which only
    a create can write, and which listing schedules by owner finds) does not name it."""

    schedule_id: str
    owner: str | None = None
    unlisted: bool = False
    spec_hash: str | None = None
    stored: dict | None = None  # the canonical dict stored at the last create/update
    observed: dict = Field(default_factory=dict)
    paused: bool = False
    note: str = ""


Action = Literal["create", "update", "delete", "unchanged", "blocked", "adopt", "migrate"]
WRITE_ACTIONS = ("create", "update", "delete", "adopt", "migrate")


class Change(BaseModel):
    field: str
    old: object = None
    new: object = None


class PlanItem(BaseModel):
    schedule_id: str
    action: Action
    reason: str = ""
    summary: str = ""
    changes: list[Change] = Field(default_factory=list)
    paused: bool = False
    note: str = ""
    desired_hash: str | None = None
    from_id: str | None = None  # migrate: the old id the schedule moves from


class Plan(BaseModel):
    owner: str
    items: list[PlanItem]

    def count(self, action: Action) -> int:
        return sum(1 for i in self.items if i.action == action)

    @property
    def writes_planned(self) -> int:
        return sum(1 for i in self.items if i.action in WRITE_ACTIONS)

    @property
    def blocked(self) -> list[PlanItem]:
        return [i for i in self.items if i.action == "blocked"]


def _flatten(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def diff_canonical(old: dict | None, new: dict) -> list[Change]:
    """Field-by-field changes; `args.<x>` is left out when the top-level `<x>` shows the same
    change (a charter's timezone is both the schedule's and its run's)."""
    if old is None:
        return []
    a, b = _flatten(old), _flatten(new)
    changed = {k for k in set(a) | set(b) if k != "hash_version" and a.get(k) != b.get(k)}
    out = []
    for k in sorted(changed):
        top = k.removeprefix("args.")
        if k != top and top in changed and (a.get(top), b.get(top)) == (a.get(k), b.get(k)):
            continue
        out.append(Change(field=k, old=a.get(k), new=b.get(k)))
    return out


def observable_of(canonical: dict) -> dict:
    """The describe-able fields of a stored canonical dict (what we wrote last time)."""
    return {
        "workflow": canonical.get("workflow"),
        "workflow_id": canonical.get("schedule_id"),
        "task_queue": canonical.get("task_queue"),
        "timezone": canonical.get("timezone"),
        "overlap": canonical.get("overlap"),
        "catchup_window_seconds": canonical.get("catchup_window_seconds"),
    }


def plan_item(desired: DesiredSchedule, actual: ActualSchedule | None, owner: str, *, adopt: bool = False) -> PlanItem:
    """What to do with one declared schedule. With `adopt`, a schedule on its id that carries no
    govfleet memo (one the original system created) is taken over; another owner's never is."""
    h = desired.spec_hash
    if actual is None:
        return PlanItem(
            schedule_id=desired.schedule_id,
            action="create",
            summary=desired.summary,
            reason="declared in repo-spec, not in Temporal",
            desired_hash=h,
        )
    common: dict[str, Any] = dict(
        schedule_id=desired.schedule_id, summary=desired.summary, paused=actual.paused, note=actual.note, desired_hash=h
    )
    if actual.owner is None and adopt:
        want = desired.observable()
        changes = [
            Change(field=k, old=actual.observed.get(k), new=v) for k, v in want.items() if actual.observed.get(k) != v
        ]
        return PlanItem(
            action="adopt",
            reason="no govfleet memo (created by the original system); taken over",
            changes=changes,
            **common,
        )
    if actual.owner == owner and actual.unlisted:
        # Taken over by an earlier release, which could only write the action's memo: listing
        # by owner would never find it again once it leaves the file. Recreated with our memo.
        return PlanItem(
            action="adopt",
            reason="ours only in its action's memo (adopted by an earlier release); recreated with the schedule memo",
            changes=diff_canonical(actual.stored, desired.canonical()) if actual.spec_hash != h else [],
            **common,
        )
    if actual.owner != owner:
        if actual.owner is None:
            reason = (
                f"exists but is owned by nobody (no govfleet memo), not {owner!r}; left untouched "
                "(--adopt takes it over)"
            )
        else:
            reason = f"exists but is owned by {actual.owner!r}, not {owner!r}; left untouched"
        return PlanItem(action="blocked", reason=reason, **common)
    changes: list[Change] = []
    reasons: list[str] = []
    if actual.spec_hash != h:
        changes = diff_canonical(actual.stored, desired.canonical())
        reasons.append("repo-spec changed" if actual.spec_hash else "no spec hash stored")
    # Out-of-band edits: the described fields against what we wrote last (or, without a stored
    # spec, against what we want now).
    last = observable_of(actual.stored) if actual.stored else desired.observable()
    want = desired.observable()
    drift = [
        Change(field=k, old=actual.observed.get(k), new=want[k]) for k, v in last.items() if actual.observed.get(k) != v
    ]
    if drift:
        reasons.append("changed outside repo-spec")
        seen = {c.field for c in changes}
        changes += [c for c in drift if c.field not in seen]
    if reasons:
        return PlanItem(action="update", reason="; ".join(reasons), changes=changes, **common)
    return PlanItem(action="unchanged", **common)


def _migration(desired: DesiredSchedule, actual: dict[str, ActualSchedule], owner: str) -> PlanItem | None:
    """A schedule of ours under an id an earlier release gave this one, while the new id is free."""
    if desired.schedule_id in actual:
        return None
    for old in desired.legacy_ids:
        a = actual.get(old)
        if a is not None and a.owner == owner:
            return PlanItem(
                schedule_id=desired.schedule_id,
                action="migrate",
                from_id=old,
                summary=desired.summary,
                reason=f"from {old} (schedule ids are the charter lowercased)",
                paused=a.paused,
                note=a.note,
                desired_hash=desired.spec_hash,
            )
    return None


def make_plan(
    desired: list[DesiredSchedule], actual: dict[str, ActualSchedule], owner: str, *, adopt: bool = False
) -> Plan:
    """Declared schedules are created/updated/unchanged/blocked (adopted, with `adopt`, when they
    carry no memo; migrated when one of ours sits on their old id); schedules this owner owns that
    repo-spec no longer declares are deleted; everything else in the namespace is ignored."""
    ids = [d.schedule_id for d in desired]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate schedule ids in the desired state: {', '.join(dupes)}")
    items: list[PlanItem] = []
    migrated: set[str] = set()
    for d in desired:
        move = _migration(d, actual, owner)
        if move is not None and move.from_id is not None:
            migrated.add(move.from_id)
            items.append(move)
        else:
            items.append(plan_item(d, actual.get(d.schedule_id), owner, adopt=adopt))
    declared = set(ids)
    for sid in sorted(actual):
        a = actual[sid]
        if sid not in declared and sid not in migrated and a.owner == owner:  # either memo: ours
            items.append(
                PlanItem(
                    schedule_id=sid,
                    action="delete",
                    reason="no longer declared in repo-spec",
                    paused=a.paused,
                    note=a.note,
                )
            )
    return Plan(owner=owner, items=items)


# --- rendering ------------------------------------------------------------------------------

_SYMBOL = {"create": "+", "update": "~", "delete": "-", "unchanged": "=", "blocked": "!", "adopt": "^", "migrate": ">"}


def _fmt(v: object) -> str:
    return json.dumps(v) if not isinstance(v, (int, float)) or isinstance(v, bool) else str(v)


def render_plan(plan: Plan, *, title: str = "Schedules plan") -> str:
    width = max([len(i.schedule_id) for i in plan.items] + [10])
    lines = [f"{title} (owner {plan.owner}):", ""]
    for i in plan.items:
        head = f"  {_SYMBOL[i.action]} {i.action:<9}  {i.schedule_id:<{width}}  "
        if i.action in ("create", "unchanged"):
            head += i.summary
        elif i.action in ("update", "adopt", "migrate"):
            head += i.summary + f"  ({i.reason})"
        else:
            head += i.reason
        if i.paused:
            head += f"  [paused{': ' + repr(i.note) if i.note else ''}; stays paused]"
        lines.append(head.rstrip())
        for c in i.changes:
            lines.append(f"      {c.field}: {_fmt(c.old)} → {_fmt(c.new)}")
    lines.append("")
    lines.append(
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
        f"{plan.count('delete')} to delete, {plan.count('unchanged')} unchanged, {plan.count('blocked')} blocked"
        + "".join(f", {plan.count(a)} to {a}" for a in ("adopt", "migrate") if plan.count(a))
        + "."
    )
    return "\n".join(lines)
