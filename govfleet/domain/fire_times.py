"""When Temporal's scheduler fires a cron schedule, computed without asking it (pure: croniter
and zoneinfo; docs/status.md, "The cron fallback").

The status surface asks Temporal for a schedule's next action times; only while Temporal cannot
be asked does it compute them itself, and then it must give the times Temporal will fire, also
on daylight-saving days. Temporal (its scheduler is written in Go) steps a schedule from one
fire to the next; each step:

- reads the previous fire's wall clock in the schedule's zone, and finds the first wall time
  after it that matches every field: minute, hour, month, and day-of-month *and* day-of-week
  (both must match when both are restricted, unlike classic cron's "either");
- turns that wall time into an instant as Go's `time.Date` does: the offset in effect at the
  wall time read as UTC, corrected once if the result falls outside that offset's period.
  A wall time that does not exist (spring forward) comes out in another hour and is skipped;
  a wall time that exists twice (fall back) comes out as the earlier instant west of UTC and
  the later one east of it;
- when the search leaves a matching hour that the clocks repeat (the next hour's start, so
  computed, is more than an hour after this one's), it searches the same hour once more, an
  hour later: west of UTC that is the repeated hour's second copy, so `30 1 * 11 0` in New
  York fires at 05:30Z and again at 06:30Z on 2027-11-07;
- starting from a time in the second copy of a repeated hour, the rest of that hour is searched
  with the same hour added. East of UTC, where `time.Date` already gave the second copy, this
  gives instants an hour past the wall time (`*/20 2 31 10 *` in Berlin fires 01:00Z, then
  02:20Z — 03:20 CET — on 2027-10-31). They are what Temporal fires, so they are what we say.

Because each step depends on where the previous one ended, the answer for a clock near a
fall-back change is the chain of steps from before the change (what the schedule does when
nobody touches it that night), not one step from the clock itself. Tested every minute of both
2027 fall-back days against the dev server's `next_action_times`
(tests/integration/test_status_dst.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

HOUR = timedelta(hours=1)
# A fall-back change closer than this to "now" makes the chain start before it.
CHANGE_MARGIN = timedelta(hours=3)
MAX_CHAIN_STEPS = 2000  # from CHANGE_MARGIN before a change to "now": 6 h of a per-minute cron is 360


class FireTimeError(ValueError):
    """The cron or the zone is unusable; the message names it."""


def go_date(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant Go's `time.Date` gives a naive wall time in `zone` (also for one that
    does not exist: then its wall clock is another hour)."""
    as_utc = wall.replace(tzinfo=UTC)
    offset = as_utc.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    instant = as_utc - offset
    corrected = instant.astimezone(zone).utcoffset()
    if corrected is not None and corrected != offset:
        instant = as_utc - corrected
    return instant


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _first_match_after(cron: str, wall: datetime) -> datetime:
    """The first wall time strictly after `wall` matching `cron`, with Temporal's day rule."""
    return croniter(cron, wall, day_or=False).get_next(datetime)


def _repeated_hour(day_hour: datetime, zone: ZoneInfo) -> bool:
    """Whether the hour starting at this wall time is followed, as Go computes the next hour's
    start, more than an hour later (the clocks go back during it)."""
    return go_date(day_hour + HOUR, zone) - go_date(day_hour, zone) > HOUR


def _existing(cron: str, wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of the first match at or after `wall` (itself a match) that exists: a wall
    time that comes out in another hour is skipped, with the rest of its hour."""
    for _ in range(MAX_CHAIN_STEPS):
        instant = go_date(wall, zone)
        if _wall(instant, zone).hour == wall.hour:
            return instant
        next_hour = wall.replace(minute=0, second=0, microsecond=0) + HOUR
        wall = _first_match_after(cron, next_hour - timedelta(seconds=1))
    raise FireTimeError(f"cron {cron!r} in {zone.key} matches no existing time")


def step(cron: str, zone: ZoneInfo, after: datetime) -> datetime:
    """One step of Temporal's scheduler: the fire that follows the instant `after`."""
    wall = _wall(after, zone)
    candidate = _first_match_after(cron, wall)
    same_hour = candidate.date() == wall.date() and candidate.hour == wall.hour
    if _wall(after - HOUR, zone).hour == wall.hour:
        # `after` is in the second copy of a repeated hour: its rest is searched an hour later.
        if same_hour:
            return go_date(candidate, zone) + HOUR
        return _existing(cron, candidate, zone)
    if not same_hour:
        hour_start = wall.replace(minute=0, second=0, microsecond=0)
        first_in_hour = _first_match_after(cron, hour_start - timedelta(seconds=1))
        in_this_hour = first_in_hour.date() == wall.date() and first_in_hour.hour == wall.hour
        if in_this_hour and _repeated_hour(hour_start, zone):
            # Leaving a matching hour the clocks repeat: the same hour once more, an hour later.
            return go_date(first_in_hour, zone) + HOUR
    return _existing(cron, candidate, zone)


def _fall_back_near(zone: ZoneInfo, now: datetime) -> datetime | None:
    """A change to a smaller UTC offset within CHANGE_MARGIN of `now`, to the second."""
    lo, hi = now - CHANGE_MARGIN, now + CHANGE_MARGIN
    before, after = lo.astimezone(zone).utcoffset(), hi.astimezone(zone).utcoffset()
    if before is None or after is None or before <= after:
        return None
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


def next_fire(cron: str, tz: str, now: datetime) -> datetime:
    """The first time after `now` (UTC, aware) that Temporal fires `cron` in `tz`: one step
    from `now`, or near a fall-back change the chain of steps from before it."""
    try:
        zone = ZoneInfo(tz)
    except Exception:
        raise FireTimeError(f"{tz!r} is not a known IANA timezone") from None
    if not croniter.is_valid(cron):
        raise FireTimeError(f"{cron!r} is not a valid cron expression")
    change = _fall_back_near(zone, now)
    at = now if change is None else min(now, change - CHANGE_MARGIN)
    for _ in range(MAX_CHAIN_STEPS):
        at = step(cron, zone, at)
        if at > now:
            return at
    raise FireTimeError(f"cron {cron!r} in {tz} produced no fire time after {now.isoformat()}")
