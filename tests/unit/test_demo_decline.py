"""The demo's decline (scenario gradual-decline, what `govfleet up` plays) walks a guardian through
every level — normal, caution, warning, critical, emergency — whatever moment of its check
interval the decline starts at, and with every check running late by up to a few seconds.

The timeline is played with the simulator's own clock and the guardian's real decision core: the
guardian checks at the interval of the level it is at (`GuardianCore.interval_seconds`), each
check reads the value the simulator serves at that moment. No wall clock is involved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from govfleet.domain.guardian.core import GuardianCore
from govfleet.domain.guardian.levels import GREEN_LEVELS, GuardianRules
from govfleet.domain.guardian.models import GuardianState
from govfleet.domain.guardian.readings import validate_reading
from govfleet.repo_spec import guardian_config, parse_repo_spec
from govfleet.simulator import DEFAULT_STEP_SECONDS, SCENARIOS, TrackerSimulator, reading_body
from tests.conftest import EXAMPLE_SPEC

T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
WALK = ["normal", "caution", "warning", "critical", "emergency"]
# The decline as it was: 54, 53, 52 are the only caution values, 24 s against a 30 s interval.
OLD_DECLINE = [float(v) for v in range(70, 51, -1)] + [51.5, 51.0, 50.5, 50.0, 49.5, 49.0, 48.5]


def levels_seen(values: list, rules: GuardianRules, start: float, late: float) -> list[str]:
    """The levels a guardian reports, check by check, while the simulator plays `values` (one
    step every DEFAULT_STEP_SECONDS from t=0). Its first check is at `start` (seconds into the
    decline); every later check comes `late` seconds after its interval."""
    spec = parse_repo_spec(EXAMPLE_SPEC.read_text())
    config = guardian_config(spec.guardian.model_copy(update={"rules": rules}), spec.cogni_dao)
    core = GuardianCore(config, GuardianState(chain="demo"))
    clock = [0.0]
    sim = TrackerSimulator(step_seconds=DEFAULT_STEP_SECONDS, clock=lambda: clock[0], rules=rules)
    sim.set_values(values, per_request=False)
    seen: list[str] = []
    t = start
    end = start + DEFAULT_STEP_SECONDS * len(values) + 120
    while t < end:
        clock[0] = t
        now = T0 + timedelta(seconds=t)
        core.on_reading(
            validate_reading(reading_body(sim.current_value(), now=now), now=now, staleness_seconds=120), now
        )
        core.drain()
        level = core.state.level
        assert level is not None
        seen.append("normal" if level in GREEN_LEVELS else level)
        t += core.interval_seconds() + late
    return [lv for i, lv in enumerate(seen) if i == 0 or seen[i - 1] != lv]


def phases(rules: GuardianRules) -> list[float]:
    """Start moments across a whole normal interval, every half second."""
    return [i / 2 for i in range(rules.monitoring_interval_normal * 2)]


@pytest.mark.parametrize("late", [0.0, 2.0, 5.0])
def test_the_demo_shows_every_level_from_any_start(late):
    rules = GuardianRules()
    values = SCENARIOS["gradual-decline"]
    for start in phases(rules):
        assert levels_seen(values, rules, start, late) == WALK, f"first check {start} s into the decline"


def test_the_old_decline_skipped_caution_for_some_starts():
    """What this test guards against: the old decline jumped from acceptable to warning for a
    guardian whose normal-interval check fell just before 55 ended."""
    rules = GuardianRules()
    skipped = [s for s in phases(rules) if "caution" not in levels_seen(OLD_DECLINE, rules, s, 0.0)]
    assert skipped, "the harness must be able to see a skipped caution"


def test_the_decline_is_fitted_to_other_rules():
    """`govfleet up` fits the decline to the guardian's rules (MONITORING_INTERVAL_NORMAL=60,
    CAUTION_THRESHOLD=56.5): a longer interval gets a longer caution stretch."""
    rules = GuardianRules(monitoring_interval_normal=60, caution_threshold=Decimal("56.5"))
    sim = TrackerSimulator(scenario="gradual-decline", rules=rules)
    caution = [v for v in sim.values if Decimal("52") <= Decimal(str(v)) < Decimal("56.5")]
    assert len(caution) * DEFAULT_STEP_SECONDS >= 60 + 15
    for start in phases(rules)[::4]:
        assert levels_seen(sim.values, rules, start, 2.0) == WALK, f"first check {start} s into the decline"


def test_the_demo_takes_about_four_minutes():
    values = SCENARIOS["gradual-decline"]
    assert values[0] == 70.0 and values[-1] == 48.5
    assert (len(values) - 1) * DEFAULT_STEP_SECONDS <= 4 * 60
