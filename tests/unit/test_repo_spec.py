"""Repo-spec parsing: the example loads, and every error names the path and the value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from govfleet.domain.secret_ref import resolve_secret
from govfleet.repo_spec import RepoSpecError, load_repo_spec, parse_repo_spec
from tests.conftest import EXAMPLE_SPEC


def problems(text: str) -> list[str]:
    with pytest.raises(RepoSpecError) as info:
        parse_repo_spec(text)
    return info.value.problems


def test_example_spec_loads_with_seed_defaults():
    spec = load_repo_spec(EXAMPLE_SPEC)
    assert spec.governance.system_tenant.id == "cogni_system"
    assert [s.schedule_id for s in spec.governance.schedules] == [
        "governance:community",
        "governance:engineering",
        "governance:treasury",
    ]
    rules = spec.guardian.rules
    assert (rules.caution_threshold, rules.warning_threshold, rules.critical_threshold, rules.emergency_threshold) == (
        Decimal("55.0"),
        Decimal("52.0"),
        Decimal("51.0"),
        Decimal("49.0"),
    )
    assert (
        rules.monitoring_interval_normal,
        rules.monitoring_interval_caution,
        rules.monitoring_interval_critical,
    ) == (30, 5, 1)
    assert spec.guardian.workflow_id == "governance-guardian"
    assert spec.guardian.resume_quorum == 2
    assert all(a == a.lower() for a in spec.guardian.admins)


def test_empty_spec_gets_every_default():
    spec = parse_repo_spec("")
    assert spec.governance.heartbeat.interval_minutes == 5
    assert spec.governance.heartbeat.low_balance_threshold_credits == 1_000_000
    assert spec.governance.heartbeat.grant_expiry_warning_hours == 24
    assert spec.governance.system_tenant.budget_credits_per_day == 100_000_000
    assert spec.guardian.rules.hysteresis == Decimal("0.5")
    assert spec.governance.schedules == []


def test_bad_cron_names_path_and_value():
    text = """
governance:
  schedules:
    - {charter: A, cron: "0 * * * *"}
    - {charter: B, cron: "61 * * * *"}
"""
    assert problems(text) == ["governance.schedules[1].cron: '61 * * * *' is not a valid 5-field cron expression"]


@pytest.mark.parametrize("cron", ["* * * *", "* * * * * *", "every minute", "0 25 * * *", "*/0 * * * *"])
def test_cron_must_be_five_valid_fields(cron):
    (p,) = problems(f'governance: {{schedules: [{{charter: A, cron: "{cron}"}}]}}')
    assert p.startswith("governance.schedules[0].cron: ") and repr(cron) in p


def test_cron_is_normalised():
    spec = parse_repo_spec('governance: {schedules: [{charter: A, cron: "0   9 * *  1"}]}')
    assert spec.governance.schedules[0].cron == "0 9 * * 1"


def test_duplicate_charters_are_an_error_case_insensitive():
    text = 'governance: {schedules: [{charter: Community, cron: "0 * * * *"}, {charter: COMMUNITY, cron: "5 * * * *"}]}'
    (p,) = problems(text)
    assert p.startswith("governance.schedules: duplicate charter 'COMMUNITY' at schedules[1]")


def test_heartbeat_charter_must_have_the_heartbeat_entrypoint():
    (p,) = problems('governance: {schedules: [{charter: heartbeat, cron: "0 * * * *"}]}')
    assert p == (
        "governance.schedules: schedules[0]: charter 'heartbeat' is the heartbeat; its entrypoint must be "
        "HEARTBEAT, not 'BRIEF' (rename the charter to schedule a governance run)"
    )


def test_unknown_timezone():
    (p,) = problems('governance: {schedules: [{charter: A, cron: "0 * * * *", timezone: Mars/Olympus}]}')
    assert p == "governance.schedules[0].timezone: 'Mars/Olympus' is not a known IANA timezone"


def test_entrypoint_must_be_one_word_and_http_needs_a_url():
    (p,) = problems('governance: {schedules: [{charter: A, cron: "0 * * * *", entrypoint: "rm -rf"}]}')
    assert p.startswith("governance.schedules[0].entrypoint: 'rm -rf' is not an entrypoint: one of HEARTBEAT, BRIEF")
    (p,) = problems('governance: {schedules: [{charter: A, cron: "0 * * * *", entrypoint: HTTP}]}')
    assert "agent_url" in p


def test_literal_secrets_are_refused():
    ps = problems("""
guardian:
  notifications:
    urgent_urls: ["slack://T000/B000/XXXX"]
    webhook: {url: "http://127.0.0.1:9/hook", secret: hunter2}
""")
    assert (
        "guardian.notifications.urgent_urls[0]: 'slack://T000/B000/XXXX'"
        " must be a ${ENV_VAR} reference, never a literal secret" in ps
    )
    assert (
        "guardian.notifications.webhook.secret: 'hunter2' must be a ${ENV_VAR} reference, never a literal secret" in ps
    )


def test_secret_references_resolve_from_environment():
    spec = parse_repo_spec('guardian: {notifications: {admin_urls: ["${ADMIN_URL}"]}}')
    ref = spec.guardian.notifications.admin_urls[0]
    assert resolve_secret(ref, {"ADMIN_URL": "json://127.0.0.1:1/"}) == "json://127.0.0.1:1/"
    assert resolve_secret(ref, {}) is None


def test_admin_addresses_are_validated_and_distinct():
    (p,) = problems('guardian: {admins: ["0x12"]}')
    assert p == "guardian.admins[0]: '0x12' is not an Ethereum address (0x followed by 40 hex digits)"
    a = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    (p,) = problems(f'guardian: {{admins: ["{a}", "{a.lower()}"]}}')
    assert "distinct" in p


def test_thresholds_must_be_ordered():
    (p,) = problems("guardian: {rules: {warning_threshold: 56}}")
    assert p == "guardian.rules: caution_threshold (55.0) must be above warning_threshold (56)"


def test_unknown_keys_and_wrong_types_name_the_path():
    ps = problems("governance: {heartbeat: {interval_minutes: 0, interval_minute: 5}}")
    assert any(p.startswith("governance.heartbeat.interval_minutes: 0:") for p in ps)
    assert any(p.startswith("governance.heartbeat.interval_minute: 5: Extra inputs") for p in ps)


def test_system_tenant_id_is_a_protocol_constant():
    (p,) = problems("governance: {system_tenant: {id: other}}")
    assert p.startswith("governance.system_tenant.id: 'other' must be 'cogni_system'")


def test_invalid_yaml_names_line_and_column():
    (p,) = problems("governance:\n  schedules: [\n")
    assert p.startswith("invalid YAML at line")


def test_top_level_must_be_mapping():
    assert problems("- a\n- b\n") == ["top level must be a mapping, got list"]


def test_missing_file(tmp_path):
    with pytest.raises(RepoSpecError) as info:
        load_repo_spec(tmp_path / "nope.yaml")
    assert "file not found" in str(info.value)
