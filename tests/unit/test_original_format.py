"""The original system's repo-spec, unchanged: its own files of both eras (the DAO identity under
`cogni_dao` or under `governance`, its LEDGER_INGEST, its HEARTBEAT entry), free-word entrypoints for
the agent gateway (the file's or the environment's), lowercase schedule ids; the plan's adopt and
migrate lines; the migration's backfill window; a status client that ignores fields it does not know."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govfleet.contracts.governance_run import GovernanceRunInput
from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID, HeartbeatInput
from govfleet.domain.governance_run import GATEWAY_SCOPE, GrantFacts, grant_refusal, required_scope
from govfleet.domain.schedule_spec import ActualSchedule, make_plan, render_plan
from govfleet.domain.status import UpcomingRun, schedule_entries, upcoming_runs
from govfleet.repo_spec import RepoSpecError, cron_max_gap_minutes, load_repo_spec, parse_repo_spec
from govfleet.settings import apply_env_overrides, load_settings
from govfleet.status_client import read_status_v1
from schedules.desired import default_owner, desired_schedules
from schedules.reconciler import backfill_window

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# The original system's own files, byte for byte, named by the commit they come from
# (Cogni-DAO/cogni): today's root and operator-node files, and the seed era's.
TODAY = FIXTURES / "original-cfc15e773-repo-spec.yaml"
TODAY_OPERATOR = FIXTURES / "original-cfc15e773-operator-repo-spec.yaml"
SEED_ERA = FIXTURES / "original-c18496a19-repo-spec.yaml"
ORIGINALS = {
    TODAY: "3f55da9c828538d1b87ce2d0633cca955b15f0a5",
    TODAY_OPERATOR: "2ac8f8bf99862ac8f6f92aa61f183aad36db2433",
    SEED_ERA: "ae354d69708c2a28d6c6a92c2566df56fe71c4bb",
}
# A file of our own in the original's format with free words for its gateway (the original's
# files today have none): a governance run handed to the gateway, the heartbeat, another zone.
FREE_WORDS = """\
governance:
  schedules:
    - charter: COMMUNITY
      cron: "0 */6 * * *"
      timezone: UTC
      entrypoint: GOVERN
    - charter: HEARTBEAT
      cron: "0 * * * *"
      timezone: UTC
      entrypoint: HEARTBEAT
    - charter: ENGINEERING
      cron: "30 9 * * 1-5"
      timezone: Europe/Berlin
      entrypoint: ENGINEERING
