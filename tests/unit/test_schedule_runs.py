"""Pure governance-run rules: title, idempotency key, grant and budget decisions, the brief."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from govfleet.domain.governance_run import (
    AlertLine,
    BriefFacts,
    GrantFacts,
    GuardianSnapshot,
    HeartbeatSnapshot,
    budget_refusal,
    charter_display_name,
    grant_refusal,
    idempotency_key,
    render_brief,
    run_title,
)

NOW = datetime(2025, 3, 1, 23, 30, tzinfo=UTC)
SCOPES = ["governance:HEARTBEAT", "governance:BRIEF", "governance:HTTP"]


def test_titles_use_the_charter_and_the_local_date():
    assert charter_display_name("COMMUNITY") == "Community"
    assert charter_display_name("DAO_OPS") == "Dao Ops"
    assert charter_display_name("Treasury-v2") == "Treasury-v2"
    assert run_title("COMMUNITY", NOW) == "Community — 2025-03-01"
    # 23:30 UTC is already March 2nd in Berlin.
    assert run_title("ENGINEERING", NOW, "Europe/Berlin") == "Engineering — 2025-03-02"


def test_idempotency_key_is_schedule_id_and_scheduled_time_in_utc():
    berlin = NOW.astimezone(timezone(timedelta(hours=1)))
    assert idempotency_key("governance:COMMUNITY", berlin) == "governance:COMMUNITY:2025-03-01T23:30:00Z"
    assert idempotency_key("governance:X", NOW.replace(tzinfo=None)) == "governance:X:2025-03-01T23:30:00Z"


def grant(**over) -> GrantFacts:
    data = dict(
        grant_id="cogni_system_governance",
        exists=True,
        billing_account_id="cogni_system",
        scopes=SCOPES,
        expires_at=NOW + timedelta(days=1),
    )
    data.update(over)
    return GrantFacts(**data)


@pytest.mark.parametrize(
    "facts,entrypoint,expected",
    [
        (grant(), "BRIEF", None),
        (grant(expires_at=None), "HTTP", None),
        (GrantFacts(grant_id="g", exists=False), "BRIEF", "execution grant 'g' does not exist"),
        (grant(revoked_at=NOW), "BRIEF", "was revoked at 2025-03-01T23:30:00Z"),
        (grant(expires_at=NOW), "BRIEF", "expired at 2025-03-01T23:30:00Z"),
        (grant(scopes=["governance:BRIEF"]), "HTTP", "does not allow 'governance:HTTP' (scopes: governance:BRIEF)"),
        (grant(billing_account_id="acct_alice"), "BRIEF", "belongs to 'acct_alice'"),
    ],
)
def test_grant_refusal(facts, entrypoint, expected):
    reason = grant_refusal(facts, entrypoint, NOW)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_budget_refusal_boundaries():
    assert budget_refusal(0, 100, 100) is None
    assert budget_refusal(99, 1, 100) is None
    assert budget_refusal(100, 1, 100) == (
        "daily budget exhausted: spent 100 of 100 credits today (UTC); this run costs 1"
    )
    assert budget_refusal(0, 0, 0) is None
    with pytest.raises(ValueError, match="must not be negative"):
        budget_refusal(-1, 1, 1)


def test_brief_has_every_section():
    facts = BriefFacts(
        dao_name="cogni-demo",
        title="Community — 2025-03-01",
        generated_at=NOW,
        balance=12_345_678,
        budget_per_day=100_000_000,
        spent_today=2_000_000,
        guardian=GuardianSnapshot(
            level="caution", holder_control="53.20", last_check_at=NOW, active_pauses=["redemptions (critical)"]
        ),
        heartbeat=HeartbeatSnapshot(at=NOW, status="ok", state="up"),
        alerts=[AlertLine(at=NOW, alert_type="caution", message="below 55%", resolved=True)],
    )
    text = render_brief(facts)
    assert text.startswith("# Community — 2025-03-01\n")
    for fragment in (
        "## Guardian",
        "Level: **caution**, holder control 53.20 %",
        "Active pauses: redemptions (critical)",
        "## Heartbeat",
        "State: **up**; last heartbeat 2025-03-01T23:30:00Z (ok)",
        "Balance: 12,345,678 credits",
        "Spent today: 2,000,000 of 100,000,000 credits",
        "- 2025-03-01T23:30:00Z **caution**: below 55% (resolved)",
    ):
        assert fragment in text
    empty = render_brief(
        BriefFacts(
            dao_name="d",
            title="T",
            generated_at=NOW,
            balance=None,
            budget_per_day=0,
            spent_today=0,
            guardian=GuardianSnapshot(),
            heartbeat=HeartbeatSnapshot(),
        )
    )
    assert "unknown (no check recorded)" in empty and "State: **new**; last heartbeat never" in empty
    assert "Balance: missing" in empty and "## Recent alerts\n- none" in empty
