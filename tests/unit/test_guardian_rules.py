"""The guardian's decision table at every boundary, intervals, reading validation and
the alert template: plain, fast tests of govfleet/domain/guardian.py."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from govfleet.domain.alerts_template import render_alert
from govfleet.domain.guardian.levels import GuardianRules, determine_level, interval_for
from govfleet.domain.guardian.readings import InvalidReading, validate_reading
from govfleet.repo_spec import guardian_config, parse_repo_spec
from govfleet.simulator import garbage_response, reading_body

RULES = GuardianRules()
NOW = datetime(2025, 11, 16, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("h", "level"),
    [
        (100.0, "excellent"),
        (70.5, "excellent"),
        (70.0, "excellent"),
        (69.99, "good"),
        (60.0, "good"),
        (59.99, "acceptable"),
        (55.0, "acceptable"),
        (54.99, "caution"),
        (52.0, "caution"),
        (51.99, "warning"),
        (51.0, "warning"),
        (50.99, "critical"),
        (49.0, "critical"),
        (48.99, "emergency"),
        (0.0, "emergency"),
    ],
)
def test_decision_table_at_every_boundary(h, level):
    assert determine_level(h, RULES) == level


def test_boundaries_hold_for_integers_and_decimals():
    assert determine_level(55, RULES) == "acceptable"
    assert determine_level(Decimal("50.999"), RULES) == "critical"
    assert determine_level(51, RULES) == "warning"


@pytest.mark.parametrize(
    ("level", "seconds"),
    [
        ("excellent", 30),
        ("good", 30),
        ("acceptable", 30),
        ("caution", 5),
        ("warning", 1),
        ("critical", 1),
        ("emergency", 1),
        (None, 30),
    ],
)
def test_intervals_follow_the_level(level, seconds):
    assert interval_for(level, RULES) == seconds


def test_thresholds_and_intervals_come_from_repo_spec():
    spec = parse_repo_spec(
        "guardian:\n  rules:\n    caution_threshold: 60\n    warning_threshold: 58\n    critical_threshold: 56\n"
        "    emergency_threshold: 50\n    monitoring_interval_normal: 45\n    monitoring_interval_caution: 10\n"
        "    monitoring_interval_critical: 2\n"
    )
    rules = spec.guardian.rules
    assert determine_level(60, rules) == "good"
    assert determine_level(59.99, rules) == "caution"
    assert determine_level(57.99, rules) == "warning"
    assert determine_level(55.99, rules) == "critical"
    assert determine_level(49.99, rules) == "emergency"
    assert [interval_for(x, rules) for x in ("good", "caution", "critical")] == [45, 10, 2]
    cfg = guardian_config(spec.guardian)
    assert cfg.guardian_id == "governance-guardian" and cfg.rules == rules


def test_named_guardian_has_its_own_workflow_id():
    spec = parse_repo_spec("guardian:\n  name: treasury\n")
    assert guardian_config(spec.guardian).guardian_id == "governance-guardian-treasury"


# --- readings ------------------------------------------------------------------------------


def test_valid_reading_is_accepted():
    r = validate_reading(reading_body(70.5, now=NOW), now=NOW + timedelta(seconds=5), staleness_seconds=120)
    assert r.holder_control_percentage == 70.5
    assert (r.total_votes, r.holder_votes, r.seller_votes) == (10000, 7050, 2950)
    assert r.last_updated == NOW


def test_seed_example_reading_is_accepted():
    raw = {
        "holder_control_percentage": 70.5,
        "total_votes": 1000,
        "holder_votes": 705,
        "seller_votes": 295,
        "last_updated": "2025-11-16T10:00:00Z",
    }
    assert validate_reading(raw, now=NOW, staleness_seconds=120).holder_control_percentage == 70.5


def _raw(**changes):
    return {**reading_body(55.0, now=NOW), **changes}


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (_raw(holder_control_percentage=140.0), "out_of_range", "holder_control_percentage 140.0 is outside [0, 100]"),
        (_raw(holder_control_percentage=-1), "out_of_range", "outside [0, 100]"),
        (_raw(holder_control_percentage=math.nan), "not_a_number", "finite"),
        (_raw(holder_control_percentage=math.inf), "not_a_number", "finite"),
        (_raw(holder_control_percentage="55.0"), "not_a_number", "must be a number, got str"),
        (_raw(holder_control_percentage=True), "not_a_number", "got bool"),
        (_raw(holder_control_percentage=None), "missing_field", "holder_control_percentage is missing"),
        ({k: v for k, v in _raw().items() if k != "seller_votes"}, "missing_field", "seller_votes is missing"),
        (_raw(seller_votes=4600), "votes_mismatch", "holder_votes 5500 + seller_votes 4600 != total_votes 10000"),
        (_raw(holder_control_percentage=56.0), "votes_mismatch", "does not match holder_votes/total_votes = 55%"),
        (_raw(total_votes=0, holder_votes=0, seller_votes=0), "votes_mismatch", "undefined without votes"),
        (_raw(holder_votes=-5500, seller_votes=15500), "out_of_range", "holder_votes -5500 is negative"),
        (_raw(last_updated="yesterday"), "not_a_number", "not an ISO 8601 timestamp"),
        (_raw(last_updated=None), "missing_field", "last_updated is missing"),
        (_raw(last_updated="2025-11-16T09:57:59Z"), "stale", "121 s old, more than the 120 s allowed"),
        (_raw(last_updated="2025-11-16T10:01:01Z"), "future", "61 s in the future"),
        ([1, 2, 3], "not_json", "must be a JSON object, got list"),
    ],
)
def test_invalid_readings_are_typed_errors(raw, code, fragment):
    with pytest.raises(InvalidReading) as info:
        validate_reading(raw, now=NOW, staleness_seconds=120)
    assert info.value.code == code
    assert fragment in info.value.message


def test_reading_exactly_at_the_staleness_limit_is_accepted():
    raw = _raw(last_updated="2025-11-16T09:58:00Z")
    assert validate_reading(raw, now=NOW, staleness_seconds=120).holder_control_percentage == 55.0


def test_naive_timestamps_are_read_as_utc():
    raw = _raw(last_updated="2025-11-16T09:59:30")
    assert validate_reading(raw, now=NOW, staleness_seconds=120).last_updated == NOW - timedelta(seconds=30)


def test_percentage_rounding_within_tolerance_is_accepted():
    raw = {
        "holder_control_percentage": 66.67,
        "total_votes": 3,
        "holder_votes": 2,
        "seller_votes": 1,
        "last_updated": NOW.isoformat(),
    }
    assert validate_reading(raw, now=NOW, staleness_seconds=120).holder_control_percentage == 66.67


@pytest.mark.parametrize("kind", ["out_of_range", "votes_mismatch", "stale", "missing_field", "string_value", "nan"])
def test_every_simulator_garbage_kind_is_rejected(kind):
    import json

    status, body = garbage_response(kind, now=NOW)
    assert status == 200
    with pytest.raises((InvalidReading, ValueError)):
        validate_reading(json.loads(body), now=NOW, staleness_seconds=120)


def test_alert_template_is_the_documented_one():
    body = render_alert(
        alert_type="caution",
        holder_control=54.2,
        threshold=Decimal("55.0"),
        action="increased_monitoring",
        timestamp=NOW,
        system_status="operational",
    )
    assert body == (
        "🚨 TIE GOVERNANCE ALERT\n\n"
        "Level: caution\n"
        "Holder Control: 54.2%\n"
        "Threshold: 55%\n"
        "Action Taken: increased_monitoring\n\n"
        "Timestamp: 2025-11-16T10:00:00Z\n"
        "System Status: operational"
    )
