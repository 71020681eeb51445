"""`govfleet status`'s table (pure rendering of the contract)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from govfleet.commands.status import render_fleet, render_table
from govfleet.status_client import read_extended_fleet, read_extended_schedules


def test_table_shows_credits_countdowns_and_runs():
    now = datetime(2026, 2, 17, 11, 59, 30, tzinfo=UTC)
    body = {
        "systemCredits": "9223372036854775807",
        "upcomingRuns": [
            {"name": "Minutely", "nextRunAt": "2026-02-17T12:00:00.000Z"},
            {"name": "Treasury", "nextRunAt": "2026-02-23T17:00:00.000Z"},
        ],
        "recentRuns": [
            {
                "id": "governance:COMMUNITY-1",
                "title": None,
                "startedAt": "2026-02-17T06:00:00.000Z",
                "lastActivity": "2026-02-17T06:00:05.120Z",
            }
        ],
    }
    table = render_table(body, source="workflow", now=now)
    assert "System credits  9,223,372,036,854,775,807  (≈ $922,337,203,685.47)" in table
    lines = table.splitlines()
    assert any(line.split() == ["Minutely", "2026-02-17", "12:00:00Z", "00:00:30"] for line in lines)
    assert any(line.split() == ["Treasury", "2026-02-23", "17:00:00Z", "6d", "05:00:30"] for line in lines)
    assert any(line.startswith("  governance:COMMUNITY-1  —") for line in lines)
    assert "source: workflow" in lines[0]


def test_empty_status():
    table = render_table(
        {"systemCredits": "0", "upcomingRuns": [], "recentRuns": []},
        source="database",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert "(no scheduled runs)" in table and "(no runs yet)" in table and "≈ $0.00" in table


def test_table_with_the_extended_schedules_shows_paused_and_cron_fallback():
    now = datetime(2026, 2, 17, 11, 59, 30, tzinfo=UTC)
    body = {
        "systemCredits": "5",
        "upcomingRuns": [
            {"name": "Minutely", "nextRunAt": "2026-02-17T12:00:00.000Z"},
            {"name": "Treasury", "nextRunAt": "2026-02-23T17:00:00.000Z"},
        ],
        "recentRuns": [],
    }
    schedules = read_extended_schedules(
        {
            "schedules": [
                {"name": "Minutely", "paused": False, "source": "temporal", "nextRunAt": "2026-02-17T12:00:00.000Z"},
                {"name": "Treasury", "paused": False, "source": "cron-fallback", "nextRunAt": "x", "new": 1},
                {"name": "Outreach", "paused": True, "source": "temporal", "nextRunAt": None},
            ],
            "future": "ignored",
        }
    )
    lines = render_table(body, source="api (workflow)", now=now, schedules=schedules).splitlines()
    assert any(line.split() == ["Minutely", "2026-02-17", "12:00:00Z", "00:00:30"] for line in lines)
    [treasury] = [line for line in lines if "Treasury" in line]
    assert treasury.rstrip().endswith("estimated (cron fallback)")
    [outreach] = [line for line in lines if "Outreach" in line]
    assert outreach.split() == ["Outreach", "—", "—", "paused"]
    # Without the extended status (an older API): the contract alone, no paused line.
    plain = render_table(body, source="api (workflow)", now=now)
    assert "Outreach" not in plain and "estimated" not in plain


def test_an_extended_body_of_the_wrong_shape_is_refused():
    for bad in ({}, {"schedules": {}}, {"schedules": [{"name": "A", "paused": "no", "source": "temporal"}]}, []):
        with pytest.raises(ValueError):
            read_extended_schedules(bad)


def test_each_guardian_is_shown_with_its_incident_and_whether_anyone_is_told():
    now = datetime(2026, 2, 17, 12, 0, 0, tzinfo=UTC)
    fleet = {
        "guardians": [
            {
                "workflow_id": "governance-guardian",
                "status": {
                    "governance_level": "emergency",
                    "current_holder_control": 48.5,
                    "system_status": "fully_paused",
                    "paused": True,
                    "paused_since": "2026-02-17T11:55:00Z",
                    "open_alerts": ["emergency", "critical"],
                    "pauses": [
                        {
                            "scope": "everything",
                            "since": "2026-02-17T11:55:00Z",
                            "paused_by": "guardian",
                            "reason": "holder control 48.5% below 49%",
                        }
                    ],
                    "resume_requires": {
                        "quorum": 2,
                        "admins": 3,
                        "governance_approval": True,
                        "holder_control_at_least": 51.0,
                    },
                    "alerts_active": 2,
                    "check_interval_seconds": 1,
                    "forensic_audit": {
                        "required": True,
                        "required_since": "2026-02-17T11:55:00Z",
                        "pause_key": "governance-guardian:pause-3",
                    },
                    "unreachable_targets": ["sol-treasury-core"],
                    "future_field": 1,
                },
                "last_check_age_seconds": 2,
                "notifications": {
                    "state": "failing",
                    "channels": [
                        {"name": "webhook", "state": "ok"},
                        {
                            "name": "apprise:NOTIFY_URLS",
                            "state": "failing",
                            "consecutive_failures": 3,
                            "last_failed_at": "2026-02-17T11:59:00Z",
                            "last_error": "pagerduty: HTTP 503",
                        },
                    ],
                    "pending_urgent": 1,
                },
            },
            {
                "workflow_id": "governance-guardian-b",
                "status": None,
                "notifications": {"state": "none", "skipped": ["webhook"]},
            },
        ],
        "notifications": [],
        "problems": ["governance-guardian-b: no notification channel: its alerts reach nobody"],
        "warnings": ["system tenant not funded: balance 0 credits, a governance run costs 1000000"],
    }
    text = render_fleet(fleet, now=now)
    assert "    level           emergency, holder control 48.5 %" in text
    assert "    system          fully_paused since 2026-02-17 11:55:00Z (5 min ago)" in text
    assert "    open alerts     emergency, critical" in text
    assert "    pause           everything since 2026-02-17 11:55:00Z (5 min ago) by guardian: holder control" in text
    assert (
        "    resume needs    2 of 3 admins' signatures + the DAO's signed approval, holder control at least 51.0 %"
        in text
    )
    assert "    last check      2 s ago (every 1 s)" in text
    assert (
        "    forensic audit  REQUIRED since 2026-02-17 11:55:00Z (5 min ago) (after governance-guardian:pause-3)"
        in text
    )
    assert "    UNREACHABLE     sol-treasury-core" in text
    assert "    notifications   FAILING: webhook, apprise:NOTIFY_URLS" in text
    assert "apprise:NOTIFY_URLS failing (3 in a row, last 2026-02-17 11:59:00Z (60 s ago)): pagerduty: HTTP 503" in text
    assert "1 urgent notice(s) PENDING" in text
    assert "  governance-guardian-b  (does not answer its status query)" in text
    assert "    notifications   NONE: its alerts reach nobody; not set: webhook" in text
    assert text.index("Problems") < text.index("Warnings") and "  - system tenant not funded" in text


def test_the_fleet_part_of_an_extended_body_is_read_leniently():
    assert read_extended_fleet({"schedules": []}) is None  # an API without it
    fleet = read_extended_fleet({"guardians": [{"workflow_id": "g"}, {"no": "id"}, 3], "warnings": ["w", 1]})
    assert fleet == {"guardians": [{"workflow_id": "g"}], "notifications": [], "problems": [], "warnings": ["w"]}
