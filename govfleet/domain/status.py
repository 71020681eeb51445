"""The `governance.status.v1` contract and the live upcoming-run computation (docs/status.md).

Pure: pydantic, croniter and zoneinfo only; no I/O, no clock. Every function that needs
"now" takes it as an argument, so the same code runs in the status workflow (with
`workflow.now()`), in the HTTP API (with the request's wall clock) and in tests.

Contract notes:
- `systemCredits` is the system tenant's balance as a decimal string (bigint-safe).
- `upcomingRuns`: at most `UPCOMING_LIMIT` entries, one per schedule, soonest first, each
  the first of Temporal's next action times for the schedule strictly after the `now` passed
  in (cron arithmetic only as the marked fallback while Temporal cannot be asked).
- `recentRuns`: at most `RECENT_LIMIT` runs of the system principal, most recent activity
  first, no pagination.
- Datetimes are ISO 8601 in UTC with a `Z` suffix and millisecond precision, the format of
  JavaScript's `Date.toISOString()`, which is what zod's `z.string().datetime()` accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator

from govfleet.domain.fire_times import FireTimeError, next_fire

CONTRACT_ID = "governance.status.v1"
UPCOMING_LIMIT = 3
RECENT_LIMIT = 10

_DIGITS = re.compile(r"^(0|[1-9][0-9]*)$")
# The same shape zod's default `datetime()` accepts: UTC with Z, optional fraction.
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class StatusError(ValueError):
    """Input to the status computation is invalid; the message names what was wrong."""


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise StatusError(f"datetime {value.isoformat()} has no timezone; pass an aware datetime")
    return value.astimezone(UTC)


def iso_z(value: datetime) -> str:
    """`2026-02-17T12:00:00.000Z` (UTC, milliseconds), like JavaScript's toISOString()."""
    v = to_utc(value)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


