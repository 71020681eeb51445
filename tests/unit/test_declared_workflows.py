"""Declared long-lived workflows, pure: what a repo-spec declares (several guardians included),
the configuration hash, and the plan against what runs."""

from __future__ import annotations

import pytest

from govfleet.contracts.guardian import GUARDIAN_TASK_TIMEOUT
from govfleet.domain.declared import ActualWorkflow, config_hash, plan_workflows, render_workflow_plan
from govfleet.repo_spec import RepoSpecError, guardian_config, parse_repo_spec
from govfleet.settings import apply_env_overrides, load_settings
from schedules.declared import declared_workflows, watchdog_config

TWO_DAOS = """
guardians:
  - name: dao-a
    tracker: {url: "http://tracker-a.test"}
    breakers: [{name: redemptions-a, url: "http://a.test", scope: redemptions}]
  - name: dao-b
    tracker: {url: "http://tracker-b.test"}
"""


def test_no_guardian_unless_the_file_declares_one():
    """The original system's files declare no guardian: none is started (and none pointed at a
    default tracker address). The watchdog watches the status workflow; the heartbeat's
    incidents go to the channels of the default guardian id (the environment's channels)."""
    for text in ("", "governance: {schedules: []}\n", "cogni_dao: {name: x}\nwatchdog: {check_seconds: 5}\n"):
        spec = parse_repo_spec(text)
        assert spec.declared_guardians() == [] and spec.primary_guardian_id == "governance-guardian"
        assert [d.workflow_id for d in declared_workflows(spec)] == ["governance-status", "governance-watchdog"]
        watched = watchdog_config(spec)
        assert [(w.workflow_id, w.notify_guardian) for w in watched.workflows] == [
            ("governance-status", "governance-guardian")
        ]
    # Environment overrides of the guardian do not declare one either.
    env = load_settings({"VOTING_TRACKER_URL": "http://elsewhere.test"})
    assert apply_env_overrides(parse_repo_spec(""), env).declared_guardians() == []


def test_the_guardian_block_alone_is_governance_guardian():
    spec = parse_repo_spec("guardian: {}\n")
    ids = [d.workflow_id for d in declared_workflows(spec)]
    assert ids == ["governance-guardian", "governance-status", "governance-watchdog"]
    [guardian] = [d for d in declared_workflows(spec) if d.desired.kind == "guardian"]
    assert guardian.task_timeout == GUARDIAN_TASK_TIMEOUT
    assert guardian.desired.memo_extra == {"tracker_url": spec.guardian.tracker.url}


def test_guardians_declare_one_workflow_each_and_no_default_guardian():
    spec = parse_repo_spec(TWO_DAOS)
    ids = [d.workflow_id for d in declared_workflows(spec)]
    assert ids == ["governance-guardian-dao-a", "governance-guardian-dao-b", "governance-status", "governance-watchdog"]
    a = spec.declared_guardians()[0]
    assert guardian_config(a).tracker_url == "http://tracker-a.test"
    watched = watchdog_config(spec)
    assert [(w.workflow_id, w.notify_guardian) for w in watched.workflows] == [
        ("governance-guardian-dao-a", "governance-guardian-dao-a"),
        ("governance-guardian-dao-b", "governance-guardian-dao-b"),
        ("governance-status", "governance-guardian-dao-a"),
    ]


def test_the_guardian_block_and_guardians_together():
    spec = parse_repo_spec("guardian: {}\n" + TWO_DAOS)
    assert [g.workflow_id for g in spec.declared_guardians()] == [
        "governance-guardian",
        "governance-guardian-dao-a",
        "governance-guardian-dao-b",
    ]


