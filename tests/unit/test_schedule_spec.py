"""Pure desired state, spec hash, plan and its rendering."""

from __future__ import annotations

import pytest

from govfleet.contracts.governance_run import GOVERNANCE_RUN_WORKFLOW, GovernanceRunInput
from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID, HEARTBEAT_WORKFLOW, HeartbeatInput
from govfleet.domain.schedule_spec import ActualSchedule, make_plan, render_plan
from govfleet.repo_spec import parse_repo_spec
from schedules.desired import default_owner, desired_schedules
from tests.conftest import EXAMPLE_SPEC

OWNER = "governance-fleet:cogni-demo"


def example(text_edit=lambda t: t):
    return parse_repo_spec(text_edit(EXAMPLE_SPEC.read_text()))


def actual_for(d, owner=OWNER, **over) -> ActualSchedule:
    data = dict(
        schedule_id=d.schedule_id, owner=owner, spec_hash=d.spec_hash, stored=d.canonical(), observed=d.observable()
    )
    data.update(over)
    return ActualSchedule(**data)


def test_desired_from_example_spec():
    spec = example()
    ds = desired_schedules(spec, "tq")
    assert [d.schedule_id for d in ds] == [
        HEARTBEAT_SCHEDULE_ID,
        "governance:community",
        "governance:engineering",
        "governance:treasury",
    ]
    hb = ds[0]
    assert hb.workflow == HEARTBEAT_WORKFLOW and hb.interval_seconds == 300 and hb.cron is None
    assert HeartbeatInput.model_validate(hb.args).low_balance_threshold_credits == 1_000_000
    eng = ds[2]
    assert eng.workflow == GOVERNANCE_RUN_WORKFLOW and eng.cron == "30 9 * * 1-5" and eng.timezone == "Europe/Berlin"
    run = GovernanceRunInput.model_validate(eng.args)
    assert run.credits_per_run == 1_000_000 and run.budget_credits_per_day == 100_000_000
    assert run.schedule_id == "governance:engineering" and run.entrypoint == "BRIEF"
    assert default_owner(spec) == OWNER


def test_hash_is_stable_and_sees_cron_only_and_timezone_only_edits():
    base = {d.schedule_id: d.spec_hash for d in desired_schedules(example(), "tq")}
    assert base == {d.schedule_id: d.spec_hash for d in desired_schedules(example(), "tq")}
    cron = {
        d.schedule_id: d.spec_hash
        for d in desired_schedules(example(lambda t: t.replace('"30 9 * * 1-5"', '"30 10 * * 1-5"')), "tq")
    }
    assert [k for k in base if base[k] != cron[k]] == ["governance:engineering"]
    tz = {
        d.schedule_id: d.spec_hash
        for d in desired_schedules(example(lambda t: t.replace("Europe/Berlin", "Europe/Paris")), "tq")
    }
    assert [k for k in base if base[k] != tz[k]] == ["governance:engineering"]
    hb = {
        d.schedule_id: d.spec_hash
        for d in desired_schedules(example(lambda t: t.replace("interval_minutes: 5", "interval_minutes: 10")), "tq")
    }
    assert [k for k in base if base[k] != hb[k]] == [HEARTBEAT_SCHEDULE_ID]
    # Budget is part of every run's args: all charters change, the heartbeat does not.
    budget = {
        d.schedule_id: d.spec_hash
        for d in desired_schedules(
            example(lambda t: t.replace("budget_credits_per_day: 100000000", "budget_credits_per_day: 5")), "tq"
        )
    }
    assert sorted(k for k in base if base[k] != budget[k]) == [
        "governance:community",
        "governance:engineering",
        "governance:treasury",
    ]


def test_catchup_window_is_clamped_to_temporals_minimum():
    spec = example(lambda t: t.replace("catchup_window_seconds: 60", "catchup_window_seconds: 0"))
    assert {d.catchup_window_seconds for d in desired_schedules(spec, "tq")} == {10}


