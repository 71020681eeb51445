"""The `governance.status.v1` contract and the live upcoming-run computation (docs/status.md).

Pure: pydantic, croniter and zoneinfo only; no I/O, no clock. Every function that needs
"now" takes it as an argument, so the same code runs in the status workflow (with
`workflow.now()`), in the HTTP API (with the request's wall clock) and in tests.

Contract notes:
- `systemCredits` is the system tenant's balance as a decimal string (bigint-safe).
- `upcomingRuns`: at most `UPCOMING_LIMIT` entries, one per schedule, soonest first, each
  computed from the schedule's cron and timezone and strictly after the `now` passed in.
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
    nextRunAt: UtcDatetime = Field(description="Next occurrence computed live from cron (always future)")

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


class ScheduleEntry(BaseModel):
    """One governance schedule as the status surface needs it (from repo-spec)."""

    model_config = ConfigDict(frozen=True)

    charter: str
    cron: str
    timezone: str = "UTC"
    name: str = ""  # display name; derived from the charter when empty
    paused: bool = False  # an operator paused its Temporal Schedule: no upcoming run is shown

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


def schedule_entries(declared: Iterable[DeclaredSchedule]) -> list[ScheduleEntry]:
    """The status surface's view of the declared schedules (not yet checked for pauses)."""
    return [
        ScheduleEntry(charter=s.charter, cron=s.cron, timezone=s.timezone, name=display_name(s.charter))
        for s in declared
    ]


# (cron, tz) -> (computed after, first fire strictly after it). For any `now` in
# [computed after, fire) the answer is the same fire time (there is no fire in between), so a
# hit returns exactly what croniter would; it only saves croniter's ~0.25 ms per call.
_NEXT_CACHE: dict[tuple[str, str], tuple[datetime, datetime]] = {}
_NEXT_CACHE_MAX = 4096


def next_run_at(cron: str, tz: str, now: datetime) -> datetime:
    """The first fire time of `cron` (wall clock in `tz`) strictly after `now`, in UTC."""
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
    try:
        zone = ZoneInfo(tz)
    except Exception:
        raise StatusError(f"{tz!r} is not a known IANA timezone") from None
    if not croniter.is_valid(cron):
        raise StatusError(f"{cron!r} is not a valid cron expression")
    # Wall-clock times in the zone, as Temporal's schedules fire them: a time that does not exist
    # (spring forward) is skipped, one that exists twice (fall back) fires at both instants. The
    # walk starts one DST shift early when `now` itself is in a repeated hour.
    local = now_utc.astimezone(zone)
    shift = abs(local.replace(fold=0).utcoffset() - local.replace(fold=1).utcoffset())  # type: ignore[operator]
    it = croniter(cron, local.replace(tzinfo=None) - shift - timedelta(microseconds=1))
    best: datetime | None = None
    for _ in range(1000):  # bounded: a few steps past `now` for any real cron and zone
        wall = it.get_next(datetime)
        instants = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
        if best is not None and min(instants) >= best:
            return best  # wall times only move on: nothing sooner can follow
        for utc in instants:
            exists = utc.astimezone(zone).replace(tzinfo=None) == wall  # not inside a spring-forward gap
            if exists and utc > now_utc and (best is None or utc < best):
                best = utc
    raise StatusError(f"cron {cron!r} in {tz} produced no fire time after {iso_z(now_utc)}")


def upcoming_runs(schedules: Iterable[ScheduleEntry], now: datetime, limit: int = UPCOMING_LIMIT) -> list[UpcomingRun]:
    """One entry per (not paused) schedule: its next fire time after `now`; soonest first,
    ties by name; at most `limit`."""
    runs = [
        UpcomingRun(name=s.display_name, nextRunAt=next_run_at(s.cron, s.timezone, now))
        for s in schedules
        if not s.paused
    ]
    runs.sort(key=lambda r: (r.nextRunAt, r.name))
    return runs[: max(0, limit)]


def next_wake(schedules: Iterable[ScheduleEntry], now: datetime) -> datetime | None:
    """The soonest fire time of any schedule after `now` (the status workflow wakes then,
    so that its own notion of time never lags behind a passed fire time)."""
    times = [next_run_at(s.cron, s.timezone, now) for s in schedules if not s.paused]
    return min(times) if times else None


# --- recent runs and the heartbeat ---------------------------------------------------------


class RunRecord(BaseModel):
    """A governance run as the status surface tracks it (snake_case, internal)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str | None = None
    started_at: datetime
    last_activity: datetime

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
