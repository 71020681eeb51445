"""Contract tests: our `governance.status.v1` against its published schema (docs/status.md).

`STATUS_V1_SCHEMA` is the contract's zod schema transcribed to JSON Schema (zod's default
`z.string().datetime()` accepts UTC with a `Z` suffix and any fraction, no offsets), made
strict about extra keys. `assert_contract` adds the invariants zod cannot express:
at most 3 upcoming runs, soonest first and strictly in the future; at most 10 recent runs,
most recent first; the balance a string of digits.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jsonschema_rs
import pytest
from pydantic import ValidationError

from govfleet.domain.status import (
    GovernanceStatusV1,
    RunRecord,
    ScheduleEntry,
    build_status,
)

ZOD_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"

STATUS_V1_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "governance.status.v1 output",
    "type": "object",
    "additionalProperties": False,
    "required": ["systemCredits", "upcomingRuns", "recentRuns"],
    "properties": {
        "systemCredits": {"type": "string", "description": "System tenant balance (BigInt as string)"},
        "upcomingRuns": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "nextRunAt"],
                "properties": {
                    "name": {"type": "string"},
                    "nextRunAt": {"type": "string", "pattern": ZOD_DATETIME},
                },
            },
        },
        "recentRuns": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "title", "startedAt", "lastActivity"],
                "properties": {
                    "id": {"type": "string"},
                    "title": {"type": ["string", "null"]},
                    "startedAt": {"type": "string", "pattern": ZOD_DATETIME},
                    "lastActivity": {"type": "string", "pattern": ZOD_DATETIME},
                },
            },
        },
    },
}
_VALIDATOR = jsonschema_rs.validator_for(STATUS_V1_SCHEMA)


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def assert_contract(body: dict | str, *, now: datetime) -> dict:
    """`body` (a decoded or raw JSON answer) is the contract with its invariants,
    upcoming runs strictly after `now`. Returns the decoded body."""
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in _VALIDATOR.iter_errors(body)]
    assert not errors, errors
    assert body["systemCredits"].isdigit() and (body["systemCredits"] == "0" or body["systemCredits"][0] != "0")
    up = [_dt(r["nextRunAt"]) for r in body["upcomingRuns"]]
    assert len(up) <= 3
    assert up == sorted(up), "upcoming runs must be soonest first"
    for r, t in zip(body["upcomingRuns"], up, strict=True):
        assert t > now, f"upcoming run {r['name']} at {r['nextRunAt']} is not after {now.isoformat()}"
    recent = [_dt(r["lastActivity"]) for r in body["recentRuns"]]
    assert len(recent) <= 10
    assert recent == sorted(recent, reverse=True), "recent runs must be most recent first"
    return body


NOW = datetime(2026, 2, 17, 11, 59, 30, 250000, tzinfo=UTC)
SCHEDULES = [
    ScheduleEntry(charter="COMMUNITY", cron="0 */6 * * *"),
    ScheduleEntry(charter="ENGINEERING", cron="30 9 * * 1-5", timezone="Europe/Berlin"),
    ScheduleEntry(charter="TREASURY", cron="0 12 * * 1", timezone="America/New_York"),
    ScheduleEntry(charter="MINUTELY", cron="* * * * *"),
]


def _runs(n: int) -> list[RunRecord]:
    base = NOW - timedelta(days=1)
    return [
        RunRecord(
            id=f"r{i}",
            title=None if i % 3 == 0 else f"Run {i}",
            started_at=base + timedelta(minutes=i),
            last_activity=base + timedelta(minutes=i, seconds=5),
        )
        for i in range(n)
    ]


def test_built_status_matches_the_published_schema():
    status = build_status(system_credits=9_223_372_036_854_775_807, schedules=SCHEDULES, recent_runs=_runs(14), now=NOW)
    body = assert_contract(status.model_dump_json(), now=NOW)
    assert body["systemCredits"] == "9223372036854775807"  # above 2**53: exact only as a string
    assert [r["name"] for r in body["upcomingRuns"]] == [
        "Community",
        "Minutely",
        "Engineering",
    ]  # a tie at 12:00 goes by name
    assert body["upcomingRuns"][0]["nextRunAt"] == "2026-02-17T12:00:00.000Z"
    assert len(body["recentRuns"]) == 10 and body["recentRuns"][0]["id"] == "r13"
    assert body["recentRuns"][1]["title"] is None  # r12: nullable title is present as null
    assert set(body) == {"systemCredits", "upcomingRuns", "recentRuns"}


def test_just_passed_fire_time_is_never_answered():
    """A cron firing every minute, asked 1 ms, 1 s and 59.999 s after a fire time."""
    every_minute = [ScheduleEntry(charter="MINUTELY", cron="* * * * *")]
    fire = datetime(2026, 2, 17, 12, 0, tzinfo=UTC)
    for after in (
        timedelta(0),
        timedelta(milliseconds=1),
        timedelta(seconds=1),
        timedelta(seconds=59, microseconds=999000),
    ):
        now = fire + after
        body = assert_contract(
            build_status(system_credits=0, schedules=every_minute, recent_runs=[], now=now).model_dump_json(), now=now
        )
        assert body["upcomingRuns"][0]["nextRunAt"] == "2026-02-17T12:01:00.000Z"


def test_contract_refuses_what_the_published_schema_refuses():
    ok = {"systemCredits": "1", "upcomingRuns": [], "recentRuns": []}
    GovernanceStatusV1.model_validate(ok)
    for bad, field in [
        ({**ok, "systemCredits": 1}, "systemCredits"),
        ({**ok, "systemCredits": "-1"}, "systemCredits"),
        ({**ok, "systemCredits": "1e3"}, "systemCredits"),
        ({**ok, "upcomingRuns": [{"name": "A", "nextRunAt": "2026-02-17T12:00:00"}]}, "nextRunAt"),
        (
            {
                **ok,
                "recentRuns": [
                    {"id": "x", "startedAt": "2026-02-17T12:00:00Z", "lastActivity": "2026-02-17T12:00:00Z"}
                ],
            },
            "title",
        ),
        ({**ok, "extra": True}, "extra"),
    ]:
        with pytest.raises(ValidationError) as exc:
            GovernanceStatusV1.model_validate(bad)
        assert field in str(exc.value)


def test_schema_itself_rejects_offsets_and_missing_fields():
    assert not _VALIDATOR.is_valid(
        {
            "systemCredits": "1",
            "upcomingRuns": [{"name": "A", "nextRunAt": "2026-02-17T12:00:00+01:00"}],
            "recentRuns": [],
        }
    )
    assert not _VALIDATOR.is_valid({"systemCredits": "1", "upcomingRuns": []})
    assert _VALIDATOR.is_valid(
        {
            "systemCredits": "1",
            "upcomingRuns": [{"name": "A", "nextRunAt": "2026-02-17T12:00:00.000Z"}],
            "recentRuns": [],
        }
    )


def test_openapi_schema_of_the_route_is_the_contract():
    """The API documents exactly these fields (so schemathesis checks the same thing)."""
    schema = GovernanceStatusV1.model_json_schema(mode="serialization")
    assert schema["required"] == ["systemCredits", "upcomingRuns", "recentRuns"]
    assert schema["additionalProperties"] is False
    up = schema["$defs"]["UpcomingRun"]["properties"]["nextRunAt"]
    assert up["format"] == "date-time" and up["pattern"] == ZOD_DATETIME
