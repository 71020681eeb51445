"""The original system's repo-spec, unchanged: free-word entrypoints for the agent gateway, a
HEARTBEAT entry that is the heartbeat, lowercase schedule ids; the plan's adopt and migrate
lines; the migration's backfill window; a status client that ignores fields it does not know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govfleet.contracts.governance_run import GovernanceRunInput
from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID, HeartbeatInput
from govfleet.domain.governance_run import GATEWAY_SCOPE, GrantFacts, grant_refusal, required_scope
from govfleet.domain.schedule_spec import ActualSchedule, make_plan, render_plan
from govfleet.repo_spec import RepoSpecError, cron_max_gap_minutes, load_repo_spec, parse_repo_spec
from govfleet.settings import apply_env_overrides, load_settings
from govfleet.status_client import read_status_v1
from schedules.desired import default_owner, desired_schedules
from schedules.reconciler import backfill_window

ORIGINAL = Path(__file__).resolve().parent.parent / "fixtures" / "original-repo-spec.yaml"
# The shape the issue names, in flow style.
SHAPE = (
    'governance: {schedules: [{charter: COMMUNITY, cron: "0 */6 * * *", timezone: UTC, entrypoint: GOVERN}, '
    '{charter: HEARTBEAT, cron: "0 * * * *", timezone: UTC, entrypoint: HEARTBEAT}]}'
)
GATEWAY = "  agent_gateway: {url: 'http://127.0.0.1:18789/governance/run', token: '${AGENT_GATEWAY_TOKEN}'}\n"


def with_gateway(text: str) -> str:
    return text.replace("governance:\n", "governance:\n" + GATEWAY, 1)


def problems(text: str) -> list[str]:
    with pytest.raises(RepoSpecError) as info:
        parse_repo_spec(text)
    return info.value.problems


def test_the_originals_file_parses_unchanged():
    spec = load_repo_spec(ORIGINAL)
    g = spec.governance
    assert [(s.charter, s.entrypoint, s.schedule_id) for s in g.schedules] == [
        ("COMMUNITY", "GOVERN", "governance:community"),
        ("HEARTBEAT", "HEARTBEAT", "governance:heartbeat"),
        ("ENGINEERING", "ENGINEERING", "governance:engineering"),
    ]
    assert [s.uses_gateway for s in g.schedules] == [True, False, True]
    # No governance.heartbeat block: the defaults, with the entry's cadence (hourly).
    assert g.heartbeat_entry is not None and g.heartbeat_entry.cron == "0 * * * *"
    assert g.heartbeat.interval_minutes == 60 and g.heartbeat.low_balance_threshold_credits == 1_000_000
    assert [s.charter for s in g.charter_schedules] == ["COMMUNITY", "ENGINEERING"]
    # Its other sections are kept as they are; the DAO's chain id is the original's string.
    assert spec.cogni_dao.chain_id == 8453 and spec.model_extra and "gates" in spec.model_extra
    # Without a gateway, reconcile is refused, naming each charter.
    assert g.gateway_problems() == [
        "governance.schedules[0]: charter 'COMMUNITY' has entrypoint 'GOVERN', which is handed to the agent "
        "gateway, but governance.agent_gateway.url is not set",
        "governance.schedules[2]: charter 'ENGINEERING' has entrypoint 'ENGINEERING', which is handed to the agent "
        "gateway, but governance.agent_gateway.url is not set",
    ]
    with pytest.raises(ValueError, match=r"charter 'COMMUNITY': entrypoint 'GOVERN' needs governance\.agent_gateway"):
        desired_schedules(spec, "tq")


def test_the_issues_shape_parses_and_builds_its_schedules():
    spec = parse_repo_spec(SHAPE.replace("governance: {", "governance: {agent_gateway: {url: '${GW_URL}'}, ", 1))
    hb, community = desired_schedules(spec, "tq")
    assert (hb.schedule_id, hb.cron, hb.timezone, hb.interval_seconds) == (
        HEARTBEAT_SCHEDULE_ID,
        "0 * * * *",
        "UTC",
        None,
    )
    assert HeartbeatInput.model_validate(hb.args).interval_minutes == 60
    assert hb.summary == 'cron "0 * * * *" UTC · HEARTBEAT'
    run = GovernanceRunInput.model_validate(community.args)
    assert (community.schedule_id, run.schedule_id, run.entrypoint, run.agent_url, run.agent_token) == (
        "governance:community",
        "governance:community",
        "GOVERN",
        "${GW_URL}",
        None,
    )
    assert community.legacy_ids == ["governance:COMMUNITY"]
    assert community.summary == 'cron "0 */6 * * *" UTC · GOVERN via gateway'


def test_gateway_settings_are_in_the_input_and_the_hash():
    spec = parse_repo_spec(with_gateway(ORIGINAL.read_text()))
    ds = {d.schedule_id: d for d in desired_schedules(spec, "tq")}
    run = GovernanceRunInput.model_validate(ds["governance:community"].args)
    assert (run.agent_url, run.agent_token, run.agent_timeout_seconds) == (
        "http://127.0.0.1:18789/governance/run",
        "${AGENT_GATEWAY_TOKEN}",
        120,
    )
    moved = parse_repo_spec(with_gateway(ORIGINAL.read_text()).replace("18789", "18790"))
    changed = {d.schedule_id for d in desired_schedules(moved, "tq") if d.spec_hash != ds[d.schedule_id].spec_hash}
    assert changed == {"governance:community", "governance:engineering"}


def test_builtin_runs_keep_their_input_and_hash():
    """Only gateway runs carry the gateway fields, so the other schedules' hashes are as before."""
    spec = parse_repo_spec('governance: {schedules: [{charter: ops, cron: "0 * * * *", entrypoint: BRIEF}]}')
    _, ops = desired_schedules(spec, "tq")
    assert "agent_token" not in ops.args and "agent_timeout_seconds" not in ops.args and ops.legacy_ids == []


