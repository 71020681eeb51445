"""Pure status domain: live upcoming runs (cron + timezone), recent-run merging, names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from govfleet.domain.status import (
    RunRecord,
    ScheduleEntry,
    StatusError,
    build_status,
    check_upcoming_in_future,
    display_name,
    iso_z,
    merge_recent_runs,
    next_run_at,
    next_wake,
    upcoming_runs,
)
from govfleet.domain.status import _next_run_at as domain_next_run_at

CRONS = [
    "* * * * *",
    "*/5 * * * *",
    "0 */6 * * *",
    "30 9 * * 1-5",
    "0 12 * * 1",
    "30 2 * * *",
    "0 0 29 2 *",
    "59 23 31 12 *",
    "15 1,2,3 * * 0",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham"]

instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(now=instants, cron=st.sampled_from(CRONS), tz=st.sampled_from(ZONES))
def test_next_run_is_strictly_after_now_and_a_real_fire_time(now, cron, tz):
    nxt = next_run_at(cron, tz, now)
    assert nxt > now
    assert nxt.tzinfo == UTC
    local = nxt.astimezone(ZoneInfo(tz))
    minute, _hour = cron.split()[:2]
    if minute.isdigit():
        assert local.minute == int(minute)
    assert local.second == 0 and local.microsecond == 0


@settings(max_examples=100, deadline=None)
@given(now=instants, crons=st.lists(st.tuples(st.sampled_from(CRONS), st.sampled_from(ZONES)), min_size=0, max_size=6))
def test_upcoming_runs_are_sorted_future_and_at_most_three(now, crons):
    schedules = [ScheduleEntry(charter=f"C{i}", cron=c, timezone=z) for i, (c, z) in enumerate(crons)]
    runs = upcoming_runs(schedules, now)
    assert len(runs) == min(3, len(schedules))
    times = [r.nextRunAt for r in runs]
    assert times == sorted(times) and all(t > now for t in times)
    # the three soonest of all schedules
    all_times = sorted(next_run_at(s.cron, s.timezone, now) for s in schedules)
    assert times == all_times[:3]
    wake = next_wake(schedules, now)
    assert wake == (all_times[0] if all_times else None)


def test_just_after_a_fire_time_the_next_one_is_given():
    fire = datetime(2026, 2, 17, 12, 0, tzinfo=UTC)
    assert next_run_at("* * * * *", "UTC", fire) == fire + timedelta(minutes=1)
    assert next_run_at("* * * * *", "UTC", fire - timedelta(microseconds=1)) == fire
    assert next_run_at("* * * * *", "UTC", fire + timedelta(microseconds=1)) == fire + timedelta(minutes=1)


def test_dst_transitions_in_the_schedule_timezone():
    """The cron fallback maps wall times to instants the way Temporal's scheduler does (the times
    below are what the dev server's `next_action_times` list, see tests/integration/test_status_dst.py):
    a wall time that does not exist (spring forward) is skipped; a daily time in the repeated hour
    (fall back) fires once, at the instant Go's `time.Date` picks."""
    # Spring forward: 02:30 does not exist in Berlin on 2026-03-29; the next fire is the 30th.
    assert next_run_at("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 29, 0, 0, tzinfo=UTC)) == datetime(
        2026, 3, 30, 0, 30, tzinfo=UTC
    )
    # New York, 2027-03-14: 02:30 does not exist; Temporal fires on the 13th at 07:30Z and the 15th at 06:30Z.
    assert next_run_at("30 2 * * *", "America/New_York", datetime(2027, 3, 13, 8, 0, tzinfo=UTC)) == datetime(
        2027, 3, 15, 6, 30, tzinfo=UTC
    )
    # Fall back: 02:30 happens twice in Berlin on 2027-10-31 (CEST 00:30Z, then CET 01:30Z);
    # Temporal fires once, at 01:30Z.
    fires, now = [], datetime(2027, 10, 29, 23, 0, tzinfo=UTC)
    for _ in range(3):
        now = next_run_at("30 2 * * *", "Europe/Berlin", now)
        fires.append(now)
    assert fires == [
        datetime(2027, 10, 30, 0, 30, tzinfo=UTC),
        datetime(2027, 10, 31, 1, 30, tzinfo=UTC),
        datetime(2027, 11, 1, 1, 30, tzinfo=UTC),
    ]
    assert next_run_at("30 2 * 10 0", "Europe/Berlin", datetime(2027, 10, 25, tzinfo=UTC)) == datetime(
        2027, 10, 31, 1, 30, tzinfo=UTC
    )
    # West of UTC the repeated wall time is the earlier instant (EDT) in New York.
    assert next_run_at("*/15 * * * *", "America/New_York", datetime(2027, 11, 7, 5, 20, tzinfo=UTC)) == datetime(
        2027, 11, 7, 5, 30, tzinfo=UTC
    )
    # 09:30 Berlin is 08:30 UTC in winter and 07:30 UTC in summer.
    assert next_run_at("30 9 * * *", "Europe/Berlin", datetime(2026, 3, 27, tzinfo=UTC)).hour == 8
    assert next_run_at("30 9 * * *", "Europe/Berlin", datetime(2026, 3, 30, tzinfo=UTC)).hour == 7