"""
# The shape the issue names, in flow style.
SHAPE = (
    'governance: {schedules: [{charter: COMMUNITY, cron: "0 */6 * * *", timezone: UTC, entrypoint: GOVERN}, '
    '{charter: HEARTBEAT, cron: "0 * * * *", timezone: UTC, entrypoint: HEARTBEAT}]}'
)
GATEWAY = "  agent_gateway: {url: 'http://127.0.0.1:18789/governance/run', token: '${AGENT_GATEWAY_TOKEN}'}\n"
DAO = {
    "chain_id": 8453,
    "dao_contract": "0xf61c3fafd4d34b4568e7a500d92b28ac175e83c6",
    "plugin_contract": "0x609b427f04c1c42de3e28898cb7b9bad329e6b77",
    "signal_contract": "0x590fc79b9c925c377fa63f4aaf54cdbf4ee273a1",
    "base_url": "https://proposal.cognidao.org",
}


def with_gateway(text: str) -> str:
    return text.replace("governance:\n", "governance:\n" + GATEWAY, 1)


def problems(text: str) -> list[str]:
    with pytest.raises(RepoSpecError) as info:
        parse_repo_spec(text)
    return info.value.problems


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_the_fixtures_are_the_originals_files_byte_for_byte():
    for path, blob in ORIGINALS.items():
        assert git_blob_id(path.read_bytes()) == blob, path.name


@pytest.mark.parametrize("path", list(ORIGINALS), ids=lambda p: p.name)
def test_every_era_parses_unchanged_with_one_dao_identity(path):
    """Seed era: the DAO under `cogni_dao`; today: under `governance`. Both mean the same."""
    spec = load_repo_spec(path)
    assert {k: getattr(spec.cogni_dao, k) for k in DAO} == DAO
    domain = spec.cogni_dao.signing_domain()
    assert (domain.chain_id, domain.verifying_contract) == (8453, DAO["dao_contract"])
    assert spec.declared_guardians() == []  # none of them declares a guardian
    assert spec.governance.gateway_problems() == []  # no free word: nothing for a gateway
    assert spec.model_extra and "payments_in" in spec.model_extra  # the rest is kept as it is


def test_todays_file_schedules_the_heartbeat_and_the_originals_ledger_ingestion():
    spec = load_repo_spec(TODAY)
    hb, ledger = desired_schedules(spec, "governance-fleet")
    assert (hb.schedule_id, hb.workflow, hb.cron, hb.task_queue) == (
        HEARTBEAT_SCHEDULE_ID,
        "GovernanceHeartbeat",
        "0 * * * *",
        "governance-fleet",
    )
    # What the original's schedule sync gives CollectEpochWorkflow, field by field.
    assert (ledger.schedule_id, ledger.workflow, ledger.task_queue, ledger.cron, ledger.timezone) == (
        "governance:ledger_ingest",
        "CollectEpochWorkflow",
        "ledger-tasks",
        "0 6 * * *",
        "UTC",
    )
    assert ledger.args == {
        "nodeId": "4ff8eac1-4eba-4ed0-931b-b1fe4f64713d",
        "graphId": "ledger:ingest",
        "executionGrantId": None,
        "input": {
            "version": 1,
            "scopeId": "a28a8b1e-1f9d-5cd5-9329-569e4819feda",
            "scopeKey": "default",
            "epochLengthDays": 7,
            "activitySources": {
                "github": {
                    "attributionPipeline": "cogni-v0.0",
                    "sourceRefs": ["cogni-dao/cogni"],
                    "excludedLogins": ["Cogni-1729"],
                }
            },
            "baseIssuanceCredits": "10000",
            "approvers": ["0x070075F1389Ae1182aBac722B36CA12285d0c949"],
        },
        "runKind": "system_scheduled",
        "triggerSource": "temporal_schedule",
        "triggerRef": "governance:ledger_ingest",
        "requestedBy": "00000000-0000-4000-a000-000000000001",
        "dbScheduleId": None,
        "temporalScheduleId": "governance:ledger_ingest",
    }
    assert ledger.execution_timeout_seconds is None  # the original's workflow, the original's limits
    assert "GovernanceRun" not in {d.workflow for d in desired_schedules(spec, "tq")}
    # Its status page lists the heartbeat as a run; so do we (and the ingestion).
    assert [s.charter for s in spec.listed_schedules()] == ["HEARTBEAT", "LEDGER_INGEST"]


def test_the_operator_file_gets_the_daily_ingestion_the_original_adds():
    """A ledger and no LEDGER_INGEST entry: the original adds one, daily at midnight UTC."""
    spec = load_repo_spec(TODAY_OPERATOR)
    hb, ledger = desired_schedules(spec, "tq")
    assert hb.interval_seconds == 300 and hb.cron is None  # no HEARTBEAT entry: our interval
    assert (ledger.schedule_id, ledger.workflow, ledger.task_queue, ledger.cron) == (
        "governance:ledger_ingest",
        "CollectEpochWorkflow",
        "ledger-tasks",
        "0 0 * * *",
    )
    today = {d.schedule_id: d for d in desired_schedules(load_repo_spec(TODAY), "tq")}
    assert ledger.args == today["governance:ledger_ingest"].args


def test_the_seed_era_file_is_the_heartbeat_alone():
    spec = load_repo_spec(SEED_ERA)
    (hb,) = desired_schedules(spec, "tq")
    assert (hb.schedule_id, hb.cron, hb.timezone) == (HEARTBEAT_SCHEDULE_ID, "0 * * * *", "UTC")
    assert [s.charter for s in spec.listed_schedules()] == ["HEARTBEAT"]
    # Listed as the original's status page lists it: "Heartbeat", at the top of the hour.
    now = datetime(2027, 5, 4, 10, 17, tzinfo=UTC)
    assert upcoming_runs(schedule_entries(spec.listed_schedules()), now) == [
        UpcomingRun(name="Heartbeat", nextRunAt=datetime(2027, 5, 4, 11, 0, tzinfo=UTC))
    ]


def test_the_dao_keys_in_both_places_must_agree():
    text = TODAY.read_text()
    same = text.replace('schema_version: "0.1.4"', 'schema_version: "0.1.4"\ncogni_dao: {name: cogni, chain_id: 8453}')
    assert parse_repo_spec(same).cogni_dao.chain_id == 8453
    differ = text.replace(
        'schema_version: "0.1.4"',
        'schema_version: "0.1.4"\ncogni_dao: {chain_id: 1, dao_contract: "0x5fbdb2315678afecb367f032d93f642f64180aa3"}',
    )
    assert problems(differ) == [
        "cogni_dao.dao_contract ('0x5fbdb2315678afecb367f032d93f642f64180aa3') and governance.dao_contract "
        "('0xf61c3fafd4d34b4568e7a500d92b28ac175e83c6') disagree; cogni_dao.chain_id (1) and governance.chain_id "
        "(8453) disagree (the original system moved these keys from cogni_dao into governance; both places mean "
        "the same: keep one, or give both the same value)"
    ]
    assert problems(text.replace('chain_id: "8453"', 'chain_id: "mainnet"')) == [
        "governance.chain_id: 'mainnet': Input should be a valid integer, unable to parse string as an integer"
    ]
    (p,) = problems(text.replace('signal_contract: "0x590F', 'signal_contract: "0x590'))
    assert p.startswith("governance.signal_contract: '0x590C79B9c925C377fA63F4AaF54cdbF4Ee273A1' is not an Ethereum")


def test_ledger_ingest_is_never_handed_to_the_gateway():
    """Without the ledger's sections the original would quietly make LEDGER_INGEST an agent
    call; here it is an error, and the word alone on another charter is one too."""
    seed = SEED_ERA.read_text() + '    - {charter: LEDGER_INGEST, cron: "0 6 * * *", entrypoint: LEDGER_INGEST}\n'
    assert problems(seed) == [
        "governance.schedules[1]: charter 'LEDGER_INGEST' is the original system's ledger ingestion "
        "(CollectEpochWorkflow on the ledger-tasks queue, run by the original's workers), which needs node_id, "
        "scope_id, scope_key, activity_ledger; it is never handed to the agent gateway"
    ]
    (p,) = problems(SEED_ERA.read_text() + '    - {charter: LEDGER, cron: "0 6 * * *", entrypoint: LEDGER_INGEST}\n')
    assert "entrypoint 'LEDGER_INGEST' is the original system's ledger ingestion" in p
    (p,) = problems(TODAY.read_text().replace("epoch_length_days: 7", "epoch_length_days: 700"))
    assert p.startswith("activity_ledger.epoch_length_days: 700")


def test_a_free_word_goes_to_the_gateway_the_environment_names():
    spec = parse_repo_spec(FREE_WORDS)
    assert spec.governance.gateway_problems() == [
        f"governance.schedules[{i}]: charter {c!r} has entrypoint {w!r}, which is handed to the agent gateway, but "
        "neither governance.agent_gateway.url nor OPENCLAW_GATEWAY_URL is set"
        for i, c, w in ((0, "COMMUNITY", "GOVERN"), (2, "ENGINEERING", "ENGINEERING"))
    ]
    assert spec.governance.gateway_problems(gateway_in_environment=True) == []
    _, community, _ = desired_schedules(spec, "tq")
    run = GovernanceRunInput.model_validate(community.args)
    assert (run.agent_url, run.agent_token, run.agent_protocol, run.agent_timeout_seconds) == (
        "${OPENCLAW_GATEWAY_URL}",
        "${OPENCLAW_GATEWAY_TOKEN}",
        "openclaw",
        120,
    )
    assert community.summary == 'cron "0 */6 * * *" UTC · GOVERN via gateway (openclaw)'


@pytest.mark.parametrize(
    ("gateway", "protocol"),
    [
        ("{url: 'http://gw.test/run'}", None),
        ("{url: 'http://gw.test', protocol: openclaw, token: '${GW_TOKEN}'}", "openclaw"),
        ("{url: 'wss://gw.test', token: '${GW_TOKEN}'}", "openclaw"),
        ("{url: '${GW_URL}', protocol: http}", None),
    ],
)
def test_the_gateways_protocol_is_chosen_per_gateway(gateway, protocol):
    spec = parse_repo_spec(FREE_WORDS.replace("governance:\n", f"governance:\n  agent_gateway: {gateway}\n", 1))
    _, community, _ = desired_schedules(spec, "tq")
    assert community.args.get("agent_protocol") == protocol
    assert ("agent_protocol" in community.args) == (protocol is not None)  # HTTP gateway runs keep their hash


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
    assert community.summary == 'cron "0 */6 * * *" UTC · GOVERN via gateway (http)'


def test_gateway_settings_are_in_the_input_and_the_hash():
    spec = parse_repo_spec(with_gateway(FREE_WORDS))
    ds = {d.schedule_id: d for d in desired_schedules(spec, "tq")}
    run = GovernanceRunInput.model_validate(ds["governance:community"].args)
    assert (run.agent_url, run.agent_token, run.agent_timeout_seconds) == (
        "http://127.0.0.1:18789/governance/run",
        "${AGENT_GATEWAY_TOKEN}",
        120,
    )
    moved = parse_repo_spec(with_gateway(FREE_WORDS).replace("18789", "18790"))
    changed = {d.schedule_id for d in desired_schedules(moved, "tq") if d.spec_hash != ds[d.schedule_id].spec_hash}
    assert changed == {"governance:community", "governance:engineering"}


def test_builtin_runs_keep_their_input_and_hash():
    """Only gateway runs carry the gateway fields, so the other schedules' hashes are as before."""
    spec = parse_repo_spec('governance: {schedules: [{charter: ops, cron: "0 * * * *", entrypoint: BRIEF}]}')
    _, ops = desired_schedules(spec, "tq")
    assert "agent_token" not in ops.args and "agent_timeout_seconds" not in ops.args and ops.legacy_ids == []