# A datetime that always serializes as ISO 8601 UTC with a Z suffix.
UtcDatetime = Annotated[
    datetime,
    PlainSerializer(iso_z, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": ISO_UTC.pattern}),
]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpcomingRun(_Contract):
    name: str = Field(description="Schedule display name (e.g. 'Community')")
    nextRunAt: UtcDatetime = Field(description="Next time Temporal fires the schedule (always future)")

    @field_validator("nextRunAt", mode="after")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return to_utc(v)


class RecentRunV1(_Contract):
    id: str = Field(description="Thread state key (the governance run's id)")
    title: str | None = Field(description="Run title from metadata")
    startedAt: UtcDatetime
    lastActivity: UtcDatetime

    @field_validator("startedAt", "lastActivity", mode="after")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return to_utc(v)


class GovernanceStatusV1(_Contract):
    """Output of `governance.status.v1`, field for field."""

    systemCredits: str = Field(description="System tenant balance (BigInt as string)", pattern=_DIGITS.pattern)
    upcomingRuns: list[UpcomingRun] = Field(
        description="Next scheduled governance runs sorted by soonest first", max_length=UPCOMING_LIMIT
    )
    recentRuns: list[RecentRunV1] = Field(
        description="Most recent governance runs of the system tenant, most recent first", max_length=RECENT_LIMIT
    )

    @field_validator("systemCredits")
    @classmethod
    def _credits(cls, v: str) -> str:
        if not _DIGITS.match(v):
            raise ValueError(f"systemCredits {v!r} must be a non-negative integer written in decimal digits")
        return v


# --- schedules -------------------------------------------------------------------------


TEMPORAL = "temporal"  # next fire times as Temporal's schedule describes them
CRON_FALLBACK = "cron-fallback"  # computed from cron and timezone: Temporal did not answer


class ScheduleEntry(BaseModel):
    """One governance schedule as the status surface needs it: from Temporal's description of
    the schedule (`source` "temporal": `next_times` are the times Temporal will fire), or from the
    repo-spec while Temporal cannot be asked (`source` "cron-fallback")."""

    model_config = ConfigDict(frozen=True)

    charter: str
    cron: str
    timezone: str = "UTC"
    name: str = ""  # display name; derived from the charter when empty
    paused: bool = False  # an operator paused its Temporal Schedule: no upcoming run is shown
    schedule_id: str = ""
    source: str = CRON_FALLBACK
    next_times: list[datetime] = Field(default_factory=list)  # Temporal's next action times (UTC)

    @field_validator("next_times", mode="after")
    @classmethod
    def _times_utc(cls, v: list[datetime]) -> list[datetime]:
        return sorted(to_utc(t) for t in v)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not isinstance(v, str) or len(v.split()) != 5 or not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a valid 5-field cron expression")
        return " ".join(v.split())

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(f"{v!r} is not a known IANA timezone") from None
        return v

    @property
    def display_name(self) -> str:
        return self.name or display_name(self.charter)


def display_name(charter: str) -> str:
    """`COMMUNITY` -> `Community`, `public_goods` -> `Public Goods`."""
    words = re.split(r"[_\-.\s]+", charter.strip())
    return " ".join(w[:1].upper() + w[1:].lower() for w in words if w) or charter


class DeclaredSchedule(Protocol):
    """A charter's schedule as repo-spec declares it (`governance.schedules[]`)."""

    @property
    def charter(self) -> str: ...
    @property
    def cron(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def schedule_id(self) -> str: ...


def schedule_entries(declared: Iterable[DeclaredSchedule]) -> list[ScheduleEntry]:
    """The repo-spec's schedules as the status surface's fallback sees them: times from the cron
    arithmetic (`cron-fallback`), no pause state (Temporal was not asked)."""
    return [
        ScheduleEntry(
            charter=s.charter,
            cron=s.cron,
            timezone=s.timezone,
            name=display_name(s.charter),
            schedule_id=s.schedule_id,
        )
        for s in declared
    ]


# (cron, tz) -> (computed after, first fire strictly after it). For any `now` in
# [computed after, fire) the answer is the same fire time (there is no fire in between), so a
# hit returns exactly what croniter would; it only saves croniter's ~0.25 ms per call.
_NEXT_CACHE: dict[tuple[str, str], tuple[datetime, datetime]] = {}
_NEXT_CACHE_MAX = 4096


def next_run_at(cron: str, tz: str, now: datetime) -> datetime:
    """The first time Temporal fires `cron` (wall clock in `tz`) strictly after `now`, in UTC."""
    now_utc = to_utc(now)
    hit = _NEXT_CACHE.get((cron, tz))
    if hit is not None and hit[0] <= now_utc < hit[1]:
        return hit[1]
    result = _next_run_at(cron, tz, now_utc)
    if len(_NEXT_CACHE) >= _NEXT_CACHE_MAX:
        _NEXT_CACHE.clear()
    _NEXT_CACHE[(cron, tz)] = (now_utc, result)
    return result


def _next_run_at(cron: str, tz: str, now_utc: datetime) -> datetime:
    """The time Temporal's scheduler fires next, daylight-saving days included
    (govfleet/domain/fire_times.py)."""
    try:
        return next_fire(cron, tz, now_utc)
    except FireTimeError as exc:
        raise StatusError(str(exc)) from None


def schedule_next(s: ScheduleEntry, now: datetime) -> tuple[datetime | None, str]:
    """The schedule's next fire time strictly after `now` and where it came from.

    From Temporal: the first of its next action times after `now` (None when Temporal lists none:
    it will not fire). When every listed time has passed (the list was not read again yet), or
    the entry comes from the repo-spec, the cron arithmetic answers, marked `cron-fallback`."""
    now_utc = to_utc(now)
    if s.source == TEMPORAL:
        for t in s.next_times:
            if t > now_utc:
                return t, TEMPORAL
        if not s.next_times:
            return None, TEMPORAL
    return next_run_at(s.cron, s.timezone, now_utc), CRON_FALLBACK


def times_left(s: ScheduleEntry, now: datetime) -> int:
    """How many of Temporal's listed next action times are still ahead of `now`."""
    now_utc = to_utc(now)
    return sum(1 for t in s.next_times if t > now_utc)


def upcoming_runs(schedules: Iterable[ScheduleEntry], now: datetime, limit: int = UPCOMING_LIMIT) -> list[UpcomingRun]:
    """One entry per (not paused) schedule that will fire: its next fire time after `now`;
    soonest first, ties by name; at most `limit`."""
    runs = []
    for s in schedules:
        if s.paused:
            continue
        at, _ = schedule_next(s, now)
        if at is not None:
            runs.append(UpcomingRun(name=s.display_name, nextRunAt=at))
    runs.sort(key=lambda r: (r.nextRunAt, r.name))
    return runs[: max(0, limit)]


def next_wake(schedules: Iterable[ScheduleEntry], now: datetime) -> datetime | None:
    """The soonest fire time of any schedule after `now` (the status workflow wakes then,
    so that its own notion of time never lags behind a passed fire time)."""
    times = [t for s in schedules if not s.paused for t in [schedule_next(s, now)[0]] if t is not None]
    return min(times) if times else None


# --- recent runs and the heartbeat ---------------------------------------------------------


class RunRecord(BaseModel):
    """A governance run as the status surface tracks it (snake_case, internal)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str | None = None
    started_at: datetime
    last_activity: datetime
    status: str | None = None  # running | success | error | refused (None: not known yet)
    reason: str | None = None  # why a run failed or was refused

    @field_validator("started_at", "last_activity", mode="after")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return to_utc(v)


class HeartbeatRecord(BaseModel):
    """The latest `governance.heartbeat` CloudEvent, as stored in heartbeat_events."""

    id: str
    time: datetime
    status: str
    type: str = "governance.heartbeat"
    data: dict = Field(default_factory=dict)


def merge_recent_runs(
    current: Sequence[RunRecord], incoming: Iterable[RunRecord], limit: int = RECENT_LIMIT
) -> list[RunRecord]:
    """Upsert by id (the newer last_activity wins), most recent activity first, capped."""
    by_id: dict[str, RunRecord] = {r.id: r for r in current}
    for r in incoming:
        old = by_id.get(r.id)
        if old is None or r.last_activity >= old.last_activity:
            by_id[r.id] = r
    ordered = sorted(by_id.values(), key=lambda r: (r.last_activity, r.id), reverse=True)
    return ordered[: max(0, limit)]


def build_status(
    *,
    system_credits: int | str,
    schedules: Iterable[ScheduleEntry],
    recent_runs: Iterable[RunRecord],
    now: datetime,
) -> GovernanceStatusV1:
    """The whole contract, with upcoming runs computed live from `now`."""
    credits = str(system_credits)
    runs = merge_recent_runs([], recent_runs)
    return GovernanceStatusV1(
        systemCredits=credits,
        upcomingRuns=upcoming_runs(schedules, now),
        recentRuns=[
            RecentRunV1(id=r.id, title=r.title, startedAt=r.started_at, lastActivity=r.last_activity) for r in runs
        ],
    )


# --- the extended status (outside the contract) ------------------------------------------------


class ScheduleStatus(BaseModel):
    """A schedule as `/gov` shows it: paused ones too, with where the time came from."""

    scheduleId: str
    name: str
    paused: bool
    nextRunAt: UtcDatetime | None
    timezone: str
    cron: str
    source: str = Field(description='"temporal" (Temporal\'s next action time) or "cron-fallback"')


class RecentRunStatus(BaseModel):
    id: str
    title: str | None
    startedAt: UtcDatetime
    lastActivity: UtcDatetime
    outcome: str = Field(description="running | succeeded | failed | refused | unknown")
    reason: str | None = None


class GovernanceStatusExtended(BaseModel):
    """`GET /api/v1/governance/status/extended`: what the contract leaves out."""

    systemCredits: str
    schedules: list[ScheduleStatus] = Field(description="every schedule we own in Temporal, soonest first, paused last")
    schedulesSource: str = Field(description='"temporal" when every time came from Temporal, else "cron-fallback"')
    recentRuns: list[RecentRunStatus]
    asOf: UtcDatetime


_OUTCOMES = {"running": "running", "success": "succeeded", "error": "failed", "refused": "refused"}


def run_outcome(status: str | None) -> str:
    """The governance run's recorded status in the words of the status page."""
    return _OUTCOMES.get(status or "", "unknown")


def build_extended(
    *,
    system_credits: int | str,
    schedules: Iterable[ScheduleEntry],
    recent_runs: Iterable[RunRecord],
    now: datetime,
) -> GovernanceStatusExtended:
    rows = []
    for s in schedules:
        at, source = schedule_next(s, now)
        rows.append(
            ScheduleStatus(
                scheduleId=s.schedule_id,
                name=s.display_name,
                paused=s.paused,
                nextRunAt=None if s.paused else at,
                timezone=s.timezone,
                cron=s.cron,
                source=source,
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(key=lambda r: (r.paused, r.nextRunAt or far, r.name))
    runs = merge_recent_runs([], recent_runs)
    return GovernanceStatusExtended(
        systemCredits=credits_string(system_credits),
        schedules=rows,
        schedulesSource=TEMPORAL if all(r.source == TEMPORAL for r in rows) else CRON_FALLBACK,
        recentRuns=[
            RecentRunStatus(
                id=r.id,
                title=r.title,
                startedAt=r.started_at,
                lastActivity=r.last_activity,
                outcome=run_outcome(r.status),
                reason=r.reason,
            )
            for r in runs
        ],
        asOf=now,
    )


def check_upcoming_in_future(status: GovernanceStatusV1, now: datetime) -> list[str]:
    """Problems (empty when none): upcoming runs not strictly after `now`, or out of order."""
    problems = []
    now_utc = to_utc(now)
    for r in status.upcomingRuns:
        if r.nextRunAt <= now_utc:
            problems.append(f"upcoming run {r.name!r} at {iso_z(r.nextRunAt)} is not after {iso_z(now_utc)}")
    times = [r.nextRunAt for r in status.upcomingRuns]
    if times != sorted(times):
        problems.append("upcoming runs are not sorted soonest first")
    return problems


def credits_string(value: int | str | None) -> str:
    if value is None:
        return "0"
    s = str(value)
    if not _DIGITS.match(s):
        raise StatusError(f"system credits {value!r} must be a non-negative integer")
    return s


def seconds_until(when: datetime, now: datetime) -> float:
    return (to_utc(when) - to_utc(now)) / timedelta(seconds=1)
