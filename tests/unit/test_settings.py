"""Settings from the environment, and the guardian's variables overriding the repo-spec."""

from __future__ import annotations

from decimal import Decimal

import pytest

from govfleet.repo_spec import RepoSpecError
from govfleet.settings import ConfigError, load_config, load_settings
from tests.conftest import EXAMPLE_SPEC


def test_defaults():
    s = load_settings({})
    assert s.TEMPORAL_ADDRESS is None and s.DATABASE_URL is None
    assert s.SERVICE_PORT == 8926
    assert Decimal("0.75") == s.SYSTEM_TENANT_REVENUE_SHARE


def test_seed_004_variables_override_repo_spec():
    cfg = load_config(
        {
            "VOTING_TRACKER_URL": "http://127.0.0.1:9999",
            "MONITORING_INTERVAL_NORMAL": "20",
            "CAUTION_THRESHOLD": "56.5",
            "REDEMPTION_ALGORITHM_URL": "http://127.0.0.1:8923",
        },
        EXAMPLE_SPEC,
    )
    g = cfg.spec.guardian
    assert g.tracker.url == "http://127.0.0.1:9999"
    assert g.rules.monitoring_interval_normal == 20
    assert g.rules.caution_threshold == Decimal("56.5")
    assert {b.name: b.url for b in g.breakers}["redemption-algorithm"] == "http://127.0.0.1:8923"


def test_override_that_breaks_threshold_order_is_refused():
    with pytest.raises(RepoSpecError) as info:
        load_config({"CRITICAL_THRESHOLD": "53"}, EXAMPLE_SPEC)
    assert "warning_threshold (52.0) must be above critical_threshold (53)" in str(info.value)


@pytest.mark.parametrize("share", ["1.5", "-0.1", "NaN", "abc"])
def test_revenue_share_is_validated(share):
    with pytest.raises(ConfigError) as info:
        load_settings({"SYSTEM_TENANT_REVENUE_SHARE": share})
    assert "SYSTEM_TENANT_REVENUE_SHARE" in str(info.value)


def test_bad_integer_names_the_variable():
    with pytest.raises(ConfigError) as info:
        load_settings({"MONITORING_INTERVAL_CRITICAL": "0"})
    assert "MONITORING_INTERVAL_CRITICAL" in str(info.value)


def test_original_notification_variables():
    s = load_settings(
        {
            "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/SECRETTOKEN",
            "ADMIN_EMAIL": "admin@fullpotential.com, ops@fullpotential.com",
            "SMTP_URL": "smtp+starttls://mailer:p%40ss@mail.example.org",
        }
    )
    assert s.admin_emails() == ["admin@fullpotential.com", "ops@fullpotential.com"]
    server = s.smtp_server()
    assert server is not None
    assert (server.host, server.port, server.security, server.username, server.password) == (
        "mail.example.org",
        587,
        "starttls",
        "mailer",
        "p@ss",
    )
    assert "SECRETTOKEN" not in repr(s) and "p%40ss" not in repr(s) and "p@ss" not in repr(server)
    assert load_settings({"SLACK_WEBHOOK_URL": "", "ADMIN_EMAIL": " "}).SLACK_WEBHOOK_URL is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ADMIN_EMAIL": "admin@example.org"}, "ADMIN_EMAIL is set but SMTP_URL is not"),
        ({"ADMIN_EMAIL": "admin", "SMTP_URL": "smtp://mail"}, "ADMIN_EMAIL: 'admin' is not an email address"),
        ({"SMTP_URL": "http://mail.example.org"}, "SMTP_URL: scheme 'http' is not one of smtp://"),
        ({"SMTP_URL": "smtp://"}, "SMTP_URL: names no host"),
        ({"SLACK_WEBHOOK_URL": "hooks.slack.com/services/SECRETTOKEN"}, "SLACK_WEBHOOK_URL: must be the webhook's"),
    ],
)
def test_bad_notification_variables_are_one_clear_error(env, message):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert message in str(info.value)
    assert "SECRETTOKEN" not in str(info.value)


@pytest.mark.parametrize(
    "queue", ["scheduler-tasks", "scheduler-tasks-4ff8eac1-4eba-4ed0-931b-b1fe4f64713d", "ledger-tasks"]
)
def test_the_original_systems_task_queues_are_refused(queue):
    """Its workers poll these: sharing one, each side would take (and fail) the other's tasks."""
    with pytest.raises(ConfigError) as info:
        load_settings({"TEMPORAL_TASK_QUEUE": queue})
    assert str(info.value) == (
        f"invalid environment: TEMPORAL_TASK_QUEUE: {queue!r} is a task queue the original system's workers poll "
        "(scheduler-tasks, scheduler-tasks-<node>, ledger-tasks): on a shared queue each side's workers take the "
        "other's tasks and fail them; use a queue of the fleet's own (unset: governance-fleet)"
    )
    for ours in ("governance-fleet", "scheduler-tasks2", "governance-ledger-tasks"):
        settings = load_settings({"TEMPORAL_TASK_QUEUE": ours})
        assert ours == settings.TEMPORAL_TASK_QUEUE