def test_env_overrides_keep_the_heartbeat_entry():
    spec = parse_repo_spec(with_gateway(FREE_WORDS))
    again = apply_env_overrides(spec, load_settings({"VOTING_TRACKER_URL": "http://127.0.0.1:9"}))
    assert again.governance.heartbeat == spec.governance.heartbeat
    assert [d.spec_hash for d in desired_schedules(again, "tq")] == [d.spec_hash for d in desired_schedules(spec, "tq")]


def test_heartbeat_block_gives_thresholds_and_the_entry_the_cadence():
    text = with_gateway(FREE_WORDS).replace(
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
    text = FREE_WORDS.replace("governance:\n", "governance:\n  heartbeat: {interval_minutes: 5}\n", 1)
    assert problems(text) == [
        "governance: heartbeat.interval_minutes (5) and schedules[1] (charter 'HEARTBEAT', cron '0 * * * *') both "
        "set the heartbeat's cadence; keep one"
    ]


def test_a_heartbeat_entry_with_another_entrypoint_is_refused():
    (p,) = problems(SHAPE.replace("entrypoint: HEARTBEAT", "entrypoint: PING"))
    assert "charter 'HEARTBEAT' is the heartbeat; its entrypoint must be HEARTBEAT, not 'PING'" in p


def test_our_stricter_checks_still_name_path_and_value():
    text = FREE_WORDS
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
            "governance.agent_gateway.url: 'ftp://gw' is not an http(s) or ws(s) URL or a ${ENV_VAR} reference",
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
    # The 1st when it is a Monday: Temporal fires only when both day fields match (2030-07-01, then 2031-09-01).
    assert cron_max_gap_minutes("0 9 1 * 1", "UTC") == 427 * 1440
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
    return parse_repo_spec(with_gateway(FREE_WORDS))


def _originals(d) -> ActualSchedule:
    """A schedule as the original system's sync leaves it: no memo, its own workflow."""
    observed = {**d.observable(), "workflow": "GraphRunWorkflow", "task_queue": "scheduler-tasks"}
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
    assert 'workflow: "GraphRunWorkflow" → "GovernanceRun"' in text
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