def _every_minute_of(day: datetime, tz: str):
    zone = ZoneInfo(tz)
    clock, last = day.replace(tzinfo=zone).astimezone(UTC), (day + timedelta(days=1)).replace(tzinfo=zone)
    while clock < last:
        yield clock
        clock += timedelta(minutes=1)


@pytest.mark.parametrize(
    ("cron", "tz", "day", "fires"),
    [
        # West of UTC the repeated 01:30 fires twice, EDT then EST (the dev server lists both).
        (
            "30 1 * 11 0",
            "America/New_York",
            datetime(2027, 11, 7),
            [datetime(2027, 11, 7, 5, 30), datetime(2027, 11, 7, 6, 30), datetime(2027, 11, 14, 6, 30)],
        ),
        # East of UTC the repeated 02:30 fires once, CET (01:30Z), also for clocks in the CEST copy.
        (
            "30 2 * 10 0",
            "Europe/Berlin",
            datetime(2027, 10, 31),
            [datetime(2027, 10, 31, 1, 30), datetime(2028, 10, 1, 0, 30)],
        ),
        # East of UTC Temporal goes on in the second copy an hour late: 01:00Z, then 02:20Z (03:20 CET).
        (
            "*/20 2 31 10 *",
            "Europe/Berlin",
            datetime(2027, 10, 31),
            [datetime(2027, 10, 31, 1, 0), datetime(2027, 10, 31, 2, 20), datetime(2028, 10, 31, 1, 0)],
        ),
    ],
)
def test_every_minute_of_the_fall_back_days(cron, tz, day, fires):
    """The cron fallback answers what Temporal fires at every clock of the day (the times are the
    dev server's, tests/integration/test_status_dst.py compares them live)."""
    fires = [f.replace(tzinfo=UTC) for f in fires]
    clocks = list(_every_minute_of(day, tz))
    assert len(clocks) == 25 * 60
    for clock in clocks:
        assert next_run_at(cron, tz, clock) == min(f for f in fires if f > clock), clock
        assert domain_next_run_at(cron, tz, clock) == min(f for f in fires if f > clock), clock


def test_both_day_fields_must_match_as_temporal_fires_them():
    """`0 9 1 * 1`: Temporal fires on a 1st that is a Monday, not on every 1st and every Monday."""
    assert next_run_at("0 9 1 * 1", "UTC", datetime(2026, 12, 7, tzinfo=UTC)) == datetime(2027, 2, 1, 9, tzinfo=UTC)


def test_temporal_times_win_over_the_cron_and_the_fallback_is_marked():
    from govfleet.domain.status import CRON_FALLBACK, TEMPORAL, build_extended, schedule_next

    now = datetime(2027, 3, 13, 12, 0, tzinfo=UTC)
    told = [datetime(2027, 3, 13, 7, 30, tzinfo=UTC), datetime(2027, 3, 15, 6, 30, tzinfo=UTC)]
    ny = ScheduleEntry(charter="NY", cron="30 2 * * *", timezone="America/New_York", source=TEMPORAL, next_times=told)
    assert schedule_next(ny, now) == (told[1], TEMPORAL)
    # Every listed time passed: the cron answers, marked.
    later = datetime(2027, 3, 16, 0, 0, tzinfo=UTC)
    assert schedule_next(ny, later) == (datetime(2027, 3, 16, 6, 30, tzinfo=UTC), CRON_FALLBACK)
    # Temporal lists no time (it will not fire): no upcoming run, whatever the cron says.
    done = ny.model_copy(update={"next_times": []})
    assert schedule_next(done, now) == (None, TEMPORAL) and upcoming_runs([done], now) == []
    # From the repo-spec only: the cron, marked.
    spec_only = ScheduleEntry(charter="NY", cron="30 2 * * *", timezone="America/New_York")
    assert schedule_next(spec_only, now)[1] == CRON_FALLBACK
    paused = ny.model_copy(update={"paused": True, "charter": "P", "schedule_id": "governance:P"})
    ext = build_extended(system_credits=5, schedules=[paused, ny], recent_runs=[], now=now)
    assert [(s.name, s.paused, s.nextRunAt) for s in ext.schedules] == [("Ny", False, told[1]), ("P", True, None)]
    assert ext.schedulesSource == TEMPORAL
    assert [r.name for r in upcoming_runs([paused, ny], now)] == ["Ny"]