def test_env_overrides_keep_the_heartbeat_entry():
    spec = parse_repo_spec(with_gateway(ORIGINAL.read_text()))
    again = apply_env_overrides(spec, load_settings({"VOTING_TRACKER_URL": "http://127.0.0.1:9"}))
    assert again.governance.heartbeat == spec.governance.heartbeat
    assert [d.spec_hash for d in desired_schedules(again, "tq")] == [d.spec_hash for d in desired_schedules(spec, "tq")]


def test_heartbeat_block_gives_thresholds_and_the_entry_the_cadence():
    text = with_gateway(ORIGINAL.read_text()).replace(
        "governance:\n", "governance:\n  heartbeat: {low_balance_threshold_credits: 5, grace_seconds: 7}\n", 1
    )
    hb = desired_schedules(parse_repo_spec(text), "tq")[0]
    args = HeartbeatInput.model_validate(hb.args)
    assert (hb.cron, args.interval_minutes, args.low_balance_threshold_credits, args.grace_seconds) == (
        "0 * * * *",
        60,
        5,
        7,
    )


def test_both_cadences_are_a_conflict():
    text = ORIGINAL.read_text().replace("governance:\n", "governance:\n  heartbeat: {interval_minutes: 5}\n", 1)
    assert problems(text) == [
        "governance: heartbeat.interval_minutes (5) and schedules[1] (charter 'HEARTBEAT', cron '0 * * * *') both "
        "set the heartbeat's cadence; keep one"
    ]


def test_a_heartbeat_entry_with_another_entrypoint_is_refused():
    (p,) = problems(SHAPE.replace("entrypoint: HEARTBEAT", "entrypoint: PING"))
    assert "charter 'HEARTBEAT' is the heartbeat; its entrypoint must be HEARTBEAT, not 'PING'" in p


def test_our_stricter_checks_still_name_path_and_value():
    text = ORIGINAL.read_text()
    assert problems(text.replace('"0 */6 * * *"', '"0 */6 * *"')) == [
        "governance.schedules[0].cron: '0 */6 * *' is not a valid 5-field cron expression"
    ]
    assert problems(text.replace("Europe/Berlin", "Europe/Atlantis")) == [
        "governance.schedules[2].timezone: 'Europe/Atlantis' is not a known IANA timezone"
    ]
    (p,) = problems(text.replace("charter: ENGINEERING", "charter: 'ENGINEERING TEAM'"))
    assert p.startswith("governance.schedules[2].charter: 'ENGINEERING TEAM' is not a valid charter name")
    (p,) = problems(text.replace("entrypoint: GOVERN", "entrypoint: 'GOVERN NOW'"))
    assert p.startswith("governance.schedules[0].entrypoint: 'GOVERN NOW' is not an entrypoint")
    (p,) = problems(text.replace("charter: ENGINEERING", "charter: community"))
    assert p.startswith("governance.schedules: duplicate charter 'community' at schedules[2]")


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        (
            "{url: 'ftp://gw'}",
            "governance.agent_gateway.url: 'ftp://gw' is not an http(s) URL or a ${ENV_VAR} reference",
        ),
        (
            "{url: 'http://gw', token: 'hunter2'}",
            "governance.agent_gateway.token: 'hunter2' must be a ${ENV_VAR} reference, never a literal secret",
        ),
    ],
)
def test_gateway_url_and_token_are_checked(gateway, expected):
    assert problems(f"governance: {{agent_gateway: {gateway}}}") == [expected]


