"""`govfleet status`'s table (pure rendering of the contract)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from govfleet.commands.status import render_table
from govfleet.status_client import read_extended_schedules


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