def test_paused_schedules_have_no_upcoming_run():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    schedules = [
        ScheduleEntry(charter="A", cron="* * * * *", paused=True),
        ScheduleEntry(charter="B", cron="0 * * * *"),
    ]
    assert [r.name for r in upcoming_runs(schedules, now)] == ["B"]


def test_display_names():
    assert display_name("COMMUNITY") == "Community"
    assert display_name("public_goods") == "Public Goods"
    assert display_name("eng-ops.v2") == "Eng Ops V2"
    assert (
        ScheduleEntry(charter="TREASURY", cron="0 12 * * 1", name="Treasury (weekly)").display_name
        == "Treasury (weekly)"
    )


def test_bad_input_is_named():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(StatusError, match="no timezone"):
        next_run_at("* * * * *", "UTC", datetime(2026, 1, 1))
    with pytest.raises(StatusError, match="'Mars/Olympus' is not a known IANA timezone"):
        next_run_at("* * * * *", "Mars/Olympus", now)
    with pytest.raises(StatusError, match="'61 \\* \\* \\* \\*' is not a valid cron"):
        next_run_at("61 * * * *", "UTC", now)
    with pytest.raises(ValidationError, match="is not a valid 5-field cron"):
        ScheduleEntry(charter="A", cron="* * * *")
    with pytest.raises(ValidationError, match="not a known IANA timezone"):
        ScheduleEntry(charter="A", cron="* * * * *", timezone="Nowhere/City")


def _run(i: str, minute: int, title: str | None = None) -> RunRecord:
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
    return RunRecord(id=i, title=title, started_at=t, last_activity=t)


def test_recent_runs_upsert_order_and_cap():
    runs = [_run(f"r{i}", i) for i in range(12)]
    merged = merge_recent_runs([], runs)
    assert [r.id for r in merged] == [f"r{i}" for i in range(11, 1, -1)]
    # An update of a run moves it to the top; an older copy never overwrites a newer one.
    merged = merge_recent_runs(merged, [_run("r3", 30, "done")])
    assert merged[0].id == "r3" and merged[0].title == "done" and len(merged) == 10
    merged = merge_recent_runs(merged, [_run("r3", 3, "stale")])
    assert merged[0].title == "done"


def test_check_upcoming_in_future_reports_problems():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    status = build_status(
        system_credits="5", schedules=[ScheduleEntry(charter="A", cron="* * * * *")], recent_runs=[], now=now
    )
    assert check_upcoming_in_future(status, now) == []
    problems = check_upcoming_in_future(status, now + timedelta(minutes=5))
    assert problems and "is not after" in problems[0]


def test_iso_z_is_javascript_style():
    assert iso_z(datetime(2026, 2, 17, 12, 0, 0, 123456, tzinfo=UTC)) == "2026-02-17T12:00:00.123Z"
    plus_one = timezone(timedelta(hours=1))
    assert iso_z(datetime(2026, 2, 17, 13, 0, tzinfo=plus_one)) == "2026-02-17T12:00:00.000Z"


def test_the_next_run_cache_answers_exactly_what_croniter_answers():
    from govfleet.domain import status as domain

    start = datetime(2026, 3, 29, 0, 58, 30, tzinfo=UTC)  # across a DST change in Berlin
    times = [start + timedelta(seconds=17 * i) for i in range(400)]
    times += list(reversed(times[::7]))  # and backwards in time, which must not reuse a later answer
    for cron, tz in [("* * * * *", "UTC"), ("*/5 * * * *", "Europe/Berlin"), ("30 2 * * *", "Europe/Berlin")]:
        for t in times:
            assert next_run_at(cron, tz, t) == domain._next_run_at(cron, tz, t), (cron, tz, t)