def test_environment_overrides_touch_only_the_guardian_block():
    env = load_settings({"VOTING_TRACKER_URL": "http://elsewhere.test"})
    alone = apply_env_overrides(parse_repo_spec(TWO_DAOS), env)
    assert [g.workflow_id for g in alone.declared_guardians()] == [
        "governance-guardian-dao-a",
        "governance-guardian-dao-b",
    ]
    assert alone.declared_guardians()[0].tracker.url == "http://tracker-a.test"
    both = apply_env_overrides(parse_repo_spec("guardian: {}\n" + TWO_DAOS), env)
    assert both.guardian.tracker.url == "http://elsewhere.test"
    assert both.declared_guardians()[1].tracker.url == "http://tracker-a.test"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("guardians: [{}]", "guardians: entry [0] has no name (its workflow id is governance-guardian-<name>)"),
        (
            "guardians: [{name: a}, {name: a}]",
            "guardians: duplicate guardian name 'a' at guardians[1] (first at guardians[0])",
        ),
        (
            "guardian: {name: a}\nguardians: [{name: a}]",
            "'governance-guardian-a' is both the `guardian` block's workflow id and one in `guardians`; rename one",
        ),
        ("guardians: [{name: 'a b'}]", "guardians[0].name: 'a b' is not a valid guardian name"),
    ],
)
def test_bad_guardians_are_named(text, problem):
    with pytest.raises(RepoSpecError) as info:
        parse_repo_spec(text)
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_plan_creates_reconfigures_or_leaves_alone():
    spec = parse_repo_spec("guardian: {}\n")
    desired = [d.desired for d in declared_workflows(spec)]
    g, status, watchdog = desired
    actual = {
        g.workflow_id: ActualWorkflow(workflow_id=g.workflow_id, status="TERMINATED", config_hash=g.config_hash),
        status.workflow_id: ActualWorkflow(workflow_id=status.workflow_id, status="RUNNING"),  # no hash: not ours
        watchdog.workflow_id: ActualWorkflow(workflow_id=watchdog.workflow_id, status="RUNNING", config_hash="old"),
    }
    items = plan_workflows(desired, actual)
    assert [(i.workflow_id, i.action) for i in items] == [
        ("governance-guardian", "create"),
        ("governance-status", "unchanged"),
        ("governance-watchdog", "update"),
    ]
    assert "its last run is terminated" in items[0].reason
    text = render_workflow_plan(items)
    assert "  + create     governance-guardian" in text
    assert "  ~ update     governance-watchdog" in text
    assert "Plan: 1 to start, 1 to reconfigure, 1 unchanged." in text
    same = {
        d.workflow_id: ActualWorkflow(workflow_id=d.workflow_id, status="RUNNING", config_hash=d.config_hash)
        for d in desired
    }
    assert {i.action for i in plan_workflows(desired, same)} == {"unchanged"}
    assert {i.action for i in plan_workflows(desired, {})} == {"create"}


def test_the_hash_follows_the_configuration():
    spec = parse_repo_spec("guardian: {}\n")
    cfg = guardian_config(spec.guardian)
    assert config_hash(cfg) == config_hash(cfg.model_copy())
    faster = cfg.model_copy(update={"rules": cfg.rules.model_copy(update={"monitoring_interval_normal": 7})})
    assert config_hash(faster) != config_hash(cfg)


def test_govfleet_status_lists_the_declared_workflows():
    from datetime import UTC, datetime

    from govfleet.commands.status import render_table

    table = render_table(
        {"systemCredits": "0", "upcomingRuns": [], "recentRuns": []},
        source="workflow",
        now=datetime(2027, 1, 4, tzinfo=UTC),
        workflows=[
            {"workflow_id": "governance-guardian", "kind": "guardian", "running": False, "status": "TERMINATED"},
            {"workflow_id": "governance-status", "kind": "status", "running": True, "status": "RUNNING"},
            {"workflow_id": "governance-watchdog", "kind": "watchdog", "running": None, "status": "UNKNOWN"},
        ],
    )
    lines = table.splitlines()
    assert "Declared workflows" in lines
    assert ["governance-guardian", "guardian", "NOT", "RUNNING", "(TERMINATED)"] in [line.split() for line in lines]
    assert ["governance-status", "status", "running"] in [line.split() for line in lines]
    assert ["governance-watchdog", "watchdog", "unknown"] in [line.split() for line in lines]