def test_longest_gap_of_a_cron():
    assert cron_max_gap_minutes("0 * * * *", "UTC") == 60
    assert cron_max_gap_minutes("*/5 * * * *", "UTC") == 5
    # Friday to Monday, over the weekend the clocks go back in October: 73 hours.
    assert cron_max_gap_minutes("0 9 * * 1-5", "Europe/Berlin") == 73 * 60
    assert cron_max_gap_minutes("0 9 * * 1-5", "UTC") == 72 * 60
    assert cron_max_gap_minutes("*/5 9-17 * * 1-5", "UTC") == 3 * 1440 - (17 * 60 + 55) + 9 * 60
    assert cron_max_gap_minutes("0 9 1 * 1", "UTC") == 7 * 1440  # the 1st or a Monday: both day fields count
    assert cron_max_gap_minutes("0 0 29 2 *", "UTC") == (366 + 3 * 365) * 1440  # leap day to leap day
    assert cron_max_gap_minutes("0 * * * *", "Europe/Berlin") == 120  # the fall-back night


def test_free_words_need_the_gateway_scope():
    assert required_scope("BRIEF") == "governance:BRIEF" and required_scope("GOVERN") == GATEWAY_SCOPE
    now = datetime(2026, 2, 1, tzinfo=UTC)
    grant = GrantFacts(grant_id="g", exists=True, scopes=["governance:BRIEF"])
    assert grant_refusal(grant, "GOVERN", now) == (
        "execution grant 'g' does not allow 'governance:GATEWAY' (scopes: governance:BRIEF)"
    )
    assert grant_refusal(grant.model_copy(update={"scopes": [GATEWAY_SCOPE]}), "LEDGER_INGEST", now) is None


# --- the plan: adopt and migrate --------------------------------------------------------------


def _spec():
    return parse_repo_spec(with_gateway(ORIGINAL.read_text()))


def _originals(d) -> ActualSchedule:
    """A schedule as the original system's sync leaves it: no memo, its own workflow."""
    observed = {**d.observable(), "workflow": "GovernanceScheduledRunWorkflow", "task_queue": "scheduler-tasks"}
    return ActualSchedule(schedule_id=d.schedule_id, observed=observed)


def test_schedules_without_a_memo_are_blocked_unless_adopted():
    spec = _spec()
    owner = default_owner(spec)
    hb, community, engineering = desired_schedules(spec, "tq")
    actual = {
        community.schedule_id: _originals(community),
        engineering.schedule_id: _originals(engineering).model_copy(update={"paused": True, "note": "held"}),
    }
    plain = make_plan([hb, community, engineering], actual, owner)
    assert [i.action for i in plain.items] == ["create", "blocked", "blocked"]
    assert "--adopt takes it over" in plain.items[1].reason

    plan = make_plan([hb, community, engineering], actual, owner, adopt=True)
    assert [i.action for i in plan.items] == ["create", "adopt", "adopt"]
    assert plan.writes_planned == 3 and plan.blocked == []
    assert plan.items[2].paused and plan.items[2].note == "held"
    text = render_plan(plan)
    assert "  ^ adopt      governance:community   " in text
    assert 'workflow: "GovernanceScheduledRunWorkflow" → "GovernanceRun"' in text
    assert "[paused: 'held'; stays paused]" in text
    assert text.endswith("Plan: 1 to create, 0 to update, 0 to delete, 0 unchanged, 0 blocked, 2 to adopt.")


