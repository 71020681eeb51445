"""Upcoming runs across the 2027 daylight-saving changes of New York and Berlin, compared with
the times Temporal fires: real schedules on the dev server (created as the reconciler creates
them, with a start time just before the change so that the change is among the next action
times Temporal lists), the status workflow and the API with its clock set to those days.

- `30 2 * * *` America/New_York: 02:30 does not exist on 2027-03-14; Temporal fires on the 13th
  at 07:30Z and next on the 15th at 06:30Z, nothing on the 14th.
- `30 2 * 10 0` Europe/Berlin: 02:30 happens twice on Sunday 2027-10-31; Temporal fires once, at
  01:30Z (not at 00:30Z).
- Both 2027 fall-back days, every minute of them: the cron fallback's next time equals the first
  of the times the dev server lists after that clock (`30 1 * 11 0` in New York fires 05:30Z and
  06:30Z on 2027-11-07; east of UTC Temporal fires some instants an hour past the wall time).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleSpec

from govfleet.domain.status import next_run_at
from schedules.desired import default_owner, desired_schedules
from schedules.reconciler import build_schedule, schedule_memo
from tests.integration.test_status_support import api_stack, assert_contract, unique, wait_status_ready

NY = {"charter": "NYC", "cron": "30 2 * * *", "timezone": "America/New_York"}
BERLIN = {"charter": "BERLIN", "cron": "30 2 * 10 0", "timezone": "Europe/Berlin"}
STARTS = {"NYC": datetime(2027, 3, 12, tzinfo=UTC), "BERLIN": datetime(2027, 10, 20, tzinfo=UTC)}


def _z(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def _create(stack) -> dict[str, list[datetime]]:
    """Our schedules, starting just before the change; returns Temporal's next action times."""
    spec = stack.config.spec
    owner = default_owner(spec)
    times = {}
    for d in desired_schedules(spec, unique("idle")):
        charter = d.args.get("charter")
        if charter not in STARTS:
            continue
        schedule = build_schedule(d, owner)
        schedule.spec = dataclasses.replace(schedule.spec, start_at=STARTS[charter])
        handle = await stack.client.create_schedule(d.schedule_id, schedule, memo=schedule_memo(d, owner))
        times[charter] = list((await handle.describe()).info.next_action_times)
    return times


async def _status_at(http: httpx.AsyncClient, stack, at: datetime) -> tuple[dict, dict]:
    stack.clock.frozen = at
    try:
        body = assert_contract((await http.get("/api/v1/governance/status")).text, now=at)
        ext = (await http.get("/api/v1/governance/status/extended")).json()
    finally:
        stack.clock.frozen = None
    return body, ext


