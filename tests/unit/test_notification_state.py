"""Never silent, the pure part: a guardian's notification state from its configured channels,
their records and the pending notices; what may be shown publicly of a channel's error; the
system tenant that cannot pay its runs; and the grant renewal plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from govfleet.domain.grant_renewal import GrantRenewalPolicy, plan_grant_renewal
from govfleet.domain.heartbeat import HeartbeatFacts
from govfleet.domain.notification_state import (
    ChannelRecord,
    PendingNotice,
    not_funded_warning,
    notification_state,
    public_error,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
G = "governance-guardian"


def record(channel: str, failures: int, scope: str = G) -> ChannelRecord:
    return ChannelRecord(
        scope=scope,
        channel=channel,
        last_attempt_at=NOW,
        last_delivered_at=NOW - timedelta(hours=1),
        last_failed_at=NOW if failures else None,
        last_error="http://alerts.example.org/… answered HTTP 503" if failures else None,
        consecutive_failures=failures,
    )


def pending(scope: str = G) -> PendingNotice:
    return PendingNotice(
        idempotency_key="k",
        scope=scope,
        kind="emergency",
        title="t",
        created_at=NOW - timedelta(minutes=5),
        attempts=3,
        last_attempt_at=NOW,
        next_attempt_at=NOW,
        last_error="no notification channel configured",
    )


def test_no_channel_is_a_problem_and_none_on_purpose_a_warning():
    none = notification_state(scope=G, configured=[], skipped=["webhook"], declared_none=False, records=[], pending=[])
    assert none.state == "none" and none.warnings == []
    assert none.problems == [
        f"{G}: no notification channel: its alerts reach nobody; not set: webhook "
        "(set NOTIFY_URLS, SLACK_WEBHOOK_URL, ADMIN_EMAIL or guardian.notifications; or NOTIFY_URLS=none)"
    ]
    said = notification_state(scope=G, configured=[], skipped=[], declared_none=True, records=[], pending=[])
    assert said.state == "declared_none" and said.problems == []
    assert said.warnings == [f"{G}: notifications are off on purpose (NOTIFY_URLS=none): its alerts reach nobody"]


def test_a_failing_channel_is_named_with_its_last_error_and_other_scopes_do_not_count():
    state = notification_state(
        scope=G,
        configured=["webhook", "slack:SLACK_WEBHOOK_URL", "apprise:NOTIFY_URLS"],
        skipped=[],
        declared_none=False,
        records=[record("webhook", 3), record("slack:SLACK_WEBHOOK_URL", 0), record("apprise:NOTIFY_URLS", 5, "other")],
        pending=[pending(), pending("other")],
    )
    assert state.state == "failing" and [c.state for c in state.channels] == ["failing", "ok", "unused"]
    assert state.channels[0].last_error == "http://alerts.example.org/… answered HTTP 503"
    assert state.channels[1].last_error is None  # an ok channel shows no stale error
    assert state.pending_urgent == 1 and [p.scope for p in state.pending] == [G]
    assert state.problems == [
        f"{G}: notification channel webhook is failing (3 in a row, last at 2026-03-01T12:00:00Z): "
        "http://alerts.example.org/… answered HTTP 503",
        f"{G}: 1 urgent notice(s) reached nobody and are pending; oldest: emergency since 2026-03-01T11:55:00Z "
        "(no notification channel configured)",
    ]


def test_healthy_channels_say_nothing():
    state = notification_state(
        scope=G, configured=["webhook"], skipped=[], declared_none=True, records=[record("webhook", 0)], pending=[]
    )
    assert state.state == "ok" and state.problems == [] and state.warnings == []


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "http://hooks.example.org:8443/T0/B0/SECRET?x=1 answered HTTP 500",
            "http://hooks.example.org:8443/… answered HTTP 500",
        ),
        ("json://user:password@127.0.0.1:9/alerts failed", "json://127.0.0.1:9/… failed"),
        ("SMTP mail.example.org:25: SMTPServerDisconnected", "SMTP mail.example.org:25: SMTPServerDisconnected"),
    ],
)
def test_errors_are_shown_without_a_urls_secret_parts(raw, shown):
    assert public_error(raw) == shown


def test_a_long_error_is_cut():
    assert len(public_error("x" * 1000)) == 300


def test_not_funded_when_the_balance_cannot_pay_the_cheapest_run():
    assert not_funded_warning(0, [1_000_000, 500_000]) == (
        "system tenant not funded: balance 0 credits, a governance run costs 500000; every run is refused until "
        "credits are bought"
    )
    assert not_funded_warning(500_000, [1_000_000, 500_000]) is None
    assert not_funded_warning(0, []) is None and not_funded_warning(0, [0]) is None  # nothing to pay


def facts(expires: datetime | None, revoked: bool = False) -> HeartbeatFacts:
    return HeartbeatFacts(
        tenant_exists=True,
        tenant_flagged=True,
        balance=1,
        grant_exists=True,
        grant_expires_at=expires,
        grant_revoked_at=NOW if revoked else None,
    )


def test_the_grant_is_renewed_inside_its_window_only_when_active():
    policy = GrantRenewalPolicy()
    plan = plan_grant_renewal(facts(NOW + timedelta(days=29)), policy, NOW)
    assert plan.action == "renew" and plan.until == NOW + timedelta(days=365)
    assert plan_grant_renewal(facts(NOW + timedelta(days=31)), policy, NOW).action == "none"
    assert plan_grant_renewal(facts(NOW - timedelta(seconds=1)), policy, NOW).action == "none"  # expired: a person
    assert plan_grant_renewal(facts(NOW + timedelta(days=1), revoked=True), policy, NOW).action == "none"
    assert plan_grant_renewal(facts(None), policy, NOW).action == "none"  # never expires
    off = plan_grant_renewal(facts(NOW + timedelta(days=3)), GrantRenewalPolicy(auto_renew=False), NOW)
    assert off.action == "renewal_off" and "automatic renewal is off" in off.detail


def test_a_renewal_must_leave_the_window():
    with pytest.raises(ValueError, match="must be more than grant_renew_within_days"):
        GrantRenewalPolicy(renew_within_days=30, renew_for_days=30)