def test_another_owners_schedule_is_never_adopted():
    spec = _spec()
    _, community, _ = desired_schedules(spec, "tq")
    theirs = _originals(community).model_copy(update={"owner": "governance-fleet:other"})
    plan = make_plan([community], {community.schedule_id: theirs}, default_owner(spec), adopt=True)
    assert plan.items[0].action == "blocked"


def test_our_schedule_under_its_old_id_is_migrated_not_deleted():
    spec = _spec()
    owner = default_owner(spec)
    hb, community, engineering = desired_schedules(spec, "tq")
    old = ActualSchedule(schedule_id="governance:COMMUNITY", owner=owner, paused=True, note="incident 7")
    plan = make_plan([hb, community, engineering], {"governance:COMMUNITY": old}, owner)
    by = {i.schedule_id: i for i in plan.items}
    assert set(by) == {HEARTBEAT_SCHEDULE_ID, "governance:community", "governance:engineering"}
    move = by["governance:community"]
    assert (move.action, move.from_id, move.paused, move.note) == (
        "migrate",
        "governance:COMMUNITY",
        True,
        "incident 7",
    )
    text = render_plan(plan)
    assert "  > migrate    governance:community" in text and "(from governance:COMMUNITY" in text
    assert text.endswith("1 to migrate.")


def test_an_old_id_beside_the_new_one_is_deleted():
    """A migration cut short (new one created, old one left paused) finishes with a delete."""
    spec = _spec()
    owner = default_owner(spec)
    _, community, _ = desired_schedules(spec, "tq")
    new = ActualSchedule(
        schedule_id=community.schedule_id,
        owner=owner,
        spec_hash=community.spec_hash,
        stored=community.canonical(),
        observed=community.observable(),
    )
    old = ActualSchedule(schedule_id="governance:COMMUNITY", owner=owner, paused=True)
    plan = make_plan([community], {community.schedule_id: new, "governance:COMMUNITY": old}, owner)
    assert [(i.schedule_id, i.action) for i in plan.items] == [
        ("governance:community", "unchanged"),
        ("governance:COMMUNITY", "delete"),
    ]


def test_someone_elses_schedule_on_an_old_id_is_left_alone():
    spec = _spec()
    _, community, _ = desired_schedules(spec, "tq")
    foreign = ActualSchedule(schedule_id="governance:COMMUNITY", owner=None)
    plan = make_plan([community], {"governance:COMMUNITY": foreign}, default_owner(spec))
    assert [(i.schedule_id, i.action) for i in plan.items] == [("governance:community", "create")]


def test_backfill_window_covers_only_what_nobody_fired():
    created = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    minute = timedelta(seconds=60)
    # The old schedule fired 12:00: the window starts after it, so 12:00 is never fired again.
    start, end = backfill_window(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), created, minute) or (None, None)
    assert (start, end) == (datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC), created)
    # It had not fired 12:00 yet when it was paused: the window includes 12:00.
    start, _ = backfill_window(datetime(2026, 3, 1, 11, 59, tzinfo=UTC), created, minute) or (None, None)
    assert start == datetime(2026, 3, 1, 11, 59, 30, tzinfo=UTC)  # no further back than the catch-up window
    assert backfill_window(None, created, minute) == (created - minute, created)
    assert backfill_window(created + minute, created, minute) is None


# --- the status client ------------------------------------------------------------------------


def test_status_client_ignores_unknown_fields_but_checks_known_ones():
    body = {
        "systemCredits": "42",
        "schemaMinor": 3,
        "upcomingRuns": [{"name": "Community", "nextRunAt": "2026-03-01T12:00:00.000Z", "paused": False}],
        "recentRuns": [
            {
                "id": "governance:community-1",
                "title": "Community — 2026-03-01",
                "startedAt": "2026-03-01T06:00:00.000Z",
                "lastActivity": "2026-03-01T06:00:05.000Z",
                "outcome": "success",
            }
        ],
    }
    status = read_status_v1(body)
    assert status.systemCredits == "42" and status.upcomingRuns[0].name == "Community"
    assert status.recentRuns[0].id == "governance:community-1"
    with pytest.raises(ValueError, match="systemCredits"):
        read_status_v1({**body, "systemCredits": "-1"})
    with pytest.raises(ValueError, match="recentRuns"):
        read_status_v1({k: v for k, v in body.items() if k != "recentRuns"})