async def test_upcoming_runs_are_the_times_temporal_fires_across_dst(dev_env, make_database, tmp_path):
    url = make_database()
    async with (
        api_stack(dev_env, url, tmp_path, schedules=[NY, BERLIN], temporal_schedules=False, start_status=False) as s,
        httpx.AsyncClient(base_url=s.url, timeout=10) as http,
    ):
        temporal = await _create(s)
        # What Temporal itself will do.
        ny, berlin = temporal["NYC"], temporal["BERLIN"]
        assert ny[:3] == [
            datetime(2027, 3, 12, 7, 30, tzinfo=UTC),
            datetime(2027, 3, 13, 7, 30, tzinfo=UTC),
            datetime(2027, 3, 15, 6, 30, tzinfo=UTC),
        ]
        assert not [t for t in ny if t.date() == datetime(2027, 3, 14).date()]
        assert berlin[:2] == [datetime(2027, 10, 24, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 1, 30, tzinfo=UTC)]
        assert datetime(2027, 10, 31, 0, 30, tzinfo=UTC) not in berlin
        # The cron fallback agrees with Temporal for every listed time.
        for cron, tz, listed in [(NY["cron"], NY["timezone"], ny), (BERLIN["cron"], BERLIN["timezone"], berlin)]:
            assert [next_run_at(cron, tz, t) for t in listed[:-1]] == listed[1:], (cron, tz)

        from govfleet.contracts.status import StatusUpdate
        from govfleet.status_client import tell_status

        await tell_status(s.client, s.task_queue, StatusUpdate(source="test"))
        await wait_status_ready(s)

        # The day before New York's spring forward: the next run is the 15th at 06:30Z.
        body, ext = await _status_at(http, s, datetime(2027, 3, 13, 12, 0, tzinfo=UTC))
        assert {r["name"]: r["nextRunAt"] for r in body["upcomingRuns"]} == {
            "Nyc": "2027-03-15T06:30:00.000Z",
            "Berlin": "2027-10-24T00:30:00.000Z",
        }
        assert {r["name"]: r["source"] for r in ext["schedules"]} == {"Nyc": "temporal", "Berlin": "temporal"}
        assert ext["schedulesSource"] == "temporal"
        # In Berlin's repeated hour: the one fire at 01:30Z, also when asked at 00:45Z.
        for at in (datetime(2027, 10, 30, 12, 0, tzinfo=UTC), datetime(2027, 10, 31, 0, 45, tzinfo=UTC)):
            body, _ = await _status_at(http, s, at)
            assert [r["nextRunAt"] for r in body["upcomingRuns"] if r["name"] == "Berlin"] == [
                "2027-10-31T01:30:00.000Z"
            ]
        # Every upcoming run we announce is a time Temporal lists.
        for at in (datetime(2027, 3, 12, 0, 0, tzinfo=UTC), datetime(2027, 3, 14, 3, 0, tzinfo=UTC)):
            body, _ = await _status_at(http, s, at)
            for r in body["upcomingRuns"]:
                assert r["nextRunAt"] in {_z(t) for t in temporal["NYC" if r["name"] == "Nyc" else "BERLIN"]}


# Crons that fire in (or around) the repeated hour of each 2027 fall-back day, few enough per day
# that Temporal's ten listed next action times reach past the day's end.
FALL_BACK_DAYS = {
    "America/New_York": (datetime(2027, 11, 7), ["30 1 * 11 0", "*/20 1 7 11 *", "0,30 1,2 7 11 *", "45 0-3 7 11 *"]),
    "Europe/Berlin": (datetime(2027, 10, 31), ["30 2 * 10 0", "*/20 2 31 10 *", "0,30 2,3 31 10 *", "45 1-4 31 10 *"]),
}


async def test_the_cron_fallback_agrees_with_temporal_every_minute_of_both_fall_back_days(dev_env):
    client = dev_env.client
    created = []
    try:
        for tz, (day, crons) in FALL_BACK_DAYS.items():
            zone = ZoneInfo(tz)
            first = day.replace(tzinfo=zone).astimezone(UTC)  # local midnight
            last = (day + timedelta(days=1)).replace(tzinfo=zone).astimezone(UTC)
            for cron in crons:
                sid = unique("fallback")
                handle = await client.create_schedule(
                    sid,
                    Schedule(
                        action=ScheduleActionStartWorkflow("NotRun", id=sid, task_queue=unique("nobody")),
                        # Temporal's own chain of fires through the night, from before the day.
                        spec=ScheduleSpec(
                            cron_expressions=[cron], time_zone_name=tz, start_at=first - timedelta(hours=6)
                        ),
                    ),
                )
                created.append(handle)
                listed = list((await handle.describe()).info.next_action_times)
                assert listed and listed[-1] >= last, (cron, tz, listed)  # the list covers the whole day
                clock, minutes = first, 0
                while clock < last:
                    expected = min(t for t in listed if t > clock)
                    assert next_run_at(cron, tz, clock) == expected, (cron, tz, clock, listed)
                    clock += timedelta(minutes=1)
                    minutes += 1
                assert minutes == 25 * 60  # the fall-back day has 25 hours
    finally:
        for handle in created:
            await handle.delete()