def test_plan_create_unchanged_update_delete_blocked():
    ds = desired_schedules(example(), "tq")
    hb, community, engineering, _treasury = ds
    edited = desired_schedules(example(lambda t: t.replace('"0 */6 * * *"', '"0 */4 * * *"')), "tq")
    actual = {
        hb.schedule_id: actual_for(hb, paused=True, note="maintenance"),
        community.schedule_id: actual_for(community),  # desired is now the edited cron
        engineering.schedule_id: actual_for(engineering, owner=None),  # someone else's, on our id
        "governance:old": ActualSchedule(schedule_id="governance:old", owner=OWNER),
        "governance:alien": ActualSchedule(schedule_id="governance:alien", owner="another-repo"),
    }
    plan = make_plan(edited, actual, OWNER)
    by = {i.schedule_id: i for i in plan.items}
    assert by[HEARTBEAT_SCHEDULE_ID].action == "unchanged" and by[HEARTBEAT_SCHEDULE_ID].paused
    assert by["governance:community"].action == "update"
    assert [(c.field, c.old, c.new) for c in by["governance:community"].changes] == [
        ("cron", "0 */6 * * *", "0 */4 * * *")
    ]
    assert by["governance:engineering"].action == "blocked"
    assert by["governance:treasury"].action == "create"
    assert by["governance:old"].action == "delete"
    assert "governance:alien" not in by
    assert plan.writes_planned == 3 and [i.schedule_id for i in plan.blocked] == ["governance:engineering"]
    text = render_plan(plan)
    assert "~ update     governance:community" in text
    assert 'cron: "0 */6 * * *" → "0 */4 * * *"' in text
    assert "! blocked    governance:engineering" in text and "owned by nobody" in text
    assert "[paused: 'maintenance'; stays paused]" in text
    assert text.endswith("Plan: 1 to create, 1 to update, 1 to delete, 1 unchanged, 1 blocked.")


def test_out_of_band_drift_is_an_update():
    ds = desired_schedules(example(), "tq")
    d = ds[1]
    observed = {**d.observable(), "task_queue": "somewhere-else"}
    plan = make_plan([d], {d.schedule_id: actual_for(d, observed=observed)}, OWNER)
    item = plan.items[0]
    assert item.action == "update" and item.reason == "changed outside repo-spec"
    assert [(c.field, c.old, c.new) for c in item.changes] == [("task_queue", "somewhere-else", "tq")]


def test_missing_hash_is_an_update_and_bad_input_is_refused():
    d = desired_schedules(example(), "tq")[0]
    plan = make_plan([d], {d.schedule_id: actual_for(d, spec_hash=None, stored=None)}, OWNER)
    assert plan.items[0].action == "update" and "no spec hash stored" in plan.items[0].reason
    with pytest.raises(ValueError, match="duplicate schedule ids"):
        make_plan([d, d], {}, OWNER)
    with pytest.raises(ValueError, match="task_queue"):
        desired_schedules(example(), "")


def test_a_spec_edit_is_not_mistaken_for_an_out_of_band_edit():
    old = desired_schedules(example(), "tq")[2]  # ENGINEERING, Europe/Berlin
    new = desired_schedules(example(lambda t: t.replace("Europe/Berlin", "Europe/Paris")), "tq")[2]
    plan = make_plan([new], {old.schedule_id: actual_for(old)}, OWNER)
    item = plan.items[0]
    assert item.action == "update" and item.reason == "repo-spec changed"
    # One line for the timezone (the run's copy in args is not repeated).
    assert [(c.field, c.old, c.new) for c in item.changes] == [("timezone", "Europe/Berlin", "Europe/Paris")]
    # Both at once: edited in the spec AND by hand in Temporal.
    hand = actual_for(old, observed={**old.observable(), "task_queue": "elsewhere"})
    both = make_plan([new], {old.schedule_id: hand}, OWNER).items[0]
    assert both.reason == "repo-spec changed; changed outside repo-spec"
    assert {c.field for c in both.changes} == {"timezone", "task_queue"}
